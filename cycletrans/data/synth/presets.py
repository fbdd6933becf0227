"""Presets of the synthetic set: size, identity split, image counts, cameras and nuisances.

The difficulty knobs live in :class:`Nuisance` (one named constant per nuisance); the cameras'
looks in ``SYSU_CAMERAS`` / ``REGDB_CAMERAS``. ``plan(preset, seed)`` turns a preset into the
dataset's identity split and per-(identity, camera) image counts.

Example:
    >>> p = plan(get_preset("demo"), seed=0)
    >>> sorted(p.splits)
    ['test', 'train', 'unused', 'val']
    >>> all(len(p.counts[pid]) == 6 for pid in p.splits["test"])
    True
"""

from __future__ import annotations

import csv
import importlib.resources
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from cycletrans.data.synth.streams import COUNTS, SPLIT, stream
from cycletrans.modality import INFRARED, VISIBLE

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Nuisance:
    """Per-image nuisance strengths (the difficulty knobs). Pixel values are in [0, 1]."""

    scale_jitter: float = 0.07  # relative spread of the person's size in the box
    shift_jitter: float = 0.07  # horizontal / vertical offset of the person, fraction of width
    truncation: float = 0.12  # probability that the box cuts the head or feet
    occlusion: float = 0.25  # probability of an occluder (object or passer-by)
    illumination: float = 0.18  # spread of the per-image brightness gain
    cast: float = 0.05  # spread of the per-image colour cast (visible) around the camera's
    blur: float = 0.6  # maximum extra Gaussian blur, output pixels
    visible_noise: float = 0.018  # sensor noise of the visible cameras (std)
    infrared_noise: float = 0.035  # sensor noise of the infrared cameras (std)
    infrared_banding: float = 0.015  # row-wise fixed-pattern noise of the infrared cameras
    views: tuple[float, float, float] = (0.38, 0.34, 0.28)  # front, back, side


@dataclass(frozen=True)
class CameraSpec:
    """One camera: modality, scene, and its consistent look.

    ``cast`` = per-channel gains (visible) ; ``gain`` / ``offset`` = brightness mapping ;
    ``blur`` = base Gaussian blur (output pixels).
    """

    cam: int
    modality: int
    scene: str
    cast: tuple[float, float, float] = (1.0, 1.0, 1.0)
    gain: float = 1.0
    offset: float = 0.0
    blur: float = 0.3


# SYSU-MM01 camera roles: 1, 2 indoor visible; 3 indoor infrared in camera 2's room;
# 4, 5 outdoor visible; 6 outdoor infrared.
SYSU_CAMERAS: dict[int, CameraSpec] = {
    1: CameraSpec(1, VISIBLE, "office", cast=(1.06, 1.0, 0.88), gain=1.02, blur=0.3),
    2: CameraSpec(2, VISIBLE, "lab", cast=(0.92, 1.0, 1.1), gain=0.9, offset=0.02, blur=0.4),
    3: CameraSpec(3, INFRARED, "lab", gain=1.0, offset=0.02, blur=0.6),
    4: CameraSpec(4, VISIBLE, "courtyard", cast=(1.0, 1.03, 0.95), gain=1.08, blur=0.3),
    5: CameraSpec(5, VISIBLE, "street", cast=(1.08, 0.98, 0.94), gain=0.95, offset=-0.02, blur=0.5),
    6: CameraSpec(6, INFRARED, "garden", gain=0.92, offset=0.0, blur=0.7),
}
# RegDB: one dual-camera system (visible + thermal) watching the same street.
REGDB_CAMERAS: dict[int, CameraSpec] = {
    1: CameraSpec(1, VISIBLE, "campus", cast=(1.02, 1.0, 0.97), gain=1.0, blur=0.4),
    2: CameraSpec(2, INFRARED, "campus", gain=1.0, blur=0.8),
}


@dataclass(frozen=True)
class Preset:
    """A dataset recipe.

    Either ``counts_table`` names a CSV shipped with the package (``pid, split, n_cam1..6``),
    or the split and counts are sampled: ``num_ids`` (train, val, test) identities, each present
    in SYSU camera c with probability ``presence[c-1]`` with ``images`` (low, high) images there.
    """

    name: str
    height: int = 128
    width: int = 64
    supersample: int = 2
    num_ids: tuple[int, int, int] = (100, 20, 72)
    presence: tuple[float, ...] = (0.55, 0.55, 0.9, 0.85, 0.85, 0.6)
    images: tuple[int, int] = (3, 6)
    counts_table: str | None = None
    jpeg_quality: int = 92
    nuisance: Nuisance = field(default_factory=Nuisance)

    def __post_init__(self) -> None:
        if self.height < 16 or self.width < 8 or self.supersample < 1:
            raise ValueError(
                f"preset {self.name!r}: image size {self.height}x{self.width} "
                f"(supersample {self.supersample}) is too small: expected at least "
                "16x8 and supersample >= 1"
            )
        if len(self.presence) != 6 or not 1 <= self.images[0] <= self.images[1]:
            raise ValueError(
                f"preset {self.name!r}: expected 6 presence probabilities and "
                f"1 <= images[0] <= images[1], got {self.presence}, {self.images}"
            )


PRESETS: dict[str, Preset] = {
    "demo": Preset("demo"),
    "sysu": Preset("sysu", height=256, width=128, supersample=1, counts_table="sysu_counts.csv"),
}


def get_preset(preset: str | Preset) -> Preset:
    """Return the named preset (``"demo"`` or ``"sysu"``) or ``preset`` itself."""
    if isinstance(preset, Preset):
        return preset
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}: expected one of {sorted(PRESETS)}")
    return PRESETS[preset]


@dataclass(frozen=True)
class Plan:
    """The identity split (``train``/``val``/``test`` sorted pid lists; ``unused`` pids have
    images but belong to no split, as in SYSU-MM01) and ``counts[pid]`` = images in cams 1..6."""

    splits: dict[str, list[int]]
    counts: dict[int, tuple[int, ...]]

    @property
    def available(self) -> list[int]:
        """The ids of the three splits, sorted (SYSU-MM01's ``available_id.txt``)."""
        return sorted(pid for name in SPLITS for pid in self.splits[name])


@cache
def load_counts_table(name: str) -> tuple[tuple[int, str, tuple[int, ...]], ...]:
    """Read a shipped counts CSV into ``(pid, split, (n_cam1..n_cam6))`` rows."""
    text = importlib.resources.files("cycletrans.data.synth").joinpath(name).read_text()
    return tuple(
        (int(r["pid"]), r["split"], tuple(int(r[f"n_cam{c}"]) for c in range(1, 7)))
        for r in csv.DictReader(text.splitlines())
    )


def _sampled_counts(preset: Preset, seed: int, pid: int) -> tuple[int, ...]:
    """Cameras and image counts of one identity, at least one visible and one infrared camera."""
    rng = stream(seed, COUNTS, pid)
    present = rng.random(6) < np.asarray(preset.presence)
    visible, infrared = [0, 1, 3, 4], [2, 5]
    if not present[visible].any():
        present[visible[rng.integers(4)]] = True
    if not present[infrared].any():
        present[infrared[rng.integers(2)]] = True
    n = rng.integers(preset.images[0], preset.images[1] + 1, 6)
    return tuple(int(k) if p else 0 for k, p in zip(n, present, strict=True))


def plan(preset: Preset, seed: int) -> Plan:
    """The split and per-camera image counts of ``preset`` for ``seed``."""
    if preset.counts_table is not None:
        rows = load_counts_table(preset.counts_table)
        splits = {
            name: sorted(pid for pid, s, _ in rows if s == name) for name in (*SPLITS, "unused")
        }
        return Plan(splits, {pid: counts for pid, _, counts in rows})
    total = sum(preset.num_ids)
    order = stream(seed, SPLIT).permutation(np.arange(1, total + 1))
    bounds = np.cumsum((0, *preset.num_ids))
    splits = {
        name: sorted(int(p) for p in order[bounds[i] : bounds[i + 1]])
        for i, name in enumerate(SPLITS)
    }
    splits["unused"] = []
    return Plan(splits, {pid: _sampled_counts(preset, seed, pid) for pid in range(1, total + 1)})
