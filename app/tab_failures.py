"""Failure cases tab (``/failures``): the worst queries of a model and what CycleTrans changes.

Inputs ``model``, ``modality`` (of the queries; the gallery is the other modality), ``cameras``
(query cameras to keep, e.g. ``["3"]``; empty = all) and ``count``. Every test image of that
modality is a query against every image of the other (``analysis.retrieval``; SYSU-MM01's
location rule applies). Outputs: the ``count`` worst queries by AP with their top-10 ranked
identities (``✓`` a true match); the worst query's ranked list as a gallery; the queries
CycleTrans fixes and breaks against the Baseline (first true match moved to / away from rank
1, ``analysis.failures.compare_models``); a summary. Selecting a row of any table opens that
query in the Retrieval and Attention tabs.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from analysis.failures import compare_models, worst_queries
from app.context import BASELINE, CYCLETRANS, AppContext
from app.errors import user_errors, whole_number
from app.tab_attention import AttentionTab
from app.tab_retrieval import MARKS, RetrievalTab, caption
from cycletrans.modality import MODALITIES, modality_index, modality_name

RANKED = 10
MAX_COUNT = 100
FILE = "file"  # the column holding the query's path relative to the dataset root


def query_cameras(context: AppContext, modality: str) -> list[int]:
    """Cameras of the test images of ``modality``."""
    code = modality_index(modality)
    return sorted({r.cam for r in context.split.records if r.modality == code})


def _cameras(value: Any) -> list[int] | None:
    if value is None or value == "" or value == []:
        return None
    items = value if isinstance(value, list | tuple) else [value]
    try:
        return [int(c) for c in items]
    except (TypeError, ValueError):
        raise ValueError(f"cameras must be camera numbers, got {value!r}") from None


def _in_cameras(table: pd.DataFrame, cams: list[int] | None) -> pd.DataFrame:
    return table if cams is None else table[table["cam"].isin(cams)]


def _relative(context: AppContext, paths: pd.Series) -> list[str]:
    return [Path(p).relative_to(context.split.root).as_posix() for p in paths]


def _ranked_ids(context: AppContext, model: str, path: str) -> str:
    result = context.search(model, context.test_query(context.path_index[path]), RANKED)
    return " ".join(f"{MARKS[bool(m)]}{pid}" for pid, m in
                    zip(result.ranking["pid"], result.ranking["match"], strict=True))


def _display(context: AppContext, table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    shown = table.assign(**{FILE: _relative(context, table["path"])})
    return shown[[FILE, *columns]].round(3)


def failures(context: AppContext, model: str, modality: str, cameras: Any, count: float
             ) -> tuple[pd.DataFrame, list, pd.DataFrame, pd.DataFrame, str]:
    """The ``/failures`` endpoint (module docstring)."""
    entry = context.model(model)
    modality = modality_name(modality)
    count = whole_number(count, "count", 1, MAX_COUNT)
    cams = _cameras(cameras)
    available = query_cameras(context, modality)
    if cams is not None and not set(cams) <= set(available):
        raise ValueError(f"{modality} queries come from cameras {available}, got {cams}")
    results = context.query_results(entry.name, modality)
    worst = worst_queries(results, k=count, cams=cams)
    worst = worst.assign(**{f"top-{RANKED} ids": [_ranked_ids(context, entry.name, p)
                                                   for p in worst["path"]]})
    worst_table = _display(context, worst, ["pid", "cam", "ap", "first_hit",
                                            f"top-{RANKED} ids"])
    ranked: list[tuple[str, str]] = []
    if len(worst):
        query = context.test_query(context.path_index[worst["path"].iloc[0]])
        result = context.search(entry.name, query, RANKED)
        ranked = [(str(query.path), f"query · id={query.record.pid} · cam {query.record.cam}")]
        ranked += [(str(row["path"]), caption(row)) for _, row in result.ranking.iterrows()]
    columns = ["pid", "cam", "first_hit_baseline", "first_hit_model", "ap_baseline",
               "ap_model", "ap_change"]
    fixed = broken = pd.DataFrame(columns=[FILE, *columns])
    valid = _in_cameras(results[results["ap"].notna()], cams)
    lines = [f"**{entry.name}**, {modality} queries"
             + (f" from cameras {cams}" if cams else "")
             + f": {len(valid)} with a true match, mAP {100 * valid['ap'].mean():.2f}, "
             f"Rank-1 {100 * (valid['first_hit'] == 1).mean():.2f}."]
    if BASELINE in context.models:
        comparison = compare_models(context.query_results(BASELINE, modality),
                                    context.query_results(CYCLETRANS, modality))
        fixed = _display(context, _in_cameras(comparison.fixed, cams), columns)
        broken = _display(context, _in_cameras(comparison.broken, cams), columns)
        lines.append(f"{CYCLETRANS} against {BASELINE}: **{len(fixed)} fixed** (first true "
                     f"match moved to rank 1), **{len(broken)} broken** (moved away from it).")
    else:
        lines.append(f"No {BASELINE} model is loaded: nothing to compare {CYCLETRANS} with.")
    return worst_table, ranked, fixed, broken, "  \n".join(lines)


def open_query(context: AppContext, file: str) -> tuple[str, str]:
    """``(path, modality)`` of the test image at ``file`` (relative to the dataset root)."""
    path = str(context.split.root / file)
    if path not in context.path_index:
        raise ValueError(f"{file!r} is not a test image")
    return path, modality_name(context.split.records[context.path_index[path]].modality)


def build(context: AppContext, retrieval: RetrievalTab, attention: AttentionTab,
          tabs: gr.Tabs, retrieval_tab_id: str) -> None:
    """Lay out the tab; selecting a row opens the query in the Retrieval and Attention tabs."""
    with gr.Row():
        model = gr.Dropdown(context.model_names, value=CYCLETRANS, label="Model")
        modality = gr.Radio(list(MODALITIES[::-1]), value="infrared", label="Query modality")
        cameras = gr.CheckboxGroup(
            [(f"{c} ({name})", str(c)) for name in MODALITIES[::-1]
             for c in query_cameras(context, name)],
            label="Query cameras (none = all of the query modality)")
        count = gr.Slider(1, MAX_COUNT, value=20, step=1, label="Worst queries")
        button = gr.Button("Find failures", variant="primary", elem_id="failures-button")
    summary = gr.Markdown(elem_id="failures-summary")
    worst = gr.Dataframe(label="Worst queries by AP (select a row to open it)",
                         interactive=False, elem_id="worst-table")
    ranked = gr.Gallery(label="The worst query and its ranked list", columns=RANKED + 1,
                        height="auto", object_fit="contain", format="png")
    with gr.Row():
        fixed = gr.Dataframe(label=f"Fixed by {CYCLETRANS} (vs {BASELINE})", interactive=False)
        broken = gr.Dataframe(label=f"Broken by {CYCLETRANS} (vs {BASELINE})",
                              interactive=False)
    inputs = [model, modality, cameras, count]
    outputs = [worst, ranked, fixed, broken, summary]
    run = user_errors(functools.partial(failures, context))
    button.click(run, inputs, outputs, api_name="failures", concurrency_limit=1)

    def select(table: pd.DataFrame, evt: gr.SelectData) -> tuple:
        file = evt.row_value[list(table.columns).index(FILE)] if evt.row_value else None
        if not file:
            raise gr.Error("select a row of the table")
        try:
            path, query_modality = open_query(context, file)
        except ValueError as error:
            raise gr.Error(str(error)) from error
        return (path, query_modality, path, query_modality, gr.Tabs(selected=retrieval_tab_id))

    targets = [retrieval.image, retrieval.modality, attention.image, attention.modality, tabs]
    for table in (worst, fixed, broken):
        table.select(select, [table], targets, api_visibility="private"
                     ).success(retrieval.run, retrieval.inputs, retrieval.outputs,
                               api_visibility="private"
                     ).success(attention.run, attention.inputs, attention.outputs,
                               api_visibility="private")
