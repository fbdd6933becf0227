"""Datasets for VI-ReID: readers of the real layouts, a torch Dataset, sampler and transforms.

``SYSUMM01`` and ``RegDB`` read the datasets' own folder layouts (the synthetic set in
``cycletrans.data.synth`` writes the same layouts) into lists of :class:`ImageRecord`;
:class:`ReIDDataset` turns records into training items; :class:`CrossModalitySampler` forms the
paper's P x (K visible + K infrared) batches; :func:`build_transforms` gives the augmentations.

Example:
    >>> from torch.utils.data import DataLoader
    >>> from cycletrans.preprocessing import Preprocessing
    >>> data = load_dataset("sysu", "/data/SYSU-MM01")  # doctest: +SKIP
    >>> transform = build_transforms(Preprocessing(), train=True)
    >>> train = ReIDDataset(data.train, transform)  # doctest: +SKIP
    >>> sampler = CrossModalitySampler(train.labels, train.modalities)  # doctest: +SKIP
    >>> loader = DataLoader(train, batch_sampler=sampler, num_workers=4)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from cycletrans.data.dataset import ImageReadError, ReIDDataset, check_images, read_image
from cycletrans.data.records import ImageRecord
from cycletrans.data.regdb import RegDB
from cycletrans.data.sampler import CrossModalitySampler
from cycletrans.data.sysu import SYSUMM01
from cycletrans.data.transforms import build_transforms

__all__ = [
    "SYSUMM01",
    "CrossModalitySampler",
    "ImageReadError",
    "ImageRecord",
    "ReIDDataset",
    "RegDB",
    "build_transforms",
    "check_images",
    "load_dataset",
    "read_image",
]

_READERS = {"sysu": SYSUMM01, "sysu-mm01": SYSUMM01, "sysumm01": SYSUMM01, "regdb": RegDB}


def load_dataset(name: str, root: str | Path, **kwargs) -> SYSUMM01 | RegDB:
    """Read a dataset by name: ``"sysu"`` -> ``SYSUMM01(root, **kwargs)`` (e.g.
    ``validation=True``), ``"regdb"`` -> ``RegDB(root, **kwargs)`` (e.g. ``trial=3``)."""
    reader = _READERS.get(name.lower())
    if reader is None:
        raise ValueError(f"unknown dataset {name!r}: expected 'sysu' or 'regdb'")
    return reader(root, **kwargs)
