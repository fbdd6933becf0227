"""AGW's two-stream ResNet-50 (Ye et al., TPAMI 2021), the backbone of CycleTrans* in Tables IV-VI.

Each modality has its own stem (conv1, bn1, relu, maxpool); layer1-4 are shared (last stride 1);
non-local blocks follow the last 2 blocks of layer2 and the last 3 blocks of layer3. A mixed
batch is split by modality for the stems and put back in its original order.

Non-local block: theta, phi, g are 1x1 convs to half the channels; the output W is a 1x1 conv
followed by a BatchNorm whose weight and bias start at zero, so every block starts as the
identity. The pairwise function is AGW's released one by default, ``pairwise="dot"``
(theta^T phi divided by the number of positions N); ``pairwise="embedded_gaussian"`` uses a
softmax over positions instead (Wang et al., CVPR 2018).

Example:
    >>> import torch
    >>> net = AGWBackbone()
    >>> images, modalities = torch.zeros(2, 3, 64, 32), torch.tensor([0, 1])
    >>> net(images, modalities).shape
    torch.Size([2, 2048, 4, 2])
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from cycletrans.models.resnet import resnet_trunk
from cycletrans.models.stages import Backbone

PAIRWISE = ("dot", "embedded_gaussian")


class NonLocalBlock(nn.Module):
    """Non-local block ``x [B,C,H,W] -> x + W(y) [B,C,H,W]``, identity at initialisation."""

    def __init__(self, channels: int, pairwise: str = "dot") -> None:
        super().__init__()
        if pairwise not in PAIRWISE:
            raise ValueError(f"unknown pairwise function {pairwise!r}; valid: {PAIRWISE}")
        inner = channels // 2
        self.pairwise = pairwise
        self.theta = nn.Conv2d(channels, inner, 1)
        self.phi = nn.Conv2d(channels, inner, 1)
        self.g = nn.Conv2d(channels, inner, 1)
        self.W = nn.Sequential(nn.Conv2d(inner, channels, 1), nn.BatchNorm2d(channels))
        nn.init.zeros_(self.W[1].weight)
        nn.init.zeros_(self.W[1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        theta = self.theta(x).flatten(2).transpose(1, 2)  # [B, N, C/2]
        phi = self.phi(x).flatten(2)  # [B, C/2, N]
        g = self.g(x).flatten(2).transpose(1, 2)  # [B, N, C/2]
        f = theta @ phi  # [B, N, N]
        f = f / f.shape[-1] if self.pairwise == "dot" else f.softmax(dim=-1)
        y = (f @ g).transpose(1, 2).reshape(b, -1, h, w)
        return x + self.W(y)


def _with_non_local(stage: nn.Sequential, count: int, pairwise: str) -> nn.Sequential:
    """The blocks of ``stage`` with a non-local block after each of its last ``count``."""
    channels = stage[-1].conv3.out_channels
    blocks: list[nn.Module] = []
    for i, block in enumerate(stage):
        blocks.append(block)
        if i >= len(stage) - count:
            blocks.append(NonLocalBlock(channels, pairwise))
    return nn.Sequential(*blocks)


class AGWBackbone(Backbone):
    """AGW two-stream ResNet-50: ``(images [B,3,H,W], modalities [B]) -> F_I [B,2048,h,w]``."""

    def __init__(self, pretrained: bool = False, pairwise: str = "dot") -> None:
        super().__init__()
        net = resnet_trunk("resnet50", pretrained)
        stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.stems = nn.ModuleList([stem, copy.deepcopy(stem)])  # visible (0), infrared (1)
        self.layer1 = net.layer1
        self.layer2 = _with_non_local(net.layer2, 2, pairwise)
        self.layer3 = _with_non_local(net.layer3, 3, pairwise)
        self.layer4 = net.layer4
        self.out_channels: int = net.fc.in_features

    def forward(self, images: torch.Tensor, modalities: torch.Tensor) -> torch.Tensor:
        """Route each image through its modality's stem, then the shared layers."""
        if modalities is None or modalities.shape != images.shape[:1]:
            raise ValueError(
                "AGW needs one modality code per image: expected modalities of shape "
                f"{tuple(images.shape[:1])}, got "
                f"{None if modalities is None else tuple(modalities.shape)}"
            )
        parts, order = [], []
        for code, stem in enumerate(self.stems):
            idx = (modalities == code).nonzero().squeeze(1)
            if idx.numel():
                parts.append(stem(images[idx]))
                order.append(idx)
        if sum(len(i) for i in order) != len(images):
            raise ValueError(f"modality codes must be 0 or 1, got {modalities.unique().tolist()}")
        x = torch.cat(parts)[torch.argsort(torch.cat(order))]
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def stages(self) -> list[nn.Module]:
        return [self.stems, self.layer1, self.layer2, self.layer3, self.layer4]
