"""Analysis of trained models as plain functions (no Gradio): usable from a notebook or script.

- :mod:`analysis.paper_tables`: the paper's Tables I-VI (``load_paper_table``, ``paper_caption``).
- :mod:`analysis.ablation_tables`: reproduced Table II/III files, ``compare_with_paper``, charts.
- :mod:`analysis.tsne`: ``tsne_embedding``, ``select_identities``, ``tsne_figure`` (Fig. 4 style).
- :mod:`analysis.modality_gap`: pair distances, MMD and both retrieval directions of features.
- :mod:`analysis.failures`: worst queries, ranked lists, queries a model fixes or breaks.

Submodules are imported on demand (``from analysis.tsne import tsne_figure``) so that each pulls
in only what it needs (scikit-learn, torch).
"""
