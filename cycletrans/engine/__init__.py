"""Training engine: configs, the training loop, resume state, DDP helpers, feature extraction.

- ``config``: :class:`TrainConfig`, the presets (``sysu``, ``regdb``, ``demo``) and
  :func:`resolve_config`.
- ``trainer``: :func:`train` (single process or DDP under torchrun, resumable).
- ``state``: the atomic, ``weights_only`` resume state.
- ``distributed``: process-group helpers.
- ``data``: the run's splits, the cached demo set, resume-proof per-item augmentation seeds.
- ``inference``: :func:`extract_features` (returns a :class:`FeatureSet`).

Example:
    >>> from cycletrans.engine import resolve_config, train
    >>> result = train(resolve_config("demo", {"epochs": 1}))  # doctest: +SKIP
"""

from cycletrans.engine.config import PRESETS, TrainConfig, learning_rate, resolve_config
from cycletrans.engine.inference import FeatureSet, extract_features
from cycletrans.engine.trainer import (
    NonFiniteLossError,
    StoppedBySignalError,
    TrainingError,
    TrainResult,
    train,
)

__all__ = [
    "PRESETS",
    "FeatureSet",
    "NonFiniteLossError",
    "StoppedBySignalError",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "extract_features",
    "learning_rate",
    "resolve_config",
    "train",
]
