"""The evaluation's input: :func:`cycletrans.engine.extract_features` returns a
:class:`FeatureSet`, the ``extract`` command writes it (``.npz``), the protocols read it.

Example:
    >>> import numpy as np
    >>> feats = FeatureSet(features=np.eye(2, dtype=np.float32), ids=np.array([1, 1]),
    ...                    cams=np.array([1, 3]), frames=np.array([1, 1]),
    ...                    modalities=np.array([0, 1]), paths=np.array(["a.jpg", "b.jpg"]))
    >>> feats.subset(feats.modalities == 1).paths.tolist()
    ['b.jpg']
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cycletrans.files import atomic_write

NPZ_KEYS = ("features", "ids", "cams", "frames", "paths", "modalities")


@dataclass
class FeatureSet:
    """Features of N images with what the protocols need to know about each image.

    Attributes:
        features: ``[N, D]`` float32 retrieval features.
        ids, cams, frames, modalities: ``[N]`` int64 person id, camera, 1-based frame in its
            camera/id folder, modality (0 visible, 1 infrared).
        paths: ``[N]`` image paths (str).
    """

    features: np.ndarray
    ids: np.ndarray
    cams: np.ndarray
    frames: np.ndarray
    modalities: np.ndarray
    paths: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.features)
        if self.features.ndim != 2 or any(len(getattr(self, k)) != n for k in NPZ_KEYS):
            raise ValueError(
                "a FeatureSet needs [N, D] features and N entries in ids, cams, "
                "frames, modalities and paths"
            )

    def subset(self, mask: np.ndarray) -> FeatureSet:
        """The images where ``mask`` ([N] bool) is True (or at the given indices).

        When they form one contiguous run (e.g. one modality of features stored modality by
        modality) the arrays are views of this set's, not copies.
        """
        index = np.asarray(mask)
        if index.dtype == bool:
            if index.shape != (len(self.features),):
                raise ValueError(f"expected a [{len(self.features)}] mask, got {index.shape}")
            index = np.flatnonzero(index)
        if len(index) and (np.diff(index) == 1).all():
            index = slice(int(index[0]), int(index[-1]) + 1)
        return FeatureSet(**{k: getattr(self, k)[index] for k in NPZ_KEYS})

    def save(self, path: str | Path) -> Path:
        """Write the arrays (keys :data:`NPZ_KEYS`) as an ``.npz`` archive at exactly ``path``,
        whatever its suffix (numpy alone would append ``.npz``); returns the path."""
        path = Path(path)
        with atomic_write(path) as f:
            np.savez(f, **{k: getattr(self, k) for k in NPZ_KEYS})
        return path

    @classmethod
    def load(cls, path: str | Path) -> FeatureSet:
        """Read an ``.npz`` written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in NPZ_KEYS if k not in data]
            if missing:
                raise ValueError(f"{path} lacks arrays {missing}; expected {list(NPZ_KEYS)}")
            return cls(**{k: data[k] for k in NPZ_KEYS})
