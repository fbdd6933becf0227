"""Feature extraction: record order, modality routing, eval mode, the .npz round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from engine_helpers import write_sysu_tree
from torch import nn

from cycletrans.data import split_records
from cycletrans.engine.inference import FeatureSet, extract_features
from cycletrans.preprocessing import Preprocessing


class _RecordingModel(nn.Module):
    """embed() = [mean pixel value, modality code]; remembers the modality of each call."""

    def __init__(self) -> None:
        super().__init__()
        self.preprocessing = Preprocessing(32, 16, mean=(0.0,) * 3, std=(1.0,) * 3)
        self.calls: list[tuple[str, bool, int]] = []
        self.scale = nn.Parameter(torch.ones(1))

    def embed(self, images: torch.Tensor, modality: str) -> torch.Tensor:
        self.calls.append((modality, self.training, len(images)))
        code = 1.0 if modality == "infrared" else 0.0
        mean = images.mean(dim=(1, 2, 3)) * self.scale
        return torch.stack([mean, torch.full_like(mean, code)], dim=1)


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return split_records(write_sysu_tree(tmp_path_factory.mktemp("sysu")), "sysu", "test")


def test_features_follow_the_record_order_and_each_modality_is_embedded_as_itself(records):
    model = _RecordingModel().train()
    feats = extract_features(model, records, batch_size=5, progress=False)
    assert feats.features.shape == (len(records), 2)
    assert feats.features.dtype == np.float32
    np.testing.assert_array_equal(feats.features[:, 1], feats.modalities.astype(np.float32))
    assert feats.ids.tolist() == [r.pid for r in records]
    assert feats.cams.tolist() == [r.cam for r in records]
    assert feats.frames.tolist() == [r.frame for r in records]
    assert feats.paths.tolist() == [r.path for r in records]
    assert {m for m, _, _ in model.calls} == {"visible", "infrared"}
    assert not any(training for _, training, _ in model.calls)
    assert model.training
    assert max(n for _, _, n in model.calls) == 5


def test_feature_set_round_trips_through_npz_and_rejects_a_foreign_file(records, tmp_path):
    feats = extract_features(_RecordingModel(), records[:6], progress=False)
    path = feats.save(tmp_path / "f.npz")
    back = FeatureSet.load(path)
    for key in ("features", "ids", "cams", "frames", "modalities", "paths"):
        np.testing.assert_array_equal(getattr(back, key), getattr(feats, key))
    assert back.subset(back.modalities == 0).ids.size == int((feats.modalities == 0).sum())
    np.savez(tmp_path / "other.npz", features=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="lacks arrays"):
        FeatureSet.load(tmp_path / "other.npz")


def test_a_contiguous_subset_shares_memory_and_any_other_is_a_copy(records):
    feats = extract_features(_RecordingModel(), records[:6], progress=False)
    run, scattered = np.arange(6) >= 2, np.array([True, False] * 3)
    assert np.shares_memory(feats.subset(run).features, feats.features)
    assert not np.shares_memory(feats.subset(scattered).features, feats.features)
    for mask in (run, scattered, [1, 2, 3], [4, 0]):
        expected = feats.features[mask]
        np.testing.assert_array_equal(feats.subset(mask).features, expected)
        np.testing.assert_array_equal(feats.subset(mask).paths, feats.paths[mask])
    with pytest.raises(ValueError, match=r"expected a \[6\] mask, got \(5,\)"):
        feats.subset(run[:5])


def test_extracting_nothing_is_an_error():
    with pytest.raises(ValueError, match="at least one image record"):
        extract_features(_RecordingModel(), [], progress=False)
