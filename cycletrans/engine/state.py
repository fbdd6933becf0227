"""The resume state of a training run: written atomically, read back with ``weights_only``.

The state is a plain dict of tensors and Python scalars/lists/dicts (model and optimiser state
dicts, the GradScaler's state, the random number generator states of python/numpy/torch and the
run's :class:`Progress`), stamped with :data:`STATE_VERSION`. :func:`save_resume_state` writes
it to a temporary file in the same folder, flushes it to disk and moves it over the old state
with ``os.replace``, so a run killed at any moment leaves either the previous complete state or
the new one. :func:`load_resume_state` reads it with ``torch.load(weights_only=True)`` (nothing
in it can execute code) and refuses a state of another version.

Example:
    >>> import tempfile, pathlib, torch
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "resume.pt"
    >>> save_resume_state(path, {"progress": Progress(epoch=3).to_dict(), "rng": rng_state()})
    >>> Progress.from_dict(load_resume_state(path)["progress"]).epoch
    3
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cycletrans.files import atomic_write

RESUME_FILE = "resume.pt"
# The layout of the state; states of another version are refused (2: counters in "progress").
STATE_VERSION = 2


@dataclass
class Progress:
    """Where a run stands; saved and restored whole with the resume state.

    ``epoch``: completed epochs; ``position``: steps done in the current epoch; ``sums``: the
    current epoch's loss terms summed over its steps; ``epoch_seconds``: its training time so
    far; ``best_score``/``best_epoch``: the best validation mAP and its (1-based) epoch.
    """

    epoch: int = 0
    position: int = 0
    global_step: int = 0
    best_score: float | None = None
    best_epoch: int | None = None
    sums: dict[str, float] = field(default_factory=dict)
    epoch_seconds: float = 0.0

    def add_step(self, losses: dict[str, float]) -> None:
        """Count one optimiser step and its loss terms."""
        self.position += 1
        self.global_step += 1
        for name, value in losses.items():
            self.sums[name] = self.sums.get(name, 0.0) + value

    def next_epoch(self) -> None:
        """Close the current epoch: the next one starts at step 0 with no sums."""
        self.epoch, self.position, self.sums, self.epoch_seconds = self.epoch + 1, 0, {}, 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Progress:
        return cls(**{**data, "sums": dict(data["sums"])})


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
    legacy = {
        "bit_generator": "MT19937",
        "state": {"key": np_state["key"].numpy().astype(np.uint32), "pos": np_state["pos"]},
        "has_gauss": np_state["has_gauss"],
        "gauss": np_state["gauss"],
    }
    np.random.set_state(legacy)  # noqa: NPY002 (the global state)
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_resume_state(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state``, stamped with :data:`STATE_VERSION`, to ``path`` atomically."""
    with atomic_write(path) as f:
        torch.save({**state, "version": STATE_VERSION}, f)


def load_resume_state(path: str | Path) -> dict[str, Any]:
    """Read a state written by :func:`save_resume_state` (``torch.load(weights_only=True)``).

    Raises FileNotFoundError if there is none and ValueError if the file cannot be read as one
    or was written in another layout (:data:`STATE_VERSION`).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no resume state at {path}: expected the {RESUME_FILE} that a "
            f"training run writes into its output folder"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"{path} is not a readable resume state: {error}") from error
    if not isinstance(state, dict) or "version" not in state:
        raise ValueError(f"{path} is not a resume state: expected a dict with a 'version' entry")
    if state["version"] != STATE_VERSION:
        raise ValueError(
            f"{path} is a resume state of version {state['version']!r}; this "
            f"version of cycletrans reads version {STATE_VERSION} only: finish the "
            f"run with the cycletrans that started it, or start it again"
        )
    return state
