"""The training objectives of CycleTrans (paper section IV-E, eq. 13-19), one function each.

All functions take batched tensors and return a scalar tensor. ``LossWeights`` holds
lambda_1..4 of eq. 19 and ``weighted_total`` applies them; ``L_id`` and ``L_me`` have weight 1.

Example:
    >>> import torch
    >>> feats, labels = torch.randn(4, 8), torch.tensor([0, 0, 1, 1])
    >>> metric_loss(feats, labels).shape
    torch.Size([])
    >>> weighted_total({"id": torch.tensor(1.0), "sep": torch.tensor(1.0)}, SYSU_WEIGHTS)
    tensor(1.3000)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as nnf

LOSS_NAMES = ("id", "me", "sep", "mmd", "rec", "aln")
LOSS_FORMS = ("paper", "authors")  # eq. 14-16 as printed, or as the authors' code computes them
MMD_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)  # bandwidths = base x 2^{-2..2}


@dataclass(frozen=True)
class LossWeights:
    """lambda_1..4 of eq. 19 (weights of L_sep, L_MMD, L_rec, L_aln) and the weight of L_me
    (1 in eq. 19; 0.2 in the authors' code)."""

    sep: float
    mmd: float
    rec: float
    aln: float
    me: float = 1.0

    def factor(self, name: str) -> float:
        """The weight of the loss term ``name`` (one of ``LOSS_NAMES``) in eq. 19."""
        if name == "id":
            return 1.0
        if name not in LOSS_NAMES:
            raise ValueError(f"unknown loss term {name!r}; valid: {', '.join(LOSS_NAMES)}")
        return getattr(self, name)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


SYSU_WEIGHTS = LossWeights(sep=0.3, mmd=0.7, rec=0.15, aln=0.2)
REGDB_WEIGHTS = LossWeights(sep=0.2, mmd=0.8, rec=0.1, aln=0.1)
# The authors' code: L_rec x1.0, L_aln x0.15, L_me x0.2 (the paper's 0.15 and 0.2 land on L_aln
# and L_me there), L_sep x0.3, L_MMD x0.7.
AUTHORS_WEIGHTS = LossWeights(sep=0.3, mmd=0.7, rec=1.0, aln=0.15, me=0.2)
LOSS_WEIGHT_PRESETS = {"sysu": SYSU_WEIGHTS, "regdb": REGDB_WEIGHTS, "authors": AUTHORS_WEIGHTS}


def as_loss_weights(value: LossWeights | str | Mapping | Sequence[float]) -> LossWeights:
    """Read loss weights from a ``LossWeights``, a preset name (``LOSS_WEIGHT_PRESETS``), a
    mapping with keys sep/mmd/rec/aln (and optionally me), or a sequence of four or five values
    in that order. Weights must be non-negative numbers."""
    if isinstance(value, str):
        if value.lower() not in LOSS_WEIGHT_PRESETS:
            raise ValueError(
                f"unknown loss-weight preset {value!r}; valid: {', '.join(LOSS_WEIGHT_PRESETS)}"
            )
        return LOSS_WEIGHT_PRESETS[value.lower()]
    names = ("sep", "mmd", "rec", "aln", "me")
    if isinstance(value, LossWeights):
        values = [getattr(value, k) for k in names]
    elif isinstance(value, Mapping) and set(names[:4]) <= set(value) <= set(names):
        values = [value[k] for k in names if k in value]
    elif isinstance(value, Sequence) and len(value) in (4, 5):
        values = list(value)
    else:
        raise ValueError(
            f"loss_weights must be a LossWeights, a preset ({', '.join(LOSS_WEIGHT_PRESETS)}), "
            f"a dict with keys sep/mmd/rec/aln[/me] or four or five numbers; got {value!r}"
        )
    if any(isinstance(v, bool) or not isinstance(v, int | float) or v < 0 for v in values):
        raise ValueError(f"loss weights must be non-negative numbers, got {value!r}")
    return LossWeights(*(float(v) for v in values))


def identity_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Eq. 13: cross-entropy of ``logits [B,C]`` against ``labels [B]``."""
    return nnf.cross_entropy(logits, labels)


def _class_means(features: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
    """Mean of ``features [B,D]`` per class index ``inverse [B]`` (0..P-1): ``[P,D]``."""
    count = int(inverse.max()) + 1
    sums = features.new_zeros(count, features.shape[1]).index_add(0, inverse, features)
    return sums / torch.bincount(inverse, minlength=count).to(features.dtype)[:, None]


def metric_loss(features: torch.Tensor, labels: torch.Tensor, margin: float = 0.5) -> torch.Tensor:
    """Eq. 14 on ``features [B,D]`` with identity ``labels [B]``:

    1/B^2 sum_{i, j: y_i != y_j} [rho - d(f_i, f_j) + d(f_i, c_i) + d(f_j, c_j)]_+,
    d Euclidean, c_i the mean feature of i's identity in the batch (both modalities).
    """
    B = len(features)
    _, inverse = labels.unique(return_inverse=True)
    centres = _class_means(features, inverse)  # c [P, D]
    to_centre = torch.linalg.vector_norm(features - centres[inverse], dim=1)  # d(f_i, c_i)
    pair = torch.cdist(features, features)  # d(f_i, f_j) [B, B]
    hinge = (margin - pair + to_centre[:, None] + to_centre[None, :]).clamp_min(0)
    different = labels[:, None] != labels[None, :]
    return (hinge * different).sum() / B**2


def center_cluster_loss(
    patterns: torch.Tensor, labels: torch.Tensor, margin: float = 0.7
) -> torch.Tensor:
    """L_me as the authors' code computes it, on ``patterns [B,k,D]`` with ``labels [B]``:

    the mean over pairs (i, j) of different identities of
    [rho - d(f_i, f_j) + s_i + s_j]_+, with d the Euclidean distance of the flattened features
    and s_i = sum over the k patterns of the distance of pattern p of i to its identity's
    batch centre of pattern p.
    """
    _, inverse = labels.unique(return_inverse=True)
    centres = _class_means(patterns.flatten(1), inverse).view(-1, *patterns.shape[1:])
    spread = torch.linalg.vector_norm(patterns - centres[inverse], dim=-1).sum(dim=1)  # s_i
    pair = torch.cdist(patterns.flatten(1), patterns.flatten(1))
    hinge = (margin - pair + spread[:, None] + spread[None, :]).clamp_min(0)
    return hinge[labels[:, None] != labels[None, :]].mean()


def authors_separation_loss(patterns: torch.Tensor) -> torch.Tensor:
    """L_sep as the authors' code computes it, on ``patterns [B,k,D]``: the cosines of the
    pairs among patterns 2..k (the *first* is left out), negatives clamped to 0, averaged over
    the (k-1)(k-2)/2 pairs and the batch."""
    normed = nnf.normalize(patterns[:, 1:], dim=-1)
    cosine = (normed @ normed.transpose(1, 2)).clamp_min(0)
    upper = torch.ones(cosine.shape[1:], dtype=torch.bool, device=patterns.device).triu(1)
    return cosine[:, upper].mean()


def separation_loss(patterns: torch.Tensor) -> torch.Tensor:
    """Eq. 15 on ``patterns [B,k,D]``: 1/k^2 sum_{i<j<=k-1} cos(F_N,i, F_N,j), batch mean.

    The last pattern (the global one) is left out.
    """
    k = patterns.shape[1]
    normed = nnf.normalize(patterns[:, :-1], dim=-1)
    cosine = normed @ normed.transpose(1, 2)  # [B, k-1, k-1]
    upper = torch.ones(k - 1, k - 1, dtype=torch.bool, device=patterns.device).triu(1)
    return cosine[:, upper].sum(dim=1).mean() / k**2


def mmd_loss(
    x_visible: torch.Tensor, x_infrared: torch.Tensor, kernel_sum: bool = False
) -> torch.Tensor:
    """Eq. 16: multi-kernel Gaussian MMD^2 (biased estimate) of ``[n,D]`` vs ``[m,D]``.

    The kernel is the mean of exp(-||a - b||^2 / s) over the bandwidths s = base x 2^{-2..2},
    base = the mean squared distance over all pairs of distinct pooled samples (detached);
    ``kernel_sum`` sums the five kernels instead, as the authors' code does.
    """
    if len(x_visible) == 0 or len(x_infrared) == 0:
        raise ValueError(
            "the MMD loss (eq. 16) needs visible and infrared samples, got "
            f"{len(x_visible)} visible and {len(x_infrared)} infrared"
        )
    pooled = torch.cat([x_visible, x_infrared])
    return mmd_of_distances(torch.cdist(pooled, pooled).pow(2), len(x_visible), kernel_sum)


def mmd_of_distances(sq: torch.Tensor, n: int, kernel_sum: bool = False) -> torch.Tensor:
    """Eq. 16 from the ``[N, N]`` squared distances of pooled samples, the first ``n`` visible
    (:func:`mmd_loss`; for callers that have the distances already)."""
    N = len(sq)
    base = (sq.detach().sum() / (N * (N - 1))).clamp_min(1e-12)
    kernels = torch.stack([torch.exp(-sq / (base * s)) for s in MMD_SCALES])
    kernel = kernels.sum(dim=0) if kernel_sum else kernels.mean(dim=0)
    return kernel[:n, :n].mean() + kernel[n:, n:].mean() - 2 * kernel[:n, n:].mean()


def reconstruction_loss(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 17: mean absolute error between ``recon`` and ``target`` (``[B,k,D]``)."""
    return (recon - target).abs().mean()


def alignment_loss(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 18: Euclidean distance of each pattern of ``recon [B,k,D]`` to ``target``, mean
    over images and patterns."""
    return torch.linalg.vector_norm(recon - target, dim=-1).mean()


def weighted_total(terms: Mapping[str, torch.Tensor], weights: LossWeights) -> torch.Tensor:
    """Eq. 19: L_id + L_me + l1 L_sep + l2 L_MMD + l3 L_rec + l4 L_aln over the given terms
    (L_me scaled by ``weights.me``, 1 in the paper)."""
    return sum(weights.factor(name) * value for name, value in terms.items())
