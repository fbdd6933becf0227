"""Run the evaluation protocols on a :class:`FeatureSet` (the ``evaluate`` command's core).

- :func:`evaluate_protocols`: every official setting of a dataset. SYSU-MM01: all / indoor
  search x single / multi-shot (keys ``all_single``, ``all_multi``, ``indoor_single``,
  ``indoor_multi``), 10 trials, official ``rand_perm_cam`` picks when the images fit the file.
  RegDB: ``visible_to_infrared`` and ``infrared_to_visible`` of the trial's test split.
- :func:`modality_retrieval`: every query image of one modality against every gallery image of
  a modality (no sampling). Cross-modality (infrared -> visible) it is the validation score of a
  training run; within one modality it measures how well a model retrieves a person without the
  modality gap (the demo's point of comparison). With the ``"sysu"`` protocol a query never
  matches images of its own camera location (so within a modality only other cameras count);
  with ``"regdb"`` (one camera per modality) a query within its own modality is ranked against
  every other image of that modality (itself left out).

Metrics are fractions in [0, 1], as :func:`cycletrans.evaluation.rank_metrics` returns them.

Example:
    >>> feats = FeatureSet.load("test.npz")  # doctest: +SKIP
    >>> evaluate_protocols(feats, "sysu")["all_single"]["r1"]  # doctest: +SKIP
    0.4213
    >>> modality_retrieval(feats, "visible", "visible", "sysu")["mAP"]  # doctest: +SKIP
    0.9132
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cycletrans.engine.inference import FeatureSet
from cycletrans.evaluation import (
    SUMMARY_KEYS,
    SYSU_SETTINGS,
    evaluate_regdb,
    evaluate_sysu,
    pairwise_distance,
    rank_metrics,
)
from cycletrans.evaluation.metrics import RANKS
from cycletrans.modality import modality_index, modality_name

SHOT_NAMES = {1: "single", 10: "multi"}


def setting_key(mode: str, shots: int) -> str:
    """``("all", 1)`` -> ``"all_single"``."""
    return f"{mode}_{SHOT_NAMES[shots]}"


def evaluate_protocols(
    features: FeatureSet,
    dataset: str,
    trials: int = 10,
    rand_perm_cam: str | Path | None = "auto",
    settings: list[tuple[str, int]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Every protocol setting of ``dataset`` ("sysu" or "regdb") on the test split's features.

    Args:
        features: the test split's features (all query and gallery images).
        dataset: "sysu" (also the synthetic set) or "regdb".
        trials: SYSU-MM01 gallery trials (10 in the official protocol).
        rand_perm_cam: SYSU-MM01 gallery picks, see ``evaluate_sysu`` ("auto": the official
            file when the images fit it, else seeded random picks).
        settings: SYSU-MM01 (mode, shots) pairs; default all four of ``SYSU_SETTINGS``.

    Returns:
        setting key -> metrics (``r1, r5, r10, r20, mAP, mINP`` and sizes).
    """
    if dataset == "regdb":
        return evaluate_regdb(features.features, features.ids, features.modalities)
    if dataset != "sysu":
        raise ValueError(f"unknown dataset {dataset!r}: expected 'sysu' or 'regdb'")
    results = {}
    for mode, shots in settings or SYSU_SETTINGS:
        result = evaluate_sysu(features.features, features.ids, features.cams, features.frames,
                               mode=mode, shots=shots, trials=trials, rand_perm_cam=rand_perm_cam)
        result["trials"] = trials
        result.pop("per_trial")
        results[setting_key(mode, shots)] = result
    return results


def modality_retrieval(
    features: FeatureSet, query: str | int, gallery: str | int, protocol: str
) -> dict[str, Any]:
    """Queries = all images of modality ``query``; gallery = all images of ``gallery``.

    See the module docstring for what is left out of each ranked list. Returns the summary
    metrics plus ``num_queries``, ``num_valid`` and ``gallery_size``.
    """
    q = features.modalities == modality_index(query)
    g = features.modalities == modality_index(gallery)
    if not q.any() or not g.any():
        raise ValueError(f"need {modality_name(query)} queries and {modality_name(gallery)} "
                         f"gallery images, found {int(q.sum())} and {int(g.sum())}")
    dist = pairwise_distance(features.features[q], features.features[g])
    ids, cams = features.ids, features.cams
    if protocol == "regdb" and modality_index(query) == modality_index(gallery):
        return _leave_one_out(dist, ids[q])
    m = rank_metrics(dist, ids[q], ids[g], cams[q], cams[g], protocol)
    return {**{k: m[k] for k in SUMMARY_KEYS}, "num_queries": m["num_queries"],
            "num_valid": m["num_valid"], "gallery_size": int(g.sum())}


def cross_modality_retrieval(features: FeatureSet, protocol: str) -> dict[str, Any]:
    """Infrared queries against all visible images (the validation score of training)."""
    return modality_retrieval(features, "infrared", "visible", protocol)


def _leave_one_out(dist: np.ndarray, ids: np.ndarray) -> dict[str, Any]:
    """Metrics of a set ranked against itself, each query without itself (plain CMC)."""
    n = len(ids)
    keep = ~np.eye(n, dtype=bool)
    others = dist[keep].reshape(n, n - 1)
    gallery_ids = np.broadcast_to(ids, (n, n))[keep].reshape(n, n - 1)
    per_query = [rank_metrics(others[i : i + 1], ids[i : i + 1], gallery_ids[i],
                              np.zeros(1), np.zeros(n - 1), "regdb") for i in range(n)]
    first_hit = np.array([m["first_hit"][0] for m in per_query])
    valid = first_hit > 0
    ap = np.array([m["ap"][0] for m in per_query])
    inp = np.array([m["inp"][0] for m in per_query])
    nan = float("nan")
    summary = {f"r{k}": float((first_hit[valid] <= k).mean()) if valid.any() else nan
               for k in RANKS}
    summary["mAP"] = float(ap[valid].mean()) if valid.any() else nan
    summary["mINP"] = float(inp[valid].mean()) if valid.any() else nan
    return {**summary, "num_queries": n, "num_valid": int(valid.sum()), "gallery_size": n - 1}
