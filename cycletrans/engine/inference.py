"""Feature extraction: a model's retrieval features for a list of image records.

One function, :func:`extract_features`, serves validation during training, the ``evaluate`` and
``extract`` commands and the app: batched, eval mode, no gradients, test-time preprocessing of
the model (``model.preprocessing``), a progress bar. Each batch holds one modality and is
embedded with ``model.embed(images, modality)``, as two-stream models need.

Example:
    >>> from cycletrans import load_model
    >>> from cycletrans.data import SYSUMM01
    >>> model = load_model("runs/demo/full/best.safetensors")  # doctest: +SKIP
    >>> feats = extract_features(model, SYSUMM01("/data/SYSU-MM01").test)  # doctest: +SKIP
    >>> feats.features.shape  # doctest: +SKIP
    (N, 3584)
    >>> feats.save("test.npz")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from cycletrans.data import ReIDDataset, build_transforms
from cycletrans.data.records import ImageRecord
from cycletrans.evaluation.features import FeatureSet
from cycletrans.modality import MODALITIES


@torch.no_grad()
def extract_features(
    model: nn.Module,
    records: Sequence[ImageRecord],
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    workers: int = 0,
    progress: bool = True,
    desc: str = "features",
) -> FeatureSet:
    """Embed every record's image with ``model.embed`` (eval mode, no gradients).

    Args:
        model: a model with ``embed(images, modality)`` and ``preprocessing`` (e.g. from
            ``cycletrans.load_model``); its train/eval mode is restored afterwards.
        records: the images, e.g. ``SYSUMM01(root).test``.
        batch_size, workers: DataLoader settings.
        device: where the model runs (the model is moved there).
        progress: show a tqdm bar.
        desc: the bar's label.

    Returns:
        A :class:`FeatureSet` in the order of ``records``.
    """
    if len(records) == 0:
        raise ValueError("extract_features needs at least one image record, got none")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    dataset = ReIDDataset(records, build_transforms(model.preprocessing, train=False))
    was_training = model.training
    model.to(device).eval()
    features: list[torch.Tensor | None] = [None] * len(records)
    try:
        with tqdm(total=len(records), desc=desc, disable=not progress, unit="img") as bar:
            for modality, name in enumerate(MODALITIES):
                indices = np.flatnonzero(dataset.modalities == modality).tolist()
                if not indices:
                    continue
                loader = DataLoader(
                    Subset(dataset, indices),
                    batch_size=batch_size,
                    num_workers=workers,
                    generator=torch.Generator(),
                )
                for images, _, _, index in loader:
                    batch = model.embed(images.to(device), name).float().cpu()
                    for row, i in zip(batch, index.tolist(), strict=True):
                        features[i] = row
                    bar.update(len(index))
    finally:
        model.train(was_training)
    return FeatureSet(
        features=torch.stack(features).numpy(),  # type: ignore[arg-type]
        ids=np.array([r.pid for r in records], dtype=np.int64),
        cams=np.array([r.cam for r in records], dtype=np.int64),
        frames=np.array([r.frame for r in records], dtype=np.int64),
        modalities=np.array([r.modality for r in records], dtype=np.int64),
        paths=np.array([str(r.path) for r in records]),
    )
