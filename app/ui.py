"""The app's layout: five tabs over one :class:`~app.context.AppContext`.

Named endpoints (the public API, see each tab's module): ``/search``, ``/explain``, ``/tsne``,
``/ablation``, ``/failures``. The tabs' helper events (pick a query, refresh choices, open a
failure) are private.

Example:
    >>> from app.context import build_context
    >>> demo = build_ui(build_context())  # doctest: +SKIP
    >>> demo.launch()  # doctest: +SKIP
"""

from __future__ import annotations

import gradio as gr

from app import tab_ablations, tab_attention, tab_failures, tab_features, tab_retrieval
from app.context import AppContext

RETRIEVAL_TAB = "retrieval"


def header(context: AppContext) -> str:
    models = ", ".join(f"{name} ({entry.checkpoint.name})"
                       for name, entry in context.models.items())
    return (f"# CycleTrans: visible-infrared person re-identification\n"
            f"Dataset: **{context.split.label}** ({len(context.split.records)} test images, "
            f"{context.split.protocol.upper()} protocol) · models: {models}")


def build_ui(context: AppContext) -> gr.Blocks:
    """The Gradio Blocks of the app (not launched)."""
    with gr.Blocks(title="CycleTrans VI-ReID", analytics_enabled=False) as demo:
        gr.Markdown(header(context))
        with gr.Tabs() as tabs:
            with gr.Tab("Retrieval", id=RETRIEVAL_TAB):
                retrieval = tab_retrieval.build(context)
            with gr.Tab("Attention", id="attention"):
                attention = tab_attention.build(context)
            with gr.Tab("Feature space", id="features"):
                tab_features.build(context)
            with gr.Tab("Ablations", id="ablations"):
                ablation_inputs, ablation_outputs, ablation_run = tab_ablations.build(context)
            with gr.Tab("Failure cases", id="failures"):
                tab_failures.build(context, retrieval, attention, tabs, RETRIEVAL_TAB)
        # a search's query and model carry over to the Attention tab
        retrieval.gallery.select(_match_rank, None, [attention.match_rank],
                                 api_visibility="private")
        for source, target in ((retrieval.image, attention.image),
                               (retrieval.modality, attention.modality),
                               (retrieval.model, attention.model)):
            source.change(lambda value: value, [source], [target], api_visibility="private")
        demo.load(ablation_run, ablation_inputs, ablation_outputs, api_visibility="private")
    return demo


def _match_rank(evt: gr.SelectData) -> int:
    """The rank of the selected result of the Retrieval tab (1-based)."""
    return int(evt.index) + 1
