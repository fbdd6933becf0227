"""Discrepancy Modeling Module, DMM (paper section IV-C, eq. 6-10).

Eq. 6-7: P' = P - f^,  F_N = F' + A P',  A = softmax(F' W_psi (P W_sigma)^T / sqrt(c)),
with f^ the mean of the k rows of F' and P ``[n,D]`` shared prototypes. Eq. 10
(``weight_patterns``) scales pattern i by softmax(w)_i. Two options:

- ``discrepancy_norm``: ``"none"`` is P' as printed; ``"layer"`` (the default) is
  P' = LayerNorm(P - f^) (no affine parameters) as the authors' code has it. Read literally,
  eq. 6-9 start degenerate: the anchors of eq. 5 attend almost uniformly, the rows of F' are
  equal, F' - f^ = 0 and F_N is the mean prototype for every image (docs/paper-notes.md).
- ``dmm_keys``: ``"prototypes"`` (keys P W_sigma, as printed) or ``"discrepancy"`` (the
  authors' code: keys P' W_sigma and a layer-normalised query LayerNorm(F') W_psi).

``discrepancy``, ``scores`` and ``reference`` are the literal equations (the reference path,
building the ``[B,n,D]`` tensor P'). The fast path, tested equal, for prototype keys: the scores
are (F' W_psi W_sigma^T) P^T in training and F' (W_psi W_sigma^T P^T / sqrt(c)) in eval mode
with the D x n matrix cached; P' is never built (eq. 9 for ``"none"``, and for ``"layer"``
A LayerNorm(P - f^) = (A s) P~ - (sum_j A_j s_j) f~ with centred rows P~, f~ and
s_j = 1 / std(P~_j - f~)).

Example:
    >>> import torch
    >>> dmm = DMM(dim=8, num_prototypes=16, num_patterns=3)
    >>> F_N = dmm(torch.randn(2, 3, 8))
    >>> F_N.shape, dmm.weight_patterns(F_N).shape
    (torch.Size([2, 3, 8]), torch.Size([2, 3, 8]))
"""

from __future__ import annotations

import torch
import torch.nn.functional as nnf
from torch import nn

from cycletrans.models.cache import ParameterCache

INIT_STD = 0.02**0.5  # prototypes and anchors ~ N(0, 0.02): the paper's "variance of 0.02"
DISCREPANCY_NORMS = ("layer", "none")
DMM_KEYS = ("prototypes", "discrepancy")
_LAYER_NORM_EPS = 1e-5  # as torch.nn.LayerNorm


def _layer_norm(x: torch.Tensor) -> torch.Tensor:
    return nnf.layer_norm(x, x.shape[-1:], eps=_LAYER_NORM_EPS)


class DMM(nn.Module):
    """DMM: ``.prototypes [n,D]``, bias-free ``.w_psi``/``.w_sigma``, ``.pattern_logits [k]``."""

    def __init__(
        self,
        dim: int,
        num_prototypes: int,
        num_patterns: int,
        attn_dim: int | None = None,
        discrepancy_norm: str = "layer",
        dmm_keys: str = "prototypes",
    ) -> None:
        super().__init__()
        if discrepancy_norm not in DISCREPANCY_NORMS:
            raise ValueError(
                f"discrepancy_norm must be one of {DISCREPANCY_NORMS}, got {discrepancy_norm!r}"
            )
        if dmm_keys not in DMM_KEYS:
            raise ValueError(f"dmm_keys must be one of {DMM_KEYS}, got {dmm_keys!r}")
        self.discrepancy_norm = discrepancy_norm
        self.dmm_keys = dmm_keys
        self.attn_dim = attn_dim or dim  # c of eq. 7
        self.prototypes = nn.Parameter(torch.randn(num_prototypes, dim) * INIT_STD)  # P
        self.w_psi = nn.Linear(dim, self.attn_dim, bias=False)
        self.w_sigma = nn.Linear(dim, self.attn_dim, bias=False)
        self.pattern_logits = nn.Parameter(torch.zeros(num_patterns))  # w of eq. 10
        self._key_cache = ParameterCache()

    # -- reference path: the equations as printed ------------------------------------------
    def discrepancy(self, features: torch.Tensor) -> torch.Tensor:
        """Eq. 6: ``F' [B,k,D] -> P' = P - f^ [B,n,D]`` (layer-normalised for ``"layer"``)."""
        P_prime = self.prototypes - features.mean(dim=1, keepdim=True)
        return _layer_norm(P_prime) if self.discrepancy_norm == "layer" else P_prime

    def scores(self, features: torch.Tensor, discrepancy: torch.Tensor) -> torch.Tensor:
        """Eq. 7's scores ``[B,k,n]`` from F' ``[B,k,D]`` and P' ``[B,n,D]``."""
        if self.dmm_keys == "discrepancy":
            query, keys = self.w_psi(_layer_norm(features)), self.w_sigma(discrepancy)
        else:
            query, keys = self.w_psi(features), self.w_sigma(self.prototypes)
        return query @ keys.transpose(-1, -2) * self.attn_dim**-0.5

    def reference(self, features: torch.Tensor) -> torch.Tensor:
        """Eq. 6-7 literally: ``F' [B,k,D] -> F_N = F' + softmax(scores) P' [B,k,D]``."""
        P_prime = self.discrepancy(features)
        return features + self.scores(features, P_prime).softmax(dim=-1) @ P_prime

    # -- fast path ---------------------------------------------------------------------------
    def _prototype_keys(self) -> torch.Tensor:
        """``W_psi W_sigma^T P^T / sqrt(c)`` ``[D, n]`` (nn.Linear stores W^T)."""
        return self.w_psi.weight.t() @ self.w_sigma(self.prototypes).t() * self.attn_dim**-0.5

    def attention(self, features: torch.Tensor) -> torch.Tensor:
        """Eq. 7 weights A with prototype keys: ``F' [B,k,D] -> [B,k,n]``, rows summing to 1."""
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
        """Eq. 6-7: ``F' [B,k,D] -> F_N = F' + A P' [B,k,D]``, equal to ``reference``."""
        if self.dmm_keys == "discrepancy":  # per-image keys: no shortcut
            return self.reference(features)
        f_hat = features.mean(dim=1, keepdim=True)  # [B, 1, D]
        if self.discrepancy_norm == "none":
            return features - f_hat + self.aggregate(features)  # eq. 9
        return features + self._normalised_aggregate(self.attention(features), f_hat)

    def _normalised_aggregate(self, A: torch.Tensor, f_hat: torch.Tensor) -> torch.Tensor:
        """``A LayerNorm(P - f^)``: ``A [B,k,n]``, ``f^ [B,1,D]`` -> ``[B,k,D]``.

        Row j of P - f^ has mean m(P_j) - m(f^), so with centred rows P~_j and f~ its
        normalised form is s_j (P~_j - f~), s_j = 1 / sqrt(var(P~_j - f~) + eps), and
        var(P~_j - f~) = mean(P~_j^2) - 2 mean(P~_j f~) + mean(f~^2).
        """
        P_c = self.prototypes - self.prototypes.mean(dim=1, keepdim=True)  # P~ [n, D]
        f_c = f_hat - f_hat.mean(dim=2, keepdim=True)  # f~ [B, 1, D]
        D = P_c.shape[1]
        variance = (
            P_c.pow(2).mean(dim=1) - 2 * (f_c @ P_c.t()).squeeze(1) / D + f_c.pow(2).mean(dim=2)
        )  # [B, n]
        As = A * (variance + _LAYER_NORM_EPS).rsqrt()[:, None, :]  # [B, k, n]
        return As @ P_c - As.sum(dim=2, keepdim=True) * f_c

    def weight_patterns(self, neutral: torch.Tensor) -> torch.Tensor:
        """Eq. 10: ``F_N [B,k,D] -> softmax(w)_i F_N,i [B,k,D]``."""
        return neutral * self.pattern_logits.softmax(dim=0)[:, None]
