"""The two modalities of VI-ReID and their integer codes.

Training batches carry a per-image modality tensor (``0`` visible, ``1`` infrared); user-facing
calls take the names ``"visible"`` and ``"infrared"``. RegDB's "thermal" camera is the infrared
modality.

Example:
    >>> modality_index("infrared")
    1
    >>> modality_name(0)
    'visible'
"""

from __future__ import annotations

VISIBLE = 0
INFRARED = 1
MODALITIES = ("visible", "infrared")
_ALIASES = {
    "visible": VISIBLE,
    "rgb": VISIBLE,
    "infrared": INFRARED,
    "ir": INFRARED,
    "thermal": INFRARED,
}


def modality_index(modality: str | int) -> int:
    """Return the integer code (0 visible, 1 infrared) of a modality name or code."""
    if isinstance(modality, int) and modality in (VISIBLE, INFRARED):
        return modality
    if isinstance(modality, str) and modality.lower() in _ALIASES:
        return _ALIASES[modality.lower()]
    raise ValueError(f"unknown modality {modality!r}: expected 'visible' or 'infrared'")


def modality_name(modality: str | int) -> str:
    """Return the canonical name ("visible" or "infrared") of a modality name or code."""
    return MODALITIES[modality_index(modality)]
