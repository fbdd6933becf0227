"""Print the chance level of the SYSU-MM01 protocol on a test split: random features, scored.

Draws random Gaussian features for every test image (``--draws`` times, seeds 0..N-1) and runs
the all-search and indoor single-shot settings of :func:`cycletrans.evaluation.evaluate_sysu`
on them; prints the mean and standard deviation of Rank-1 and mAP (percent). The README's demo
results are read against these numbers.

Example::

    python scripts/chance_level.py                  # the generated demo set
    python scripts/chance_level.py --data-root /data/SYSU-MM01 --draws 5
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cycletrans.data import SYSUMM01
from cycletrans.engine.data import demo_data_root
from cycletrans.evaluation import evaluate_sysu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="SYSU-MM01-layout folder (default: the generated demo set)",
    )
    parser.add_argument("--draws", type=int, default=20, help="random feature draws")
    args = parser.parse_args(argv)
    if args.draws < 1:
        parser.error(f"--draws must be at least 1, got {args.draws}")
    test = SYSUMM01(args.data_root or demo_data_root()).test
    ids, cams, frames = (np.array([getattr(r, k) for r in test]) for k in ("pid", "cam", "frame"))
    print(f"{len(test)} test images, {len(set(ids.tolist()))} identities, {args.draws} draws")
    for mode in ("all", "indoor"):
        scores = (
            np.array(
                [
                    [m["r1"], m["mAP"]]
                    for m in (
                        evaluate_sysu(
                            np.random.default_rng(seed).standard_normal((len(test), 64)),
                            ids,
                            cams,
                            frames,
                            mode=mode,
                            shots=1,
                        )
                        for seed in range(args.draws)
                    )
                ]
            )
            * 100
        )
        (r1, m_ap), (r1_sd, m_ap_sd) = scores.mean(0), scores.std(0)
        print(
            f"{mode}-search single-shot, random features: Rank-1 {r1:.2f} +- {r1_sd:.2f}, "
            f"mAP {m_ap:.2f} +- {m_ap_sd:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
