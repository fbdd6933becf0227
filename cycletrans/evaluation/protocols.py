"""Every protocol setting of a dataset on one :class:`FeatureSet`, and retrieval between modalities.

- :func:`evaluate_protocols`: every official setting (the ``evaluate`` command's core).
  SYSU-MM01: all / indoor search x single / multi-shot (keys ``all_single``, ``all_multi``,
  ``indoor_single``, ``indoor_multi``) on one distance matrix, 10 trials, official
  ``rand_perm_cam`` picks when the images fit the file. RegDB: ``visible_to_infrared`` and
  ``infrared_to_visible`` of the trial's test split.
- :func:`modality_retrieval`: every query image of one modality against every gallery image of
  a modality (no sampling). Cross-modality (infrared -> visible) it is the validation score of a
  training run; within one modality it measures how well a model retrieves a person without the
  modality gap (the demo's point of comparison). With the ``"sysu"`` protocol a query never
  matches images of its own camera location (so within a modality only other cameras count);
  with ``"regdb"`` (one camera per modality) a query within its own modality is ranked against
  every other image of that modality (itself left out).

Metrics are fractions in [0, 1], as :func:`~cycletrans.evaluation.rank_metrics` returns them.

Example:
    >>> feats = FeatureSet.load("test.npz")  # doctest: +SKIP
    >>> evaluate_protocols(feats, "sysu")["all_single"]["r1"]  # doctest: +SKIP
    0.4213
    >>> modality_retrieval(feats, "visible", "visible", "sysu")["mAP"]  # doctest: +SKIP
    0.9132
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cycletrans.evaluation.features import FeatureSet
from cycletrans.evaluation.metrics import (
    SUMMARY_KEYS,
    leave_one_out_metrics,
    pairwise_distance,
    rank_metrics,
)
from cycletrans.evaluation.regdb import evaluate_regdb
from cycletrans.evaluation.sysu import SYSU_SETTINGS, evaluate_sysu_settings
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
    settings: Sequence[tuple[str, int]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Every protocol setting of ``dataset`` ("sysu" or "regdb") on the test split's features.

    Args:
        features: the test split's features (all query and gallery images).
        dataset: "sysu" (also the synthetic set) or "regdb".
        trials: SYSU-MM01 gallery trials (10 in the official protocol).
        rand_perm_cam: SYSU-MM01 gallery picks, see ``evaluate_sysu`` ("auto": the official
            file when the images fit it, else seeded random picks, with a warning).
        settings: SYSU-MM01 (mode, shots) pairs; default all four of ``SYSU_SETTINGS``.

    Returns:
        setting key -> metrics (``r1, r5, r10, r20, mAP, mINP``, sizes; SYSU-MM01 also
        ``gallery_source``, ``gallery_note`` and ``trials``).
    """
    if dataset == "regdb":
        return evaluate_regdb(features.features, features.ids, features.modalities)
    if dataset != "sysu":
        raise ValueError(f"unknown dataset {dataset!r}: expected 'sysu' or 'regdb'")
    results = evaluate_sysu_settings(
        features.features,
        features.ids,
        features.cams,
        features.frames,
        settings or SYSU_SETTINGS,
        trials,
        rand_perm_cam,
    )
    return {
        setting_key(mode, shots): {
            **{k: v for k, v in result.items() if k != "per_trial"},
            "trials": trials,
        }
        for (mode, shots), result in results.items()
    }


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
        raise ValueError(
            f"need {modality_name(query)} queries and {modality_name(gallery)} "
            f"gallery images, found {int(q.sum())} and {int(g.sum())}"
        )
    dist = pairwise_distance(features.features[q], features.features[g])
    ids, cams = features.ids, features.cams
    if protocol == "regdb" and modality_index(query) == modality_index(gallery):
        m = leave_one_out_metrics(dist, ids[q])
        gallery_size = int(g.sum()) - 1
    else:
        m = rank_metrics(dist, ids[q], ids[g], cams[q], cams[g], protocol)
        gallery_size = int(g.sum())
    return {
        **{k: m[k] for k in SUMMARY_KEYS},
        "num_queries": m["num_queries"],
        "num_valid": m["num_valid"],
        "gallery_size": gallery_size,
    }


def cross_modality_retrieval(features: FeatureSet, protocol: str) -> dict[str, Any]:
    """Infrared queries against all visible images (the validation score of training)."""
    return modality_retrieval(features, "infrared", "visible", protocol)
