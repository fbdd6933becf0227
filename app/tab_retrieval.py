"""Retrieval tab (``/search``): a query's top-k of the other modality, with AP when known.

Inputs ``image`` (a file), ``modality`` ("infrared" / "visible"), ``model`` (a model name),
``top_k``. Outputs: the model's ranked gallery (thumbnails framed green / red by their mark,
captions ``#rank ✓/✗ id=<identity> · cam <c> · dist <distance>``), a summary (the query, its
AP and first true match when its identity is known, or why not), and the same as JSON. In the
page, a second gallery ranks the same query with the model to compare (the Baseline, or
CycleTrans when the Baseline is chosen).

A query is a test image when picked from the test set (random, by identity, from the Overview
or the failure list) or when an uploaded file's bytes equal a test image: then its identity and
camera are known and its AP and first hit follow the dataset's protocol (``analysis.session``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from analysis.retrieval import SearchResult
from analysis.session import BASELINE, CYCLETRANS, Query, Session
from app.errors import api_endpoint, in_place, user_errors, whole_number
from app.formatting import MODALITY_CHOICES, RANKED_BY, gallery, query_line, result_line
from app.images import upload_image
from app.media import Media

MAX_TOP_K = 50
DEFAULT_TOP_K = 10
START = "Upload an image or pick a test query, then search."


def check_top_k(top_k: Any) -> int:
    """``top_k`` as an int in 1..MAX_TOP_K (ValueError otherwise)."""
    return whole_number(top_k, "top_k", 1, MAX_TOP_K)


def compared_model(session: Session, model: str) -> str | None:
    """The model whose ranking is shown beside ``model``'s (None when only one is loaded)."""
    other = BASELINE if model == CYCLETRANS else CYCLETRANS
    return other if other in session.models and other != model else None


def result_json(name: str, result: SearchResult) -> dict[str, Any]:
    return {
        "model": name,
        "ap": result.ap,
        "first_hit": result.first_hit,
        "first_position": result.first_position,
        "no_match": result.no_match or None,
        "gallery_size": result.gallery_size,
        "ranking": [
            {
                "rank": int(row["rank"]),
                "id": int(row["pid"]),
                "cam": int(row["cam"]),
                "distance": round(float(row["distance"]), 4),
                "similarity": round(float(row["similarity"]), 4),
                "match": None if row["match"] is None else bool(row["match"]),
                "file": Path(row["path"]).name,
            }
            for _, row in result.ranking.iterrows()
        ],
    }


def search(
    session: Session, media: Media, image: str | None, modality: str, model: str, top_k: float
) -> tuple[list, str, dict]:
    """The ``/search`` endpoint (module docstring)."""
    top_k = check_top_k(top_k)
    entry = session.model(model)
    query = session.query(image, modality)
    result = session.search(entry.name, query, top_k)
    lines = [query_line(session, query), result_line(entry.name, query, result)]
    other = compared_model(session, entry.name)
    compared = session.search(other, query, top_k) if other else None
    if compared is not None and query.record is not None:
        lines.append(result_line(other, query, compared))
    lines.append(f"_{RANKED_BY}_")
    details = {
        "query": {
            "modality": query.modality,
            "id": query.record.pid if query.record else None,
            "cam": query.record.cam if query.record else None,
            "test_image": query.record is not None,
            "warning": query.warning or None,
        },
        "result": result_json(entry.name, result),
        "compared": [result_json(other, compared)] if compared is not None else [],
    }
    if query.warning:
        gr.Warning(query.warning)
    return gallery(media, result), "  \n".join(lines), details


def labelled(session: Session, media: Media, *args: Any) -> tuple[Any, str, dict]:
    """:func:`search` for the page: the gallery titled with its model and k."""
    ranked, summary, details = search(session, media, *args)
    return (
        gr.Gallery(ranked, label=f"{details['result']['model']}: top {len(ranked)}"),
        summary,
        details,
    )


def compare(
    session: Session, media: Media, image: str | None, modality: str, model: str, top_k: float
) -> Any:
    """The compared model's gallery for the same query (the page's second gallery)."""
    other = compared_model(session, model)
    if other is None:
        return gr.Gallery(value=[], visible=False)
    result = session.search(other, session.query(image, modality), check_top_k(top_k))
    return gr.Gallery(value=gallery(media, result), label=f"{other}: the same query", visible=True)


def check_upload(session: Session, image: str | None, modality: str) -> str:
    """The query status under the upload: what it is, or what is wrong with it."""
    if not image:
        return ""
    query = session.query(image, modality)
    if query.warning:
        gr.Warning(query.warning)
    return query_line(session, query)


def pick(session: Session, media: Media, query: Query) -> tuple[str, str, str]:
    """``(served image, modality, status line)`` of a picked test query."""
    return media.original(query.path), query.modality, query_line(session, query)


@dataclass
class RetrievalTab:
    """The components other tabs and the page wire to; :meth:`then_search` chains a search."""

    image: gr.Image
    modality: gr.Radio
    model: gr.Dropdown
    status: gr.Markdown
    gallery: gr.Gallery
    inputs: list
    outputs: list
    shown: Any
    compared: Any
    other: gr.Gallery

    def then_search(self, event: Any) -> Any:
        """After ``event`` succeeds: the search and the compared model's gallery."""
        return event.success(
            self.shown,
            self.inputs,
            self.outputs,
            api_visibility="private",
            concurrency_id="search",
            concurrency_limit=4,
        ).then(
            self.compared,
            self.inputs,
            [self.other],
            api_visibility="private",
            concurrency_id="search",
        )


def build(session: Session, media: Media) -> RetrievalTab:
    """Lay out the tab (inside a ``gr.Tab``) and wire its own events."""
    ids = sorted({r.pid for r in session.split.records})
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            image = upload_image(
                label="Query image",
                sources=["upload", "clipboard"],
                height=340,
                elem_id="query-image",
                elem_classes=["query-view"],
            )
            status = gr.Markdown(elem_id="query-status")
            modality = gr.Radio(
                MODALITY_CHOICES, value="infrared", label="Query modality", elem_id="query-modality"
            )
            model = gr.Dropdown(session.model_names, value=CYCLETRANS, label="Model")
            top_k = gr.Slider(1, MAX_TOP_K, value=DEFAULT_TOP_K, step=1, label="Top-k")
            search_button = gr.Button("Search", variant="primary", elem_id="search-button")
            with gr.Accordion("Pick a test query", open=True):
                random_button = gr.Button("Random test query", elem_id="random-query")
                unmatched = gr.Checkbox(False, label="include queries with no true match")
                with gr.Row():
                    identity = gr.Dropdown(
                        ids, value=ids[0] if ids else None, label="Test identity", min_width=100
                    )
                    identity_button = gr.Button("Query of this identity", min_width=100)
        with gr.Column(scale=3):
            summary = gr.Markdown(START, elem_id="search-summary")
            # stacked, so that rank i of both models sits in one column
            ranked = gr.Gallery(
                label="Ranking of the chosen model",
                columns=DEFAULT_TOP_K,
                height="auto",
                object_fit="contain",
                elem_id="search-gallery",
                elem_classes=["ranked"],
            )
            other = gr.Gallery(
                label="Compared model: the same query",
                columns=DEFAULT_TOP_K,
                height="auto",
                object_fit="contain",
                elem_id="compare-gallery",
                elem_classes=["ranked"],
                visible=len(session.models) > 1,
            )
            with gr.Accordion("Details (JSON)", open=False):
                details = gr.JSON(label="Search result")
    inputs = [image, modality, model, top_k]
    outputs = [ranked, summary, details]
    handler = functools.partial(search, session, media)
    api_endpoint(handler, inputs, outputs, "search", concurrency_id="search", concurrency_limit=4)
    tab = RetrievalTab(
        image,
        modality,
        model,
        status,
        ranked,
        inputs,
        outputs,
        in_place(functools.partial(labelled, session, media), 3, 1),
        in_place(functools.partial(compare, session, media), 1, 0, formatted=lambda _: gr.skip()),
        other,
    )
    tab.then_search(search_button.click(lambda: None, None, None, api_visibility="private"))
    checked = in_place(functools.partial(check_upload, session), 1, 0)
    for event in (image.upload, modality.input):
        event(checked, [image, modality], [status], api_visibility="private")
    picked = [image, modality, status]
    tab.then_search(
        random_button.click(
            user_errors(
                lambda m, u: pick(session, media, session.random_query(m, matched_only=not u))
            ),
            [modality, unmatched],
            picked,
            api_visibility="private",
        )
    )
    tab.then_search(
        identity_button.click(
            user_errors(lambda i, m: pick(session, media, session.identity_query(i, m))),
            [identity, modality],
            picked,
            api_visibility="private",
        )
    )
    return tab
