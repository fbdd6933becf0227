"""Models: backbones, KCM (eq. 4-5), DMM (eq. 6-10), Table III heads, ReIDModel and variants.

Example:
    >>> from cycletrans.models import VARIANTS, build_model
    >>> VARIANTS[0], VARIANTS[6]
    ('baseline', 'full')
    >>> build_model("baseline", "resnet18", num_classes=5).classifier.out_features
    5
"""

from cycletrans.models.agw import AGWBackbone, NonLocalBlock
from cycletrans.models.backbones import BACKBONES, ResNetBackbone, build_backbone
from cycletrans.models.dmm import DMM
from cycletrans.models.heads import (
    PrototypeAggregation,
    PrototypeTransformer,
    ResidualPrototypeAggregation,
)
from cycletrans.models.kcm import KCM
from cycletrans.models.reid_model import ModelOutput, ReIDModel
from cycletrans.models.variants import (
    VARIANT_TABLE,
    VARIANTS,
    build_model,
    model_config,
    model_from_config,
)

__all__ = [
    "BACKBONES",
    "DMM",
    "KCM",
    "VARIANTS",
    "VARIANT_TABLE",
    "AGWBackbone",
    "ModelOutput",
    "NonLocalBlock",
    "PrototypeAggregation",
    "PrototypeTransformer",
    "ReIDModel",
    "ResNetBackbone",
    "ResidualPrototypeAggregation",
    "build_backbone",
    "build_model",
    "model_config",
    "model_from_config",
]
