"""A dataset's test split with its models' features, cached on disk by what they depend on.

- :func:`load_split`: the test split (default: the generated demo set, made on first use in the
  cycletrans cache) and its key, a digest of everything the features depend on (dataset,
  trial, root, every test image's path, identity, camera, frame, size and modification time);
- :func:`digest_index`: SHA-256 of each test image's bytes -> its index, so that a file whose
  bytes equal a test image is known to be that image;
- :func:`cached_features`: a model's test features from ``<cache>/features/<split key>-
  <checkpoint digest>.npz``, extracted with ``cycletrans.engine.inference.extract_features``
  on a miss. A changed checkpoint or dataset is never served stale features.

Example (the demo set):
    >>> split = load_split()  # doctest: +SKIP
    >>> len(split.records), split.protocol  # doctest: +SKIP
    (1402, 'sysu')
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from cycletrans.data.images import file_digest
from cycletrans.data.records import ImageRecord
from cycletrans.engine.inference import FeatureSet


@dataclass(frozen=True)
class DatasetSplit:
    """A dataset's test split: ``protocol`` "sysu" (also the demo set) or "regdb"; ``records``
    visible images first, then infrared; ``key`` the digest of everything its features depend
    on (module docstring)."""

    protocol: str
    root: Path
    trial: int
    label: str
    records: list[ImageRecord]
    key: str


def checkpoint_digest(path: Path) -> str:
    """Digest of a checkpoint: its weights' and its JSON config's bytes."""
    digest = hashlib.sha256()
    for part in (path, path.with_suffix(".json")):
        digest.update(file_digest(part).encode())
    return digest.hexdigest()


def split_key(protocol: str, root: Path, trial: int, records: list[ImageRecord]) -> str:
    """Digest of what the test features depend on (module docstring)."""
    digest = hashlib.sha256(f"{protocol}|{trial}|{root.resolve()}".encode())
    for r in records:
        stat = os.stat(r.path)
        digest.update(
            f"\n{r.path}|{r.pid}|{r.cam}|{r.modality}|{r.frame}|{stat.st_size}|"
            f"{stat.st_mtime_ns}".encode()
        )
    return digest.hexdigest()


def load_split(
    data_root: str | Path | None = None,
    dataset: str | None = None,
    trial: int = 1,
    progress: bool = True,
) -> DatasetSplit:
    """The test split of ``data_root`` (default: the generated demo set, made on first use)."""
    from cycletrans.data import detect_dataset, split_records
    from cycletrans.engine.data import demo_data_root

    if data_root is None:
        if dataset not in (None, "sysu"):
            raise ValueError(
                f"the demo set has the SYSU-MM01 layout; --dataset {dataset} needs --data-root"
            )
        root, protocol, label = demo_data_root(progress=progress), "sysu", "demo synthetic set"
    else:
        root = Path(data_root).expanduser().resolve()
        protocol = dataset or detect_dataset(root)
        label = {"sysu": "SYSU-MM01", "regdb": f"RegDB (trial {trial})"}[protocol]
    # visible images first, then infrared (each in the reader's order): each modality's
    # features are then one block, and its subset (``analysis.retrieval.modality_halves``)
    # a view, not a second copy of the features
    records = sorted(split_records(root, protocol, "test", trial=trial), key=lambda r: r.modality)
    return DatasetSplit(
        protocol, Path(root), trial, label, records, split_key(protocol, Path(root), trial, records)
    )


def digest_index(records: list[ImageRecord], progress: bool = True) -> dict[str, int]:
    """SHA-256 digest of each test image's bytes -> its index (first one for duplicates)."""
    index: dict[str, int] = {}
    for i, r in enumerate(
        tqdm(records, desc="test image digests", disable=not progress, unit="img")
    ):
        index.setdefault(file_digest(r.path), i)
    return index


def cached_features(
    model: torch.nn.Module,
    digest: str,
    split: DatasetSplit,
    cache_dir: Path,
    device: str = "cpu",
    progress: bool = True,
    desc: str = "features",
) -> tuple[FeatureSet, bool]:
    """The model's test-split features (``digest``: its checkpoint's) and whether they came
    from the disk cache; extracted and saved on a miss."""
    from cycletrans.engine.inference import extract_features

    path = cache_dir / "features" / f"{split.protocol}-{split.key[:20]}-{digest[:20]}.npz"
    expected = np.array([r.path for r in split.records])
    if path.is_file():
        try:
            features = FeatureSet.load(path)
            if np.array_equal(features.paths, expected):
                return features, True
        except (ValueError, OSError):
            pass  # unreadable or foreign file: extract again
    features = extract_features(model, split.records, device=device, progress=progress, desc=desc)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.npz")
    features.save(tmp)
    os.replace(tmp, path)
    return features, False
