"""SYSU-MM01 protocol: official gallery picks (real split files), random picks, the evaluation.

Tests marked by the ``real_split`` fixture use the official split files under /work/shared and
skip when they are absent; the rest use the copy of ``rand_perm_cam.mat`` shipped as package data
or tiny hand-made image lists and .mat files written to tmp_path.
"""

from __future__ import annotations

import fnmatch
import hashlib
import warnings
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from benchmarks.evaluation_speed import loop_rank_metrics
from cycletrans.evaluation import (
    OFFICIAL_RAND_PERM_CAM,
    SUMMARY_KEYS,
    SYSU_SETTINGS,
    UnofficialPicksWarning,
    evaluate_sysu,
    evaluate_sysu_settings,
    load_rand_perm_cam,
    pairwise_distance,
    sysu,
    sysu_gallery_indices,
    sysu_image_table,
)

SHARED = Path("/work/shared/data/sysu-mm01")
ROOT = Path(__file__).resolve().parents[1]
PACKAGE_FILE = "sysu_mm01/rand_perm_cam.mat"
OFFICIAL_SHA256 = "90402382dd587e05b615dcee35637fee9ad61e56e26ac86988a00a43997ac0a7"
OFFICIAL_SIZES = {("all", 1): 301, ("all", 10): 3010, ("indoor", 1): 112, ("indoor", 10): 1120}


@pytest.fixture(scope="module")
def real_split():
    """(ids, cams, frames) of the real test split: test ids from test_id.mat, image counts from
    the official rand_perm_cam.mat."""
    if not (SHARED / "test_id.mat").is_file() or not (SHARED / "exp/test_id.txt").is_file():
        pytest.skip("official SYSU-MM01 split files not available under /work/shared")
    test_ids = scipy.io.loadmat(str(SHARED / "test_id.mat"))["id"].reshape(-1).astype(int)
    listed = [int(x) for x in (SHARED / "exp/test_id.txt").read_text().split(",")]
    assert sorted(test_ids.tolist()) == sorted(listed)
    return sysu_image_table(test_ids, SHARED / "rand_perm_cam.mat")


def tiny_split(counts: dict[tuple[int, int], int], seed: int = 0):
    """ids, cams, frames of images with ``counts[(cam, pid)]`` frames each, in shuffled order."""
    rows = [(pid, cam, f) for (cam, pid), n in counts.items() for f in range(1, n + 1)]
    rows = np.array(rows)[np.random.default_rng(seed).permutation(len(rows))]
    return rows[:, 0], rows[:, 1], rows[:, 2]


TINY = {  # (cam, pid) -> images; person 3 is absent from camera 1, person 2 has 12 in camera 4
    (1, 1): 3,
    (2, 1): 2,
    (3, 1): 4,
    (4, 1): 5,
    (5, 1): 1,
    (6, 1): 2,
    (1, 2): 4,
    (2, 2): 6,
    (3, 2): 3,
    (4, 2): 12,
    (6, 2): 3,
    (2, 3): 2,
    (3, 3): 2,
    (5, 3): 3,
    (6, 3): 1,
}


def write_rand_perm_cam(
    path: Path, counts: dict[tuple[int, int], int], trials: int = 10, seed: int = 0
) -> dict[tuple[int, int], np.ndarray]:
    """Write a rand_perm_cam.mat in the official layout (6 x 1 cell of per-person cells)."""
    rng = np.random.default_rng(seed)
    num_pids = max(pid for _, pid in counts)
    cells = np.empty((6, 1), dtype=object)
    perms = {}
    for cam in range(1, 7):
        inner = np.empty((num_pids, 1), dtype=object)
        for pid in range(1, num_pids + 1):
            n = counts.get((cam, pid), 0)
            rows = np.array([rng.permutation(n) + 1 for _ in range(trials)], dtype=np.uint8)
            inner[pid - 1, 0] = rows.reshape(trials, n)
            if n:
                perms[(cam, pid)] = rows
        cells[cam - 1, 0] = inner
    scipy.io.savemat(str(path), {"rand_perm_cam": cells})
    return perms


def picked_triples(ids, cams, frames, gallery_row) -> set[tuple[int, int, int]]:
    return {(int(cams[i]), int(ids[i]), int(frames[i])) for i in gallery_row}


# ---------------------------------------------------------------- the real split


@pytest.mark.parametrize(("mode", "shots"), SYSU_SETTINGS)
def test_real_split_gives_3803_queries_and_the_official_gallery_sizes_in_every_trial(
    real_split, mode, shots
):
    ids, cams, frames = real_split
    assert np.isin(cams, (3, 6)).sum() == 3803
    gallery = sysu_gallery_indices(ids, cams, frames, mode, shots, 10, SHARED / "rand_perm_cam.mat")
    assert gallery.shape == (10, OFFICIAL_SIZES[(mode, shots)])
    wanted_cams = (1, 2, 4, 5) if mode == "all" else (1, 2)
    assert set(np.unique(cams[gallery]).tolist()) == set(wanted_cams)
    assert all(np.unique(row).size == row.size for row in gallery)  # no image picked twice


def test_official_picks_are_the_first_shots_entries_of_the_trials_row(real_split):
    ids, cams, frames = real_split
    perm = load_rand_perm_cam(SHARED / "rand_perm_cam.mat")
    gallery = sysu_gallery_indices(ids, cams, frames, "all", 10, 10, "official")
    for trial in (0, 4, 9):
        chosen = picked_triples(ids, cams, frames, gallery[trial])
        for cam, pid in [(1, 6), (2, 10), (4, 17), (5, 333)]:
            want = {(cam, pid, int(f)) for f in perm[(cam, pid)][trial, :10]}
            assert {t for t in chosen if t[:2] == (cam, pid)} == want


def test_auto_picks_the_official_gallery_for_the_real_split(real_split):
    ids, cams, frames = real_split
    official = sysu_gallery_indices(ids, cams, frames, "indoor", 1, 10, "official")
    np.testing.assert_array_equal(sysu_gallery_indices(ids, cams, frames, "indoor", 1), official)
    features = np.random.default_rng(0).normal(size=(ids.size, 4)).astype(np.float32)
    result = evaluate_sysu(features, ids, cams, frames, "indoor", 1, trials=2)
    assert result["gallery_source"] == "official"
    assert (result["num_queries"], result["gallery_size"]) == (3803, 112)


def test_official_picks_do_not_depend_on_the_order_of_the_images(real_split):
    ids, cams, frames = real_split
    order = np.random.default_rng(1).permutation(ids.size)
    a = sysu_gallery_indices(ids, cams, frames, "all", 1, 3, "official")
    b = sysu_gallery_indices(ids[order], cams[order], frames[order], "all", 1, 3, "official")
    for row_a, row_b in zip(a, b, strict=True):
        assert picked_triples(ids, cams, frames, row_a) == picked_triples(
            ids[order], cams[order], frames[order], row_b
        )


def test_a_missing_frame_is_detected_instead_of_mis_evaluated(real_split):
    ids, cams, frames = real_split
    drop = np.flatnonzero((cams == 1) & (ids == 6) & (frames == 5))
    keep = np.setdiff1d(np.arange(ids.size), drop)
    with pytest.raises(ValueError, match="camera 1, person 6: file has 42 images, found 41"):
        sysu_gallery_indices(ids[keep], cams[keep], frames[keep], "all", 1, 10, "official")
    features = np.zeros((keep.size, 2), dtype=np.float32)
    with pytest.warns(UnofficialPicksWarning, match="camera 1, person 6: file has 42 images"):
        result = evaluate_sysu(features, ids[keep], cams[keep], frames[keep], "all", 1, trials=1)
    assert result["gallery_source"] == "random(seed=0)"  # "auto" does not use a misfit file
    assert "on real SYSU-MM01 this means an incomplete test split" in result["gallery_note"]


def test_shipped_asset_is_the_official_file():
    if not (SHARED / "rand_perm_cam.mat").is_file():
        pytest.skip("official SYSU-MM01 split files not available under /work/shared")
    assert OFFICIAL_RAND_PERM_CAM.read_bytes() == (SHARED / "rand_perm_cam.mat").read_bytes()


def test_the_official_file_is_package_data_found_through_importlib_resources():
    assert files("cycletrans.evaluation") / PACKAGE_FILE == OFFICIAL_RAND_PERM_CAM
    assert hashlib.sha256(OFFICIAL_RAND_PERM_CAM.read_bytes()).hexdigest() == OFFICIAL_SHA256
    # pip install . copies what the package-data globs match
    tomllib = pytest.importorskip("tomllib")
    with (ROOT / "pyproject.toml").open("rb") as f:
        globs = tomllib.load(f)["tool"]["setuptools"]["package-data"]["cycletrans"]
    assert any(fnmatch.fnmatch(f"evaluation/{PACKAGE_FILE}", glob) for glob in globs)


def test_asset_image_table_has_the_45863_images_of_sysu_mm01():
    perm = load_rand_perm_cam("official")
    ids, cams, frames = sysu_image_table(sorted({pid for _, pid in perm}))
    assert ids.size == 45863
    assert np.bincount(cams, minlength=7)[1:].tolist() == [6289, 7528, 9812, 8030, 8224, 5980]
    assert frames.min() == 1


# ---------------------------------------------------------------- random picks


@pytest.mark.parametrize(("mode", "shots"), SYSU_SETTINGS)
def test_random_picks_take_min_shots_images_per_camera_and_person(mode, shots):
    ids, cams, frames = tiny_split(TINY)
    gallery = sysu_gallery_indices(ids, cams, frames, mode, shots, 3, None, seed=5)
    wanted_cams = (1, 2, 4, 5) if mode == "all" else (1, 2)
    expected = {key: min(shots, n) for key, n in TINY.items() if key[0] in wanted_cams}
    assert gallery.shape == (3, sum(expected.values()))
    for row in gallery:
        assert np.all(np.diff(row) > 0)  # ascending, no repeats
        found = {}
        for i in row:
            found[(int(cams[i]), int(ids[i]))] = found.get((int(cams[i]), int(ids[i])), 0) + 1
        assert found == expected


def test_random_picks_are_seeded_and_vary_across_trials_and_seeds():
    ids, cams, frames = tiny_split(TINY)
    a = sysu_gallery_indices(ids, cams, frames, "all", 1, 10, None, seed=3)
    np.testing.assert_array_equal(a, sysu_gallery_indices(ids, cams, frames, "all", 1, 10, None, 3))
    assert len({tuple(row) for row in a}) > 1
    assert not np.array_equal(a, sysu_gallery_indices(ids, cams, frames, "all", 1, 10, None, 4))


def test_auto_falls_back_to_random_picks_when_counts_differ_from_the_official_file():
    ids, cams, frames = tiny_split(TINY)
    with pytest.warns(UnofficialPicksWarning, match="do not fit the official rand_perm_cam"):
        auto = sysu_gallery_indices(ids, cams, frames, "all", 1, 2, "auto", seed=0)
    np.testing.assert_array_equal(auto, sysu_gallery_indices(ids, cams, frames, "all", 1, 2, None))
    with pytest.raises(ValueError, match="do not fit the rand_perm_cam file"):
        sysu_gallery_indices(ids, cams, frames, "all", 1, 2, "official")


def test_auto_falling_back_warns_once_and_the_result_says_why():
    ids, cams, frames = tiny_split(TINY)
    with pytest.warns(UnofficialPicksWarning) as caught:
        results = evaluate_sysu_settings(one_hot(ids), ids, cams, frames, trials=1)
    assert len(caught) == 1  # one warning for the four settings
    for result in results.values():
        assert result["gallery_source"] == "random(seed=0)"
        assert result["gallery_note"].startswith("the images do not fit the official")


def test_random_picks_asked_for_say_so_without_a_warning():
    ids, cams, frames = tiny_split(TINY)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = evaluate_sysu(one_hot(ids), ids, cams, frames, trials=1, rand_perm_cam=None)
    assert result["gallery_source"] == "random(seed=0)"
    assert result["gallery_note"] == "seeded random picks, as asked (rand_perm_cam=None)"


def test_auto_without_the_official_file_warns_instead_of_silently_picking_at_random(
    monkeypatch, tmp_path
):
    ids, cams, frames = sysu_image_table([6, 10])  # would fit the official file
    monkeypatch.setattr(sysu, "OFFICIAL_RAND_PERM_CAM", tmp_path / "absent.mat")
    with pytest.warns(UnofficialPicksWarning, match="missing from this installation"):
        result = evaluate_sysu(one_hot(ids), ids, cams, frames, trials=1)
    assert result["gallery_source"] == "random(seed=0)"


# ---------------------------------------------------------------- a custom .mat file


def test_a_rand_perm_cam_file_given_by_path_decides_the_picks(tmp_path):
    perms = write_rand_perm_cam(tmp_path / "perm.mat", TINY, seed=2)
    ids, cams, frames = tiny_split(TINY)
    gallery = sysu_gallery_indices(ids, cams, frames, "all", 2, 10, tmp_path / "perm.mat")
    for trial in (0, 7):
        want = {
            (cam, pid, int(f))
            for (cam, pid), rows in perms.items()
            if cam in (1, 2, 4, 5)
            for f in rows[trial, :2]
        }
        assert picked_triples(ids, cams, frames, gallery[trial]) == want
    result = evaluate_sysu(
        one_hot(ids), ids, cams, frames, trials=2, rand_perm_cam=tmp_path / "perm.mat"
    )
    assert result["gallery_source"] == f"file {tmp_path / 'perm.mat'}"  # not called "official"


def test_more_trials_than_the_file_holds_is_an_error(tmp_path):
    write_rand_perm_cam(tmp_path / "perm.mat", TINY, trials=3)
    ids, cams, frames = tiny_split(TINY)
    with pytest.raises(ValueError, match="holds 3 trials, asked for 4"):
        sysu_gallery_indices(ids, cams, frames, "all", 1, 4, tmp_path / "perm.mat")


def test_load_rand_perm_cam_rejects_missing_and_malformed_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="rand_perm_cam file not found"):
        load_rand_perm_cam(tmp_path / "absent.mat")
    scipy.io.savemat(str(tmp_path / "other.mat"), {"something": np.ones(3)})
    with pytest.raises(ValueError, match="expected a variable 'rand_perm_cam'"):
        load_rand_perm_cam(tmp_path / "other.mat")
    write_rand_perm_cam(tmp_path / "bad.mat", {(1, 1): 3})
    cells = scipy.io.loadmat(str(tmp_path / "bad.mat"))["rand_perm_cam"]
    cells[0, 0][0, 0] = np.full((10, 3), 1, dtype=np.uint8)  # not a permutation
    scipy.io.savemat(str(tmp_path / "bad.mat"), {"rand_perm_cam": cells})
    with pytest.raises(ValueError, match=r"camera 1, person 1: expected rows that permute 1\.\.n"):
        load_rand_perm_cam(tmp_path / "bad.mat")


# ---------------------------------------------------------------- evaluation


def one_hot(ids: np.ndarray) -> np.ndarray:
    return (ids[:, None] == np.unique(ids)[None, :]).astype(np.float32)


def test_identity_features_score_perfectly_and_the_result_is_complete():
    ids, cams, frames = tiny_split(TINY)
    result = evaluate_sysu(
        one_hot(ids), ids, cams, frames, "all", 10, trials=4, seed=1, rand_perm_cam=None
    )
    assert {k: result[k] for k in SUMMARY_KEYS} == dict.fromkeys(SUMMARY_KEYS, 1.0)
    assert len(result["per_trial"]) == 4
    assert result["num_queries"] == int(np.isin(cams, (3, 6)).sum())
    assert result["gallery_size"] == sum(
        min(10, n) for (c, _), n in TINY.items() if c != 3 and c != 6
    )
    assert (result["mode"], result["shots"], result["metric"]) == ("all", 10, "euclidean")
    assert result["gallery_source"] == "random(seed=1)"


def test_indoor_camera_3_queries_of_a_person_seen_only_by_camera_2_are_not_counted():
    ids, cams, frames = tiny_split(TINY)  # person 3: indoor gallery = camera 2 only
    result = evaluate_sysu(
        one_hot(ids), ids, cams, frames, "indoor", 1, trials=2, rand_perm_cam=None
    )
    skipped = TINY[(3, 3)]  # person 3's camera-3 queries
    assert result["num_queries"] - result["per_trial"][0]["num_valid"] == skipped
    assert result["mAP"] == 1.0


def test_evaluation_equals_the_per_query_loop_on_each_trials_gallery():
    ids, cams, frames = tiny_split(TINY, seed=3)
    features = np.random.default_rng(0).integers(-3, 4, size=(ids.size, 5)).astype(np.float32)
    result = evaluate_sysu(
        features, ids, cams, frames, "all", 10, trials=5, seed=2, rand_perm_cam=None
    )
    gallery = sysu_gallery_indices(ids, cams, frames, "all", 10, 5, None, seed=2)
    query = np.flatnonzero(np.isin(cams, (3, 6)))
    for trial, row in zip(result["per_trial"], gallery, strict=True):
        dist = pairwise_distance(features[query], features[row])  # integers: exact distances
        want = loop_rank_metrics(dist, ids[query], ids[row], cams[query], cams[row], "sysu")
        for key in SUMMARY_KEYS:
            assert trial[key] == pytest.approx(want[key], abs=1e-12)
        assert trial["num_valid"] == want["num_valid"]
    assert result["r1"] == pytest.approx(np.mean([t["r1"] for t in result["per_trial"]]))


def test_several_settings_on_one_distance_matrix_equal_separate_evaluations():
    ids, cams, frames = tiny_split(TINY)
    features = np.random.default_rng(4).normal(size=(ids.size, 6))
    together = evaluate_sysu_settings(
        features, ids, cams, frames, SYSU_SETTINGS, trials=3, rand_perm_cam=None, metric="cosine"
    )
    for mode, shots in SYSU_SETTINGS:
        alone = evaluate_sysu(
            features, ids, cams, frames, mode, shots, trials=3, rand_perm_cam=None, metric="cosine"
        )
        for key in SUMMARY_KEYS:
            assert together[(mode, shots)][key] == pytest.approx(alone[key], abs=1e-6)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mode": "outdoor"}, "unknown mode"),
        ({"shots": 0}, "positive integers"),
        ({"trials": 0}, "positive integers"),
        ({"metric": "manhattan"}, "unknown metric"),
        ({"rand_perm_cam": "official", "trials": 11}, "do not fit"),
    ],
)
def test_bad_settings_raise_value_error(change, message):
    ids, cams, frames = tiny_split(TINY)
    args = {"mode": "all", "shots": 1, "trials": 1, "rand_perm_cam": None, **change}
    with pytest.raises(ValueError, match=message):
        evaluate_sysu(one_hot(ids), ids, cams, frames, **args)


def test_bad_image_lists_raise_value_error():
    ids, cams, frames = tiny_split(TINY)
    with pytest.raises(ValueError, match="features must be"):
        evaluate_sysu(np.ones((ids.size - 1, 3)), ids, cams, frames)
    with pytest.raises(ValueError, match="one length"):
        evaluate_sysu(one_hot(ids), ids, cams[:-1], frames)
    with pytest.raises(ValueError, match="must be integers"):
        evaluate_sysu(one_hot(ids), ids.astype(float), cams, frames)
    with pytest.raises(ValueError, match="1-based"):
        evaluate_sysu(one_hot(ids), ids, cams, frames - 1)
    visible = np.isin(cams, (1, 2, 4, 5))
    with pytest.raises(ValueError, match="no query images"):
        evaluate_sysu(one_hot(ids)[visible], ids[visible], cams[visible], frames[visible])
    infrared = ~visible
    with pytest.raises(ValueError, match="empty gallery"):
        evaluate_sysu(one_hot(ids)[infrared], ids[infrared], cams[infrared], frames[infrared])
    features = one_hot(ids)
    features[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        evaluate_sysu(features, ids, cams, frames, rand_perm_cam=None)
