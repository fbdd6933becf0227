"""Cross-modality search over a set of test features: one query's ranked list, AP and first hit.

The gallery of a query is every image of the *other* modality (no single-shot sampling), ranked
by the evaluation's distance (``cycletrans.evaluation.pairwise_distance``, euclidean by default,
as the official protocols use). When the query's identity and camera are known (it is a test
image) its AP and first-hit rank come from ``cycletrans.evaluation.rank_metrics`` with the
dataset's protocol, so SYSU-MM01's location rule applies: a camera-3 query never sees camera-2
images (nor any query its own camera), and the first hit is counted on the ranked list with
repeated identities removed. The displayed ranked list leaves out the same junk images.

Example:
    >>> import numpy as np
    >>> from cycletrans.engine.inference import FeatureSet
    >>> gallery = FeatureSet(features=np.array([[0.0, 1.0], [1.0, 0.0], [0.9, 0.1]]),
    ...                      ids=np.array([7, 8, 7]), cams=np.array([1, 2, 4]),
    ...                      frames=np.array([1, 1, 1]), modalities=np.zeros(3, dtype=int),
    ...                      paths=np.array(["a.jpg", "b.jpg", "c.jpg"]))
    >>> result = search(np.array([1.0, 0.0]), gallery, top_k=2, protocol="sysu",
    ...                 query_pid=7, query_cam=3)
    >>> result.ranking["path"].tolist(), result.first_hit, round(result.ap, 3)
    (['c.jpg', 'a.jpg'], 1, 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.failures import ranked_list
from cycletrans.engine.inference import FeatureSet
from cycletrans.evaluation import camera_location, pairwise_distance, rank_metrics
from cycletrans.modality import INFRARED, VISIBLE, modality_index, modality_name


@dataclass
class SearchResult:
    """One query's ranked gallery.

    Attributes:
        ranking: top-k rows ``rank, gallery_index, path, pid, cam, distance, similarity``
            (cosine similarity of the two features) and ``match`` (True/False, or None when the
            query's identity is unknown).
        ap: the query's average precision (None when its identity is unknown or absent from
            the gallery).
        first_hit: 1-based CMC rank of the first true match (None likewise): with SYSU-MM01's
            protocol, counted on the list with repeated identities removed.
        first_position: 1-based position of the first true match in the ranked list (None
            likewise); equals ``first_hit`` unless identities repeat before it.
        gallery_size: images the query was ranked against (after the protocol's junk rule).
        no_match: why a query of known identity has no true match ("" otherwise).
    """

    ranking: pd.DataFrame
    ap: float | None
    first_hit: int | None
    gallery_size: int
    first_position: int | None = None
    no_match: str = ""


def modality_halves(features: FeatureSet) -> dict[int, FeatureSet]:
    """Modality code (``VISIBLE``, ``INFRARED``) -> the features of that modality's images."""
    return {code: features.subset(features.modalities == code) for code in (VISIBLE, INFRARED)}


def gallery_keep(query_cam: int | None, gallery_cams: np.ndarray, protocol: str) -> np.ndarray:
    """``[G]`` bool: the gallery images the protocol ranks a query from ``query_cam`` against.

    ``"sysu"``: images at the query's camera location are junk (camera 3 shares camera 2's
    room). ``"regdb"``, or an unknown camera: everything is kept.
    """
    if protocol == "regdb" or query_cam is None:
        return np.ones(len(gallery_cams), dtype=bool)
    return camera_location(np.asarray(gallery_cams)) != camera_location(np.asarray([query_cam]))[0]


def _cosine(query: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """Cosine similarity of one ``[D]`` query with ``[G, D]`` gallery rows."""
    q = query / max(float(np.linalg.norm(query)), 1e-12)
    g = gallery / np.maximum(np.linalg.norm(gallery, axis=1, keepdims=True), 1e-12)
    return g @ q


def search(
    query_feature: np.ndarray,
    gallery: FeatureSet,
    top_k: int,
    protocol: str,
    query_pid: int | None = None,
    query_cam: int | None = None,
    metric: str = "euclidean",
    distances: np.ndarray | None = None,
) -> SearchResult:
    """Rank ``gallery`` for one query feature.

    Args:
        query_feature: ``[D]`` the query's retrieval feature.
        gallery: the gallery's features and metadata (e.g. from :func:`modality_halves`).
        top_k: rows of the returned ranking (fewer if the gallery is smaller).
        protocol: ``"sysu"`` or ``"regdb"`` (junk rule and CMC, see the module docstring).
        query_pid, query_cam: the query's identity and camera when known; the pid enables AP,
            first hit and the ``match`` column, the camera the SYSU-MM01 location rule.
        metric: ``"euclidean"`` or ``"cosine"`` distance for ranking.
        distances: the query's ``[G]`` distances to the gallery if already computed (a row of
            :attr:`CrossModality.distances`, so that a test query ranks exactly as in the
            whole split's evaluation); computed from ``query_feature`` when None.

    Returns:
        A :class:`SearchResult`.
    """
    query = np.asarray(query_feature, dtype=np.float32).reshape(-1)
    if query.shape[0] != gallery.features.shape[1]:
        raise ValueError(
            f"query feature has {query.shape[0]} values, gallery features "
            f"{gallery.features.shape[1]}"
        )
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    if len(gallery.features) == 0:
        raise ValueError("the gallery is empty")
    if query_pid is not None and query_cam is None and protocol == "sysu":
        raise ValueError("a known SYSU-MM01 query needs its camera for the location rule")
    if distances is None:
        distances = pairwise_distance(query[None], gallery.features, metric)[0]
    elif distances.shape != (len(gallery.features),):
        raise ValueError(f"expected [{len(gallery.features)}] distances, got {distances.shape}")
    keep = gallery_keep(query_cam, gallery.cams, protocol)
    table = pd.DataFrame({"path": gallery.paths, "pid": gallery.ids, "cam": gallery.cams})
    ranking = ranked_list(distances, table, top_k=top_k, query_pid=query_pid, keep=keep)
    ranking["similarity"] = _cosine(query, gallery.features[ranking["gallery_index"].to_numpy()])
    if query_pid is None:
        ranking["match"] = None
        return SearchResult(ranking, None, None, int(keep.sum()))
    metrics = rank_metrics(
        distances[None],
        [query_pid],
        gallery.ids,
        [query_cam if query_cam is not None else 0],
        gallery.cams,
        protocol,
    )
    if not metrics["valid"][0]:
        return SearchResult(
            ranking, None, None, int(keep.sum()), no_match=no_match_reason(query_pid, gallery, keep)
        )
    kept = np.flatnonzero(keep)
    ordered = gallery.ids[kept[np.argsort(distances[kept], kind="stable")]]
    return SearchResult(
        ranking,
        float(metrics["ap"][0]),
        int(metrics["first_hit"][0]),
        int(keep.sum()),
        int(np.flatnonzero(ordered == query_pid)[0]) + 1,
    )


def no_match_reason(pid: int, gallery: FeatureSet, keep: np.ndarray) -> str:
    """Why a query of identity ``pid`` has no true match among the ``keep`` gallery images."""
    other = modality_name(int(gallery.modalities[0])) if len(gallery.modalities) else "gallery"
    present = gallery.ids == pid
    if not present.any():
        return f"identity {pid} has no {other} image in the test split"
    cams = sorted({int(c) for c in gallery.cams[present]})
    return (
        f"all {int(present.sum())} {other} images of identity {pid} (camera"
        f"{'s' if len(cams) > 1 else ''} {', '.join(map(str, cams))}) were taken at this "
        "query's camera location, which the SYSU-MM01 protocol leaves out (cameras 2 and "
        "3 share a room)"
    )


@dataclass
class CrossModality:
    """Every test image of one modality (queries) against every one of the other (gallery).

    Attributes:
        queries, gallery: the two halves of the split's features.
        distances: ``[Q, G]`` query x gallery distances.
        query_index: ``[Q]`` position of each query in the split's features.
    """

    queries: FeatureSet
    gallery: FeatureSet
    distances: np.ndarray
    query_index: np.ndarray

    def row(self, index: int) -> np.ndarray:
        """The ``[G]`` distances of the split's image ``index`` (a query of this modality)."""
        position = int(np.searchsorted(self.query_index, index))
        if position >= len(self.query_index) or self.query_index[position] != index:
            raise ValueError(f"image {index} of the split is not one of these queries")
        return self.distances[position]


def cross_modality(
    features: FeatureSet,
    query_modality: str | int,
    metric: str = "euclidean",
    halves: dict[int, FeatureSet] | None = None,
) -> CrossModality:
    """Queries of ``query_modality`` against the other modality, with their distances.

    ``halves``: :func:`modality_halves` of ``features`` when already made, so that the two
    directions share one copy of the features.
    """
    code = modality_index(query_modality)
    halves = modality_halves(features) if halves is None else halves
    other = INFRARED if code == VISIBLE else VISIBLE
    queries, gallery = halves[code], halves[other]
    if len(queries.features) == 0 or len(gallery.features) == 0:
        raise ValueError(
            f"need images of both modalities, got {len(queries.features)} queries "
            f"and {len(gallery.features)} gallery images"
        )
    return CrossModality(
        queries,
        gallery,
        pairwise_distance(queries.features, gallery.features, metric),
        np.flatnonzero(features.modalities == code),
    )
