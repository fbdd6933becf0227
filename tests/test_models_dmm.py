"""DMM (eq. 6-10) and its Table III alternatives against plain computations; eval cache."""

import math

import pytest
import torch
from torch import nn

from cycletrans.models import (
    DMM,
    PrototypeAggregation,
    PrototypeTransformer,
    ResidualPrototypeAggregation,
)


@pytest.fixture
def dmm() -> DMM:
    """The paper's eq. 6-7 as printed."""
    torch.manual_seed(0)
    return DMM(
        dim=6, num_prototypes=10, num_patterns=3, attn_dim=4, discrepancy_norm="none"
    ).double()


@pytest.fixture
def layer_dmm() -> DMM:
    """The default: P' = LayerNorm(P - f^)."""
    torch.manual_seed(0)
    return DMM(dim=6, num_prototypes=10, num_patterns=3, attn_dim=4).double()


def direct_attention(dmm: DMM, features: torch.Tensor) -> torch.Tensor:
    """Eq. 7's A for one image: softmax over prototypes of (F'_i W_psi).(P_j W_sigma)/sqrt(c)."""
    c = dmm.w_psi.out_features
    q = features @ dmm.w_psi.weight.T  # [k, c]
    key = dmm.prototypes @ dmm.w_sigma.weight.T  # [n, c]
    A = torch.zeros(len(features), len(key), dtype=features.dtype)
    for i in range(len(features)):
        scores = torch.stack([torch.dot(q[i], key[j]) / math.sqrt(c) for j in range(len(key))])
        A[i] = torch.exp(scores) / torch.exp(scores).sum()
    return A


def test_parameters_have_the_documented_shapes_and_initialisation():
    torch.manual_seed(0)
    dmm = DMM(dim=32, num_prototypes=2000, num_patterns=7)
    assert dmm.prototypes.shape == (2000, 32)
    assert dmm.prototypes.var().item() == pytest.approx(0.02, rel=0.05)  # "a variance of 0.02"
    assert dmm.discrepancy_norm == "layer"
    assert abs(dmm.prototypes.mean().item()) < 0.002
    torch.testing.assert_close(dmm.pattern_logits.data, torch.zeros(7))
    for layer in (dmm.w_psi, dmm.w_sigma):
        assert isinstance(layer, nn.Linear)
        assert layer.bias is None
        assert layer.out_features == 32  # attn_dim defaults to dim


def test_forward_is_eq6_and_eq7_computed_directly(dmm):
    features = torch.randn(2, 3, 6, dtype=torch.double)
    out = dmm(features)
    for b in range(2):
        F_prime = features[b]
        f_hat = F_prime.mean(dim=0)  # the averaged feature of F'
        P_prime = dmm.prototypes - f_hat  # eq. 6, [n, D]
        A = direct_attention(dmm, F_prime)
        torch.testing.assert_close(out[b], F_prime + A @ P_prime)  # eq. 7


def test_eq8_and_eq9_rewrite_eq7_exactly(dmm):
    features = torch.randn(4, 3, 6, dtype=torch.double)
    A = dmm.attention(features)
    P = dmm.prototypes
    f_hat = features.mean(dim=1, keepdim=True)
    P_prime = P[None] - f_hat  # eq. 6 per image, [B, n, D]
    eq7 = features + A @ P_prime
    eq8 = features + A @ P - A.sum(-1, keepdim=True) * f_hat  # A (P - f^), rows of A sum to 1
    eq9 = (features - f_hat) + A @ P
    torch.testing.assert_close(eq7, eq9)
    torch.testing.assert_close(eq8, eq9)
    torch.testing.assert_close(dmm(features), eq9)


def test_layer_norm_form_is_F_prime_plus_A_times_the_normalised_discrepancy(layer_dmm):
    features = torch.randn(2, 3, 6, dtype=torch.double)
    out = layer_dmm(features)
    for b in range(2):
        F_prime = features[b]
        P_prime = layer_dmm.prototypes - F_prime.mean(dim=0)  # eq. 6, [n, D]
        mean = P_prime.mean(dim=1, keepdim=True)
        variance = ((P_prime - mean) ** 2).mean(dim=1, keepdim=True)  # biased, as LayerNorm
        normalised = (P_prime - mean) / torch.sqrt(variance + 1e-5)
        A = direct_attention(layer_dmm, F_prime)
        torch.testing.assert_close(out[b], F_prime + A @ normalised)


def test_layer_norm_form_keeps_images_apart_where_the_printed_form_collapses(dmm, layer_dmm):
    # Anchors that attend uniformly give k equal rows in F': eq. 9 then leaves only A P,
    # which hardly depends on the image; the normalised discrepancy keeps F'.
    row = torch.randn(5, 1, 6, dtype=torch.double)
    features = row.expand(5, 3, 6)
    spread_printed = dmm(features).std(dim=0).mean()
    spread_layer = layer_dmm(features).std(dim=0).mean()
    assert spread_printed < 0.05 * row.std(dim=0).mean()
    assert spread_layer > 0.5 * row.std(dim=0).mean()


def test_unknown_discrepancy_norm_is_refused():
    with pytest.raises(ValueError, match="discrepancy_norm"):
        DMM(dim=4, num_prototypes=3, num_patterns=2, discrepancy_norm="batch")


def test_attention_is_eq7_with_rows_summing_to_one(dmm):
    features = torch.randn(2, 3, 6, dtype=torch.double)
    A = dmm.attention(features)
    assert A.shape == (2, 3, 10)
    for b in range(2):
        torch.testing.assert_close(A[b], direct_attention(dmm, features[b]))


def test_weight_patterns_is_eq10_softmax_of_the_pattern_logits(dmm):
    neutral = torch.randn(2, 3, 6, dtype=torch.double)
    with torch.no_grad():
        dmm.pattern_logits.copy_(torch.tensor([0.0, 1.0, -2.0]))
    w = torch.tensor([0.0, 1.0, -2.0], dtype=torch.double)
    weights = [math.exp(w[i]) / sum(math.exp(x) for x in w) for i in range(3)]
    out = dmm.weight_patterns(neutral)
    for i in range(3):
        torch.testing.assert_close(out[:, i], weights[i] * neutral[:, i])


@pytest.mark.parametrize("norm", ["none", "layer"])
def test_eval_cache_gives_the_training_mode_output(norm):
    torch.manual_seed(0)
    dmm = DMM(dim=6, num_prototypes=10, num_patterns=3, attn_dim=4, discrepancy_norm=norm).double()
    features = torch.randn(2, 3, 6, dtype=torch.double)
    expected = dmm(features)
    dmm.eval()
    with torch.no_grad():
        torch.testing.assert_close(dmm(features), expected)
        assert dmm._key_cache.value is not None
        assert dmm._key_cache.value.shape == (6, 10)  # the D x n matrix


@pytest.mark.parametrize("change", ["optimizer_step", "load_state_dict", "train_then_step"])
def test_eval_cache_is_dropped_when_the_weights_change(dmm, change):
    features = torch.randn(2, 3, 6, dtype=torch.double)
    dmm.eval()
    with torch.no_grad():
        before = dmm(features)
    opt = torch.optim.Adam(dmm.parameters(), lr=0.1)
    if change == "load_state_dict":
        dmm.load_state_dict({k: torch.randn_like(v) for k, v in dmm.state_dict().items()})
    elif change == "optimizer_step":  # an in-place step while the module stays in eval mode
        for p in dmm.parameters():
            p.grad = torch.randn_like(p)
        opt.step()
    else:
        dmm.train()
        dmm(features).pow(2).sum().backward()
        opt.step()
        dmm.eval()
    with torch.no_grad():
        cached = dmm(features)
    with torch.enable_grad():  # bypasses the cache
        fresh = dmm(features)
    assert not torch.allclose(cached, before)
    torch.testing.assert_close(cached, fresh.detach())


def test_no_cache_in_training_mode(dmm):
    with torch.no_grad():
        dmm(torch.randn(2, 3, 6, dtype=torch.double))
    assert dmm._key_cache.value is None


def test_table3_alternatives_follow_their_formulas():
    torch.manual_seed(0)
    features = torch.randn(2, 3, 6, dtype=torch.double)
    ap = PrototypeAggregation(6, 10, 3).double()
    torch.testing.assert_close(ap(features), ap.attention(features) @ ap.prototypes)
    res = ResidualPrototypeAggregation(6, 10, 3).double()
    torch.testing.assert_close(res(features), features + res.attention(features) @ res.prototypes)
    tr = PrototypeTransformer(6, 10, 3).double()
    attended = tr.w_value(tr.attention(features) @ tr.prototypes)
    x = nn.functional.layer_norm(features + attended, (6,))  # LayerNorm starts at weight 1, bias 0
    y = x + tr.ffn[2](torch.relu(tr.ffn[0](x)))
    torch.testing.assert_close(tr(features), nn.functional.layer_norm(y, (6,)))
    for head in (ap, res, tr):
        assert head.weight_patterns(features).shape == features.shape


@pytest.mark.parametrize("norm", ["none", "layer"])
def test_the_fast_path_equals_the_literal_reference_path(norm):
    torch.manual_seed(3)
    dmm = DMM(dim=6, num_prototypes=10, num_patterns=3, attn_dim=4, discrepancy_norm=norm).double()
    features = torch.randn(2, 3, 6, dtype=torch.double)
    torch.testing.assert_close(dmm(features), dmm.reference(features))
    dmm.eval()
    with torch.no_grad():
        torch.testing.assert_close(dmm(features), dmm.reference(features))


def test_discrepancy_keys_are_the_authors_layer_normalised_query_and_discrepancy():
    torch.manual_seed(4)
    dmm = DMM(dim=6, num_prototypes=10, num_patterns=3, attn_dim=4, dmm_keys="discrepancy").double()
    features = torch.randn(2, 3, 6, dtype=torch.double)
    ln = lambda x: nn.functional.layer_norm(x, (6,))  # noqa: E731
    for b in range(2):
        P_prime = ln(dmm.prototypes - features[b].mean(dim=0))  # [n, D]
        q = ln(features[b]) @ dmm.w_psi.weight.T
        keys = P_prime @ dmm.w_sigma.weight.T
        A = torch.softmax(q @ keys.T / 2.0, dim=1)  # sqrt(c) = 2
        torch.testing.assert_close(dmm(features)[b], features[b] + A @ P_prime)
    # the keys depend on the image: the same F' rows in another image attend differently
    other = features.clone()
    other[1, 0] += torch.linspace(-3, 3, 6, dtype=torch.double)  # moves f^ (not by a constant)
    assert not torch.allclose(
        dmm.scores(features, dmm.discrepancy(features))[1, 1],
        dmm.scores(other, dmm.discrepancy(other))[1, 1],
    )


def test_unknown_dmm_keys_are_refused():
    with pytest.raises(ValueError, match="dmm_keys must be one of"):
        DMM(dim=4, num_prototypes=4, num_patterns=2, dmm_keys="values")
