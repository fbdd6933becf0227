"""What a session's models do, in one view: retrieval across and within modalities, the modality
gap, an example query, and the feature space of each model (the app's Overview tab).

Everything is computed from the session's models and test split (nothing hard-coded), with
every image of the other modality as gallery (not the official single-shot protocol):

- :func:`retrieval_table`: Rank-1 and mAP infrared -> visible and visible -> infrared per model,
  with Rank-1 within each modality beside them (its drop across modalities is the gap);
- :func:`gap_table` and :func:`gap_histograms`: cosine-distance statistics of image pairs and
  the MMD (``analysis.modality_gap``), on one axis for all models;
- :func:`example_query`: by rule, the infrared query CycleTrans fixes most against the Baseline
  (``analysis.failures.compare_models``: Baseline's first true match below rank 1, CycleTrans's
  at rank 1, largest rank change first, then largest AP gain);
- :func:`tsne_figures`: t-SNE of a seeded pick of test identities for every model (Fig. 4).

Example:
    >>> from analysis.session import build_session
    >>> session = build_session()  # doctest: +SKIP
    >>> retrieval_table(session).loc[0, "IR→VIS Rank-1"]  # doctest: +SKIP
    3.4
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.failures import compare_models
from analysis.modality_gap import GROUPS, gap_histogram
from analysis.session import BASELINE, CYCLETRANS, MODEL_NAMES, Query, Session
from analysis.tsne import select_identities, tsne_figure
from cycletrans.evaluation.protocols import modality_retrieval
from cycletrans.modality import MODALITIES

SHORT = {"visible": "VIS", "infrared": "IR"}
CROSS = (("infrared", "visible"), ("visible", "infrared"))
DEFAULT_IDENTITIES = 10


def direction(query: str, gallery: str) -> str:
    """``"IR→VIS"`` for infrared queries against visible images."""
    return f"{SHORT[query]}→{SHORT[gallery]}"


def retrieval_table(session: Session) -> pd.DataFrame:
    """One row per model: cross-modality Rank-1 / mAP both ways, within-modality Rank-1 (%)."""
    rows = []
    for name, entry in session.models.items():
        row: dict[str, Any] = {"model": name}
        for query, gallery in CROSS:
            metrics = session.cross_metrics(name, query)
            row[f"{direction(query, gallery)} Rank-1"] = 100 * metrics["r1"]
            row[f"{direction(query, gallery)} mAP"] = 100 * metrics["mAP"]
        for modality in MODALITIES:
            within = session.memo(
                ("within", name, modality),
                lambda m=modality, e=entry: modality_retrieval(
                    e.features, m, m, session.split.protocol
                ),
            )
            row[f"{direction(modality, modality)} Rank-1"] = 100 * within["r1"]
        rows.append(row)
    return pd.DataFrame(rows)


def gap_sentence(table: pd.DataFrame) -> str:
    """The modality gap of each model in words (Markdown), from :func:`retrieval_table`."""
    lines = [
        "Rank-1: how often the first image retrieved shows the query's person. Within one "
        "modality against across modalities; the drop is the **modality gap**."
    ]
    lines += [
        f"- **{row['model']}**: {row['VIS→VIS Rank-1']:.1f} % visible → visible, "
        f"{row['IR→IR Rank-1']:.1f} % infrared → infrared; across: "
        f"{row['IR→VIS Rank-1']:.1f} % infrared → visible, {row['VIS→IR Rank-1']:.1f} % "
        "visible → infrared"
        for _, row in table.iterrows()
    ]
    return "\n".join(lines)


def gap_table(session: Session) -> pd.DataFrame:
    """One row per model: mean cosine distance of each pair group, their ratio, the MMD."""
    rows = []
    for name in session.models:
        gap = session.gap(name)
        means = gap.summary["mean"]
        rows.append(
            {
                "model": name,
                "same id, same modality": means[GROUPS[0]],
                "same id, cross modality": means[GROUPS[1]],
                "different id": means[GROUPS[2]],
                "cross / same": gap.ratio,
                "MMD": gap.mmd,
            }
        )
    return pd.DataFrame(rows)


def gap_histograms(session: Session, bins: int = 40) -> list[Any]:
    """Pair-distance histograms of every model in ``MODEL_NAMES`` order (None when not
    loaded), on one shared cosine-distance axis."""
    gaps = {name: session.gap(name) for name in session.models}
    top = max(float(d.max()) for gap in gaps.values() for d in gap.distances.values() if len(d))
    x_range = (0.0, math.ceil(top * 10) / 10)
    return [
        gap_histogram(gaps[name], bins=bins, title=name, x_range=x_range) if name in gaps else None
        for name in MODEL_NAMES
    ]


@dataclass
class Example:
    """The example query of the overview: a test query and how many queries qualified."""

    query: Query
    baseline_first_hit: int
    model_first_hit: int
    baseline_ap: float
    model_ap: float
    fixed: int
    queries: int


def example_query(session: Session, modality: str = "infrared") -> Example | None:
    """The query CycleTrans fixes most against the Baseline (module docstring); None when no
    Baseline is loaded or no query is fixed."""
    if BASELINE not in session.models:
        return None
    fixed = compare_models(
        session.query_results(BASELINE, modality), session.query_results(CYCLETRANS, modality)
    ).fixed
    if fixed.empty:
        return None
    row = fixed.iloc[0]
    return Example(
        session.test_query(session.path_index[row["path"]]),
        int(row["first_hit_baseline"]),
        int(row["first_hit_model"]),
        float(row["ap_baseline"]),
        float(row["ap_model"]),
        len(fixed),
        int(session.cross_metrics(CYCLETRANS, modality)["num_valid"]),
    )


def tsne_figures(session: Session, count: int = DEFAULT_IDENTITIES, seed: int = 0) -> list[Any]:
    """t-SNE of ``count`` test identities (seeded pick, images in both modalities) for every
    model in ``MODEL_NAMES`` order (None when not loaded); embeddings are cached."""
    reference = next(iter(session.models.values())).features
    chosen = select_identities(
        reference.ids, count=count, seed=seed, modalities=reference.modalities
    )
    rows = np.isin(reference.ids, chosen)
    files = [session.relative(p) for p in reference.paths[rows]]
    figures = []
    for name in MODEL_NAMES:
        if name not in session.models:
            figures.append(None)
            continue
        features = session.model(name).features
        points = session.tsne_cache.embedding(name, chosen, seed, features.features[rows])
        figures.append(
            tsne_figure(
                points,
                features.ids[rows],
                features.modalities[rows],
                hover={"camera": features.cams[rows], "file": files},
                title=name,
            )
        )
    return figures
