"""Shared helpers of the app tests: a tiny generated dataset, tiny checkpoints, a running app.

The dataset is the project's synthetic generator with a tiny preset (64 x 32 images, 6 test
identities present in every camera but 2 and 5 half the time, 2-3 images per camera: about 80
test images), in the SYSU-MM01 layout. The checkpoints are random-init ResNet-18 models of the
three app variants (baseline, dmm = CycleTrans without cycle, full) with 3 anchors and 8
prototypes, their BatchNorm statistics set on random images so that embeddings differ between
images.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import torch

import cycletrans
from analysis.ablation_tables import reproduced_table, save_reproduced_table
from analysis.session import BASELINE, CYCLETRANS, NOCYCLE, Session, build_session
from cycletrans.data.synth import Preset, generate

TINY_PRESET = Preset(
    "apptiny",
    height=64,
    width=32,
    supersample=1,
    num_ids=(2, 1, 6),
    presence=(1, 0.5, 1, 1, 0.5, 1),
    images=(2, 3),
)
PREPROCESSING = {"height": 64, "width": 32, "mean": [0.5] * 3, "std": [0.5] * 3}
VARIANTS = {BASELINE: "baseline", NOCYCLE: "dmm", CYCLETRANS: "full"}


def tiny_model(variant: str, seed: int = 0, backbone: str = "resnet18") -> torch.nn.Module:
    """A random-init tiny model with BatchNorm statistics of random images, in eval mode."""
    torch.manual_seed(seed)
    model = cycletrans.build_model(
        variant,
        backbone,
        num_classes=3,
        num_anchors=3,
        num_prototypes=8,
        preprocessing=PREPROCESSING,
    )
    labels, modalities = torch.tensor([0, 0, 1, 1] * 2), torch.tensor([0, 1] * 4)
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 3, 64, 32), modalities, labels)
    return model.eval()


def write_dataset(root: Path) -> Path:
    """Generate the tiny synthetic set at ``root`` (SYSU-MM01 layout)."""
    generate(root, TINY_PRESET, seed=0, progress=False)
    return root


def write_checkpoints(folder: Path) -> dict[str, Path]:
    """Save the three tiny models; returns model name -> ``.safetensors`` path."""
    paths = {}
    for seed, (name, variant) in enumerate(VARIANTS.items()):
        paths[name] = folder / f"{variant}.safetensors"
        cycletrans.save_model(tiny_model(variant, seed), paths[name])
    return paths


def write_reproduced_table(folder: Path) -> Path:
    """A reproduced Table II with two rows, as ``ablate`` writes it; returns the .json path."""
    metrics = {
        "baseline": {"r1": 0.5, "r10": 0.9, "r20": 0.95, "mAP": 0.45},
        "full": {"r1": 0.6, "r10": 0.92, "r20": 0.97, "mAP": 0.55},
    }
    _, path = save_reproduced_table(
        reproduced_table(metrics, 2), folder / "table2", table=2, preset="test", seed=0
    )
    (folder / "unrelated.json").write_text(json.dumps({"format": "something else"}))
    return path


def tiny_session(tmp: Path) -> Session:
    """Dataset, checkpoints, a results folder and the session over them, all under ``tmp``."""
    return build_session(
        data_root=write_dataset(tmp / "data"),
        checkpoints=write_checkpoints(tmp / "checkpoints"),
        cache_dir=tmp / "cache",
        progress=False,
        log=lambda _: None,
        results_dir=write_reproduced_table(tmp / "results").parent,
    )


@contextlib.contextmanager
def running_app(session: Session) -> Iterator[str]:
    """Serve the app of ``session`` in this process (``app.main.serve``); yields the URL."""
    from app.main import serve

    demo, url = serve(session, block=False)
    try:
        yield url
    finally:
        demo.close()


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run torch with ``count`` intra-op threads (tiny models are fastest with one on 2 shared
    cores), then restore the setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
