"""Overview tab (the landing view): what the loaded models do on the loaded data, in one screen.

Computed at start-up from the session (``analysis.overview``), never hard-coded: the headline
table (Rank-1 / mAP across modalities both ways, Rank-1 within each modality beside them), the
modality-gap statistics, one example query CycleTrans gets right and the Baseline wrong (picked
by rule, with buttons into the Retrieval and Attention tabs) and the three t-SNE plots.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from analysis.overview import (
    DEFAULT_IDENTITIES,
    Example,
    example_query,
    gap_sentence,
    gap_table,
    retrieval_table,
    tsne_figures,
)
from analysis.session import BASELINE, CYCLETRANS, MODEL_NAMES, Session
from app.formatting import gallery, percent
from app.media import Media

SHOWN = 5  # ranked images of each model in the example
PROTOCOL = (
    "Percent, every image of the other modality (or, within a modality, of the other "
    "cameras) as gallery, with the dataset's protocol (SYSU-MM01: a query never sees "
    "its own camera location). This is not the official single-shot protocol: "
    "`python -m cycletrans evaluate` reports that."
)


def example_text(session: Session, example: Example | None) -> str:
    """The example's rule and numbers in words (or why there is none)."""
    if example is None:
        if BASELINE not in session.models:
            return f"_No {BASELINE} model is loaded: nothing to compare {CYCLETRANS} with._"
        return (
            f"_No infrared query has {CYCLETRANS}'s first true match at rank 1 and the "
            f"{BASELINE}'s below it, so there is no example to show._"
        )
    record = example.query.record
    return (
        f"Rule: among the infrared queries whose first true match is at rank 1 for "
        f"{CYCLETRANS} and lower for the {BASELINE} ({example.fixed} of "
        f"{example.queries}), the one whose rank moved most. Query "
        f"`{session.relative(record.path)}` (id={record.pid}, cam {record.cam}): "
        f"{BASELINE} first true match at rank {example.baseline_first_hit} (AP "
        f"{example.baseline_ap:.3f}), {CYCLETRANS} at rank {example.model_first_hit} "
        f"(AP {example.model_ap:.3f})."
    )


@dataclass
class OverviewTab:
    """The example's buttons (the page wires them to the other tabs) and its query."""

    example: Example | None
    to_retrieval: gr.Button
    to_attention: gr.Button


def build(session: Session, media: Media) -> OverviewTab:
    """Lay out the tab with everything computed (memoised in the session)."""
    table = retrieval_table(session)
    example = example_query(session)
    gr.Markdown(
        f"## What the models do on the {session.split.label}\n{gap_sentence(table)}",
        elem_id="overview-story",
    )
    gr.Dataframe(
        percent(table),
        label="Retrieval across and within modalities (%)",
        interactive=False,
        wrap=True,
        elem_id="overview-table",
    )
    gr.Markdown(f"_{PROTOCOL}_")
    gr.Dataframe(
        percent(gap_table(session), 3),
        label="Modality gap: mean cosine distance of image pairs, and MMD",
        interactive=False,
        wrap=True,
        elem_id="overview-gap",
    )
    gr.Markdown(
        f"### A query {CYCLETRANS} gets right and the {BASELINE} gets wrong\n"
        + example_text(session, example),
        elem_id="overview-example",
    )
    with gr.Row(visible=example is not None):
        if example is not None:
            gr.Image(
                media.original(example.query.path),
                label="Query",
                height=260,
                interactive=False,
                scale=1,
                min_width=140,
                elem_classes=["query-view"],
            )
            for name in (BASELINE, CYCLETRANS):
                gr.Gallery(
                    gallery(media, session.search(name, example.query, SHOWN)),
                    label=f"{name}: top {SHOWN}",
                    columns=SHOWN,
                    height="auto",
                    object_fit="contain",
                    scale=3,
                    elem_classes=["ranked"],
                )
    with gr.Row(visible=example is not None):
        to_retrieval = gr.Button("Open this query in the Retrieval tab", elem_id="open-retrieval")
        to_attention = gr.Button("Explain it in the Attention tab", elem_id="open-attention")
    gr.Markdown(
        f"### Feature space: t-SNE of {DEFAULT_IDENTITIES} test identities "
        "(● visible, ▲ infrared, a colour per identity)"
    )
    with gr.Row():
        for name, figure in zip(MODEL_NAMES, tsne_figures(session), strict=True):
            if figure is not None:
                gr.Plot(figure, label=name)
    return OverviewTab(example, to_retrieval, to_attention)
