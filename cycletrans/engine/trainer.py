"""The training loop: one run of a :class:`TrainConfig`, resumable, single-process or DDP.

What a run writes into ``config.output`` (rank 0 only):

- ``config.json``: the resolved config, at the start.
- ``metrics.jsonl``: one JSON line per epoch: ``epoch`` (1-based), ``lr``, ``time_s``,
  ``steps``, ``losses`` (mean of every loss term over the epoch's steps and ranks) and, on
  validation epochs, ``val`` (``r1, r5, r10, r20, mAP, mINP`` on the validation identities,
  infrared queries against all visible images).
- ``last.safetensors`` + ``last.json`` every epoch, and ``best.*`` (highest validation mAP) when
  validation identities exist; without validation ``best`` is never written and ``last`` is the
  result. Both load with ``cycletrans.load_model``.
- ``resume.pt``: the resume state (see ``cycletrans.engine.state``), every epoch and every
  ``save_every`` steps; ``train(config, resume=True)`` continues from it and reaches the same
  final weights as an uninterrupted run (on CPU; CUDA kernels are not bitwise deterministic).
- ``result.json`` when the last epoch is done.

A non-finite loss stops the run with :class:`NonFiniteLossError`, naming the epoch, the step and
every loss term. AMP (autocast + GradScaler, float16) is used on CUDA when ``config.amp`` is not
False; on CPU it is off.

Example:
    >>> from cycletrans.engine import resolve_config, train
    >>> config = resolve_config("demo", {"epochs": 2, "output": "runs/try"})
    >>> result = train(config)  # doctest: +SKIP
    >>> result.last  # doctest: +SKIP
    PosixPath('runs/try/last.safetensors')
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from cycletrans.checkpoint import save_model
from cycletrans.data import CrossModalitySampler, ReIDDataset, build_transforms
from cycletrans.engine import distributed as ddp
from cycletrans.engine.config import (
    TrainConfig,
    config_differences,
    learning_rate,
    run_config_record,
)
from cycletrans.engine.data import SeededBatches, SeededDataset, demo_data_root, load_splits
from cycletrans.engine.inference import extract_features
from cycletrans.engine.state import (
    RESUME_FILE,
    load_resume_state,
    rng_state,
    save_resume_state,
    set_rng_state,
)
from cycletrans.evaluation.protocols import cross_modality_retrieval
from cycletrans.models import build_model
from cycletrans.models.reid_model import ReIDModel
from cycletrans.preprocessing import Preprocessing

STATE_VERSION = 1
BEST_METRIC = "mAP"


class TrainingError(RuntimeError):
    """A run cannot go on for a reason the user can act on (the message says which)."""


class NonFiniteLossError(TrainingError):
    """The loss became NaN or infinite."""


@dataclass
class TrainResult:
    """What a finished (or ``max_steps``-stopped) run left behind.

    ``model`` is the trained model (unwrapped, on the training device, rank 0's buffers);
    ``best`` is None without validation. ``epochs_done`` counts completed epochs.
    """

    output: Path
    last: Path
    best: Path | None
    best_score: float | None
    best_epoch: int | None
    epochs_done: int
    global_step: int
    finished: bool
    model: nn.Module = field(repr=False)


def train(config: TrainConfig, resume: bool = False) -> TrainResult:
    """Train ``config``; with ``resume``, continue from ``<output>/resume.pt``.

    Under ``torchrun`` (RANK/WORLD_SIZE/LOCAL_RANK set) this joins the process group and trains
    with DistributedDataParallel. Raises ValueError for a bad config or data, FileNotFoundError
    for missing data or resume state, :class:`TrainingError` when the run cannot proceed
    (e.g. ImageNet weights unavailable offline, output already holding a run) and
    :class:`NonFiniteLossError` for a NaN/inf loss.
    """
    ctx = ddp.init_distributed(config.device)
    try:
        return Trainer(config, ctx, resume).fit()
    finally:
        if ctx.distributed:
            ddp.shutdown()


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (the legacy global generator is what libraries use)
    torch.manual_seed(seed)


def parameter_groups(model: ReIDModel, weight_decay: float) -> list[dict[str, Any]]:
    """Adam parameter groups: weight decay on the backbone, BN neck and classifier, none on the
    CycleTrans head (:meth:`ReIDModel.head_parameters`).

    The head's attention starts near uniform (eq. 4 has no temperature), so its gradients are
    tiny for many steps; Adam normalises the L2 term with them, and a decayed head shrinks
    towards zero at about the learning rate per step. Measured on the demo: with decay on every
    parameter, W_theta and W_tau of KCM fell from 4e-2 to 1e-22 in 2,400 steps and the anchor
    attention of eq. 5 stayed exactly uniform.
    """
    head = model.head_parameters()
    head_ids = {id(p) for p in head}
    rest = [p for p in model.parameters() if id(p) not in head_ids]
    groups = [{"params": rest, "weight_decay": weight_decay}]
    if head:
        groups.append({"params": head, "weight_decay": 0.0})
    return groups


class Trainer:
    """One training run; :func:`train` is the entry point."""

    def __init__(self, config: TrainConfig, ctx: ddp.DistContext, resume: bool) -> None:
        self.config, self.ctx = config, ctx
        self.output = Path(config.output)
        self.device = ctx.device
        self.amp = self.device.type == "cuda" and config.amp is not False
        if config.sync_bn and self.device.type != "cuda":
            raise ValueError("--sync-bn needs CUDA devices (SyncBatchNorm has no CPU "
                             f"implementation); this run is on {self.device}")
        state = self._check_output(resume)
        root = self._data_root()
        self.splits = load_splits(config, root)
        pre = Preprocessing(height=config.height, width=config.width)
        self.dataset = ReIDDataset(self.splits.train, build_transforms(
            pre, train=True, random_erasing=config.random_erasing, flip=config.flip,
            pad_crop=config.pad_crop))
        self.sampler = CrossModalitySampler(
            self.dataset.labels, self.dataset.modalities, num_ids=config.num_ids,
            num_per_modality=config.num_per_modality, seed=config.seed,
            num_batches=config.batches_per_epoch, rank=ctx.rank, world_size=ctx.world_size)
        seed_everything(config.seed)
        self.model = self._build_model(pre).to(self.device)
        step_module = _TrainStep(self.model)
        if ctx.distributed:
            step_module = DistributedDataParallel(
                step_module, device_ids=[self.device.index] if self.device.type == "cuda"
                else None)
        self.step_module = step_module
        self.optimizer = torch.optim.Adam(parameter_groups(self.model, config.weight_decay),
                                          lr=config.lr)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp)
        self.epoch, self.position, self.global_step = 0, 0, 0
        self.best_score: float | None = None
        self.best_epoch: int | None = None
        self.sums: dict[str, float] = {}
        self.steps_in_epoch, self.epoch_seconds = 0, 0.0
        if state is not None:
            self._restore(state)
        elif ctx.is_main:
            self.output.mkdir(parents=True, exist_ok=True)
            _truncate_metrics(self.output / "metrics.jsonl", 0)  # a run killed before resume.pt
            record = run_config_record(config, self.splits.root, ctx.world_size)
            (self.output / "config.json").write_text(json.dumps(record, indent=2) + "\n")

    # ----------------------------------------------------------------------- set-up
    def _check_output(self, resume: bool) -> dict[str, Any] | None:
        """The resume state to continue from (None for a fresh run); refuse to overwrite."""
        path = self.output / RESUME_FILE
        if not resume:
            if path.exists():
                raise TrainingError(
                    f"{self.output} already holds a training run ({RESUME_FILE}); pass --resume "
                    f"to continue it or choose another --output")
            return None
        state = load_resume_state(path)
        saved_config = TrainConfig.from_dict(state["config"])
        differences = config_differences(saved_config, self.config)
        if differences:
            raise ValueError(f"cannot resume {path} with a different config: "
                             + "; ".join(differences))
        if state["world_size"] != self.ctx.world_size:
            raise ValueError(f"{path} was written by {state['world_size']} process(es); resume "
                             f"it with the same number (now {self.ctx.world_size})")
        return state

    def _data_root(self) -> str:
        if self.config.data_root is not None:
            return self.config.data_root
        if self.ctx.is_main:
            root = demo_data_root(progress=self.config.progress)
        ddp.barrier()
        if not self.ctx.is_main:
            root = demo_data_root(progress=False)
        return str(root)

    def _build_model(self, pre: Preprocessing) -> nn.Module:
        c = self.config
        try:
            model = build_model(
                c.variant, c.backbone, self.dataset.num_classes, num_anchors=c.num_anchors,
                num_prototypes=c.num_prototypes, margin=c.margin, loss_weights=c.loss_weights,
                cycle_grad=c.cycle_grad, discrepancy_norm=c.discrepancy_norm,
                pretrained=c.pretrained, preprocessing=pre)
        except RuntimeError as error:
            if not c.pretrained:
                raise
            raise TrainingError(f"{error}\n(or train from scratch with --no-pretrained)") from error
        if c.sync_bn:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return model

    # ----------------------------------------------------------------------- loop
    def fit(self) -> TrainResult:
        c = self.config
        if self.ctx.is_main and self.splits.val == []:
            self._log("no validation identities (pass --validation to hold some out): best is "
                      "not written; last.safetensors is the result")
        while self.epoch < c.epochs:
            if self._max_steps_reached() or not self._train_epoch():
                self._log(f"stopped after --max-steps {c.max_steps} steps (epoch "
                          f"{self.epoch + 1}, step {self.position}); --resume continues")
                return self._result(finished=False)
            self._end_epoch()
        if self.ctx.is_main:
            result = self._result(finished=True)
            summary = {k: (str(v) if isinstance(v, Path) else v)
                       for k, v in vars(result).items() if k != "model"}
            (self.output / "result.json").write_text(json.dumps(summary, indent=2) + "\n")
        return self._result(finished=True)

    def _train_epoch(self) -> bool:
        """Train the rest of the current epoch; False if ``max_steps`` stopped it."""
        c = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(c, self.epoch)
        batches = SeededBatches(self.sampler, c.seed, self.epoch, self.position)
        loader = DataLoader(SeededDataset(self.dataset), batch_sampler=batches,
                            num_workers=c.workers, pin_memory=self.device.type == "cuda",
                            generator=torch.Generator())
        self.step_module.train()
        bar = tqdm(total=len(self.sampler), initial=self.position, leave=False,
                   desc=f"epoch {self.epoch + 1}/{c.epochs}",
                   disable=not (self.ctx.is_main and c.progress))
        started = time.perf_counter()
        with bar:
            for images, labels, modalities, _ in loader:
                values = self._step(images, labels, modalities)
                self.position += 1
                self.global_step += 1
                self.steps_in_epoch += 1
                for name, value in values.items():
                    self.sums[name] = self.sums.get(name, 0.0) + value
                bar.set_postfix(loss=f"{values['loss']:.3f}")
                bar.update()
                stop = self._max_steps_reached()
                mid_epoch = self.position < len(self.sampler)
                if mid_epoch and (stop or (c.save_every and self.global_step % c.save_every == 0)):
                    self.epoch_seconds += time.perf_counter() - started
                    started = time.perf_counter()
                    self._save_state()
                if stop and mid_epoch:
                    self._save_model("last")
                    return False
        self.epoch_seconds += time.perf_counter() - started
        return True

    def _max_steps_reached(self) -> bool:
        return self.config.max_steps is not None and self.global_step >= self.config.max_steps

    def _step(self, images: torch.Tensor, labels: torch.Tensor,
              modalities: torch.Tensor) -> dict[str, float]:
        """One optimiser step; returns this rank's loss terms as floats."""
        images = images.to(self.device, non_blocking=True)
        labels, modalities = labels.to(self.device), modalities.to(self.device)
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            losses = self.step_module(images, modalities, labels)
        names = sorted(losses)
        values = torch.stack([losses[n].detach().float() for n in names])
        bad = ddp.all_reduce_sum((~torch.isfinite(values[names.index("loss")])).float())
        if bad.item() > 0:
            self._raise_non_finite(dict(zip(names, values.tolist(), strict=True)))
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(losses["loss"]).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return dict(zip(names, values.tolist(), strict=True))

    def _raise_non_finite(self, values: dict[str, float]) -> None:
        per_rank = ddp.all_gather_objects(values)
        terms = "; ".join(
            (f"rank {rank}: " if len(per_rank) > 1 else "")
            + ", ".join(f"{k}={v:.6g}" for k, v in terms.items())
            for rank, terms in enumerate(per_rank))
        raise NonFiniteLossError(
            f"non-finite loss at epoch {self.epoch + 1}, step {self.position + 1} (global step "
            f"{self.global_step + 1}): {terms}. The run stopped; the last resume state in "
            f"{self.output} is from before this step. Try a lower --lr (now "
            f"{learning_rate(self.config, self.epoch):g}) or check the data.")

    def _end_epoch(self) -> None:
        """Average the epoch's losses, validate, write checkpoints, metrics and resume state."""
        c = self.config
        names = sorted(self.sums)
        totals = ddp.all_reduce_sum(torch.tensor(
            [self.sums[n] for n in names] + [float(self.steps_in_epoch)], dtype=torch.float64,
            device=self.device))
        steps = totals[-1].item()
        row: dict[str, Any] = {
            "epoch": self.epoch + 1, "lr": learning_rate(c, self.epoch),
            "time_s": round(self.epoch_seconds, 3), "steps": self.steps_in_epoch,
            "losses": {n: totals[i].item() / steps for i, n in enumerate(names)},
        }
        ddp.broadcast_buffers(self.model)
        last_epoch = self.epoch + 1 == c.epochs
        if self.splits.val and (last_epoch or (c.eval_every and row["epoch"] % c.eval_every == 0)):
            if self.ctx.is_main:
                row["val"] = self._validate()
                if self.best_score is None or row["val"][BEST_METRIC] > self.best_score:
                    self.best_score, self.best_epoch = row["val"][BEST_METRIC], row["epoch"]
                    self._save_model("best")
            self.best_score, self.best_epoch = ddp.broadcast_object(
                (self.best_score, self.best_epoch))
        self._save_model("last")
        if self.ctx.is_main:
            with open(self.output / "metrics.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
            self._log(_epoch_line(row, self.best_score, self.best_epoch))
        self.epoch, self.position = self.epoch + 1, 0
        self.sums, self.steps_in_epoch, self.epoch_seconds = {}, 0, 0.0
        self._save_state()

    def _validate(self) -> dict[str, float]:
        c = self.config
        feats = extract_features(self.model, self.splits.val, batch_size=c.eval_batch_size,
                                 device=self.device, workers=c.workers, progress=False)
        return cross_modality_retrieval(feats, "sysu" if c.dataset == "sysu" else "regdb")

    # ----------------------------------------------------------------------- files
    def _save_model(self, name: str) -> None:
        if self.ctx.is_main:
            save_model(self.model, self.output / f"{name}.safetensors")

    def _save_state(self) -> None:
        """Write the resume state (rank 0; every rank contributes its RNG state)."""
        rngs = ddp.all_gather_objects(rng_state())
        if not self.ctx.is_main:
            return
        save_resume_state(self.output / RESUME_FILE, {
            "version": STATE_VERSION, "config": self.config.to_dict(),
            "world_size": self.ctx.world_size, "epoch": self.epoch, "position": self.position,
            "global_step": self.global_step, "best_score": self.best_score,
            "best_epoch": self.best_epoch, "sums": dict(self.sums),
            "steps_in_epoch": self.steps_in_epoch, "epoch_seconds": self.epoch_seconds,
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(), "rng": rngs,
        })

    def _restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"][self.ctx.rank])
        self.epoch, self.position = state["epoch"], state["position"]
        self.global_step = state["global_step"]
        self.best_score, self.best_epoch = state["best_score"], state["best_epoch"]
        self.sums, self.steps_in_epoch = dict(state["sums"]), state["steps_in_epoch"]
        self.epoch_seconds = state["epoch_seconds"]
        if self.ctx.is_main:
            _truncate_metrics(self.output / "metrics.jsonl", self.epoch)
            self._log(f"resuming {self.output} at epoch {self.epoch + 1}, step {self.position} "
                      f"(global step {self.global_step})")

    def _result(self, finished: bool) -> TrainResult:
        best = self.output / "best.safetensors"
        return TrainResult(
            output=self.output, last=self.output / "last.safetensors",
            best=best if self.best_epoch is not None else None, best_score=self.best_score,
            best_epoch=self.best_epoch, epochs_done=self.epoch, global_step=self.global_step,
            finished=finished, model=self.model)

    def _log(self, message: str) -> None:
        if self.ctx.is_main:
            tqdm.write(message)


class _TrainStep(nn.Module):
    """Forward pass and loss in one module, so DDP sees every tensor the loss depends on."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor, modalities: torch.Tensor,
                labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """``images [B,3,H,W]``, ``modalities [B]``, ``labels [B]`` -> loss terms (eq. 19)."""
        return self.model.loss(self.model(images, modalities, labels), labels, modalities)


def _truncate_metrics(path: Path, epochs_done: int) -> None:
    """Drop metrics lines of epochs after ``epochs_done`` (written before a kill)."""
    if path.is_file():
        rows = [line for line in path.read_text().splitlines()
                if line.strip() and json.loads(line)["epoch"] <= epochs_done]
        path.write_text("".join(row + "\n" for row in rows))


def _epoch_line(row: dict[str, Any], best: float | None, best_epoch: int | None) -> str:
    losses = " ".join(f"{k}={v:.4f}" for k, v in row["losses"].items())
    line = f"epoch {row['epoch']}: {losses} lr={row['lr']:.3g} ({row['time_s']:.1f}s)"
    if "val" in row:
        v = row["val"]
        line += (f" | val R1={100 * v['r1']:.2f} mAP={100 * v['mAP']:.2f}"
                 f" (best mAP {100 * best:.2f} at epoch {best_epoch})")
    return line
