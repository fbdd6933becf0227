"""Identity attributes: everything that defines one synthetic person, sampled from (seed, pid).

An identity is what both modalities share: body shape, hair, garment types and patterns,
accessories, and each material's thermal level (its infrared intensity, sampled independently
of its colour). Colours are seen only by the visible cameras.

Example:
    >>> person = sample_identity(seed=0, pid=1)
    >>> person == sample_identity(seed=0, pid=1)
    True
    >>> row = attribute_row(person)
    >>> list(row) == list(ATTRIBUTE_COLUMNS) and row["pid"] == "1"
    True
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from cycletrans.data.synth.streams import IDENTITY, stream

RGB = tuple[int, int, int]

# Named garment colours (sRGB). Each identity jitters its colour a little around the name.
PALETTE: dict[str, RGB] = {
    "black": (28, 28, 30),
    "charcoal": (62, 64, 68),
    "grey": (128, 128, 132),
    "light grey": (190, 190, 192),
    "white": (236, 236, 232),
    "cream": (236, 226, 196),
    "beige": (206, 186, 150),
    "khaki": (170, 150, 100),
    "brown": (110, 72, 46),
    "tan": (176, 128, 84),
    "maroon": (110, 24, 36),
    "red": (200, 36, 40),
    "pink": (232, 140, 170),
    "orange": (236, 120, 30),
    "yellow": (238, 206, 50),
    "olive": (110, 112, 48),
    "green": (46, 140, 64),
    "dark green": (28, 76, 44),
    "teal": (24, 128, 128),
    "light blue": (130, 180, 226),
    "blue": (40, 84, 186),
    "denim": (66, 96, 140),
    "navy": (26, 36, 80),
    "purple": (110, 50, 140),
}
BOTTOM_COLOURS = (
    "black",
    "charcoal",
    "grey",
    "light grey",
    "beige",
    "khaki",
    "brown",
    "tan",
    "denim",
    "navy",
    "blue",
    "olive",
    "white",
    "maroon",
    "dark green",
)
SKIN_TONES: dict[str, RGB] = {
    "very light": (240, 208, 186),
    "light": (226, 184, 152),
    "medium": (196, 148, 110),
    "tan": (164, 116, 82),
    "dark": (112, 76, 52),
    "very dark": (74, 50, 36),
}
HAIR_COLOURS: dict[str, RGB] = {
    "black": (22, 20, 20),
    "dark brown": (58, 40, 30),
    "brown": (104, 70, 44),
    "blonde": (200, 170, 110),
    "red": (150, 66, 36),
    "grey": (160, 160, 160),
}
TOP_KINDS = ("tshirt", "longsleeve", "jacket", "dress")
BOTTOM_KINDS = ("trousers", "shorts", "skirt")
PATTERNS = ("solid", "hstripes", "vstripes", "checks", "logo")
HAIR_STYLES = ("short", "bob", "long", "ponytail", "bun", "shaved")
HAT_KINDS = ("cap", "beanie")
BAG_KINDS = ("shoulder bag", "tote")
SHOE_KINDS = ("sneakers", "boots")


@dataclass(frozen=True)
class Garment:
    """One garment: type, pattern, colours (visible) and thermal levels (infrared, 0..1).

    ``colour2`` / ``thermal2`` paint the pattern's second element (stripes, checks, logo);
    for a solid garment they equal the first. ``period`` is the pattern period as a fraction
    of body height.
    """

    kind: str
    pattern: str
    colour: str
    rgb: RGB
    colour2: str
    rgb2: RGB
    thermal: float
    thermal2: float
    period: float


@dataclass(frozen=True)
class Item:
    """A worn item (shoes, hat, backpack, bag): kind, colour and thermal level."""

    kind: str
    colour: str
    rgb: RGB
    thermal: float


@dataclass(frozen=True)
class Identity:
    """All attributes of one synthetic person (body sizes are fractions of body height)."""

    pid: int
    sex: str
    height: float  # 0..1: how much of the detection box the person fills (with the pose's scale)
    build: float  # width multiplier, ~0.8 slim .. 1.25 broad
    head_size: float  # head height / body height
    leg_length: float  # hip-to-sole / body height
    skin: str
    skin_rgb: RGB
    skin_thermal: float
    hair_style: str
    hair_colour: str
    hair_rgb: RGB
    hair_thermal: float
    glasses: bool
    top: Garment
    inner: Garment | None  # the shirt under an open jacket
    bottom: Garment | None  # None under a dress
    shoes: Item
    hat: Item | None
    backpack: Item | None
    bag: Item | None
    bag_side: int  # -1 / 1: the body side the bag hangs on (0 without a bag)


_NESTED = {
    "top": Garment,
    "inner": Garment,
    "bottom": Garment,
    "shoes": Item,
    "hat": Item,
    "backpack": Item,
    "bag": Item,
}


def _columns() -> tuple[str, ...]:
    names: list[str] = []
    for f in fields(Identity):
        if f.name in _NESTED:
            names += [f"{f.name}_{g.name}" for g in fields(_NESTED[f.name])]
        else:
            names.append(f.name)
    return tuple(names)


ATTRIBUTE_COLUMNS = _columns()


def _text(value: object) -> str:
    if isinstance(value, tuple):
        return "#{:02x}{:02x}{:02x}".format(*value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def attribute_row(identity: Identity) -> dict[str, str]:
    """Flatten an identity into ``ATTRIBUTE_COLUMNS`` -> text (RGB as ``#rrggbb``, absent = "")."""
    row: dict[str, str] = {}
    for f in fields(Identity):
        value = getattr(identity, f.name)
        if f.name in _NESTED:
            for g in fields(_NESTED[f.name]):
                row[f"{f.name}_{g.name}"] = "" if value is None else _text(getattr(value, g.name))
        else:
            row[f.name] = _text(value)
    return row


def _pick(
    rng: np.random.Generator,
    options: tuple[str, ...] | list[str],
    weights: tuple[float, ...] | None = None,
) -> str:
    p = None if weights is None else np.asarray(weights, float) / sum(weights)
    return str(options[rng.choice(len(options), p=p)])


def _jitter(rng: np.random.Generator, rgb: RGB, amount: int = 14) -> RGB:
    out = np.clip(np.asarray(rgb) + rng.integers(-amount, amount + 1, 3), 0, 255)
    return (int(out[0]), int(out[1]), int(out[2]))


def _thermal(rng: np.random.Generator, low: float = 0.3, high: float = 0.8) -> float:
    return round(float(rng.uniform(low, high)), 3)


def _garment(
    rng: np.random.Generator, kind: str, colours: tuple[str, ...], patterns: tuple[float, ...]
) -> Garment:
    colour = _pick(rng, colours)
    pattern = _pick(rng, PATTERNS, patterns)
    rgb = _jitter(rng, PALETTE[colour])
    thermal = _thermal(rng)
    if pattern == "solid":
        return Garment(kind, pattern, colour, rgb, colour, rgb, thermal, thermal, 0.0)
    colour2 = _pick(rng, [c for c in PALETTE if c != colour])
    # The pattern's thermal contrast: a different fabric/print, brighter or darker in infrared.
    contrast = float(rng.uniform(0.15, 0.3)) * (1 if thermal < 0.55 else -1)
    return Garment(
        kind,
        pattern,
        colour,
        rgb,
        colour2,
        _jitter(rng, PALETTE[colour2]),
        thermal,
        round(thermal + contrast, 3),
        round(float(rng.uniform(0.03, 0.06)), 3),
    )


def _item(rng: np.random.Generator, kind: str, colours: tuple[str, ...] | list[str]) -> Item:
    colour = _pick(rng, colours)
    return Item(kind, colour, _jitter(rng, PALETTE[colour]), _thermal(rng, 0.2, 0.7))


def sample_identity(seed: int, pid: int) -> Identity:
    """Sample the attributes of person ``pid`` from the stream ``(seed, pid)``."""
    return identity_from(stream(seed, IDENTITY, pid), pid)


def identity_from(rng: np.random.Generator, pid: int) -> Identity:
    """Sample a person's attributes from ``rng`` (also used for occluding passers-by)."""
    sex = _pick(rng, ("female", "male"))
    female = sex == "female"
    skin = _pick(rng, tuple(SKIN_TONES))
    hair_colour = _pick(rng, tuple(HAIR_COLOURS), (4, 3, 2, 1, 0.5, 0.7))
    hair_style = _pick(
        rng, HAIR_STYLES, (1, 2, 4, 3, 1.5, 0) if female else (8, 1, 0.5, 0.3, 0, 1.5)
    )
    colours = tuple(PALETTE)
    top_kind = _pick(rng, TOP_KINDS, (3, 3, 3, 1.5) if female else (4, 3, 3, 0))
    top = _garment(rng, top_kind, colours, (5, 2, 1.5, 1.5, 2))
    inner = _garment(rng, "tshirt", colours, (3, 1, 0, 0, 1)) if top_kind == "jacket" else None
    bottom = None
    if top_kind != "dress":
        bottom_kind = _pick(rng, BOTTOM_KINDS, (5, 2, 2) if female else (7, 2, 0))
        bottom = _garment(rng, bottom_kind, BOTTOM_COLOURS, (8, 0.5, 0.5, 1, 0))
    hat = _item(rng, _pick(rng, HAT_KINDS), colours) if rng.random() < 0.18 else None
    backpack = _item(rng, "backpack", colours) if rng.random() < 0.4 else None
    bag = (
        _item(rng, _pick(rng, BAG_KINDS), colours)
        if rng.random() < (0.35 if female else 0.15)
        else None
    )
    return Identity(
        pid=pid,
        sex=sex,
        height=round(float(rng.uniform(0.0, 1.0)), 3),
        build=round(float(rng.uniform(0.8, 1.1) if female else rng.uniform(0.9, 1.25)), 3),
        head_size=round(float(rng.uniform(0.115, 0.145)), 3),
        leg_length=round(float(rng.uniform(0.44, 0.52)), 3),
        skin=skin,
        skin_rgb=_jitter(rng, SKIN_TONES[skin], 8),
        skin_thermal=_thermal(rng, 0.85, 0.97),
        hair_style=hair_style,
        hair_colour=hair_colour,
        hair_rgb=_jitter(rng, HAIR_COLOURS[hair_colour], 8),
        hair_thermal=_thermal(rng, 0.15, 0.32),
        glasses=bool(rng.random() < 0.2),
        top=top,
        inner=inner,
        bottom=bottom,
        shoes=_item(
            rng, _pick(rng, SHOE_KINDS, (4, 1)), ("black", "white", "brown", "grey", "navy", "tan")
        ),
        hat=hat,
        backpack=backpack,
        bag=bag,
        bag_side=0 if bag is None else int(rng.choice((-1, 1))),
    )
