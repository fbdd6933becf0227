"""RegDB protocol: both directions over all test images, nothing removed, trials averaged."""

from __future__ import annotations

import numpy as np
import pytest

from cycletrans.evaluation import (
    DIRECTIONS,
    SUMMARY_KEYS,
    average_regdb_trials,
    evaluate_regdb,
    pairwise_distance,
    rank_metrics,
)

# two visible images (persons 1, 2) and three thermal images (persons 1, 1, 2), 1-D features
FEATURES = np.array([[0.0], [10.0], [4.0], [9.0], [1.0]])
IDS = np.array([1, 2, 1, 1, 2])
MODALITIES = np.array([0, 0, 1, 1, 1])


def test_both_directions_by_hand():
    result = evaluate_regdb(FEATURES, IDS, MODALITIES)
    v2i, i2v = result["visible_to_infrared"], result["infrared_to_visible"]
    # visible person 1 (x=0): thermal ranked 1 (2: x=1), 4 (1), 9 (1) -> matches at ranks 2, 3
    # visible person 2 (x=10): thermal ranked 9 (1), 4 (1), 1 (2) -> match at rank 3
    assert v2i["r1"] == 0.0
    assert v2i["mAP"] == pytest.approx(((1 / 2 + 2 / 3) / 2 + 1 / 3) / 2)
    assert v2i["mINP"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    # thermal 4 (person 1): 0 (1) first; thermal 9 (person 1): 10 (2) first; thermal 1 (2): 0 (1)
    assert i2v["r1"] == pytest.approx(1 / 3)
    assert i2v["mAP"] == pytest.approx((1 + 1 / 2 + 1 / 2) / 3)
    assert (v2i["num_queries"], v2i["gallery_size"]) == (2, 3)
    assert (i2v["num_queries"], i2v["gallery_size"]) == (3, 2)


def test_a_repeated_wrong_id_before_the_match_counts_twice():
    features = np.array([[0.0], [1.0], [2.0], [3.0]])  # visible 0; thermal 1, 2 (person 5), 3
    result = evaluate_regdb(features, [7, 5, 5, 7], [0, 1, 1, 1])["visible_to_infrared"]
    assert result["r1"] == 0.0
    assert result["mAP"] == pytest.approx(1 / 3)  # rank 3: nothing deduplicated


def test_each_direction_equals_rank_metrics_on_the_full_distance_matrix():
    rng = np.random.default_rng(0)
    ids = np.repeat(np.arange(6), 4)
    modalities = np.tile([0, 0, 1, 1], 6)
    features = rng.normal(size=(ids.size, 8)) + ids[:, None] * 0.3
    result = evaluate_regdb(features, ids, modalities, metric="cosine")
    vis, ir = modalities == 0, modalities == 1
    dist = pairwise_distance(features[vis], features[ir], "cosine")
    v2i = rank_metrics(dist, ids[vis], ids[ir], np.ones(12), np.full(12, 2), "regdb")
    i2v = rank_metrics(dist.T, ids[ir], ids[vis], np.full(12, 2), np.ones(12), "regdb")
    for key in SUMMARY_KEYS:
        assert result["visible_to_infrared"][key] == pytest.approx(v2i[key], abs=1e-12)
        assert result["infrared_to_visible"][key] == pytest.approx(i2v[key], abs=1e-12)


def test_identity_features_score_perfectly_both_ways():
    ids = np.repeat(np.arange(5), 4)
    features = np.eye(5)[ids]
    result = evaluate_regdb(features, ids, np.tile([0, 1], 10))
    for direction in DIRECTIONS:
        assert [result[direction][k] for k in SUMMARY_KEYS] == [1.0] * 6
        assert result[direction]["num_valid"] == 10


def test_average_of_ten_trials_is_the_mean_per_direction_and_metric():
    rng = np.random.default_rng(1)
    trials = [
        {d: {k: float(rng.random()) for k in SUMMARY_KEYS} for d in DIRECTIONS} for _ in range(10)
    ]
    mean = average_regdb_trials(trials)
    for direction in DIRECTIONS:
        assert mean[direction]["num_trials"] == 10
        for key in SUMMARY_KEYS:
            want = np.mean([t[direction][key] for t in trials])
            assert mean[direction][key] == pytest.approx(want)


def test_average_of_real_evaluations_of_one_trial_each():
    results = [
        evaluate_regdb(FEATURES, IDS, MODALITIES),
        evaluate_regdb(-FEATURES, IDS, MODALITIES),
    ]
    mean = average_regdb_trials(results)
    assert mean["visible_to_infrared"]["r1"] == pytest.approx(
        (results[0]["visible_to_infrared"]["r1"] + results[1]["visible_to_infrared"]["r1"]) / 2
    )


@pytest.mark.parametrize(
    ("features", "ids", "modalities", "message"),
    [
        (np.ones((3, 2)), [1, 2], [0, 1, 1], "expected features"),
        (np.ones(3), [1, 2, 3], [0, 1, 1], "expected features"),
        (np.ones((3, 2)), [1, 2, 3], [0, 1, 2], "0 \\(visible\\) or 1 \\(infrared\\)"),
        (np.ones((3, 2)), [1, 2, 3], [0, 0, 0], "need visible and infrared"),
    ],
)
def test_bad_input_raises_value_error(features, ids, modalities, message):
    with pytest.raises(ValueError, match=message):
        evaluate_regdb(features, ids, modalities)


def test_averaging_nothing_is_an_error():
    with pytest.raises(ValueError, match="at least one"):
        average_regdb_trials([])
