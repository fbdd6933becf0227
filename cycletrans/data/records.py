"""One image of a VI-ReID dataset, and listing the images of one camera/identity folder.

Both dataset readers (SYSU-MM01, RegDB) describe every image by an :class:`ImageRecord`. The
``frame`` field is the 1-based position of the image in its camera/identity folder in file-name
order, which is how SYSU-MM01's official ``rand_perm_cam.mat`` indexes images.

Example:
    >>> r = ImageRecord(path="/data/sysu/cam3/0001/0002.jpg", pid=1, cam=3, modality=1, frame=2)
    >>> r.modality, r.frame
    (1, 2)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


@dataclass(frozen=True)
class ImageRecord:
    """One image: where it is and who/what it shows."""

    path: str  # absolute image path
    pid: int  # the dataset's person id (not relabelled)
    cam: int  # camera number (SYSU 1..6; RegDB 1 visible, 2 thermal)
    modality: int  # 0 visible, 1 infrared
    frame: int  # 1-based position of the image in its camera/id folder, file-name order


def image_files(folder: Path) -> list[Path]:
    """Image files (``.jpg/.jpeg/.png/.bmp``, any case) directly in ``folder``, by file name."""
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
        key=lambda p: p.name,
    )


def folder_records(folder: Path, pid: int, cam: int, modality: int) -> list[ImageRecord]:
    """Records of every image in one camera/identity folder, ``frame`` = 1-based file-name rank.

    Args:
        folder: the folder holding one person's images from one camera (absolute or relative).
        pid: the person id the folder belongs to.
        cam: the camera number.
        modality: 0 visible, 1 infrared.
    """
    folder = folder.absolute()
    return [
        ImageRecord(path=str(path), pid=pid, cam=cam, modality=modality, frame=frame)
        for frame, path in enumerate(image_files(folder), start=1)
    ]


def preview(items: list, limit: int = 10) -> str:
    """The first ``limit`` items comma-separated, plus a count of the rest (for error messages)."""
    shown = ", ".join(str(x) for x in items[:limit])
    return shown + (f" ... ({len(items) - limit} more)" if len(items) > limit else "")
