"""``Backbone``: what every backbone shares, its stages in input order and freezing the first.

Freezing keeps the first stages as they were loaded (ImageNet weights): no gradients, and their
BatchNorm layers stay in eval mode so that their statistics do not move either. The CPU demo
recipe freezes MobileNetV2's first two stages (the high-resolution ones, 38 % of a training
step's time) to fit its budget; the paper fine-tunes everything (0, the default).

Example:
    >>> from cycletrans.models.backbones import build_backbone
    >>> net = build_backbone("resnet18")
    >>> net.freeze(2)
    >>> [any(p.requires_grad for p in s.parameters()) for s in net.stages()]
    [False, False, True, True, True]
"""

from __future__ import annotations

from torch import nn


class Backbone(nn.Module):
    """Base of the backbones: ``stages()`` in input order, ``last_stage``, ``freeze(count)``."""

    out_channels: int
    output_stride: int = 16  # every backbone here: last stride 1
    frozen: int = 0

    def stages(self) -> list[nn.Module]:
        """The stages in input order; the last one's output is F_I."""
        raise NotImplementedError

    @property
    def last_stage(self) -> nn.Module:
        """The last stage, the Grad-CAM target."""
        return self.stages()[-1]

    def freeze(self, count: int) -> None:
        """Keep the first ``count`` stages fixed (weights and BatchNorm statistics)."""
        stages = self.stages()
        if isinstance(count, bool) or not 0 <= count < len(stages):
            raise ValueError(
                f"can freeze 0..{len(stages) - 1} of this backbone's "
                f"{len(stages)} stages, got {count!r}"
            )
        self.frozen = count
        for stage in stages[:count]:
            stage.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> Backbone:
        super().train(mode)
        for stage in self.stages()[: self.frozen]:
            stage.eval()
        return self
