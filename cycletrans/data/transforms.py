"""Train and test image transforms (torchvision), sized and normalised by a ``Preprocessing``.

Training (the paper, Sec. V-A): resize to (H, W), random horizontal flip, [the authors' code's
variant: pad 10 pixels of grey 127 and crop back to (H, W) at a random place], [random
grayscale with probability ``grayscale``: not in the paper, an option of the demo recipe that
keeps a visible image's colour from being the only cue], to tensor,
normalise, random erasing (Zhong et al.: erased area 2-40 % of the image, aspect ratio 0.3-3.3,
each image erased with probability ``random_erasing``). The erased rectangle is filled with 0
after normalisation, i.e. with the preprocessing's mean colour (ImageNet's mean by default).
Test: resize, to tensor, normalise.

Example:
    >>> from PIL import Image
    >>> from cycletrans.preprocessing import Preprocessing
    >>> transform = build_transforms(Preprocessing(height=128, width=64), train=True)
    >>> transform(Image.new("RGB", (40, 100))).shape
    torch.Size([3, 128, 64])
"""

from __future__ import annotations

import torch
from PIL import Image
from torchvision import transforms

from cycletrans.preprocessing import Preprocessing

PAD = 10
PAD_FILL = 127  # the authors' code: T.Pad(10, fill=127) on the uint8 image
ERASE_SCALE = (0.02, 0.4)
ERASE_RATIO = (0.3, 3.3)


def build_transforms(
    preprocessing: Preprocessing,
    train: bool,
    random_erasing: float = 0.5,
    flip: bool = True,
    pad_crop: bool = False,
    grayscale: float = 0.0,
) -> transforms.Compose:
    """PIL RGB image -> normalised float tensor ``[3, H, W]``.

    Args:
        preprocessing: input size (H, W) and normalisation mean/std.
        train: add the training augmentations (the other arguments apply only then).
        random_erasing: probability of erasing a random rectangle (0 disables it).
        flip: random horizontal flip with probability 0.5.
        pad_crop: pad by 10 pixels of grey 127 and random-crop back to (H, W) (the authors'
            code: ``T.Pad(10, fill=127)``, ``T.RandomCrop``).
        grayscale: probability of turning the image grey (3 equal channels); infrared images
            are grey already.
    """
    for name, p in (("random_erasing", random_erasing), ("grayscale", grayscale)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} is a probability in [0, 1], got {p}")
    size = (preprocessing.height, preprocessing.width)
    steps: list = [transforms.Resize(size)]
    if train and flip:
        steps.append(transforms.RandomHorizontalFlip(p=0.5))
    if train and pad_crop:
        steps += [transforms.Pad(PAD, fill=PAD_FILL), transforms.RandomCrop(size)]
    if train and grayscale > 0:
        steps.append(transforms.RandomGrayscale(p=grayscale))
    steps += [
        transforms.ToTensor(),
        transforms.Normalize(mean=preprocessing.mean, std=preprocessing.std),
    ]
    if train and random_erasing > 0:
        steps.append(
            transforms.RandomErasing(
                p=random_erasing, scale=ERASE_SCALE, ratio=ERASE_RATIO, value=0
            )
        )
    return transforms.Compose(steps)


def image_batch(image: Image.Image, preprocessing: Preprocessing) -> torch.Tensor:
    """``[1, 3, H, W]``: one RGB PIL image with the test-time preprocessing (a model's input)."""
    if not isinstance(image, Image.Image) or image.mode != "RGB":
        kind = image.mode if isinstance(image, Image.Image) else type(image).__name__
        raise ValueError(f"expected an RGB PIL image, got {kind}")
    return build_transforms(preprocessing, train=False)(image)[None]
