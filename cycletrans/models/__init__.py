"""Models: backbones, KCM (eq. 4-5), DMM (eq. 6-10), Table III heads, ReIDModel and variants.

Example:
    >>> from cycletrans.models import VARIANTS, build_model
    >>> VARIANTS[0], VARIANTS[6]
    ('baseline', 'full')
    >>> build_model("baseline", "resnet18", num_classes=5).classifier.out_features
    5
"""

from cycletrans.models.agw import AGWBackbone, NonLocalBlock
from cycletrans.models.backbones import BACKBONES, build_backbone
from cycletrans.models.dmm import DMM
from cycletrans.models.heads import (
    PrototypeAggregation,
    PrototypeTransformer,
    ResidualPrototypeAggregation,
)
from cycletrans.models.kcm import KCM
from cycletrans.models.mobilenet import MobileNetV2Backbone
from cycletrans.models.options import ModelOptions, ModelSpec
from cycletrans.models.reid_model import ModelOutput, ReIDModel
from cycletrans.models.resnet import ResNetBackbone
from cycletrans.models.variants import (
    VARIANT_TABLE,
    VARIANTS,
    build_model,
    model_from_config,
    model_from_spec,
    model_spec,
)

__all__ = [
    "BACKBONES",
    "DMM",
    "KCM",
    "VARIANTS",
    "VARIANT_TABLE",
    "AGWBackbone",
    "MobileNetV2Backbone",
    "ModelOptions",
    "ModelOutput",
    "ModelSpec",
    "NonLocalBlock",
    "PrototypeAggregation",
    "PrototypeTransformer",
    "ReIDModel",
    "ResNetBackbone",
    "ResidualPrototypeAggregation",
    "build_backbone",
    "build_model",
    "model_from_config",
    "model_from_spec",
    "model_spec",
]
