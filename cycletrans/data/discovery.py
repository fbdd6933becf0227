"""Which dataset a folder holds, and the image records of one of its splits.

Example:
    >>> root = "/data/SYSU-MM01"
    >>> test = split_records(root, detect_dataset(root), "test")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from cycletrans.data.records import ImageRecord
from cycletrans.data.regdb import RegDB
from cycletrans.data.sysu import SYSUMM01


def detect_dataset(root: str | Path) -> str:
    """``"sysu"`` for a SYSU-MM01 layout (``exp/``), ``"regdb"`` for RegDB's (``Visible/``)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data root {root} is not a folder")
    if (root / "exp").is_dir():
        return "sysu"
    if (root / "Visible").is_dir() or (root / "Thermal").is_dir():
        return "regdb"
    raise ValueError(
        f"cannot tell the dataset at {root}: expected SYSU-MM01's cam1..cam6/ and "
        f"exp/, or RegDB's Visible/ and Thermal/; pass --dataset"
    )


def split_records(root: str | Path, dataset: str, split: str, trial: int = 1) -> list[ImageRecord]:
    """The records of one split: ``test``, ``train`` (all training ids) or ``val`` (SYSU-MM01
    layout: its val ids)."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"unknown split {split!r}: expected train, val or test")
    if dataset == "regdb":
        if split == "val":
            raise ValueError("RegDB has no val split (train or test)")
        return getattr(RegDB(root, trial=trial), split)
    if dataset != "sysu":
        raise ValueError(f"unknown dataset {dataset!r}: expected 'sysu' or 'regdb'")
    return getattr(SYSUMM01(root, validation=split == "val"), split)
