"""Measure what checking a dataset's images costs before training: headers only (what ``train``
does at start-up) against decoding every image (``train --check-images``).

Reads the training and validation images of a SYSU-MM01-layout folder (default: the cached demo
set, generated on first use) and prints wall and CPU time of each check, each run twice (the
second run reads from the page cache, as a start-up right after an earlier run does).

Usage::

    python benchmarks/image_check.py
    python benchmarks/image_check.py --data-root /data/SYSU-MM01 --workers 4
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cycletrans.data import SYSUMM01, check_images
from cycletrans.engine.data import demo_data_root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", help="SYSU-MM01-layout folder (default: the demo set)")
    parser.add_argument("--workers", type=int, default=2, help="threads of the decoding check")
    args = parser.parse_args()
    data = SYSUMM01(args.data_root or demo_data_root())
    paths = [r.path for r in data.train + data.val]
    for name, decode in (("headers", False), ("decode", True)):
        for run in (1, 2):
            wall, cpu = time.perf_counter(), time.process_time()
            check_images(paths, decode=decode, workers=args.workers if decode else 1)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(
                f"{name} (run {run}): {len(paths)} images, {wall:.2f} s wall, {cpu:.2f} s CPU "
                f"({1e6 * cpu / len(paths):.0f} us CPU per image)"
            )


if __name__ == "__main__":
    main()
