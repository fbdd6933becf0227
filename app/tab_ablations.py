"""Ablations tab (``/ablation``): the paper's Tables I-VI and, beside each, its reproduction.

Inputs ``table`` (1-6), ``metric`` (a column of that table to chart; empty = its first metric),
``reproduced`` (a reproduced table of that paper table under ``assets/results/``, as its path
relative to that folder; empty = the first one) and ``upload`` (a user's own reproduced-table
``.json``, which wins over ``reproduced``). Outputs: the paper's table, its chart, the
reproduced table next to the paper's (``analysis.ablation_tables.compare_with_paper``: paper,
ours and the difference in points per metric), its chart, and a status line (the caption, which
file and its provenance, or that the table is not reproduced and how to make it).

The two selectors are paired: choosing a paper table lists only its reproductions, and an
uploaded table switches to the paper table it reproduces. A file that is not a reproduced table
is said so in the status line; the paper's table stays.
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
    find_reproduced,
    load_reproduced_table,
)
from analysis.paper_tables import TABLE_NUMBERS, load_paper_table, readable_caption
from analysis.session import Session
from app.errors import api_endpoint, in_place

ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V", 6: "VI"}
HOW_TO = (
    "`python -m cycletrans ablate --preset demo --table 2 --table 3 --output "
    "runs/ablation/demo` writes `table2.json` / `table3.json`; put them under "
    "`assets/results/` or upload one here."
)


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
    table.insert(
        0, "setting", [f"k={k}, n={n}" for k, n in zip(table["k"], table["n"], strict=True)]
    )
    return table, "setting"


def metric_columns(number: int) -> list[str]:
    """The numeric columns of Table ``number`` (what can be charted)."""
    table, label = paper_view(number)
    return [
        c
        for c in table.columns
        if c not in (label, "k", "n") and pd.api.types.is_numeric_dtype(table[c])
    ]


def reproduced_choices(session: Session, number: int) -> list[str]:
    """The reproductions of Table ``number`` under the results folder (relative paths)."""
    return [
        path.relative_to(session.results_dir).as_posix()
        for path in find_reproduced(session.results_dir).get(number, [])
    ]


def _reproduced_path(session: Session, reproduced: str | None) -> Path:
    base = session.results_dir.resolve()
    path = (base / reproduced).resolve()
    if not path.is_relative_to(base):
        raise ValueError(
            f"reproduced tables are read from {session.results_dir.name}/ only, got {reproduced!r}"
        )
    return path


def _comparison(path: Path, number: int, metric: str) -> tuple[pd.DataFrame, Any, str]:
    """The reproduced table at ``path`` beside the paper's Table ``number``, or why not."""
    try:
        ours = load_reproduced_table(path)
    except (ValueError, FileNotFoundError, KeyError, TypeError) as error:
        reason = str(error).replace(str(path.with_suffix(".json")), path.name)
        return (
            pd.DataFrame(),
            None,
            (
                f"**{path.name} is not a reproduced table** ({reason}); "
                "the paper's table is unchanged."
            ),
        )
    ours_number = ours.attrs["paper_table"]
    if ours_number != number:
        return (
            pd.DataFrame(),
            None,
            (
                f"**{path.name} reproduces Table {ROMAN[ours_number]}**, "
                f"not Table {ROMAN[number]}: choose Table "
                f"{ROMAN[ours_number]} to compare."
            ),
        )
    comparison = compare_with_paper(ours, number).drop(columns="variant").round(2)
    chart = ablation_chart(comparison, metric if metric in METRICS else METRICS[0])
    chart.update_layout(title=f"{chart.layout.title.text}: paper vs ours")
    meta = ours.attrs.get("metadata", {})
    provenance = ", ".join(
        f"{k}={meta[k]}" for k in ("preset", "seed", "epochs", "date") if meta.get(k) is not None
    )
    return (
        comparison,
        chart,
        (
            f"**Reproduced Table {ROMAN[number]}** from `{path.name}`"
            + (f" ({provenance})" if provenance else "")
            + "; diff = ours - paper, in points."
        ),
    )


def ablation(
    session: Session, table: Any, metric: str | None, reproduced: str | None, upload: str | None
) -> tuple:
    """The ``/ablation`` endpoint (module docstring): the comparison is empty, its chart None,
    when there is none."""
    number = table_number(table)
    paper, label = paper_view(number)
    choices = metric_columns(number)
    metric = metric or choices[0]
    if metric not in choices:
        raise ValueError(f"Table {ROMAN[number]} has no metric {metric!r}: choose one of {choices}")
    status = [f"**Table {ROMAN[number]}:** {readable_caption(number)}"]
    comparison, chart = pd.DataFrame(), None
    available = reproduced_choices(session, number)
    if upload or reproduced or available:
        path = Path(upload) if upload else _reproduced_path(session, reproduced or available[0])
        comparison, chart, line = _comparison(path, number, metric)
        status.append(line)
    else:
        status.append(
            f"**Not reproduced:** no reproduction of Table {ROMAN[number]} among the "
            "reproduced tables"
            + (
                f". {HOW_TO}"
                if number in (2, 3)
                else " (the project reproduces Tables II and III)."
            )
        )
    return paper, ablation_chart(paper, metric, label=label), comparison, chart, "  \n".join(status)


def shown_tables(session: Session, *args: Any) -> tuple:
    """:func:`ablation` for the page: no empty comparison table or chart."""
    paper, paper_chart, comparison, chart, status = ablation(session, *args)
    shown = not comparison.empty
    return (
        paper,
        paper_chart,
        gr.Dataframe(comparison, visible=shown),
        gr.Plot(chart, visible=shown),
        status,
    )


def table_of_upload(upload: str | None) -> int | None:
    """The paper table an uploaded file reproduces (None when it is not a reproduced table)."""
    try:
        return load_reproduced_table(upload).attrs["paper_table"] if upload else None
    except (ValueError, FileNotFoundError, KeyError, TypeError):
        return None


def build(session: Session) -> None:
    """Lay out the tab (showing Table II) and wire its selectors."""
    first = metric_columns(2)
    files = reproduced_choices(session, 2)
    with gr.Row(equal_height=True):
        table = gr.Dropdown(
            [(f"Table {ROMAN[n]}", n) for n in TABLE_NUMBERS],
            value=2,
            label="Paper table",
            elem_id="paper-select",
        )
        metric = gr.Dropdown(
            first, value=first[0], label="Chart metric", allow_custom_value=True
        )  # the choices follow the table
        reproduced = gr.Dropdown(
            files,
            value=files[0] if files else None,
            label="Its reproduction (assets/results)",
            elem_id="reproduced-select",
            allow_custom_value=True,
        )
        upload = gr.UploadButton(
            "Upload a reproduced table (.json)",
            file_types=[".json"],
            type="filepath",
            elem_id="ablation-upload",
        )
    inputs = [table, metric, reproduced, upload]
    default = ablation(session, 2, first[0], files[0] if files else None, None)
    status = gr.Markdown(default[4], elem_id="ablation-status")
    paper = gr.Dataframe(
        default[0], label="Paper", interactive=False, wrap=True, elem_id="paper-table"
    )
    comparison = gr.Dataframe(
        default[2],
        label="Reproduced vs paper (diff = ours - paper)",
        interactive=False,
        wrap=True,
        elem_id="comparison-table",
        visible=not default[2].empty,
    )
    with gr.Row():
        paper_chart = gr.Plot(default[1], label="Paper chart")
        comparison_chart = gr.Plot(
            default[3], label="Reproduced vs paper chart", visible=not default[2].empty
        )
    outputs = [paper, paper_chart, comparison, comparison_chart, status]
    api_endpoint(functools.partial(ablation, session), inputs, outputs, "ablation")
    shown = in_place(functools.partial(shown_tables, session), len(outputs), len(outputs) - 1)

    def choices(number: int) -> tuple:
        metrics, files = metric_columns(number), reproduced_choices(session, number)
        return (
            gr.Dropdown(choices=metrics, value=metrics[0]),
            gr.Dropdown(choices=files, value=files[0] if files else None),
        )

    def select_table(number: Any) -> tuple:
        """A new paper table: its metrics and its reproductions; no upload."""
        return (*choices(table_number(number)), None)

    def uploaded(path: str | None, number: Any) -> tuple:
        """An upload switches to the paper table it reproduces (unless it is not one)."""
        found = table_of_upload(path)
        target = table_number(number) if found is None else found
        return (gr.Dropdown(value=target), *choices(target))

    private = {"api_visibility": "private"}
    table.input(select_table, [table], [metric, reproduced, upload], **private).then(
        shown, inputs, outputs, **private
    )
    metric.input(shown, inputs, outputs, **private)
    reproduced.input(lambda: None, None, [upload], **private).then(
        shown, inputs, outputs, **private
    )
    upload.upload(uploaded, [upload, table], [table, metric, reproduced], **private).then(
        shown, inputs, outputs, **private
    )
