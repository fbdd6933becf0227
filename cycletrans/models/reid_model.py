"""ReIDModel: backbone -> KCM -> DMM (or a Table III head) -> BN neck -> classifier, with cycles.

Data flow of one image (paper Fig. 2; ``variants.py`` says which parts each ablation row has):

- F_I ``[d,h,w]`` = backbone(image); tokens F^ ``[N = h*w, d]``.
- F~ = KCM.refine(F^) (eq. 4); F' = KCM.capture(F~, C) (eq. 5) with the shared pseudo anchors
  C ``[k,d]``. When no cycle is computed (no labels, or a row without one) the two run fused
  as ``KCM.forward``, which never builds F~.
- F_N = head(F') (eq. 6-9, or a Table III alternative); the flattened eq. 10-weighted F_N
  ``[k*d]`` is the retrieval feature; BN neck (bias frozen, as BNNeck) + bias-free FC give the
  logits (eq. 13). The baseline pools F_I instead (global average pooling, ``[d]``).
- Cycle construction (training, eq. 11-12), with the *unweighted* F_N (before eq. 10) as
  anchors and the same KCM: same modality over the image's own F~ (reused from the forward),
  cross modality over the concatenated F~ of the batch's images of the same identity in the
  other modality, grouped by identity.

Gradient routing of the cycle (option ``cycle_grad``): the paper says "the gradient is only
backward through the anchor features to the backbone". With ``"anchors"`` (default) the candidate
maps F~ of eq. 11-12 and the target F' of eq. 17-18 are detached, so L_rec and L_aln reach the
backbone only through F_N -> head -> F' -> the first KCM, while KCM's W_theta and W_tau still
get gradients from the cycle. ``"all"`` detaches nothing. ``"authors"`` is the authors' code:
the candidates carry gradient, L_rec's target F' is detached, and L_aln detaches the
cross-modality reconstruction instead, pulling F' toward it.

Example:
    >>> import torch
    >>> from cycletrans.models import build_model
    >>> model = build_model("full", "resnet18", num_classes=4, num_anchors=3, num_prototypes=8,
    ...                     preprocessing={"height": 64, "width": 32,
    ...                                    "mean": [0.5] * 3, "std": [0.5] * 3})
    >>> images = torch.randn(8, 3, 64, 32)
    >>> modalities = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1])
    >>> labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    >>> out = model(images, modalities, labels)
    >>> sorted(model.loss(out, labels, modalities))
    ['aln', 'id', 'loss', 'me', 'mmd', 'rec', 'sep']
    >>> model.embed(images, "infrared").shape
    torch.Size([8, 1536])
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from cycletrans.losses import (
    alignment_loss,
    authors_separation_loss,
    center_cluster_loss,
    identity_loss,
    metric_loss,
    mmd_loss,
    reconstruction_loss,
    separation_loss,
    weighted_total,
)
from cycletrans.modality import INFRARED, MODALITIES, VISIBLE, modality_index
from cycletrans.models.dmm import DMM, INIT_STD
from cycletrans.models.kcm import KCM
from cycletrans.models.options import ModelSpec
from cycletrans.models.stages import Backbone
from cycletrans.preprocessing import Preprocessing


@dataclass(frozen=True)
class Variant:
    """One ablation row: whether it has KCM, which F' -> F_N head, which loss terms."""

    kcm: bool
    head: type[DMM] | None
    losses: tuple[str, ...]


@dataclass
class ModelOutput:
    """What a forward pass returns (shapes for a batch of B images, k anchors, d channels).

    ``logits [B,C]``; ``features [B,D]`` the flattened retrieval feature before the BN neck and
    ``neck [B,D]`` after it; ``patterns [B,k,d]`` F_N before eq. 10 weighting (F' for KCM-only
    rows, None for the baseline); ``captured [B,k,d]`` F'; ``recon_same``/``recon_cross
    [B,k,d]`` the eq. 11/12 reconstructions (None unless the variant uses them and labels
    were given).
    """

    logits: torch.Tensor
    features: torch.Tensor
    neck: torch.Tensor
    patterns: torch.Tensor | None = None
    captured: torch.Tensor | None = None
    recon_same: torch.Tensor | None = None
    recon_cross: torch.Tensor | None = None


def feature_positions(backbone: Backbone, spec: ModelSpec) -> int:
    """N = h * w, the positions of the backbone's map for the model's input size."""
    stride, size = backbone.output_stride, spec.preprocessing
    return math.ceil(size.height / stride) * math.ceil(size.width / stride)


class ReIDModel(nn.Module):
    """The CycleTrans model and its ablations; build it with ``build_model``."""

    def __init__(self, backbone: nn.Module, row: Variant, spec: ModelSpec) -> None:
        super().__init__()
        opts = spec.options
        d = backbone.out_channels
        self.spec, self.options, self.losses = spec, opts, row.losses
        self.backbone = backbone
        self.kcm = self.anchors = self.head = None
        if row.kcm:
            self.kcm = KCM(
                d,
                opts.attn_dim,
                refine_temperature=opts.refine_temperature,
                capture_scores=opts.capture_scores,
                capture_temperature=opts.capture_temperature,
                positions=feature_positions(backbone, spec) if opts.key_position_std else 0,
                position_std=opts.key_position_std,
            )
            self.anchors = nn.Parameter(torch.randn(opts.num_anchors, d) * INIT_STD)  # C
        if row.head is not None:
            self.head = row.head(
                d,
                opts.num_prototypes,
                opts.num_anchors,
                attn_dim=opts.attn_dim,
                discrepancy_norm=opts.discrepancy_norm,
                dmm_keys=opts.dmm_keys,
            )
        dim = opts.num_anchors * d if row.kcm else d
        self.neck = nn.BatchNorm1d(dim)
        self.neck.bias.requires_grad_(False)
        self.classifier = nn.Linear(dim, spec.num_classes, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)
        self.uses_cycle = "rec" in row.losses or "aln" in row.losses  # eq. 11-12 in training

    @property
    def config(self) -> dict:
        """The JSON-serialisable model description (``ModelSpec.to_dict``)."""
        return self.spec.to_dict()

    @property
    def preprocessing(self) -> Preprocessing:
        return self.spec.preprocessing

    def head_parameters(self) -> list[nn.Parameter]:
        """The CycleTrans head's parameters: the anchors C, KCM (W_theta, W_tau) and the DMM or
        Table III head (prototypes P, W_psi, W_sigma, ...); empty for the baseline."""
        parts = [self.kcm, self.head]
        params = [p for part in parts if part is not None for p in part.parameters()]
        return params + ([self.anchors] if self.anchors is not None else [])

    @property
    def feature_layer(self) -> nn.Module:
        """The backbone's last stage (the Grad-CAM target layer)."""
        return self.backbone.last_stage

    def forward(
        self,
        images: torch.Tensor,
        modalities: torch.Tensor,
        labels: torch.Tensor | None = None,
    ) -> ModelOutput:
        """``images [B,3,H,W]``, ``modalities [B]`` (0 visible, 1 infrared), ``labels [B]``.

        Labels are needed for the cycle reconstructions; in training mode a variant with a
        cycle requires them.
        """
        self._check_batch(images, modalities, labels)
        F_I = self.backbone(images, modalities)  # [B, d, h, w]
        if self.kcm is None:
            features = F_I.mean(dim=(2, 3))  # global average pooling [B, d]
            neck = self.neck(features)
            return ModelOutput(self.classifier(neck), features, neck)
        tokens = F_I.flatten(2).transpose(1, 2)  # F^ [B, N, d]
        cycle = labels is not None and self.uses_cycle
        if cycle:  # the cycle needs F~ itself
            refined = self.kcm.refine(tokens)  # F~, eq. 4
            captured = self.kcm.capture(refined, self.anchors)  # F', eq. 5
        else:
            captured = self.kcm(tokens, self.anchors)  # eq. 4-5 without building F~
        patterns = captured if self.head is None else self.head(captured)  # F_N, eq. 6-9
        weighted = patterns if self.head is None else self.head.weight_patterns(patterns)
        features = weighted.flatten(1)  # f_N [B, k*d]
        neck = self.neck(features)
        out = ModelOutput(self.classifier(neck), features, neck, patterns, captured)
        if cycle:
            out.recon_same, out.recon_cross = self.reconstruct(
                refined, patterns, labels, modalities
            )
        return out

    def reconstruct(
        self,
        refined: torch.Tensor,
        neutral: torch.Tensor,
        labels: torch.Tensor,
        modalities: torch.Tensor,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The cycle of eq. 11-12 for the reconstructions this variant's losses use.

        ``refined [B,N,d]`` (F~ of eq. 4), ``neutral [B,k,d]`` (F_N before eq. 10) ->
        ``(same [B,k,d] | None, cross [B,k,d] | None)``.
        """
        # cycle_grad="anchors": the candidates carry no gradient, only the anchors F_N do.
        candidates = refined.detach() if self.options.cycle_grad == "anchors" else refined
        query = self.kcm.anchor_query(neutral)  # F_N as anchors, one projection for both cycles
        same = None
        if "rec" in self.losses:  # eq. 11
            same = self.kcm.attend(candidates, query) @ candidates
        cross = None
        if "aln" in self.losses:  # eq. 12, one identity at a time
            parts, order = [], []
            for label in labels.unique():
                for code in (VISIBLE, INFRARED):
                    own = ((labels == label) & (modalities == code)).nonzero().squeeze(1)
                    other = ((labels == label) & (modalities != code)).nonzero().squeeze(1)
                    if own.numel():
                        pool = candidates[other].reshape(1, -1, candidates.shape[-1])
                        parts.append(self.kcm.attend(pool, query[own]) @ pool)
                        order.append(own)
            cross = torch.cat(parts)[torch.argsort(torch.cat(order))]
        return same, cross

    def loss(
        self, out: ModelOutput, labels: torch.Tensor, modalities: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The unweighted terms this variant uses ("id", "me", "sep", "mmd", "rec", "aln")
        and ``"loss"``, their eq. 19 weighted total."""
        opts = self.options
        authors = opts.loss_form == "authors"  # L_sep and L_MMD on the BN-neck output
        terms = {"id": identity_loss(out.logits, labels)}
        if "me" in self.losses:
            terms["me"] = (
                center_cluster_loss(
                    out.features.view(len(labels), opts.num_anchors, -1), labels, opts.margin
                )
                if authors
                else metric_loss(out.features, labels, opts.margin)
            )
        if "sep" in self.losses:
            terms["sep"] = (
                authors_separation_loss(out.neck.view_as(out.patterns))
                if authors
                else separation_loss(out.patterns)
            )
        if "mmd" in self.losses:
            feats = out.neck if authors else out.features
            terms["mmd"] = mmd_loss(
                feats[modalities == VISIBLE], feats[modalities == INFRARED], kernel_sum=authors
            )
        if self.uses_cycle:
            if out.recon_same is None and out.recon_cross is None:
                raise ValueError("this variant's cycle losses need a forward pass with labels")
            target = out.captured if opts.cycle_grad == "all" else out.captured.detach()
            if "rec" in self.losses:
                terms["rec"] = reconstruction_loss(out.recon_same, target)
            if "aln" in self.losses:
                if opts.cycle_grad == "authors":  # F' pulled toward the reconstruction
                    terms["aln"] = alignment_loss(out.recon_cross.detach(), out.captured)
                else:
                    terms["aln"] = alignment_loss(out.recon_cross, target)
        terms["loss"] = weighted_total(terms, opts.loss_weights)
        return terms

    @torch.no_grad()
    def embed(self, images: torch.Tensor, modality: str | int) -> torch.Tensor:
        """Retrieval features ``[B, D]`` of ``images [B,3,H,W]`` of one ``modality``.

        The flattened neutral feature after the BN neck (``D = k*d``; baseline: the pooled
        feature after the BN neck, ``D = d``), computed in eval mode without gradients.
        """
        with self._evaluating():
            return self.retrieval_feature(images, self._modality_codes(images, modality))

    def retrieval_feature(self, images: torch.Tensor, modalities: torch.Tensor) -> torch.Tensor:
        """The retrieval feature ``[B, D]`` (BN-neck output) with autograd, in the current
        mode: ``embed`` is its eval-mode, no-grad form; Grad-CAM differentiates this one."""
        return self(images, modalities).neck

    @torch.no_grad()
    def anchor_attention(self, images: torch.Tensor, modality: str | int) -> torch.Tensor:
        """Eq. 5 attention of each pseudo anchor over the feature map: ``[B, k, h, w]``."""
        if self.kcm is None:
            raise ValueError(f"variant {self.spec.variant!r} has no KCM, hence no anchor attention")
        with self._evaluating():
            F_I = self.backbone(images, self._modality_codes(images, modality))
            refined = self.kcm.refine(F_I.flatten(2).transpose(1, 2))
            weights = self.kcm.attention(refined, self.anchors)  # [B, k, N]
        return weights.reshape(len(images), -1, *F_I.shape[2:])

    @contextmanager
    def _evaluating(self) -> Iterator[None]:
        was_training = self.training
        self.eval()
        try:
            yield
        finally:
            self.train(was_training)

    @staticmethod
    def _modality_codes(images: torch.Tensor, modality: str | int) -> torch.Tensor:
        code = modality_index(modality)
        return torch.full((len(images),), code, dtype=torch.long, device=images.device)

    def _check_batch(
        self, images: torch.Tensor, modalities: torch.Tensor, labels: torch.Tensor | None
    ) -> None:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images [B, 3, H, W], got {tuple(images.shape)}")
        if modalities.shape != images.shape[:1]:
            raise ValueError(f"expected modalities [{len(images)}], got {tuple(modalities.shape)}")
        if ((modalities != VISIBLE) & (modalities != INFRARED)).any():
            raise ValueError(f"modality codes must be 0 or 1, got {modalities.unique().tolist()}")
        if labels is None:
            if self.training and self.uses_cycle:
                raise ValueError("training this variant needs labels (for the cycle, eq. 11-12)")
            return
        if labels.shape != images.shape[:1]:
            raise ValueError(f"expected labels [{len(images)}], got {tuple(labels.shape)}")
        if "aln" in self.losses:
            for label in labels.unique().tolist():
                present = set(modalities[labels == label].tolist())
                if len(present) < 2:
                    missing = MODALITIES[INFRARED if VISIBLE in present else VISIBLE]
                    raise ValueError(
                        f"identity {label} has no {missing} image in this batch; the "
                        "cross-modality cycle (eq. 12) needs every identity in both modalities "
                        "(sample batches with CrossModalitySampler)"
                    )
