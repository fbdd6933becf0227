"""Ablations tab (``/ablation``): the paper's Tables I-VI and the project's reproduced tables.

Inputs ``table`` (1-6), ``metric`` (a column of that table to chart; empty = its first metric),
``reproduced`` (a reproduced table under ``assets/results/``, as its path relative to that
folder; empty = none) and ``upload`` (a user's own reproduced-table ``.json``, which wins over
``reproduced``). Outputs: the paper's table (sortable), its chart, the reproduced table next to
the paper's (``analysis.ablation_tables.compare_with_paper``: paper, ours and the difference in
points per metric), its chart, and a status line (which file, its provenance, or that no
reproduced table exists yet and how to make one).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from analysis.ablation_tables import (
    METRICS,
    ablation_chart,
    compare_with_paper,
    load_reproduced_table,
)
from analysis.paper_tables import TABLE_NUMBERS, load_paper_table, paper_table_info
from app.context import AppContext
from app.errors import user_errors

ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V", 6: "VI"}
HOW_TO = ("No reproduced table yet: `python -m cycletrans ablate --preset demo --table 2 "
          "--table 3 --output runs/ablation/demo` writes `table2.json` / `table3.json`; put "
          "them under `assets/results/` or upload one here.")


def table_number(table: Any) -> int:
    """1..6 from ``2``, ``"2"``, ``"II"`` or ``"Table II"``."""
    text = str(table).strip().removeprefix("Table").strip()
    for number, roman in ROMAN.items():
        if text in (str(number), roman):
            return number
    raise ValueError(f"the paper has Tables I-VI: expected 1..6, got {table!r}")


def paper_view(number: int) -> tuple[pd.DataFrame, str]:
    """The paper's table and the name of the column that labels its rows (Table I: k, n)."""
    table = load_paper_table(number)
    if "Method" in table.columns:
        return table, "Method"
    table.insert(0, "setting", [f"k={k}, n={n}" for k, n in zip(table["k"], table["n"],
                                                                 strict=True)])
    return table, "setting"


def metric_columns(number: int) -> list[str]:
    """The numeric columns of Table ``number`` (what can be charted)."""
    table, label = paper_view(number)
    return [c for c in table.columns if c not in (label, "k", "n")
            and pd.api.types.is_numeric_dtype(table[c])]


def reproduced_files(results_dir: Path) -> list[str]:
    """Reproduced tables (``.json``) under ``results_dir``, relative paths, sorted."""
    if not results_dir.is_dir():
        return []
    found = []
    for path in sorted(results_dir.rglob("*.json")):
        try:
            load_reproduced_table(path)
        except (ValueError, FileNotFoundError, KeyError, TypeError):
            continue
        found.append(path.relative_to(results_dir).as_posix())
    return found


def _reproduced_path(context: AppContext, reproduced: str | None, upload: str | None
                     ) -> Path | None:
    if upload:
        return Path(upload)
    if not reproduced:
        return None
    base = context.results_dir.resolve()
    path = (base / reproduced).resolve()
    if not path.is_relative_to(base):
        raise ValueError(f"reproduced tables are read from {context.results_dir} only, got "
                         f"{reproduced!r}")
    return path


def ablation(context: AppContext, table: Any, metric: str | None, reproduced: str | None,
             upload: str | None) -> tuple:
    """The ``/ablation`` endpoint (module docstring)."""
    number = table_number(table)
    paper, label = paper_view(number)
    choices = metric_columns(number)
    metric = metric or choices[0]
    if metric not in choices:
        raise ValueError(f"Table {ROMAN[number]} has no metric {metric!r}: choose one of "
                         f"{choices}")
    info = paper_table_info(number)
    status = [f"**Table {ROMAN[number]}** ({info['setting']}): {info['caption'].capitalize()}"]
    path = _reproduced_path(context, reproduced, upload)
    comparison, comparison_chart = pd.DataFrame(), None
    if path is None:
        status.append(HOW_TO if not reproduced_files(context.results_dir) else
                      "Choose a reproduced table to compare with the paper.")
    else:
        ours = load_reproduced_table(path)
        ours_number = ours.attrs["paper_table"]
        comparison = compare_with_paper(ours, ours_number).round(2)
        chart_metric = metric if metric in METRICS else METRICS[0]
        comparison_chart = ablation_chart(comparison, chart_metric)
        comparison_chart.update_layout(title=f"{chart_metric}: paper vs ours "
                                             f"(Table {ROMAN[ours_number]})")
        meta = ours.attrs.get("metadata", {})
        provenance = ", ".join(f"{k}={meta[k]}" for k in ("preset", "seed", "epochs", "date")
                               if meta.get(k) is not None)
        status.append(f"**Reproduced Table {ROMAN[ours_number]}** from `{path.name}`"
                      + (f" ({provenance})" if provenance else "")
                      + "; diff = ours - paper, in points.")
    return (paper, ablation_chart(paper, metric, label=label), comparison, comparison_chart,
            "  \n".join(status))


def build(context: AppContext) -> tuple[list, list, Any]:
    """Lay out the tab; changing the table refreshes the metric choices.

    Returns the inputs, outputs and bound handler (the app fills the tab on page load).
    """
    files = reproduced_files(context.results_dir)
    with gr.Row():
        table = gr.Dropdown([(f"Table {ROMAN[n]}", n) for n in TABLE_NUMBERS], value=2,
                            label="Paper table")
        metric = gr.Dropdown(metric_columns(2), value=metric_columns(2)[0], label="Chart metric",
                             allow_custom_value=True)
        reproduced = gr.Dropdown(["", *files], value=files[0] if files else "",
                                 label="Reproduced table (assets/results)",
                                 allow_custom_value=True)
        upload = gr.File(label="…or upload a reproduced table (.json)", file_types=[".json"],
                         type="filepath", height=120)
        show = gr.Button("Show", variant="primary", elem_id="ablation-button")
    status = gr.Markdown(elem_id="ablation-status")
    with gr.Row():
        paper = gr.Dataframe(label="Paper", interactive=False, elem_id="paper-table")
        paper_chart = gr.Plot(label="Paper chart")
    with gr.Row():
        comparison = gr.Dataframe(label="Reproduced vs paper", interactive=False)
        comparison_chart = gr.Plot(label="Reproduced vs paper chart")
    run = user_errors(functools.partial(ablation, context))
    inputs = [table, metric, reproduced, upload]
    outputs = [paper, paper_chart, comparison, comparison_chart, status]
    show.click(run, inputs, outputs, api_name="ablation")

    def metrics_of(number: int) -> Any:
        choices = metric_columns(table_number(number))
        return gr.Dropdown(choices=choices, value=choices[0])

    table.input(user_errors(metrics_of), [table], [metric], api_visibility="private"
                ).success(run, inputs, outputs, api_visibility="private")
    for event in (metric.input, reproduced.input, upload.change):
        event(run, inputs, outputs, api_visibility="private")
    return inputs, outputs, run
