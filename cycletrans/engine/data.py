"""Training data for a run: the splits, the cached demo set, and resume-proof augmentation.

Augmentation randomness must not depend on DataLoader worker seeding or on where a run was
resumed. :class:`SeededBatches` pairs each index of the :class:`CrossModalitySampler`'s batches
with a seed derived from ``(seed, epoch, step, rank, slot)`` (:func:`item_seeds`), and
:class:`SeededDataset` seeds torch's and python's generators with it (inside a forked generator
state, so the process's own generators are untouched) before loading and transforming the item.
The same batch therefore always gets the same flips and erasings, on any number of workers,
whether the epoch ran in one go or was resumed in the middle.

Example:
    >>> item_seeds(seed=0, epoch=3, step=5, rank=0, count=2) == item_seeds(0, 3, 5, 0, 2)
    True
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from cycletrans.data import SYSUMM01, RegDB
from cycletrans.data.records import ImageRecord
from cycletrans.data.sampler import CrossModalitySampler
from cycletrans.engine.config import TrainConfig

DEMO_DATA_SEED = 0


@dataclass(frozen=True)
class Splits:
    """The image records of one run: ``val`` is empty without validation."""

    root: str
    train: list[ImageRecord]
    val: list[ImageRecord]
    test: list[ImageRecord]


def cache_dir() -> Path:
    """``$CYCLETRANS_CACHE`` if set, else ``~/.cache/cycletrans``."""
    return Path(os.environ.get("CYCLETRANS_CACHE") or Path.home() / ".cache" / "cycletrans")


def demo_data_root(progress: bool = True) -> Path:
    """The generated demo set (SYSU-MM01 layout), generated on first use.

    It lives in ``<cache_dir()>/synth/demo-seed0``. Generation writes into a temporary sibling
    folder that is renamed when complete, so a killed generation is never taken for a finished
    one (its leftover temporary folder is simply ignored).
    """
    from cycletrans.data.synth import generate

    target = cache_dir() / "synth" / f"demo-seed{DEMO_DATA_SEED}"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    generate(
        tmp,
        preset="demo",
        seed=DEMO_DATA_SEED,
        layout="sysu",
        progress=progress,
        workers=min(4, os.cpu_count() or 1),
    )
    try:
        tmp.rename(target)
    except OSError:  # another process finished first: keep its copy
        if not target.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_splits(config: TrainConfig, root: str | Path) -> Splits:
    """Read the dataset at ``root`` and split it as the config asks.

    SYSU-MM01 layout: train = train + val ids, or train ids and val = val ids with
    ``validation``. RegDB: trial ``config.trial``; with ``validation`` a seeded
    ``val_fraction`` of the training ids (at least one) is held out as ``val``.
    """
    if config.dataset == "sysu":
        data = SYSUMM01(root, validation=config.validation)
        return Splits(str(data.root), data.train, data.val, data.test)
    data = RegDB(root, trial=config.trial)
    if not config.validation:
        return Splits(str(data.root), data.train, [], data.test)
    ids = np.random.default_rng([config.seed, config.trial]).permutation(data.train_ids)
    held = set(ids[: max(1, round(config.val_fraction * len(ids)))].tolist())
    train = [r for r in data.train if r.pid not in held]
    val = [r for r in data.train if r.pid in held]
    return Splits(str(data.root), train, val, data.test)


def item_seeds(seed: int, epoch: int, step: int, rank: int, count: int) -> list[int]:
    """``count`` per-item augmentation seeds of one batch, from (seed, epoch, step, rank)."""
    state = np.random.SeedSequence([seed, epoch, step, rank]).generate_state(count, np.uint64)
    return [int(s) & 0x7FFF_FFFF_FFFF_FFFF for s in state]


class SeededBatches(Sampler[list[tuple[int, int]]]):
    """Batch sampler yielding ``[(index, item_seed), ...]`` for a :class:`SeededDataset`.

    Wraps a :class:`CrossModalitySampler` positioned at ``(epoch, position)`` (its
    ``load_state_dict``); batch ``step`` of the epoch gets :func:`item_seeds` of step ``step``.
    """

    def __init__(self, sampler: CrossModalitySampler, seed: int, epoch: int, position: int) -> None:
        self.sampler, self.seed, self.epoch, self.position = sampler, seed, epoch, position

    def __len__(self) -> int:
        return len(self.sampler) - self.position

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        self.sampler.load_state_dict({"epoch": self.epoch, "position": self.position})
        for step, batch in enumerate(self.sampler, start=self.position):
            seeds = item_seeds(self.seed, self.epoch, step, self.sampler.rank, len(batch))
            yield list(zip(batch, seeds, strict=True))


class SeededDataset(Dataset):
    """Dataset wrapper: item ``(index, seed)`` is ``dataset[index]`` with generators seeded.

    Torch's and python's global generators are seeded with ``seed`` for the duration of the
    item (then restored), so random transforms depend on the seed alone.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: Sequence[int]) -> Any:
        index, seed = key
        python_state = random.getstate()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            random.seed(seed)
            try:
                return self.dataset[index]
            finally:
                random.setstate(python_state)
