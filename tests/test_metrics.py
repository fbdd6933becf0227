"""rank_metrics: hand-computed CMC / mAP / mINP, the SYSU-MM01 rules, ties, bad input, and
agreement with the plain per-query loop reference (benchmarks/evaluation_speed.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.evaluation_speed import loop_rank_metrics
from cycletrans.evaluation import SUMMARY_KEYS, mean_metrics, pairwise_distance, rank_metrics
from cycletrans.evaluation import metrics as metrics_module


def ranked(order_of_ids, q_id=7, q_cam=6, cams=None, protocol="regdb"):
    """rank_metrics of one query whose gallery is already ranked: distances 1, 2, 3, ..."""
    g = len(order_of_ids)
    cams = [1] * g if cams is None else cams
    dist = np.arange(1.0, g + 1.0)[None, :]
    return rank_metrics(dist, [q_id], order_of_ids, [q_cam], cams, protocol)


def assert_same_result(got: dict, want: dict) -> None:
    np.testing.assert_array_equal(got["valid"], want["valid"])
    np.testing.assert_array_equal(got["first_hit"], want["first_hit"])
    np.testing.assert_allclose(got["ap"], want["ap"], rtol=0, atol=1e-12)  # NaN == NaN here
    np.testing.assert_allclose(got["inp"], want["inp"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(got["cmc"], want["cmc"], rtol=0, atol=1e-12)
    assert got["num_valid"] == want["num_valid"]
    for key in SUMMARY_KEYS:
        assert got[key] == pytest.approx(want[key], abs=1e-12, nan_ok=True)


# ---------------------------------------------------------------- hand-computed cases


def test_perfect_ranking_scores_one_everywhere():
    m = ranked([7, 7, 1, 2, 3])
    assert (m["r1"], m["r5"], m["mAP"], m["mINP"]) == (1.0, 1.0, 1.0, 1.0)
    assert m["first_hit"].tolist() == [1]
    np.testing.assert_array_equal(m["cmc"], np.ones(5))


def test_worst_ranking_puts_the_only_match_last():
    m = ranked([1, 2, 3, 4, 7])
    assert m["first_hit"].tolist() == [5]
    assert m["ap"][0] == pytest.approx(1 / 5)
    assert m["inp"][0] == pytest.approx(1 / 5)
    assert (m["r1"], m["r5"]) == (0.0, 1.0)
    np.testing.assert_allclose(m["cmc"], [0, 0, 0, 0, 1])


def test_rank_k_beyond_the_gallery_size_is_the_last_cmc_value():
    m = ranked([1, 7, 3])
    assert (m["r1"], m["r5"], m["r10"], m["r20"]) == (0.0, 1.0, 1.0, 1.0)


def test_ap_and_inp_of_two_matches_at_ranks_2_and_4():
    m = ranked([1, 7, 2, 7, 3])
    assert m["ap"][0] == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert m["inp"][0] == pytest.approx(2 / 4)  # two matches, the hardest at rank 4


def test_sysu_removes_repeated_ids_for_cmc_but_regdb_does_not():
    gallery = [5, 5, 7, 7]  # the wrong person twice before the first true match
    regdb = ranked(gallery, protocol="regdb")
    sysu = ranked(gallery, protocol="sysu")
    assert regdb["first_hit"].tolist() == [3]
    assert sysu["first_hit"].tolist() == [2]  # 5, 7: the repeated 5 is dropped
    assert (regdb["r1"], sysu["r1"]) == (0.0, 0.0)
    # mAP and mINP count every true match of the full list in both protocols
    assert sysu["ap"][0] == regdb["ap"][0] == pytest.approx((1 / 3 + 2 / 4) / 2)
    assert sysu["inp"][0] == regdb["inp"][0] == pytest.approx(2 / 4)


def test_sysu_multi_shot_cmc_takes_each_persons_best_match():
    # person 5 has three images ranked 1, 3, 4; person 7 (the query's) has its best at rank 5
    m = ranked([5, 6, 5, 5, 7, 6, 7], protocol="sysu")
    assert m["first_hit"].tolist() == [3]  # deduplicated list: 5, 6, 7
    np.testing.assert_allclose(m["cmc"][:4], [0, 0, 1, 1])


def test_camera_3_query_skips_every_camera_2_image():
    gallery = [9, 7, 7, 4]
    cams = [2, 2, 1, 4]  # a wrong id and a true match in camera 2 rank first
    sysu = ranked(gallery, q_cam=3, cams=cams, protocol="sysu")
    # camera-2 images removed: the list is 7 (cam 1), 4 (cam 4)
    assert sysu["first_hit"].tolist() == [1]
    assert sysu["ap"][0] == 1.0
    assert sysu["inp"][0] == 1.0
    regdb = ranked(gallery, q_cam=3, cams=cams, protocol="regdb")
    assert regdb["first_hit"].tolist() == [2]
    assert regdb["ap"][0] == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_camera_6_query_keeps_camera_2_images():
    sysu = ranked([9, 7, 7, 4], q_cam=6, cams=[2, 2, 1, 4], protocol="sysu")
    assert sysu["first_hit"].tolist() == [2]
    assert sysu["ap"][0] == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_camera_3_query_with_matches_only_in_camera_2_is_not_counted():
    dist = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    m = rank_metrics(dist, [7, 7], [7, 5, 6], [3, 6], [2, 1, 4], "sysu")
    assert m["valid"].tolist() == [False, True]
    assert m["num_valid"] == 1
    assert np.isnan(m["ap"][0])
    assert m["first_hit"].tolist() == [0, 1]
    assert (m["r1"], m["mAP"], m["mINP"]) == (1.0, 1.0, 1.0)


def test_query_without_true_match_is_left_out_of_every_metric():
    dist = np.array([[1.0, 2.0], [1.0, 2.0]])
    m = rank_metrics(dist, [1, 99], [1, 2], [3, 3], [1, 1], "regdb")
    assert m["valid"].tolist() == [True, False]
    assert (m["num_queries"], m["num_valid"]) == (2, 1)
    assert np.isnan(m["ap"][1])
    assert np.isnan(m["inp"][1])
    assert m["first_hit"].tolist() == [1, 0]
    assert (m["r1"], m["mAP"], m["mINP"]) == (1.0, 1.0, 1.0)


def test_no_valid_query_gives_nan_metrics():
    m = rank_metrics(np.ones((2, 2)), [8, 9], [1, 2], [3, 6], [1, 1], "regdb")
    assert m["num_valid"] == 0
    assert all(np.isnan(m[key]) for key in SUMMARY_KEYS)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_ties_are_broken_by_gallery_order(dtype):
    equal = np.full((1, 3), 5, dtype=dtype)
    assert rank_metrics(equal, [7], [9, 7, 7], [6], [1, 1, 1], "regdb")["first_hit"][0] == 2
    assert rank_metrics(equal, [7], [7, 9, 7], [6], [1, 1, 1], "regdb")["first_hit"][0] == 1
    # a tie only among some items: the earlier column wins, the closer item still comes first
    dist = np.array([[2, 2, 1]], dtype=dtype)
    m = rank_metrics(dist, [7], [7, 9, 3], [6], [1, 1, 1], "regdb")
    assert m["first_hit"][0] == 2  # ranked: 3 (1.0), 7 (2.0, column 0), 9 (2.0, column 1)


def test_negative_zero_ties_with_positive_zero_and_negative_distances_rank_first():
    dist = np.array([[0.0, -0.0, -1.5, 2.0]], dtype=np.float32)
    m = rank_metrics(dist, [7], [1, 7, 2, 3], [6], [1, 1, 1, 1], "regdb")
    assert m["first_hit"][0] == 3  # ranked: 2 (-1.5), 1 (0.0, column 0), 7 (-0.0, column 1)


def test_cmc_curve_is_fraction_of_valid_queries_found_by_rank_k():
    dist = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    m = rank_metrics(dist, [1, 1, 3], [1, 2, 3], [3, 3, 3], [1, 1, 1], "regdb")
    assert m["first_hit"].tolist() == [1, 3, 3]
    np.testing.assert_allclose(m["cmc"], [1 / 3, 1 / 3, 1.0])


def test_string_person_ids_are_accepted():
    m = rank_metrics(np.array([[2.0, 1.0]]), ["ann"], ["ann", "bob"], [3], [1, 1], "regdb")
    assert m["first_hit"].tolist() == [2]


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("distmat", "q_ids", "g_ids", "q_cams", "g_cams", "protocol", "message"),
    [
        (np.ones((2, 3)), [1, 2], [1, 2, 3], [3, 3], [1, 1, 1], "market", "unknown protocol"),
        (np.ones((2, 3)), [1], [1, 2, 3], [3, 3], [1, 1, 1], "sysu", "q_ids must have shape"),
        (np.ones((2, 3)), [1, 2], [1, 2], [3, 3], [1, 1, 1], "sysu", "g_ids must have shape"),
        (np.ones((2, 3)), [1, 2], [1, 2, 3], [3, 3], [1, 1], "sysu", "g_cams must have shape"),
        (np.ones((2, 0)), [1, 2], [], [3, 3], [], "sysu", "at least one query and one gallery"),
        (np.ones(3), [1], [1, 2, 3], [3], [1, 1, 1], "regdb", "must be \\[Q, G\\]"),
        (np.array([[np.nan, 1.0]]), [1], [1, 2], [3], [1, 1], "regdb", "NaN or infinite"),
    ],
)
def test_bad_input_raises_a_clear_value_error(
    distmat, q_ids, g_ids, q_cams, g_cams, protocol, message
):
    with pytest.raises(ValueError, match=message):
        rank_metrics(distmat, q_ids, g_ids, q_cams, g_cams, protocol)


# ---------------------------------------------------------------- vs the per-query loop


def random_case(seed: int, dtype, ties: bool):
    rng = np.random.default_rng(seed)
    num_q, num_g = rng.integers(1, 40), rng.integers(1, 60)
    dist = rng.normal(size=(num_q, num_g))
    if ties:  # few distinct values, some negative zeros: many exact ties
        dist = np.round(dist * 2) / 2 * rng.choice([1.0, -1.0], size=dist.shape)
    q_ids, g_ids = rng.integers(0, 8, num_q), rng.integers(0, 6, num_g)  # ids 6, 7: no match
    q_cams, g_cams = rng.choice([3, 6], num_q), rng.choice([1, 2, 4, 5], num_g)
    return dist.astype(dtype), q_ids, g_ids, q_cams, g_cams


@pytest.mark.parametrize("protocol", ["sysu", "regdb"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_vectorised_metrics_equal_the_per_query_loop(protocol, dtype, ties, seed):
    case = random_case(seed, dtype, ties)
    assert_same_result(rank_metrics(*case, protocol), loop_rank_metrics(*case, protocol))


def test_results_do_not_depend_on_the_query_chunk_size(monkeypatch):
    case = random_case(11, np.float32, ties=True)
    whole = rank_metrics(*case, "sysu")
    monkeypatch.setattr(metrics_module, "_CHUNK_ELEMENTS", 7)  # chunks of one query
    assert_same_result(rank_metrics(*case, "sysu"), whole)


# ---------------------------------------------------------------- distances, averaging


def test_euclidean_distance_matches_the_definition():
    rng = np.random.default_rng(0)
    q, g = rng.normal(size=(4, 5)), rng.normal(size=(3, 5))
    want = np.linalg.norm(q[:, None, :] - g[None, :, :], axis=2)
    got = pairwise_distance(q, g, "euclidean")
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_cosine_distance_is_one_minus_cosine_similarity():
    q, g = np.array([[1.0, 0.0], [3.0, 3.0]]), np.array([[2.0, 0.0], [0.0, -1.0]])
    got = pairwise_distance(q, g, "cosine")
    np.testing.assert_allclose(got, [[0.0, 1.0], [1 - np.sqrt(0.5), 1 + np.sqrt(0.5)]], atol=1e-6)


def test_distance_rejects_unknown_metric_and_mismatched_dimensions():
    with pytest.raises(ValueError, match="unknown metric"):
        pairwise_distance(np.ones((1, 2)), np.ones((1, 2)), "manhattan")
    with pytest.raises(ValueError, match=r"\[Q, D\]"):
        pairwise_distance(np.ones((1, 2)), np.ones((1, 3)))


def test_mean_metrics_averages_each_summary_key():
    first = dict.fromkeys(SUMMARY_KEYS, 0.2)
    second = dict.fromkeys(SUMMARY_KEYS, 0.6)
    assert mean_metrics([first, second]) == pytest.approx(dict.fromkeys(SUMMARY_KEYS, 0.4))
    with pytest.raises(ValueError, match="at least one"):
        mean_metrics([])


def test_importing_the_evaluation_package_does_not_import_torch():
    code = "import sys, cycletrans.evaluation; sys.exit('torch' in sys.modules)"
    root = Path(__file__).resolve().parents[1]
    assert subprocess.run([sys.executable, "-c", code], cwd=root, check=False).returncode == 0
