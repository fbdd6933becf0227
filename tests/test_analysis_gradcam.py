"""Grad-CAM of the query-match embedding similarity and the anchor attention maps
(analysis.gradcam), on tiny random-init ResNet-18 models at 64 x 32 (tests/app_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from app_helpers import tiny_model, torch_threads
from PIL import Image

from analysis.gradcam import (
    EmbeddingNet,
    anchor_maps,
    image_tensor,
    model_view,
    normalise_map,
    overlay,
    similarity_cam,
)


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def full() -> torch.nn.Module:
    return tiny_model("full")


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (80, 40, 3), np.uint8)) for _ in range(3)]


def test_heatmaps_have_the_model_input_size_and_values_in_0_1(full, images) -> None:
    query_map, match_map = similarity_cam(full, images[0], images[1], "infrared")
    for heatmap in (query_map, match_map):
        assert heatmap.shape == (64, 32)
        assert heatmap.dtype == np.float32
        assert heatmap.min() >= 0.0
        assert heatmap.max() <= 1.0
        assert heatmap.max() > 0.5  # scaled to [0, 1], not all zero


def test_query_heatmap_depends_on_the_match(full, images) -> None:
    first, _ = similarity_cam(full, images[0], images[1], "infrared")
    second, _ = similarity_cam(full, images[0], images[2], "infrared")
    assert np.abs(first - second).max() > 0.05


def test_heatmaps_are_deterministic(full, images) -> None:
    a = similarity_cam(full, images[0], images[1], "visible")
    b = similarity_cam(full, images[0], images[1], "visible")
    assert np.allclose(a[0], b[0], atol=1e-5)
    assert np.allclose(a[1], b[1], atol=1e-5)


def test_grad_cam_leaves_no_hooks_and_no_gradients(full, images) -> None:
    similarity_cam(full, images[0], images[1], "infrared")
    assert not full.feature_layer._forward_hooks
    assert all(p.grad is None for p in full.parameters())


def test_the_target_is_the_retrieval_embedding(full, images) -> None:
    batch = image_tensor(full, images[0])
    with torch.no_grad():
        ours = EmbeddingNet(full, "infrared")(batch)
    assert torch.allclose(ours, full.embed(batch, "infrared"), atol=1e-5)


def test_baseline_has_grad_cam_but_no_anchor_maps(images) -> None:
    baseline = tiny_model("baseline")
    query_map, _ = similarity_cam(baseline, images[0], images[1], "infrared")
    assert query_map.shape == (64, 32)
    with pytest.raises(ValueError, match="no KCM"):
        anchor_maps(baseline, images[0], "infrared")


@pytest.mark.parametrize("backbone", ["mobilenet_v2", "agw"])
def test_grad_cam_reaches_the_last_stage_of_every_backbone(images, backbone) -> None:
    model = tiny_model("full", backbone=backbone)
    query_map, match_map = similarity_cam(model, images[0], images[1], "infrared")
    assert query_map.shape == match_map.shape == (64, 32)  # hooks saw the forward pass


def test_anchor_maps_one_per_anchor_at_input_size(full, images) -> None:
    maps, peak, _ = anchor_maps(full, images[0], "visible")
    assert maps.shape == (3, 64, 32)
    assert maps.min() >= 0.0
    assert maps.max() <= 1.0
    raw = full.anchor_attention(image_tensor(full, images[0]), "visible")
    assert raw.shape[:2] == (1, 3)
    assert torch.allclose(raw.flatten(2).sum(-1), torch.ones(1, 3), atol=1e-4)  # eq. 5 softmax
    assert peak == pytest.approx(float(raw.max()) * raw.shape[2] * raw.shape[3], rel=1e-5)


def test_anchor_peak_is_one_for_uniform_attention_and_grows_with_focus(full, images) -> None:
    anchors = full.anchors.detach().clone()
    with torch.no_grad():
        full.anchors.zero_()  # a zero query: every position gets the same eq. 5 weight
        uniform = anchor_maps(full, images[0], "visible").peak
        full.anchors.copy_(anchors * 1e3)  # a large query: a sharp softmax
        focused = anchor_maps(full, images[0], "visible").peak
        full.anchors.copy_(anchors)
    assert uniform == pytest.approx(1.0, abs=1e-5)
    assert focused > 2.0


def test_anchor_agreement_is_one_for_copied_anchors_and_lower_for_distinct_ones(
    full, images
) -> None:
    anchors = full.anchors.detach().clone()
    with torch.no_grad():
        full.anchors.copy_(anchors[:1].expand_as(anchors) * 1e3)  # one anchor, three times
        copies = anchor_maps(full, images[0], "visible").agreement
        full.anchors.copy_(anchors * 1e3)  # three random anchors, sharp maps
        distinct = anchor_maps(full, images[0], "visible").agreement
        full.anchors.copy_(anchors)
    assert copies == pytest.approx(1.0, abs=1e-5)
    assert distinct < 0.99


def test_bad_inputs_are_refused(full, images) -> None:
    with pytest.raises(ValueError, match="RGB PIL image"):
        similarity_cam(full, images[0].convert("L"), images[1], "infrared")
    with pytest.raises(ValueError, match="unknown modality"):
        similarity_cam(full, images[0], images[1], "ultraviolet")
    training = tiny_model("full").train()
    with pytest.raises(ValueError, match="eval mode"):
        similarity_cam(training, images[0], images[1], "infrared")


def test_overlay_blends_a_resized_heatmap_over_the_image(full, images) -> None:
    view = model_view(full, images[0])
    assert view.shape == (64, 32, 3)
    assert view.dtype == np.uint8
    small = np.zeros((8, 4), np.float32)
    small[0, 0] = 1.0
    blended = overlay(view, small, alpha=0.5)
    assert blended.shape == (64, 32, 3)
    assert blended.dtype == np.uint8
    white = np.full((10, 6, 3), 255, np.uint8)
    assert (overlay(white, np.ones((10, 6)), alpha=0.0) == 255).all()  # alpha 0: the image
    with pytest.raises(ValueError, match="alpha"):
        overlay(view, small, alpha=1.5)
    with pytest.raises(ValueError, match=r"\[h, w\] heatmap"):
        overlay(view, np.zeros((2, 8, 4)))
    with pytest.raises(ValueError, match=r"\[H, W, 3\] image"):
        overlay(np.zeros((10, 6)), small)


def test_normalise_map_scales_to_0_1_and_zeroes_constant_maps() -> None:
    assert normalise_map(np.array([[2.0, 4.0], [3.0, 6.0]])).tolist() == [[0.0, 0.5], [0.25, 1.0]]
    assert normalise_map(np.full((2, 2), 7.0)).max() == 0.0
