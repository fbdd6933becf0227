"""The ablation table: one row per model the paper reports, and ``build_model``.

Table II rows (cumulative): ``baseline`` (backbone + GAP + BN-neck classifier, L_id),
``kcm`` (+KCM; L_sep is attached here since the table names no row for it), ``kcm_me``
(+L_me), ``kcm_me_mmd`` (+L_MMD), ``dmm`` (+DMM), ``dmm_rec`` (+L_rec, same-modality cycle),
``full`` (+L_aln, cross-modality cycle). Table III rows, with the full loss set:
``dmm_ap`` (F_N = AP), ``dmm_residual_ap`` (F_N = F' + AP), ``transformer``. Each row carries
its loss set; the cycles a model computes follow from it ("rec" -> eq. 11, "aln" -> eq. 12).

Example:
    >>> model = build_model("kcm", "resnet18", num_classes=10, num_anchors=4)
    >>> model.config["options"]["num_anchors"], model.losses
    (4, ('id', 'sep'))
"""

from __future__ import annotations

from typing import Any

from cycletrans.models.backbones import BACKBONES, build_backbone
from cycletrans.models.dmm import DMM
from cycletrans.models.heads import (
    PrototypeAggregation,
    PrototypeTransformer,
    ResidualPrototypeAggregation,
)
from cycletrans.models.options import ModelOptions, ModelSpec
from cycletrans.models.reid_model import ReIDModel, Variant
from cycletrans.preprocessing import Preprocessing

_KCM_LOSSES = ("id", "sep", "me", "mmd")
_FULL_LOSSES = (*_KCM_LOSSES, "rec", "aln")

VARIANT_TABLE: dict[str, Variant] = {
    "baseline": Variant(kcm=False, head=None, losses=("id",)),
    "kcm": Variant(kcm=True, head=None, losses=("id", "sep")),
    "kcm_me": Variant(kcm=True, head=None, losses=("id", "sep", "me")),
    "kcm_me_mmd": Variant(kcm=True, head=None, losses=_KCM_LOSSES),
    "dmm": Variant(kcm=True, head=DMM, losses=_KCM_LOSSES),
    "dmm_rec": Variant(kcm=True, head=DMM, losses=(*_KCM_LOSSES, "rec")),
    "full": Variant(kcm=True, head=DMM, losses=_FULL_LOSSES),
    "dmm_ap": Variant(kcm=True, head=PrototypeAggregation, losses=_FULL_LOSSES),
    "dmm_residual_ap": Variant(kcm=True, head=ResidualPrototypeAggregation, losses=_FULL_LOSSES),
    "transformer": Variant(kcm=True, head=PrototypeTransformer, losses=_FULL_LOSSES),
}
VARIANTS = tuple(VARIANT_TABLE)
# the rows of the paper's ablation tables, in printed order (Table III's "DMM" row is ``full``)
ABLATION_TABLES: dict[int, tuple[str, ...]] = {
    2: ("baseline", "kcm", "kcm_me", "kcm_me_mmd", "dmm", "dmm_rec", "full"),
    3: ("baseline", "dmm_ap", "dmm_residual_ap", "transformer", "full"),
}


def model_spec(
    variant: str,
    backbone: str,
    num_classes: int,
    preprocessing: Preprocessing | dict | None = None,
    **options: Any,
) -> ModelSpec:
    """Validate a model description: ``variant`` (``VARIANTS``), ``backbone`` (``BACKBONES``),
    ``num_classes``, ``preprocessing`` and the ``ModelOptions`` fields as keywords."""
    if variant not in VARIANT_TABLE:
        raise ValueError(f"unknown variant {variant!r}; valid variants: {', '.join(VARIANTS)}")
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; valid backbones: {', '.join(BACKBONES)}")
    if isinstance(preprocessing, dict):
        preprocessing = Preprocessing.from_dict(preprocessing)
    return ModelSpec(
        variant,
        backbone,
        num_classes,
        ModelOptions.from_dict(options),
        preprocessing or Preprocessing(),
    )


def model_from_spec(spec: ModelSpec, load_pretrained: bool = False) -> ReIDModel:
    """Build the model ``spec`` describes. ImageNet weights are loaded only when
    ``load_pretrained`` is set and the options ask for them (``load_model`` loads its own)."""
    if spec.variant not in VARIANT_TABLE or spec.backbone not in BACKBONES:
        model_spec(spec.variant, spec.backbone, spec.num_classes)  # raises with the valid names
    pretrained = load_pretrained and spec.options.pretrained
    return ReIDModel(build_backbone(spec.backbone, pretrained), VARIANT_TABLE[spec.variant], spec)


def model_from_config(config: dict, load_pretrained: bool = False) -> ReIDModel:
    """Build the model a JSON description (``model.config``, a checkpoint's JSON) describes."""
    return model_from_spec(ModelSpec.from_dict(config), load_pretrained)


def build_model(variant: str, backbone: str, num_classes: int, **options: Any) -> ReIDModel:
    """Build an ablation row of CycleTrans (``VARIANTS``) on a backbone (``BACKBONES``).

    ``options`` are the ``ModelOptions`` fields (``num_anchors`` k = 7, ``num_prototypes``
    n = 1024, ``attn_dim``, ``margin``, ``loss_weights``, ``loss_form``, ``cycle_grad``,
    ``discrepancy_norm``, ``dmm_keys``, ``refine_temperature``, ``capture_scores``,
    ``capture_temperature``, ``pretrained``) and ``preprocessing`` (default 384 x 192, ImageNet
    statistics).

    Example:
        >>> model = build_model("full", "resnet18", num_classes=10, num_prototypes=64)
        >>> model.config["variant"], model.losses[-2:]
        ('full', ('rec', 'aln'))
    """
    return model_from_spec(
        model_spec(variant, backbone, num_classes, **options), load_pretrained=True
    )
