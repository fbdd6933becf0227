"""Time the full SYSU-MM01 evaluation, vectorised vs a plain per-query loop, and compare results.

The image list is the real one (45,863 images: per-(camera, person) counts from the shipped
``cycletrans/evaluation/sysu_mm01/rand_perm_cam.mat``), with random features; the test split is
the official 96 ids (``cycletrans/evaluation/sysu_mm01/test_id.txt``, a copy of the dataset's
``exp/test_id.txt``). Both implementations evaluate the 4 settings x 10 trials with the official
gallery picks:

- vectorised: :func:`cycletrans.evaluation.evaluate_sysu_settings` (one distance matrix for
  all settings, column slices per trial, ranking vectorised over chunks of queries);
- loop: the plain implementation, structured like the official evaluation code: for every
  setting and trial, pick the gallery, compute the query x gallery distance matrix, then rank
  every query on its own (:func:`loop_rank_metrics`).

The features are random small integers (-8..8) stored as float32: every squared distance is
then an integer below 2^24, exact in float32 whatever the order of the BLAS sums, so the two
implementations rank bit-identical distances although they compute them in different matrix
shapes. The per-trial metrics must agree (valid-query counts exactly, every metric to 1e-12).
``loop_rank_metrics`` is also the reference the unit tests compare ``rank_metrics`` with.

Usage:
    python benchmarks/evaluation_speed.py [--dim 2048] [--trials 10] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from importlib.resources import files
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cycletrans.evaluation import (
    SUMMARY_KEYS,
    SYSU_SETTINGS,
    evaluate_sysu_settings,
    load_rand_perm_cam,
    pairwise_distance,
    sysu_gallery_indices,
    sysu_image_table,
)

TEST_IDS = files("cycletrans.evaluation") / "sysu_mm01" / "test_id.txt"


def loop_rank_metrics(distmat, q_ids, g_ids, q_cams, g_cams, protocol: str) -> dict:
    """Per-query loop reference of ``rank_metrics`` (same keys, same definitions)."""
    distmat = np.asarray(distmat)
    q_ids, g_ids = np.asarray(q_ids), np.asarray(g_ids)
    q_cams, g_cams = np.asarray(q_cams), np.asarray(g_cams)
    num_q, num_g = distmat.shape
    ap = np.full(num_q, np.nan)
    inp = np.full(num_q, np.nan)
    first_hit = np.zeros(num_q, dtype=np.int64)
    g_room = np.where(g_cams == 3, 2, g_cams)
    for i in range(num_q):
        order = np.argsort(distmat[i], kind="stable")
        ranked_ids = g_ids[order]
        if protocol == "sysu":  # drop gallery images in the query's room (camera 3 sits with 2)
            q_room = 2 if q_cams[i] == 3 else q_cams[i]
            ranked_ids = ranked_ids[g_room[order] != q_room]
        match = ranked_ids == q_ids[i]
        if not match.any():
            continue
        ranks = np.flatnonzero(match) + 1
        ap[i] = np.mean(np.arange(1, ranks.size + 1) / ranks)
        inp[i] = ranks.size / ranks[-1]
        if protocol == "sysu":  # keep each id's first occurrence
            _, first_seen = np.unique(ranked_ids, return_index=True)
            ranked_ids = ranked_ids[np.sort(first_seen)]
        first_hit[i] = np.flatnonzero(ranked_ids == q_ids[i])[0] + 1
    valid = first_hit > 0
    found_at = np.zeros(num_g)
    for rank in first_hit[valid]:
        found_at[rank - 1] += 1
    cmc = np.cumsum(found_at) / valid.sum()
    result = {f"r{k}": float(cmc[min(k, num_g) - 1]) for k in (1, 5, 10, 20)}
    result.update(
        mAP=float(np.mean(ap[valid])),
        mINP=float(np.mean(inp[valid])),
        num_queries=num_q,
        num_valid=int(valid.sum()),
        ap=ap,
        inp=inp,
        first_hit=first_hit,
        valid=valid,
        cmc=cmc,
    )
    return result


def loop_evaluate_sysu(features, ids, cams, frames, settings, trials: int) -> dict:
    """Per-trial ``loop_rank_metrics`` results of each setting (official picks): each trial's
    gallery, its own distance matrix, then one query at a time (queries in the same order as
    the vectorised version: camera 3, then camera 6)."""
    query = np.concatenate([np.flatnonzero(cams == 3), np.flatnonzero(cams == 6)])
    results = {}
    for setting in settings:
        galleries = sysu_gallery_indices(ids, cams, frames, *setting, trials, "official")
        results[setting] = [
            loop_rank_metrics(
                pairwise_distance(features[query], features[gallery]),
                ids[query],
                ids[gallery],
                cams[query],
                cams[gallery],
                "sysu",
            )
            for gallery in galleries
        ]
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dim", type=int, default=2048, help="feature dimension")
    parser.add_argument("--trials", type=int, default=10, help="trials per setting")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random features")
    args = parser.parse_args(argv)
    if not 1 <= args.dim <= 2**24 // 16**2:  # keep every squared distance exact in float32
        parser.error(f"--dim must be between 1 and {2**24 // 16**2}")

    all_pids = sorted({pid for _, pid in load_rand_perm_cam("official")})
    ids, cams, frames = sysu_image_table(all_pids)
    test_ids = [int(x) for x in TEST_IDS.read_text().split(",")]
    rng = np.random.default_rng(args.seed)
    features = rng.integers(-8, 9, size=(ids.size, args.dim)).astype(np.float32)
    print(
        f"{ids.size} images ({len(all_pids)} ids), features {features.shape}; "
        f"{len(test_ids)} test ids"
    )

    start, cpu = time.perf_counter(), time.process_time()
    test = np.flatnonzero(np.isin(ids, test_ids))
    split = (features[test], ids[test], cams[test], frames[test])
    fast = evaluate_sysu_settings(*split, SYSU_SETTINGS, trials=args.trials)
    fast_s, fast_cpu = time.perf_counter() - start, time.process_time() - cpu

    start, cpu = time.perf_counter(), time.process_time()
    test = np.flatnonzero(np.isin(ids, test_ids))
    split = (features[test], ids[test], cams[test], frames[test])
    slow = loop_evaluate_sysu(*split, SYSU_SETTINGS, trials=args.trials)
    slow_s, slow_cpu = time.perf_counter() - start, time.process_time() - cpu

    worst = 0.0
    for setting in SYSU_SETTINGS:
        result = fast[setting]
        print(
            f"{setting[0]:>6}-search {setting[1]:>2}-shot: {result['num_queries']} queries, "
            f"gallery {result['gallery_size']} ({result['gallery_source']}); "
            + ", ".join(f"{k} {result[k]:.4f}" for k in SUMMARY_KEYS)
        )
        for fast_trial, slow_trial in zip(result["per_trial"], slow[setting], strict=True):
            if fast_trial["num_valid"] != slow_trial["num_valid"]:
                raise SystemExit(f"MISMATCH in valid queries, setting {setting}")
            worst = max(worst, *(abs(fast_trial[k] - slow_trial[k]) for k in SUMMARY_KEYS))
    if worst > 1e-12:
        raise SystemExit(f"MISMATCH: largest metric difference {worst:.3g}")
    print(f"results agree (largest metric difference {worst:.1g})")
    print(
        f"wall time   vectorised: {fast_s:.2f} s   loop: {slow_s:.2f} s   "
        f"speed-up: {slow_s / fast_s:.1f}x"
    )
    print(
        f"CPU time    vectorised: {fast_cpu:.2f} s   loop: {slow_cpu:.2f} s   "
        f"speed-up: {slow_cpu / fast_cpu:.1f}x   (all threads; BLAS uses several)"
    )


if __name__ == "__main__":
    main()
