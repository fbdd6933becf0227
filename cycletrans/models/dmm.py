"""Discrepancy Modeling Module, DMM (paper section IV-C, eq. 6-10).

Eq. 6-7: P' = P - f^,  F_N = F' + A P',  A = softmax(F' W_psi (P W_sigma)^T / sqrt(c)),
with f^ the mean of the k rows of F' and P ``[n,D]`` shared prototypes. Eq. 10
(``weight_patterns``) scales pattern i by softmax(w)_i.

``discrepancy_norm="none"`` is eq. 6-7 as printed. Since every row of A sums to 1, eq. 8-9
rewrite it as F_N = (F' - f^) + A P, which is what ``forward`` computes. Read literally, with
the paper's initialisation, this starts at a degenerate point: the k anchors of eq. 5 attend
almost uniformly, so the rows of F' are equal, F' - f^ = 0 and F_N ~ the mean prototype for
every image; the BN neck then sees features with ~1e-12 variance and nothing trains (measured:
L_id stays at ln C for 150 steps on the demo set). ``discrepancy_norm="layer"`` (the default)
normalises the discrepancy as the authors' public code does, P' = LayerNorm(P - f^) (no affine
parameters), so F_N = F' + A LayerNorm(P - f^) keeps the image's information from the first
step; A is unchanged. Neither form builds the ``[B,n,D]`` tensor P': the layer-normalised
aggregate is computed from the centred prototypes and f^ (see ``_normalised_aggregate``).

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

INIT_STD = 0.02**0.5  # prototypes and anchors ~ N(0, 0.02): the paper's "variance of 0.02"
DISCREPANCY_NORMS = ("layer", "none")
_LAYER_NORM_EPS = 1e-5  # as torch.nn.LayerNorm


class DMM(nn.Module):
    """DMM: ``.prototypes [n,D]``, bias-free ``.w_psi``/``.w_sigma``, ``.pattern_logits [k]``."""

    def __init__(
        self,
        dim: int,
        num_prototypes: int,
        num_patterns: int,
        attn_dim: int | None = None,
        discrepancy_norm: str = "layer",
    ) -> None:
        super().__init__()
        if discrepancy_norm not in DISCREPANCY_NORMS:
            raise ValueError(f"discrepancy_norm must be one of {DISCREPANCY_NORMS}, "
                             f"got {discrepancy_norm!r}")
        self.discrepancy_norm = discrepancy_norm
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
        """Eq. 6-7: ``F' [B,k,D] -> F_N = F' + A P' [B,k,D]`` (P' as ``discrepancy_norm`` says)."""
        f_hat = features.mean(dim=1, keepdim=True)  # [B, 1, D]
        if self.discrepancy_norm == "none":
            return features - f_hat + self.aggregate(features)  # eq. 9
        return features + self._normalised_aggregate(self.attention(features), f_hat)

    def _normalised_aggregate(self, A: torch.Tensor, f_hat: torch.Tensor) -> torch.Tensor:
        """``A LayerNorm(P - f^)``: ``A [B,k,n]``, ``f^ [B,1,D]`` -> ``[B,k,D]``.

        Row j of P - f^ has mean m(P_j) - m(f^), so with centred rows P~_j and f~ its
        normalised form is s_j (P~_j - f~), s_j = 1 / sqrt(var(P~_j - f~) + eps), and
        var(P~_j - f~) = mean(P~_j^2) - 2 mean(P~_j f~) + mean(f~^2). Hence
        A LayerNorm(P - f^) = (A s) P~ - (sum_j A_j s_j) f~, at the cost of one [B,n] product.
        """
        P_c = self.prototypes - self.prototypes.mean(dim=1, keepdim=True)  # P~ [n, D]
        f_c = f_hat - f_hat.mean(dim=2, keepdim=True)  # f~ [B, 1, D]
        D = P_c.shape[1]
        variance = (P_c.pow(2).mean(dim=1) - 2 * (f_c @ P_c.t()).squeeze(1) / D
                    + f_c.pow(2).mean(dim=2))  # [B, n]
        As = A * (variance + _LAYER_NORM_EPS).rsqrt()[:, None, :]  # [B, k, n]
        return As @ P_c - As.sum(dim=2, keepdim=True) * f_c

    def weight_patterns(self, neutral: torch.Tensor) -> torch.Tensor:
        """Eq. 10: ``F_N [B,k,D] -> softmax(w)_i F_N,i [B,k,D]``."""
        return neutral * self.pattern_logits.softmax(dim=0)[:, None]
