"""RegDB's evaluation: both cross-modality directions over one trial's test split, then 10 trials.

Every test image is used: visible -> infrared ranks all thermal test images for each visible
query, infrared -> visible the other way round. Nothing is removed from the ranked lists (one
camera per modality); the metrics are :func:`~cycletrans.evaluation.rank_metrics` with protocol
``"regdb"``. One distance matrix serves both directions (its transpose).

RegDB trials differ in their train/test split, so trial t's model is evaluated on trial t's test
features with :func:`evaluate_regdb`, and :func:`average_regdb_trials` averages the trials.

Example:
    >>> import numpy as np
    >>> feats = np.array([[1.0, 0.0], [0.0, 1.0], [0.2, 0.9], [0.9, 0.1]])
    >>> r = evaluate_regdb(feats, ids=[1, 2, 1, 2], modalities=[0, 0, 1, 1])
    >>> r["visible_to_infrared"]["r1"], r["infrared_to_visible"]["mAP"]
    (0.0, 0.5)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cycletrans.evaluation.metrics import (
    SUMMARY_KEYS,
    mean_metrics,
    pairwise_distance,
    rank_metrics,
)
from cycletrans.modality import INFRARED, VISIBLE

DIRECTIONS = ("visible_to_infrared", "infrared_to_visible")


def evaluate_regdb(
    features: np.ndarray,
    ids: np.ndarray | Sequence[int],
    modalities: np.ndarray | Sequence[int],
    metric: str = "euclidean",
) -> dict:
    """Evaluate one trial's RegDB test features in both directions.

    Args:
        features: ``[N, D]`` features of the trial's test images (visible and thermal).
        ids: ``[N]`` person ids.
        modalities: ``[N]`` ints, 0 visible, 1 infrared (thermal).
        metric: ``"euclidean"`` (default) or ``"cosine"``.

    Returns:
        ``{"visible_to_infrared": m, "infrared_to_visible": m}`` where each ``m`` holds
        ``r1, r5, r10, r20, mAP, mINP``, ``num_queries``, ``num_valid`` and ``gallery_size``.
    """
    features = np.asarray(features)
    ids = np.asarray(ids)
    modalities = np.asarray(modalities)
    if features.ndim != 2 or ids.shape != (features.shape[0],) or ids.shape != modalities.shape:
        raise ValueError(
            "expected features [N, D] with ids [N] and modalities [N], got shapes "
            f"{features.shape}, {ids.shape}, {modalities.shape}"
        )
    if not np.isin(modalities, (VISIBLE, INFRARED)).all():
        raise ValueError(
            f"modalities must be 0 (visible) or 1 (infrared), found {np.unique(modalities)}"
        )
    vis, ir = modalities == VISIBLE, modalities == INFRARED
    if not vis.any() or not ir.any():
        raise ValueError(
            f"need visible and infrared images, got {int(vis.sum())} and {int(ir.sum())}"
        )
    dist = pairwise_distance(features[vis], features[ir], metric)  # [V, I]
    return {
        "visible_to_infrared": _direction(dist, ids[vis], ids[ir], 1, 2),
        "infrared_to_visible": _direction(np.ascontiguousarray(dist.T), ids[ir], ids[vis], 2, 1),
    }


def average_regdb_trials(results: Sequence[dict]) -> dict:
    """Mean of several trials' :func:`evaluate_regdb` results, per direction.

    Returns:
        ``{"visible_to_infrared": m, "infrared_to_visible": m}``, each ``m`` the mean
        ``r1 .. mINP`` plus ``num_trials``.

    Example:
        >>> one = {d: {k: 0.5 for k in SUMMARY_KEYS} for d in DIRECTIONS}
        >>> two = {d: {k: 1.0 for k in SUMMARY_KEYS} for d in DIRECTIONS}
        >>> average_regdb_trials([one, two])["infrared_to_visible"]["mINP"]
        0.75
    """
    if not results:
        raise ValueError("expected at least one trial's results, got none")
    return {
        d: {**mean_metrics([r[d] for r in results]), "num_trials": len(results)} for d in DIRECTIONS
    }


def _direction(
    dist: np.ndarray, q_ids: np.ndarray, g_ids: np.ndarray, q_cam: int, g_cam: int
) -> dict:
    """Summary metrics of one direction (cameras: 1 visible, 2 thermal; unused by "regdb")."""
    m = rank_metrics(
        dist, q_ids, g_ids, np.full(q_ids.size, q_cam), np.full(g_ids.size, g_cam), "regdb"
    )
    return {
        **{k: m[k] for k in SUMMARY_KEYS},
        "num_queries": m["num_queries"],
        "num_valid": m["num_valid"],
        "gallery_size": int(g_ids.size),
    }
