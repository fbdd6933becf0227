"""Discrepancy Modeling Module, DMM (paper section IV-C, eq. 6-10).

Eq. 6-7: P' = P - f^,  F_N = F' + A P',  A = softmax(F' W_psi (P W_sigma)^T / sqrt(c)),
with f^ the mean of the k rows of F' and P ``[n,D]`` shared prototypes. Since every row of A
sums to 1, eq. 8-9 rewrite this as F_N = (F' - f^) + A P, which is what ``forward`` computes:
no ``[B,n,D]`` tensor P' is ever built. Eq. 10 (``weight_patterns``) scales pattern i by
softmax(w)_i.

The attention scores F' W_psi (P W_sigma)^T are computed without projecting the n prototypes:
in training as (F' W_psi W_sigma^T) P^T, costs growing with the B*k queries (forward and
backward) rather than with n; in eval mode the D x n matrix W_psi W_sigma^T P^T / sqrt(c) is
cached per weights version, so a forward costs one k x D x n product per image.

Example:
    >>> import torch
    >>> dmm = DMM(dim=8, num_prototypes=16, num_patterns=3)
    >>> F_N = dmm(torch.randn(2, 3, 8))
    >>> F_N.shape, dmm.weight_patterns(F_N).shape
    (torch.Size([2, 3, 8]), torch.Size([2, 3, 8]))
"""

from __future__ import annotations

import torch
from torch import nn

from cycletrans.models.cache import ParameterCache

INIT_STD = 0.02  # prototypes and anchors ~ N(0, 0.02^2): the paper's "variance 0.02" read as std


class DMM(nn.Module):
    """DMM: ``.prototypes [n,D]``, bias-free ``.w_psi``/``.w_sigma``, ``.pattern_logits [k]``."""

    def __init__(
        self, dim: int, num_prototypes: int, num_patterns: int, attn_dim: int | None = None
    ) -> None:
        super().__init__()
        self.attn_dim = attn_dim or dim  # c of eq. 7
        self.prototypes = nn.Parameter(torch.randn(num_prototypes, dim) * INIT_STD)  # P
        self.w_psi = nn.Linear(dim, self.attn_dim, bias=False)
        self.w_sigma = nn.Linear(dim, self.attn_dim, bias=False)
        self.pattern_logits = nn.Parameter(torch.zeros(num_patterns))  # w of eq. 10
        self._key_cache = ParameterCache()

    def _prototype_keys(self) -> torch.Tensor:
        """``W_psi W_sigma^T P^T / sqrt(c)`` ``[D, n]`` (nn.Linear stores W^T)."""
        return self.w_psi.weight.t() @ self.w_sigma(self.prototypes).t() * self.attn_dim**-0.5

    def attention(self, features: torch.Tensor) -> torch.Tensor:
        """Eq. 7 weights A: ``F' [B,k,D] -> [B,k,n]``, rows summing to 1."""
        params = (self.prototypes, self.w_psi.weight, self.w_sigma.weight)
        keys = self._key_cache.lookup(self, params, self._prototype_keys)
        if keys is None:
            # Training: chain through the B*k queries, (F' W_psi W_sigma^T) P^T, so that the
            # cost scales with B*k rather than with the n prototypes (forward and backward).
            query = self.w_psi(features) @ self.w_sigma.weight  # [B, k, D]
            keys = self.prototypes.t() * self.attn_dim**-0.5  # [D, n]
        else:
            query = features
        return (query @ keys).softmax(dim=-1)

    def aggregate(self, features: torch.Tensor) -> torch.Tensor:
        """``A P``: ``F' [B,k,D] -> [B,k,D]``."""
        return self.attention(features) @ self.prototypes

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Eq. 6-7 through eq. 9: ``F' [B,k,D] -> F_N = (F' - f^) + A P [B,k,D]``."""
        f_hat = features.mean(dim=1, keepdim=True)  # [B, 1, D]
        return features - f_hat + self.aggregate(features)

    def weight_patterns(self, neutral: torch.Tensor) -> torch.Tensor:
        """Eq. 10: ``F_N [B,k,D] -> softmax(w)_i F_N,i [B,k,D]``."""
        return neutral * self.pattern_logits.softmax(dim=0)[:, None]
