"""KCM (eq. 4-5) against plain loop computations, and its eval-mode anchor-query cache."""

import math

import pytest
import torch
from torch import nn

from cycletrans.models import KCM


@pytest.fixture
def kcm() -> KCM:
    torch.manual_seed(0)
    return KCM(dim=6, attn_dim=4).double()


def direct_refine(tokens: torch.Tensor) -> torch.Tensor:
    """Eq. 4 for one image, row by row: F~_i = sum_j softmax_j(cos(F^_i, F^_j)) F^_j."""
    out = torch.zeros_like(tokens)
    for i in range(len(tokens)):
        sims = torch.stack(
            [
                torch.dot(tokens[i], tokens[j]) / (tokens[i].norm() * tokens[j].norm())
                for j in range(len(tokens))
            ]
        )
        weights = torch.exp(sims) / torch.exp(sims).sum()
        out[i] = sum(weights[j] * tokens[j] for j in range(len(tokens)))
    return out


def direct_capture(kcm: KCM, refined: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """Eq. 5 for one image, written as in the paper: projections of both sides, then scores."""
    c = kcm.w_theta.out_features
    q = anchors @ kcm.w_theta.weight.T  # C W_theta [k, c]
    key = refined @ kcm.w_tau.weight.T  # F~ W_tau [N, c]
    out = torch.zeros(len(anchors), refined.shape[1], dtype=refined.dtype)
    for a in range(len(anchors)):
        scores = torch.stack([torch.dot(q[a], key[n]) / math.sqrt(c) for n in range(len(key))])
        weights = torch.exp(scores) / torch.exp(scores).sum()
        out[a] = sum(weights[n] * refined[n] for n in range(len(refined)))
    return out


def test_projections_are_bias_free_linear_layers_to_attn_dim(kcm):
    for layer in (kcm.w_theta, kcm.w_tau):
        assert isinstance(layer, nn.Linear)
        assert layer.bias is None
        assert (layer.in_features, layer.out_features) == (6, 4)
    assert KCM(dim=6).w_tau.out_features == 6  # attn_dim defaults to dim


def test_refine_is_eq4_softmax_of_cosine_similarities_without_temperature(kcm):
    tokens = torch.randn(2, 5, 6, dtype=torch.double)
    refined = kcm.refine(tokens)
    for b in range(2):
        torch.testing.assert_close(refined[b], direct_refine(tokens[b]))


def test_capture_is_eq5_with_sqrt_c_scaling_for_shared_anchors(kcm):
    refined = torch.randn(3, 5, 6, dtype=torch.double)
    anchors = torch.randn(2, 6, dtype=torch.double)
    captured = kcm.capture(refined, anchors)
    assert captured.shape == (3, 2, 6)
    for b in range(3):
        torch.testing.assert_close(captured[b], direct_capture(kcm, refined[b], anchors))


def test_capture_with_per_image_anchors_uses_each_images_own_anchors(kcm):
    refined = torch.randn(3, 5, 6, dtype=torch.double)
    anchors = torch.randn(3, 2, 6, dtype=torch.double)
    captured = kcm.capture(refined, anchors)
    for b in range(3):
        torch.testing.assert_close(captured[b], direct_capture(kcm, refined[b], anchors[b]))


def test_capture_over_one_shared_candidate_pool_serves_several_anchor_sets(kcm):
    pool = torch.randn(1, 7, 6, dtype=torch.double)
    anchors = torch.randn(4, 2, 6, dtype=torch.double)
    captured = kcm.capture(pool, anchors)
    assert captured.shape == (4, 2, 6)
    for b in range(4):
        torch.testing.assert_close(captured[b], direct_capture(kcm, pool[0], anchors[b]))


def test_attention_weights_sum_to_one(kcm):
    tokens = torch.randn(2, 5, 6, dtype=torch.double)
    weights = kcm.attention(kcm.refine(tokens), torch.randn(3, 6, dtype=torch.double))
    assert weights.shape == (2, 3, 5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, dtype=torch.double))


@pytest.mark.parametrize("anchor_shape", [(3, 6), (2, 3, 6)])
def test_forward_equals_refine_then_capture_without_building_the_refined_map(kcm, anchor_shape):
    tokens = torch.randn(2, 5, 6, dtype=torch.double)
    anchors = torch.randn(*anchor_shape, dtype=torch.double)
    torch.testing.assert_close(kcm(tokens, anchors), kcm.capture(kcm.refine(tokens), anchors))


def test_eval_cache_gives_the_training_mode_output_and_is_reused(kcm):
    refined = torch.randn(2, 5, 6, dtype=torch.double)
    anchors = nn.Parameter(torch.randn(3, 6, dtype=torch.double))
    expected = kcm.capture(refined, anchors)  # training mode: no cache
    kcm.eval()
    with torch.no_grad():
        torch.testing.assert_close(kcm.capture(refined, anchors), expected)
        first = kcm.anchor_query(anchors)
        assert kcm.anchor_query(anchors) is first


def test_eval_cache_is_dropped_when_the_weights_change(kcm):
    anchors = nn.Parameter(torch.randn(3, 6, dtype=torch.double))
    opt = torch.optim.SGD([*kcm.parameters(), anchors], lr=0.1)
    kcm.eval()
    with torch.no_grad():
        before = kcm.anchor_query(anchors)
    # an in-place optimizer step
    kcm.w_theta.weight.grad = torch.ones_like(kcm.w_theta.weight)
    opt.step()
    with torch.no_grad():
        after_step = kcm.anchor_query(anchors)
    assert not torch.allclose(after_step, before)
    with torch.enable_grad():
        torch.testing.assert_close(after_step, kcm.anchor_query(anchors))
    # load_state_dict
    state = {k: torch.randn_like(v) for k, v in kcm.state_dict().items()}
    kcm.load_state_dict(state)
    with torch.no_grad():
        after_load = kcm.anchor_query(anchors)
    torch.testing.assert_close(
        after_load, anchors @ state["w_theta.weight"].T @ state["w_tau.weight"] / 2.0
    )
    # new anchors, same shape
    other = nn.Parameter(torch.randn(3, 6, dtype=torch.double))
    with torch.no_grad():
        assert not torch.allclose(kcm.anchor_query(other), after_load)


def test_no_cache_in_training_mode_or_when_gradients_are_needed(kcm):
    anchors = nn.Parameter(torch.randn(3, 6, dtype=torch.double))
    with torch.no_grad():
        kcm.anchor_query(anchors)
    assert kcm._query_cache.value is None  # training mode
    kcm.eval()
    query = kcm.anchor_query(anchors)  # grad mode on, parameters require grad
    assert kcm._query_cache.value is None
    query.sum().backward()
    assert kcm.w_theta.weight.grad is not None
    assert anchors.grad is not None


def test_refine_temperature_divides_the_cosines_of_eq4():
    torch.manual_seed(1)
    tokens = torch.randn(1, 5, 6, dtype=torch.double)
    sharp = KCM(dim=6, refine_temperature=0.25).double()
    normed = tokens[0] / tokens[0].norm(dim=1, keepdim=True)
    expected = torch.softmax(normed @ normed.T / 0.25, dim=1) @ tokens[0]
    torch.testing.assert_close(sharp.refine(tokens)[0], expected)
    # a small temperature keeps each token closer to itself than the printed eq. 4 does
    plain = KCM(dim=6).double()
    assert (sharp.refine(tokens) - tokens).norm() < (plain.refine(tokens) - tokens).norm()


def direct_cosine_capture(kcm: KCM, refined: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """Eq. 5 with cosine scores for one image, one anchor and one token at a time."""
    q = anchors @ kcm.w_theta.weight.T
    key = refined @ kcm.w_tau.weight.T
    out = torch.zeros(len(anchors), refined.shape[1], dtype=refined.dtype)
    for a in range(len(anchors)):
        scores = (
            torch.stack(
                [torch.dot(q[a], key[n]) / (q[a].norm() * key[n].norm()) for n in range(len(key))]
            )
            / kcm.capture_temperature
        )
        weights = torch.exp(scores) / torch.exp(scores).sum()
        out[a] = sum(weights[n] * refined[n] for n in range(len(refined)))
    return out


@pytest.fixture
def cosine_kcm() -> KCM:
    torch.manual_seed(2)
    return KCM(dim=6, attn_dim=4, capture_scores="cosine", capture_temperature=0.2).double()


def test_cosine_scores_are_cosines_of_the_projections_over_the_temperature(cosine_kcm):
    refined = torch.randn(2, 5, 6, dtype=torch.double)
    anchors = torch.randn(3, 6, dtype=torch.double)
    captured = cosine_kcm.capture(refined, anchors)
    for b in range(2):
        torch.testing.assert_close(
            captured[b], direct_cosine_capture(cosine_kcm, refined[b], anchors)
        )


@pytest.mark.parametrize("anchor_shape", [(3, 6), (2, 3, 6)])
def test_the_fast_path_equals_the_reference_path_with_cosine_scores(cosine_kcm, anchor_shape):
    tokens = torch.randn(2, 5, 6, dtype=torch.double)
    anchors = torch.randn(*anchor_shape, dtype=torch.double)
    refined = cosine_kcm.refine(tokens)
    expected = cosine_kcm.capture(refined, anchors)
    torch.testing.assert_close(cosine_kcm(tokens, anchors), expected)
    query = cosine_kcm.anchor_query(anchors)
    torch.testing.assert_close(cosine_kcm.attend(refined, query) @ refined, expected)
    cosine_kcm.eval()
    with torch.no_grad():
        torch.testing.assert_close(cosine_kcm(tokens, anchors), expected)


def test_cosine_scores_are_bounded_by_one_over_the_temperature(cosine_kcm):
    scores = cosine_kcm.scores(
        torch.randn(2, 5, 6, dtype=torch.double) * 100, torch.randn(3, 6, dtype=torch.double) * 100
    )
    assert scores.abs().max() <= 1 / 0.2 + 1e-9


def test_unknown_capture_scores_are_refused():
    with pytest.raises(ValueError, match="capture_scores must be one of"):
        KCM(dim=4, capture_scores="l2")


@pytest.mark.parametrize("scores", ["dot", "cosine"])
def test_position_embedding_enters_the_keys_only_on_both_paths(scores):
    torch.manual_seed(3)
    kcm = KCM(dim=6, attn_dim=4, capture_scores=scores, positions=5, position_std=1.0).double()
    tokens = torch.randn(2, 5, 6, dtype=torch.double)
    anchors = torch.randn(3, 6, dtype=torch.double)
    refined = kcm.refine(tokens)
    # eq. 5 with keys (F~ + E) W_tau and values F~
    plain = KCM(dim=6, attn_dim=4, capture_scores=scores).double()
    plain.load_state_dict({k: v for k, v in kcm.state_dict().items() if k != "position"})
    keyed_scores = plain.scores(refined + kcm.position, anchors)
    expected = keyed_scores.softmax(dim=-1) @ refined
    torch.testing.assert_close(kcm.capture(refined, anchors), expected)
    torch.testing.assert_close(kcm(tokens, anchors), expected)
    torch.testing.assert_close(kcm.attend(refined, kcm.anchor_query(anchors)) @ refined, expected)


def test_position_embedding_repeats_over_concatenated_maps_and_refuses_other_sizes():
    kcm = KCM(dim=6, attn_dim=4, positions=5, position_std=1.0).double()
    pool = torch.randn(1, 10, 6, dtype=torch.double)  # two candidate maps (eq. 12)
    query = kcm.anchor_query(torch.randn(3, 6, dtype=torch.double))
    torch.testing.assert_close(
        kcm.attend(pool, query), (query @ (pool + kcm.position.repeat(2, 1)).mT).softmax(-1)
    )
    with pytest.raises(ValueError, match=r"expects feature maps of 5 positions .*got 7"):
        kcm(torch.randn(1, 7, 6, dtype=torch.double), torch.randn(3, 6, dtype=torch.double))
