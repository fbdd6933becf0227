"""The protocol runner of the evaluate command and retrieval within / across modalities."""

from __future__ import annotations

import numpy as np
import pytest

from cycletrans.evaluation import (
    SUMMARY_KEYS,
    SYSU_SETTINGS,
    FeatureSet,
    evaluate_protocols,
    evaluate_sysu,
    leave_one_out_metrics,
    modality_retrieval,
    pairwise_distance,
    rank_metrics,
    setting_key,
    sysu,
    sysu_image_table,
)


def _features(values, ids, cams, modalities, frames=None) -> FeatureSet:
    n = len(ids)
    return FeatureSet(
        features=np.asarray(values, dtype=np.float32).reshape(n, -1),
        ids=np.asarray(ids),
        cams=np.asarray(cams),
        frames=np.ones(n, dtype=np.int64) if frames is None else frames,
        modalities=np.asarray(modalities),
        paths=np.array([f"{i}.jpg" for i in range(n)]),
    )


@pytest.fixture(scope="module")
def sysu_split() -> FeatureSet:
    """Three persons' real SYSU-MM01 test images (they fit rand_perm_cam.mat), integer
    features: exact distances, and ties."""
    ids, cams, frames = sysu_image_table([6, 10, 17])
    values = np.random.default_rng(0).integers(-2, 3, size=(ids.size, 4))
    return _features(values, ids, cams, np.isin(cams, (3, 6)).astype(np.int64), frames)


def loop_leave_one_out(dist: np.ndarray, ids: np.ndarray) -> dict:
    """Reference: each query ranked on its own against every other item."""
    n = len(ids)
    per_query = [
        rank_metrics(
            dist[i : i + 1, others], ids[i : i + 1], ids[others], [0], np.zeros(n - 1), "regdb"
        )
        for i, others in ((i, np.delete(np.arange(n), i)) for i in range(n))
    ]
    return {key: np.array([m[key][0] for m in per_query]) for key in ("ap", "inp", "first_hit")}


# ---------------------------------------------------------------- evaluate_protocols


def test_evaluate_protocols_runs_every_sysu_setting_with_the_official_picks(sysu_split):
    results = evaluate_protocols(sysu_split, "sysu", trials=3)
    assert list(results) == ["all_single", "all_multi", "indoor_single", "indoor_multi"]
    for mode, shots in SYSU_SETTINGS:  # min(shots, n) images per (gallery camera, person)
        in_gallery = np.isin(sysu_split.cams, sysu.GALLERY_CAMS[mode])
        pairs = np.c_[sysu_split.cams, sysu_split.ids][in_gallery]
        counts = np.unique(pairs, axis=0, return_counts=True)[1]
        expected = int(np.minimum(counts, shots).sum())
        assert results[setting_key(mode, shots)]["gallery_size"] == expected
    for m in results.values():
        assert m["trials"] == 3
        assert m["gallery_source"] == "official"
        assert "per_trial" not in m
        assert all(0.0 <= m[k] <= 1.0 for k in SUMMARY_KEYS)
    only = evaluate_protocols(sysu_split, "sysu", trials=1, settings=[("indoor", 10)])
    assert list(only) == ["indoor_multi"]


def test_evaluate_protocols_gives_each_settings_separate_evaluation(sysu_split):
    results = evaluate_protocols(sysu_split, "sysu", trials=4, rand_perm_cam=None)
    for mode, shots in SYSU_SETTINGS:
        alone = evaluate_sysu(
            sysu_split.features,
            sysu_split.ids,
            sysu_split.cams,
            sysu_split.frames,
            mode,
            shots,
            trials=4,
            rand_perm_cam=None,
        )
        alone.pop("per_trial")
        assert results[setting_key(mode, shots)] == {**alone, "trials": 4}


def test_evaluate_protocols_computes_one_distance_matrix_for_all_settings(sysu_split, monkeypatch):
    calls = []

    def counting(query, gallery, metric="euclidean"):
        calls.append((len(query), len(gallery)))
        return pairwise_distance(query, gallery, metric)

    monkeypatch.setattr(sysu, "pairwise_distance", counting)
    evaluate_protocols(sysu_split, "sysu", trials=2)
    assert len(calls) == 1


def test_evaluate_protocols_runs_both_regdb_directions_and_refuses_other_datasets(sysu_split):
    regdb = evaluate_protocols(sysu_split, "regdb")
    assert set(regdb) == {"visible_to_infrared", "infrared_to_visible"}
    with pytest.raises(ValueError, match="unknown dataset"):
        evaluate_protocols(sysu_split, "market")


# ---------------------------------------------------------------- modality_retrieval


def test_sysu_within_modality_retrieval_ignores_the_queries_own_camera():
    # Query person 1 in camera 1; its twin image in camera 1 is identical but must not count.
    feats = _features(
        [0.0, 0.0, 1.0, 3.0], ids=[1, 1, 2, 1], cams=[1, 1, 2, 4], modalities=[0, 0, 0, 0]
    )
    m = modality_retrieval(feats, "visible", "visible", "sysu")
    assert (m["num_queries"], m["num_valid"], m["gallery_size"]) == (4, 3, 4)
    assert (m["r1"], m["r5"]) == (0.0, 1.0)  # person 2 (camera 2) always ranks first
    regdb_style = modality_retrieval(feats, "visible", "visible", "regdb")
    assert regdb_style["num_valid"] == 3
    assert regdb_style["r1"] == pytest.approx(2 / 3)


def test_regdb_within_modality_retrieval_leaves_the_query_itself_out():
    feats = _features([0.0, 1.0, 3.0], ids=[1, 2, 1], cams=[1, 1, 1], modalities=[1, 1, 1])
    m = modality_retrieval(feats, "infrared", "infrared", "regdb")
    assert (m["num_queries"], m["num_valid"], m["gallery_size"]) == (3, 2, 2)
    assert (m["r1"], m["r5"], m["mAP"]) == (0.0, 1.0, 0.5)


def test_cross_modality_retrieval_needs_both_modalities():
    feats = _features([0.0, 1.0], ids=[1, 1], cams=[1, 2], modalities=[0, 0])
    with pytest.raises(ValueError, match="need infrared queries"):
        modality_retrieval(feats, "infrared", "visible", "sysu")


# ---------------------------------------------------------------- leave_one_out_metrics


@pytest.mark.parametrize("seed", [0, 1])
def test_leave_one_out_equals_ranking_each_query_against_the_others(seed):
    rng = np.random.default_rng(seed)
    ids = np.r_[rng.integers(0, 8, size=60), 99]  # id 99 has no other image: not counted
    features = rng.integers(-1, 2, size=(ids.size, 3)).astype(np.float32)  # many ties
    dist = pairwise_distance(features, features)
    loop = loop_leave_one_out(dist, ids)
    m = leave_one_out_metrics(dist, ids)
    np.testing.assert_array_equal(m["first_hit"], loop["first_hit"])
    np.testing.assert_allclose(m["ap"], loop["ap"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(m["inp"], loop["inp"], rtol=0, atol=1e-12)
    valid = loop["first_hit"] > 0
    assert m["num_valid"] == valid.sum() == ids.size - 1
    assert m["r1"] == pytest.approx((loop["first_hit"][valid] == 1).mean(), abs=1e-12)
    assert m["mAP"] == pytest.approx(loop["ap"][valid].mean(), abs=1e-12)
    assert m["cmc"].shape == (ids.size - 1,)


def test_leave_one_out_needs_a_square_matrix_of_two_items_or_more():
    with pytest.raises(ValueError, match="square"):
        leave_one_out_metrics(np.zeros((2, 3)), [1, 2])
    with pytest.raises(ValueError, match="square"):
        leave_one_out_metrics(np.zeros((1, 1)), [1])
