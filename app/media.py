"""The only files the app serves: thumbnails of test images and copies of query images.

Both live in one folder (``<cache>/media``, the server's only allowed path), named by the
source image's content digest: the same image is always the same file, so a browser fetches it
once and the server writes it once. A thumbnail (:data:`THUMB_HEIGHT` pixels high, JPEG) carries
its right/wrong mark where the eye lands: a coloured frame and a tick or cross badge (green =
same identity as the query, red = another identity, grey = unknown), drawn without fonts. The
dataset folder, the feature cache and everything else stay unserved.

Example:
    >>> media = Media(Path("/tmp/media"))  # doctest: +SKIP
    >>> media.thumbnail("/data/cam1/0001/0001.jpg", match=True)  # doctest: +SKIP
    '/tmp/media/thumbs/3f2a...-match.jpg'
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw

from cycletrans.data import read_image
from cycletrans.data.images import file_digest

THUMB_HEIGHT = 160
FRAME = 5
COLOURS = {True: (22, 163, 74), False: (220, 38, 38), None: (148, 163, 184)}
NAMES = {True: "match", False: "wrong", None: "unknown"}


class Media:
    """Thumbnails and query copies under ``folder`` (module docstring)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._digests: dict[str, str] = {}

    def _digest(self, path: str | Path) -> str:
        key = str(path)
        if key not in self._digests:
            self._digests[key] = file_digest(path)
        return self._digests[key]

    def _write(self, target: Path, write: Callable[[Path], object]) -> str:
        """Write ``target`` once (atomically: a temporary name renamed into place)."""
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}")
            write(tmp)
            os.replace(tmp, target)
        return str(target)

    def thumbnail(self, path: str | Path, match: bool | None = None) -> str:
        """A small JPEG of the image at ``path`` with its mark (module docstring)."""
        target = self.folder / "thumbs" / f"{self._digest(path)}-{NAMES[match]}.jpg"
        return self._write(
            target, lambda tmp: marked(read_image(path), match).save(tmp, format="JPEG", quality=90)
        )

    def original(self, path: str | Path) -> str:
        """A served copy of the image file at ``path``, byte for byte (so that it is still
        recognised as that test image when it comes back as a query)."""
        target = self.folder / "images" / f"{self._digest(path)}{Path(path).suffix.lower()}"
        return self._write(target, lambda tmp: shutil.copyfile(path, tmp))


def marked(image: Image.Image, match: bool | None) -> Image.Image:
    """``image`` scaled to :data:`THUMB_HEIGHT` with a coloured frame and a badge."""
    width = max(1, round(image.width * THUMB_HEIGHT / image.height))
    inner = image.convert("RGB").resize((width, THUMB_HEIGHT), Image.Resampling.BICUBIC)
    colour = COLOURS[match]
    framed = Image.new("RGB", (width + 2 * FRAME, THUMB_HEIGHT + 2 * FRAME), colour)
    framed.paste(inner, (FRAME, FRAME))
    if match is not None:
        draw = ImageDraw.Draw(framed)
        size = 22
        left, top = framed.width - size - 2, 2
        draw.ellipse((left, top, left + size, top + size), fill=colour, outline="white", width=2)
        if match:
            points = [(left + 6, top + 11), (left + 10, top + 16), (left + 17, top + 6)]
        else:
            points = [(left + 7, top + 7), (left + 15, top + 15)]
            draw.line([(left + 15, top + 7), (left + 7, top + 15)], fill="white", width=3)
        draw.line(points, fill="white", width=3)
    return framed
