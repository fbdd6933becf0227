"""The Gradio app: ``python app.py`` (see :mod:`app.main` for the flags).

- :mod:`app.context`: start-up work and state (dataset, models, cached features, memos);
- :mod:`app.images`: the safe image loader and the upload component;
- :mod:`app.errors`: bad input -> ``gr.Error`` messages, argument checks;
- :mod:`app.ui`: the Blocks layout; one module per tab (``tab_retrieval``, ``tab_attention``,
  ``tab_features``, ``tab_ablations``, ``tab_failures``), each calling ``analysis`` and
  ``cycletrans`` only.

Nothing is loaded at import time.
"""
