"""Knowledge Capturing Module, KCM (paper section IV-B, eq. 4-5).

Eq. 4 refines the tokens F^ ``[B,N,D]`` of one image with a dot-product self-attention over
l2-normalised tokens:  F~ = softmax(norm(F^) norm(F^)^T / t4) F^  (t4 = 1 as printed).
Eq. 5 captures k patterns with anchors A (the pseudo anchors C, or the neutral features F_N in
the cycle of eq. 11-12):  F' = softmax(s(A W_theta, F~ W_tau)) F~, with the scores
s(q, v) = q v^T / sqrt(c) as printed (``capture_scores="dot"``) or cos(q, v) / t5
(``"cosine"``). With ``positions`` N > 0 a learnable position embedding E ``[N,D]`` is added
to the candidates on the key side only: keys (F~ + E) W_tau, values F~. The temperatures, the
cosine scores and E are options for the demo models (docs/paper-notes.md says why); their
defaults are eq. 4-5 as printed.

``refine``, ``scores`` and ``capture`` are the literal equations (the reference path). The fast
path, tested equal: ``anchor_query`` + ``attend`` compute eq. 5 from a query that several
candidate sets can share (for dot scores the query is (A W_theta W_tau^T) / sqrt(c), so the N
tokens are never projected, and shared 2-D anchors are cached in eval mode); ``forward`` also
leaves F~ unbuilt for dot scores (with S the eq. 4 weights, F' = (softmax(q F^^T S^T) S) F^).

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

CAPTURE_SCORES = ("dot", "cosine")


class KCM(nn.Module):
    """KCM with bias-free projections ``w_theta``, ``w_tau``: ``nn.Linear(dim, attn_dim)``."""

    def __init__(
        self,
        dim: int,
        attn_dim: int | None = None,
        *,
        refine_temperature: float = 1.0,
        capture_scores: str = "dot",
        capture_temperature: float = 0.1,
        positions: int = 0,
        position_std: float = 0.0,
    ) -> None:
        super().__init__()
        if capture_scores not in CAPTURE_SCORES:
            raise ValueError(
                f"capture_scores must be one of {CAPTURE_SCORES}, got {capture_scores!r}"
            )
        self.attn_dim = attn_dim or dim  # c of eq. 5
        self.refine_temperature = refine_temperature
        self.capture_scores = capture_scores
        self.capture_temperature = capture_temperature
        self.w_theta = nn.Linear(dim, self.attn_dim, bias=False)
        self.w_tau = nn.Linear(dim, self.attn_dim, bias=False)
        self.position = None  # E [N, D]
        if positions > 0:
            self.position = nn.Parameter(torch.randn(positions, dim) * position_std)
        self._query_cache = ParameterCache()

    # -- reference path: the equations as printed ------------------------------------------
    def token_weights(self, tokens: torch.Tensor) -> torch.Tensor:
        """Eq. 4's weights S = softmax(norm(F^) norm(F^)^T / t4): ``[B,N,D] -> [B,N,N]``."""
        normed = nnf.normalize(tokens, dim=-1)
        return (normed @ normed.transpose(-1, -2) / self.refine_temperature).softmax(dim=-1)

    def refine(self, tokens: torch.Tensor) -> torch.Tensor:
        """Eq. 4: ``F^ [B,N,D] -> F~ [B,N,D]``."""
        return self.token_weights(tokens) @ tokens

    def position_keys(self, count: int) -> torch.Tensor:
        """E repeated over ``count`` candidate tokens (eq. 12 concatenates whole maps):
        ``[count,D]``."""
        positions = len(self.position)
        if count % positions:
            raise ValueError(
                f"KCM expects feature maps of {positions} positions (its position embedding), "
                f"got {count} candidate tokens: the input size differs from the model's"
            )
        return self.position.repeat(count // positions, 1)

    def keyed(self, refined: torch.Tensor) -> torch.Tensor:
        """The key side of eq. 5's candidates: F~ + E, or F~ without a position embedding."""
        if self.position is None:
            return refined
        return refined + self.position_keys(refined.shape[-2])

    def scores(self, refined: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """Eq. 5's scores s(A W_theta, F~ W_tau): ``F~ [B,N,D]``, ``A [(B,)k,D]`` -> ``[B,k,N]``."""
        query, keys = self.w_theta(anchors), self.w_tau(self.keyed(refined))
        if self.capture_scores == "cosine":
            query, keys = nnf.normalize(query, dim=-1), nnf.normalize(keys, dim=-1)
            return query @ keys.transpose(-1, -2) / self.capture_temperature
        return query @ keys.transpose(-1, -2) * self.attn_dim**-0.5

    def attention(self, refined: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """Eq. 5 attention weights ``[B,k,N]``: each anchor's weights over the N candidate
        tokens sum to 1. ``refined`` may be ``[1,N,D]`` (one shared candidate set, eq. 12)."""
        return self.attend(refined, self.anchor_query(anchors))

    def capture(self, refined: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """Eq. 5: ``F~ [B,N,D]``, ``A [B,k,D]`` or ``[k,D]`` -> ``F' [B,k,D]``."""
        return self.scores(refined, anchors).softmax(dim=-1) @ refined

    # -- fast path ---------------------------------------------------------------------------
    def anchor_query(self, anchors: torch.Tensor) -> torch.Tensor:
        """The anchors' side of eq. 5, shareable by several candidate sets (``attend``):
        dot scores ``A W_theta W_tau^T / sqrt(c) [..., k, D]``; cosine scores
        ``norm(A W_theta) / t5 [..., k, c]``. Cached in eval mode for 2-D anchors."""

        def compute() -> torch.Tensor:
            projected = self.w_theta(anchors)
            if self.capture_scores == "cosine":
                return nnf.normalize(projected, dim=-1) / self.capture_temperature
            # nn.Linear stores W^T: F~ W_tau = F~ @ w_tau.weight.T
            return projected @ self.w_tau.weight * self.attn_dim**-0.5

        if anchors.dim() == 2:
            params = (anchors, self.w_theta.weight, self.w_tau.weight)
            cached = self._query_cache.lookup(self, params, compute)
            if cached is not None:
                return cached
        return compute()

    def attend(self, refined: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """Eq. 5 weights from ``query = anchor_query(A)``: ``F~ [B,N,D]``, ``[(B,)k,·]`` ->
        ``[B,k,N]``."""
        if self.capture_scores == "cosine":
            keys = nnf.normalize(self.w_tau(self.keyed(refined)), dim=-1)
            return (query @ keys.transpose(-1, -2)).softmax(dim=-1)
        return (query @ self.keyed(refined).transpose(-1, -2)).softmax(dim=-1)

    def forward(self, tokens: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """Eq. 4 then eq. 5: ``tokens [B,N,D]``, ``anchors [B,k,D]`` or ``[k,D]`` -> ``[B,k,D]``.

        Equal to ``capture(refine(tokens), anchors)``; with dot scores computed without
        building F~.
        """
        S = self.token_weights(tokens)  # [B, N, N]
        if self.capture_scores == "cosine":
            refined = S @ tokens
            return self.attend(refined, self.anchor_query(anchors)) @ refined
        query = self.anchor_query(anchors)
        scores = (query @ tokens.transpose(-1, -2)) @ S.transpose(-1, -2)
        if self.position is not None:  # + q E^T, the keys' position term
            scores = scores + query @ self.position_keys(tokens.shape[-2]).T
        return (scores.softmax(dim=-1) @ S) @ tokens
