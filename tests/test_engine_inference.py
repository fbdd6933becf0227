"""Feature extraction and the protocol runner of the evaluate command."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from engine_helpers import TEST_IDS, write_sysu_tree
from torch import nn

from cycletrans.engine.data import split_records
from cycletrans.engine.inference import FeatureSet, extract_features
from cycletrans.engine.protocols import evaluate_protocols, modality_retrieval
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


def test_extracting_nothing_is_an_error():
    with pytest.raises(ValueError, match="at least one image record"):
        extract_features(_RecordingModel(), [], progress=False)


def _features(values, ids, cams, modalities) -> FeatureSet:
    n = len(ids)
    return FeatureSet(features=np.asarray(values, dtype=np.float32).reshape(n, -1),
                      ids=np.asarray(ids), cams=np.asarray(cams),
                      frames=np.ones(n, dtype=np.int64), modalities=np.asarray(modalities),
                      paths=np.array([f"{i}.jpg" for i in range(n)]))


def test_sysu_within_modality_retrieval_ignores_the_queries_own_camera():
    # Query person 1 in camera 1; its twin image in camera 1 is identical but must not count.
    feats = _features([0.0, 0.0, 1.0, 3.0], ids=[1, 1, 2, 1], cams=[1, 1, 2, 4],
                      modalities=[0, 0, 0, 0])
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


def test_evaluate_protocols_runs_every_sysu_setting(records):
    rng = np.random.default_rng(0)
    feats = extract_features(_RecordingModel(), records, progress=False)
    feats.features = rng.normal(size=(len(records), 4)).astype(np.float32)
    results = evaluate_protocols(feats, "sysu", trials=3, rand_perm_cam=None)
    assert list(results) == ["all_single", "all_multi", "indoor_single", "indoor_multi"]
    single = results["all_single"]
    assert single["gallery_size"] == 4 * len(TEST_IDS)
    assert single["trials"] == 3
    assert single["gallery_source"].startswith("random")
    assert all(0.0 <= single[k] <= 1.0 for k in ("r1", "r10", "r20", "mAP", "mINP"))
    only = evaluate_protocols(feats, "sysu", trials=1, rand_perm_cam=None, settings=[("all", 1)])
    assert list(only) == ["all_single"]
    regdb = evaluate_protocols(feats, "regdb")
    assert set(regdb) == {"visible_to_infrared", "infrared_to_visible"}
    with pytest.raises(ValueError, match="unknown dataset"):
        evaluate_protocols(feats, "market")

