"""Attention tab (``/explain``): Grad-CAM of the query-match similarity for every model (Fig. 5)
and the pseudo anchors' attention maps over the query (eq. 5).

Inputs ``image`` (the query file), ``modality``, ``match_rank`` and ``model``: the match is the
image at rank ``match_rank`` of ``model``'s ranking for the query (the Retrieval tab's list).
Outputs: a gallery with, for each model, the query and the match with their Grad-CAM heatmaps
(``analysis.gradcam.similarity_cam``); a gallery of the k anchor maps of each model with KCM;
a summary (the match, and each model's cosine similarity of the pair).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np

from analysis.gradcam import anchor_maps, model_view, overlay, similarity_cam
from app.context import CYCLETRANS, AppContext
from app.errors import user_errors
from app.images import load_image, upload_image
from app.tab_retrieval import MARKS, MAX_TOP_K, check_top_k
from cycletrans.modality import MODALITIES


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))


def explain(context: AppContext, image: str | None, modality: str, match_rank: float,
            model: str) -> tuple[list, list, str]:
    """The ``/explain`` endpoint (module docstring)."""
    rank = check_top_k(match_rank)
    ranking_model = context.model(model)
    query = context.query(image, modality)
    ranking = context.search(ranking_model.name, query, rank).ranking
    if len(ranking) < rank:
        raise ValueError(f"the ranking has only {len(ranking)} images, asked for rank {rank}")
    match_row = ranking.iloc[rank - 1]
    match_image = load_image(match_row["path"])
    match_query = context.test_query(context.path_index[match_row["path"]])
    cams, anchors, similarities, peaks = [], [], [], []
    for name, entry in context.models.items():
        with entry.lock:
            query_map, match_map = similarity_cam(entry.model, query.image, match_image,
                                                  query.modality, match_query.modality)
            if entry.has_anchors:
                maps, peak = anchor_maps(entry.model, query.image, query.modality)
                view = model_view(entry.model, query.image)
                anchors += [(overlay(view, m), f"anchor {i + 1} · {name}")
                            for i, m in enumerate(maps)]
                peaks.append(f"{name} {peak:.3f}")
        cams += [(overlay(model_view(entry.model, query.image), query_map), f"query · {name}"),
                 (overlay(model_view(entry.model, match_image), match_map), f"match · {name}")]
        similarity = _cosine(context.query_feature(name, query),
                             context.query_feature(name, match_query))
        similarities.append(f"{name} {similarity:.3f}")
    mark = MARKS.get(match_row["match"], "") if match_row["match"] is not None else ""
    summary = (f"**Match:** rank {rank} of {ranking_model.name}'s ranking · {mark} "
               f"id={match_row['pid']} · cam {match_row['cam']}  \n"
               f"**Cosine similarity of the pair (the Grad-CAM target):** "
               + " · ".join(similarities)
               + (f"  \n**Anchor attention peak (largest eq. 5 weight x positions; 1 = uniform, "
                  f"the maps are contrast-stretched):** {' · '.join(peaks)}" if anchors else
                  "  \n_No model with pseudo anchors (KCM) is loaded._"))
    return cams, anchors, summary


@dataclass
class AttentionTab:
    image: gr.Image
    modality: gr.Radio
    match_rank: gr.Slider
    model: gr.Dropdown
    inputs: list
    outputs: list
    run: Any


def build(context: AppContext) -> AttentionTab:
    """Lay out the tab and wire its button."""
    anchors_per_model = max((len(entry.model.anchors) for entry in context.models.values()
                             if entry.has_anchors), default=1)
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            image = upload_image(label="Query image", sources=["upload", "clipboard"],
                                height=280, elem_id="explain-image")
            modality = gr.Radio(list(MODALITIES[::-1]), value="infrared",
                                label="Query modality")
            match_rank = gr.Slider(1, MAX_TOP_K, value=1, step=1,
                                   label="Match: rank in the model's ranking")
            model = gr.Dropdown(context.model_names, value=CYCLETRANS,
                                label="Ranking that picks the match")
            button = gr.Button("Explain", variant="primary", elem_id="explain-button")
        with gr.Column(scale=3):
            summary = gr.Markdown("Grad-CAM of the query-match embedding similarity for each "
                                  "model (paper Fig. 5), and the pseudo anchors' attention.",
                                  elem_id="explain-summary")
            cams = gr.Gallery(label="Grad-CAM: query and match per model",
                              columns=2 * len(context.models), height="auto",
                              object_fit="contain", format="png", elem_id="gradcam-gallery")
            anchors = gr.Gallery(label="Pseudo anchors' attention over the query (eq. 5)",
                                 columns=anchors_per_model, height="auto", object_fit="contain",
                                 format="png", elem_id="anchor-gallery")
    inputs = [image, modality, match_rank, model]
    outputs = [cams, anchors, summary]
    run = user_errors(functools.partial(explain, context))
    button.click(run, inputs, outputs, api_name="explain", concurrency_limit=2)
    return AttentionTab(image, modality, match_rank, model, inputs, outputs, run)
