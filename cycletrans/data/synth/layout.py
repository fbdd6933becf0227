"""Write the synthetic set as a SYSU-MM01 or a RegDB folder tree (``generate``).

SYSU-MM01 layout (``layout="sysu"``)::

    DIR/cam1..cam6/<pid:04d>/<nnnn>.jpg        nnnn = 0001, 0002, ... per (camera, identity)
    DIR/exp/{train,val,test,available}_id.txt  one line of comma-separated ids
    DIR/exp/attributes.csv                     one row per identity (what defines the person)
    DIR/exp/synth.json                         preset, seed, generator version, size, counts,
                                               which ids were written, and "complete"

RegDB layout (``layout="regdb"``)::

    DIR/Visible/<id>/<sex>_<view>_v_<id:05d>_<n>.bmp   10 per identity (camera 1)
    DIR/Thermal/<id>/<sex>_<view>_t_<id:05d>_<n>.bmp   10 per identity (camera 2)
    DIR/idx/{train,test}_{visible,thermal}_{1..10}.txt lines "Visible/<id>/<file>.bmp <label>"
    DIR/attributes.csv, DIR/synth.json

Infrared images are written as 3-channel grey images (R = G = B), like the real datasets'
files; readers convert to RGB either way. The n-th visible and thermal RegDB images of an
identity share one pose, as RegDB's dual-camera frames do.

Every image depends only on (seed, pid, camera, n): an identity's files are byte-identical
whether generated alone (``ids=[pid]`` or ``ids="test"``) or with all others, with or without
worker processes. Files are fully rewritten; JPEG quality is fixed and no metadata is written.

Example:
    >>> summary = generate("/tmp/synth-demo", preset="demo", ids="test")  # doctest: +SKIP
    >>> summary.images, round(summary.images_per_second)  # doctest: +SKIP
    (1372, 310)
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from cycletrans.data.synth.identities import ATTRIBUTE_COLUMNS, attribute_row, sample_identity
from cycletrans.data.synth.presets import (
    REGDB_CAMERAS,
    SPLITS,
    SYSU_CAMERAS,
    Plan,
    Preset,
    get_preset,
    plan,
)
from cycletrans.data.synth.render import render, sample_pose
from cycletrans.data.synth.streams import LOOK, POSE, REGDB_TRIAL, check_seed, stream

GENERATOR_VERSION = "1.0"
LAYOUTS = ("sysu", "regdb")
REGDB_IMAGES = 10  # visible and thermal images per identity
REGDB_TRIALS = 10


@dataclass(frozen=True)
class _Job:
    """One image: its identity, camera, 1-based index, output path, and pose camera key."""

    pid: int
    cam: int
    n: int
    path: str  # relative to the output folder
    pose_cam: int  # the POSE stream key: the camera itself, or 0 for a RegDB pair


@dataclass(frozen=True)
class Summary:
    """What ``generate`` wrote: image count, wall time, and the output folder."""

    out_dir: Path
    images: int
    seconds: float

    @property
    def images_per_second(self) -> float:
        return self.images / max(self.seconds, 1e-9)


def _regdb_name(seed: int, preset: Preset, pid: int, n: int, thermal: bool) -> str:
    person = sample_identity(seed, pid)
    pose = sample_pose(stream(seed, POSE, pid, 0, n), person, preset.nuisance)
    return f"{person.sex}_{pose.view}_{'t' if thermal else 'v'}_{pid:05d}_{n}.bmp"


def _jobs(layout: str, seed: int, preset: Preset, pid: int, counts: tuple[int, ...]) -> list[_Job]:
    """All images of one identity."""
    if layout == "sysu":
        return [
            _Job(pid, cam, n, f"cam{cam}/{pid:04d}/{n:04d}.jpg", cam)
            for cam in range(1, 7)
            for n in range(1, counts[cam - 1] + 1)
        ]
    return [
        _Job(pid, cam, n, f"{folder}/{pid}/{_regdb_name(seed, preset, pid, n, cam == 2)}", 0)
        for cam, folder in ((1, "Visible"), (2, "Thermal"))
        for n in range(1, REGDB_IMAGES + 1)
    ]


def _encode(image: np.ndarray, path: str, quality: int) -> bytes:
    buffer = io.BytesIO()
    if path.endswith(".jpg"):
        Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    else:
        Image.fromarray(image).save(buffer, format="BMP")
    return buffer.getvalue()


def _write_identity(task: tuple[Path, str, int, Preset, list[_Job]]) -> int:
    """Render and write all images of one identity (``jobs`` share one pid); returns the count."""
    out, layout, seed, preset, jobs = task
    cameras = SYSU_CAMERAS if layout == "sysu" else REGDB_CAMERAS
    person = sample_identity(seed, jobs[0].pid) if jobs else None
    for job in jobs:
        pose = sample_pose(
            stream(seed, POSE, job.pid, job.pose_cam, job.n), person, preset.nuisance
        )
        look = stream(seed, LOOK, job.pid, job.cam, job.n)
        image = render(person, cameras[job.cam], pose, look, preset, seed)
        path = out / job.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_encode(image, job.path, preset.jpeg_quality))
    return len(jobs)


def _select(
    ids: str | Iterable[int] | None, the_plan: Plan, layout: str, universe: list[int]
) -> tuple[list[int], str | list[int]]:
    """The pids to generate and how synth.json names them."""
    if ids is None or (isinstance(ids, str) and ids == "all"):
        return universe, "all"
    if isinstance(ids, str) and ids == "test":
        if layout != "sysu":
            raise ValueError(
                "ids='test' needs the sysu layout: RegDB's test half changes with "
                "the trial; pass a list of ids instead"
            )
        return the_plan.splits["test"], "test"
    if isinstance(ids, str):
        raise ValueError(f"ids must be 'all', 'test' or a list of ids, got {ids!r}")
    ids = list(ids)
    if any(isinstance(i, bool) or not isinstance(i, (int, np.integer)) for i in ids):
        raise ValueError(f"ids must be integers, got {ids[:10]!r}")
    chosen = sorted({int(i) for i in ids})
    unknown = sorted(set(chosen) - set(universe))
    if unknown or not chosen:
        raise ValueError(
            f"ids must be a non-empty subset of the preset's {len(universe)} ids "
            f"({universe[0]}..{universe[-1]}); unknown: {unknown[:10]}"
        )
    return chosen, chosen


def _check_out_dir(out: Path, meta: dict) -> None:
    """Refuse to write into a folder holding something other than this same dataset."""
    if not out.exists():
        return
    if not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    marker = out / ("exp/synth.json" if meta["layout"] == "sysu" else "synth.json")
    if marker.exists():
        old = json.loads(marker.read_text())
        keys = ("version", "preset", "seed", "layout", "image_size")
        if any(old.get(k) != meta[k] for k in keys):
            raise FileExistsError(
                f"{out} holds another synthetic set "
                f"({ {k: old.get(k) for k in keys} }); expected "
                f"{ {k: meta[k] for k in keys} } or an empty folder"
            )
    elif any(out.iterdir()):
        raise FileExistsError(
            f"{out} is not empty and holds no synthetic set (no "
            f"{marker.relative_to(out)}): choose an empty or new folder"
        )


def _write_attributes(path: Path, seed: int, pids: list[int], split_of: dict[int, str]) -> None:
    with open(path, "w", newline="") as f:
        columns = ["pid", "split", *ATTRIBUTE_COLUMNS[1:]]
        writer = csv.DictWriter(f, columns, lineterminator="\n")
        writer.writeheader()
        for pid in pids:
            writer.writerow(
                {**attribute_row(sample_identity(seed, pid)), "split": split_of.get(pid, "")}
            )


def _write_sysu_meta(out: Path, the_plan: Plan, seed: int) -> None:
    exp = out / "exp"
    exp.mkdir(parents=True, exist_ok=True)
    for name, pids in (
        *((s, the_plan.splits[s]) for s in SPLITS),
        ("available", the_plan.available),
    ):
        (exp / f"{name}_id.txt").write_text(",".join(str(p) for p in pids) + "\n")
    split_of = {pid: name for name, pids in the_plan.splits.items() for pid in pids}
    _write_attributes(exp / "attributes.csv", seed, sorted(the_plan.counts), split_of)


def regdb_trials(seed: int, pids: list[int]) -> list[tuple[list[int], list[int]]]:
    """The 10 seeded (train ids, test ids) halves of ``pids`` (train gets the smaller half)."""
    out = []
    for trial in range(1, REGDB_TRIALS + 1):
        order = stream(seed, REGDB_TRIAL, trial).permutation(np.asarray(pids))
        half = len(pids) // 2
        out.append((sorted(int(p) for p in order[:half]), sorted(int(p) for p in order[half:])))
    return out


def _write_regdb_meta(out: Path, seed: int, preset: Preset, pids: list[int]) -> None:
    idx = out / "idx"
    idx.mkdir(parents=True, exist_ok=True)
    names = {
        (pid, thermal): sorted(
            _regdb_name(seed, preset, pid, n, thermal) for n in range(1, REGDB_IMAGES + 1)
        )
        for pid in pids
        for thermal in (False, True)
    }
    for trial, halves in enumerate(regdb_trials(seed, pids), start=1):
        for split, split_ids in zip(("train", "test"), halves, strict=True):
            for thermal, folder in ((False, "Visible"), (True, "Thermal")):
                lines = [
                    f"{folder}/{pid}/{name} {label}"
                    for label, pid in enumerate(split_ids)
                    for name in names[pid, thermal]
                ]
                modality = "thermal" if thermal else "visible"
                (idx / f"{split}_{modality}_{trial}.txt").write_text("\n".join(lines) + "\n")
    _write_attributes(out / "attributes.csv", seed, pids, {})


def generate(
    out_dir: str | Path,
    preset: str | Preset = "demo",
    seed: int = 0,
    layout: str = "sysu",
    ids: str | Iterable[int] | None = None,
    progress: bool = True,
    workers: int = 1,
) -> Summary:
    """Generate the synthetic visible/infrared pedestrian set into ``out_dir``.

    Args:
        out_dir: output folder (created; must be new, empty, or hold this same dataset).
        preset: ``"demo"``, ``"sysu"`` or a :class:`Preset`.
        seed: non-negative integer; the same seed gives byte-identical files.
        layout: ``"sysu"`` (SYSU-MM01 tree) or ``"regdb"`` (RegDB tree).
        ids: ``None``/``"all"``, ``"test"`` (SYSU test identities only), or a list of pids.
        progress: show a tqdm progress bar.
        workers: processes rendering in parallel (the output does not depend on it).

    Returns:
        a :class:`Summary` (images written, seconds, images per second).

    Example:
        >>> s = generate("/tmp/synth", "demo", seed=0, ids="test", progress=False)  # doctest: +SKIP
        >>> sorted(p.name for p in s.out_dir.iterdir())  # doctest: +SKIP
        ['cam1', 'cam2', 'cam3', 'cam4', 'cam5', 'cam6', 'exp']
    """
    the_preset, seed = get_preset(preset), check_seed(seed)
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}: expected one of {LAYOUTS}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    the_plan = plan(the_preset, seed)
    universe = sorted(the_plan.counts) if layout == "sysu" else the_plan.available
    pids, ids_meta = _select(ids, the_plan, layout, universe)
    per_cam = np.sum([the_plan.counts[p] for p in universe], axis=0)
    meta = {
        "generator": "cycletrans.data.synth",
        "version": GENERATOR_VERSION,
        "preset": the_preset.name,
        "seed": seed,
        "layout": layout,
        "image_size": [the_preset.height, the_preset.width],
        "ids": ids_meta,
        "identities": (
            {s: len(the_plan.splits[s]) for s in (*SPLITS, "unused")}
            if layout == "sysu"
            else {"all": len(universe)}
        ),
        "images": (
            {f"cam{c}": int(per_cam[c - 1]) for c in range(1, 7)}
            if layout == "sysu"
            else {"visible": REGDB_IMAGES * len(universe), "thermal": REGDB_IMAGES * len(universe)}
        ),
    }
    out = Path(out_dir)
    _check_out_dir(out, meta)
    out.mkdir(parents=True, exist_ok=True)
    marker = out / "exp" / "synth.json" if layout == "sysu" else out / "synth.json"
    folders = [f"cam{c}" for c in range(1, 7)] if layout == "sysu" else ["Visible", "Thermal"]
    for folder in folders:  # every camera folder exists, even one without images
        (out / folder).mkdir(exist_ok=True)
    if layout == "sysu":
        _write_sysu_meta(out, the_plan, seed)
    else:
        _write_regdb_meta(out, seed, the_preset, universe)
    # Written first (so an interrupted run can be resumed), marked complete at the end.
    marker.write_text(json.dumps({**meta, "complete": False}, indent=2) + "\n")
    tasks = [
        (out, layout, seed, the_preset, _jobs(layout, seed, the_preset, pid, the_plan.counts[pid]))
        for pid in pids
    ]
    total = sum(len(t[-1]) for t in tasks)
    start = time.perf_counter()
    with tqdm(total=total, unit="img", disable=not progress, desc="synth") as bar:
        if workers == 1:
            for task in tasks:
                bar.update(_write_identity(task))
        else:
            with multiprocessing.get_context("spawn").Pool(workers) as pool:
                for done in pool.imap_unordered(_write_identity, tasks):
                    bar.update(done)
    seconds = time.perf_counter() - start
    marker.write_text(json.dumps({**meta, "complete": True}, indent=2) + "\n")
    return Summary(out, total, seconds)
