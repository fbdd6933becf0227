"""Untrusted image files (uploads) as RGB images, with bounded memory.

:func:`load_image` reads the header first and refuses, before any pixel is decoded, files that
are not images, too large on disk, too small, with more than ``max_pixels`` pixels to decode
(JPEGs count after decoding at reduced scale), or whose full-size pixels would take more than
``max_decoded_bytes`` (:func:`decoded_bytes`: 8 bytes per pixel for an RGBA image, 4 for RGB, 2
for 16-bit, 1 for grey). Then, under a process-wide budget of decoded bytes
(:data:`DECODE_BUDGET`, so concurrent requests wait instead of adding up), it decodes,
downscales to ``max_side`` in the file's own mode, and only then converts to RGB:

- RGBA / LA / palette with transparency: composited over black (transparent = no signal);
- 16-bit or 32-bit single channel (radiometric thermal): min-max stretched to 8 bits (float32,
  after downscaling), then three equal channels; grey and 1-bit: three equal channels;
- palette, CMYK, YCbCr, ...: converted to RGB; EXIF orientation applied; first frame only.

Anything else raises :class:`ImageInputError` (a ValueError) saying what was expected and found.
Trusted dataset images are read by ``cycletrans.data.read_image``.

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

import contextlib
import hashlib
import math
import re
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

MAX_PIXELS = 40_000_000  # most pixels decoded for one image (e.g. an 8000 x 5000 grey image)
MAX_SIDE = 1024  # larger images are downscaled (person crops are a few hundred pixels high)
MIN_SIDE = 8  # smaller is no picture of a person
MAX_FILE_BYTES = 25 * 1024 * 1024
MAX_DECODED_BYTES = 128 * 2**20  # full-size pixels of one image (RGB: 33 M pixels, RGBA: 16.7 M)
DECODE_BUDGET = MAX_DECODED_BYTES  # bytes of full-size pixels held at once, all threads: the
# app's server stays under 1.5 GB however many of the largest accepted images arrive at once
NO_IMAGE = "no image given: upload an image or pick a test query"
HIGH_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
TRANSPARENT_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
ONE_BYTE_MODES = ("1", "L", "P")
KINDS = "expected JPEG, PNG, BMP, TIFF, WebP or GIF"
# EXIF orientation -> the transposition that undoes it
ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# load_image checks the pixel count itself, with its own message
warnings.simplefilter("ignore", Image.DecompressionBombWarning)


class ImageInputError(ValueError):
    """An input file that cannot be used as an image (the message says why)."""


class DecodeBudget:
    """Bytes of decoded pixels held at once by all threads; a request waits for its share."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_use = 0
        self._free = threading.Condition()

    @contextlib.contextmanager
    def reserve(self, nbytes: int) -> Iterator[None]:
        """Hold ``nbytes`` (at most the whole capacity) while the block runs."""
        nbytes = min(nbytes, self.capacity)
        with self._free:
            self._free.wait_for(lambda: self.in_use + nbytes <= self.capacity)
            self.in_use += nbytes
        try:
            yield
        finally:
            with self._free:
                self.in_use -= nbytes
                self._free.notify_all()


BUDGET = DecodeBudget(DECODE_BUDGET)


def file_digest(path: str | Path) -> str:
    """SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def decoded_bytes(mode: str, size: tuple[int, int]) -> int:
    """Peak bytes of full-size pixels while decoding and downscaling an image of ``mode``:
    Pillow holds 1, 2 or 4 bytes per pixel, and resizes transparent modes through a
    premultiplied copy."""
    per_pixel = 1 if mode in ONE_BYTE_MODES else 2 if mode.startswith("I;16") else 4
    copies = 2 if mode in TRANSPARENT_MODES else 1
    return size[0] * size[1] * per_pixel * copies


def _too_many_pixels(name: str, pixels: int | None, max_pixels: int) -> ImageInputError:
    count = f" has {pixels:,} pixels:" if pixels else ":"
    return ImageInputError(
        f"{name}{count} too many to decode safely (the limit is "
        f"{max_pixels:,} pixels, a guard against decompression bombs); "
        "downscale it first"
    )


def _short(error: BaseException, path: Path) -> str:
    """The error's message without the server-side folder of ``path``."""
    return str(error).replace(str(path), path.name)


def _open_checked(
    path: Path, max_pixels: int, max_side: int, min_side: int, max_decoded_bytes: int
) -> Image.Image:
    """Open ``path`` lazily (header only), set JPEG's reduced-scale decoding, check sizes."""
    try:
        image = Image.open(path)
    except Image.DecompressionBombError as error:  # Pillow's own limit, far above ours
        found = re.search(r"\((\d+) pixels\)", str(error))
        raise _too_many_pixels(
            path.name, int(found.group(1)) if found else None, max_pixels
        ) from error
    except UnidentifiedImageError as error:
        raise ImageInputError(f"{path.name} is not an image file we can read ({KINDS})") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageInputError(
            f"{path.name} is not an image file we can read ({KINDS}): {_short(error, path)}"
        ) from error
    width, height = image.size
    if min(width, height) < min_side:
        image.close()
        raise ImageInputError(
            f"{path.name} is {width} x {height} pixels: too small, "
            f"expected at least {min_side} pixels on each side"
        )
    if image.format == "JPEG" and max(width, height) > max_side:
        scale = max_side / max(width, height)  # decode at 1/2, 1/4 or 1/8 of the size
        image.draft(image.mode, (math.ceil(width * scale), math.ceil(height * scale)))
    if image.size[0] * image.size[1] > max_pixels:
        image.close()
        raise _too_many_pixels(path.name, width * height, max_pixels)
    needed = decoded_bytes(image.mode, image.size)
    if needed > max_decoded_bytes:
        image.close()
        raise ImageInputError(
            f"{path.name} is {width} x {height} pixels of mode {image.mode}: decoding it takes "
            f"{needed / 2**20:.0f} MiB, the limit is {max_decoded_bytes / 2**20:.0f} MiB; "
            "downscale it first"
        )
    return image


def _downscaled(image: Image.Image, max_side: int) -> Image.Image:
    """``image`` with its longer side at most ``max_side``, in its own mode."""
    if max(image.size) <= max_side:
        return image
    scale = max_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    if image.mode == "1":
        image = image.convert("L")  # 1 byte per pixel either way; averages instead of picks
    if image.mode.startswith("I;16"):
        return image.resize(size, Image.Resampling.BOX)  # Pillow cannot reduce() these
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert a (downscaled) image of any mode to RGB (module docstring)."""
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in TRANSPARENT_MODES:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in HIGH_DEPTH_MODES:
        values = np.asarray(image, dtype=np.float32)
        if not np.isfinite(values).all():
            raise ImageInputError("the image holds NaN or infinite values")
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) * (255.0 / (high - low)) if high > low else values * 0.0
        return Image.fromarray(np.round(scaled).astype(np.uint8), mode="L").convert("RGB")
    return image.convert("RGB")


def load_image(
    path: str | Path | None,
    max_pixels: int = MAX_PIXELS,
    max_side: int = MAX_SIDE,
    min_side: int = MIN_SIDE,
    max_bytes: int = MAX_FILE_BYTES,
    max_decoded_bytes: int = MAX_DECODED_BYTES,
) -> Image.Image:
    """Read an untrusted image file as an RGB PIL image (module docstring for the rules).

    Args:
        path: the file (e.g. an upload's temporary path); None means nothing was given.
        max_pixels: refuse images that would decode to more pixels (checked on the header).
        max_side: downscale images with a longer side (aspect ratio kept).
        min_side: refuse images with a shorter side.
        max_bytes: refuse larger files.
        max_decoded_bytes: refuse images whose full-size pixels take more memory
            (:func:`decoded_bytes`).

    Raises:
        ImageInputError: no file, not an image, corrupt, too small, or too many pixels or
            bytes to decode.
    """
    if path is None or str(path) == "":
        raise ImageInputError(NO_IMAGE)
    path = Path(path)
    if not path.is_file():
        raise ImageInputError(f"no image file at {path.name}")
    size = path.stat().st_size
    if size == 0:
        raise ImageInputError(f"{path.name} is empty (0 bytes)")
    if size > max_bytes:
        raise ImageInputError(
            f"{path.name} is {size / 2**20:.1f} MiB; the limit is {max_bytes / 2**20:.0f} MiB"
        )
    source = _open_checked(path, max_pixels, max_side, min_side, max_decoded_bytes)
    try:
        with BUDGET.reserve(decoded_bytes(source.mode, source.size)):
            source.seek(0)
            source.load()
            orientation = source.getexif().get(0x0112, 1)
            rgb = _to_rgb(_downscaled(source, max_side))
    except ImageInputError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageInputError(
            f"{path.name} is corrupt or truncated: {_short(error, path)}"
        ) from error
    finally:
        source.close()
    return rgb.transpose(ORIENTATION[orientation]) if orientation in ORIENTATION else rgb
