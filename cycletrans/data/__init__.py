"""Datasets for VI-ReID: readers of the real layouts, a torch Dataset, sampler and transforms.

``SYSUMM01`` and ``RegDB`` read the datasets' own folder layouts (the synthetic set in
``cycletrans.data.synth`` writes the same layouts) into lists of :class:`ImageRecord`;
:func:`detect_dataset` tells the layout of a folder and :func:`split_records` reads one split;
:class:`ReIDDataset` turns records into training items; :class:`CrossModalitySampler` forms the
paper's P x (K visible + K infrared) batches; :func:`build_transforms` gives the augmentations.

Example:
    >>> from torch.utils.data import DataLoader
    >>> from cycletrans.preprocessing import Preprocessing
    >>> records = split_records("/data/SYSU-MM01", "sysu", "train")  # doctest: +SKIP
    >>> transform = build_transforms(Preprocessing(), train=True)
    >>> train = ReIDDataset(records, transform)  # doctest: +SKIP
    >>> sampler = CrossModalitySampler(train.labels, train.modalities)  # doctest: +SKIP
    >>> loader = DataLoader(train, batch_sampler=sampler, num_workers=4)  # doctest: +SKIP
"""

from __future__ import annotations

from cycletrans.data.dataset import ImageReadError, ReIDDataset, check_images, read_image
from cycletrans.data.discovery import detect_dataset, split_records
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
    "detect_dataset",
    "read_image",
    "split_records",
]
