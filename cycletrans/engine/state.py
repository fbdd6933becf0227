"""The resume state of a training run: written atomically, read back with ``weights_only``.

The state is a plain dict of tensors and Python scalars/lists/dicts (model and optimiser state
dicts, the GradScaler's state, the random number generator states of python/numpy/torch, the
position in the epoch, the running loss sums of the current epoch and the best validation score).
:func:`save_resume_state` writes it to a temporary file in the same folder, flushes it to disk
and moves it over the old state with ``os.replace``, so a run killed at any moment leaves either
the previous complete state or the new one. :func:`load_resume_state` reads it with
``torch.load(weights_only=True)``: nothing in it can execute code.

Example:
    >>> import tempfile, pathlib, torch
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "resume.pt"
    >>> save_resume_state(path, {"epoch": 3, "rng": rng_state()})
    >>> load_resume_state(path)["epoch"]
    3
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

RESUME_FILE = "resume.pt"


def rng_state() -> dict[str, Any]:
    """The states of python's, numpy's and torch's (CPU and CUDA) global generators."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)  # noqa: NPY002 (the global state)
    return {
        "python": [version, list(internal), gauss],
        "numpy": {
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the generator states captured by :func:`rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state({  # noqa: NPY002 (the global state)
        "bit_generator": "MT19937",
        "state": {"key": np_state["key"].numpy().astype(np.uint32), "pos": np_state["pos"]},
        "has_gauss": np_state["has_gauss"],
        "gauss": np_state["gauss"],
    })
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_resume_state(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (temporary file, fsync, ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_resume_state(path: str | Path) -> dict[str, Any]:
    """Read a state written by :func:`save_resume_state` (``torch.load(weights_only=True)``).

    Raises FileNotFoundError if there is none and ValueError if the file cannot be read as one.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no resume state at {path}: expected the {RESUME_FILE} that a "
                                f"training run writes into its output folder")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"{path} is not a readable resume state: {error}") from error
    if not isinstance(state, dict) or "epoch" not in state:
        raise ValueError(f"{path} is not a resume state: expected a dict with an 'epoch' entry")
    return state
