"""Print how far KCM's patterns differ in trained checkpoints (eq. 4-5 diagnostics).

For each checkpoint with KCM, on ``--queries`` test images (seeded pick, both modalities):

- ``F~ cos min``: the smallest cosine between two refined tokens of eq. 4 (mean over images;
  1.0 means eq. 4 made every token the same);
- ``F' cos mean``: the mean cosine between two of the k patterns of eq. 5 (1.0 = copies);
- ``F_N cos mean``: the same for the neutral features of DMM (eq. 7; rows with a head);
- ``A W_theta cos``: the mean cosine between two anchors' projected queries of eq. 5 (image
  independent; 1.0 = every anchor asks the same question, so the k maps are one map);
- ``map cos``: the mean cosine between two anchors' eq. 5 attention maps over the positions;
- ``map cos across images``: the mean cosine between one anchor's maps of two images (1.0 = the
  map ignores the image: a fixed position, not a captured pattern);
- ``peak``: the largest eq. 5 anchor weight x the number of positions (1.0 = uniform
  attention; the Attention tab's number), mean over images.

Example::

    python scripts/kcm_diagnostics.py assets/checkpoints/nocycle.safetensors \\
        assets/checkpoints/full.safetensors
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cycletrans
from analysis.gradcam import attention_peak, offdiagonal_cosine
from cycletrans.data import SYSUMM01, ReIDDataset, build_transforms
from cycletrans.engine.data import demo_data_root


@torch.no_grad()
def diagnose(
    model: cycletrans.models.ReIDModel, images: torch.Tensor, modalities: torch.Tensor
) -> dict[str, float]:
    """The module docstring's statistics over a batch."""
    F_I = model.backbone(images, modalities)
    refined = model.kcm.refine(F_I.flatten(2).transpose(1, 2))  # F~, eq. 4
    weights = model.kcm.attention(refined, model.anchors)  # [B, k, N], eq. 5
    patterns = weights @ refined  # F'
    stats = {
        "F~ cos min": float(offdiagonal_cosine(refined, "min").mean()),
        "F' cos mean": float(offdiagonal_cosine(patterns, "mean").mean()),
    }
    if model.head is not None:
        stats["F_N cos mean"] = float(offdiagonal_cosine(model.head(patterns), "mean").mean())
    queries = model.kcm.w_theta(model.anchors)[None]  # A W_theta [1, k, c]
    per_anchor = weights.transpose(0, 1)  # [k, B, N]: one anchor's maps of the B images
    return {
        **stats,
        "A W_theta cos": float(offdiagonal_cosine(queries, "mean").mean()),
        "map cos": float(offdiagonal_cosine(weights, "mean").mean()),
        "map cos across images": float(offdiagonal_cosine(per_anchor, "mean").mean()),
        "peak": float(attention_peak(weights).mean()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path, help=".safetensors files")
    parser.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="SYSU-MM01-layout folder (default: the generated demo set)",
    )
    parser.add_argument("--queries", type=int, default=20, help="test images to average over")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    test = SYSUMM01(args.data_root or demo_data_root()).test
    if not 2 <= args.queries <= len(test):
        parser.error(f"--queries must be in 2..{len(test)}, got {args.queries}")
    picks = np.random.default_rng(args.seed).choice(len(test), args.queries, replace=False)
    print(f"{args.queries} test images (seed {args.seed})")
    for path in args.checkpoints:
        model = cycletrans.load_model(path)
        if model.kcm is None:
            print(f"{path}: no KCM ({model.config.get('variant')}), skipped")
            continue
        dataset = ReIDDataset(
            [test[i] for i in picks], build_transforms(model.preprocessing, train=False)
        )
        items = [dataset[i] for i in range(len(dataset))]
        images = torch.stack([item[0] for item in items])
        modalities = torch.tensor([item[2] for item in items])
        stats = diagnose(model, images, modalities)
        print(f"{path}: " + ", ".join(f"{k} {v:.4f}" for k, v in stats.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
