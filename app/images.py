"""The app's image input: Gradio's upload component without Gradio's own decoding.

Every uploaded file reaches the models only through ``cycletrans.data.images.load_image`` (the
checks, limits and conversions are there); :func:`upload_image` hands it the upload unopened.
"""

from __future__ import annotations

import base64
import functools
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from cycletrans.data.images import MAX_FILE_BYTES, ImageInputError


def save_data_url(url: str, folder: str | Path, max_bytes: int = MAX_FILE_BYTES) -> Path:
    """Write the bytes of a ``data:`` URL to a new file in ``folder`` (nothing is decoded as an
    image; more than ``max_bytes`` is refused)."""
    encoded = url.split(",", 1)[1] if "," in url else ""
    if len(encoded) * 3 // 4 > max_bytes:
        raise ImageInputError(f"the image data is over {max_bytes / 2**20:.0f} MiB")
    if not encoded:
        raise ImageInputError("the image data URL cannot be decoded: it holds no data")
    try:
        payload = base64.b64decode(encoded, validate=False)
    except ValueError as error:
        raise ImageInputError(f"the image data URL cannot be decoded: {error}") from error
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".upload", delete=False) as f:
        f.write(payload)
    return Path(f.name)


def upload_image(**kwargs: Any) -> gr.Image:
    """An image input (``gr.Image``) whose preprocess hands over the uploaded file unopened.

    Gradio 6's ``gr.Image.preprocess`` opens every upload with PIL before the app's function
    runs, so a corrupt file would fail there with Gradio's generic error. This instance's
    ``preprocess`` is replaced (an instance attribute: a subclass would make Gradio write a
    ``.pyi`` stub beside this module) by one that returns the upload's path, so that
    ``load_image`` is the first to look at the file. Gradio has checked before that the
    path lies in its upload folder (only uploaded files reach ``preprocess``).
    """
    component = gr.Image(type="filepath", image_mode=None, format="png", **kwargs)
    component.preprocess = functools.partial(_uploaded_path, component)
    return component


def _uploaded_path(component: gr.Image, payload: Any) -> str | None:
    if payload is None:
        return None
    if payload.url and payload.url.startswith("data:"):
        return str(save_data_url(payload.url, component.GRADIO_CACHE))
    if payload.path is None:
        raise ImageInputError("the upload carries no file")
    return str(payload.path)
