"""``ModelOptions``: every option of a CycleTrans model, in one frozen, self-validating record.

It is passed whole to ``ReIDModel``, nested in the training config, written as ``"options"`` in
a checkpoint's JSON, and the ``train`` command's model flags are generated from its fields
(``cli.options``). Adding an option means adding a field here (with its ``help``) and using it.

The defaults are the paper as printed, except ``discrepancy_norm`` (see docs/paper-notes.md).
The options that make a model behave like the authors' public code are named in the help of
each field; ``AUTHORS_CODE`` collects them.

Example:
    >>> options = ModelOptions(num_anchors=4, loss_weights="regdb")
    >>> options.loss_weights.rec, ModelOptions.from_dict(options.to_dict()) == options
    (0.1, True)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from cycletrans.losses import LOSS_FORMS, SYSU_WEIGHTS, LossWeights, as_loss_weights
from cycletrans.models.dmm import DISCREPANCY_NORMS, DMM_KEYS
from cycletrans.models.kcm import CAPTURE_SCORES
from cycletrans.preprocessing import Preprocessing

CYCLE_GRADS = ("anchors", "all", "authors")


def _help(text: str, choices: tuple[str, ...] | None = None) -> dict[str, Any]:
    return {"help": text, "choices": choices}


@dataclass(frozen=True)
class ModelOptions:
    """The options of ``build_model`` (see each field's ``help`` metadata)."""

    num_anchors: int = field(default=7, metadata=_help("pseudo anchors k (eq. 5)"))
    num_prototypes: int = field(default=1024, metadata=_help("prototypes n (eq. 6-7)"))
    attn_dim: int | None = field(
        default=None,
        metadata=_help("c of eq. 5 and 7, the output size of the attention projections"),
    )
    margin: float = field(
        default=0.5, metadata=_help("metric-loss margin rho (eq. 14; the authors' code: 0.7)")
    )
    loss_weights: LossWeights = field(
        default=SYSU_WEIGHTS,
        metadata=_help(
            "lambda_1..4 of eq. 19 (L_sep, L_MMD, L_rec, L_aln) and the weight of L_me: a preset "
            "(sysu, regdb, authors) or 4-5 numbers"
        ),
    )
    loss_form: str = field(
        default="paper",
        metadata=_help(
            "'paper': eq. 14-16 as printed; 'authors': as the authors' code computes L_me, L_sep "
            "and L_MMD (see docs/paper-notes.md)",
            LOSS_FORMS,
        ),
    )
    cycle_grad: str = field(
        default="anchors",
        metadata=_help(
            "gradient route of the cycle: 'anchors' (only through the anchor features F_N, the "
            "paper), 'all' (nothing detached) or 'authors' (their code: L_rec trains the "
            "reconstruction, L_aln pulls F' toward the detached cross-modality reconstruction)",
            CYCLE_GRADS,
        ),
    )
    discrepancy_norm: str = field(
        default="layer",
        metadata=_help(
            "P' of eq. 6: 'layer' = LayerNorm(P - f^) as in the authors' code (trains from the "
            "first step), 'none' = as printed (starts degenerate, see docs/paper-notes.md)",
            DISCREPANCY_NORMS,
        ),
    )
    dmm_keys: str = field(
        default="prototypes",
        metadata=_help(
            "keys of DMM's attention (eq. 7): 'prototypes' = P W_sigma as printed; 'discrepancy' = "
            "LayerNorm(P - f^) W_sigma with a layer-normalised query, as the authors' code",
            DMM_KEYS,
        ),
    )
    refine_temperature: float = field(
        default=1.0,
        metadata=_help("temperature of eq. 4's softmax over token cosines (1 = as printed)"),
    )
    capture_scores: str = field(
        default="dot",
        metadata=_help(
            "scores of eq. 5: 'dot' = (A W_theta)(F~ W_tau)^T / sqrt(c) as printed; 'cosine' = "
            "their cosine / --capture-temperature",
            CAPTURE_SCORES,
        ),
    )
    capture_temperature: float = field(
        default=0.1,
        metadata=_help("temperature of eq. 5's cosine scores (with --capture-scores cosine)"),
    )
    key_position_std: float = field(
        default=0.0,
        metadata=_help(
            "initial standard deviation of a learnable position embedding added to eq. 5's keys "
            "(0 = none, as printed)"
        ),
    )
    pretrained: bool = field(default=False, metadata=_help("start from ImageNet weights"))

    def __post_init__(self) -> None:
        # normalise first (frozen: through object.__setattr__), then check
        object.__setattr__(self, "loss_weights", as_loss_weights(self.loss_weights))
        for name in ("margin", "refine_temperature", "capture_temperature", "key_position_std"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number, got {value!r}")
            object.__setattr__(self, name, float(value))
        problems = [
            f"{name} must be a positive integer, got {getattr(self, name)!r}"
            for name in ("num_anchors", "num_prototypes", "attn_dim")
            if not (name == "attn_dim" and self.attn_dim is None)
            and not _positive_int(getattr(self, name))
        ]
        for name in ("margin", "key_position_std"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be non-negative, got {getattr(self, name)}")
        for name in ("refine_temperature", "capture_temperature"):
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be positive, got {getattr(self, name)}")
        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) not in choices:
                problems.append(f"{f.name} must be one of {choices}, got {getattr(self, f.name)!r}")
        if not isinstance(self.pretrained, bool):
            problems.append(f"pretrained must be True or False, got {self.pretrained!r}")
        if problems:
            raise ValueError("invalid model options: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (``loss_weights`` as a dict)."""
        return {**dataclasses.asdict(self), "loss_weights": self.loss_weights.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelOptions:
        """Inverse of :meth:`to_dict`; unknown keys raise ValueError. Missing keys take their
        defaults (checkpoints written before an option existed)."""
        if not isinstance(data, dict):
            raise ValueError(f"model options must be a JSON object, got {type(data).__name__}")
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(
                f"unknown options {unknown}; valid options: "
                f"{', '.join(f.name for f in dataclasses.fields(cls))}"
            )
        return cls(**data)

    def replace(self, **changes: Any) -> ModelOptions:
        """A copy with some options changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


# The options under which a model follows the authors' public code where it differs from the
# paper in training behaviour (their camera embedding and test distance are not offered).
AUTHORS_CODE = {
    "margin": 0.7,
    "loss_weights": "authors",
    "loss_form": "authors",
    "cycle_grad": "authors",
    "dmm_keys": "discrepancy",
    "num_prototypes": 2048,
}


@dataclass(frozen=True)
class ModelSpec:
    """What a checkpoint's JSON describes: the ablation row, the backbone, the number of
    training identities, the options and the input preprocessing."""

    variant: str
    backbone: str
    num_classes: int
    options: ModelOptions = field(default_factory=ModelOptions)
    preprocessing: Preprocessing = field(default_factory=Preprocessing)

    def __post_init__(self) -> None:
        if not _positive_int(self.num_classes):
            raise ValueError(f"num_classes must be a positive integer, got {self.num_classes!r}")
        if not isinstance(self.options, ModelOptions):
            raise ValueError(f"options must be ModelOptions, got {type(self.options).__name__}")
        if not isinstance(self.preprocessing, Preprocessing):
            raise ValueError(
                f"preprocessing must be a Preprocessing, got {type(self.preprocessing).__name__}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint JSON's model description (JSON-serialisable)."""
        return {
            "variant": self.variant,
            "backbone": self.backbone,
            "num_classes": self.num_classes,
            "options": self.options.to_dict(),
            "preprocessing": self.preprocessing.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        """Inverse of :meth:`to_dict`; a missing or malformed entry raises ValueError."""
        try:
            return cls(
                data["variant"],
                data["backbone"],
                data["num_classes"],
                ModelOptions.from_dict(data["options"]),
                Preprocessing.from_dict(data["preprocessing"]),
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"incomplete or malformed model config ({err!r})") from err
