"""t-SNE of features and its Fig. 4-style figure."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from analysis.tsne import (
    TSNECache,
    identity_colours,
    select_identities,
    tsne_embedding,
    tsne_figure,
)


@pytest.fixture(scope="module")
def toy():
    """Three identities x (3 visible + 3 infrared) images, clustered by identity."""
    rng = np.random.default_rng(0)
    ids = np.repeat([4, 7, 11], 6)
    modalities = np.tile([0, 0, 0, 1, 1, 1], 3)
    centres = {4: 0.0, 7: 10.0, 11: 20.0}
    features = np.stack([np.full(16, centres[p]) for p in ids]) + rng.normal(size=(18, 16))
    cams = np.tile([1, 2, 4, 3, 6, 3], 3)
    paths = [f"cam{c}/{p:04d}/{i:04d}.jpg" for i, (c, p) in enumerate(zip(cams, ids, strict=True))]
    return features, ids, modalities, cams, paths


@pytest.fixture(scope="module")
def points(toy):
    return tsne_embedding(toy[0], seed=0)


def test_embedding_has_one_point_per_image_and_is_seeded(toy, points):
    assert points.shape == (18, 2)
    assert np.isfinite(points).all()
    np.testing.assert_allclose(tsne_embedding(toy[0], seed=0), points)


def test_embedding_keeps_identities_apart(toy, points):
    ids = toy[1]
    centres = np.stack([points[ids == p].mean(axis=0) for p in (4, 7, 11)])
    spread = max(
        np.linalg.norm(points[ids == p] - c, axis=1).max()
        for p, c in zip((4, 7, 11), centres, strict=True)
    )
    gaps = [np.linalg.norm(centres[i] - centres[j]) for i in range(3) for j in range(i + 1, 3)]
    assert min(gaps) > spread


def test_embedding_accepts_tensors_and_tiny_sets_with_large_perplexity():
    points = tsne_embedding(torch.arange(12.0).reshape(4, 3), perplexity=50)
    assert points.shape == (4, 2)
    assert tsne_embedding(np.eye(3), perplexity=30).shape == (3, 2)


@pytest.mark.parametrize(
    ("features", "message"),
    [
        (np.zeros((2, 4)), "at least 3"),
        (np.zeros(5), r"\[N, D\]"),
        (np.array([[0.0, 1.0]] * 3 + [[np.nan, 0.0]]), "NaN"),
    ],
)
def test_embedding_rejects_bad_features(features, message):
    with pytest.raises(ValueError, match=message):
        tsne_embedding(features)


def test_embedding_rejects_non_positive_perplexity(toy):
    with pytest.raises(ValueError, match="perplexity"):
        tsne_embedding(toy[0], perplexity=0)


def test_select_identities_is_seeded_sorted_and_clipped():
    ids = np.repeat(np.arange(20), 2)
    chosen = select_identities(ids, count=10, seed=1)
    assert len(chosen) == 10
    assert chosen == sorted(chosen)
    assert set(chosen) <= set(range(20))
    assert select_identities(ids, count=10, seed=1) == chosen
    assert any(select_identities(ids, count=10, seed=s) != chosen for s in range(2, 6))
    assert select_identities(ids, count=50) == list(range(20))


def test_select_identities_can_require_both_modalities():
    ids = np.array([1, 1, 2, 2, 3, 3])
    modalities = np.array([0, 1, 0, 0, 1, 0])
    assert select_identities(ids, count=10, modalities=modalities) == [1, 3]
    with pytest.raises(ValueError, match="count"):
        select_identities(ids, count=0)
    with pytest.raises(ValueError, match="no identity"):
        select_identities(ids, modalities=np.zeros(6, dtype=int))
    with pytest.raises(ValueError, match="6 ids but 5 modalities"):
        select_identities(ids, modalities=np.zeros(5, dtype=int))


def test_figure_has_one_trace_and_colour_per_identity_and_markers_per_modality(toy, points):
    _, ids, modalities, cams, paths = toy
    fig = tsne_figure(points, ids, modalities, hover={"camera": cams, "file": paths})
    assert [trace.name for trace in fig.data] == ["id 4", "id 7", "id 11"]
    assert len({trace.marker.color for trace in fig.data}) == 3
    for trace in fig.data:
        assert list(trace.marker.symbol) == ["circle"] * 3 + ["triangle-up"] * 3
        assert len(trace.x) == 6
    first = fig.data[0]
    np.testing.assert_allclose(first.x, points[:6, 0])
    assert list(first.customdata[0]) == [4, "visible", 1, "cam1/0004/0000.jpg"]
    assert list(first.customdata[3])[:3] == [4, "infrared", 3]
    for field in ("identity", "modality", "camera", "file"):
        assert f"{field}=%{{customdata" in first.hovertemplate


@pytest.mark.parametrize("count", [3, 10, 11, 40])
def test_every_identity_shown_gets_its_own_colour(count):
    colours = identity_colours(count)
    assert len(set(colours)) == count  # no colour repeats, up to the app's 40 identities
    ids = np.repeat(np.arange(count), 2)
    fig = tsne_figure(np.zeros((2 * count, 2)), ids, np.tile([0, 1], count))
    assert len({trace.marker.color for trace in fig.data}) == count


def test_figure_rejects_mismatched_or_bad_input(toy):
    _, ids, modalities, cams, _ = toy
    points = np.zeros((18, 2))
    with pytest.raises(ValueError, match=r"\[N, 2\]"):
        tsne_figure(np.zeros((18, 3)), ids, modalities)
    with pytest.raises(ValueError, match="'identity'"):
        tsne_figure(points, ids[:5], modalities)
    with pytest.raises(ValueError, match="'camera'"):
        tsne_figure(points, ids, modalities, hover={"camera": cams[:3]})
    with pytest.raises(ValueError, match=r"0 \(visible\) or 1 \(infrared\)"):
        tsne_figure(points, ids, modalities + 1)


def test_cache_computes_once_per_model_identity_set_and_seed(toy, monkeypatch):
    features = toy[0]
    calls = []

    def fake_embedding(feats, seed, perplexity):
        calls.append(seed)
        return np.full((len(feats), 2), float(seed))

    monkeypatch.setattr("analysis.tsne.tsne_embedding", fake_embedding)
    cache = TSNECache(max_entries=2)
    first = cache.embedding("baseline", [7, 4], 0, features)
    assert cache.embedding("baseline", [4, 7], 0, features) is first
    assert len(calls) == 1
    cache.embedding("full", [4, 7], 0, features)
    cache.embedding("full", [4, 7], 1, features)
    assert len(calls) == 3
    assert len(cache) == 2
    cache.embedding("baseline", [4, 7], 0, features)  # evicted as least recently used
    assert len(calls) == 4
    with pytest.raises(ValueError, match="max_entries"):
        TSNECache(max_entries=0)
