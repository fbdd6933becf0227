"""Each ablation row computes what its row of Table II / III says, checked against plain formulas.

Every variant is built, run on one batch, and its pieces recomputed from its own parameters by
the equations as printed: the pooled or eq. 4-5 feature, the head's F_N (eq. 6-7 with the
layer-normalised discrepancy, or a Table III alternative), the eq. 10 retrieval feature, the
cycles it computes (eq. 11-12) and the value of each loss term it trains with.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as nnf

from cycletrans.losses import (
    alignment_loss,
    identity_loss,
    metric_loss,
    mmd_loss,
    reconstruction_loss,
    separation_loss,
)
from cycletrans.models import VARIANTS, build_model
from cycletrans.models.variants import ABLATION_TABLES
from cycletrans.preprocessing import Preprocessing

TINY = {
    "num_anchors": 3,
    "num_prototypes": 8,
    "attn_dim": 16,
    "preprocessing": Preprocessing(64, 32),
}
KCM_ONLY = ("kcm", "kcm_me", "kcm_me_mmd")
# Table II adds one part per row; Table III keeps the full loss set and changes the head
LOSSES = {
    "baseline": {"id"},
    "kcm": {"id", "sep"},
    "kcm_me": {"id", "sep", "me"},
    "kcm_me_mmd": {"id", "sep", "me", "mmd"},
    "dmm": {"id", "sep", "me", "mmd"},
    "dmm_rec": {"id", "sep", "me", "mmd", "rec"},
    "full": {"id", "sep", "me", "mmd", "rec", "aln"},
    "dmm_ap": {"id", "sep", "me", "mmd", "rec", "aln"},
    "dmm_residual_ap": {"id", "sep", "me", "mmd", "rec", "aln"},
    "transformer": {"id", "sep", "me", "mmd", "rec", "aln"},
}


def batch():
    """2 identities x (2 visible + 2 infrared) images, in double precision."""
    torch.manual_seed(0)
    images = torch.randn(8, 3, 64, 32, dtype=torch.double)
    return images, torch.tensor([0, 0, 1, 1, 0, 0, 1, 1]), torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])


def run(variant: str, **options):
    """The variant in eval mode (deterministic BatchNorm) on the batch, with labels."""
    torch.manual_seed(1)
    model = build_model(variant, "resnet18", num_classes=2, **{**TINY, **options}).double()
    model.eval()
    images, modalities, labels = batch()
    with torch.no_grad():
        out = model(images, modalities, labels)
        tokens = model.backbone(images, modalities)  # F_I [B, d, h, w]
    return model, out, tokens, modalities, labels


def eq4_eq5(tokens: torch.Tensor, anchors: torch.Tensor, kcm) -> torch.Tensor:
    """F' of eq. 4-5, image by image: F~ = softmax(n(F^) n(F^)^T) F^,
    F' = softmax((C W_theta)(F~ W_tau)^T / sqrt(c)) F~."""
    out = []
    for F_hat in tokens.flatten(2).transpose(1, 2):  # [N, d]
        normed = F_hat / F_hat.norm(dim=1, keepdim=True)
        F_tilde = (normed @ normed.T).softmax(dim=1) @ F_hat
        scores = (anchors @ kcm.w_theta.weight.T) @ (F_tilde @ kcm.w_tau.weight.T).T
        out.append((scores / math.sqrt(kcm.w_theta.out_features)).softmax(dim=1) @ F_tilde)
    return torch.stack(out)


def eq7_attention(F_prime: torch.Tensor, head) -> torch.Tensor:
    """A = softmax(F' W_psi (P W_sigma)^T / sqrt(c)): ``[B,k,d] -> [B,k,n]``."""
    keys = head.prototypes @ head.w_sigma.weight.T  # [n, c]
    scores = (F_prime @ head.w_psi.weight.T) @ keys.T
    return (scores / math.sqrt(head.w_psi.out_features)).softmax(dim=-1)


def expected_neutral(variant: str, F_prime: torch.Tensor, head, norm: str) -> torch.Tensor:
    """F_N of the variant's head, from its parameters."""
    A, P = eq7_attention(F_prime, head), head.prototypes
    if variant == "dmm_ap":
        return A @ P
    if variant == "dmm_residual_ap":
        return F_prime + A @ P
    if variant == "transformer":  # X = LN(F' + (AP) W_v), F_N = LN(X + FFN(X))
        X = head.norm1(F_prime + head.w_value(A @ P))
        return head.norm2(X + head.ffn(X))
    discrepancy = P[None] - F_prime.mean(dim=1, keepdim=True)  # P - f^, [B, n, d]
    if norm == "layer":
        discrepancy = nnf.layer_norm(discrepancy, discrepancy.shape[-1:])
    return F_prime + A @ discrepancy  # eq. 7 with P' = discrepancy


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_variant_computes_its_rows_features(variant):
    model, out, F_I, _, _ = run(variant)
    torch.testing.assert_close(out.logits, model.classifier(model.neck(out.features)))
    if variant == "baseline":  # backbone + global average pooling, no head
        assert model.kcm is None
        assert model.head is None
        assert out.patterns is None
        torch.testing.assert_close(out.features, F_I.mean(dim=(2, 3)))
        return
    F_prime = eq4_eq5(F_I, model.anchors, model.kcm)
    torch.testing.assert_close(out.captured, F_prime)
    if variant in KCM_ONLY:  # the k captured patterns themselves are the feature
        assert model.head is None
        torch.testing.assert_close(out.patterns, F_prime)
        torch.testing.assert_close(out.features, F_prime.flatten(1))
        return
    F_N = expected_neutral(variant, F_prime, model.head, "layer")
    torch.testing.assert_close(out.patterns, F_N)
    weights = model.head.pattern_logits.softmax(dim=0)  # eq. 10
    torch.testing.assert_close(out.features, (weights[:, None] * F_N).flatten(1))


@pytest.mark.parametrize("variant", ["dmm", "full", "dmm_ap", "dmm_residual_ap"])
def test_the_printed_discrepancy_changes_only_the_dmm_rows(variant):
    model, out, F_I, _, _ = run(variant, discrepancy_norm="none")
    F_prime = eq4_eq5(F_I, model.anchors, model.kcm)
    torch.testing.assert_close(out.patterns, expected_neutral(variant, F_prime, model.head, "none"))


def test_the_heads_formulas_tell_the_table3_rows_apart():
    """A wrong row would pass the other formula: the checks above discriminate them."""
    model, out, F_I, _, _ = run("dmm_ap")
    F_prime = eq4_eq5(F_I, model.anchors, model.kcm)
    for other in ("dmm_residual_ap", "dmm"):
        wrong = expected_neutral(other, F_prime, model.head, "layer")
        assert not torch.allclose(out.patterns, wrong)


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_variant_trains_with_its_rows_loss_terms_and_cycles(variant):
    model, out, _, modalities, labels = run(variant)
    # the cycles it computes follow its losses: eq. 11 for L_rec, eq. 12 for L_aln
    assert (out.recon_same is not None) == ("rec" in LOSSES[variant])
    assert (out.recon_cross is not None) == ("aln" in LOSSES[variant])
    with torch.no_grad():
        terms = model.loss(out, labels, modalities)
    expected = {"id": identity_loss(out.logits, labels)}
    if "me" in LOSSES[variant]:
        expected["me"] = metric_loss(out.features, labels, 0.5)
    if "sep" in LOSSES[variant]:
        expected["sep"] = separation_loss(out.patterns)
    if "mmd" in LOSSES[variant]:
        expected["mmd"] = mmd_loss(out.features[modalities == 0], out.features[modalities == 1])
    if "rec" in LOSSES[variant]:
        expected["rec"] = reconstruction_loss(out.recon_same, out.captured)
    if "aln" in LOSSES[variant]:
        expected["aln"] = alignment_loss(out.recon_cross, out.captured)
    assert set(terms) == set(expected) | {"loss"}
    for name, value in expected.items():
        torch.testing.assert_close(terms[name], value)
    weights = model.config["options"]["loss_weights"]  # lambda_1..4 of eq. 19
    total = sum(weights.get(name, 1.0) * value for name, value in expected.items())
    torch.testing.assert_close(terms["loss"], total)


def test_the_ablation_tables_list_their_rows_in_the_papers_order():
    assert ABLATION_TABLES[2] == (
        "baseline",
        "kcm",
        "kcm_me",
        "kcm_me_mmd",
        "dmm",
        "dmm_rec",
        "full",
    )
    assert ABLATION_TABLES[3] == ("baseline", "dmm_ap", "dmm_residual_ap", "transformer", "full")
