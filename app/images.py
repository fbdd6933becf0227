"""Safe image input: every uploaded file reaches the models only through :func:`load_image`.

:func:`load_image` reads the file's header first and refuses, before any pixel is decoded,
files that are not images, too large on disk, or above a pixel limit (decompression bombs).
Then it decodes and converts what is sensible to RGB (the models' input):

- RGBA / LA / palette with transparency: composited over black (transparent = no signal);
- palette, CMYK, YCbCr, ...: converted to RGB;
- 16-bit or 32-bit single channel (radiometric thermal): min-max stretched to 8 bits, then to
  three equal channels; 8-bit grey and 1-bit: three equal channels;
- EXIF orientation applied; the first frame of an animation or multi-page file;
- larger than ``max_side`` on a side: downscaled (aspect kept), decoded at reduced size where
  the format allows (JPEG draft mode).

Anything else (corrupt or truncated data, an image smaller than ``min_side``) raises
:class:`ImageInputError` (a ValueError) whose message says what was expected and found.

:func:`upload_image` makes Gradio's image input without Gradio's own decoding (see there).

Example:
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "thermal.png"
    >>> Image.new("I;16", (40, 100), 3000).save(path)
    >>> image = load_image(path)
    >>> image.mode, image.size
    ('RGB', (40, 100))
"""

from __future__ import annotations

import base64
import functools
import hashlib
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 40_000_000  # refuse to decode more pixels than this (e.g. 8000 x 5000)
MAX_SIDE = 1024  # downscale larger images (person crops are a few hundred pixels high)
MIN_SIDE = 8  # smaller is no picture of a person
MAX_FILE_BYTES = 25 * 1024 * 1024
NO_IMAGE = "no image given: upload an image or pick a test query"
HIGH_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
TRANSPARENT_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


class ImageInputError(ValueError):
    """An input file that cannot be used as an image (the message says why)."""


def file_digest(path: str | Path) -> str:
    """SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _short(error: BaseException, path: Path) -> str:
    """The error's message without the server-side folder of ``path``."""
    return str(error).replace(str(path), path.name)


def _open_checked(path: Path, max_pixels: int) -> Image.Image:
    """Open ``path`` lazily (header only) and check its kind and pixel count."""
    try:
        image = Image.open(path)  # PIL refuses > 2 x its own limit here and warns above it
    except Image.DecompressionBombError as error:
        raise ImageInputError(f"{path.name}: too many pixels to decode safely ({error})"
                              ) from error
    except UnidentifiedImageError as error:
        raise ImageInputError(f"{path.name} is not an image file we can read (expected JPEG, "
                              "PNG, BMP, TIFF, WebP or GIF)") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageInputError(f"{path.name} is not an image file we can read (expected JPEG, "
                              f"PNG, BMP, TIFF, WebP or GIF): {_short(error, path)}") from error
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise ImageInputError(f"{path.name} is {width} x {height} = {width * height:,} pixels: "
                              f"too many pixels to decode safely (the limit is {max_pixels:,}, "
                              "a guard against decompression bombs); downscale it first")
    return image


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert a decoded image of any mode to RGB (module docstring)."""
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in TRANSPARENT_MODES:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in HIGH_DEPTH_MODES:
        values = np.asarray(image, dtype=np.float64)
        if not np.isfinite(values).all():
            raise ImageInputError("the image holds NaN or infinite values")
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) / (high - low) * 255.0 if high > low else np.zeros_like(values)
        return Image.fromarray(np.round(scaled).astype(np.uint8), mode="L").convert("RGB")
    return image.convert("RGB")


def load_image(
    path: str | Path | None,
    max_pixels: int = MAX_PIXELS,
    max_side: int = MAX_SIDE,
    min_side: int = MIN_SIDE,
    max_bytes: int = MAX_FILE_BYTES,
) -> Image.Image:
    """Read an untrusted image file as an RGB PIL image (module docstring for the rules).

    Args:
        path: the file (e.g. an upload's temporary path); None means nothing was given.
        max_pixels: refuse images with more pixels (checked on the header, before decoding).
        max_side: downscale images with a longer side (aspect ratio kept).
        min_side: refuse images with a shorter side.
        max_bytes: refuse larger files.

    Raises:
        ImageInputError: no file, not an image, corrupt, too many pixels or too small.
    """
    if path is None or str(path) == "":
        raise ImageInputError(NO_IMAGE)
    path = Path(path)
    if not path.is_file():
        raise ImageInputError(f"no image file at {path}")
    size = path.stat().st_size
    if size == 0:
        raise ImageInputError(f"{path.name} is empty (0 bytes)")
    if size > max_bytes:
        raise ImageInputError(f"{path.name} is {size / 2**20:.1f} MiB; the limit is "
                              f"{max_bytes / 2**20:.0f} MiB")
    source = _open_checked(path, max_pixels)
    try:
        width, height = source.size
        if min(width, height) < min_side:
            raise ImageInputError(f"{path.name} is {width} x {height} pixels: too small, "
                                  f"expected at least {min_side} pixels on each side")
        if max(width, height) > max_side and source.format == "JPEG":
            source.draft("RGB", (max_side, max_side))  # decode at a reduced scale
        try:
            source.seek(0)
            source.load()
            rgb = _to_rgb(ImageOps.exif_transpose(source))
        except ImageInputError:
            raise
        except (OSError, SyntaxError, ValueError, EOFError) as error:
            raise ImageInputError(f"{path.name} is corrupt or truncated: {_short(error, path)}"
                                  ) from error
    finally:
        source.close()
    if max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side), Image.LANCZOS)
    return rgb


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
    :func:`load_image` is the first to look at the file. Gradio has checked before that the
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
