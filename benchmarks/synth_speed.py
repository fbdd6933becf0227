"""Measure the synthetic set: generation speed, counts, and the trivial matcher's modality gap.

Generates a preset into a temporary folder (or ``--out``), prints images per second, the
per-split / per-camera counts from ``synth.json``, and the rank-1 of the histogram matcher of
``cycletrans.data.synth.baseline`` on the test identities.

Usage::

    python benchmarks/synth_speed.py                       # demo preset, all ids
    python benchmarks/synth_speed.py --ids test --workers 2
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cycletrans.data.synth import generate
from cycletrans.data.synth.baseline import modality_gap
from cycletrans.data.synth.presets import get_preset, plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ids", choices=("all", "test"), default="all")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", help="keep the set here (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or Path(tmp) / "synth")
        summary = generate(
            out, args.preset, seed=args.seed, ids=args.ids, workers=args.workers, progress=False
        )
        print(
            f"{args.preset} seed {args.seed} ids={args.ids} workers={args.workers}: "
            f"{summary.images} images in {summary.seconds:.1f} s = "
            f"{summary.images_per_second:.0f} images/s"
        )
        meta = json.loads((out / "exp" / "synth.json").read_text())
        print("identities:", meta["identities"])
        print("images per camera:", meta["images"], "total", sum(meta["images"].values()))
        test_ids = plan(get_preset(args.preset), args.seed).splits["test"]
        report = modality_gap(out, test_ids)
        print(
            "histogram matcher rank-1 on the test ids:",
            ", ".join(f"{k} {v:.3f}" for k, v in report.items()),
        )


if __name__ == "__main__":
    main()
