"""Failure mining on hand-made per-query results."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.failures import compare_models, query_results, ranked_list, worst_queries

PATHS = [f"cam{c}/q{i}.jpg" for i, c in enumerate([3, 3, 6, 6, 3, 6])]
PIDS = [1, 2, 3, 4, 5, 6]
CAMS = [3, 3, 6, 6, 3, 6]


def results(ap, first_hit):
    return query_results(
        {"ap": np.array(ap, dtype=float), "first_hit": np.array(first_hit)}, PATHS, PIDS, CAMS
    )


@pytest.fixture
def baseline():
    # query 5 has no true match in its gallery (NaN AP, first hit 0)
    return results([0.10, 1.00, 0.25, 0.50, 0.10, np.nan], [9, 1, 4, 2, 5, 0])


@pytest.fixture
def model():
    return results([1.00, 0.20, 1.00, 0.50, 0.50, np.nan], [1, 6, 1, 2, 1, 0])


def test_query_results_table(baseline):
    assert list(baseline.columns) == ["query", "path", "pid", "cam", "ap", "first_hit"]
    assert list(baseline["query"]) == [0, 1, 2, 3, 4, 5]
    assert baseline.loc[2, "path"] == "cam6/q2.jpg"
    assert baseline.loc[4, "first_hit"] == 5


def test_worst_queries_lowest_ap_first_ties_by_later_first_hit(baseline):
    worst = worst_queries(baseline, k=3)
    assert list(worst["query"]) == [0, 4, 2]
    assert list(worst["ap"]) == [0.10, 0.10, 0.25]


def test_worst_queries_leave_out_queries_without_a_true_match(baseline):
    assert 5 not in set(worst_queries(baseline, k=100)["query"])
    assert len(worst_queries(baseline, k=100)) == 5


def test_worst_queries_camera_filter(baseline):
    assert list(worst_queries(baseline, k=10, cams=[6])["query"]) == [2, 3]
    assert list(worst_queries(baseline, k=1, cams=[3])["query"]) == [0]


def test_ranked_list_orders_gallery_by_distance_and_marks_matches():
    gallery = pd.DataFrame(
        {"path": ["g0", "g1", "g2", "g3"], "pid": [2, 1, 2, 3], "cam": [1, 2, 4, 5]}
    )
    table = ranked_list(np.array([0.5, 0.1, 0.9, 0.3]), gallery, top_k=3, query_pid=2)
    assert list(table.columns) == [
        "rank",
        "gallery_index",
        "path",
        "pid",
        "cam",
        "distance",
        "match",
    ]
    assert list(table["rank"]) == [1, 2, 3]
    assert list(table["path"]) == ["g1", "g3", "g0"]
    assert list(table["distance"]) == [0.1, 0.3, 0.5]
    assert list(table["match"]) == [False, False, True]


def test_ranked_list_skips_gallery_images_the_protocol_excludes():
    gallery = pd.DataFrame({"path": ["g0", "g1", "g2"], "pid": [1, 1, 2], "cam": [2, 1, 4]})
    keep = np.array([False, True, True])  # e.g. a camera-3 query skips camera 2
    table = ranked_list([0.0, 0.4, 0.2], gallery, top_k=5, keep=keep)
    assert list(table["gallery_index"]) == [2, 1]
    assert "match" not in table.columns


def test_compare_models_fixed_and_broken_sorted_by_change(baseline, model):
    fixed, broken = compare_models(baseline, model)
    assert list(fixed["query"]) == [0, 4, 2]  # rank changes 8, 4, 3
    assert list(fixed["first_hit_baseline"]) == [9, 5, 4]
    assert (fixed["first_hit_model"] == 1).all()
    assert list(fixed["ap_change"]) == pytest.approx([0.9, 0.4, 0.75])
    assert list(broken["query"]) == [1]
    assert broken.loc[0, "first_hit_model"] == 6
    assert broken.loc[0, "ap_change"] == pytest.approx(-0.8)


def test_compare_models_is_antisymmetric(baseline, model):
    fixed, broken = compare_models(baseline, model)
    fixed_back, broken_back = compare_models(model, baseline)
    assert list(fixed_back["query"]) == list(broken["query"])
    assert list(broken_back["query"]) == list(fixed["query"])


def test_bad_input_raises_clear_errors(baseline, model):
    with pytest.raises(ValueError, match="lack 'first_hit'"):
        query_results({"ap": np.zeros(6)}, PATHS, PIDS, CAMS)
    with pytest.raises(ValueError, match="differ in length"):
        query_results({"ap": np.zeros(5), "first_hit": np.ones(5)}, PATHS, PIDS, CAMS)
    with pytest.raises(ValueError, match="lack columns"):
        worst_queries(baseline.drop(columns=["ap"]))
    with pytest.raises(ValueError, match="DataFrame"):
        worst_queries({"ap": [0.1]})
    with pytest.raises(ValueError, match="k must be"):
        worst_queries(baseline, k=0)
    with pytest.raises(ValueError, match="same queries"):
        compare_models(baseline, model.iloc[::-1].reset_index(drop=True))
    with pytest.raises(ValueError, match="same queries"):
        compare_models(baseline, model.iloc[:3])
    gallery = pd.DataFrame({"path": ["g0", "g1"], "pid": [1, 2]})
    with pytest.raises(ValueError, match="3 distances but 2 gallery rows"):
        ranked_list([0.1, 0.2, 0.3], gallery)
    with pytest.raises(ValueError, match="keep has 1 entries"):
        ranked_list([0.1, 0.2], gallery, keep=[True])
    with pytest.raises(ValueError, match="'pid' column"):
        ranked_list([0.1, 0.2], gallery[["path"]], query_pid=1)
