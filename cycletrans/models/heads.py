"""Table III alternatives of DMM, all mapping F' ``[B,k,D]`` to F_N ``[B,k,D]``.

Each one keeps DMM's prototypes P, the attention A of eq. 7 (W_psi, W_sigma, with the same
eval-mode cache) and the pattern weighting of eq. 10; only the formula for F_N changes:

These rows model no discrepancy P - f^, so DMM's ``discrepancy_norm`` and ``dmm_keys`` do not
change them.

- ``PrototypeAggregation``: F_N = A P (no residual).
- ``ResidualPrototypeAggregation``: F_N = F' + A P (no discrepancy modelling).
- ``PrototypeTransformer``: one Transformer decoder-style layer (Vaswani et al.) with F' as
  queries and the prototypes as keys and values: X = LN(F' + (A P) W_v),
  F_N = LN(X + FFN(X)), FFN = Linear(D, D) -> ReLU -> Linear(D, D). Single head, post-norm;
  the query/key projections are DMM's W_psi/W_sigma, and the value and output projections are
  folded into one D x D matrix W_v (their product is one linear map for a single head).

Example:
    >>> import torch
    >>> head = PrototypeTransformer(dim=8, num_prototypes=16, num_patterns=3)
    >>> head(torch.randn(2, 3, 8)).shape
    torch.Size([2, 3, 8])
"""

from __future__ import annotations

import torch
from torch import nn

from cycletrans.models.dmm import DMM


class PrototypeAggregation(DMM):
    """Table III, "F_N = AP"."""

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``F' [B,k,D] -> A P [B,k,D]``."""
        return self.aggregate(features)


class ResidualPrototypeAggregation(DMM):
    """Table III, "F_N = F' + AP"."""

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``F' [B,k,D] -> F' + A P [B,k,D]``."""
        return features + self.aggregate(features)


class PrototypeTransformer(DMM):
    """Table III, "Transformer": one cross-attention layer over the prototypes."""

    def __init__(self, dim: int, num_prototypes: int, num_patterns: int, **options: object) -> None:
        super().__init__(dim, num_prototypes, num_patterns, **options)
        self.w_value = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim))
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``F' [B,k,D] -> F_N [B,k,D]``."""
        x = self.norm1(features + self.w_value(self.aggregate(features)))
        return self.norm2(x + self.ffn(x))
