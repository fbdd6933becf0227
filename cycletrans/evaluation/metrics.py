"""Retrieval metrics of VI-ReID: CMC (Rank-k), mAP and mINP from a query x gallery distance matrix.

Two protocols:

- ``"sysu"`` (SYSU-MM01's official evaluation): gallery images taken at the query's *location*
  are junk and removed from that query's ranked list. Cameras 2 (RGB) and 3 (IR) share a room, so
  a camera-3 query skips every camera-2 image whatever its id (and, generally, any image of the
  query's own camera). CMC is counted on the ranked list with repeated ids removed (each gallery
  id kept at its first occurrence, so multi-shot CMC takes each person's best match); mAP and
  mINP use every true match of the junk-removed list.
- ``"regdb"``: nothing is removed; plain CMC, mAP and mINP.

Definitions, per query with at least one true match in its (junk-removed) list, ranks 1-based:

- AP = mean over the true matches j of (true matches at ranks <= rank_j) / rank_j.
- INP = (number of true matches) / (rank of the last true match), as in AGW (Ye et al., 2021).
- first hit = rank of the first true match in the list used for CMC; CMC(k) = fraction of valid
  queries whose first hit is <= k.

Queries without a true match are not counted in any metric (``num_valid`` says how many were).
Ties: each ranked list is a *stable* sort by distance, so gallery items at equal distance keep
their gallery (column) order.

Example:
    >>> import numpy as np
    >>> d = np.array([[0.1, 0.2, 0.3]])
    >>> m = rank_metrics(d, [7], [5, 7, 7], [3], [1, 1, 4], "regdb")
    >>> m["r1"], round(m["mAP"], 4), m["first_hit"].tolist()
    (0.0, 0.5833, [2])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PROTOCOLS = ("sysu", "regdb")
METRICS = ("euclidean", "cosine")
SUMMARY_KEYS = ("r1", "r5", "r10", "r20", "mAP", "mINP")
RANKS = (1, 5, 10, 20)
_CHUNK_ELEMENTS = 1 << 19  # query rows per chunk = this // gallery size (cache-sized blocks)


def pairwise_distance(
    query: np.ndarray, gallery: np.ndarray, metric: str = "euclidean"
) -> np.ndarray:
    """Distance between every query and gallery feature, as float32.

    Args:
        query: ``[Q, D]`` features.
        gallery: ``[G, D]`` features.
        metric: ``"euclidean"`` (l2 distance of the raw features) or ``"cosine"``
            (1 - cosine similarity, i.e. on l2-normalised features).

    Returns:
        ``[Q, G]`` float32 distances (smaller = more similar).

    Example:
        >>> pairwise_distance(np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]])).tolist()
        [[5.0]]
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}: expected one of {METRICS}")
    q = np.asarray(query, dtype=np.float32)
    g = np.asarray(gallery, dtype=np.float32)
    if q.ndim != 2 or g.ndim != 2 or q.shape[1] != g.shape[1]:
        raise ValueError(
            f"expected query [Q, D] and gallery [G, D] features, got {q.shape} and {g.shape}"
        )
    if metric == "cosine":
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        g = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
        return 1.0 - q @ g.T
    # |q - g|^2 = |q|^2 + |g|^2 - 2 q.g, in place on the [Q, G] product
    dist = q @ g.T
    dist *= -2.0
    dist += np.einsum("ij,ij->i", q, q)[:, None]
    dist += np.einsum("ij,ij->i", g, g)[None, :]
    np.maximum(dist, 0.0, out=dist)
    return np.sqrt(dist, out=dist)


def rank_metrics(
    distmat: np.ndarray,
    q_ids: Sequence | np.ndarray,
    g_ids: Sequence | np.ndarray,
    q_cams: Sequence | np.ndarray,
    g_cams: Sequence | np.ndarray,
    protocol: str,
) -> dict:
    """CMC, mAP and mINP of a ranking, by the SYSU-MM01 or RegDB protocol (module docstring).

    Vectorised over chunks of queries: one stable sort per row, then array operations only.

    Args:
        distmat: ``[Q, G]`` query x gallery distances (finite; smaller = more similar).
        q_ids, g_ids: ``[Q]`` and ``[G]`` person ids.
        q_cams, g_cams: ``[Q]`` and ``[G]`` camera numbers (used by ``"sysu"`` only).
        protocol: ``"sysu"`` or ``"regdb"``.

    Returns:
        dict with ``r1, r5, r10, r20, mAP, mINP`` (floats in [0, 1], NaN if no query is valid;
        Rank-k with k > G is CMC(G)), ``num_queries``, ``num_valid`` (ints), and per query
        ``ap`` ([Q] float, NaN without a true match), ``inp`` ([Q] float, NaN likewise),
        ``first_hit`` ([Q] int, 1-based rank of the first true match in the list used for
        CMC, 0 when none), ``valid`` ([Q] bool), and ``cmc`` ([G] float curve over valid queries).

    Example:
        >>> d = np.array([[0.1, 0.2, 0.3, 0.4]])
        >>> m = rank_metrics(d, [1], [2, 2, 1, 1], [3], [1, 4, 1, 4], "sysu")
        >>> m["first_hit"].tolist(), m["ap"].round(3).tolist(), m["inp"].tolist()
        ([2], [0.417], [0.5])
    """
    return ranked_metrics(*_check_inputs(distmat, q_ids, g_ids, q_cams, g_cams, protocol), protocol)


def leave_one_out_metrics(distmat: np.ndarray, ids: Sequence | np.ndarray) -> dict:
    """:func:`rank_metrics` of N items ranked against each other, each without itself.

    Nothing else is removed (``"regdb"`` protocol): the gallery of item i is the other N - 1.

    Args:
        distmat: ``[N, N]`` distances between the items (row i: item i as the query).
        ids: ``[N]`` person ids.

    Returns:
        What :func:`rank_metrics` returns, over galleries of N - 1 items.

    Example:
        >>> d = np.array([[0.0, 0.2, 0.1], [0.2, 0.0, 0.3], [0.1, 0.3, 0.0]])
        >>> leave_one_out_metrics(d, [1, 2, 1])["first_hit"].tolist()
        [1, 0, 1]
    """
    shape = np.shape(distmat)
    if len(shape) != 2 or shape[0] != shape[1] or shape[0] < 2:
        raise ValueError(f"expected a square [N, N] distance matrix with N >= 2, got {shape}")
    zeros = np.zeros(np.shape(ids), dtype=np.int64)
    distmat, ids, _, cams, _ = _check_inputs(distmat, ids, ids, zeros, zeros, "regdb")
    return ranked_metrics(distmat, ids, ids, cams, cams, "regdb", leave_out_self=True)


def ranked_metrics(
    distmat: np.ndarray,
    q_ids: np.ndarray,
    g_ids: np.ndarray,
    q_cams: np.ndarray,
    g_cams: np.ndarray,
    protocol: str,
    columns: np.ndarray | None = None,
    leave_out_self: bool = False,
) -> dict:
    """:func:`rank_metrics` without input checks, the gallery given as columns of ``distmat``.

    For callers that rank several galleries drawn from one distance matrix (SYSU-MM01 trials):
    ``columns`` (``[G]``, ascending) picks the gallery's columns, saving a copy; None = all.
    ``leave_out_self``: query i is gallery item i, left out of its own list (the queries and
    the gallery are the same N items). Inputs must be valid NumPy arrays as
    :func:`rank_metrics` would make them.
    """
    columns = np.arange(distmat.shape[1]) if columns is None else columns
    num_q, num_g = q_ids.size, g_ids.size - leave_out_self
    id_values, g_labels = np.unique(g_ids, return_inverse=True)
    g_labels = g_labels.reshape(-1)
    # q_labels: the query's gallery label, -1 when its id is not in the gallery
    q_labels = np.minimum(np.searchsorted(id_values, q_ids), id_values.size - 1)
    q_labels = np.where(id_values[q_labels] == q_ids, q_labels, -1)
    ap = np.full(num_q, np.nan)
    inp = np.full(num_q, np.nan)
    first_hit = np.zeros(num_q, dtype=np.int64)
    for rows, kept in _query_groups(q_cams, g_cams, protocol):
        step = max(1, _CHUNK_ELEMENTS // max(1, kept.size))
        for start in range(0, rows.size if kept.size else 0, step):
            chunk = rows[start : start + step]
            dist = np.take(_rows(distmat, chunk), columns[kept], axis=1)  # a copy
            if leave_out_self:  # the query itself ranks last, then is cut off the list
                dist[np.arange(chunk.size), chunk] = np.inf
            ap[chunk], inp[chunk], first_hit[chunk] = _rank_chunk(
                dist,
                q_labels[chunk],
                g_labels[kept],
                id_values.size,
                protocol == "sysu",
                drop_last=leave_out_self,
            )
    valid = first_hit > 0
    num_valid = int(valid.sum())
    hits_at = np.bincount(first_hit[valid], minlength=num_g + 1)[1:]
    cmc = np.cumsum(hits_at) / num_valid if num_valid else np.full(num_g, np.nan)
    result = {f"r{k}": float(cmc[min(k, num_g) - 1]) for k in RANKS}
    result["mAP"] = float(ap[valid].mean()) if num_valid else float("nan")
    result["mINP"] = float(inp[valid].mean()) if num_valid else float("nan")
    result.update(
        num_queries=num_q,
        num_valid=num_valid,
        ap=ap,
        inp=inp,
        first_hit=first_hit,
        valid=valid,
        cmc=cmc,
    )
    return result


def mean_metrics(results: Sequence[dict]) -> dict:
    """Mean of the summary metrics (``r1 .. mINP``) over several results (trials).

    Example:
        >>> mean_metrics([{k: 0.5 for k in SUMMARY_KEYS}, {k: 1.0 for k in SUMMARY_KEYS}])["r1"]
        0.75
    """
    if not results:
        raise ValueError("expected at least one result to average, got none")
    return {k: float(np.mean([r[k] for r in results])) for k in SUMMARY_KEYS}


def _query_groups(
    q_cams: np.ndarray, g_cams: np.ndarray, protocol: str
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(query indices, gallery positions kept for them): the location rule of "sysu".

    Queries at one location share their junk (the gallery images at that location), so each
    location's queries are ranked against the gallery without it. "regdb": one group, all kept.
    """
    if protocol == "regdb":
        return [(np.arange(q_cams.size), np.arange(g_cams.size))]
    q_loc, g_loc = camera_location(q_cams), camera_location(g_cams)
    return [
        (np.flatnonzero(q_loc == loc), np.flatnonzero(g_loc != loc)) for loc in np.unique(q_loc)
    ]


def _rank_chunk(
    dist: np.ndarray,
    q_labels: np.ndarray,
    g_labels: np.ndarray,
    num_labels: int,
    dedup: bool,
    drop_last: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AP, INP and first-hit rank of a chunk of queries (``dist`` is ``[q, G]``, junk removed).

    ``dedup``: count the first hit in the ranked list with repeated ids removed.
    ``drop_last``: cut the last item off every ranked list.
    """
    ranked = _ranked_labels(dist, g_labels, num_labels)
    if drop_last:
        ranked = ranked[:, :-1]
    num_q, num_g = ranked.shape
    # true matches: rows ascending, columns (0-based ranks) ascending within a row
    # (flatnonzero + divmod: several times faster than a 2-D np.nonzero)
    rows, cols = np.divmod(np.flatnonzero(ranked == q_labels[:, None]), num_g)
    num_rel = np.bincount(rows, minlength=num_q)
    valid = num_rel > 0
    first = np.cumsum(num_rel) - num_rel  # index in rows/cols of each query's first match
    hits = np.arange(rows.size) - first[rows] + 1  # true matches up to and including this one
    precision_sum = np.bincount(rows, weights=hits / (cols + 1), minlength=num_q)
    ap = np.full(num_q, np.nan)
    ap[valid] = precision_sum[valid] / num_rel[valid]
    first_col = np.zeros(num_q, dtype=np.int64)
    first_col[valid] = cols[first[valid]]
    inp = np.full(num_q, np.nan)
    inp[valid] = num_rel[valid] / (cols[first[valid] + num_rel[valid] - 1] + 1)
    first_hit = _distinct_before(ranked, first_col, num_labels) if dedup else first_col
    return ap, inp, np.where(valid, first_hit + 1, 0)


def _ranked_labels(dist: np.ndarray, labels: np.ndarray, num_labels: int) -> np.ndarray:
    """Per row, the gallery labels in ranked order: a stable sort by distance (ties: column order).

    Equal to ``labels[np.argsort(dist, axis=1, kind="stable")]``. For float32 distances it
    sorts unique 64-bit keys instead, several times faster: high 32 bits an order-preserving
    integer image of the distance, low 32 bits ``column << b | label`` (the column breaks ties,
    the label is read back from the sorted keys, so no gather is needed).

    Args:
        dist: ``[q, G]`` finite distances.
        labels: ``[G]`` ints in ``[0, num_labels)``.

    Returns:
        ``[q, G]`` int64 labels.
    """
    num_g = dist.shape[1]
    label_bits = max(1, (num_labels - 1).bit_length())
    if dist.dtype != np.float32 or (num_g << label_bits) > 1 << 32:
        return labels[np.argsort(dist, axis=1, kind="stable")]
    bits = dist.view(np.int32)  # for floats >= +0.0 the bit patterns are in the same order
    if bits.min() < 0:  # some sign bit is set (a negative number or -0.0)
        bits = (dist + np.float32(0.0)).view(np.int32)  # + 0.0 turns -0.0 into +0.0
        flip = bits >> 31  # negative numbers: flip the magnitude bits to reverse their order
        flip &= 0x7FFFFFFF
        bits ^= flip
    keys = bits.astype(np.int64)
    keys <<= 32
    keys |= (np.arange(num_g, dtype=np.int64) << label_bits) | labels
    keys.sort(axis=1)
    keys &= (1 << label_bits) - 1
    return keys


def _distinct_before(ranked: np.ndarray, stop: np.ndarray, num_labels: int) -> np.ndarray:
    """Per row r, the number of distinct labels among ``ranked[r, :stop[r]]``.

    For the first true match at 0-based rank ``stop[r]``, this is its rank, minus one, once
    repeated ids are removed from the list.
    """
    num_q = ranked.shape[0]
    rows = np.repeat(np.arange(num_q), stop)
    cols = np.arange(rows.size) - np.repeat(np.cumsum(stop) - stop, stop)
    seen = np.zeros((num_q, num_labels), dtype=bool)
    seen[rows, ranked[rows, cols]] = True
    return seen.sum(axis=1)


def _rows(distmat: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``distmat[rows]``, as a view (no copy) when the rows are consecutive."""
    if rows[-1] - rows[0] + 1 == rows.size:
        return distmat[rows[0] : rows[-1] + 1]
    return np.take(distmat, rows, axis=0)


def camera_location(cams: np.ndarray) -> np.ndarray:
    """SYSU-MM01 location of each camera: camera 3 (indoor IR) is in camera 2's room.

    Gallery images at a query's location are junk for the ``"sysu"`` protocol.
    """
    return np.where(cams == 3, 2, cams)


def _check_inputs(
    distmat: np.ndarray,
    q_ids: Sequence | np.ndarray,
    g_ids: Sequence | np.ndarray,
    q_cams: Sequence | np.ndarray,
    g_cams: Sequence | np.ndarray,
    protocol: str,
) -> tuple[np.ndarray, ...]:
    """Validate and convert the inputs of :func:`rank_metrics`."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}: expected one of {PROTOCOLS}")
    distmat = np.asarray(distmat)
    if distmat.ndim != 2:
        raise ValueError(f"distmat must be [Q, G], got shape {distmat.shape}")
    if distmat.shape[0] == 0 or distmat.shape[1] == 0:
        raise ValueError(f"need at least one query and one gallery item, got {distmat.shape}")
    if distmat.dtype == np.float16:
        distmat = distmat.astype(np.float32)
    elif not np.issubdtype(distmat.dtype, np.floating):
        distmat = distmat.astype(np.float64)
    if not np.isfinite(distmat).all():
        raise ValueError("distmat holds NaN or infinite values")
    arrays = []
    for name, values, size in (
        ("q_ids", q_ids, distmat.shape[0]),
        ("g_ids", g_ids, distmat.shape[1]),
        ("q_cams", q_cams, distmat.shape[0]),
        ("g_cams", g_cams, distmat.shape[1]),
    ):
        values = np.asarray(values)
        if values.shape != (size,):
            raise ValueError(
                f"{name} must have shape ({size},) to match distmat {distmat.shape}, "
                f"got {values.shape}"
            )
        arrays.append(values)
    return (distmat, *arrays)
