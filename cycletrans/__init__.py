"""CycleTrans (TNNLS 2024) for visible-infrared person re-identification.

The package is laid out as the data flows: ``cycletrans.data`` (readers, synthetic set, sampler,
transforms) -> ``cycletrans.models`` (backbones, KCM, DMM, variants) -> ``cycletrans.losses``
(eq. 13-19) -> ``cycletrans.engine`` (training) -> ``cycletrans.evaluation`` (official protocols).

The three entry points most users need are importable from the top level; they are loaded on
first use so that ``import cycletrans.evaluation`` stays light.

Example:
    >>> import cycletrans
    >>> model = cycletrans.build_model("full", "resnet18", num_classes=10)  # doctest: +SKIP
    >>> model = cycletrans.load_model("assets/checkpoints/full.safetensors")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["build_model", "load_model", "save_model"]

if TYPE_CHECKING:
    from cycletrans.checkpoint import load_model, save_model
    from cycletrans.models import build_model

_LAZY = {
    "build_model": "cycletrans.models",
    "load_model": "cycletrans.checkpoint",
    "save_model": "cycletrans.checkpoint",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cycletrans' has no attribute {name!r}")
