"""Each loss (eq. 13-19) against a plain computation with loops, plus weights and bad input."""

import math

import pytest
import torch

from cycletrans.losses import (
    AUTHORS_WEIGHTS,
    REGDB_WEIGHTS,
    SYSU_WEIGHTS,
    LossWeights,
    alignment_loss,
    as_loss_weights,
    authors_separation_loss,
    center_cluster_loss,
    identity_loss,
    metric_loss,
    mmd_loss,
    reconstruction_loss,
    separation_loss,
    weighted_total,
)


def dist(a: torch.Tensor, b: torch.Tensor) -> float:
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a.tolist(), b.tolist(), strict=True)))


def test_identity_loss_is_eq13_mean_negative_log_likelihood():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    labels = torch.tensor([0, 1])
    expected = 0.0
    for row, y in zip(logits.tolist(), labels.tolist(), strict=True):
        expected -= math.log(math.exp(row[y]) / sum(math.exp(v) for v in row))
    assert identity_loss(logits, labels).item() == pytest.approx(expected / 2, rel=1e-6)


def test_metric_loss_is_eq14_with_batch_class_centres():
    torch.manual_seed(0)
    feats = torch.randn(6, 4, dtype=torch.double)
    labels = torch.tensor([3, 3, 3, 7, 7, 9])
    margin = 2.5  # large enough that some hinges are active and some are not
    B = len(feats)
    centre = {y: feats[labels == y].mean(0) for y in labels.tolist()}
    total = 0.0
    for i in range(B):
        for j in range(B):
            if labels[i] == labels[j]:
                continue
            value = (
                margin
                - dist(feats[i], feats[j])
                + dist(feats[i], centre[labels[i].item()])
                + dist(feats[j], centre[labels[j].item()])
            )
            total += max(value, 0.0)
    assert metric_loss(feats, labels, margin).item() == pytest.approx(total / B**2, rel=1e-9)


def test_metric_loss_default_margin_is_half_and_single_identity_batches_give_zero():
    feats = torch.zeros(4, 3)
    labels = torch.tensor([0, 0, 1, 1])
    # all features equal: every pair of different identities contributes rho = 0.5
    assert metric_loss(feats, labels).item() == pytest.approx(0.5 * 8 / 16)
    assert metric_loss(torch.randn(3, 2), torch.tensor([1, 1, 1])).item() == 0.0
    feats = torch.zeros(4, 3, requires_grad=True)  # zero distances keep gradients finite
    metric_loss(feats, labels).backward()
    assert torch.isfinite(feats.grad).all()


def test_separation_loss_is_eq15_over_all_patterns_but_the_last():
    torch.manual_seed(0)
    patterns = torch.randn(3, 5, 4, dtype=torch.double)
    B, k, _ = patterns.shape
    per_image = []
    for b in range(B):
        s = 0.0
        for i in range(k - 2):  # 0-based i = 0..k-3, j = i+1..k-2: patterns 1..k-1 of the paper
            for j in range(i + 1, k - 1):
                a, c = patterns[b, i], patterns[b, j]
                s += torch.dot(a, c).item() / (a.norm().item() * c.norm().item())
        per_image.append(s / k**2)
    expected = sum(per_image) / B
    assert separation_loss(patterns).item() == pytest.approx(expected, rel=1e-9)
    changed = patterns.clone()
    changed[:, -1] = torch.randn(3, 4, dtype=torch.double)  # the global pattern is left out
    assert separation_loss(changed).item() == pytest.approx(expected, rel=1e-9)


def test_separation_loss_is_zero_without_a_pair_of_patterns():
    assert separation_loss(torch.randn(2, 2, 4)).item() == 0.0


def direct_mmd(x: torch.Tensor, y: torch.Tensor) -> float:
    pooled = torch.cat([x, y]).tolist()
    N = len(pooled)
    sq = [[sum((a - b) ** 2 for a, b in zip(p, q, strict=True)) for q in pooled] for p in pooled]
    base = sum(sq[i][j] for i in range(N) for j in range(N) if i != j) / (N * (N - 1))
    scales = [base * 2.0**e for e in (-2, -1, 0, 1, 2)]

    def k(i: int, j: int) -> float:
        return sum(math.exp(-sq[i][j] / s) for s in scales) / len(scales)

    n = len(x)
    vv = sum(k(i, j) for i in range(n) for j in range(n)) / n**2
    rr = sum(k(i, j) for i in range(n, N) for j in range(n, N)) / (N - n) ** 2
    vr = sum(k(i, j) for i in range(n) for j in range(n, N)) / (n * (N - n))
    return vv + rr - 2 * vr


def test_mmd_loss_is_eq16_multi_kernel_biased_estimate():
    torch.manual_seed(0)
    x = torch.randn(4, 3, dtype=torch.double)
    y = torch.randn(3, 3, dtype=torch.double) + 1.0
    assert mmd_loss(x, y).item() == pytest.approx(direct_mmd(x, y), rel=1e-9)


def test_mmd_loss_is_zero_for_equal_sets_and_grows_with_a_shift():
    torch.manual_seed(0)
    x = torch.randn(5, 3)
    assert mmd_loss(x, x.clone()).item() == pytest.approx(0.0, abs=1e-6)
    assert mmd_loss(x, x + 3.0) > mmd_loss(x, x + 0.5) > 0


def test_mmd_bandwidth_carries_no_gradient():
    x = torch.randn(3, 2, requires_grad=True)
    y = torch.randn(3, 2)
    (grad,) = torch.autograd.grad(mmd_loss(x, y), x)
    # reference: the same estimate with the bandwidth base fixed to a constant
    pooled = torch.cat([x, y]).detach()
    sq_all = torch.cdist(pooled, pooled).pow(2)
    base = sq_all.sum() / (6 * 5)

    def mmd_fixed(xx):
        p = torch.cat([xx, y])
        sq = torch.cdist(p, p).pow(2)
        kern = sum(torch.exp(-sq / (base * s)) for s in (0.25, 0.5, 1, 2, 4)) / 5
        return kern[:3, :3].mean() + kern[3:, 3:].mean() - 2 * kern[:3, 3:].mean()

    (expected,) = torch.autograd.grad(mmd_fixed(x), x)
    torch.testing.assert_close(grad, expected)


def test_mmd_loss_refuses_an_empty_modality():
    with pytest.raises(ValueError, match="0 infrared"):
        mmd_loss(torch.randn(3, 2), torch.randn(0, 2))
    with pytest.raises(ValueError, match="0 visible"):
        mmd_loss(torch.randn(0, 2), torch.randn(3, 2))


def test_reconstruction_loss_is_eq17_mean_absolute_error():
    torch.manual_seed(0)
    recon, target = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    values = [
        abs(a - b) for a, b in zip(recon.flatten().tolist(), target.flatten().tolist(), strict=True)
    ]
    assert reconstruction_loss(recon, target).item() == pytest.approx(sum(values) / len(values))


def test_alignment_loss_is_eq18_mean_euclidean_distance_per_pattern():
    torch.manual_seed(0)
    recon, target = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    values = [dist(recon[b, i], target[b, i]) for b in range(2) for i in range(3)]
    assert alignment_loss(recon, target).item() == pytest.approx(sum(values) / 6, rel=1e-6)
    same = torch.zeros(1, 2, 3, requires_grad=True)
    alignment_loss(same, torch.zeros(1, 2, 3)).backward()
    assert torch.isfinite(same.grad).all()


def test_presets_and_eq19_total():
    assert LossWeights(0.3, 0.7, 0.15, 0.2) == SYSU_WEIGHTS
    assert LossWeights(0.2, 0.8, 0.1, 0.1) == REGDB_WEIGHTS
    terms = {
        name: torch.tensor(float(i + 1))
        for i, name in enumerate(["id", "me", "sep", "mmd", "rec", "aln"])
    }
    expected = 1 + 2 + 0.3 * 3 + 0.7 * 4 + 0.15 * 5 + 0.2 * 6
    assert weighted_total(terms, SYSU_WEIGHTS).item() == pytest.approx(expected)
    assert weighted_total({"id": torch.tensor(2.0)}, REGDB_WEIGHTS).item() == 2.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("sysu", SYSU_WEIGHTS),
        ("RegDB", REGDB_WEIGHTS),
        ({"sep": 1, "mmd": 2, "rec": 3, "aln": 4}, LossWeights(1.0, 2.0, 3.0, 4.0)),
        ([0.2, 0.8, 0.1, 0.1], REGDB_WEIGHTS),
        (SYSU_WEIGHTS, SYSU_WEIGHTS),
        ("authors", LossWeights(sep=0.3, mmd=0.7, rec=1.0, aln=0.15, me=0.2)),
        ([0.3, 0.7, 1.0, 0.15, 0.2], AUTHORS_WEIGHTS),
        ({"sep": 1, "mmd": 2, "rec": 3, "aln": 4, "me": 5}, LossWeights(1, 2, 3, 4, 5)),
    ],
)
def test_loss_weights_can_be_given_as_preset_dict_or_numbers(value, expected):
    assert as_loss_weights(value) == expected


@pytest.mark.parametrize(
    "value", ["market1501", {"sep": 1.0}, [1.0, 2.0], 3.0, [1, 2, 3, -4], [1, 2, 3, True]]
)
def test_bad_loss_weights_are_refused(value):
    with pytest.raises(ValueError, match="loss"):
        as_loss_weights(value)


def test_unknown_loss_term_is_refused():
    with pytest.raises(ValueError, match="unknown loss term 'tri'"):
        weighted_total({"tri": torch.tensor(1.0)}, SYSU_WEIGHTS)


def test_the_me_weight_scales_l_me_in_eq19():
    terms = {"id": torch.tensor(1.0), "me": torch.tensor(10.0), "rec": torch.tensor(1.0)}
    assert weighted_total(terms, AUTHORS_WEIGHTS).item() == pytest.approx(1 + 0.2 * 10 + 1.0)


def test_center_cluster_loss_is_the_authors_l_me_with_per_pattern_centre_distances():
    torch.manual_seed(0)
    patterns = torch.randn(6, 3, 4, dtype=torch.double)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    spread = []
    for i in range(6):
        same = patterns[labels == labels[i]]
        spread.append(sum((patterns[i, p] - same[:, p].mean(0)).norm() for p in range(3)))
    hinges = []
    for i in range(6):
        for j in range(6):
            if labels[i] != labels[j]:
                d = (patterns[i].flatten() - patterns[j].flatten()).norm()
                hinges.append(max(0.7 - d + spread[i] + spread[j], 0.0))
    expected = sum(hinges) / len(hinges)
    assert center_cluster_loss(patterns, labels, 0.7).item() == pytest.approx(float(expected))


def test_authors_separation_loss_drops_the_first_pattern_and_clamps_negative_cosines():
    patterns = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, -1.0]]])
    # pairs among patterns 2..4: (2,3) cos 0, (2,4) cos 0, (3,4) cos -1 -> clamped to 0
    assert authors_separation_loss(patterns).item() == 0.0
    patterns[0, 3] = torch.tensor([1.0, 1.0])
    expected = (0 + 2**-0.5 + 2**-0.5) / 3  # (k-1)(k-2)/2 = 3 pairs
    assert authors_separation_loss(patterns).item() == pytest.approx(expected)
    patterns[0, 0] = torch.tensor([-5.0, 3.0])  # the first pattern is left out
    assert authors_separation_loss(patterns).item() == pytest.approx(expected)


def test_mmd_with_summed_kernels_is_five_times_the_mean_form():
    torch.manual_seed(0)
    x, y = torch.randn(4, 3, dtype=torch.double), torch.randn(3, 3, dtype=torch.double) + 1
    assert mmd_loss(x, y, kernel_sum=True).item() == pytest.approx(5 * mmd_loss(x, y).item())
