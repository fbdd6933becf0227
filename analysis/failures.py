"""Failure mining: the worst queries of a model, their ranked lists, and which queries a model
fixes or breaks against a baseline.

Per-query results are a DataFrame with one row per query (``query_results`` builds it from
``rank_metrics``): ``path, pid, cam, ap, first_hit``. ``ap`` is NaN and ``first_hit`` 0 for a
query with no true match in its gallery; such queries are not failures and are left out.

A query is *fixed* by the model when the baseline's first true match is below rank 1
(``first_hit > 1``) and the model's is at rank 1; it is *broken* in the reverse case. Rank-1 is
the headline metric of the paper, so this is the definition; AP changes are reported alongside.

Example:
    >>> import numpy as np
    >>> from analysis.failures import compare_models, query_results, worst_queries
    >>> meta = {"paths": ["a.jpg", "b.jpg", "c.jpg"], "pids": [1, 2, 3], "cams": [3, 3, 6]}
    >>> base = query_results({"ap": np.array([0.2, 1.0, 0.5]),
    ...                       "first_hit": np.array([4, 1, 2])}, **meta)
    >>> model = query_results({"ap": np.array([1.0, 0.5, 0.5]),
    ...                        "first_hit": np.array([1, 2, 2])}, **meta)
    >>> worst_queries(base, k=2)["path"].tolist()
    ['a.jpg', 'c.jpg']
    >>> fixed, broken = compare_models(base, model)
    >>> fixed["path"].tolist(), broken["path"].tolist()
    (['a.jpg'], ['b.jpg'])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from analysis.arrays import as_numpy

QUERY_COLUMNS = ("path", "pid", "cam", "ap", "first_hit")


def query_results(
    metrics: Mapping[str, Any], paths: Sequence[str], pids: Sequence[int], cams: Sequence[int]
) -> pd.DataFrame:
    """Combine ``rank_metrics`` per-query arrays with the queries' metadata.

    Args:
        metrics: a dict holding ``ap`` ([Q], NaN when no true match) and ``first_hit``
            ([Q], 1-based, 0 when none), as returned by ``rank_metrics``.
        paths, pids, cams: the Q queries' image paths, identities and cameras.

    Returns:
        DataFrame ``query, path, pid, cam, ap, first_hit`` (``query`` = position, 0-based).
    """
    for key in ("ap", "first_hit"):
        if key not in metrics:
            raise ValueError(f"metrics lack {key!r}: got keys {sorted(metrics)}")
    ap = as_numpy(metrics["ap"]).astype(float).reshape(-1)
    first_hit = as_numpy(metrics["first_hit"]).astype(int).reshape(-1)
    columns = {
        "path": [str(p) for p in paths],
        "pid": as_numpy(pids).reshape(-1),
        "cam": as_numpy(cams).reshape(-1),
        "ap": ap,
        "first_hit": first_hit,
    }
    sizes = {name: len(values) for name, values in columns.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"per-query arrays differ in length: {sizes}")
    return pd.DataFrame({"query": np.arange(len(ap)), **columns})


def _check_results(results: pd.DataFrame, name: str = "results") -> None:
    if not isinstance(results, pd.DataFrame):
        raise ValueError(
            f"{name} must be a DataFrame from query_results, got {type(results).__name__}"
        )
    missing = [c for c in QUERY_COLUMNS if c not in results.columns]
    if missing:
        raise ValueError(f"{name} lack columns {missing}; expected {list(QUERY_COLUMNS)}")


def worst_queries(
    results: pd.DataFrame, k: int = 20, cams: Iterable[int] | None = None
) -> pd.DataFrame:
    """Return the ``k`` queries with the lowest AP (worst first; ties: later first hit first).

    Queries without a true match (NaN AP) are left out. ``cams`` keeps only queries from these
    cameras.
    """
    _check_results(results)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    valid = results[results["ap"].notna()]
    if cams is not None:
        valid = valid[valid["cam"].isin(list(cams))]
    ordered = valid.sort_values(["ap", "first_hit"], ascending=[True, False], kind="stable")
    return ordered.head(k).reset_index(drop=True)


def ranked_list(
    distmat_row: Any,
    gallery: pd.DataFrame,
    top_k: int = 10,
    query_pid: int | None = None,
    keep: Any = None,
) -> pd.DataFrame:
    """Return the top-k gallery images for one query, nearest first.

    Args:
        distmat_row: ``[G]`` distances from the query to every gallery image.
        gallery: G rows of gallery metadata (e.g. ``path, pid, cam``), in distance-matrix order.
        top_k: how many to return.
        query_pid: when given, a ``match`` column says which results share the query's identity.
        keep: optional ``[G]`` bool mask of the gallery images the protocol lets this query see
            (e.g. SYSU-MM01 camera-3 queries skip camera 2); the others are left out.

    Returns:
        DataFrame ``rank`` (1-based), ``gallery_index``, the gallery's columns, ``distance``
        (and ``match``).
    """
    distances = as_numpy(distmat_row).astype(float).reshape(-1)
    if len(distances) != len(gallery):
        raise ValueError(f"{len(distances)} distances but {len(gallery)} gallery rows")
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    candidates = np.arange(len(distances))
    if keep is not None:
        keep = as_numpy(keep).astype(bool).reshape(-1)
        if len(keep) != len(distances):
            raise ValueError(f"keep has {len(keep)} entries, expected {len(distances)}")
        candidates = candidates[keep]
    order = candidates[np.argsort(distances[candidates], kind="stable")][:top_k]
    table = gallery.iloc[order].reset_index(drop=True)
    table.insert(0, "gallery_index", order)
    table.insert(0, "rank", np.arange(1, len(order) + 1))
    table["distance"] = distances[order]
    if query_pid is not None:
        if "pid" not in gallery.columns:
            raise ValueError("query_pid needs a 'pid' column in the gallery metadata")
        table["match"] = table["pid"].to_numpy() == query_pid
    return table


class ModelComparison(NamedTuple):
    """Queries a model fixes and breaks against a baseline, largest rank change first."""

    fixed: pd.DataFrame
    broken: pd.DataFrame


def compare_models(baseline_results: pd.DataFrame, model_results: pd.DataFrame) -> ModelComparison:
    """Find the queries the model fixes (baseline first hit > 1, model's = 1) and breaks.

    Both results must describe the same queries in the same order (same path and pid).

    Returns:
        ``ModelComparison(fixed, broken)``; each DataFrame has ``query, path, pid, cam``,
        ``first_hit_baseline, first_hit_model, ap_baseline, ap_model, ap_change`` (model -
        baseline), sorted by the change of first-hit rank, then of AP, largest first.
    """
    _check_results(baseline_results, "baseline_results")
    _check_results(model_results, "model_results")
    if len(baseline_results) != len(model_results) or not (
        (baseline_results["path"].to_numpy() == model_results["path"].to_numpy()).all()
        and (baseline_results["pid"].to_numpy() == model_results["pid"].to_numpy()).all()
    ):
        raise ValueError("baseline and model results must list the same queries in the same order")
    both = pd.DataFrame(
        {
            "query": np.arange(len(model_results)),
            "path": model_results["path"].to_numpy(),
            "pid": model_results["pid"].to_numpy(),
            "cam": model_results["cam"].to_numpy(),
            "first_hit_baseline": baseline_results["first_hit"].to_numpy(),
            "first_hit_model": model_results["first_hit"].to_numpy(),
            "ap_baseline": baseline_results["ap"].to_numpy(),
            "ap_model": model_results["ap"].to_numpy(),
        }
    )
    both["ap_change"] = both["ap_model"] - both["ap_baseline"]
    valid = both[both["ap_baseline"].notna() & both["ap_model"].notna()]
    rank_change = (valid["first_hit_baseline"] - valid["first_hit_model"]).abs()
    valid = valid.assign(_rank=rank_change, _ap=valid["ap_change"].abs())

    def select(mask: pd.Series) -> pd.DataFrame:
        chosen = valid[mask].sort_values(["_rank", "_ap"], ascending=False, kind="stable")
        return chosen.drop(columns=["_rank", "_ap"]).reset_index(drop=True)

    fixed = select((valid["first_hit_baseline"] > 1) & (valid["first_hit_model"] == 1))
    broken = select((valid["first_hit_baseline"] == 1) & (valid["first_hit_model"] > 1))
    return ModelComparison(fixed, broken)
