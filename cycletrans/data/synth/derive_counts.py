"""Derive ``sysu_counts.csv`` (the ``sysu`` preset's table) from SYSU-MM01's split files.

The real per-(camera, identity) image counts are the lengths of the permutations in the official
``rand_perm_cam.mat`` (cell ``{cam}{pid}`` is 10 x n_images, empty when the person is absent);
the split comes from the dataset's ``exp/{train,val,test}_id.txt``. Identities with images but in
no split are marked ``unused`` (SYSU-MM01 ships their folders too; 45,863 images in all).
Only this derivation reads the real files; the generator reads the shipped CSV.

Usage::

    python -m cycletrans.data.synth.derive_counts RAND_PERM_CAM.mat EXP_DIR OUT.csv
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from cycletrans.data.synth.presets import SPLITS


def read_id_list(path: str | Path) -> list[int]:
    """Read one SYSU-MM01 ``exp/*_id.txt`` file: one line of comma-separated ids."""
    text = Path(path).read_text().strip()
    return [int(x) for x in text.split(",") if x.strip()]


def derive_sysu_counts(
    mat_path: str | Path, exp_dir: str | Path
) -> list[tuple[int, str, tuple[int, ...]]]:
    """Return ``(pid, split, (n_cam1..n_cam6))`` for every id with images, sorted by pid."""
    from scipy.io import loadmat

    cells = loadmat(str(mat_path))["rand_perm_cam"]
    if cells.shape[0] != 6:
        raise ValueError(
            f"{mat_path}: expected 6 camera cells in rand_perm_cam, found {cells.shape[0]}"
        )
    split_of = {
        pid: name for name in SPLITS for pid in read_id_list(Path(exp_dir) / f"{name}_id.txt")
    }
    counts: dict[int, list[int]] = {}
    for cam in range(6):
        column = cells[cam, 0]
        for index in range(column.shape[0]):
            perm = column[index, 0]
            if perm.size:
                counts.setdefault(index + 1, [0] * 6)[cam] = int(perm.shape[1])
    return [(pid, split_of.get(pid, "unused"), tuple(counts[pid])) for pid in sorted(counts)]


def write_counts_csv(rows: list[tuple[int, str, tuple[int, ...]]], path: str | Path) -> None:
    """Write ``rows`` as CSV with columns ``pid, split, n_cam1..n_cam6``."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["pid", "split", *(f"n_cam{c}" for c in range(1, 7))])
        writer.writerows([pid, split, *counts] for pid, split, counts in rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mat", help="rand_perm_cam.mat of SYSU-MM01")
    parser.add_argument("exp_dir", help="SYSU-MM01's exp/ folder (train/val/test_id.txt)")
    parser.add_argument("out", help="CSV to write")
    args = parser.parse_args(argv)
    write_counts_csv(derive_sysu_counts(args.mat, args.exp_dir), args.out)


if __name__ == "__main__":
    main()
