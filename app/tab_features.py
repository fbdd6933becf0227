"""Feature space tab (``/tsne``): t-SNE of test identities per model (Fig. 4) and modality-gap
statistics.

Inputs ``identities`` (how many test identities, default 10) and ``seed`` (which ones, and
t-SNE's random state). Outputs: one t-SNE plot per model (Baseline, CycleTrans without cycle,
CycleTrans; None for a model that is not loaded), circles visible and triangles infrared, a
colour per identity, file and camera on hover (``analysis.tsne``; embeddings cached per model,
identity set and seed); the modality-gap table of every model over the whole test split
(``analysis.modality_gap``: mean distances within / across modalities and between identities,
MMD, Rank-1 and mAP in both directions with every image of the other modality as gallery); one
pair-distance histogram per model.
"""

from __future__ import annotations

import functools
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd

from analysis.tsne import select_identities, tsne_figure
from app.context import MODEL_NAMES, AppContext
from app.errors import user_errors, whole_number

DEFAULT_IDENTITIES = 10
MAX_IDENTITIES = 40


def gap_table(context: AppContext) -> pd.DataFrame:
    """One row of modality-gap statistics per loaded model, rounded for display."""
    return pd.DataFrame([context.gap(name).row for name in context.models]).round(3)


def tsne(context: AppContext, identities: float, seed: float) -> tuple:
    """The ``/tsne`` endpoint (module docstring)."""
    count = whole_number(identities, "identities", 2, MAX_IDENTITIES)
    seed = whole_number(seed, "seed", 0, 2**31 - 1)
    reference = next(iter(context.models.values())).features
    chosen = select_identities(reference.ids, count=count, seed=seed,
                               modalities=reference.modalities)
    rows = np.isin(reference.ids, chosen)
    root = context.split.root
    files = [Path(p).relative_to(root).as_posix() for p in reference.paths[rows]]
    plots = []
    for name in MODEL_NAMES:
        if name not in context.models:
            plots.append(None)
            continue
        features = context.model(name).features
        points = context.tsne_cache.embedding(name, chosen, seed, features.features[rows])
        plots.append(tsne_figure(points, features.ids[rows], features.modalities[rows],
                                 hover={"camera": features.cams[rows], "file": files},
                                 title=name))
    histograms = [context.gap(name).histogram if name in context.models else None
                  for name in MODEL_NAMES]
    return (*plots, gap_table(context), *histograms)


def build(context: AppContext) -> None:
    """Lay out the tab and wire its button."""
    with gr.Row():
        identities = gr.Slider(2, MAX_IDENTITIES, value=DEFAULT_IDENTITIES, step=1,
                               label="Test identities")
        seed = gr.Number(value=0, precision=0, minimum=0, label="Seed (which identities)")
        button = gr.Button("Show feature space", variant="primary", elem_id="tsne-button")
    with gr.Row():
        plots = [gr.Plot(label=f"t-SNE: {name}", visible=name in context.models,
                         elem_id=f"tsne-plot-{i}") for i, name in enumerate(MODEL_NAMES)]
    gr.Markdown("**Modality gap** over the whole test split (every image of the other "
                "modality as gallery; not the official single-shot protocol). Distances are "
                "euclidean, as in the evaluation; percentages for Rank-1 and mAP.")
    table = gr.Dataframe(label="Modality-gap statistics", interactive=False,
                         elem_id="gap-table")
    with gr.Row():
        histograms = [gr.Plot(label=f"Pair distances: {name}", visible=name in context.models)
                      for name in MODEL_NAMES]
    outputs = [*plots, table, *histograms]
    button.click(user_errors(functools.partial(tsne, context)), [identities, seed], outputs,
                 api_name="tsne", concurrency_limit=1)
