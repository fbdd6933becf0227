"""Feature space tab (``/tsne``): t-SNE of test identities per model (Fig. 4) and modality-gap
statistics.

Inputs ``identities`` (how many test identities, default 10) and ``seed`` (which ones, and
t-SNE's random state). Outputs: one t-SNE plot per model (Baseline, CycleTrans without cycle,
CycleTrans; None for a model that is not loaded), circles visible and triangles infrared, a
colour per identity, file and camera on hover (``analysis.overview.tsne_figures``); the
modality-gap table of every model over the whole test split (``analysis.overview.gap_table``:
mean cosine distance within / across modalities and between identities, their ratio, MMD);
one pair-distance histogram per model, on one shared axis. The default view is computed at
start-up and shown when the page opens.
"""

from __future__ import annotations

import functools

import gradio as gr

from analysis.overview import DEFAULT_IDENTITIES, gap_histograms, gap_table, tsne_figures
from analysis.session import MODEL_NAMES, Session
from app.errors import api_endpoint, in_place, whole_number
from app.formatting import percent

MAX_IDENTITIES = 40
GAP_NOTE = (
    "**Modality gap** over the whole test split. Distances are cosine distances "
    "(1 - cosine similarity of the features, 0 to 2), so models with features of "
    "other sizes share one scale; *cross / same* near 1 means an identity's images are "
    "as close across modalities as within one. MMD: eq. 16 between the visible and "
    "infrared features. Retrieval numbers are on the Overview tab."
)


def tsne(session: Session, identities: float, seed: float) -> tuple:
    """The ``/tsne`` endpoint (module docstring)."""
    count = whole_number(identities, "identities", 2, MAX_IDENTITIES)
    seed = whole_number(seed, "seed", 0, 2**31 - 1)
    return (
        *tsne_figures(session, count, seed),
        percent(gap_table(session), 3),
        *gap_histograms(session),
    )


def build(session: Session) -> None:
    """Lay out the tab (showing the default view) and wire its button."""
    default = tsne(session, DEFAULT_IDENTITIES, 0)
    with gr.Row():
        identities = gr.Slider(
            2, MAX_IDENTITIES, value=DEFAULT_IDENTITIES, step=1, label="Test identities"
        )
        seed = gr.Number(value=0, precision=0, minimum=0, label="Seed (which identities)")
        button = gr.Button("Show feature space", variant="primary", elem_id="tsne-button")
    gr.Markdown(
        "t-SNE of the retrieval features: ● visible, ▲ infrared, one colour per "
        "identity (hover for file and camera)."
    )
    status = gr.Markdown(elem_id="tsne-status")
    with gr.Row():
        plots = [
            gr.Plot(
                default[i],
                label=f"t-SNE: {name}",
                visible=name in session.models,
                elem_id=f"tsne-plot-{i}",
            )
            for i, name in enumerate(MODEL_NAMES)
        ]
    gr.Markdown(GAP_NOTE)
    table = gr.Dataframe(
        default[3],
        label="Modality-gap statistics (cosine distance)",
        interactive=False,
        wrap=True,
        elem_id="gap-table",
    )
    with gr.Row():
        histograms = [
            gr.Plot(default[4 + i], label=f"Pair distances: {name}", visible=name in session.models)
            for i, name in enumerate(MODEL_NAMES)
        ]
    outputs = [*plots, table, *histograms]
    handler = functools.partial(tsne, session)
    api_endpoint(
        handler, [identities, seed], outputs, "tsne", concurrency_id="tsne", concurrency_limit=1
    )
    shown = in_place(lambda *args: (*handler(*args), ""), len(outputs) + 1, len(outputs))
    button.click(
        shown,
        [identities, seed],
        [*outputs, status],
        api_visibility="private",
        concurrency_id="tsne",
        concurrency_limit=1,
    )
