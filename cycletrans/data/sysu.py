"""SYSU-MM01 reader for the dataset's own on-disk layout.

Layout (the real dataset and the project's synthetic set alike)::

    <root>/cam1 .. cam6/<pid:04d>/<nnnn>.jpg      one folder per person seen by that camera
    <root>/exp/train_id.txt, val_id.txt, test_id.txt   one line of comma-separated person ids

Cameras 1, 2, 4, 5 are visible and 3, 6 infrared. A person may be missing from some cameras
(no folder), but every listed id must appear in at least one camera. Training uses the train and
val ids together (395 on the real set) unless ``validation=True``. ``exp/available_id.txt`` is
not needed.

Example:
    >>> data = SYSUMM01("/data/SYSU-MM01")  # doctest: +SKIP
    >>> len(data.train_ids), len(data.test_ids)  # doctest: +SKIP
    (395, 96)
    >>> data.test[0]  # doctest: +SKIP
    ImageRecord(path='/data/SYSU-MM01/cam1/0006/0001.jpg', pid=6, cam=1, modality=0, frame=1)
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from cycletrans.data.records import ImageRecord, folder_records, preview
from cycletrans.modality import INFRARED, VISIBLE

CAMERAS = (1, 2, 3, 4, 5, 6)
INFRARED_CAMERAS = (3, 6)
SPLITS = ("train", "val", "test")
EXPECTED_LAYOUT = (
    "expected <root>/cam1..cam6/<pid:04d>/<nnnn>.jpg and <root>/exp/{train,val,test}_id.txt"
)


def camera_modality(cam: int) -> int:
    """Modality code of a SYSU-MM01 camera: 1 (infrared) for cameras 3 and 6, else 0."""
    if cam not in CAMERAS:
        raise ValueError(f"SYSU-MM01 cameras are 1..6, got {cam}")
    return INFRARED if cam in INFRARED_CAMERAS else VISIBLE


def read_id_file(path: str | Path) -> list[int]:
    """Person ids of a SYSU-MM01 ``exp/*_id.txt`` file, in file order.

    The file holds comma-separated integers (one line on the real dataset; several lines are
    accepted). Raises ``FileNotFoundError`` if it is missing and ``ValueError`` if it is empty,
    holds a token that is not a non-negative integer, or repeats an id.

    Example:
        >>> read_id_file("/data/SYSU-MM01/exp/test_id.txt")[:3]  # doctest: +SKIP
        [6, 10, 17]
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"id file not found: {path} (expected comma-separated person ids)")
    ids: list[int] = []
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        for token in line.split(","):
            token = token.strip()
            if not token.isdigit():
                raise ValueError(
                    f"{path}, line {line_no}: expected comma-separated non-negative integer ids, "
                    f"found {token!r}"
                )
            ids.append(int(token))
    if not ids:
        raise ValueError(f"{path}: expected comma-separated person ids, found an empty file")
    repeated = sorted(pid for pid, count in Counter(ids).items() if count > 1)
    if repeated:
        raise ValueError(f"{path}: ids listed more than once: {preview(repeated)}")
    return ids


class SYSUMM01:
    """The SYSU-MM01 dataset's image records, split by its ``exp/*_id.txt`` files.

    Every listed id must have images, except in a test-only copy (no train or val id has any,
    e.g. ``synth --ids test``), whose train and val splits are empty.

    Args:
        root: dataset folder holding ``cam1..cam6`` and ``exp``.
        validation: if True, ``train`` holds the train ids only and ``val`` the val ids; if False
            (default, the paper's setting) ``train`` holds train + val ids and ``val`` is empty.

    Attributes:
        root: the dataset folder (absolute).
        train, val, test: lists of :class:`ImageRecord`, sorted by (pid, cam, frame).
        train_ids, val_ids, test_ids: the sorted person ids of each split.
    """

    def __init__(self, root: str | Path, validation: bool = False) -> None:
        self.root = Path(root).expanduser().absolute()
        self.validation = validation
        _check_layout(self.root)
        ids = {split: read_id_file(self.root / "exp" / f"{split}_id.txt") for split in SPLITS}
        _check_disjoint(ids)
        if validation:
            self.train_ids, self.val_ids = sorted(ids["train"]), sorted(ids["val"])
        else:
            self.train_ids, self.val_ids = sorted(ids["train"] + ids["val"]), []
        self.test_ids = sorted(ids["test"])
        by_pid = {pid: _person_records(self.root, pid) for split in SPLITS for pid in ids[split]}
        absent = sorted(pid for pid, records in by_pid.items() if not records)
        training_ids = ids["train"] + ids["val"]
        if set(training_ids) <= set(absent):  # a test-only copy: empty train and val splits
            absent = sorted(set(absent) - set(training_ids))
        if absent:
            raise ValueError(
                f"SYSU-MM01 at {self.root}: ids listed in exp/*_id.txt but without images in any "
                f"camera (no <root>/camN/<pid:04d>/ folder with images): {preview(absent)}"
            )
        self.train = [r for pid in self.train_ids for r in by_pid[pid]]
        self.val = [r for pid in self.val_ids for r in by_pid[pid]]
        self.test = [r for pid in self.test_ids for r in by_pid[pid]]

    def __repr__(self) -> str:
        return (
            f"SYSUMM01(root='{self.root}', validation={self.validation}: "
            f"train {len(self.train_ids)} ids/{len(self.train)} images, "
            f"val {len(self.val_ids)} ids/{len(self.val)} images, "
            f"test {len(self.test_ids)} ids/{len(self.test)} images)"
        )


def _check_layout(root: Path) -> None:
    """Raise one FileNotFoundError naming every missing part of the layout."""
    if not root.is_dir():
        raise FileNotFoundError(f"SYSU-MM01 root {root} is not a folder; {EXPECTED_LAYOUT}")
    missing = [f"cam{cam}/" for cam in CAMERAS if not (root / f"cam{cam}").is_dir()]
    missing += [
        f"exp/{split}_id.txt"
        for split in SPLITS
        if not (root / "exp" / f"{split}_id.txt").is_file()
    ]
    if missing:
        found = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())
        raise FileNotFoundError(
            f"SYSU-MM01 layout not found at {root}: {EXPECTED_LAYOUT}; "
            f"missing: {', '.join(missing)}; found in root: {preview(found) or 'nothing'}"
        )


def _check_disjoint(ids: dict[str, list[int]]) -> None:
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1 :]:
            shared = sorted(set(ids[a]) & set(ids[b]))
            if shared:
                raise ValueError(
                    f"exp/{a}_id.txt and exp/{b}_id.txt share ids (splits must be disjoint): "
                    f"{preview(shared)}"
                )


def _person_records(root: Path, pid: int) -> list[ImageRecord]:
    """All images of one person, camera by camera, frames in file-name order."""
    records: list[ImageRecord] = []
    for cam in CAMERAS:
        folder = root / f"cam{cam}" / f"{pid:04d}"
        if folder.is_dir():
            records += folder_records(folder, pid, cam, camera_modality(cam))
    return records
