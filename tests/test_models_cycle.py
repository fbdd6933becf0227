"""The cycle construction (eq. 11-12), its gradient routing, and the model-level eval caches."""

import math

import pytest
import torch

from cycletrans.models import ModelOutput, build_model
from cycletrans.preprocessing import Preprocessing

TINY = {"num_anchors": 3, "num_prototypes": 8, "preprocessing": Preprocessing(64, 32)}


def tiny_batch(seed: int = 0):
    """3 identities, unequal numbers of visible/infrared images, shuffled order."""
    torch.manual_seed(seed)
    labels = torch.tensor([2, 0, 1, 0, 2, 1, 0, 2, 1])
    modalities = torch.tensor([1, 0, 0, 1, 0, 1, 0, 1, 1])
    return torch.randn(9, 3, 64, 32), modalities, labels


def direct_eq5(kcm, candidates: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """softmax((A W_theta)(F~ W_tau)^T / sqrt(c)) F~ for one anchor set ``[k,D]``."""
    q = anchors @ kcm.w_theta.weight.T
    key = candidates @ kcm.w_tau.weight.T
    weights = (q @ key.T / math.sqrt(kcm.attn_dim)).softmax(dim=-1)
    return weights @ candidates


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_model("full", "resnet18", num_classes=3, **TINY).double()


def test_reconstructions_follow_eq11_and_eq12_image_by_image(model):
    images, modalities, labels = tiny_batch()
    images = images.double()
    model.eval()  # deterministic BatchNorm, so the pieces can be recomputed
    with torch.no_grad():
        out = model(images, modalities, labels)
        F_I = model.backbone(images, modalities)
        refined = model.kcm.refine(F_I.flatten(2).transpose(1, 2))  # F~
        torch.testing.assert_close(out.captured, model.kcm.capture(refined, model.anchors))
        torch.testing.assert_close(out.patterns, model.head(out.captured))
        for i in range(len(images)):
            # eq. 11: the image's own refined map, the neutral features (before eq. 10)
            torch.testing.assert_close(
                out.recon_same[i], direct_eq5(model.kcm, refined[i], out.patterns[i])
            )
            # eq. 12: the refined maps of the same identity in the other modality
            others = [
                j
                for j in range(len(images))
                if labels[j] == labels[i] and modalities[j] != modalities[i]
            ]
            pool = torch.cat([refined[j] for j in others])
            torch.testing.assert_close(
                out.recon_cross[i], direct_eq5(model.kcm, pool, out.patterns[i])
            )


@pytest.mark.parametrize("cycle_grad", ["anchors", "all"])
def test_the_cycle_candidates_carry_gradient_only_with_cycle_grad_all(cycle_grad):
    torch.manual_seed(0)
    model = build_model("full", "resnet18", num_classes=3, cycle_grad=cycle_grad, **TINY)
    _, modalities, labels = tiny_batch()
    refined = torch.randn(9, 8, 512, requires_grad=True)  # F~ of 9 images with 8 tokens
    neutral = torch.randn(9, 3, 512, requires_grad=True)  # F_N
    same, cross = model.reconstruct(refined, neutral, labels, modalities)
    (same.pow(2).sum() + cross.pow(2).sum()).backward()
    assert neutral.grad.abs().sum() > 0  # the anchor path always carries gradient
    assert model.kcm.w_theta.weight.grad.abs().sum() > 0  # KCM keeps learning from the cycle
    assert model.kcm.w_tau.weight.grad.abs().sum() > 0
    if cycle_grad == "anchors":
        assert refined.grad is None
    else:
        assert refined.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("cycle_grad", "grad_to"),
    [
        ("anchors", {"recon_same", "recon_cross"}),  # targets F' detached
        ("all", {"recon_same", "recon_cross", "captured"}),
        ("authors", {"recon_same", "captured"}),  # L_aln: the reconstruction detached
    ],
)
def test_the_cycle_losses_route_gradients_as_cycle_grad_says(cycle_grad, grad_to):
    model = build_model("full", "resnet18", num_classes=3, cycle_grad=cycle_grad, **TINY)
    _, modalities, labels = tiny_batch()
    leaf = lambda *shape: torch.randn(*shape, requires_grad=True)  # noqa: E731
    out = ModelOutput(
        logits=leaf(9, 3),
        features=leaf(9, 6),
        neck=leaf(9, 6),
        patterns=leaf(9, 3, 2),
        captured=leaf(9, 3, 2),
        recon_same=leaf(9, 3, 2),
        recon_cross=leaf(9, 3, 2),
    )
    terms = model.loss(out, labels, modalities)
    (terms["rec"] + terms["aln"]).backward()
    reached = {
        name
        for name in ("recon_same", "recon_cross", "captured")
        if getattr(out, name).grad is not None and getattr(out, name).grad.abs().sum() > 0
    }
    assert reached == grad_to


def test_with_authors_routing_l_aln_alone_pulls_the_captured_patterns_only():
    model = build_model("full", "resnet18", num_classes=3, cycle_grad="authors", **TINY)
    _, modalities, labels = tiny_batch()
    leaf = lambda *shape: torch.randn(*shape, requires_grad=True)  # noqa: E731
    out = ModelOutput(
        logits=leaf(9, 3),
        features=leaf(9, 6),
        neck=leaf(9, 6),
        patterns=leaf(9, 3, 2),
        captured=leaf(9, 3, 2),
        recon_same=leaf(9, 3, 2),
        recon_cross=leaf(9, 3, 2),
    )
    model.loss(out, labels, modalities)["aln"].backward()
    assert out.recon_cross.grad is None
    # d/dF' of mean ||R - F'|| is (F' - R) / ||F' - R|| / (B k): F' moves toward R
    diff = (out.captured - out.recon_cross).detach()
    expected = diff / diff.norm(dim=-1, keepdim=True) / (9 * 3)
    torch.testing.assert_close(out.captured.grad, expected)


def cycle_gradient_at_backbone_map(cycle_grad: str, state: dict | None) -> tuple:
    """The gradient of L_rec + L_aln reaching F_I (captured with a forward hook)."""
    torch.manual_seed(0)
    model = build_model("full", "resnet18", num_classes=3, cycle_grad=cycle_grad, **TINY)
    if state is not None:
        model.load_state_dict(state)
    maps = []

    def keep(module, inputs, output):
        output.retain_grad()
        maps.append(output)

    model.backbone.register_forward_hook(keep)
    images, modalities, labels = tiny_batch()
    terms = model.loss(model(images, modalities, labels), labels, modalities)
    (terms["rec"] + terms["aln"]).backward()
    return maps[0].grad, model.state_dict()


def test_cycle_losses_reach_the_backbone_through_the_anchor_path():
    grad_anchors, state = cycle_gradient_at_backbone_map("anchors", None)
    grad_all, _ = cycle_gradient_at_backbone_map("all", state)
    assert grad_anchors is not None
    assert grad_anchors.abs().sum() > 0
    # detaching the candidates and targets removes part of the gradient
    assert not torch.allclose(grad_anchors, grad_all)


def test_model_eval_caches_match_uncached_computation_and_follow_weight_changes(model):
    images, modalities, labels = tiny_batch()
    images = images.double()
    model.eval()

    def uncached():
        with torch.enable_grad():  # parameters need grad: no cache is used
            return model.neck(model(images, modalities).features).detach()

    first = model.embed(images[modalities == 1], "infrared")
    assert model.kcm._query_cache.value is not None
    assert model.head._key_cache.value is not None
    torch.testing.assert_close(first, uncached()[modalities == 1])
    # one training step changes every weight in place
    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model.loss(model(images, modalities, labels), labels, modalities)["loss"].backward()
    opt.step()
    model.eval()
    second = model.embed(images[modalities == 1], "infrared")
    assert not torch.allclose(first, second)
    torch.testing.assert_close(second, uncached()[modalities == 1])
    # load_state_dict on the whole model
    state = {k: v + 0.01 if v.is_floating_point() else v for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    third = model.embed(images[modalities == 1], "infrared")
    torch.testing.assert_close(third, uncached()[modalities == 1])
