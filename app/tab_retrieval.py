"""Retrieval tab (``/search``): a query's top-k of the other modality, with AP when known.

Inputs ``image`` (a file), ``modality`` ("infrared" / "visible"), ``model`` (a model name),
``top_k``. Outputs: the chosen model's ranked gallery (captions ``#rank ✓/✗ id=<identity> ·
cam <c> · sim <cosine>``), a summary (the query, its AP and first-hit rank when its identity is
known), the same as JSON, and the Baseline's and CycleTrans's rankings side by side.

A query is a test image when picked from the test set (random, by identity, or from the failure
list) or when an uploaded file's bytes equal a test image: then its identity and camera are
known and its AP and first hit follow the dataset's protocol (``analysis.retrieval``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from analysis.retrieval import SearchResult
from app.context import BASELINE, CYCLETRANS, AppContext, Query
from app.errors import user_errors, whole_number
from app.images import upload_image
from cycletrans.modality import MODALITIES, modality_name

MAX_TOP_K = 50
DEFAULT_TOP_K = 10
MARKS = {True: "✓", False: "✗"}
CMC_NOTES = {"sysu": "_First true match: its CMC rank, counted as SYSU-MM01's protocol does: "
                     "repeated identities removed from the list._",
             "regdb": "_First true match: its rank in the list (RegDB protocol)._"}


def check_top_k(top_k: Any) -> int:
    """``top_k`` as an int in 1..MAX_TOP_K (ValueError otherwise)."""
    return whole_number(top_k, "top_k", 1, MAX_TOP_K)


def caption(row: Any) -> str:
    """``#3 ✓ id=12 · cam 4 · sim 0.812`` for a ranking row (no mark when unknown)."""
    mark = MARKS.get(row["match"]) if row["match"] is not None else None
    return (f"#{row['rank']}{' ' + mark if mark else ''} id={row['pid']} · cam {row['cam']}"
            f" · sim {row['similarity']:.3f}")


def gallery_items(result: SearchResult) -> list[tuple[str, str]]:
    """``(image path, caption)`` per ranked gallery image."""
    return [(str(row["path"]), caption(row)) for _, row in result.ranking.iterrows()]


def describe_query(context: AppContext, query: Query) -> str:
    """One line saying what the query is."""
    if query.record is None:
        return (f"**Query:** uploaded {query.modality} image (not a test image: identity "
                "unknown, no AP)")
    r = query.record
    relative = Path(r.path).relative_to(context.split.root).as_posix()
    return (f"**Query:** test image `{relative}` · id={r.pid} · cam {r.cam} · {query.modality}"
            + (f"  \n_{query.note}_" if query.note else ""))


def result_line(name: str, result: SearchResult) -> str:
    """``CycleTrans: AP 0.812 · first true match at rank 1`` (or why there is none)."""
    if result.ap is None:
        return f"**{name}:** AP n/a (no true match among the gallery images)"
    return f"**{name}:** AP {result.ap:.3f} · first true match at rank {result.first_hit}"


def result_json(name: str, result: SearchResult) -> dict[str, Any]:
    return {"model": name, "ap": result.ap, "first_hit": result.first_hit,
            "gallery_size": result.gallery_size,
            "ranking": [{"rank": int(row["rank"]), "id": int(row["pid"]), "cam": int(row["cam"]),
                         "similarity": round(float(row["similarity"]), 4),
                         "distance": round(float(row["distance"]), 4),
                         "match": None if row["match"] is None else bool(row["match"]),
                         "file": Path(row["path"]).name}
                        for _, row in result.ranking.iterrows()]}


def search(context: AppContext, image: str | None, modality: str, model: str,
           top_k: float) -> tuple[list, str, dict, list, list]:
    """The ``/search`` endpoint (module docstring)."""
    top_k = check_top_k(top_k)
    entry = context.model(model)
    query = context.query(image, modality)
    result = context.search(entry.name, query, top_k)
    compared = {name: result if name == entry.name else context.search(name, query, top_k)
                for name in (BASELINE, CYCLETRANS) if name in context.models}
    lines = [describe_query(context, query), result_line(entry.name, result)]
    if query.record is not None:
        lines += [result_line(name, r) for name, r in compared.items() if name != entry.name]
        lines.append(CMC_NOTES[context.split.protocol])
    details = {"query": {"modality": query.modality,
                         "id": query.record.pid if query.record else None,
                         "cam": query.record.cam if query.record else None,
                         "test_image": query.record is not None},
               "result": result_json(entry.name, result),
               "compared": [result_json(name, r) for name, r in compared.items()]}
    side = [gallery_items(compared[name]) if name in compared else []
            for name in (BASELINE, CYCLETRANS)]
    return gallery_items(result), "  \n".join(lines), details, side[0], side[1]


def random_query(context: AppContext, modality: str, seed: int | None = None
                 ) -> tuple[str, str]:
    """A random test image of ``modality``: ``(path, modality)``."""
    modality = modality_name(modality)
    candidates = [i for i, r in enumerate(context.split.records)
                  if modality_name(r.modality) == modality]
    if not candidates:
        raise ValueError(f"the test split has no {modality} image")
    index = int(np.random.default_rng(seed).choice(candidates))
    return context.split.records[index].path, modality


def identity_query(context: AppContext, identity: Any, modality: str, seed: int | None = None
                   ) -> tuple[str, str]:
    """A random test image of person ``identity``, in ``modality`` if it has one there."""
    try:
        pid = int(identity)
    except (TypeError, ValueError):
        raise ValueError(f"choose a test identity, got {identity!r}") from None
    images = [r for r in context.split.records if r.pid == pid]
    if not images:
        raise ValueError(f"identity {pid} is not in the test split")
    same = [r for r in images if modality_name(r.modality) == modality_name(modality)]
    record = (same or images)[int(np.random.default_rng(seed).integers(len(same or images)))]
    return record.path, modality_name(record.modality)


@dataclass
class RetrievalTab:
    """The components other tabs wire to."""

    image: gr.Image
    modality: gr.Radio
    model: gr.Dropdown
    top_k: gr.Slider
    gallery: gr.Gallery
    inputs: list
    outputs: list
    run: Any  # the bound search handler


def build(context: AppContext) -> RetrievalTab:
    """Lay out the tab (inside a ``gr.Tab``) and wire its own events."""
    ids = sorted({r.pid for r in context.split.records})
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            image = upload_image(label="Query image", sources=["upload", "clipboard"],
                                height=280, elem_id="query-image")
            modality = gr.Radio(list(MODALITIES[::-1]), value="infrared",
                                label="Query modality", elem_id="query-modality")
            model = gr.Dropdown(context.model_names, value=CYCLETRANS, label="Model")
            top_k = gr.Slider(1, MAX_TOP_K, value=DEFAULT_TOP_K, step=1, label="Top-k")
            search_button = gr.Button("Search", variant="primary", elem_id="search-button")
            with gr.Accordion("Pick a test query", open=True):
                random_button = gr.Button("Random test query", elem_id="random-query")
                with gr.Row():
                    identity = gr.Dropdown(ids, value=ids[0] if ids else None,
                                           label="Test identity", min_width=100)
                    identity_button = gr.Button("Query of this identity", min_width=100)
        with gr.Column(scale=3):
            summary = gr.Markdown("Upload an image or pick a test query, then search.",
                                  elem_id="search-summary")
            gallery = gr.Gallery(label="Top-k of the other modality", columns=5, height="auto",
                                 object_fit="contain", format="png", elem_id="search-gallery")
            with gr.Row():
                baseline_gallery = gr.Gallery(label=f"{BASELINE} ranking", columns=4,
                                              height="auto", object_fit="contain", format="png",
                                              visible=BASELINE in context.models)
                cycletrans_gallery = gr.Gallery(label=f"{CYCLETRANS} ranking", columns=4,
                                                height="auto", object_fit="contain", format="png")
            with gr.Accordion("Details (JSON)", open=False):
                details = gr.JSON(label="Search result")
    inputs = [image, modality, model, top_k]
    outputs = [gallery, summary, details, baseline_gallery, cycletrans_gallery]
    run = user_errors(functools.partial(search, context))
    search_button.click(run, inputs, outputs, api_name="search", concurrency_limit=4)
    random_button.click(user_errors(functools.partial(random_query, context)), [modality],
                        [image, modality], api_visibility="private"
                        ).success(run, inputs, outputs, api_visibility="private")
    identity_button.click(user_errors(functools.partial(identity_query, context)),
                          [identity, modality], [image, modality], api_visibility="private"
                          ).success(run, inputs, outputs, api_visibility="private")
    return RetrievalTab(image, modality, model, top_k, gallery, inputs, outputs, run)
