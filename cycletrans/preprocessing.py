"""What a model expects of its input images: size and normalisation.

Saved in every checkpoint's JSON config, so that ``cycletrans.load_model`` returns a model
together with the exact test-time preprocessing it was trained with.

Example:
    >>> p = Preprocessing(height=128, width=64)
    >>> Preprocessing.from_dict(p.to_dict()) == p
    True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """Input size (pixels) and per-channel mean/std of the RGB input in [0, 1]."""

    height: int = 384
    width: int = 192
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        if self.height <= 0 or self.width <= 0:
            raise ValueError(f"input size must be positive, got {self.height}x{self.width}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError("mean and std need three values each, std positive")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessing:
        return cls(
            height=int(data["height"]),
            width=int(data["width"]),
            mean=tuple(float(x) for x in data["mean"]),
            std=tuple(float(x) for x in data["std"]),
        )
