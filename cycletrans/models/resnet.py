"""ResNet backbones with last stride 1, returning the last feature map F_I ``[B, d, h, w]``.

``resnet50`` is the paper's backbone (last stride 1: a 384x192 image gives a 24x12 map with
d = 2048); ``resnet18`` (last stride 1, d = 512) is the small one; ``resnet18_slim`` is ResNet-18
at 3/8 of its width (24-48-96-192 channels, d = 192, 1.6 M parameters, no ImageNet weights),
the backbone of the shipped CPU demo models (three of them fit in under 30 MB); ``agw`` is
AGW's two-stream ResNet-50 (see ``cycletrans.models.agw``).

ImageNet weights come from torchvision's weights API and the torch.hub cache; when they can
not be obtained, a RuntimeError says which file is expected where. There is no silent
fallback to random weights.

Example:
    >>> import torch
    >>> net = ResNetBackbone("resnet18")
    >>> net(torch.zeros(1, 3, 64, 32), torch.zeros(1, dtype=torch.long)).shape
    torch.Size([1, 512, 4, 2])
"""

from __future__ import annotations

import os

import torch
from torch import nn
from torchvision.models import ResNet, ResNet18_Weights, ResNet50_Weights, resnet18, resnet50
from torchvision.models.resnet import BasicBlock

from cycletrans.models.stages import Backbone

RESNETS = ("resnet50", "resnet18", "resnet18_slim")
SLIM_WIDTH = 24  # channels of resnet18_slim's first stage (ResNet-18: 64)

_RESNETS = {
    "resnet50": (resnet50, ResNet50_Weights.IMAGENET1K_V1),
    "resnet18": (resnet18, ResNet18_Weights.IMAGENET1K_V1),
}


def imagenet_state_dict(arch: str) -> dict[str, torch.Tensor]:
    """Return torchvision's ImageNet weights of ``arch`` ("resnet50" or "resnet18").

    Raises:
        RuntimeError: the weights are neither in the torch.hub cache nor downloadable; the
            message names the expected file and how to provide it.
    """
    weights = _RESNETS[arch][1]
    expected = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(weights.url))
    try:
        return weights.get_state_dict(progress=True, check_hash=True)
    except Exception as err:
        raise RuntimeError(
            f"could not obtain the ImageNet weights of {arch} ({weights}): expected the file "
            f"{expected} in the torch.hub cache. On a machine with network access download "
            f"{weights.url} to that path (or point TORCH_HOME at a cache that holds it), or "
            f"build the model with pretrained=False. Cause: {err}"
        ) from err


def slim_resnet18(width: int = SLIM_WIDTH) -> ResNet:
    """ResNet-18 with ``width``, 2, 4, 8 x ``width`` channels in its four stages (torchvision's
    blocks and initialisation)."""
    net = resnet18(weights=None)
    widths = [width * 2**i for i in range(4)]
    net.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
    net.bn1 = nn.BatchNorm2d(widths[0])
    stages = []
    for i, planes in enumerate(widths):
        inplanes, stride = widths[max(i - 1, 0)], 1 if i == 0 else 2
        shortcut = (
            None
            if i == 0
            else nn.Sequential(
                nn.Conv2d(inplanes, planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )
        )
        stages.append(
            nn.Sequential(
                BasicBlock(inplanes, planes, stride, shortcut), BasicBlock(planes, planes)
            )
        )
    net.layer1, net.layer2, net.layer3, net.layer4 = stages
    net.fc = nn.Linear(widths[-1], net.fc.out_features)
    for module in net.modules():  # torchvision's ResNet initialisation
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    return net


def resnet_trunk(arch: str, pretrained: bool = False) -> ResNet:
    """A ResNet whose last stage keeps the resolution (last stride 1)."""
    if arch == "resnet18_slim":
        if pretrained:
            raise ValueError("resnet18_slim has no ImageNet weights: use pretrained=False")
        net = slim_resnet18()
    else:
        net = _RESNETS[arch][0](weights=None)
    if pretrained:
        net.load_state_dict(imagenet_state_dict(arch))
    for module in net.layer4[0].modules():  # the strided conv and its downsample shortcut
        if isinstance(module, nn.Conv2d) and module.stride == (2, 2):
            module.stride = (1, 1)
    return net


class ResNetBackbone(Backbone):
    """Single-stream ResNet with last stride 1: ``images [B,3,H,W] -> F_I [B,d,H/16,W/16]``."""

    def __init__(self, arch: str = "resnet50", pretrained: bool = False) -> None:
        super().__init__()
        net = resnet_trunk(arch, pretrained)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            net.layer1,
            net.layer2,
            net.layer3,
            net.layer4,
        )
        self.out_channels: int = net.fc.in_features

    def stages(self) -> list[nn.Module]:
        return [self.stem, self.layer1, self.layer2, self.layer3, self.layer4]

    def forward(self, images: torch.Tensor, modalities: torch.Tensor | None = None) -> torch.Tensor:
        """``images [B,3,H,W]`` -> ``F_I [B,d,h,w]``; ``modalities`` is ignored."""
        x = self.stem(images)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))
