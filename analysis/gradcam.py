"""Where a model looks when it matches two images: Grad-CAM of an embedding similarity (Fig. 5)
and the pseudo anchors' attention maps (eq. 5).

Test identities have no classifier output, so the Grad-CAM target is the cosine similarity of
the two images' retrieval embeddings: the query's heatmap is Grad-CAM (``pytorch_grad_cam``) of
cos(f(query), f(match)) on the query's forward pass with f(match) held fixed, at the target
layer ``model.feature_layer`` (the backbone's last stage); the match's heatmap likewise with the
roles swapped. Heatmaps are ``[H, W]`` float arrays in [0, 1] at the model's input size (Grad-CAM
keeps positive evidence and scales each map to [0, 1]; a map with no positive evidence is 0).

Images are RGB PIL images; they are resized and normalised with the model's test-time
preprocessing (``model.preprocessing``), so the heatmaps align with :func:`model_view`.

Example:
    >>> import cycletrans
    >>> from PIL import Image
    >>> model = cycletrans.build_model("full", "resnet18", num_classes=4, num_anchors=3,
    ...     num_prototypes=8, preprocessing={"height": 64, "width": 32,
    ...                                      "mean": [0.5] * 3, "std": [0.5] * 3}).eval()
    >>> query, match = Image.new("RGB", (32, 64), "red"), Image.new("RGB", (32, 64), "blue")
    >>> query_map, match_map = similarity_cam(model, query, match, "infrared")
    >>> query_map.shape, overlay(model_view(model, query), query_map).shape
    ((64, 32), (64, 32, 3))
    >>> anchors = anchor_maps(model, query, "infrared")
    >>> anchors.maps.shape, anchors.peak >= 1.0
    ((3, 64, 32), True)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as nnf
from PIL import Image
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.image import show_cam_on_image
from torch import nn

from cycletrans.data.transforms import image_batch
from cycletrans.modality import MODALITIES, modality_index


class EmbeddingNet(nn.Module):
    """The retrieval embedding of one modality *with* gradients: ``[B,3,H,W] -> [B,D]``.

    ``model.embed`` runs without gradients; Grad-CAM needs them, so this calls
    ``model.retrieval_feature`` (the same feature, with autograd) in the model's eval mode.
    """

    def __init__(self, model: nn.Module, modality: str | int) -> None:
        super().__init__()
        self.model = model
        self.code = modality_index(modality)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        codes = torch.full((len(images),), self.code, dtype=torch.long, device=images.device)
        return self.model.retrieval_feature(images, codes)


class SimilarityTarget:
    """Grad-CAM target: cosine similarity of an embedding ``[D]`` with a fixed ``reference``."""

    def __init__(self, reference: torch.Tensor) -> None:
        self.reference = nnf.normalize(reference.detach().reshape(-1), dim=0)

    def __call__(self, embedding: torch.Tensor) -> torch.Tensor:
        return nnf.normalize(embedding.reshape(-1), dim=0) @ self.reference


def _check_model(model: nn.Module) -> None:
    if model.training:
        raise ValueError(
            "similarity_cam needs a model in eval mode (BN statistics of the "
            "batch would change the maps): call model.eval() first"
        )


def image_tensor(model: nn.Module, image: Image.Image) -> torch.Tensor:
    """``[1, 3, H, W]`` on the model's device: ``image`` with its test-time preprocessing."""
    return image_batch(image, model.preprocessing).to(next(model.parameters()).device)


def model_view(model: nn.Module, image: Image.Image, height: int | None = None) -> np.ndarray:
    """``[H, W, 3]`` uint8: ``image`` resized to the model's input size (what the maps cover),
    or to its aspect at ``height`` pixels (a larger view to draw the maps on)."""
    p = model.preprocessing
    size = (p.width, p.height) if height is None else (round(p.width * height / p.height), height)
    return np.asarray(image.convert("RGB").resize(size, Image.Resampling.BICUBIC))


def is_flat(heatmap: np.ndarray) -> bool:
    """Whether a map holds no information (constant: e.g. Grad-CAM with zero gradient)."""
    heatmap = np.asarray(heatmap)
    return float(heatmap.max() - heatmap.min()) < 1e-6


def _grad_cam(
    model: nn.Module, images: torch.Tensor, modality: str | int, reference: torch.Tensor
) -> np.ndarray:
    """Grad-CAM ``[H, W]`` of cos(embedding(images[0]), reference) at ``model.feature_layer``."""
    cam = GradCAM(model=EmbeddingNet(model, modality), target_layers=[model.feature_layer])
    try:
        return cam(input_tensor=images, targets=[SimilarityTarget(reference)])[0]
    finally:
        cam.activations_and_grads.release()
        model.zero_grad(set_to_none=True)  # Grad-CAM's backward filled the parameters' .grad


def similarity_cam(
    model: nn.Module,
    query_image: Image.Image,
    match_image: Image.Image,
    query_modality: str | int,
    match_modality: str | int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM heatmaps of the query-match embedding similarity on both images.

    Args:
        model: a model in eval mode with ``feature_layer``, ``neck`` and ``preprocessing``
            (e.g. from ``cycletrans.load_model``).
        query_image, match_image: RGB PIL images.
        query_modality: "visible" or "infrared".
        match_modality: the match's modality; default the other one (cross-modality match).

    Returns:
        ``(query_heatmap, match_heatmap)``, each ``[H, W]`` float32 in [0, 1] at the model's
        input size.
    """
    _check_model(model)
    if match_modality is None:
        match_modality = MODALITIES[1 - modality_index(query_modality)]
    query, match = image_tensor(model, query_image), image_tensor(model, match_image)
    with torch.no_grad():
        query_embedding = EmbeddingNet(model, query_modality)(query)[0]
        match_embedding = EmbeddingNet(model, match_modality)(match)[0]
    return (
        _grad_cam(model, query, query_modality, match_embedding),
        _grad_cam(model, match, match_modality, query_embedding),
    )


def normalise_map(heatmap: np.ndarray) -> np.ndarray:
    """Min-max scale a map to [0, 1] (a constant map becomes 0)."""
    heatmap = np.asarray(heatmap, dtype=np.float32)
    low, high = float(heatmap.min()), float(heatmap.max())
    return (heatmap - low) / (high - low) if high > low else np.zeros_like(heatmap)


class AnchorMaps(NamedTuple):
    """The pseudo anchors' eq. 5 attention over one image.

    ``maps [k, H, W]``: each anchor's weights upsampled to the input size and min-max scaled
    for display (which makes even a nearly uniform map look contrasted); ``peak``: the largest
    weight times the number of feature-map positions, 1.0 for perfectly uniform attention and
    h * w for an anchor that looks at one position only; ``agreement``: the mean cosine between
    two anchors' weights (1.0: the k maps are one map; NaN for a single anchor).
    """

    maps: np.ndarray
    peak: float
    agreement: float


def offdiagonal_cosine(rows: torch.Tensor, reduce: str = "mean") -> torch.Tensor:
    """Cosines between the n rows of each ``[B, n, d]`` item, off the diagonal: ``[B]``, their
    mean or (``reduce="min"``) their minimum; 1.0 when the rows are copies of one another."""
    normed = nnf.normalize(rows, dim=-1)
    off = ~torch.eye(rows.shape[1], dtype=torch.bool, device=rows.device)
    values = (normed @ normed.transpose(1, 2))[:, off]
    return values.min(dim=1).values if reduce == "min" else values.mean(dim=1)


def attention_peak(weights: torch.Tensor) -> torch.Tensor:
    """The largest eq. 5 weight of each image times the number of positions.

    ``weights [B, k, ...]`` (each anchor's weights over the positions sum to 1) -> ``[B]``;
    1.0 for perfectly uniform attention.
    """
    return weights.flatten(1).amax(dim=1) * weights[0, 0].numel()


def anchor_maps(model: nn.Module, image: Image.Image, modality: str | int) -> AnchorMaps:
    """The k pseudo anchors' eq. 5 attention over the image (see :class:`AnchorMaps`).

    ``model.anchor_attention`` gives ``[1, k, h, w]`` weights on the feature map (each anchor's
    sum to 1). Raises ValueError for a model without KCM (the baseline).
    """
    images = image_tensor(model, image)
    weights = model.anchor_attention(images, modality).float()  # [1, k, h, w], eq. 5
    peak = float(attention_peak(weights)[0])
    agreement = float(offdiagonal_cosine(weights.flatten(2))[0])
    upsampled = nnf.interpolate(
        weights, size=images.shape[2:], mode="bilinear", align_corners=False
    )[0]
    maps = np.stack([normalise_map(m) for m in upsampled.cpu().numpy()])
    return AnchorMaps(maps, peak, agreement)


def overlay(image: np.ndarray | Image.Image, heatmap: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Draw ``heatmap`` ([h, w] in [0, 1], jet colours) over ``image``; ``[H, W, 3]`` uint8.

    The heatmap is resized (bilinear) to the image when their sizes differ. ``alpha`` is the
    heatmap's weight.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    rgb = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an [H, W, 3] image, got shape {rgb.shape}")
    heatmap = np.asarray(heatmap, dtype=np.float32)
    if heatmap.ndim != 2:
        raise ValueError(f"expected an [h, w] heatmap, got shape {heatmap.shape}")
    if heatmap.shape != rgb.shape[:2]:
        heatmap = nnf.interpolate(
            torch.from_numpy(heatmap)[None, None],
            size=rgb.shape[:2],
            mode="bilinear",
            align_corners=False,
        )[0, 0].numpy()
    return show_cam_on_image(
        rgb.astype(np.float32) / 255.0,
        np.clip(heatmap, 0.0, 1.0),
        use_rgb=True,
        image_weight=1.0 - alpha,
    )
