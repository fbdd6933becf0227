"""build_transforms: sizes, normalisation, and augmentations in training only."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cycletrans.data import build_transforms
from cycletrans.preprocessing import Preprocessing

PRE = Preprocessing(height=16, width=8)


def left_right_image() -> Image.Image:
    """A 20x10 (HxW) image, white on its left half and black on its right half."""
    pixels = np.zeros((20, 10, 3), dtype=np.uint8)
    pixels[:, :5] = 255
    return Image.fromarray(pixels)


def is_flipped(out: torch.Tensor) -> bool:
    """True when the bright half of the left/right image ended up on the right."""
    return bool(out[:, :, 4:].mean() > out[:, :, :4].mean())


@pytest.mark.parametrize("train", [True, False])
def test_output_is_normalised_tensor_of_the_preprocessing_size(train):
    out = build_transforms(PRE, train=train)(Image.new("RGB", (30, 50)))
    assert out.dtype == torch.float32
    assert out.shape == (3, 16, 8)


def test_test_transform_is_resize_to_tensor_normalise():
    pre = Preprocessing(height=4, width=2, mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0))
    out = build_transforms(pre, train=False)(Image.new("RGB", (6, 12), (255, 255, 255)))
    expected = torch.tensor([(1 - 0.5) / 0.25, (1 - 0.5) / 0.5, (1 - 0.5) / 1.0])
    assert torch.allclose(out, expected.view(3, 1, 1).expand(3, 4, 2))


def test_train_transform_flips_some_images_and_test_transform_never():
    torch.manual_seed(0)
    train = build_transforms(PRE, train=True, random_erasing=0.0)
    test = build_transforms(PRE, train=False)
    train_flips = [is_flipped(train(left_right_image())) for _ in range(40)]
    assert 5 < sum(train_flips) < 35
    assert not any(is_flipped(test(left_right_image())) for _ in range(40))


def test_flip_false_never_flips():
    torch.manual_seed(0)
    train = build_transforms(PRE, train=True, random_erasing=0.0, flip=False)
    assert not any(is_flipped(train(left_right_image())) for _ in range(40))


def test_random_erasing_fills_a_rectangle_with_the_mean_in_train_only():
    white = Image.new("RGB", (8, 16), (255, 255, 255))  # normalised value is never 0
    torch.manual_seed(0)
    train = build_transforms(PRE, train=True, random_erasing=1.0, flip=False)
    for _ in range(10):
        erased = train(white) == 0  # 0 after normalisation = the mean colour
        assert erased.any()
        assert (erased == erased[:1]).all()  # all three channels together
        rows, cols = erased[0].nonzero(as_tuple=True)
        box = erased[0, rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert box.all()  # one solid rectangle
    test = build_transforms(PRE, train=False, random_erasing=1.0)
    assert not (test(white) == 0).any()


def test_random_erasing_zero_erases_nothing():
    white = Image.new("RGB", (8, 16), (255, 255, 255))
    train = build_transforms(PRE, train=True, random_erasing=0.0)
    assert not any((train(white) == 0).any() for _ in range(20))


def padded_crops(pixels: np.ndarray, pad: int, fill: int) -> dict[tuple[int, int], np.ndarray]:
    """Every (top, left) crop of ``pixels`` [H, W, 3] padded by ``pad`` with ``fill``."""
    h, w, _ = pixels.shape
    padded = np.full((h + 2 * pad, w + 2 * pad, 3), fill, dtype=np.uint8)
    padded[pad : pad + h, pad : pad + w] = pixels
    return {
        (top, left): padded[top : top + h, left : left + w]
        for top in range(2 * pad + 1)
        for left in range(2 * pad + 1)
    }


def test_pad_crop_is_the_authors_pad_10_with_grey_127_then_a_random_crop():
    # an image already of the preprocessing size (the resize leaves it as it is), wider than
    # the padding so that every crop shows some of it
    pre = Preprocessing(height=24, width=24)
    pixels = np.random.default_rng(0).integers(0, 100, size=(24, 24, 3), dtype=np.uint8)
    test = build_transforms(pre, train=False)  # to tensor + normalise, as the train transform
    crops = {
        place: test(Image.fromarray(crop))
        for place, crop in padded_crops(pixels, pad=10, fill=127).items()
    }
    torch.manual_seed(0)
    train = build_transforms(pre, train=True, random_erasing=0.0, flip=False, pad_crop=True)
    places = []
    for _ in range(30):
        out = train(Image.fromarray(pixels))
        matches = [place for place, crop in crops.items() if torch.equal(out, crop)]
        assert len(matches) == 1  # exactly one crop of the grey-padded image
        places.append(matches[0])
    assert len(set(places)) > 10  # the crop's place is random
    assert any(place != (10, 10) for place in places)  # some crops show the grey border


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_erasing_probability_outside_0_1_raises(p):
    with pytest.raises(ValueError, match=r"probability in \[0, 1\]"):
        build_transforms(PRE, train=True, random_erasing=p)
