"""Procedural visible/infrared pedestrian generator: the project's embedded default dataset.

``generate(out_dir, preset="demo", seed=0, layout="sysu", ids=None, progress=True)`` writes a
SYSU-MM01 (or RegDB) folder tree that the real readers load unchanged. Identity is shared across
modalities through body shape, garments, patterns, accessories and hair; colour is seen only by
the visible cameras, and each garment's infrared intensity is its own thermal level.

Modules: ``streams`` (seeded random streams), ``identities`` (attribute sampling), ``presets``
(sizes, counts, cameras, nuisance strengths), ``scenes`` (backgrounds), ``render`` (one image),
``layout`` (the folder trees), ``derive_counts`` (how ``sysu_counts.csv`` was made).

Example:
    >>> from cycletrans.data.synth import generate
    >>> summary = generate("/tmp/synth", preset="demo", ids="test")  # doctest: +SKIP
"""

from cycletrans.data.synth.layout import Summary, generate
from cycletrans.data.synth.presets import Nuisance, Preset, get_preset

__all__ = ["Nuisance", "Preset", "Summary", "generate", "get_preset"]
