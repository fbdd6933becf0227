"""Every ablation row builds and trains one step; options, names and inputs are validated."""

import json

import pytest
import torch

from cycletrans.losses import REGDB_WEIGHTS, SYSU_WEIGHTS
from cycletrans.models import VARIANTS, ReIDModel, build_model
from cycletrans.preprocessing import Preprocessing

TINY = {"num_anchors": 3, "num_prototypes": 8, "preprocessing": Preprocessing(64, 32)}
EXPECTED_TERMS = {
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


def tiny_batch(seed: int = 0):
    """2 identities x (2 visible + 2 infrared) images of 64x32."""
    torch.manual_seed(seed)
    images = torch.randn(8, 3, 64, 32)
    modalities = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1])
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    return images, modalities, labels


def test_variants_are_listed_in_table_order():
    assert VARIANTS == (
        "baseline",
        "kcm",
        "kcm_me",
        "kcm_me_mmd",
        "dmm",
        "dmm_rec",
        "full",
        "dmm_ap",
        "dmm_residual_ap",
        "transformer",
    )


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_builds_and_takes_one_optimisation_step(variant):
    torch.manual_seed(0)
    model = build_model(variant, "resnet18", num_classes=2, **TINY)
    images, modalities, labels = tiny_batch()
    params = [p for p in model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in params]
    opt = torch.optim.Adam(params, lr=1e-3)
    out = model(images, modalities, labels)
    terms = model.loss(out, labels, modalities)
    assert set(terms) == EXPECTED_TERMS[variant] | {"loss"}
    assert all(torch.isfinite(t) for t in terms.values())
    terms["loss"].backward()
    opt.step()
    assert any(not torch.equal(p, b) for p, b in zip(params, before, strict=True))
    assert not model.neck.bias.requires_grad  # BNNeck: bias frozen
    assert model.classifier.bias is None
    dim = 512 if variant == "baseline" else 3 * 512
    assert out.logits.shape == (8, 2)
    assert out.features.shape == (8, dim)
    assert model.embed(images[:2], "visible").shape == (2, dim)


def test_the_total_is_eq19_with_the_chosen_loss_weights():
    images, modalities, labels = tiny_batch()
    for weights in (SYSU_WEIGHTS, REGDB_WEIGHTS):
        model = build_model("full", "resnet18", num_classes=2, loss_weights=weights, **TINY)
        terms = model.loss(model(images, modalities, labels), labels, modalities)
        expected = (
            terms["id"]
            + terms["me"]
            + weights.sep * terms["sep"]
            + weights.mmd * terms["mmd"]
            + weights.rec * terms["rec"]
            + weights.aln * terms["aln"]
        )
        torch.testing.assert_close(terms["loss"], expected)


def test_output_fields_follow_the_variant():
    images, modalities, labels = tiny_batch()
    base = build_model("baseline", "resnet18", num_classes=2, **TINY)(images, modalities, labels)
    assert base.patterns is None
    assert base.captured is None
    assert base.recon_same is None
    kcm = build_model("kcm", "resnet18", num_classes=2, **TINY)(images, modalities, labels)
    assert kcm.patterns is kcm.captured
    assert kcm.recon_cross is None
    rec = build_model("dmm_rec", "resnet18", num_classes=2, **TINY)(images, modalities, labels)
    assert rec.recon_same.shape == (8, 3, 512)
    assert rec.recon_cross is None
    full = build_model("full", "resnet18", num_classes=2, **TINY)
    out = full(images, modalities, labels)
    assert out.recon_same.shape == out.recon_cross.shape == (8, 3, 512)
    # the retrieval feature is the flattened eq. 10-weighted F_N
    torch.testing.assert_close(out.features, full.head.weight_patterns(out.patterns).flatten(1))
    full.eval()  # without labels (evaluation) there is nothing to reconstruct
    assert full(images, modalities).recon_same is None


def test_embed_is_the_bn_neck_output_in_eval_mode_and_restores_the_mode():
    model = build_model("full", "resnet18", num_classes=2, **TINY)
    images, _, _ = tiny_batch()
    model.train()
    feats = model.embed(images, "infrared")
    assert model.training  # restored
    model.eval()
    expected = model.neck(model(images, torch.ones(8, dtype=torch.long)).features)
    torch.testing.assert_close(feats, expected.detach())
    assert not feats.requires_grad


def test_anchor_attention_gives_one_map_per_anchor_that_sums_to_one():
    model = build_model("kcm", "resnet18", num_classes=2, **TINY)
    images, _, _ = tiny_batch()
    maps = model.anchor_attention(images[:2], "visible")
    assert maps.shape == (2, 3, 4, 2)
    torch.testing.assert_close(maps.sum(dim=(2, 3)), torch.ones(2, 3))
    with pytest.raises(ValueError, match="no KCM"):
        build_model("baseline", "resnet18", num_classes=2, **TINY).anchor_attention(images, 0)


def test_config_is_json_serialisable_and_preprocessing_is_kept():
    model = build_model(
        "full",
        "resnet18",
        num_classes=2,
        loss_weights="regdb",
        cycle_grad="all",
        discrepancy_norm="none",
        **TINY,
    )
    config = json.loads(json.dumps(model.config))
    assert config["variant"] == "full"
    assert config["backbone"] == "resnet18"
    assert config["num_classes"] == 2
    assert config["options"] == {
        "num_anchors": 3,
        "num_prototypes": 8,
        "attn_dim": None,
        "margin": 0.5,
        "loss_weights": REGDB_WEIGHTS.to_dict(),
        "cycle_grad": "all",
        "discrepancy_norm": "none",
        "pretrained": False,
        "loss_form": "paper",
        "dmm_keys": "prototypes",
        "refine_temperature": 1.0,
        "capture_scores": "dot",
        "capture_temperature": 0.1,
        "key_position_std": 0.0,
    }
    assert model.preprocessing == Preprocessing(64, 32)
    assert config["preprocessing"] == Preprocessing(64, 32).to_dict()
    assert isinstance(model, ReIDModel)
    assert model.feature_layer is model.backbone.layer4


def test_defaults_are_the_papers_settings():
    model = build_model("full", "resnet18", num_classes=2)
    options = model.config["options"]
    assert (options["num_anchors"], options["num_prototypes"], options["margin"]) == (7, 1024, 0.5)
    assert options["loss_weights"] == SYSU_WEIGHTS.to_dict()
    assert model.preprocessing == Preprocessing(384, 192)
    assert model.anchors.shape == (7, 512)
    assert model.head.prototypes.shape == (1024, 512)
    assert model.anchors.var().item() == pytest.approx(0.02, rel=0.1)  # "a variance of 0.02"
    assert options["discrepancy_norm"] == "layer"


@pytest.mark.parametrize(
    ("args", "options", "message"),
    [
        (("fancy", "resnet18", 2), {}, "valid variants: baseline, kcm, .*transformer"),
        (("full", "vgg", 2), {}, "valid backbones: resnet50, .*, agw, mobilenet_v2"),
        (("full", "resnet18", 2), {"num_anchor": 3}, "unknown options.*num_anchors"),
        (("full", "resnet18", 0), {}, "num_classes must be a positive integer"),
        (("full", "resnet18", 2), {"num_prototypes": 0}, "num_prototypes must be"),
        (("full", "resnet18", 2), {"cycle_grad": "none"}, "cycle_grad must be one of"),
        (("full", "resnet18", 2), {"loss_weights": "market"}, "preset"),
        (("full", "resnet18", 2), {"margin": -1}, "margin"),
        (("full", "resnet18", 2), {"key_position_std": -0.1}, "key_position_std must be non-neg"),
        (("full", "resnet18", 2), {"discrepancy_norm": "batch"}, "discrepancy_norm must be"),
        (("full", "resnet18", 2), {"preprocessing": 5}, "preprocessing"),
    ],
)
def test_unknown_names_and_bad_options_are_refused(args, options, message):
    with pytest.raises(ValueError, match=message):
        build_model(*args, **options)


def test_a_key_position_embedding_has_one_row_per_position_of_the_feature_map():
    model = build_model("full", "resnet18", 2, key_position_std=1.0, **TINY)
    assert model.kcm.position.shape == (4 * 2, 512)  # 64 x 32 at output stride 16
    images, modalities, labels = tiny_batch()
    losses = model.loss(model(images, modalities, labels), labels, modalities)
    losses["loss"].backward()
    assert model.kcm.position.grad.abs().sum() > 0
    assert build_model("full", "resnet18", 2, **TINY).kcm.position is None


def test_bad_batches_are_refused_with_clear_messages():
    model = build_model("full", "resnet18", num_classes=2, **TINY)
    images, modalities, labels = tiny_batch()
    with pytest.raises(ValueError, match=r"images \[B, 3, H, W\]"):
        model(images[:, :1], modalities, labels)
    with pytest.raises(ValueError, match="modalities"):
        model(images, modalities[:3], labels)
    with pytest.raises(ValueError, match="0 or 1"):
        model(images, modalities + 1, labels)
    with pytest.raises(ValueError, match="needs labels"):
        model(images, modalities)
    with pytest.raises(ValueError, match="unknown modality"):
        model.embed(images, "thermal-ish")


def test_an_identity_missing_a_modality_is_named_for_the_cross_modality_cycle():
    images, modalities, labels = tiny_batch()
    modalities = torch.tensor([0, 0, 1, 1, 0, 0, 0, 0])  # identity 1 has no infrared image
    model = build_model("full", "resnet18", num_classes=2, **TINY)
    with pytest.raises(ValueError, match="identity 1 has no infrared image"):
        model(images, modalities, labels)
    # the same-modality cycle alone does not need the other modality
    out = build_model("dmm_rec", "resnet18", num_classes=2, **TINY)(images, modalities, labels)
    assert out.recon_same is not None


def test_the_full_model_trains_on_the_agw_backbone_and_embeds_each_modality():
    torch.manual_seed(0)
    model = build_model("full", "agw", num_classes=2, **TINY)
    images, modalities, labels = tiny_batch()
    terms = model.loss(model(images, modalities, labels), labels, modalities)
    terms["loss"].backward()
    assert model.backbone.stems[0][0].weight.grad.abs().sum() > 0  # visible stem
    assert model.backbone.stems[1][0].weight.grad.abs().sum() > 0  # infrared stem
    visible, infrared = model.embed(images[:2], "visible"), model.embed(images[:2], "infrared")
    assert visible.shape == (2, 3 * 2048)
    # the two stems start as copies, but their BatchNorm statistics saw different images
    assert not torch.allclose(visible, infrared)
