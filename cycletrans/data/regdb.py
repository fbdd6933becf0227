"""RegDB reader for the dataset's own on-disk layout, with its 10 official trials.

Layout (the real dataset and the project's synthetic set alike)::

    <root>/Visible/<id>/<name>.bmp            10 visible images per person (camera 1)
    <root>/Thermal/<id>/<name>.bmp            10 thermal images per person (camera 2, infrared)
    <root>/idx/{train,test}_{visible,thermal}_{1..10}.txt   optional; lines
                                              "Visible/<id>/<name>.bmp <label>"

Trial ``t`` trains on the ``train_*_t`` lists and tests on ``test_*_t``. The label in an idx line
is the 0-based identity label within that list; records keep the person id of the folder
(``<id>``) and the reader checks that labels and folders agree one to one.

Without ``idx/`` the reader makes the 10 splits itself (and writes nothing into the dataset
folder): trial ``t`` permutes the sorted person ids with
``numpy.random.default_rng(REGDB_SPLIT_SEED + t).permutation`` (``REGDB_SPLIT_SEED = 0``, so
seeds 1..10); the first ``n // 2`` ids of the permutation train (206 of the real 412) and the
other ``n - n // 2`` test. Every image of a person belongs to that person's split.

Example:
    >>> data = RegDB("/data/RegDB", trial=1)  # doctest: +SKIP
    >>> len(data.train_ids), len(data.test_ids), len(data.test)  # doctest: +SKIP
    (206, 206, 4120)
"""

from __future__ import annotations

from numbers import Integral
from pathlib import Path, PurePosixPath

import numpy as np

from cycletrans.data.records import ImageRecord, folder_records, preview
from cycletrans.modality import INFRARED, VISIBLE

NUM_TRIALS = 10
REGDB_SPLIT_SEED = 0
# (folder name, name in idx file names, camera, modality)
MODALITY_FOLDERS = (("Visible", "visible", 1, VISIBLE), ("Thermal", "thermal", 2, INFRARED))
EXPECTED_LAYOUT = (
    "expected <root>/Visible/<id>/*.bmp, <root>/Thermal/<id>/*.bmp and optionally "
    "<root>/idx/{train,test}_{visible,thermal}_{1..10}.txt"
)


class RegDB:
    """The RegDB dataset's image records for one trial.

    Args:
        root: dataset folder holding ``Visible``, ``Thermal`` and optionally ``idx``.
        trial: 1..10; which train/test split to read.

    Attributes:
        root: the dataset folder (absolute).
        trial: the trial number.
        split_source: ``"idx"`` (official lists read from ``idx/``) or ``"seeded"``.
        train, test: lists of :class:`ImageRecord`, sorted by (pid, cam, frame).
        train_ids, test_ids: the sorted person ids of each split.
    """

    def __init__(self, root: str | Path, trial: int = 1) -> None:
        valid = isinstance(trial, Integral) and not isinstance(trial, bool)
        if not valid or not 1 <= trial <= NUM_TRIALS:
            raise ValueError(f"RegDB trial must be an integer in 1..{NUM_TRIALS}, got {trial!r}")
        self.root = Path(root).expanduser().absolute()
        self.trial = trial = int(trial)
        folders = _person_folders(self.root)
        people = {pid: _person_records(self.root, name, pid) for pid, name in folders.items()}
        empty = sorted(pid for pid, by_modality in people.items() if not all(by_modality.values()))
        if empty:
            raise ValueError(
                f"RegDB at {self.root}: person folders without images (expected images in both "
                f"Visible/<id>/ and Thermal/<id>/): {preview(empty)}"
            )
        if (self.root / "idx").is_dir():
            self.split_source = "idx"
            self.train = _idx_records(self.root, "train", trial, people)
            self.test = _idx_records(self.root, "test", trial, people)
            self.train_ids = sorted({r.pid for r in self.train})
            self.test_ids = sorted({r.pid for r in self.test})
            shared = sorted(set(self.train_ids) & set(self.test_ids))
            if shared:
                raise ValueError(
                    f"RegDB trial {trial}: idx train and test lists share ids (they must be "
                    f"disjoint): {preview(shared)}"
                )
        else:
            self.split_source = "seeded"
            self.train_ids, self.test_ids = seeded_split(sorted(people), trial)
            self.train = [r for pid in self.train_ids for rs in people[pid].values() for r in rs]
            self.test = [r for pid in self.test_ids for rs in people[pid].values() for r in rs]

    def __repr__(self) -> str:
        return (
            f"RegDB(root='{self.root}', trial={self.trial}, split={self.split_source}: "
            f"train {len(self.train_ids)} ids/{len(self.train)} images, "
            f"test {len(self.test_ids)} ids/{len(self.test)} images)"
        )


def seeded_split(ids: list[int], trial: int) -> tuple[list[int], list[int]]:
    """Split person ids in two halves for a trial, as RegDB does when ``idx/`` is absent.

    The sorted ids are permuted with ``numpy.random.default_rng(REGDB_SPLIT_SEED + trial)``; the
    first ``len(ids) // 2`` are the training ids, the rest the test ids (both returned sorted).

    Example:
        >>> train, test = seeded_split(list(range(1, 413)), trial=1)
        >>> len(train), len(test), set(train) & set(test)
        (206, 206, set())
    """
    if len(ids) < 2:
        raise ValueError(f"a RegDB split needs at least 2 person ids, found {len(ids)}")
    order = np.random.default_rng(REGDB_SPLIT_SEED + trial).permutation(sorted(ids))
    half = len(ids) // 2
    return sorted(order[:half].tolist()), sorted(order[half:].tolist())


def _person_folders(root: Path) -> dict[int, str]:
    """Person id -> folder name, checked to exist under both Visible/ and Thermal/."""
    if not root.is_dir():
        raise FileNotFoundError(f"RegDB root {root} is not a folder; {EXPECTED_LAYOUT}")
    missing = [name + "/" for name, *_ in MODALITY_FOLDERS if not (root / name).is_dir()]
    if missing:
        found = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())
        raise FileNotFoundError(
            f"RegDB layout not found at {root}: {EXPECTED_LAYOUT}; missing: {', '.join(missing)}; "
            f"found in root: {preview(found) or 'nothing'}"
        )
    per_modality = {}
    for name, *_ in MODALITY_FOLDERS:
        subfolders = sorted(p.name for p in (root / name).iterdir() if p.is_dir())
        bad = [s for s in subfolders if not s.isdigit()]
        if bad:
            raise ValueError(
                f"RegDB at {root}: {name}/ must hold one folder per integer person id; "
                f"found {preview(bad)}"
            )
        per_modality[name] = {int(s): s for s in subfolders}
    visible, thermal = per_modality["Visible"], per_modality["Thermal"]
    if visible.keys() != thermal.keys() or not visible:
        only_v = sorted(visible.keys() - thermal.keys())
        only_t = sorted(thermal.keys() - visible.keys())
        raise ValueError(
            f"RegDB at {root}: Visible/ and Thermal/ must hold folders for the same person ids "
            f"(at least one); only in Visible/: {preview(only_v) or 'none'}; "
            f"only in Thermal/: {preview(only_t) or 'none'}"
        )
    return visible


def _person_records(root: Path, folder: str, pid: int) -> dict[int, list[ImageRecord]]:
    """Modality code -> records of one person's Visible/<folder> and Thermal/<folder> images."""
    return {
        modality: folder_records(root / name / folder, pid, cam, modality)
        for name, _, cam, modality in MODALITY_FOLDERS
    }


def _idx_records(
    root: Path, split: str, trial: int, people: dict[int, dict[int, list[ImageRecord]]]
) -> list[ImageRecord]:
    """Records listed by ``idx/<split>_{visible,thermal}_<trial>.txt``, both modalities."""
    records: list[ImageRecord] = []
    for folder_name, idx_name, _, modality in MODALITY_FOLDERS:
        path = root / "idx" / f"{split}_{idx_name}_{trial}.txt"
        if not path.is_file():
            raise FileNotFoundError(
                f"RegDB idx file {path} not found; {EXPECTED_LAYOUT} (with idx/, all 40 lists)"
            )
        label_of_pid: dict[int, int] = {}
        pid_of_label: dict[int, int] = {}
        for line_no, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{path}, line {line_no}"
            fields = line.rsplit(maxsplit=1)
            parts = PurePosixPath(fields[0]).parts
            if len(fields) != 2 or not fields[1].lstrip("-").isdigit() or len(parts) != 3:
                raise ValueError(
                    f"{where}: expected '{folder_name}/<id>/<file> <label>', found {line.strip()!r}"
                )
            if parts[0] != folder_name or not parts[1].isdigit():
                raise ValueError(
                    f"{where}: expected a path '{folder_name}/<id>/<file>', found {fields[0]!r}"
                )
            pid, label = int(parts[1]), int(fields[1])
            record = next(
                (r for r in people.get(pid, {}).get(modality, []) if Path(r.path).name == parts[2]),
                None,
            )
            if record is None:
                raise FileNotFoundError(f"{where}: image {root / fields[0]} does not exist")
            if label_of_pid.setdefault(pid, label) != label or (
                pid_of_label.setdefault(label, pid) != pid
            ):
                raise ValueError(
                    f"{where}: label {label} for person {pid} disagrees with earlier lines "
                    f"(each person folder must have one label and each label one person)"
                )
            records.append(record)
    return sorted(records, key=lambda r: (r.pid, r.cam, r.frame))
