"""Background scenes: one fixed scene per camera location, seen in colour and in infrared.

A scene is a wide panorama drawn once per (seed, scene, size) and cached; every image of a
camera shows a window of it, so each camera keeps a consistent look. Scene elements carry both a
colour and a thermal level: backgrounds are cool in infrared, with a few warm objects
(radiators, lamps, car bonnets) so that "bright" does not simply mean "person".

Example:
    >>> rgb, thermal = scene_images(0, "office", 64, 32)
    >>> rgb.shape, thermal.shape
    ((71, 96, 3), (71, 96))
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from cycletrans.data.synth.streams import SCENE, stream

INDOOR = ("office", "lab")
OUTDOOR = ("courtyard", "street", "garden", "campus")
SCENES = INDOOR + OUTDOOR
PANORAMA = (1.12, 3.0)  # scene size relative to the image (height, width)

WALLS = (
    (222, 212, 188),
    (232, 232, 226),
    (196, 198, 200),
    (200, 216, 196),
    (196, 210, 226),
    (214, 196, 172),
)
FLOORS = ((150, 150, 146), (128, 96, 66), (86, 110, 96), (176, 170, 160), (110, 110, 120))
FACADES = ((164, 84, 66), (170, 170, 166), (214, 204, 178), (140, 132, 120), (196, 186, 164))
GROUNDS = ((140, 140, 136), (96, 96, 100), (170, 160, 140), (120, 112, 104))
SKIES = ((176, 206, 236), (214, 222, 230), (160, 172, 186))


class _Painter:
    """Draws shapes on a colour image and a thermal image at once."""

    def __init__(self, height: int, width: int, rgb: tuple[int, int, int], thermal: float):
        self.rgb = Image.new("RGB", (width, height), rgb)
        self.ir = Image.new("L", (width, height), int(thermal * 255))
        self._rgb, self._ir = ImageDraw.Draw(self.rgb), ImageDraw.Draw(self.ir)

    def rect(self, box: tuple[float, ...], rgb: tuple[int, ...], thermal: float) -> None:
        self._rgb.rectangle(box, fill=tuple(rgb))
        self._ir.rectangle(box, fill=int(thermal * 255))

    def ellipse(self, box: tuple[float, ...], rgb: tuple[int, ...], thermal: float) -> None:
        self._rgb.ellipse(box, fill=tuple(rgb))
        self._ir.ellipse(box, fill=int(thermal * 255))

    def line(
        self, points: list[tuple[float, float]], rgb: tuple[int, ...], thermal: float, width: int
    ) -> None:
        self._rgb.line(points, fill=tuple(rgb), width=width)
        self._ir.line(points, fill=int(thermal * 255), width=width)


def _shade(rgb: tuple[int, ...], factor: float) -> tuple[int, ...]:
    return tuple(int(min(255, max(0, c * factor))) for c in rgb)


def _pick(rng: np.random.Generator, options: tuple) -> tuple:
    return options[int(rng.integers(len(options)))]


def _indoor(rng: np.random.Generator, h: int, w: int) -> _Painter:
    horizon = int(h * rng.uniform(0.55, 0.68))
    wall = _pick(rng, WALLS)
    p = _Painter(h, w, wall, rng.uniform(0.24, 0.32))
    floor = _pick(rng, FLOORS)
    p.rect((0, horizon, w, h), floor, rng.uniform(0.18, 0.26))
    tile = max(4, int(h * rng.uniform(0.06, 0.12)))
    for y in range(horizon + tile // 2, h, tile):  # floor tiles, denser toward the horizon
        p.line([(0, y), (w, y)], _shade(floor, 0.8), 0.2, max(1, h // 160))
    for x in range(-w, 2 * w, tile * 3):
        p.line(
            [(x, horizon), (x + (x - w / 2) * 0.6, h)], _shade(floor, 0.8), 0.2, max(1, h // 160)
        )
    p.rect((0, horizon - h * 0.025, w, horizon), _shade(wall, 0.6), 0.22)  # skirting board
    x = rng.uniform(0, w * 0.1)
    while x < w:
        kind = _pick(rng, ("door", "window", "poster", "radiator", "pillar", "cabinet", "lamp"))
        width = w * rng.uniform(0.05, 0.12)
        colour = tuple(int(c) for c in rng.integers(30, 230, 3))
        if kind == "door":
            p.rect((x, horizon - h * 0.5, x + width, horizon), _shade(colour, 0.7), 0.27)
            p.rect(
                (x + width * 0.8, horizon - h * 0.27, x + width * 0.88, horizon - h * 0.24),
                (200, 200, 190),
                0.3,
            )
        elif kind == "window":
            p.rect((x, h * 0.08, x + width * 1.5, horizon - h * 0.28), (210, 226, 240), 0.12)
            p.line(
                [(x + width * 0.75, h * 0.08), (x + width * 0.75, horizon - h * 0.28)],
                (240, 240, 240),
                0.2,
                max(1, h // 80),
            )
        elif kind == "poster":
            p.rect((x, horizon - h * 0.42, x + width * 0.8, horizon - h * 0.22), colour, 0.3)
        elif kind == "radiator":
            p.rect(
                (x, horizon - h * 0.16, x + width * 1.4, horizon - h * 0.04), (222, 222, 218), 0.62
            )
            for k in range(1, 6):
                xx = x + width * 1.4 * k / 6
                p.line(
                    [(xx, horizon - h * 0.16), (xx, horizon - h * 0.04)],
                    (170, 170, 166),
                    0.5,
                    max(1, h // 128),
                )
        elif kind == "pillar":
            p.rect((x, 0, x + width * 0.8, horizon + h * 0.02), _shade(wall, 0.85), 0.3)
        elif kind == "cabinet":
            p.rect((x, horizon - h * 0.3, x + width * 1.2, horizon), _shade(colour, 0.8), 0.26)
        else:
            p.rect((x, 0, x + width * 1.5, h * 0.025), (255, 250, 230), 0.55)
        x += width * rng.uniform(1.6, 3.5)
    return p


def _outdoor(rng: np.random.Generator, h: int, w: int) -> _Painter:
    sky_line, horizon = int(h * rng.uniform(0.0, 0.25)), int(h * rng.uniform(0.5, 0.66))
    p = _Painter(h, w, _pick(rng, SKIES), rng.uniform(0.04, 0.1))
    facade = _pick(rng, FACADES)
    p.rect((0, sky_line, w, horizon), facade, rng.uniform(0.3, 0.38))
    step = int(w * rng.uniform(0.04, 0.07))
    for x in range(int(rng.integers(step)), w, step):  # window grid of the facade
        for y in range(sky_line + step // 3, horizon - step, int(step * 1.3)):
            p.rect((x, y, x + step * 0.55, y + step * 0.7), (60, 72, 86), 0.18)
    ground = _pick(rng, GROUNDS)
    p.rect((0, horizon, w, h), ground, rng.uniform(0.32, 0.42))
    kerb = horizon + (h - horizon) * rng.uniform(0.2, 0.5)
    p.rect((0, kerb, w, kerb + h * 0.02), (190, 190, 186), 0.3)
    if rng.random() < 0.6:
        p.rect((0, horizon, w, horizon + h * 0.05), (70, 120, 60), 0.22)  # grass verge
    x = rng.uniform(0, w * 0.1)
    while x < w:
        kind = _pick(rng, ("tree", "pole", "car", "bush", "bench"))
        width = w * rng.uniform(0.05, 0.1)
        if kind == "tree":
            p.rect(
                (x + width * 0.4, horizon - h * 0.35, x + width * 0.6, horizon + h * 0.03),
                (90, 66, 44),
                0.28,
            )
            p.ellipse(
                (x - width * 0.3, horizon - h * 0.75, x + width * 1.3, horizon - h * 0.3),
                tuple(int(c) for c in rng.integers((30, 80, 30), (80, 150, 70))),
                0.2,
            )
        elif kind == "pole":
            p.rect(
                (x, h * 0.05, x + max(2, width * 0.12), horizon + h * 0.04), (110, 110, 114), 0.25
            )
            p.rect((x - width * 0.2, h * 0.05, x + width * 0.3, h * 0.08), (230, 230, 200), 0.5)
        elif kind == "car":
            colour = tuple(int(c) for c in rng.integers(30, 230, 3))
            p.rect((x, horizon - h * 0.16, x + width * 2.6, horizon + h * 0.02), colour, 0.45)
            p.rect(
                (x + width * 0.5, horizon - h * 0.26, x + width * 2.0, horizon - h * 0.15),
                (70, 80, 92),
                0.2,
            )
            for wx in (x + width * 0.5, x + width * 2.1):
                p.ellipse(
                    (wx - h * 0.04, horizon - h * 0.02, wx + h * 0.04, horizon + h * 0.06),
                    (20, 20, 20),
                    0.35,
                )
        elif kind == "bush":
            p.ellipse(
                (x, horizon - h * 0.12, x + width * 1.5, horizon + h * 0.03), (50, 100, 50), 0.22
            )
        else:
            p.rect((x, horizon - h * 0.08, x + width * 1.6, horizon - h * 0.05), (120, 84, 50), 0.3)
        x += width * rng.uniform(1.5, 4.0)
    return p


@lru_cache(maxsize=32)
def scene_images(seed: int, scene: str, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The panorama of ``scene`` for images of ``height`` x ``width`` pixels.

    Returns ``(rgb [Hp, Wp, 3], thermal [Hp, Wp])`` float32 in [0, 1] with
    ``Hp, Wp = PANORAMA * (height, width)``: slightly taller and three times wider than an image.
    Read-only arrays (shared by the cache).
    """
    if scene not in SCENES:
        raise ValueError(f"unknown scene {scene!r}: expected one of {SCENES}")
    h, w = int(height * PANORAMA[0]), int(width * PANORAMA[1])
    rng = stream(seed, SCENE, SCENES.index(scene))
    painter = (_indoor if scene in INDOOR else _outdoor)(rng, h, w)
    radius = max(0.5, height / 256)
    rgb = np.asarray(painter.rgb.filter(ImageFilter.GaussianBlur(radius)), np.float32) / 255
    ir = np.asarray(painter.ir.filter(ImageFilter.GaussianBlur(radius * 2)), np.float32) / 255
    grain = rng.normal(0.0, 0.025, (h, w)).astype(np.float32)  # surface texture, fixed per scene
    rgb = np.clip(rgb + grain[..., None], 0, 1)
    ir = np.clip(ir + 0.5 * grain, 0, 1)
    rgb.setflags(write=False)
    ir.setflags(write=False)
    return rgb, ir
