"""t-SNE of retrieval features, drawn as in the paper's Fig. 4.

Circles are visible images, triangles infrared images, one colour (and one legend entry) per
identity.

Example:
    >>> import numpy as np
    >>> from analysis.tsne import select_identities, tsne_embedding, tsne_figure
    >>> rng = np.random.default_rng(0)
    >>> features, ids = rng.normal(size=(12, 8)), np.repeat([3, 5, 9], 4)
    >>> modalities = np.tile([0, 0, 1, 1], 3)
    >>> points = tsne_embedding(features, seed=0)
    >>> points.shape
    (12, 2)
    >>> fig = tsne_figure(points, ids, modalities, hover={"camera": np.tile([1, 2, 3, 6], 3)})
    >>> [trace.name for trace in fig.data]
    ['id 3', 'id 5', 'id 9']
    >>> select_identities(ids, count=2, seed=0)
    [5, 9]
"""

from __future__ import annotations

import colorsys
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from sklearn.manifold import TSNE
from threadpoolctl import threadpool_limits

from analysis.arrays import as_numpy
from cycletrans.modality import INFRARED, VISIBLE, modality_name

MARKERS = {VISIBLE: "circle", INFRARED: "triangle-up"}
LIGHTNESS = (0.36, 0.62, 0.48)  # cycled over neighbouring hues so that they differ in two ways


def identity_colours(count: int) -> list[str]:
    """``count`` distinct colours: Plotly's ten for up to ten identities, else ``count`` hues
    spaced evenly around the circle, neighbours at different lightness."""
    if count <= len(qualitative.Plotly):
        return list(qualitative.Plotly[:count])
    colours = []
    for i in range(count):
        r, g, b = colorsys.hls_to_rgb(i / count, LIGHTNESS[i % len(LIGHTNESS)], 0.8)
        colours.append(f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}")
    return colours


def _plain(value: Any) -> int | float | str:
    """A hover value plotly can serialise: numbers stay numbers, anything else becomes text."""
    if isinstance(value, np.generic):
        value = value.item()
    return value if isinstance(value, int | float | str) else str(value)


def tsne_embedding(
    features: Any, seed: int = 0, perplexity: float = 30.0, metric: str = "euclidean"
) -> np.ndarray:
    """Embed features in 2-D with scikit-learn's t-SNE.

    Args:
        features: ``[N, D]`` array or tensor, N >= 3.
        seed: random state of t-SNE (the result is deterministic for a seed).
        perplexity: asked perplexity; clipped to ``(N - 1) / 3`` (at least 1) for small N, as
            t-SNE needs each point to have about 3 x perplexity neighbours.
        metric: distance t-SNE preserves ("euclidean" or "cosine").

    Returns:
        ``[N, 2]`` float array, one point per row of ``features``.
    """
    X = as_numpy(features)
    if X.ndim != 2:
        raise ValueError(f"features must be [N, D], got shape {X.shape}")
    if X.shape[0] < 3:
        raise ValueError(f"t-SNE needs at least 3 features, got {X.shape[0]}")
    if not np.isfinite(X).all():
        raise ValueError("features contain NaN or infinite values")
    if perplexity <= 0:
        raise ValueError(f"perplexity must be positive, got {perplexity}")
    perplexity = max(1.0, min(float(perplexity), (X.shape[0] - 1) / 3))
    tsne = TSNE(
        n_components=2,
        perplexity=perplexity,
        metric=metric,
        init="pca",
        learning_rate="auto",
        random_state=seed,
    )
    # one thread: for the few hundred points shown, OpenMP threads cost more than they give,
    # up to 100x on a busy machine
    with threadpool_limits(limits=1):
        return tsne.fit_transform(X.astype(np.float32)).astype(np.float64)


def select_identities(
    ids: Any, count: int = 10, seed: int = 0, modalities: Any = None
) -> list[int]:
    """Pick ``count`` identities at random (seeded), as the paper's Fig. 4 shows ten.

    Args:
        ids: ``[N]`` identity of each image.
        count: how many to pick; all of them when fewer exist.
        seed: the pick is deterministic for a seed.
        modalities: optional ``[N]`` modality codes; then only identities with images in both
            modalities are eligible.

    Returns:
        The chosen identities, sorted.
    """
    ids = as_numpy(ids).reshape(-1)
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    candidates = np.unique(ids)
    if modalities is not None:
        modalities = as_numpy(modalities).reshape(-1)
        if modalities.shape != ids.shape:
            raise ValueError(f"{len(ids)} ids but {len(modalities)} modalities")
        both = [p for p in candidates if {VISIBLE, INFRARED} <= set(modalities[ids == p].tolist())]
        candidates = np.asarray(both, dtype=ids.dtype)
    if len(candidates) == 0:
        raise ValueError("no identity to choose from")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(candidates, size=min(count, len(candidates)), replace=False)
    return sorted(int(p) for p in chosen)


def tsne_figure(
    points: Any,
    ids: Any,
    modalities: Any,
    hover: Mapping[str, Sequence[Any]] | None = None,
    title: str = "",
) -> go.Figure:
    """Scatter t-SNE points as in Fig. 4: one trace (colour) per identity, marker per modality.

    Args:
        points: ``[N, 2]`` from ``tsne_embedding``.
        ids: ``[N]`` identities.
        modalities: ``[N]`` codes, 0 visible (circle), 1 infrared (triangle).
        hover: extra per-point fields shown on hover, e.g. ``{"camera": cams, "file": paths}``;
            identity and modality are always shown.
        title: figure title.
    """
    points = as_numpy(points)
    ids = as_numpy(ids).reshape(-1)
    modalities = as_numpy(modalities).reshape(-1)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points must be [N, 2], got shape {points.shape}")
    n = points.shape[0]
    fields = {"identity": ids, "modality": modalities, **(hover or {})}
    for name, values in fields.items():
        if len(values) != n:
            raise ValueError(f"{n} points but {len(values)} values of {name!r}")
    bad = sorted(set(modalities.tolist()) - set(MARKERS))
    if bad:
        raise ValueError(f"modalities must be 0 (visible) or 1 (infrared), got {bad}")
    names = [modality_name(int(m)) for m in modalities]
    extra = {name: [_plain(v) for v in values] for name, values in (hover or {}).items()}
    template = (
        "<br>".join(
            [
                f"{name}=%{{customdata[{i}]}}"
                for i, name in enumerate(["identity", "modality", *extra])
            ]
        )
        + "<extra></extra>"
    )
    fig = go.Figure()
    identities = np.unique(ids)
    colours = identity_colours(len(identities))
    for colour_index, pid in enumerate(identities):
        rows = np.flatnonzero(ids == pid)
        custom = [[ids[r].item(), names[r], *(extra[name][r] for name in extra)] for r in rows]
        fig.add_trace(
            go.Scatter(
                x=points[rows, 0],
                y=points[rows, 1],
                mode="markers",
                name=f"id {pid}",
                marker={
                    "symbol": [MARKERS[int(modalities[r])] for r in rows],
                    "size": 9,
                    "color": colours[colour_index],
                    "line": {"width": 0.5, "color": "white"},
                },
                customdata=custom,
                hovertemplate=template,
            )
        )
    fig.update_layout(
        title=title,
        legend_title_text="identity",
        xaxis={"showticklabels": False},
        yaxis={"showticklabels": False},
        plot_bgcolor="white",
        annotations=[
            {
                "text": "\u25cf visible   \u25b2 infrared",
                "showarrow": False,
                "xref": "paper",
                "yref": "paper",
                "x": 0,
                "y": 1.05,
            }
        ],
    )
    return fig


class TSNECache:
    """Remembers t-SNE embeddings by (model name, identity set, seed, perplexity).

    The caller guarantees that a key always goes with the same features (the app extracts the
    features of one model for one identity set). Least recently used entries are dropped
    beyond ``max_entries``.
    """

    def __init__(self, max_entries: int = 32) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()  # one computation at a time; callers of a key wait

    def __len__(self) -> int:
        return len(self._entries)

    def embedding(
        self,
        model_name: str,
        identities: Iterable[int],
        seed: int,
        features: Any,
        perplexity: float = 30.0,
    ) -> np.ndarray:
        """Return the cached ``tsne_embedding(features, seed, perplexity)``, computing it once."""
        key = (model_name, tuple(sorted(int(p) for p in identities)), seed, float(perplexity))
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
            else:
                self._entries[key] = tsne_embedding(features, seed=seed, perplexity=perplexity)
                if len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
            return self._entries[key]
