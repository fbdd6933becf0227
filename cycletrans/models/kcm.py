"""Knowledge Capturing Module, KCM (paper section IV-B, eq. 4-5).

Eq. 4 refines the tokens F^ ``[B,N,D]`` of one image with a dot-product self-attention over
l2-normalised tokens (no temperature):  F~ = softmax(norm(F^) norm(F^)^T) F^.
Eq. 5 captures k patterns with anchors A (the pseudo anchors C, or the neutral features F_N in
the cycle of eq. 11-12):  F' = softmax((A W_theta)(F~ W_tau)^T / sqrt(c)) F~.

Eq. 5 is computed associatively, (A W_theta)(F~ W_tau)^T = (A W_theta W_tau^T) F~^T: the k
anchors become a k x D query once, then one k x N x D product; the N tokens are never projected
through W_tau. In eval mode the query of shared 2-D anchors is cached per weights version.
``forward`` also leaves F~ unbuilt: with S the eq. 4 weights, F~ = S F^, so the scores are
(q F^^T) S^T and F' = (A S) F^; eq. 4 then costs one N x N x D product (S) instead of two.

Example:
    >>> import torch
    >>> kcm = KCM(dim=8, attn_dim=4)
    >>> tokens, anchors = torch.randn(2, 6, 8), torch.randn(3, 8)
    >>> kcm(tokens, anchors).shape
    torch.Size([2, 3, 8])
    >>> kcm.attention(kcm.refine(tokens), anchors).shape
    torch.Size([2, 3, 6])
"""

from __future__ import annotations

import torch
import torch.nn.functional as nnf
from torch import nn

from cycletrans.models.cache import ParameterCache


class KCM(nn.Module):
    """KCM with bias-free projections ``w_theta``, ``w_tau``: ``nn.Linear(dim, attn_dim)``."""

    def __init__(self, dim: int, attn_dim: int | None = None) -> None:
        super().__init__()
        self.attn_dim = attn_dim or dim  # c of eq. 5
        self.w_theta = nn.Linear(dim, self.attn_dim, bias=False)
        self.w_tau = nn.Linear(dim, self.attn_dim, bias=False)
        self._query_cache = ParameterCache()

    @staticmethod
    def _token_weights(tokens: torch.Tensor) -> torch.Tensor:
        """Eq. 4's weights S = softmax(norm(F^) norm(F^)^T): ``[B,N,D] -> [B,N,N]``."""
        normed = nnf.normalize(tokens, dim=-1)
        return (normed @ normed.transpose(-1, -2)).softmax(dim=-1)

    def refine(self, tokens: torch.Tensor) -> torch.Tensor:
        """Eq. 4: ``F^ [B,N,D] -> F~ [B,N,D]``."""
        return self._token_weights(tokens) @ tokens

    def anchor_query(self, anchors: torch.Tensor) -> torch.Tensor:
        """``A [..., k, D] -> A W_theta W_tau^T / sqrt(c) [..., k, D]`` (cached for 2-D A)."""

        def compute() -> torch.Tensor:
            # nn.Linear stores W^T: F~ W_tau = F~ @ w_tau.weight.T, so the query is
            # (A W_theta) @ w_tau.weight.
            return self.w_theta(anchors) @ self.w_tau.weight * self.attn_dim**-0.5

        if anchors.dim() == 2:
            params = (anchors, self.w_theta.weight, self.w_tau.weight)
            cached = self._query_cache.lookup(self, params, compute)
            if cached is not None:
                return cached
        return compute()

    def attend(self, refined: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """Eq. 5 weights from ``query = anchor_query(A)``: ``F~ [B,N,D]``, ``[(B,)k,D]`` ->
        ``[B,k,N]``. Lets several candidate sets share one projection of the same anchors.
        """
        return (query @ refined.transpose(-1, -2)).softmax(dim=-1)

    def attention(self, refined: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """Eq. 5 attention weights, the softmax before the product with F~.

        ``F~ [B,N,D]`` (or ``[1,N,D]``), ``A [B,k,D]`` or ``[k,D]`` -> ``[B,k,N]``; each
        anchor's weights over the N candidate tokens sum to 1.
        """
        return self.attend(refined, self.anchor_query(anchors))

    def capture(self, refined: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """Eq. 5: ``F~ [B,N,D]``, ``A [B,k,D]`` or ``[k,D]`` -> ``F' [B,k,D]``.

        ``refined`` may also be ``[1,N,D]`` (one shared candidate set, as in eq. 12) with
        ``anchors [b,k,D]``; the result is then ``[b,k,D]``.
        """
        return self.attention(refined, anchors) @ refined

    def forward(self, tokens: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """Eq. 4 then eq. 5: ``tokens [B,N,D]``, ``anchors [B,k,D]`` or ``[k,D]`` -> ``[B,k,D]``.

        Equal to ``capture(refine(tokens), anchors)``, computed without building F~.
        """
        S = self._token_weights(tokens)  # [B, N, N]
        scores = (self.anchor_query(anchors) @ tokens.transpose(-1, -2)) @ S.transpose(-1, -2)
        return (scores.softmax(dim=-1) @ S) @ tokens
