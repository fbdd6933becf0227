"""SYSU-MM01's official evaluation: all / indoor search x single / multi-shot, over 10 trials.

Queries are every test image of the infrared cameras 3 and 6 (3,803 on the real set). Each trial
draws a visible gallery: for every (gallery camera, person), ``shots`` images (1 = single-shot,
10 = multi-shot), from cameras 1, 2, 4, 5 (all-search: 301 / 3,010 images) or 1, 2
(indoor-search: 112 / 1,120). The metrics are :func:`~cycletrans.evaluation.rank_metrics` with
protocol ``"sysu"`` (camera-3 queries skip camera 2, repeated ids removed for CMC), averaged over
the trials.

Which images a trial picks (``rand_perm_cam``):

- ``"auto"`` (default): the official picks of ``rand_perm_cam.mat`` (Wu et al.; a copy ships as
  package data in ``cycletrans/evaluation/sysu_mm01/``) when the images fit that file exactly,
  i.e. every (gallery camera, person) has the file's number of images with frames 1..n, as real
  SYSU-MM01 does; otherwise (e.g. the synthetic set) seeded random picks, with an
  :class:`UnofficialPicksWarning`. The result's ``gallery_source`` says which picks were used
  and ``gallery_note`` why.
- ``"official"`` or a path to a ``rand_perm_cam.mat``: that file, and a ``ValueError`` if the
  images do not fit it (rather than a wrong evaluation).
- ``None``: seeded random picks (a uniformly random permutation of each person's images per
  camera and trial, drawn from ``numpy.random.default_rng(seed)``).

Row t of the file's entry for (camera, person) is a 1-based permutation of that person's images in
that camera in file-name order, i.e. of our ``frames``; the gallery of trial t takes its first
``shots`` entries. Gallery images are ordered by their position in the input arrays (ties in
distance are broken by that order).

Example:
    >>> ids, cams, frames = sysu_image_table([6, 10, 17])  # real counts, no images needed
    >>> feats = np.random.default_rng(0).normal(size=(ids.size, 16))
    >>> r = evaluate_sysu(feats, ids, cams, frames, mode="all", shots=1, trials=2)
    >>> r["num_queries"], r["gallery_size"], r["gallery_source"]
    (120, 10, 'official')

On real data, pass the test split (``SYSUMM01(root).test``) and its model features.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from importlib.resources import as_file, files
from pathlib import Path
from typing import NamedTuple

import numpy as np
import scipy.io

from cycletrans.evaluation.metrics import (
    SUMMARY_KEYS,
    mean_metrics,
    pairwise_distance,
    ranked_metrics,
)

SYSU_SETTINGS = [("all", 1), ("all", 10), ("indoor", 1), ("indoor", 10)]
QUERY_CAMS = (3, 6)
GALLERY_CAMS = {"all": (1, 2, 4, 5), "indoor": (1, 2)}
# package data: found the same way in a source checkout and after ``pip install``
OFFICIAL_RAND_PERM_CAM = files("cycletrans.evaluation") / "sysu_mm01" / "rand_perm_cam.mat"

RandPerm = dict[tuple[int, int], np.ndarray]


class UnofficialPicksWarning(UserWarning):
    """``rand_perm_cam="auto"`` fell back to seeded random gallery picks (not the official ones)."""


def load_rand_perm_cam(path: str | Path = "official") -> RandPerm:
    """Read SYSU-MM01's ``rand_perm_cam.mat``: (camera, person id) -> ``[trials, n]`` permutations.

    Args:
        path: the .mat file, or ``"official"`` for the copy shipped with the package.

    Returns:
        dict from ``(cam, pid)`` to an int64 ``[10, n]`` array whose row t is trial t's 1-based
        permutation of that person's ``n`` images in that camera; persons a camera never saw
        are left out.

    Example:
        >>> perm = load_rand_perm_cam()
        >>> perm[(1, 6)].shape
        (10, 42)
    """
    resource = OFFICIAL_RAND_PERM_CAM if str(path) == "official" else Path(path)
    if not resource.is_file():
        raise FileNotFoundError(
            f"rand_perm_cam file not found: {resource} (expected SYSU-MM01's rand_perm_cam.mat)"
        )
    with as_file(resource) as local:
        content = scipy.io.loadmat(str(local))
    cells = content.get("rand_perm_cam")
    if cells is None or cells.dtype != object or cells.size != 6:
        raise ValueError(
            f"{resource}: expected a variable 'rand_perm_cam' holding a cell per camera (6), found "
            f"{sorted(k for k in content if not k.startswith('__'))}"
        )
    perm: RandPerm = {}
    for cam, cell in enumerate(cells.reshape(-1), start=1):
        for pid, rows in enumerate(cell.reshape(-1), start=1):
            rows = np.asarray(rows, dtype=np.int64)
            if rows.size == 0:
                continue
            n = rows.shape[-1]
            if rows.ndim != 2 or (np.sort(rows, axis=1) != np.arange(1, n + 1)).any():
                raise ValueError(
                    f"{resource}: camera {cam}, person {pid}: expected rows that permute 1..n, "
                    f"found an array of shape {rows.shape}"
                )
            perm[(cam, pid)] = rows
    return perm


def sysu_image_table(
    pids: np.ndarray | list[int], rand_perm_cam: str | Path = "official"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The image list of these persons implied by ``rand_perm_cam.mat`` (no images needed).

    The file's permutation lengths are the real numbers of images per (camera, person), so this
    gives the ids, cameras and frames the real test split has, ordered by (pid, cam, frame) like
    ``SYSUMM01(root).test``.

    Returns:
        ``(ids, cams, frames)``, three int64 ``[N]`` arrays.

    Example:
        >>> ids, cams, frames = sysu_image_table([6, 10])
        >>> ids.size, frames[:3].tolist()
        (295, [1, 2, 3])
    """
    perm = load_rand_perm_cam(rand_perm_cam)
    table = []
    for pid in pids:
        sizes = [(cam, perm[(cam, pid)].shape[1]) for cam in range(1, 7) if (cam, pid) in perm]
        if not sizes:
            raise ValueError(f"person {pid} has no images in the rand_perm_cam file")
        table += [(pid, cam, frame) for cam, n in sizes for frame in range(1, n + 1)]
    ids, cams, frames = np.array(table, dtype=np.int64).reshape(-1, 3).T
    return ids, cams, frames


def sysu_gallery_indices(
    ids: np.ndarray,
    cams: np.ndarray,
    frames: np.ndarray,
    mode: str = "all",
    shots: int = 1,
    trials: int = 10,
    rand_perm_cam: str | Path | None = "auto",
    seed: int = 0,
) -> np.ndarray:
    """Each trial's gallery as indices into the given images (module docstring for the rules).

    Args:
        ids, cams, frames: ``[N]`` person id, camera (1..6) and 1-based frame of each test image.
        mode: ``"all"`` (cameras 1, 2, 4, 5) or ``"indoor"`` (cameras 1, 2).
        shots: images per (gallery camera, person): 1 (single-shot) or 10 (multi-shot); fewer
            when the person has fewer images in that camera.
        trials: number of trials (at most 10 with the official file).
        rand_perm_cam: ``"auto"``, ``"official"``, a path to a ``rand_perm_cam.mat``, or None.
        seed: seed of the random picks.

    Returns:
        int64 ``[trials, G]``: row t lists trial t's gallery images, ascending.

    Example:
        >>> ids, cams, frames = sysu_image_table([6, 10])
        >>> sysu_gallery_indices(ids, cams, frames, "indoor", 10).shape
        (10, 40)
    """
    split = _check_split(ids, cams, frames)
    gallery = _gallery(*split, mode, shots, trials, _picks_table(rand_perm_cam), seed)
    _warn_unofficial([gallery])
    return gallery.indices


def evaluate_sysu(
    features: np.ndarray,
    ids: np.ndarray,
    cams: np.ndarray,
    frames: np.ndarray,
    mode: str = "all",
    shots: int = 1,
    trials: int = 10,
    rand_perm_cam: str | Path | None = "auto",
    seed: int = 0,
    metric: str = "euclidean",
) -> dict:
    """Evaluate test-split features by SYSU-MM01's protocol in one (mode, shots) setting.

    The query x candidate distance matrix is computed once (candidates = every image some trial
    puts in its gallery); each trial ranks its columns. :func:`evaluate_sysu_settings` does
    several settings on one distance matrix.

    Args:
        features: ``[N, D]`` features of the test split's images (only the test ids: queries are
            every image of cameras 3 and 6).
        ids, cams, frames: ``[N]`` person id, camera and 1-based frame of each image.
        mode, shots, trials, rand_perm_cam, seed: see :func:`sysu_gallery_indices`.
        metric: ``"euclidean"`` (default) or ``"cosine"``, see
            :func:`~cycletrans.evaluation.pairwise_distance`.

    Returns:
        dict with the mean over trials of ``r1, r5, r10, r20, mAP, mINP``; ``per_trial`` (one
        dict of those keys plus ``num_valid`` per trial); ``num_queries``, ``gallery_size``,
        ``gallery_source`` (``"official"``, ``"random(seed=...)"`` or ``"file <path>"``),
        ``gallery_note`` (why: a sentence), ``mode``, ``shots``, ``metric``. With ``"auto"``,
        random picks also raise an :class:`UnofficialPicksWarning`.

    Example:
        >>> ids, cams, frames = sysu_image_table([6, 10])
        >>> feats = np.random.default_rng(0).normal(size=(ids.size, 8))
        >>> evaluate_sysu(feats, ids, cams, frames, "all", 1, trials=2)["gallery_size"]
        8
    """
    return evaluate_sysu_settings(
        features, ids, cams, frames, [(mode, shots)], trials, rand_perm_cam, seed, metric
    )[(mode, shots)]


def evaluate_sysu_settings(
    features: np.ndarray,
    ids: np.ndarray,
    cams: np.ndarray,
    frames: np.ndarray,
    settings: Sequence[tuple[str, int]] = tuple(SYSU_SETTINGS),
    trials: int = 10,
    rand_perm_cam: str | Path | None = "auto",
    seed: int = 0,
    metric: str = "euclidean",
) -> dict[tuple[str, int], dict]:
    """:func:`evaluate_sysu` for several (mode, shots) settings, sharing one distance matrix.

    Returns:
        ``{(mode, shots): result}`` with one :func:`evaluate_sysu` result per setting.

    Example:
        >>> ids, cams, frames = sysu_image_table([6, 10])
        >>> feats = np.random.default_rng(0).normal(size=(ids.size, 8))
        >>> results = evaluate_sysu_settings(feats, ids, cams, frames, trials=2)
        >>> [results[s]["gallery_size"] for s in SYSU_SETTINGS]
        [8, 80, 4, 40]
    """
    ids, cams, frames = _check_split(ids, cams, frames)
    features = np.asarray(features)
    if features.ndim != 2 or features.shape[0] != ids.size:
        raise ValueError(
            f"features must be [N, D] with N = {ids.size} (one row per image), "
            f"got shape {features.shape}"
        )
    # queries grouped by camera: each location's rows are one slice of the distance matrix
    query = np.concatenate([np.flatnonzero(cams == cam) for cam in QUERY_CAMS])
    if query.size == 0:
        raise ValueError(f"no query images: none of the images is from cameras {QUERY_CAMS}")
    picks_from = _picks_table(rand_perm_cam)
    galleries = {
        (mode, shots): _gallery(ids, cams, frames, mode, shots, trials, picks_from, seed)
        for mode, shots in settings
    }
    _warn_unofficial(list(galleries.values()))
    candidates = np.unique(np.concatenate([g.indices.reshape(-1) for g in galleries.values()]))
    dist = pairwise_distance(features[query], features[candidates], metric)
    if not np.isfinite(dist).all():
        raise ValueError("features give NaN or infinite distances (NaN/inf/huge features?)")

    def trial_metrics(gallery: np.ndarray) -> dict:
        columns = np.searchsorted(candidates, gallery)  # ascending, like gallery
        m = ranked_metrics(
            dist, ids[query], ids[gallery], cams[query], cams[gallery], "sysu", columns=columns
        )
        return {**{k: m[k] for k in SUMMARY_KEYS}, "num_valid": m["num_valid"]}

    # The trials are independent and NumPy's sorts release the GIL: rank them on all cores.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        ranked = {
            setting: pool.map(trial_metrics, gallery.indices)
            for setting, gallery in galleries.items()
        }
        ranked = {setting: list(trials_out) for setting, trials_out in ranked.items()}
    results = {}
    for (mode, shots), gallery in galleries.items():
        per_trial = ranked[(mode, shots)]
        results[(mode, shots)] = {
            **mean_metrics(per_trial),
            "per_trial": per_trial,
            "num_queries": int(query.size),
            "gallery_size": int(gallery.indices.shape[1]),
            "gallery_source": gallery.source,
            "gallery_note": gallery.note,
            "mode": mode,
            "shots": shots,
            "metric": metric,
        }
    return results


class _Picks(NamedTuple):
    """Where a setting's gallery picks come from: a permutation table, or random (``perm`` None)."""

    perm: RandPerm | None
    source: str  # gallery_source when the table is used: "official" or "file <path>"
    auto: bool  # "auto": images that do not fit fall back to random picks (else: ValueError)
    note: str  # why the picks are random when ``perm`` is None


class _Gallery(NamedTuple):
    """``[trials, G]`` gallery indices of one setting, where they came from and why."""

    indices: np.ndarray
    source: str
    note: str
    fallback: bool  # "auto" fell back to random picks (warned about)


@cache
def _official_table() -> RandPerm:
    """The shipped file's table, read once (its arrays read-only)."""
    perm = load_rand_perm_cam("official")
    for rows in perm.values():
        rows.setflags(write=False)
    return perm


def _picks_table(rand_perm_cam: str | Path | None) -> _Picks:
    """The permutation table asked for (see :func:`sysu_gallery_indices`)."""
    if rand_perm_cam is None:
        return _Picks(None, "", False, "seeded random picks, as asked (rand_perm_cam=None)")
    name = str(rand_perm_cam)
    if name == "auto" and not OFFICIAL_RAND_PERM_CAM.is_file():
        return _Picks(
            None,
            "",
            True,
            "the official rand_perm_cam.mat is missing from this "
            f"installation ({OFFICIAL_RAND_PERM_CAM})",
        )
    if name in ("auto", "official"):
        return _Picks(_official_table(), "official", name == "auto", "")
    return _Picks(load_rand_perm_cam(rand_perm_cam), f"file {rand_perm_cam}", False, "")


def _gallery(
    ids: np.ndarray,
    cams: np.ndarray,
    frames: np.ndarray,
    mode: str,
    shots: int,
    trials: int,
    picks_from: _Picks,
    seed: int,
) -> _Gallery:
    """One setting's gallery: the table's picks if the images fit it; if they do not, random
    picks with ``"auto"``, otherwise a ValueError."""
    if mode not in GALLERY_CAMS:
        raise ValueError(f"unknown mode {mode!r}: expected one of {tuple(GALLERY_CAMS)}")
    if int(shots) != shots or shots < 1 or int(trials) != trials or trials < 1:
        raise ValueError(f"shots and trials must be positive integers, got {shots}, {trials}")
    gallery_cams = GALLERY_CAMS[mode]
    perm = picks_from.perm
    problems = [] if perm is None else _misfits(perm, ids, cams, frames, gallery_cams)
    if problems and not picks_from.auto:
        raise ValueError(
            f"these images do not fit the rand_perm_cam file ({len(problems)} (camera, person) "
            f"pairs differ), e.g. {'; '.join(problems[:3])}. Official picks need every image of "
            "the test split with frames 1..n per camera and person; pass rand_perm_cam=None for "
            "seeded random picks"
        )
    if perm is None or problems:
        picks = _random_picks(ids, cams, frames, gallery_cams, shots, trials, seed)
        source, note = f"random(seed={seed})", picks_from.note
        if problems:
            note = (
                f"the images do not fit the official rand_perm_cam.mat ({len(problems)} "
                f"(camera, person) pairs differ, e.g. {problems[0]}), as on the synthetic "
                "set; on real SYSU-MM01 this means an incomplete test split"
            )
        fallback = picks_from.auto
    else:
        num_trials = min(rows.shape[0] for rows in perm.values())
        if trials > num_trials:
            raise ValueError(f"rand_perm_cam holds {num_trials} trials, asked for {trials}")
        picks = _official_picks(perm, ids, cams, frames, gallery_cams, shots, trials)
        source, fallback = picks_from.source, False
        note = (
            "the official picks of rand_perm_cam.mat (Wu et al.)"
            if source == "official"
            else f"the picks of {source}"
        )
    if picks.shape[1] == 0:
        raise ValueError(f"empty gallery: no image of cameras {gallery_cams} among the inputs")
    return _Gallery(np.sort(picks, axis=1), source, note, fallback)


def _warn_unofficial(galleries: Sequence[_Gallery]) -> None:
    """One :class:`UnofficialPicksWarning` if "auto" fell back to random picks anywhere."""
    fallback = next((g for g in galleries if g.fallback), None)
    if fallback is not None:
        warnings.warn(
            f"SYSU-MM01 evaluation with {fallback.source} gallery picks, not the "
            f"official ones: {fallback.note}",
            UnofficialPicksWarning,
            stacklevel=3,
        )


def _misfits(
    perm: RandPerm,
    ids: np.ndarray,
    cams: np.ndarray,
    frames: np.ndarray,
    gallery_cams: tuple[int, ...],
) -> list[str]:
    """Descriptions of the (gallery camera, person) pairs whose frames are not 1..n of the file."""
    here = _frames_by_group(ids, cams, frames, gallery_cams)
    pids = set(np.unique(ids).tolist())
    expected = {
        key: rows.shape[1]
        for key, rows in perm.items()
        if key[0] in gallery_cams and key[1] in pids
    }
    problems = []
    for cam, pid in sorted(set(here) | set(expected)):
        n = expected.get((cam, pid), 0)
        found = here.get((cam, pid), np.zeros(0, dtype=np.int64))
        if not np.array_equal(found, np.arange(1, n + 1)):
            problems.append(
                f"camera {cam}, person {pid}: file has {n} images, "
                f"found {found.size} with frames {_short(found)}"
            )
    return problems


def _official_picks(
    perm: RandPerm,
    ids: np.ndarray,
    cams: np.ndarray,
    frames: np.ndarray,
    gallery_cams: tuple[int, ...],
    shots: int,
    trials: int,
) -> np.ndarray:
    """``[trials, G]`` indices of the images the file picks (first ``shots`` of row t)."""
    pids = set(np.unique(ids).tolist())
    chosen = [
        (cam, pid, rows[:trials, :shots])
        for (cam, pid), rows in sorted(perm.items())
        if cam in gallery_cams and pid in pids
    ]
    if not chosen:
        return np.zeros((trials, 0), dtype=np.int64)
    pick_frames = np.concatenate([rows for _, _, rows in chosen], axis=1)  # [trials, G]
    pick_cams = np.concatenate([np.full(rows.shape[1], cam) for cam, _, rows in chosen])
    pick_ids = np.concatenate([np.full(rows.shape[1], pid) for _, pid, rows in chosen])
    # look the (cam, pid, frame) triples up among the images by one composite integer key
    scale_f = int(max(frames.max(), pick_frames.max())) + 1
    scale_p = int(ids.max()) + 1
    image_keys = (cams * scale_p + ids) * scale_f + frames
    sorter = np.argsort(image_keys)
    pick_keys = (pick_cams * scale_p + pick_ids) * scale_f + pick_frames
    return sorter[np.searchsorted(image_keys, pick_keys, sorter=sorter)]


def _random_picks(
    ids: np.ndarray,
    cams: np.ndarray,
    frames: np.ndarray,
    gallery_cams: tuple[int, ...],
    shots: int,
    trials: int,
    seed: int,
) -> np.ndarray:
    """``[trials, G]`` indices: per trial and (camera, person), ``shots`` images at random."""
    pool, group_start = _grouped_pool(ids, cams, frames, gallery_cams)
    rank = np.arange(pool.size) - group_start  # rank within the group
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(trials):
        shuffled = np.lexsort((rng.random(pool.size), group_start))  # random order in groups
        rows.append(pool[shuffled[rank < shots]])
    return np.stack(rows)


def _frames_by_group(
    ids: np.ndarray, cams: np.ndarray, frames: np.ndarray, gallery_cams: tuple[int, ...]
) -> dict[tuple[int, int], np.ndarray]:
    """(cam, pid) -> sorted frames of the images in the gallery cameras."""
    pool, group_start = _grouped_pool(ids, cams, frames, gallery_cams)
    starts = np.unique(group_start)
    if starts.size == 0:
        return {}
    return {
        (int(cams[pool[s]]), int(ids[pool[s]])): frames[pool[s:e]]
        for s, e in zip(starts, np.r_[starts[1:], pool.size], strict=True)
    }


def _grouped_pool(
    ids: np.ndarray, cams: np.ndarray, frames: np.ndarray, gallery_cams: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """The gallery cameras' images sorted by (cam, pid, frame), and for each of them the
    position (in that order) of the first image of its (cam, pid) group."""
    pool = np.flatnonzero(np.isin(cams, gallery_cams))
    pool = pool[np.lexsort((frames[pool], ids[pool], cams[pool]))]
    new_group = np.ones(pool.size, dtype=bool)
    new_group[1:] = (cams[pool][1:] != cams[pool][:-1]) | (ids[pool][1:] != ids[pool][:-1])
    return pool, np.flatnonzero(new_group)[np.cumsum(new_group) - 1]


def _check_split(
    ids: np.ndarray, cams: np.ndarray, frames: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate the per-image arrays: 1-D, same length, non-empty, integer."""
    arrays = [np.asarray(a) for a in (ids, cams, frames)]
    if any(a.ndim != 1 for a in arrays) or len({a.size for a in arrays}) != 1:
        raise ValueError(
            "ids, cams and frames must be 1-D arrays of one length, got shapes "
            f"{[a.shape for a in arrays]}"
        )
    if arrays[0].size == 0:
        raise ValueError("no images: ids, cams and frames are empty")
    if any(not np.issubdtype(a.dtype, np.integer) for a in arrays):
        raise ValueError(f"ids, cams and frames must be integers, got {[a.dtype for a in arrays]}")
    if (arrays[2] < 1).any():
        raise ValueError("frames are 1-based positions; found a frame < 1")
    return tuple(a.astype(np.int64) for a in arrays)


def _short(values: np.ndarray, limit: int = 5) -> str:
    """A short list of values for error messages."""
    shown = ", ".join(str(v) for v in values[:limit].tolist())
    return "[" + shown + (", ..." if values.size > limit else "") + "]"
