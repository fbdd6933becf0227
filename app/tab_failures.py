"""Failure cases tab (``/failures``): the worst queries of a model and what CycleTrans changes.

Inputs ``model``, ``modality`` (of the queries; the gallery is the other modality), ``cameras``
(query cameras of that modality to keep, e.g. ``["3"]``; empty = all) and ``count``. Every test
image of that modality is a query against every image of the other (SYSU-MM01's location rule
applies). Outputs: the ``count`` worst queries by AP with their top-10 ranked identities (``✓``
a true match); the worst query's ranked list as a gallery; the queries CycleTrans fixes and
breaks against the Baseline (first true match moved to / away from rank 1,
``analysis.failures.compare_models``); a summary with the selection's mAP and Rank-1
(``cycletrans.evaluation.rank_metrics`` through the session). In the page, selecting a row of
any table opens that query in the Retrieval and Attention tabs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from analysis.failures import compare_models, worst_queries
from analysis.session import BASELINE, CYCLETRANS, Session, modality_name
from app.errors import api_endpoint, in_place, whole_number
from app.formatting import MARKS, MODALITY_CHOICES, gallery
from app.media import Media

RANKED = 10
MAX_COUNT = 100
DEFAULT_COUNT = 20
FILE = "file"  # the column holding the query's path relative to the dataset root
COMPARED = [
    "pid",
    "cam",
    "first_hit_baseline",
    "first_hit_model",
    "ap_baseline",
    "ap_model",
    "ap_change",
]
OPENS = "select a row to open the query in the Retrieval and Attention tabs"
HEADERS = {
    "pid": "id",
    "ap": "AP",
    "first_hit": "first match (CMC rank)",
    "first_hit_baseline": f"first match, {BASELINE}",
    "first_hit_model": f"first match, {CYCLETRANS}",
    "ap_baseline": f"AP, {BASELINE}",
    "ap_model": f"AP, {CYCLETRANS}",
    "ap_change": "AP change",
}


def camera_choices(session: Session, modality: str) -> list[tuple[str, str]]:
    """``(label, value)`` of the query cameras of ``modality``."""
    return [(f"camera {c}", str(c)) for c in session.cameras(modality)]


def _cameras(session: Session, value: Any, modality: str) -> list[int] | None:
    if value is None or value == "" or value == []:
        return None
    items = value if isinstance(value, list | tuple) else [value]
    try:
        cams = [int(c) for c in items]
    except (TypeError, ValueError):
        raise ValueError(f"cameras must be camera numbers, got {value!r}") from None
    available = session.cameras(modality)
    if not set(cams) <= set(available):
        raise ValueError(f"{modality} queries come from cameras {available}, got {cams}")
    return sorted(set(cams))


def _in_cameras(table: pd.DataFrame, cams: list[int] | None) -> pd.DataFrame:
    return table if cams is None else table[table["cam"].isin(cams)]


def _ranked_ids(session: Session, model: str, path: str) -> str:
    result = session.search(model, session.test_query(session.path_index[path]), RANKED)
    return " ".join(
        f"{MARKS[bool(m)]}{pid}"
        for pid, m in zip(result.ranking["pid"], result.ranking["match"], strict=True)
    )


def _display(session: Session, table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The ``columns`` of ``table`` under readable names, the file first."""
    shown = table.assign(**{FILE: [session.relative(p) for p in table["path"]]})
    return shown[[FILE, *columns]].round(3).rename(columns=HEADERS)


def failures(
    session: Session, media: Media, model: str, modality: str, cameras: Any, count: float
) -> tuple[pd.DataFrame, list, pd.DataFrame, pd.DataFrame, str]:
    """The ``/failures`` endpoint (module docstring)."""
    entry = session.model(model)
    modality = modality_name(modality)
    count = whole_number(count, "count", 1, MAX_COUNT)
    cams = _cameras(session, cameras, modality)
    results = session.query_results(entry.name, modality)
    worst = worst_queries(results, k=count, cams=cams)
    worst = worst.assign(
        **{f"top-{RANKED} ids": [_ranked_ids(session, entry.name, p) for p in worst["path"]]}
    )
    worst_table = _display(session, worst, ["pid", "cam", "ap", "first_hit", f"top-{RANKED} ids"])
    ranked: list[tuple[str, str]] = []
    if len(worst):
        query = session.test_query(session.path_index[worst["path"].iloc[0]])
        ranked = [
            (media.thumbnail(query.path), f"query · id={query.record.pid} · cam {query.record.cam}")
        ]
        ranked += gallery(media, session.search(entry.name, query, RANKED))
    metrics = session.cross_metrics(entry.name, modality, cams)
    lines = [
        f"**{entry.name}**, {modality} queries"
        + (f" from cameras {', '.join(map(str, cams))}" if cams else "")
        + f": {metrics['num_valid']} with a true match, mAP {100 * metrics['mAP']:.2f} %,"
        f" Rank-1 {100 * metrics['r1']:.2f} % (every image of the other modality as "
        "gallery)."
    ]
    fixed = broken = pd.DataFrame(columns=[FILE, *COMPARED]).rename(columns=HEADERS)
    if BASELINE in session.models:
        comparison = compare_models(
            session.query_results(BASELINE, modality), session.query_results(CYCLETRANS, modality)
        )
        fixed = _display(session, _in_cameras(comparison.fixed, cams), COMPARED)
        broken = _display(session, _in_cameras(comparison.broken, cams), COMPARED)
        lines.append(
            f"{CYCLETRANS} against {BASELINE}: **{len(fixed)} fixed** (first true "
            f"match moved to rank 1), **{len(broken)} broken** (moved away from it)."
        )
    else:
        lines.append(f"No {BASELINE} model is loaded: nothing to compare {CYCLETRANS} with.")
    lines.append(f"_In every table, {OPENS}._")
    return worst_table, ranked, fixed, broken, "  \n".join(lines)


def open_query(session: Session, file: str) -> tuple[str, str]:
    """``(path, modality)`` of the test image at ``file`` (relative to the dataset root)."""
    path = str(session.split.root / file)
    if path not in session.path_index:
        raise ValueError(f"{file!r} is not a test image")
    return path, modality_name(session.split.records[session.path_index[path]].modality)


@dataclass
class FailuresTab:
    """The tables whose rows open a query (the page wires them to the other tabs)."""

    tables: list[gr.Dataframe]


def query_table(value: pd.DataFrame, title: str, elem_id: str) -> gr.Dataframe:
    """A read-only table of queries whose rows open in the Retrieval and Attention tabs."""
    return gr.Dataframe(
        value, label=f"{title} ({OPENS})", interactive=False, wrap=True, elem_id=elem_id
    )


def build(session: Session, media: Media) -> FailuresTab:
    """Lay out the tab (showing CycleTrans's worst infrared queries) and wire its inputs."""
    default = failures(session, media, CYCLETRANS, "infrared", [], DEFAULT_COUNT)
    with gr.Row():
        model = gr.Dropdown(session.model_names, value=CYCLETRANS, label="Model")
        modality = gr.Radio(
            MODALITY_CHOICES, value="infrared", label="Query modality", elem_id="failures-modality"
        )
        cameras = gr.CheckboxGroup(
            camera_choices(session, "infrared"),
            label="Query cameras (none = all)",
            elem_id="failures-cameras",
        )
        count = gr.Slider(1, MAX_COUNT, value=DEFAULT_COUNT, step=1, label="Worst queries")
        button = gr.Button("Find failures", variant="primary", elem_id="failures-button")
    summary = gr.Markdown(default[4], elem_id="failures-summary")
    worst = query_table(default[0], "Worst queries by AP", "worst-table")
    ranked = gr.Gallery(
        default[1],
        label="The worst query and its ranked list",
        columns=RANKED + 1,
        height="auto",
        object_fit="contain",
        elem_classes=["ranked"],
    )
    fixed = query_table(default[2], f"Fixed by {CYCLETRANS} vs {BASELINE}", "fixed-table")
    broken = query_table(default[3], f"Broken by {CYCLETRANS} vs {BASELINE}", "broken-table")
    inputs = [model, modality, cameras, count]
    outputs = [worst, ranked, fixed, broken, summary]
    handler = functools.partial(failures, session, media)
    # the page offers the cameras of the chosen modality; the API accepts any (and says which
    # ones fit)
    every_camera = gr.CheckboxGroup(
        [str(c) for c in sorted({r.cam for r in session.split.records})],
        label="Query cameras",
        visible=False,
    )
    api_endpoint(
        handler,
        [model, modality, every_camera, count],
        outputs,
        "failures",
        concurrency_id="failures",
        concurrency_limit=1,
    )
    shown = in_place(handler, len(outputs), len(outputs) - 1)
    button.click(shown, inputs, outputs, api_visibility="private", concurrency_id="failures")
    modality.change(
        lambda m: gr.CheckboxGroup(choices=camera_choices(session, m), value=[]),
        [modality],
        [cameras],
        api_visibility="private",
    )
    return FailuresTab([worst, fixed, broken])
