"""The Gradio app: ``python app.py`` (see :mod:`app.main` for the flags).

The app lays out what ``analysis`` computes over one ``analysis.session.Session``:

- :mod:`app.ui`: the Blocks layout and the links between tabs; one module per tab
  (``tab_overview``, ``tab_retrieval``, ``tab_attention``, ``tab_features``, ``tab_ablations``,
  ``tab_failures``), each calling ``analysis`` and the shared modules below only;
- :mod:`app.formatting`: captions, marks and sentences the tabs share;
- :mod:`app.media`: the only served files (marked thumbnails, query copies);
- :mod:`app.images`: the upload component; :mod:`app.errors`: messages instead of tracebacks.

Nothing is loaded at import time.
"""
