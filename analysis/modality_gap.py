"""Modality-gap statistics of a set of retrieval features.

Three groups of image pairs (each unordered pair once):

- ``same identity, same modality``: two images of one person from one modality;
- ``same identity, cross modality``: a visible and an infrared image of one person;
- ``different identity``: two images of different persons (either modality).

A model with a small modality gap has cross-modality distances close to same-modality ones and
well below different-identity ones. Alongside: the MMD between the visible and infrared features
(``cycletrans.losses.mmd_loss``, eq. 16 on the given features) and retrieval in both directions
(``cycletrans.evaluation.rank_metrics``), with every image of the other modality as gallery: no
single-shot sampling, so the numbers are not the official protocol's.

Example:
    >>> import numpy as np
    >>> from analysis.modality_gap import gap_histogram, modality_gap
    >>> rng = np.random.default_rng(0)
    >>> ids, modalities = np.repeat([1, 2, 3], 4), np.tile([0, 0, 1, 1], 3)
    >>> features = np.repeat(rng.normal(size=(3, 8)) * 5, 4, axis=0) + modalities[:, None]
    >>> gap = modality_gap(features, ids, modalities, cams=np.tile([1, 2, 3, 6], 3))
    >>> gap.summary["pairs"].tolist()
    [6, 12, 48]
    >>> print(gap.retrieval.loc["infrared_to_visible", "Rank-1"])
    100.0
    >>> fig = gap_histogram(gap)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch

from cycletrans.evaluation import pairwise_distance, rank_metrics
from cycletrans.losses import mmd_loss
from cycletrans.modality import INFRARED, VISIBLE

GROUPS = ("same identity, same modality", "same identity, cross modality", "different identity")
# (query modality, gallery modality) per retrieval direction, named as in cycletrans.evaluation
DIRECTIONS = {"infrared_to_visible": (INFRARED, VISIBLE),
              "visible_to_infrared": (VISIBLE, INFRARED)}
RETRIEVAL_COLUMNS = {"Rank-1": "r1", "Rank-10": "r10", "Rank-20": "r20", "mAP": "mAP",
                     "mINP": "mINP"}
_ROWS_PER_BLOCK = 1024


@dataclass
class ModalityGap:
    """Everything ``modality_gap`` measures.

    Attributes:
        metric: "euclidean" or "cosine", the distance used throughout.
        distances: group name (``GROUPS``) -> float32 array of that group's pair distances.
        summary: one row per group: ``pairs``, ``mean``, ``median``, ``std`` (NaN if no pair).
        mmd: squared multi-kernel MMD between visible and infrared features (eq. 16).
        retrieval: rows ``infrared_to_visible``, ``visible_to_infrared``; columns Rank-1,
            Rank-10, Rank-20, mAP, mINP (percent) and ``queries`` (valid queries).
    """

    metric: str
    distances: dict[str, np.ndarray]
    summary: pd.DataFrame
    mmd: float
    retrieval: pd.DataFrame


def _as_numpy(values: Any) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def pair_distances(
    features: np.ndarray, ids: np.ndarray, modalities: np.ndarray, metric: str = "euclidean"
) -> dict[str, np.ndarray]:
    """Distances of every unordered image pair, split into the three ``GROUPS``.

    Works through blocks of rows, so memory stays near the size of the returned arrays.
    """
    n = len(features)
    groups: dict[str, list[np.ndarray]] = {name: [] for name in GROUPS}
    for start in range(0, n, _ROWS_PER_BLOCK):
        rows = np.arange(start, min(start + _ROWS_PER_BLOCK, n))
        dist = pairwise_distance(features[rows], features, metric)  # [b, N]
        upper = np.arange(n)[None, :] > rows[:, None]  # each pair once
        same_id = ids[rows][:, None] == ids[None, :]
        same_modality = modalities[rows][:, None] == modalities[None, :]
        groups[GROUPS[0]].append(dist[upper & same_id & same_modality])
        groups[GROUPS[1]].append(dist[upper & same_id & ~same_modality])
        groups[GROUPS[2]].append(dist[upper & ~same_id])
    return {name: np.concatenate(parts) if parts else np.zeros(0, np.float32)
            for name, parts in groups.items()}


def modality_gap(
    features: Any,
    ids: Any,
    modalities: Any,
    cams: Any,
    metric: str = "euclidean",
    protocol: str = "sysu",
) -> ModalityGap:
    """Measure the modality gap of features: pair distances, MMD, retrieval both ways.

    Args:
        features: ``[N, D]`` features (array or tensor) of visible and infrared images.
        ids: ``[N]`` person ids.
        modalities: ``[N]`` 0 visible, 1 infrared.
        cams: ``[N]`` camera numbers (for the protocol's junk rule).
        metric: "euclidean" or "cosine", as in ``cycletrans.evaluation.pairwise_distance``
            (match what the evaluation of these features uses).
        protocol: "sysu" or "regdb", passed to ``rank_metrics``.

    Returns:
        A ``ModalityGap``.
    """
    X = _as_numpy(features).astype(np.float32, copy=False)
    ids, modalities, cams = (_as_numpy(v).reshape(-1) for v in (ids, modalities, cams))
    if X.ndim != 2:
        raise ValueError(f"features must be [N, D], got shape {X.shape}")
    for name, values in (("ids", ids), ("modalities", modalities), ("cams", cams)):
        if len(values) != len(X):
            raise ValueError(f"{len(X)} features but {len(values)} {name}")
    if not np.isin(modalities, (VISIBLE, INFRARED)).all():
        raise ValueError(
            f"modalities must be 0 (visible) or 1 (infrared), found {np.unique(modalities)}"
        )
    visible, infrared = modalities == VISIBLE, modalities == INFRARED
    if not visible.any() or not infrared.any():
        raise ValueError(f"need visible and infrared features, got {int(visible.sum())} "
                         f"visible and {int(infrared.sum())} infrared")
    if not np.isfinite(X).all():
        raise ValueError("features contain NaN or infinite values")

    distances = pair_distances(X, ids, modalities, metric)
    summary = pd.DataFrame(
        [{"pairs": len(d),
          "mean": float(d.mean()) if len(d) else np.nan,
          "median": float(np.median(d)) if len(d) else np.nan,
          "std": float(d.std()) if len(d) else np.nan} for d in distances.values()],
        index=pd.Index(GROUPS, name="group"),
    )
    with torch.no_grad():
        mmd = float(mmd_loss(torch.from_numpy(X[visible]), torch.from_numpy(X[infrared])))
    retrieval = {}
    for direction, (query_modality, gallery_modality) in DIRECTIONS.items():
        q, g = modalities == query_modality, modalities == gallery_modality
        result = rank_metrics(pairwise_distance(X[q], X[g], metric), ids[q], ids[g], cams[q],
                              cams[g], protocol)
        retrieval[direction] = {column: 100.0 * result[key]
                                for column, key in RETRIEVAL_COLUMNS.items()}
        retrieval[direction]["queries"] = result["num_valid"]
    return ModalityGap(metric=metric, distances=distances, summary=summary, mmd=mmd,
                       retrieval=pd.DataFrame.from_dict(retrieval, orient="index"))


def gap_histogram(gap: ModalityGap, bins: int = 40, title: str = "") -> go.Figure:
    """Overlaid histograms of the three pair groups, as fractions of each group's pairs.

    The counts are binned here (shared bin edges) so the figure stays small however many pairs
    there are.
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    present = [d for d in gap.distances.values() if len(d)]
    if not present:
        raise ValueError("no pair distances to draw")
    everything = np.concatenate(present)
    edges = np.histogram_bin_edges(everything, bins=bins)
    centres, widths = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    fig = go.Figure()
    for name, d in gap.distances.items():
        counts = np.histogram(d, bins=edges)[0]
        fractions = counts / max(len(d), 1)
        mean = f", mean {d.mean():.3f}" if len(d) else ""
        fig.add_trace(go.Bar(x=centres, y=fractions, width=widths, name=f"{name}{mean}",
                             opacity=0.55))
    fig.update_layout(barmode="overlay", title=title, xaxis_title=f"{gap.metric} distance",
                      yaxis_title="fraction of pairs", legend={"orientation": "h", "y": -0.2})
    return fig
