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

from dataclasses import dataclass

from cycletrans.losses import SYSU_WEIGHTS, as_loss_weights
from cycletrans.models.backbones import BACKBONES, build_backbone
from cycletrans.models.dmm import DISCREPANCY_NORMS, DMM
from cycletrans.models.heads import (
    PrototypeAggregation,
    PrototypeTransformer,
    ResidualPrototypeAggregation,
)
from cycletrans.models.reid_model import CYCLE_GRADS, ReIDModel
from cycletrans.preprocessing import Preprocessing


@dataclass(frozen=True)
class Variant:
    """One ablation row: whether it has KCM, which F' -> F_N head, which loss terms."""

    kcm: bool
    head: type[DMM] | None
    losses: tuple[str, ...]


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

DEFAULT_OPTIONS = {
    "num_anchors": 7,
    "num_prototypes": 1024,
    "attn_dim": None,
    "margin": 0.5,
    "loss_weights": SYSU_WEIGHTS,
    "cycle_grad": "anchors",
    "discrepancy_norm": "layer",
    "pretrained": False,
    "preprocessing": Preprocessing(),
}


def _positive_int(name: str, value: object, optional: bool = False) -> int | None:
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def model_config(variant: str, backbone: str, num_classes: int, **options: object) -> dict:
    """Validate a model description and return it as a JSON-serialisable dict:
    ``{"variant", "backbone", "num_classes", "options": {...}, "preprocessing": {...}}``."""
    if variant not in VARIANT_TABLE:
        raise ValueError(f"unknown variant {variant!r}; valid variants: {', '.join(VARIANTS)}")
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; valid backbones: {', '.join(BACKBONES)}")
    unknown = sorted(set(options) - set(DEFAULT_OPTIONS))
    if unknown:
        raise ValueError(f"unknown options {unknown}; valid options: {', '.join(DEFAULT_OPTIONS)}")
    opts = {**DEFAULT_OPTIONS, **options}
    if opts["cycle_grad"] not in CYCLE_GRADS:
        raise ValueError(f"cycle_grad must be one of {CYCLE_GRADS}, got {opts['cycle_grad']!r}")
    if opts["discrepancy_norm"] not in DISCREPANCY_NORMS:
        raise ValueError(f"discrepancy_norm must be one of {DISCREPANCY_NORMS}, "
                         f"got {opts['discrepancy_norm']!r}")
    if isinstance(opts["margin"], bool) or not isinstance(opts["margin"], int | float) \
            or opts["margin"] < 0:
        raise ValueError(f"margin must be a non-negative number, got {opts['margin']!r}")
    if not isinstance(opts["pretrained"], bool):
        raise ValueError(f"pretrained must be True or False, got {opts['pretrained']!r}")
    preprocessing = opts["preprocessing"]
    if isinstance(preprocessing, dict):
        preprocessing = Preprocessing.from_dict(preprocessing)
    if not isinstance(preprocessing, Preprocessing):
        raise ValueError(f"preprocessing must be a Preprocessing or a dict, got {preprocessing!r}")
    return {
        "variant": variant,
        "backbone": backbone,
        "num_classes": _positive_int("num_classes", num_classes),
        "options": {
            "num_anchors": _positive_int("num_anchors", opts["num_anchors"]),
            "num_prototypes": _positive_int("num_prototypes", opts["num_prototypes"]),
            "attn_dim": _positive_int("attn_dim", opts["attn_dim"], optional=True),
            "margin": float(opts["margin"]),
            "loss_weights": as_loss_weights(opts["loss_weights"]).to_dict(),
            "cycle_grad": opts["cycle_grad"],
            "discrepancy_norm": opts["discrepancy_norm"],
            "pretrained": opts["pretrained"],
        },
        "preprocessing": preprocessing.to_dict(),
    }


def model_from_config(config: dict, load_pretrained: bool = False) -> ReIDModel:
    """Build the model a config describes (as written by ``model_config``).

    ImageNet weights are fetched only when ``load_pretrained`` is set and the config asks for
    them; ``load_model`` builds with ``load_pretrained=False`` and then loads its own weights.
    """
    try:
        config = model_config(config["variant"], config["backbone"], config["num_classes"],
                              preprocessing=config["preprocessing"], **config["options"])
    except (KeyError, TypeError) as err:
        raise ValueError(f"incomplete or malformed model config ({err!r}): {config!r}") from err
    opts = config["options"]
    row = VARIANT_TABLE[config["variant"]]
    backbone = build_backbone(config["backbone"], pretrained=load_pretrained and opts["pretrained"])
    return ReIDModel(
        backbone,
        config["num_classes"],
        use_kcm=row.kcm,
        head=row.head,
        losses=row.losses,
        num_anchors=opts["num_anchors"],
        num_prototypes=opts["num_prototypes"],
        attn_dim=opts["attn_dim"],
        margin=opts["margin"],
        loss_weights=as_loss_weights(opts["loss_weights"]),
        cycle_grad=opts["cycle_grad"],
        discrepancy_norm=opts["discrepancy_norm"],
        preprocessing=Preprocessing.from_dict(config["preprocessing"]),
        config=config,
    )


def build_model(variant: str, backbone: str, num_classes: int, **options: object) -> ReIDModel:
    """Build an ablation row of CycleTrans (``VARIANTS``) on a backbone (``BACKBONES``).

    Options: ``num_anchors`` (k, 7), ``num_prototypes`` (n, 1024), ``attn_dim`` (c, default d),
    ``margin`` (rho of eq. 14, 0.5), ``loss_weights`` (lambda_1..4 of eq. 19: a
    ``LossWeights``, "sysu" (default) or "regdb", a dict or four numbers), ``cycle_grad``
    ("anchors" or "all", see ``reid_model``), ``discrepancy_norm`` ("layer" or "none": P' of
    eq. 6 layer-normalised, or as printed; see ``dmm``), ``pretrained`` (ImageNet weights, False),
    ``preprocessing`` (a ``Preprocessing``; default 384x192, ImageNet statistics).

    Example:
        >>> model = build_model("full", "resnet18", num_classes=10, num_prototypes=64)
        >>> model.config["variant"], model.losses[-2:]
        ('full', ('rec', 'aln'))
    """
    config = model_config(variant, backbone, num_classes, **options)
    return model_from_config(config, load_pretrained=True)
