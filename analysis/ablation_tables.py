"""Reproduced ablation tables (the paper's Tables II and III): file format, comparison, charts.

A reproduced table has the paper's columns ``Method, Rank-1, Rank-10, Rank-20, mAP`` (percent)
plus ``variant`` (our model variant name), one row per variant in the paper's row order. The
paper's "DMM" row of Table III is our ``full`` model, as is Table II's "+ L_aln (Full)".

On disk a table is two files with one stem: ``<stem>.csv`` (the rows, for spreadsheets) and
``<stem>.json`` (the rows plus metadata; the file ``load_reproduced_table`` reads)::

    {"format": "cycletrans-reproduced-table", "version": 1, "paper_table": 2,
     "metadata": {"command": "...", "preset": "...", "seed": 0, "date": "2024-...Z", ...},
     "columns": ["Method", "Rank-1", ...], "rows": [{"Method": "Baseline", ...}, ...]}

Example:
    >>> from analysis.ablation_tables import compare_with_paper, reproduced_table
    >>> ours = reproduced_table(
    ...     {"baseline": {"r1": 0.5, "r10": 0.9, "r20": 0.95, "mAP": 0.45}}, table=2)
    >>> row = compare_with_paper(ours, 2).loc[0]
    >>> print(row["Rank-1 (ours)"], row["Rank-1 (paper)"], round(row["Rank-1 (diff)"], 2))
    50.0 58.99 -8.99
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from analysis.paper_tables import load_paper_table
from cycletrans.evaluation.tables import TABLE_FORMAT as FORMAT
from cycletrans.evaluation.tables import TABLE_METRICS as METRIC_KEYS
from cycletrans.evaluation.tables import TABLE_VERSION as VERSION
from cycletrans.evaluation.tables import table_row, write_table
from cycletrans.models.variants import ABLATION_TABLES as ABLATION_VARIANTS

METRICS = tuple(METRIC_KEYS)


def _check_table_number(table: int) -> None:
    if isinstance(table, bool) or table not in ABLATION_VARIANTS:
        raise ValueError(f"reproduced tables follow the paper's Table 2 or 3, got {table!r}")


def paper_rows(table: int) -> pd.DataFrame:
    """Return the paper's Table ``table`` (2 or 3) with our ``variant`` name for each row."""
    _check_table_number(table)
    paper = load_paper_table(table)
    paper.insert(1, "variant", list(ABLATION_VARIANTS[table]))
    return paper


def _validated(reproduced: pd.DataFrame, table: int) -> pd.DataFrame:
    """Check a reproduced table and return a copy in the paper's row and column order.

    A missing ``Method`` column is filled with the paper's names; extra columns are kept last.
    """
    _check_table_number(table)
    if not isinstance(reproduced, pd.DataFrame):
        raise ValueError(f"expected a pandas DataFrame, got {type(reproduced).__name__}")
    missing = [c for c in ("variant", *METRICS) if c not in reproduced.columns]
    if missing:
        raise ValueError(
            f"a reproduced table needs columns variant, {', '.join(METRICS)}; missing {missing} "
            f"in {list(reproduced.columns)}"
        )
    order = ABLATION_VARIANTS[table]
    variants = list(reproduced["variant"])
    unknown = [v for v in variants if v not in order]
    if unknown or len(set(variants)) != len(variants):
        raise ValueError(
            f"Table {table} variants must be distinct names among {list(order)}; got {variants}"
        )
    names = dict(zip(order, load_paper_table(table)["Method"], strict=True))
    table_df = reproduced.copy()
    if "Method" not in table_df.columns:
        table_df["Method"] = [names[v] for v in variants]
    for variant, method in zip(variants, table_df["Method"], strict=True):
        if method != names[variant]:
            raise ValueError(
                f"variant {variant!r} is the row {names[variant]!r} of Table {table}, "
                f"but its Method is {method!r}"
            )
    for metric in METRICS:
        values = pd.to_numeric(table_df[metric], errors="coerce")
        if values.isna().any() or not values.between(0, 100).all():
            raise ValueError(
                f"{metric} must be percentages in [0, 100], got {list(table_df[metric])}"
            )
        table_df[metric] = values.astype(float)
    table_df = table_df.sort_values("variant", key=lambda col: col.map(order.index), kind="stable")
    first = ["Method", *METRICS, "variant"]
    return table_df[first + [c for c in table_df.columns if c not in first]].reset_index(drop=True)


def reproduced_table(results: Mapping[str, Mapping[str, float]], table: int) -> pd.DataFrame:
    """Build a reproduced Table ``table`` (2 or 3) from evaluation results.

    Args:
        results: variant name -> metrics as returned by ``rank_metrics`` / ``evaluate_sysu``
            (keys ``r1, r10, r20, mAP``, fractions in [0, 1]). Any subset of the table's variants.
        table: the paper's table number, 2 or 3.

    Returns:
        DataFrame ``Method, Rank-1, Rank-10, Rank-20, mAP, variant`` in percent, paper row order.
    """
    rows = [table_row(variant, metrics) for variant, metrics in results.items()]
    return _validated(pd.DataFrame(rows, columns=["variant", *METRICS]), table)


def _json_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_suffix(".json") if path.suffix in (".json", ".csv") else Path(f"{path}.json")


def save_reproduced_table(
    df: pd.DataFrame,
    path_stem: str | Path,
    *,
    table: int,
    command: str | None = None,
    preset: str | None = None,
    seed: int | None = None,
    **metadata: Any,
) -> tuple[Path, Path]:
    """Write a reproduced table to ``<path_stem>.csv`` and ``<path_stem>.json``.

    Args:
        df: the table (see the module docstring); rows are put in the paper's order.
        path_stem: output path without suffix; parent folders are created.
        table: the paper's table it reproduces (2 or 3).
        command, preset, seed, metadata: provenance stored in the JSON, with the UTC ``date``.

    Returns:
        The CSV and JSON paths.
    """
    checked = _validated(df, table)
    return write_table(
        checked.to_dict(orient="records"),
        list(checked.columns),
        path_stem,
        table=table,
        metadata={"command": command, "preset": preset, "seed": seed, **metadata},
    )


def load_reproduced_table(path: str | Path) -> pd.DataFrame:
    """Read a table written by ``save_reproduced_table`` (give the .json, the .csv or the stem).

    Returns:
        The DataFrame; ``df.attrs["paper_table"]`` is 2 or 3 and ``df.attrs["metadata"]`` the
        provenance dict.
    """
    json_path = _json_path(path)
    if not json_path.is_file():
        raise FileNotFoundError(f"no reproduced table at {json_path} (expected the .json file)")
    try:
        document = json.loads(json_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{json_path} is not valid JSON: {error}") from error
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"{json_path} is not a reproduced table: expected format {FORMAT!r}")
    if document.get("version") != VERSION:
        raise ValueError(f"{json_path} has version {document.get('version')!r}, expected {VERSION}")
    table = document.get("paper_table")
    df = _validated(pd.DataFrame(document["rows"], columns=document["columns"]), table)
    df.attrs.update(paper_table=table, metadata=document.get("metadata", {}))
    return df


def compare_with_paper(reproduced: pd.DataFrame, paper_table_number: int) -> pd.DataFrame:
    """Put a reproduced table next to the paper's, row by row (matched by ``variant``).

    Returns:
        One row per paper row (paper order; ours NaN where a variant was not reproduced):
        ``Method, variant`` then, per metric, ``<m> (paper)``, ``<m> (ours)`` and
        ``<m> (diff)`` = ours - paper, in percentage points.
    """
    ours = _validated(reproduced, paper_table_number).set_index("variant")
    paper = paper_rows(paper_table_number)
    out = paper[["Method", "variant"]].copy()
    for metric in METRICS:
        ours_values = paper["variant"].map(ours[metric])
        out[f"{metric} (paper)"] = paper[metric]
        out[f"{metric} (ours)"] = ours_values
        out[f"{metric} (diff)"] = ours_values - paper[metric]
    return out


def ablation_chart(df: pd.DataFrame, metric: str, label: str = "Method") -> go.Figure:
    """Horizontal bar chart of one metric per row of a table (long row names stay readable).

    ``df`` is a paper or reproduced table (one bar per row) or the output of
    ``compare_with_paper`` (paper and ours side by side). ``label`` names the column that labels
    the bars.
    """
    if label not in df.columns:
        raise ValueError(f"no label column {label!r} in {list(df.columns)}")
    pairs = [(f"{metric} (paper)", "paper"), (f"{metric} (ours)", "ours")]
    if all(column in df.columns for column, _ in pairs):
        series = pairs
    elif metric in df.columns:
        series = [(metric, metric)]
    else:
        raise ValueError(
            f"no column {metric!r} (or {metric!r} (paper)/(ours)) in {list(df.columns)}"
        )
    labels = [str(value) for value in df[label]]
    fig = go.Figure()
    for column, name in series:
        values = pd.to_numeric(df[column], errors="coerce")
        fig.add_trace(
            go.Bar(
                y=labels,
                x=values,
                name=name,
                orientation="h",
                textposition="outside",
                text=[f"{v:.2f}" if pd.notna(v) else "" for v in values],
                cliponaxis=False,
            )
        )
    fig.update_layout(
        barmode="group",
        title=metric,
        yaxis_title=label,
        xaxis_title=f"{metric} (%)",
        showlegend=len(series) > 1,
        height=140 + 22 * len(labels) * len(series),
        margin={"l": 10, "r": 40},
        legend={"orientation": "h", "y": -0.15},
    )
    fig.update_yaxes(autorange="reversed", automargin=True)  # the table's first row on top
    return fig


def find_reproduced(results_dir: str | Path) -> dict[int, list[Path]]:
    """Reproduced tables (``.json`` files ``load_reproduced_table`` reads) under
    ``results_dir``, by the paper table they reproduce; files sorted by path."""
    found: dict[int, list[Path]] = {}
    root = Path(results_dir)
    for path in sorted(root.rglob("*.json")) if root.is_dir() else []:
        try:
            table = load_reproduced_table(path).attrs["paper_table"]
        except (ValueError, FileNotFoundError, KeyError, TypeError):
            continue
        found.setdefault(table, []).append(path)
    return found
