"""Shared helpers of the engine/CLI tests: a tiny SYSU-MM01-layout tree and tiny overrides.

The tree is written with PIL: every person has a colour pair (visible cameras) and a grey-level
pair (infrared cameras) derived from the person id, plus per-image noise, so a tiny model can
learn something in a few steps. 32 x 16 pixel JPEGs, a handful per camera.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

TRAIN_IDS = (1, 2, 3, 4, 5, 6)
VAL_IDS = (7, 8)
TEST_IDS = (9, 10, 11, 12)
PER_CAMERA = 2
VISIBLE_CAMS = (1, 2, 4, 5)

# Overrides of the demo preset that make a run take about a second on CPU.
TINY = {
    "backbone": "resnet18",
    "height": 32,
    "width": 16,
    "num_ids": 2,
    "num_per_modality": 2,
    "num_anchors": 3,
    "num_prototypes": 8,
    "batches_per_epoch": 2,
    "epochs": 2,
    "workers": 0,
    "eval_batch_size": 16,
    "device": "cpu",
    "progress": False,
    "milestones": (1,),
    "pretrained": False,
}
TINY_FLAGS = [
    "--backbone",
    "resnet18",
    "--height",
    "32",
    "--width",
    "16",
    "--num-ids",
    "2",
    "--num-per-modality",
    "2",
    "--num-anchors",
    "3",
    "--num-prototypes",
    "8",
    "--batches-per-epoch",
    "2",
    "--workers",
    "0",
    "--eval-batch-size",
    "16",
    "--device",
    "cpu",
    "--no-progress",
    "--milestones",
    "1",
    "--no-pretrained",
]


def person_image(pid: int, cam: int, n: int) -> Image.Image:
    """A 16 x 32 image of person ``pid`` in camera ``cam`` (3, 6 infrared), variant ``n``."""
    rng = np.random.default_rng([pid, cam, n])
    colours = np.random.default_rng(pid).integers(0, 256, size=(2, 3))
    if cam in (3, 6):
        colours = np.repeat(colours.mean(axis=1, keepdims=True)[::-1], 3, axis=1)
    pixels = np.empty((32, 16, 3))
    pixels[:16], pixels[16:] = colours[0], colours[1]
    pixels += rng.normal(0, 12, size=pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def write_sysu_tree(root: Path) -> Path:
    """Write the tiny SYSU-MM01-layout tree under ``root`` and return ``root``."""
    for pid in TRAIN_IDS + VAL_IDS + TEST_IDS:
        for cam in range(1, 7):
            folder = root / f"cam{cam}" / f"{pid:04d}"
            folder.mkdir(parents=True)
            for n in range(1, PER_CAMERA + 1):
                person_image(pid, cam, n).save(folder / f"{n:04d}.jpg")
    (root / "exp").mkdir()
    for split, ids in (("train", TRAIN_IDS), ("val", VAL_IDS), ("test", TEST_IDS)):
        (root / "exp" / f"{split}_id.txt").write_text(",".join(str(i) for i in ids) + "\n")
    return root
