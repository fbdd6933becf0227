"""Official evaluation protocols of SYSU-MM01 and RegDB (NumPy/SciPy only: no torch import).

- :func:`rank_metrics`: CMC (Rank-1/5/10/20), mAP and mINP of a distance matrix, by the
  ``"sysu"`` protocol (location rule, repeated ids removed for CMC) or ``"regdb"`` (plain).
- :func:`evaluate_sysu`: all / indoor search x single / multi-shot (:data:`SYSU_SETTINGS`) over
  10 trials, with the official gallery picks of ``rand_perm_cam.mat`` when the images fit it;
  :func:`evaluate_sysu_settings` does several settings on one distance matrix;
  :func:`sysu_gallery_indices` exposes each trial's gallery.
- :func:`evaluate_regdb`: both directions of one trial; :func:`average_regdb_trials`.
- :func:`evaluate_protocols`: every setting of a dataset on a :class:`FeatureSet`;
  :func:`modality_retrieval`: all images of one modality against all of another (or the same).

Example:
    >>> import numpy as np
    >>> from cycletrans.evaluation import rank_metrics
    >>> rank_metrics(np.array([[0.2, 0.1]]), [1], [1, 2], [3], [1, 1], "regdb")["first_hit"]
    array([2])
"""

from cycletrans.evaluation.features import FeatureSet
from cycletrans.evaluation.metrics import (
    SUMMARY_KEYS,
    camera_location,
    leave_one_out_metrics,
    mean_metrics,
    pairwise_distance,
    rank_metrics,
)
from cycletrans.evaluation.protocols import (
    cross_modality_retrieval,
    evaluate_protocols,
    modality_retrieval,
    setting_key,
)
from cycletrans.evaluation.regdb import DIRECTIONS, average_regdb_trials, evaluate_regdb
from cycletrans.evaluation.sysu import (
    OFFICIAL_RAND_PERM_CAM,
    SYSU_SETTINGS,
    UnofficialPicksWarning,
    evaluate_sysu,
    evaluate_sysu_settings,
    load_rand_perm_cam,
    sysu_gallery_indices,
    sysu_image_table,
)

__all__ = [
    "DIRECTIONS",
    "OFFICIAL_RAND_PERM_CAM",
    "SUMMARY_KEYS",
    "SYSU_SETTINGS",
    "FeatureSet",
    "UnofficialPicksWarning",
    "average_regdb_trials",
    "camera_location",
    "cross_modality_retrieval",
    "evaluate_protocols",
    "evaluate_regdb",
    "evaluate_sysu",
    "evaluate_sysu_settings",
    "leave_one_out_metrics",
    "load_rand_perm_cam",
    "mean_metrics",
    "modality_retrieval",
    "pairwise_distance",
    "rank_metrics",
    "setting_key",
    "sysu_gallery_indices",
    "sysu_image_table",
]
