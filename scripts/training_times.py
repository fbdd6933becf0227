"""Print the measured training time of every run folder under a directory, as a Markdown table.

Reads each run's ``config.json`` and ``metrics.jsonl`` (one line per epoch with its measured
``time_s``: the epoch's training loop, validation excluded) and prints, per run: variant,
backbone, steps, the summed epoch time, and the median epoch time x epochs (robust to other
processes slowing some epochs down). The machine line describes the machine that runs this
script: run it where the training ran.

Example::

    python scripts/training_times.py runs/ablation/demo
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
from pathlib import Path

import torch


def run_times(run: Path) -> dict[str, object]:
    """``{variant, backbone, steps, total_min, median_min}`` of one finished run folder."""
    config = json.loads((run / "config.json").read_text())
    epochs = [
        json.loads(line)
        for line in (run / "metrics.jsonl").read_text().splitlines()
        if line.strip()
    ]
    if not epochs:
        raise ValueError(f"{run / 'metrics.jsonl'} holds no epoch")
    seconds = [float(e["time_s"]) for e in epochs]
    return {
        "variant": config["variant"],
        "backbone": config["backbone"],
        "steps": sum(int(e["steps"]) for e in epochs),
        "total_min": sum(seconds) / 60,
        "median_min": statistics.median(seconds) * len(seconds) / 60,
    }


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    names = [
        line.split(":", 1)[1].strip()
        for line in (cpuinfo.read_text().splitlines() if cpuinfo.is_file() else [])
        if line.startswith("model name")
    ]
    cpu = names[0] if names else (platform.processor() or platform.machine())
    return (
        f"{cpu}, {os.cpu_count()} logical cores, torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads, Python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, help="folder whose sub-folders are run folders")
    args = parser.parse_args(argv)
    runs = sorted(p.parent for p in args.runs.glob("*/metrics.jsonl"))
    if not runs:
        parser.error(f"no run folder (with metrics.jsonl) under {args.runs}")
    print(f"Machine: {machine()}\n")
    print("| run | backbone | steps | training time (min) | median epoch x epochs (min) |")
    print("|---|---|---:|---:|---:|")
    for run in runs:
        t = run_times(run)
        print(
            f"| {t['variant']} | {t['backbone']} | {t['steps']} | {t['total_min']:.1f} | "
            f"{t['median_min']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
