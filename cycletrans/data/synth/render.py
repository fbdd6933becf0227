"""Draw one synthetic pedestrian image (visible or infrared) with NumPy and PIL.

The person is drawn once into a *label map* at ``supersample`` times the output size: every
shape is painted (painter's order, far to near) with the index of its material. A material has
a colour and a thermal level (plus a second colour/thermal level for its pattern), so the same
drawing becomes the visible image (colours) or the infrared image (thermal levels: skin warm,
hair and background cool, each garment its own level, patterns as thermal-contrast texture).
The map is then coloured, shaded, box-downsampled (anti-aliasing) and passed through the
camera: illumination, colour cast (visible), automatic gain (infrared), blur and sensor noise
(row banding in infrared).

Example:
    >>> from cycletrans.data.synth.identities import sample_identity
    >>> from cycletrans.data.synth.presets import SYSU_CAMERAS, get_preset
    >>> from cycletrans.data.synth.streams import LOOK, POSE, stream
    >>> person, preset = sample_identity(0, 1), get_preset("demo")
    >>> pose = sample_pose(stream(0, POSE, 1, 3, 1), person, preset.nuisance)
    >>> image = render(person, SYSU_CAMERAS[3], pose, stream(0, LOOK, 1, 3, 1), preset, seed=0)
    >>> image.shape, image.dtype.name
    ((128, 64, 3), 'uint8')
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from scipy.ndimage import gaussian_filter

from cycletrans.data.synth.identities import Garment, Identity, Item, identity_from
from cycletrans.data.synth.presets import CameraSpec, Nuisance, Preset
from cycletrans.data.synth.scenes import scene_images
from cycletrans.modality import INFRARED

VIEWS = ("front", "back", "side")
GLASSES = Item("glasses", "black", (30, 30, 32), 0.12)  # glass is opaque, cold, in infrared
SHADING = 0.3  # darkening at a body part's edge (cylindrical shading), visible light
Point = tuple[float, float]


@dataclass(frozen=True)
class Pose:
    """Where and how the person stands in one image.

    ``yaw``: radians, 0 faces the camera, pi shows the back; ``phase``/``stride``: walking
    cycle (radians) and leg swing amplitude; ``fill``: body height / image height;
    ``dx``/``dy``: offset of the body centre (fractions of image width / height).
    """

    view: str
    yaw: float
    phase: float
    stride: float
    fill: float
    dx: float
    dy: float


def sample_pose(rng: np.random.Generator, identity: Identity, nuisance: Nuisance) -> Pose:
    """Sample viewpoint, walking phase, scale and framing of one image."""
    view = VIEWS[rng.choice(3, p=np.asarray(nuisance.views) / sum(nuisance.views))]
    yaw = {"front": 0.0, "back": math.pi, "side": math.pi / 2 * rng.choice((-1, 1))}[view]
    yaw += float(rng.normal(0.0, 0.2))
    fill = (0.8 + 0.1 * identity.height) * (1 + nuisance.scale_jitter * float(rng.normal()))
    dy = nuisance.shift_jitter * float(rng.normal()) * 0.5
    if rng.random() < nuisance.truncation:
        dy += float(rng.choice((-1, 1)) * rng.uniform(0.06, 0.14))
    return Pose(
        view,
        yaw,
        float(rng.uniform(0, 2 * math.pi)),
        float(rng.uniform(0.05, 0.45)),
        float(np.clip(fill, 0.6, 1.05)),
        nuisance.shift_jitter * float(rng.normal()),
        dy,
    )


@dataclass(frozen=True)
class _Material:
    rgb: tuple[int, ...]
    thermal: float
    rgb2: tuple[int, ...]
    thermal2: float
    pattern: str
    period: float
    frame: tuple[float, float, float]  # (centre x, top y, body height) of its person, pixels


class _Canvas:
    """A label map plus the materials its labels index (0 = background)."""

    def __init__(self, height: int, width: int):
        self.label = Image.new("L", (width, height), 0)
        self.draw = ImageDraw.Draw(self.label)
        self.materials: list[_Material] = []

    def material(
        self,
        rgb: tuple[int, ...],
        thermal: float,
        frame: tuple[float, float, float],
        garment: Garment | None = None,
    ) -> int:
        if garment is not None and garment.pattern in ("hstripes", "vstripes", "checks"):
            m = _Material(
                rgb, thermal, garment.rgb2, garment.thermal2, garment.pattern, garment.period, frame
            )
        else:
            m = _Material(rgb, thermal, rgb, thermal, "solid", 0.0, frame)
        if len(self.materials) == 255:
            raise RuntimeError("too many materials in one image (255 at most)")
        self.materials.append(m)
        return len(self.materials)

    def polygon(self, points: list[Point], label: int) -> None:
        self.draw.polygon(points, fill=label)

    def ellipse(self, centre: Point, rx: float, ry: float, label: int) -> None:
        x, y = centre
        self.draw.ellipse((x - rx, y - ry, x + rx, y + ry), fill=label)

    def limb(self, points: list[Point], width: float, label: int) -> None:
        """A thick polyline with round joints and caps."""
        self.draw.line(points, fill=label, width=max(1, round(width)), joint="curve")
        for p in (points[0], points[-1]):
            self.ellipse(p, width / 2, width / 2, label)


def _lerp(a: Point, b: Point, t: float) -> Point:
    return (a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]))


def _arc(centre: Point, rx: float, ry: float, start: float, end: float, n: int = 14) -> list[Point]:
    """Points along an ellipse from angle ``start`` to ``end`` (radians, y down)."""
    return [
        (centre[0] + rx * math.cos(t), centre[1] + ry * math.sin(t))
        for t in np.linspace(start, end, n)
    ]


class _Person:
    """Draws one identity in one pose onto a canvas (body units: fractions of body height)."""

    def __init__(
        self, canvas: _Canvas, person: Identity, pose: Pose, cx: float, top: float, scale: float
    ):
        self.c, self.s = math.cos(pose.yaw), math.sin(pose.yaw)
        self.canvas, self.p, self.pose, self.k = canvas, person, pose, scale
        self.frame = (cx, top, scale)
        self.cx, self.top = cx, top
        b = person.build
        self.hs, self.b = person.head_size, b
        self.ys = self.hs + 0.035  # shoulder line
        self.yh = 1.0 - person.leg_length  # hip joints
        self.sw, self.td = 0.105 * b, 0.055 * b  # half shoulder width, half torso depth
        self.hw = (0.08 + (0.01 if person.sex == "female" else 0.0)) * b  # half hip width
        self.facing = 1.0 if self.s >= 0 else -1.0  # image direction the face points to (side)

    # geometry -------------------------------------------------------------------------------
    def px(self, x: float, y: float, z: float = 0.0) -> Point:
        """Project body point (x lateral, y down, z forward) to pixels (orthographic, yaw)."""
        return (self.cx + (x * self.c + z * self.s) * self.k, self.top + y * self.k)

    def depth(self, x: float, z: float = 0.0) -> float:
        """Distance toward the camera of body point (x, z): larger is nearer."""
        return -x * self.s + z * self.c

    def half(self, wx: float, wz: float) -> float:
        """Projected half-width (pixels) of a body slab with half sizes ``wx`` x ``wz``."""
        return (wx * abs(self.c) + wz * abs(self.s)) * self.k

    def mat(self, rgb: tuple[int, ...], thermal: float, garment: Garment | None = None) -> int:
        return self.canvas.material(rgb, thermal, self.frame, garment)

    def slab(self, rows: list[tuple[float, float, float]], label: int) -> None:
        """A symmetric polygon from rows ``(y, half x, half z)`` (body units), top to bottom."""
        right = [(self.cx + self.half(wx, wz), self.top + y * self.k) for y, wx, wz in rows]
        left = [(self.cx - self.half(wx, wz), self.top + y * self.k) for y, wx, wz in rows]
        self.canvas.polygon(right + left[::-1], label)

    # skeleton ---------------------------------------------------------------------------------
    def legs(self) -> list[tuple[float, list[tuple[float, float, float]]]]:
        """(depth, [hip, knee, ankle]) of both legs, in body coordinates."""
        out = []
        thigh = shin = 0.5 * (self.p.leg_length - 0.035)
        for side in (-1, 1):
            phase = self.pose.phase + (0 if side < 0 else math.pi)
            a = self.pose.stride * math.sin(phase)
            bend = 1.2 * self.pose.stride * max(0.0, math.sin(phase + 1.3))
            hip = (side * self.hw * 0.5, self.yh, 0.0)
            knee = (hip[0], hip[1] + thigh * math.cos(a), thigh * math.sin(a))
            ankle = (
                hip[0],
                knee[1] + shin * math.cos(a - bend),
                knee[2] + shin * math.sin(a - bend),
            )
            out.append((self.depth(hip[0]), [hip, knee, ankle]))
        return sorted(out, key=lambda t: t[0])

    def arms(self) -> list[tuple[float, list[tuple[float, float, float]]]]:
        """(depth, [shoulder, elbow, wrist]) of both arms, in body coordinates."""
        out = []
        for side in (-1, 1):
            phase = self.pose.phase + (0 if side < 0 else math.pi)
            swing = -0.8 * self.pose.stride * math.sin(phase)
            bend = 0.15 + max(0.0, swing) * 1.2
            sh = (side * (self.sw - 0.015), self.ys + 0.015, 0.0)
            elbow = (sh[0] + side * 0.012, sh[1] + 0.165 * math.cos(swing), 0.165 * math.sin(swing))
            wrist = (
                elbow[0] + side * 0.006,
                elbow[1] + 0.15 * math.cos(swing + bend),
                elbow[2] + 0.15 * math.sin(swing + bend),
            )
            out.append((self.depth(sh[0]), [sh, elbow, wrist]))
        return sorted(out, key=lambda t: t[0])

    # parts ------------------------------------------------------------------------------------
    def draw(self) -> None:
        p = self.p
        legs, arms = self.legs(), self.arms()
        # Feet on the ground: shift the body so the lowest sole touches y = 1.
        lowest = max(j[2][1] for _, j in legs) + 0.035
        self.top += (1.0 - lowest) * self.k
        self.frame = (self.cx, self.top, self.k)
        skin = self.mat(p.skin_rgb, p.skin_thermal)
        facing_camera = self.c > 0.3
        behind = self.c < -0.3  # the back is toward the camera
        if p.backpack is not None and not behind:  # hidden behind the body, or in profile
            self.backpack()
        if facing_camera:
            self.hair_mass()
        for depth, arm in arms:
            if depth < -0.02:
                self.arm(arm, skin)
        for _, leg in legs:
            self.leg(leg, skin)
        if p.bag is not None and self.depth(p.bag_side * self.hw) < -0.01:
            self.bag()
        self.torso()
        if not facing_camera:
            self.hair_mass()
        self.head(skin)
        if p.backpack is not None and behind:
            self.backpack()
        self.hair_accents()
        for depth, arm in arms:
            if depth >= -0.02:
                self.arm(arm, skin)
        if p.bag is not None and self.depth(p.bag_side * self.hw) >= -0.01:
            self.bag()
        if p.backpack is not None and facing_camera:
            self.straps(p.backpack)

    def leg(self, joints: list[tuple[float, float, float]], skin: int) -> None:
        pts = [self.px(*j) for j in joints]
        width = 0.06 * self.b * self.k
        self.canvas.limb(pts, width * 0.85, skin)
        bottom = self.p.bottom
        if bottom is not None and bottom.kind in ("trousers", "shorts"):
            label = self.mat(bottom.rgb, bottom.thermal, bottom)
            if bottom.kind == "trousers":
                self.canvas.limb(pts, width * 1.1, label)
            else:
                self.canvas.limb([pts[0], _lerp(pts[0], pts[1], 0.8)], width * 1.2, label)
        shoes = self.p.shoes
        ankle = pts[2]
        toe = 0.025 * self.s * self.k  # the shoe points where the person walks (side view)
        tall = 0.05 if shoes.kind == "boots" else 0.024
        self.canvas.ellipse(
            (ankle[0] + toe, ankle[1] + (0.036 - tall) * self.k),
            self.half(0.032, 0.05),
            tall * self.k,
            self.mat(shoes.rgb, shoes.thermal),
        )

    def arm(self, joints: list[tuple[float, float, float]], skin: int) -> None:
        pts = [self.px(*j) for j in joints]
        width = 0.042 * math.sqrt(self.b) * self.k
        self.canvas.limb(pts, width, skin)
        top = self.p.top
        if top.kind in ("longsleeve", "jacket"):
            label = self.mat(top.rgb, top.thermal, top)
            self.canvas.limb(
                [*pts[:2], _lerp(pts[1], pts[2], 0.75)],
                width * (1.35 if top.kind == "jacket" else 1.15),
                label,
            )
        elif top.kind == "tshirt":
            label = self.mat(top.rgb, top.thermal, top)
            self.canvas.limb([pts[0], _lerp(pts[0], pts[1], 0.55)], width * 1.35, label)
        self.canvas.ellipse(pts[2], width * 0.6, width * 0.7, skin)  # hand

    def torso(self) -> None:
        p, ys, yh = self.p, self.ys, self.yh
        top, bottom = p.top, p.bottom
        if bottom is not None:
            label = self.mat(bottom.rgb, bottom.thermal, bottom)
            if bottom.kind == "skirt":
                self.slab(
                    [(yh - 0.05, self.hw, self.td), (yh + 0.22, self.hw * 1.5, self.td * 1.4)],
                    label,
                )
            else:  # pelvis of trousers and shorts
                self.slab([(yh - 0.05, self.hw, self.td), (yh + 0.05, self.hw, self.td)], label)
        label = self.mat(top.rgb, top.thermal, top)
        hem = yh + {"tshirt": 0.02, "longsleeve": 0.03, "jacket": 0.07, "dress": 0.0}[top.kind]
        rows = [
            (ys - 0.012, self.sw * 0.75, self.td * 0.8),
            (ys + 0.012, self.sw, self.td),
            (ys + 0.12, self.sw * 0.92, self.td),
            (hem, self.hw * 1.05, self.td * 1.05),
        ]
        if top.kind == "dress":
            rows.append((yh + 0.24, self.hw * 1.55, self.td * 1.5))
        if top.kind == "jacket":
            rows = [(y, wx * 1.08, wz * 1.08) for y, wx, wz in rows]
        self.slab(rows, label)
        if self.c > 0.3 and p.inner is not None:  # open jacket: the shirt shows in the middle
            inner = self.mat(p.inner.rgb, p.inner.thermal, p.inner)
            self.slab([(ys + 0.005, self.sw * 0.22, 0), (hem - 0.01, self.hw * 0.3, 0)], inner)
        if top.pattern == "logo" and self.c > 0.35:
            mark = self.canvas.material(top.rgb2, top.thermal2, self.frame)
            self.canvas.ellipse(
                self.px(0.0, ys + 0.09),
                self.half(top.period * 1.3, 0),
                top.period * 1.3 * self.k,
                mark,
            )
        if p.inner is not None and p.inner.pattern == "logo" and self.c > 0.35:
            mark = self.canvas.material(p.inner.rgb2, p.inner.thermal2, self.frame)
            self.canvas.ellipse(self.px(0.0, ys + 0.09), self.half(0.018, 0), 0.02 * self.k, mark)

    def head(self, skin: int) -> None:
        p, hs = self.p, self.hs
        self.slab([(hs * 0.8, 0.024, 0.024), (self.ys + 0.01, 0.028, 0.028)], skin)  # neck
        centre = self.px(0.0, hs / 2)
        rx, ry = self.half(0.39 * hs, 0.45 * hs), hs / 2 * self.k
        hair = self.mat(p.hair_rgb, p.hair_thermal)
        if self.c < -0.3:  # back of the head: all hair, unless shaved
            self.canvas.ellipse(centre, rx, ry, skin if p.hair_style == "shaved" else hair)
            if p.hair_style == "shaved":
                self.canvas.polygon(_arc(centre, rx, ry, math.pi, 2 * math.pi), hair)
        elif self.c > 0.3:  # face
            self.canvas.ellipse(centre, rx, ry, skin)
            reach = {
                "shaved": -0.25,
                "short": 0.1,
                "bob": 0.35,
                "long": 0.3,
                "ponytail": 0.1,
                "bun": 0.05,
            }[p.hair_style]
            self.canvas.polygon(
                _arc(centre, rx * 1.06, ry * 1.06, math.pi - reach, 2 * math.pi + reach), hair
            )
        else:  # profile: hair on the back half, face on the front half
            self.canvas.ellipse(centre, rx, ry, hair)
            front = (centre[0] + self.facing * rx * 0.3, centre[1] + ry * 0.15)
            self.canvas.ellipse(front, rx * 0.72, ry * 0.85, skin)
            if p.hair_style == "shaved":
                self.canvas.ellipse(centre, rx * 0.9, ry * 0.9, skin)
        if p.glasses and self.c > -0.3:
            glasses = self.mat(GLASSES.rgb, GLASSES.thermal)
            y = centre[1] - 0.02 * hs * self.k
            if self.c > 0.3:
                x0, x1 = centre[0] - rx * 0.85, centre[0] + rx * 0.85
            else:
                x0, x1 = sorted((centre[0] + self.facing * rx * 0.05, centre[0] + self.facing * rx))
            self.canvas.polygon(
                [(x0, y), (x1, y), (x1, y + 0.14 * hs * self.k), (x0, y + 0.14 * hs * self.k)],
                glasses,
            )
        if p.hat is not None:
            hat = self.mat(p.hat.rgb, p.hat.thermal)
            lift = 0.15 if p.hat.kind == "cap" else 0.3
            self.canvas.polygon(
                _arc(centre, rx * 1.1, ry * 1.1, math.pi - lift, 2 * math.pi + lift), hat
            )
            if p.hat.kind == "cap" and self.c > -0.3:  # the brim points where the face does
                brim_x = centre[0] + (0 if self.c > 0.3 else self.facing * rx * 0.9)
                self.canvas.ellipse(
                    (brim_x, centre[1] - ry * 0.12),
                    rx * (1.1 if self.c > 0.3 else 0.7),
                    ry * 0.12,
                    hat,
                )

    def hair_mass(self) -> None:
        """Long hair or a bob: behind the body (front view) or over the back (back, side)."""
        p, hs = self.p, self.hs
        hair = self.mat(p.hair_rgb, p.hair_thermal)
        back = -0.2 * hs * self.facing if abs(self.s) > 0.5 else 0.0  # shift toward the nape
        if p.hair_style == "long":
            x = self.cx + back * self.k
            y0, y1 = self.top + 0.35 * hs * self.k, self.top + (self.ys + 0.13) * self.k
            w0, w1 = self.half(0.47 * hs, 0.3 * hs), self.half(0.5 * hs, 0.3 * hs)
            self.canvas.polygon([(x - w0, y0), (x + w0, y0), (x + w1, y1), (x - w1, y1)], hair)
        elif p.hair_style == "bob":
            self.canvas.ellipse(
                self.px(0.0, hs * 0.62, -0.1 * hs),
                self.half(0.46 * hs, 0.3 * hs),
                hs * 0.5 * self.k,
                hair,
            )

    def hair_accents(self) -> None:
        """Over the head: long strands on the shoulders (front view), ponytail or bun (back)."""
        p, hs = self.p, self.hs
        hair = self.mat(p.hair_rgb, p.hair_thermal)
        if self.c > 0.3 and p.hair_style == "long":
            for side in (-1, 1):
                self.canvas.limb(
                    [
                        self.px(side * 0.4 * hs, 0.55 * hs),
                        self.px(side * 0.45 * hs, self.ys + 0.07),
                    ],
                    0.13 * hs * self.k,
                    hair,
                )
        elif self.c <= 0.3 and p.hair_style == "ponytail":
            self.canvas.limb(
                [self.px(0.0, 0.35 * hs, -0.45 * hs), self.px(0.0, hs + 0.05, -0.5 * hs)],
                0.045 * self.k,
                hair,
            )
        elif self.c <= 0.3 and p.hair_style == "bun":
            self.canvas.ellipse(
                self.px(0.0, 0.15 * hs, -0.4 * hs), 0.2 * hs * self.k, 0.2 * hs * self.k, hair
            )

    def backpack(self) -> None:
        bp = self.p.backpack
        label = self.mat(bp.rgb, bp.thermal)
        cx, _ = self.px(0.0, 0.0, -(self.td + 0.045))
        y0, y1 = self.top + (self.ys + 0.01) * self.k, self.top + (self.ys + 0.2) * self.k
        w = self.half(0.085 * self.b, 0.045)
        self.canvas.draw.rounded_rectangle((cx - w, y0, cx + w, y1), radius=w * 0.3, fill=label)

    def straps(self, item: Item) -> None:
        label = self.mat(item.rgb, item.thermal)
        for side in (-1, 1):
            self.canvas.limb(
                [
                    self.px(side * self.sw * 0.55, self.ys),
                    self.px(side * self.sw * 0.6, self.ys + 0.17),
                ],
                0.018 * self.k,
                label,
            )

    def bag(self) -> None:
        bag = self.p.bag
        label = self.mat(bag.rgb, bag.thermal)
        tote = bag.kind == "tote"
        side = self.p.bag_side
        x = side * (self.hw + (0.07 if tote else 0.05))
        y = self.yh + (0.06 if tote else -0.02)
        cx, cy = self.px(x, y)
        w, h = self.half(0.07 if tote else 0.055, 0.03), (0.07 if tote else 0.05) * self.k
        self.canvas.draw.rectangle((cx - w, cy - h, cx + w, cy + h), fill=label)
        # A shoulder bag's strap crosses the chest; a tote hangs from the same shoulder.
        strap = self.px(side * self.sw if tote else -side * self.sw * 0.6, self.ys)
        self.canvas.draw.line(
            [strap, (cx, cy - h)], fill=label, width=max(1, round(0.012 * self.k))
        )


def _occluder(
    canvas: _Canvas, rng: np.random.Generator, height: int, width: int, nuisance: Nuisance
) -> None:
    """A random object, or a partial passer-by, in front of the person."""
    kind = ("box", "pole", "bin", "person")[int(rng.integers(4))]
    frame = (width / 2, 0.0, float(height))
    if kind == "person":
        other = identity_from(rng, 0)
        pose = sample_pose(rng, other, nuisance)
        scale = height * pose.fill * rng.uniform(1.0, 1.2)
        cx = width / 2 + rng.choice((-1, 1)) * width * rng.uniform(0.55, 0.8)
        _Person(canvas, other, pose, cx, (height - scale) / 2 + height * 0.05, scale).draw()
        return
    rgb = tuple(int(c) for c in rng.integers(20, 235, 3))
    label = canvas.material(rgb, float(rng.uniform(0.15, 0.55)), frame)
    side = rng.choice((-1, 1))
    if kind == "pole":
        x = width / 2 + side * width * rng.uniform(0.15, 0.45)
        w = width * rng.uniform(0.05, 0.12)
        canvas.draw.rectangle((x - w, 0, x + w, height), fill=label)
    else:
        x0 = width * (rng.uniform(-0.2, 0.2) if side < 0 else rng.uniform(0.4, 0.8))
        y0 = height * rng.uniform(0.65, 0.85)
        box = (x0, y0, x0 + width * rng.uniform(0.4, 0.7), height)
        if kind == "box":
            canvas.draw.rectangle(box, fill=label)
        else:
            canvas.draw.rounded_rectangle(box, radius=width * 0.08, fill=label)


def _pattern(material: _Material, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Boolean mask of the pattern's second element at pixels (xs, ys)."""
    cx, top, scale = material.frame
    u = np.floor((xs - cx) / (scale * material.period)).astype(np.int64)
    v = np.floor((ys - top) / (scale * material.period)).astype(np.int64)
    if material.pattern == "hstripes":
        return v % 2 == 1
    if material.pattern == "vstripes":
        return u % 2 == 1
    return (u + v) % 2 == 1


def _colour(canvas: _Canvas, background: np.ndarray, infrared: bool) -> np.ndarray:
    """Fill the label map: materials' colours (H, W, 3) or thermal levels (H, W), in [0, 1]."""
    label = np.asarray(canvas.label)
    mats = canvas.materials
    if infrared:
        table = np.array([0.0] + [m.thermal for m in mats], np.float32)
    else:
        table = np.array([(0, 0, 0)] + [m.rgb for m in mats], np.float32) / 255
    out = table[label]
    for index, m in enumerate(mats, start=1):
        if m.pattern != "solid":
            ys, xs = np.nonzero(label == index)
            hit = _pattern(m, xs, ys)
            second = m.thermal2 if infrared else np.asarray(m.rgb2, np.float32) / 255
            out[ys[hit], xs[hit]] = second
    # Cylindrical shading across each person (weaker in infrared: emission, not reflection).
    frames = np.array([(0.0, 0.0, 1.0)] + [m.frame for m in mats], np.float32)[label]
    xs = np.arange(label.shape[1], dtype=np.float32)[None, :]
    r = np.clip(((xs - frames[..., 0]) / (0.16 * frames[..., 2])) ** 2, 0, 1)
    shade = 1 - (0.3 if infrared else 1.0) * SHADING * r
    person = label > 0
    if infrared:
        return np.where(person, out * shade, background)
    return np.where(person[..., None], out * shade[..., None], background)


def render(
    person: Identity,
    camera: CameraSpec,
    pose: Pose,
    look: np.random.Generator,
    preset: Preset,
    seed: int,
) -> np.ndarray:
    """Render ``person`` in ``pose`` as seen by ``camera``.

    ``look`` is the image's random stream (occlusion, illumination, background window, blur,
    noise); ``seed`` selects the background scenes. Returns ``uint8 [H, W, 3]``: RGB for a
    visible camera, grey (R = G = B) for an infrared one.
    """
    s, nz = preset.supersample, preset.nuisance
    H, W = preset.height * s, preset.width * s
    canvas = _Canvas(H, W)
    scale = pose.fill * H
    cx, top = W / 2 + pose.dx * W, (H - scale) / 2 + pose.dy * H
    _Person(canvas, person, pose, cx, top, scale).draw()
    if look.random() < nz.occlusion:
        _occluder(canvas, look, H, W, nz)
    infrared = camera.modality == INFRARED
    rgb, thermal = scene_images(seed, camera.scene, H, W)
    y0 = int(look.integers(0, rgb.shape[0] - H + 1))
    x0 = int(look.integers(0, rgb.shape[1] - W + 1))
    background = (thermal if infrared else rgb)[y0 : y0 + H, x0 : x0 + W]
    image = _colour(canvas, background, infrared)
    # Box-downsample the supersampled image (anti-aliasing).
    h, w = preset.height, preset.width
    image = image.reshape(h, s, w, s, *image.shape[2:]).mean(axis=(1, 3))
    gain = camera.gain * (1 + nz.illumination * float(look.normal()))
    ramp = 1 + float(look.uniform(-0.1, 0.15)) * (0.5 - np.linspace(0, 1, h))[:, None]
    sigma = camera.blur + nz.blur * float(look.random())
    if infrared:
        image = image * gain * ramp + camera.offset
        lo, hi = np.percentile(image, (1, 99))
        stretched = (image - lo) / max(hi - lo, 0.05) * 0.8 + 0.1  # automatic gain control
        image = 0.5 * image + 0.5 * stretched
        image = gaussian_filter(image, sigma)
        image = image + look.normal(0, nz.infrared_noise, image.shape)
        image = image + look.normal(0, nz.infrared_banding, (h, 1))
        image = np.repeat(image[..., None], 3, axis=2)
    else:
        cast = np.asarray(camera.cast) * (1 + nz.cast * look.normal(size=3))
        image = image * (gain * cast) * ramp[..., None] + camera.offset
        image = gaussian_filter(image, (sigma, sigma, 0))
        image = image + look.normal(0, nz.visible_noise, image.shape)
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
