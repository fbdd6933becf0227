"""A torch Dataset over image records, with contiguous training labels.

Images are always read as 3-channel RGB (:func:`read_image`), whatever their mode on disk:
infrared/thermal images stored as single-channel files get their grey value in all three
channels. A file that cannot be read raises :class:`ImageReadError` naming it, also from a
DataLoader worker; :func:`check_images` finds every such file before a long run starts.

Example:
    >>> from cycletrans.data import SYSUMM01, build_transforms
    >>> from cycletrans.preprocessing import Preprocessing
    >>> data = SYSUMM01("/data/SYSU-MM01")  # doctest: +SKIP
    >>> transform = build_transforms(Preprocessing(), train=True)
    >>> train = ReIDDataset(data.train, transform)  # doctest: +SKIP
    >>> image, label, modality, index = train[0]  # doctest: +SKIP
    >>> image.shape, train.num_classes  # doctest: +SKIP
    (torch.Size([3, 384, 192]), 395)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision.transforms.functional import to_tensor
from tqdm import tqdm

from cycletrans.data.records import ImageRecord, preview

# What PIL raises for a file it cannot read (a broken PNG chunk is a SyntaxError).
_PIL_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


class ImageReadError(ValueError):
    """An image file that cannot be read; the message names the file."""

    def __init__(self, message: str) -> None:
        # From a DataLoader worker this type arrives rebuilt from "Caught ImageReadError in
        # DataLoader worker ...\nOriginal Traceback ...": keep the original one-line message.
        if message.startswith(f"Caught {type(self).__name__}"):
            message = message.strip().splitlines()[-1].partition(f"{type(self).__name__}: ")[2]
        super().__init__(message)


def _reason(path: str | Path, error: Exception) -> str:
    if isinstance(error, FileNotFoundError):
        return "no such file"
    if isinstance(error, UnidentifiedImageError):
        empty = Path(path).stat().st_size == 0
        return "empty file (0 bytes)" if empty else "not an image format PIL can read"
    return str(error)


def read_image(path: str | Path) -> Image.Image:
    """Open an image file as a 3-channel RGB PIL image (grey images get 3 equal channels)."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except _PIL_ERRORS as error:
        raise ImageReadError(f"cannot read image {path}: {_reason(path, error)}") from None


def _read_header(path: str | Path) -> None:
    try:
        with Image.open(path):
            pass
    except _PIL_ERRORS as error:
        raise ImageReadError(f"cannot read image {path}: {_reason(path, error)}") from None


def check_images(
    paths: Sequence[str | Path], decode: bool = False, workers: int = 1, progress: bool = False
) -> None:
    """Raise :class:`ImageReadError` listing the images that cannot be read.

    Without ``decode`` only each file's header is read: empty files, other formats and cut
    headers are found, a JPEG truncated after its header is not. With ``decode`` every image
    is decoded in full (``workers`` threads).
    """
    check = read_image if decode else _read_header

    def problem(path: str | Path) -> str | None:
        try:
            check(path)
        except ImageReadError as error:
            return str(error).removeprefix("cannot read image ")
        return None

    with ThreadPoolExecutor(max(1, workers)) as pool:
        found = tqdm(
            pool.map(problem, paths),
            total=len(paths),
            disable=not progress,
            desc="checking images",
            unit="img",
            leave=False,
        )
        problems = [p for p in found if p is not None]
    if problems:
        raise ImageReadError(
            f"{len(problems)} of {len(paths)} images cannot be read: {preview(problems, 3)}"
        )


class ReIDDataset(Dataset):
    """Items ``(image, label, modality, index)`` for a list of :class:`ImageRecord`.

    Args:
        records: the images, e.g. ``SYSUMM01(root).train``.
        transform: applied to the RGB PIL image; without one, the item's image is the
            ``[3, H, W]`` float tensor in [0, 1] of the file's own size.

    Attributes:
        records: the records, in the given order (``index`` is the position in this list).
        pids: sorted person ids; ``pids[label]`` is the person id of a label.
        pid_to_label: person id -> contiguous label 0..C-1 (sorted pid order).
        labels: ``[N]`` int64 array, the label of every record.
        modalities: ``[N]`` int64 array, 0 visible / 1 infrared for every record.
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        transform: Callable[[Image.Image], Any] | None = None,
    ) -> None:
        if len(records) == 0:
            raise ValueError("ReIDDataset needs at least one image record, got none")
        self.records = list(records)
        self.transform = transform
        self.pids = sorted({r.pid for r in self.records})
        self.pid_to_label = {pid: label for label, pid in enumerate(self.pids)}
        self.labels = np.array([self.pid_to_label[r.pid] for r in self.records], dtype=np.int64)
        self.modalities = np.array([r.modality for r in self.records], dtype=np.int64)

    @property
    def num_classes(self) -> int:
        """Number of distinct persons C."""
        return len(self.pids)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[torch.Tensor | Any, int, int, int]:
        """``(image [3, H, W], label, modality, index)`` of record ``index``."""
        record = self.records[index]
        image = read_image(record.path)
        image = self.transform(image) if self.transform is not None else to_tensor(image)
        return image, int(self.labels[index]), record.modality, index
