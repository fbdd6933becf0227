"""Attention tab (``/explain``): Grad-CAM of the query-match similarity for every model (Fig. 5)
and the pseudo anchors' attention maps over the query (eq. 5).

Inputs ``image`` (the query file), ``modality``, ``match_rank`` and ``model``: the match is the
image at rank ``match_rank`` of ``model``'s ranking for the query (the Retrieval tab's list).
Outputs: a gallery with, for each model, the query and the match with their Grad-CAM heatmaps
(``analysis.gradcam.similarity_cam``), drawn large on the images, a flat map (no positive
evidence: zero gradient) said so in its caption; a gallery of the k anchor maps of each model
with KCM; a summary (the match, each model's cosine similarity of the pair, flat maps, how
much the anchors' maps agree).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np

from analysis.gradcam import anchor_maps, is_flat, model_view, overlay, similarity_cam
from analysis.session import CYCLETRANS, Session
from app.errors import api_endpoint, in_place, whole_number
from app.formatting import MARKS, MODALITY_CHOICES
from app.images import upload_image

MAX_RANK = 50
VIEW_HEIGHT = 256  # pixels of the drawn maps (the models see 128 x 64 in the demo)
FLAT = "flat map: no positive evidence (zero gradient)"
ONE_MAP = 0.99  # anchors' agreement from which their maps are called one map
# jet, as pytorch_grad_cam draws the maps: low (blue) to high (red)
COLOUR_BAR = (
    "<div style='max-width:420px'><div style='height:14px;border-radius:3px;background:"
    "linear-gradient(to right,#00007f,#0000ff,#007fff,#00ffff,#7fff7f,#ffff00,#ff7f00,"
    "#ff0000,#7f0000)'></div><div style='display:flex;justify-content:space-between;"
    "font-size:0.85em'><span>0: no evidence</span><span>map value (scaled per map)</span>"
    "<span>1: strongest</span></div></div>"
)
START = (
    "Grad-CAM of the query-match embedding similarity for each model (paper Fig. 5), and "
    "the pseudo anchors' attention. Pick a query (or search one in the Retrieval tab and "
    "click a result), then Explain."
)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))


def explain(
    session: Session, image: str | None, modality: str, match_rank: float, model: str
) -> tuple[list, list, str]:
    """The ``/explain`` endpoint (module docstring)."""
    rank = whole_number(match_rank, "match_rank", 1, MAX_RANK)
    ranking_model = session.model(model)
    query = session.query(image, modality)
    ranking = session.search(ranking_model.name, query, rank).ranking
    if len(ranking) < rank:
        raise ValueError(f"the ranking has only {len(ranking)} images, asked for rank {rank}")
    match_row = ranking.iloc[rank - 1]
    match_query = session.test_query(session.path_index[match_row["path"]])
    cams, anchors, similarities, flat = [], [], [], []
    peaks, agreements, one_map = [], [], []  # of the models with KCM
    for name, entry in session.models.items():
        with entry.lock:
            maps = similarity_cam(
                entry.model, query.image, match_query.image, query.modality, match_query.modality
            )
            if entry.has_anchors:
                attention = anchor_maps(entry.model, query.image, query.modality)
                view = model_view(entry.model, query.image, VIEW_HEIGHT)
                anchors += [
                    (overlay(view, m), f"anchor {i + 1} · {name}")
                    for i, m in enumerate(attention.maps)
                ]
                peaks.append(f"{name} {attention.peak:.3f}")
                agreements.append(f"{name} {attention.agreement:.4f}")
                if attention.agreement >= ONE_MAP:
                    one_map.append(name)
        for role, shown, heatmap in (
            ("query", query.image, maps[0]),
            ("match", match_query.image, maps[1]),
        ):
            label = f"{role} · {name}"
            if is_flat(heatmap):
                flat.append(label)
                label += f" · {FLAT}"
            cams.append((overlay(model_view(entry.model, shown, VIEW_HEIGHT), heatmap), label))
        similarity = _cosine(
            session.query_feature(name, query), session.query_feature(name, match_query)
        )
        similarities.append(f"{name} {similarity:.3f}")
    mark = MARKS.get(match_row["match"], "") if match_row["match"] is not None else ""
    lines = [
        f"**Match:** rank {rank} of {ranking_model.name}'s ranking · {mark} "
        f"id={match_row['pid']} · cam {match_row['cam']}",
        "**Cosine similarity of the pair (the Grad-CAM target):** " + " · ".join(similarities),
    ]
    if flat:
        lines.append(
            f"**Flat maps** ({', '.join(flat)}): the similarity has no positive "
            "gradient at the last stage there, so Grad-CAM finds no evidence."
        )
    if anchors:
        lines += [
            f"**Anchor attention peak** (largest eq. 5 weight x positions; 1 = uniform, "
            f"the maps are contrast-stretched): {' · '.join(peaks)}",
            "**Agreement between the anchors' maps** (mean cosine of two anchors' weights; "
            f"1 = the maps are one map): {' · '.join(agreements)}",
        ]
        if one_map:
            lines.append(
                f"**One map:** the anchors of {' and '.join(one_map)} all look at the same place "
                "(their KCM patterns collapsed into one: the README's results, 'What this shows, "
                "plainly'), so the anchor rows repeat one map."
            )
    else:
        lines.append("_No model with pseudo anchors (KCM) is loaded._")
    if query.warning:
        lines.insert(0, f"**⚠ {query.warning}**")
    return cams, anchors, "  \n".join(lines)


@dataclass
class AttentionTab:
    image: gr.Image
    modality: gr.Radio
    match_rank: gr.Slider
    model: gr.Dropdown
    inputs: list
    outputs: list
    shown: Any

    def then_explain(self, event: Any) -> Any:
        """After ``event`` succeeds: explain the current inputs."""
        return event.success(
            self.shown,
            self.inputs,
            self.outputs,
            api_visibility="private",
            concurrency_id="explain",
            concurrency_limit=2,
        )


def build(session: Session) -> AttentionTab:
    """Lay out the tab and wire its button."""
    anchors_per_model = max(
        (len(entry.model.anchors) for entry in session.models.values() if entry.has_anchors),
        default=1,
    )
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            image = upload_image(
                label="Query image",
                sources=["upload", "clipboard"],
                height=340,
                elem_id="explain-image",
                elem_classes=["query-view"],
            )
            modality = gr.Radio(MODALITY_CHOICES, value="infrared", label="Query modality")
            match_rank = gr.Slider(
                1, MAX_RANK, value=1, step=1, label="Match: rank in the model's ranking"
            )
            model = gr.Dropdown(
                session.model_names, value=CYCLETRANS, label="Ranking that picks the match"
            )
            button = gr.Button("Explain", variant="primary", elem_id="explain-button")
        with gr.Column(scale=3):
            summary = gr.Markdown(START, elem_id="explain-summary")
            gr.HTML(COLOUR_BAR, elem_id="colour-bar")
            cams = gr.Gallery(
                label="Grad-CAM: query and match per model",
                columns=2 * len(session.models),
                height="auto",
                object_fit="contain",
                format="png",
                elem_id="gradcam-gallery",
                elem_classes=["maps"],
            )
            anchors = gr.Gallery(
                label="Pseudo anchors' attention over the query (eq. 5)",
                columns=anchors_per_model,
                height="auto",
                object_fit="contain",
                format="png",
                elem_id="anchor-gallery",
                elem_classes=["maps"],
            )
    inputs = [image, modality, match_rank, model]
    outputs = [cams, anchors, summary]
    handler = functools.partial(explain, session)
    api_endpoint(handler, inputs, outputs, "explain", concurrency_id="explain", concurrency_limit=2)
    tab = AttentionTab(image, modality, match_rank, model, inputs, outputs, in_place(handler, 3, 2))
    tab.then_explain(button.click(lambda: None, None, None, api_visibility="private"))
    return tab
