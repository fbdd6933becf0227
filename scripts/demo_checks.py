"""Print what the app shows for the shipped demo models, as numbers: the issue's demo targets.

Builds the app's analysis session (``analysis.session.build_session``: the demo test set and
the three shipped checkpoints, or another dataset with ``--data-root``) and
prints, per model:

- ``top-10 IR``: the share of ``--queries`` random infrared test queries (seeded, those with a
  true match, as the Retrieval tab's "Random test query" draws them) whose identity appears
  in the top 10 of the visible gallery (list position), and Rank-10 over every matched
  infrared query (CMC, repeated identities removed);
- ``gap ratio`` / ``MMD``: the Feature-space tab's modality-gap statistics (mean cross- over
  same-modality cosine distance of one identity; squared MMD between the modalities).

Example::

    python scripts/demo_checks.py
    python scripts/demo_checks.py --data-root /work/data/demo-seed1 --queries 10
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.session import build_session

TOP_K = 10


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default=None, help="dataset folder (default: demo set)")
    parser.add_argument("--queries", type=int, default=10, help="random infrared queries")
    parser.add_argument("--seed", type=int, default=0, help="seed of the query draws")
    args = parser.parse_args(argv)
    session = build_session(data_root=args.data_root, progress=False, log=lambda _: None)
    print(
        f"| model | top-{TOP_K} IR, {args.queries} random queries | top-{TOP_K} IR, all "
        "matched queries (Rank-10) | gap ratio | MMD |"
    )
    print("|---|---:|---:|---:|---:|")
    draws = [session.random_query("infrared", seed=args.seed + i) for i in range(args.queries)]
    for name in session.model_names:
        hits = sum(
            (session.search(name, q, TOP_K).first_position or TOP_K + 1) <= TOP_K for q in draws
        )
        rank10 = session.cross_metrics(name, "infrared")["r10"]
        gap = session.gap(name)
        print(
            f"| {name} | {hits}/{args.queries} | {rank10:.3f} | {gap.ratio:.3f} | {gap.mmd:.4f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
