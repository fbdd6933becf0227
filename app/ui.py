"""The app's layout: six tabs over one ``analysis.session.Session``, and the links between them.

Named endpoints (the public API, see each tab's module): ``/search``, ``/explain``, ``/tsne``,
``/ablation``, ``/failures``. The tabs' own events (pick a query, refresh choices, open a query
in another tab) are private.

Example:
    >>> from analysis.session import build_session
    >>> from app.media import Media
    >>> session = build_session()  # doctest: +SKIP
    >>> demo = build_ui(session, Media(session.cache_dir / "media"))  # doctest: +SKIP
    >>> demo.launch()  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from analysis.session import CYCLETRANS, Session
from app import (
    tab_ablations,
    tab_attention,
    tab_failures,
    tab_features,
    tab_overview,
    tab_retrieval,
)
from app.formatting import query_line
from app.media import Media

RETRIEVAL, ATTENTION = "retrieval", "attention"
# ranked galleries and maps: images at a readable height, captions below them, whole; no
# empty fixed-height boxes; query images scaled up to the panel
CSS = """
.ranked .thumbnail-item, .maps .thumbnail-item { aspect-ratio: auto !important;
  height: auto !important; display: flex !important; flex-direction: column; }
.ranked .thumbnail-lg > img { height: 150px !important; object-fit: contain !important; }
.maps .thumbnail-lg > img { height: 256px !important; object-fit: contain !important; }
.ranked .caption-label, .maps .caption-label { position: static !important;
  max-width: none !important; white-space: normal !important; opacity: 1 !important;
  border: none !important; text-align: center; font-size: 0.78rem; }
.ranked .grid-container, .maps .grid-container {
  grid-template-columns: repeat(var(--grid-cols), minmax(60px, 1fr)) !important; }
.ranked .fixed-height, .maps .fixed-height { min-height: 0 !important;
  max-height: none !important; }
.ranked .grid-wrap, .maps .grid-wrap { overflow-y: visible !important; }
.query-view img { height: 100% !important; width: 100% !important; object-fit: contain; }
"""


def header(session: Session) -> str:
    models = ", ".join(
        f"{name} ({entry.checkpoint.name})" for name, entry in session.models.items()
    )
    return (
        f"# CycleTrans: visible-infrared person re-identification\n"
        f"Dataset: **{session.split.label}** ({len(session.split.records)} test images, "
        f"{session.split.protocol.upper()} protocol) · models: {models}"
    )


def build_ui(session: Session, media: Media) -> gr.Blocks:
    """The Gradio Blocks of the app (not launched)."""
    with gr.Blocks(title="CycleTrans VI-ReID", analytics_enabled=False) as demo:
        gr.Markdown(header(session))
        with gr.Tabs() as tabs:
            with gr.Tab("Overview", id="overview"):
                overview = tab_overview.build(session, media)
            with gr.Tab("Retrieval", id=RETRIEVAL):
                retrieval = tab_retrieval.build(session, media)
            with gr.Tab("Attention", id=ATTENTION):
                attention = tab_attention.build(session)
            with gr.Tab("Feature space", id="features"):
                tab_features.build(session)
            with gr.Tab("Ablations", id="ablations"):
                tab_ablations.build(session)
            with gr.Tab("Failure cases", id="failures"):
                failures = tab_failures.build(session, media)
        private = {"api_visibility": "private"}

        # a search's query and model carry over to the Attention tab; a clicked result is its
        # match
        retrieval.gallery.select(_match_rank, None, [attention.match_rank], **private)
        for source, target in (
            (retrieval.image, attention.image),
            (retrieval.modality, attention.modality),
            (retrieval.model, attention.model),
        ):
            source.change(lambda value: value, [source], [target], **private)

        def open_test_image(path: str, tab: str) -> tuple:
            query = session.test_query(session.path_index[path])
            served = media.original(query.path)
            return (
                served,
                query.modality,
                query_line(session, query),
                served,
                query.modality,
                gr.Tabs(selected=tab),
            )

        opened = [
            retrieval.image,
            retrieval.modality,
            retrieval.status,
            attention.image,
            attention.modality,
            tabs,
        ]
        if overview.example is not None:
            path = str(overview.example.query.path)
            retrieval.then_search(
                overview.to_retrieval.click(
                    lambda: open_test_image(path, RETRIEVAL), None, opened, **private
                )
            )
            attention.then_explain(
                overview.to_attention.click(
                    lambda: (*open_test_image(path, ATTENTION), 1, CYCLETRANS),
                    None,
                    [*opened, attention.match_rank, attention.model],
                    **private,
                )
            )

        def open_row(table: Any, evt: gr.SelectData) -> tuple:
            file = (
                evt.row_value[list(table.columns).index(tab_failures.FILE)]
                if evt.row_value
                else None
            )
            if not file:
                raise gr.Error("select a row of the table")
            try:
                path, _ = tab_failures.open_query(session, file)
            except ValueError as error:
                raise gr.Error(str(error)) from error
            return open_test_image(path, RETRIEVAL)

        for table in failures.tables:
            attention.then_explain(
                retrieval.then_search(table.select(open_row, [table], opened, **private))
            )
    return demo


def _match_rank(evt: gr.SelectData) -> int:
    """The rank of the selected result of the Retrieval tab (1-based)."""
    return int(evt.index) + 1
