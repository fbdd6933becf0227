"""Modality-gap statistics on constructed features whose answer is known."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from analysis.modality_gap import GROUPS, gap_histogram, modality_gap
from cycletrans.losses import mmd_loss

SAME_MOD, CROSS, DIFFERENT = GROUPS
# cycletrans.evaluation.pairwise_distance works in float32 through |a|^2 + |b|^2 - 2ab, so a
# distance carries an absolute error of about sqrt(1e-7) x the features' norm
TOL = {"rel": 1e-4, "abs": 1e-2}


def line_of_identities(shift: float):
    """Three identities at x = 0, 10, 20, two visible images each (y = +-0.1); the infrared
    images are the visible ones moved by ``shift`` along x."""
    ids = np.repeat([0, 1, 2], 4)
    modalities = np.tile([0, 0, 1, 1], 3)
    x = 10.0 * ids + shift * modalities
    y = np.tile([0.1, -0.1, 0.1, -0.1], 3)
    return np.stack([x, y], axis=1), ids, modalities


def test_pair_counts_and_exact_distances_on_a_simplex():
    # each identity: 4 corners of a regular simplex (all pairwise distances sqrt(2)), two
    # visible and two infrared, identities 100 apart along a fifth axis
    ids = np.repeat([0, 1, 2], 4)
    modalities = np.tile([0, 0, 1, 1], 3)
    features = np.concatenate([np.eye(4), np.zeros((4, 1))], axis=1)
    features = np.tile(features, (3, 1)) + 100.0 * ids[:, None] * np.eye(5)[4]
    gap = modality_gap(features, ids, modalities, metric="euclidean")
    assert gap.summary.index.tolist() == list(GROUPS)
    assert gap.summary["pairs"].tolist() == [6, 12, 48]
    assert gap.summary.loc[SAME_MOD, "mean"] == pytest.approx(np.sqrt(2), **TOL)
    assert gap.summary.loc[CROSS, "mean"] == pytest.approx(np.sqrt(2), **TOL)
    assert gap.summary.loc[CROSS, "std"] == pytest.approx(0.0, **TOL)
    expected = np.sqrt(2 + 100.0**2 * np.array([1, 1, 4]))  # ids 1 or 2 apart, 16 pairs each
    assert gap.summary.loc[DIFFERENT, "mean"] == pytest.approx(expected.mean(), **TOL)
    assert gap.summary.loc[DIFFERENT, "median"] == pytest.approx(expected[0], **TOL)
    assert gap.ratio == pytest.approx(1.0, **TOL)


def test_cosine_groups_and_mmd_equal_their_direct_definitions():
    # modalities interleaved, features of mixed scale: each group holds exactly the
    # 1 - cos of its pairs, and the MMD is eq. 16 (mmd_loss) of the l2-normalised features
    rng = np.random.default_rng(3)
    ids, modalities = np.repeat(np.arange(6), 5), np.tile([1, 0, 0, 1, 0], 6)
    features = rng.normal(size=(30, 16)) * rng.uniform(0.5, 20.0, size=(30, 1))
    gap = modality_gap(features, ids, modalities)
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    i, j = np.triu_indices(30, k=1)
    cosine = 1.0 - (unit[i] * unit[j]).sum(axis=1)
    same_id, same_mod = ids[i] == ids[j], modalities[i] == modalities[j]
    for name, pairs in (
        (SAME_MOD, same_id & same_mod),
        (CROSS, same_id & ~same_mod),
        (DIFFERENT, ~same_id),
    ):
        assert np.sort(gap.distances[name]) == pytest.approx(np.sort(cosine[pairs]), abs=1e-5)
    visible, infrared = (torch.from_numpy(unit[modalities == m]) for m in (0, 1))
    assert gap.mmd == pytest.approx(float(mmd_loss(visible, infrared)), rel=1e-4)


def test_identical_modalities_give_zero_mmd_and_the_same_distances():
    rng = np.random.default_rng(0)
    ids = np.repeat([0, 1, 2, 3], 3)
    visible = 0.5 * rng.normal(size=(12, 6)) + 1.5 * (ids[:, None] - 1.5)
    features = np.concatenate([visible, visible])  # infrared = copies of the visible images
    ids2 = np.concatenate([ids, ids])
    modalities = np.repeat([0, 1], 12)
    gap = modality_gap(features, ids2, modalities, metric="euclidean")
    assert gap.mmd == pytest.approx(0.0, abs=1e-6)
    within = np.sort(gap.distances[SAME_MOD])
    assert len(within) == 2 * 4 * 3  # 3 pairs per identity and modality
    cross = np.sort(gap.distances[CROSS])
    # cross pairs: each image with its own copy (distance 0), then every within pair twice
    assert cross[:12] == pytest.approx(np.zeros(12), **TOL)
    assert cross[12:] == pytest.approx(np.repeat(within[::2], 2), **TOL)
    assert cross[12:].mean() > 0.5


def test_a_growing_shift_between_modalities_grows_the_gap():
    gaps = [modality_gap(*line_of_identities(shift), metric="euclidean") for shift in (0, 2, 5, 10)]
    cross = [g.summary.loc[CROSS, "mean"] for g in gaps]
    mmd = [g.mmd for g in gaps]
    within = [g.summary.loc[SAME_MOD, "mean"] for g in gaps]
    assert all(a < b for a, b in itertools.pairwise(cross))
    assert all(a < b for a, b in itertools.pairwise(mmd))
    assert within == pytest.approx([0.2] * 4, **TOL)  # a shift moves no pair within one
    assert cross[-1] == pytest.approx(
        np.mean([10.0, 10.0, np.hypot(10, 0.2), np.hypot(10, 0.2)]), **TOL
    )
    assert [g.ratio for g in gaps] == sorted(g.ratio for g in gaps)


def test_the_default_cosine_metric_ignores_each_images_feature_scale():
    rng = np.random.default_rng(1)
    features, ids, modalities = line_of_identities(3.0)
    features = features + np.array([1.0, 5.0])
    scaled = features * rng.uniform(0.5, 5.0, size=(len(features), 1))
    a = modality_gap(features, ids, modalities)
    b = modality_gap(torch.from_numpy(scaled), ids, modalities)
    assert a.metric == "cosine"
    np.testing.assert_allclose(a.summary["mean"], b.summary["mean"], atol=1e-5)
    assert a.mmd == pytest.approx(b.mmd, abs=1e-6)
    assert (a.distances[DIFFERENT] <= 2.0 + 1e-6).all()


def test_histogram_has_one_normalised_trace_per_group():
    gap = modality_gap(*line_of_identities(2.0), metric="euclidean")
    fig = gap_histogram(gap, bins=12)
    assert len(fig.data) == 3
    for trace, group in zip(fig.data, GROUPS, strict=True):
        assert trace.name.startswith(group)
        assert len(trace.x) == 12
        assert sum(trace.y) == pytest.approx(1.0)
    assert fig.layout.xaxis.title.text == "euclidean distance"


def test_histograms_of_several_models_can_share_one_axis():
    gap = modality_gap(*line_of_identities(2.0))
    fig = gap_histogram(gap, bins=10, x_range=(0.0, 2.0))
    assert list(fig.layout.xaxis.range) == [0.0, 2.0]
    assert fig.data[0].x[0] == pytest.approx(0.1)  # bins of width 0.2 from 0


def test_bad_input_raises_clear_errors():
    features, ids, modalities = line_of_identities(1.0)
    with pytest.raises(ValueError, match="12 features but 11 ids"):
        modality_gap(features, ids[:11], modalities)
    with pytest.raises(ValueError, match="12 features but 3 modalities"):
        modality_gap(features, ids, modalities[:3])
    with pytest.raises(ValueError, match=r"0 \(visible\) or 1 \(infrared\)"):
        modality_gap(features, ids, modalities * 2)
    with pytest.raises(ValueError, match="need visible and infrared"):
        modality_gap(features, ids, np.zeros(12, dtype=int))
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        modality_gap(features[:, 0], ids, modalities)
    with pytest.raises(ValueError, match="NaN"):
        modality_gap(np.where(ids[:, None] == 0, np.nan, features), ids, modalities)
    with pytest.raises(ValueError, match="metric"):
        modality_gap(features, ids, modalities, metric="manhattan")
    with pytest.raises(ValueError, match="bins"):
        gap_histogram(modality_gap(features, ids, modalities), bins=0)
