"""Independent seeded random streams: one per (seed, purpose, keys).

Nothing in the generator draws from a global or sequential random state. Every decision is
drawn from a NumPy ``Generator`` built from ``SeedSequence([purpose, seed, *keys])``, so an
identity's attributes depend only on ``(seed, pid)`` and an image only on ``(seed, pid, cam, n)``:
generating one identity alone or together with all others gives byte-identical files.

Example:
    >>> a = stream(0, IDENTITY, 7).random()
    >>> a == stream(0, IDENTITY, 7).random() != stream(0, IDENTITY, 8).random()
    True
"""

from __future__ import annotations

import numpy as np

# Purposes: the first word of every seed sequence, so that streams never collide.
SPLIT = 1  # (seed): the demo identity split
COUNTS = 2  # (seed, pid): which cameras an identity appears in, and how often
IDENTITY = 3  # (seed, pid): the person's attributes
SCENE = 4  # (seed, scene): a camera's background scene
POSE = 5  # (seed, pid, cam, n): pose, viewpoint, framing (cam 0: shared by a RegDB pair)
LOOK = 6  # (seed, pid, cam, n): illumination, occlusion, blur, noise
REGDB_TRIAL = 7  # (seed, trial): a RegDB train/test split


def check_seed(seed: object) -> int:
    """Return ``seed`` if it is a non-negative integer, else raise ``ValueError``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def stream(seed: int, purpose: int, *keys: int) -> np.random.Generator:
    """Return the random generator of ``purpose`` for ``seed`` and ``keys`` (all integers >= 0)."""
    return np.random.default_rng(np.random.SeedSequence([purpose, seed, *keys]))
