"""Array inputs of the analysis functions: NumPy arrays, lists or torch tensors alike."""

from __future__ import annotations

from typing import Any

import numpy as np


def as_numpy(values: Any) -> np.ndarray:
    """``values`` as a NumPy array (a torch tensor is detached and moved to the CPU)."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values)
