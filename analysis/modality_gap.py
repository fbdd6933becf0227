"""Modality-gap statistics of a set of retrieval features.

Three groups of image pairs (each unordered pair once):

- ``same identity, same modality``: two images of one person from one modality;
- ``same identity, cross modality``: a visible and an infrared image of one person;
- ``different identity``: two images of different persons (either modality).

A model with a small modality gap has cross-modality distances close to same-modality ones and
well below different-identity ones. Alongside: the MMD between the visible and infrared features
(``cycletrans.losses.mmd_of_distances``, eq. 16, whose kernel widths follow the data). The default
distance is cosine (1 - cos, in [0, 2]), so models with features of other sizes and scales
share one axis.

Example:
    >>> import numpy as np
    >>> from analysis.modality_gap import gap_histogram, modality_gap
    >>> rng = np.random.default_rng(0)
    >>> ids, modalities = np.repeat([1, 2, 3], 4), np.tile([0, 0, 1, 1], 3)
    >>> features = np.repeat(rng.normal(size=(3, 8)) * 5, 4, axis=0) + modalities[:, None]
    >>> gap = modality_gap(features, ids, modalities)
    >>> gap.summary["pairs"].tolist()
    [6, 12, 48]
    >>> fig = gap_histogram(gap)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch

from analysis.arrays import as_numpy
from cycletrans.evaluation.metrics import METRICS, pairwise_distance
from cycletrans.losses import mmd_of_distances
from cycletrans.modality import INFRARED, VISIBLE

GROUPS = ("same identity, same modality", "same identity, cross modality", "different identity")
_ROWS_PER_BLOCK = 256


@dataclass
class ModalityGap:
    """Everything ``modality_gap`` measures.

    Attributes:
        metric: "euclidean" or "cosine", the pair distance.
        distances: group name (``GROUPS``) -> float32 array of that group's pair distances.
        summary: one row per group: ``pairs``, ``mean``, ``median``, ``std`` (NaN if no pair).
        mmd: squared multi-kernel MMD between visible and infrared features (eq. 16).
    """

    metric: str
    distances: dict[str, np.ndarray]
    summary: pd.DataFrame
    mmd: float

    @property
    def ratio(self) -> float:
        """Mean cross-modality over mean same-modality distance of one identity (1 = no gap)."""
        means = self.summary["mean"]
        return float(means[GROUPS[1]] / means[GROUPS[0]])


def pair_groups(
    distances: np.ndarray, ids: np.ndarray, modalities: np.ndarray
) -> dict[str, np.ndarray]:
    """The ``[N, N]`` distances of every unordered image pair (upper triangle), split into the
    three ``GROUPS``; the masks are made a block of rows at a time."""
    n = len(distances)
    groups: dict[str, list[np.ndarray]] = {name: [] for name in GROUPS}
    for start in range(0, n, _ROWS_PER_BLOCK):
        rows = np.arange(start, min(start + _ROWS_PER_BLOCK, n))
        dist = distances[rows]  # [b, N]
        upper = np.arange(n)[None, :] > rows[:, None]  # each pair once
        same_id = ids[rows][:, None] == ids[None, :]
        same_modality = modalities[rows][:, None] == modalities[None, :]
        groups[GROUPS[0]].append(dist[upper & same_id & same_modality])
        groups[GROUPS[1]].append(dist[upper & same_id & ~same_modality])
        groups[GROUPS[2]].append(dist[upper & ~same_id])
    return {
        name: np.concatenate(parts) if parts else np.zeros(0, np.float32)
        for name, parts in groups.items()
    }


def modality_gap(features: Any, ids: Any, modalities: Any, metric: str = "cosine") -> ModalityGap:
    """Measure the modality gap of features: pair distances and MMD.

    Args:
        features: ``[N, D]`` features (array or tensor) of visible and infrared images.
        ids: ``[N]`` person ids.
        modalities: ``[N]`` 0 visible, 1 infrared.
        metric: "cosine" (default, comparable across models) or "euclidean", as in
            ``cycletrans.evaluation.pairwise_distance``.

    Returns:
        A ``ModalityGap``.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}: expected one of {METRICS}")
    X = as_numpy(features).astype(np.float32, copy=False)
    ids, modalities = (as_numpy(v).reshape(-1) for v in (ids, modalities))
    if X.ndim != 2:
        raise ValueError(f"features must be [N, D], got shape {X.shape}")
    for name, values in (("ids", ids), ("modalities", modalities)):
        if len(values) != len(X):
            raise ValueError(f"{len(X)} features but {len(values)} {name}")
    if not np.isin(modalities, (VISIBLE, INFRARED)).all():
        raise ValueError(
            f"modalities must be 0 (visible) or 1 (infrared), found {np.unique(modalities)}"
        )
    visible, infrared = modalities == VISIBLE, modalities == INFRARED
    if not visible.any() or not infrared.any():
        raise ValueError(
            f"need visible and infrared features, got {int(visible.sum())} "
            f"visible and {int(infrared.sum())} infrared"
        )
    if not np.isfinite(X).all():
        raise ValueError("features contain NaN or infinite values")

    # one working copy, visible images first (l2-normalised for the cosine metric), and one
    # [N, N] matrix of squared euclidean distances, which the MMD (eq. 16) reads; on unit rows
    # the cosine distance 1 - cos(a, b) is ||a - b||^2 / 2
    order = np.argsort(modalities, kind="stable")
    X, ids, modalities = X[order], ids[order], modalities[order]
    if metric == "cosine":
        X /= np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    euclidean = pairwise_distance(X, X)
    del X
    sq = euclidean**2
    distances = pair_groups(sq / 2 if metric == "cosine" else euclidean, ids, modalities)
    summary = pd.DataFrame(
        [
            {
                "pairs": len(d),
                "mean": float(d.mean()) if len(d) else np.nan,
                "median": float(np.median(d)) if len(d) else np.nan,
                "std": float(d.std()) if len(d) else np.nan,
            }
            for d in distances.values()
        ],
        index=pd.Index(GROUPS, name="group"),
    )
    mmd = float(mmd_of_distances(torch.from_numpy(sq), int(visible.sum())))
    return ModalityGap(metric=metric, distances=distances, summary=summary, mmd=mmd)


def gap_histogram(
    gap: ModalityGap, bins: int = 40, title: str = "", x_range: tuple[float, float] | None = None
) -> go.Figure:
    """Overlaid histograms of the three pair groups, as fractions of each group's pairs.

    The counts are binned here (shared bin edges) so the figure stays small however many pairs
    there are. ``x_range``: the axis (and bins) to use, e.g. one shared by several models;
    default the distances' own range.
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    present = [d for d in gap.distances.values() if len(d)]
    if not present:
        raise ValueError("no pair distances to draw")
    everything = np.concatenate(present)
    edges = np.histogram_bin_edges(everything, bins=bins, range=x_range)
    centres, widths = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    fig = go.Figure()
    for name, d in gap.distances.items():
        counts = np.histogram(d, bins=edges)[0]
        fractions = counts / max(len(d), 1)
        mean = f", mean {d.mean():.3f}" if len(d) else ""
        fig.add_trace(
            go.Bar(x=centres, y=fractions, width=widths, name=f"{name}{mean}", opacity=0.55)
        )
    fig.update_layout(
        barmode="overlay",
        title=title,
        xaxis_title=f"{gap.metric} distance",
        yaxis_title="fraction of pairs",
        legend={"orientation": "h", "y": -0.2},
    )
    if x_range is not None:
        fig.update_xaxes(range=list(x_range))
    return fig
