"""Analysis of trained models as plain functions (no Gradio): usable from a notebook or script.

- :mod:`analysis.session`: ``build_session()`` -> a ``Session`` (test split, models, features,
  query resolution, search, memoised metrics and gap statistics); :mod:`analysis.feature_store`
  caches the features on disk.
- :mod:`analysis.overview`: the headline table, gap table and histograms, the example query,
  t-SNE figures of a session.
- :mod:`analysis.retrieval`: one query's ranked list, AP, CMC rank and list position.
- :mod:`analysis.paper_tables`: the paper's Tables I-VI (``load_paper_table``, captions).
- :mod:`analysis.ablation_tables`: reproduced Table II/III files, ``compare_with_paper``, charts.
- :mod:`analysis.tsne`: ``tsne_embedding``, ``select_identities``, ``tsne_figure`` (Fig. 4 style).
- :mod:`analysis.modality_gap`: pair distances (cosine by default) and MMD of features.
- :mod:`analysis.failures`: worst queries, ranked lists, queries a model fixes or breaks.
- :mod:`analysis.gradcam`: Grad-CAM of an embedding similarity (Fig. 5), anchor attention.

Submodules are imported on demand (``from analysis.tsne import tsne_figure``) so that each pulls
in only what it needs (scikit-learn, torch).
"""
