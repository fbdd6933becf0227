"""A trivial histogram matcher that measures the synthetic set's modality gap.

No learning: each image becomes a histogram of its central region, features are centred per
camera (which removes the camera's constant background and cast) and matched by cosine
nearest neighbour. Within the visible cameras a grey-world chromaticity + brightness histogram
finds the person across cameras; from infrared to visible only grey levels can be compared,
and they carry no identity because a garment's thermal level is unrelated to its colour.
Used by the tests and ``benchmarks/synth_speed.py``.

Example:
    >>> report = modality_gap("/tmp/synth-demo")  # doctest: +SKIP
    >>> report["visible->visible"] > 0.6 > 0.1 > report["infrared->visible"]  # doctest: +SKIP
    True
"""

from __future__ import annotations

from itertools import permutations
from pathlib import Path

import numpy as np
from PIL import Image

VISIBLE_CAMS, INFRARED_CAMS = (1, 2, 4, 5), (3, 6)
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _centre(image: np.ndarray) -> np.ndarray:
    """The central region of an ``[H, W, 3]`` image (where the person is), as float [0, 1]."""
    h, w = image.shape[:2]
    return image[h // 8 : h * 7 // 8, w // 5 : w * 4 // 5].astype(np.float32) / 255


def colour_histogram(image: np.ndarray, bins: int = 8) -> np.ndarray:
    """Grey-world chromaticity (r, g) x 4 brightness bins histogram of ``uint8 [H, W, 3]``."""
    c = _centre(image).reshape(-1, 3) + 1e-3
    c = c / c.mean(axis=0)  # grey world: undo the camera's cast and gain
    total = c.sum(axis=1)
    r, g, v = c[:, 0] / total, c[:, 1] / total, total / 3

    def q(a: np.ndarray, lo: float, hi: float, n: int) -> np.ndarray:
        return np.clip(((a - lo) / (hi - lo) * n).astype(np.int64), 0, n - 1)

    index = (q(r, 0.1, 0.6, bins) * bins + q(g, 0.1, 0.6, bins)) * 4 + q(v, 0.0, 2.0, 4)
    h = np.bincount(index, minlength=bins * bins * 4).astype(np.float32)
    return np.sqrt(h / h.sum())


def grey_histogram(image: np.ndarray, bins: int = 16) -> np.ndarray:
    """Histogram of grey levels (luma) of ``uint8 [H, W, 3]``: comparable across modalities."""
    grey = _centre(image) @ LUMA
    index = np.minimum((grey.ravel() * bins).astype(np.int64), bins - 1)
    h = np.bincount(index, minlength=bins).astype(np.float32)
    return np.sqrt(h / h.sum())


def rank1(
    query: np.ndarray, query_ids: np.ndarray, gallery: np.ndarray, gallery_ids: np.ndarray
) -> float:
    """Rank-1 of camera-centred cosine nearest neighbour (``query [Q, D]``, ``gallery [G, D]``,
    each from one camera). Queries whose id is not in the gallery are not counted."""
    q = query - query.mean(axis=0)
    g = gallery - gallery.mean(axis=0)
    q /= np.linalg.norm(q, axis=1, keepdims=True) + 1e-12
    g /= np.linalg.norm(g, axis=1, keepdims=True) + 1e-12
    keep = np.isin(query_ids, gallery_ids)
    if not keep.any():
        raise ValueError("no query identity appears in the gallery")
    best = gallery_ids[(q[keep] @ g.T).argmax(axis=1)]
    return float((best == query_ids[keep]).mean())


def load_camera(
    root: str | Path, cam: int, pids: list[int] | None = None
) -> tuple[list[np.ndarray], np.ndarray]:
    """All images (``uint8 [H, W, 3]``) and ids of one camera of a SYSU-layout folder."""
    folder = Path(root) / f"cam{cam}"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} not found: expected a SYSU-MM01 layout folder")
    images, ids = [], []
    for person in sorted(folder.iterdir()):
        if pids is None or int(person.name) in pids:
            for path in sorted(person.glob("*.jpg")):
                images.append(np.asarray(Image.open(path).convert("RGB")))
                ids.append(int(person.name))
    return images, np.asarray(ids)


def modality_gap(root: str | Path, pids: list[int] | None = None) -> dict[str, float]:
    """Mean rank-1 over camera pairs: ``visible->visible`` (colour histogram, different visible
    cameras), ``infrared->visible`` and ``infrared->infrared`` (grey histogram), and ``chance``
    (mean of 1 / gallery identities over the infrared->visible pairs). NaN where no camera pair
    shares an identity."""
    cams = {c: load_camera(root, c, pids) for c in (*VISIBLE_CAMS, *INFRARED_CAMS)}
    feats = {
        (c, kind): np.stack([f(im) for im in cams[c][0]])
        for c in cams
        for kind, f in (("colour", colour_histogram), ("grey", grey_histogram))
        if cams[c][0]
    }

    def mean_rank1(pairs: list[tuple[int, int]], kind: str) -> float:
        scores = [
            rank1(feats[q, kind], cams[q][1], feats[g, kind], cams[g][1])
            for q, g in pairs
            if (q, kind) in feats and (g, kind) in feats and np.isin(cams[q][1], cams[g][1]).any()
        ]
        return float(np.mean(scores)) if scores else float("nan")

    cross = [(q, g) for q in INFRARED_CAMS for g in VISIBLE_CAMS]
    return {
        "visible->visible": mean_rank1(list(permutations(VISIBLE_CAMS, 2)), "colour"),
        "infrared->visible": mean_rank1(cross, "grey"),
        "infrared->infrared": mean_rank1(list(permutations(INFRARED_CAMS, 2)), "grey"),
        "chance": float(
            np.mean([1 / len(np.unique(cams[g][1])) for _, g in cross if len(cams[g][1])])
        ),
    }
