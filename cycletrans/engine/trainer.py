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

A folder already holding any of these (but ``config.json``) is not overwritten unless asked
(``overwrite``). SIGINT or SIGTERM stops the run at the next step boundary after writing the
resume state (:class:`StoppedBySignalError`); a second signal acts at once. Resuming drops a
torn last line of ``metrics.jsonl`` (a kill mid-append) and removes the temporary files of
killed writes. The images' headers are checked at start-up; ``check_images`` decodes them all.

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
import signal
import threading
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
from cycletrans.data import (
    CrossModalitySampler,
    ImageReadError,
    ReIDDataset,
    build_transforms,
    check_images,
)
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
    Progress,
    load_resume_state,
    rng_state,
    save_resume_state,
    set_rng_state,
)
from cycletrans.evaluation.protocols import cross_modality_retrieval
from cycletrans.files import remove_temp_files
from cycletrans.models import ModelSpec, model_from_spec
from cycletrans.models.reid_model import ReIDModel
from cycletrans.preprocessing import Preprocessing

BEST_METRIC = "mAP"
# What a run writes besides config.json: a folder holding any of them holds results.
RUN_FILES = (
    "metrics.jsonl",
    "last.safetensors",
    "last.json",
    "best.safetensors",
    "best.json",
    RESUME_FILE,
    "result.json",
)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingError(RuntimeError):
    """A run cannot go on for a reason the user can act on (the message says which)."""


class NonFiniteLossError(TrainingError):
    """The loss became NaN or infinite."""


class StoppedBySignalError(TrainingError):
    """SIGINT/SIGTERM stopped the run at a step boundary; its resume state is saved."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


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


def train(
    config: TrainConfig, resume: bool = False, overwrite: bool = False, check_images: bool = False
) -> TrainResult:
    """Train ``config``; with ``resume``, continue from ``<output>/resume.pt``.

    ``overwrite`` replaces a run already in ``config.output`` (its files are deleted first);
    ``check_images`` decodes every training and validation image before training (else only
    their headers are read).

    Under ``torchrun`` (RANK/WORLD_SIZE/LOCAL_RANK set) this joins the process group and trains
    with DistributedDataParallel. Raises ValueError for a bad config or data (an unreadable
    image: ``ImageReadError``), FileNotFoundError for missing data or resume state,
    :class:`TrainingError` when the run cannot proceed (e.g. ImageNet weights unavailable
    offline, output already holding a run), :class:`NonFiniteLossError` for a NaN/inf loss and
    :class:`StoppedBySignalError` after SIGINT/SIGTERM.
    """
    ctx = ddp.init_distributed(config.device)
    try:
        return Trainer(config, ctx, resume, overwrite, check_images).fit()
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
    CycleTrans head (:meth:`ReIDModel.head_parameters`): a decayed head collapses to zero
    (why: docs/paper-notes.md, "Weight decay").
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

    def __init__(
        self,
        config: TrainConfig,
        ctx: ddp.DistContext,
        resume: bool,
        overwrite: bool = False,
        check_images: bool = False,
    ) -> None:
        self.config, self.ctx = config, ctx
        self.output = Path(config.output)
        self.device = ctx.device
        self.amp = self.device.type == "cuda" and config.amp is not False
        if config.sync_bn and self.device.type != "cuda":
            raise ValueError(
                "--sync-bn needs CUDA devices (SyncBatchNorm has no CPU "
                f"implementation); this run is on {self.device}"
            )
        state = self._check_output(resume, overwrite)
        root = self._data_root()
        self.splits = load_splits(config, root)
        self._check_images(decode=check_images)
        pre = Preprocessing(height=config.height, width=config.width)
        self.dataset = ReIDDataset(
            self.splits.train,
            build_transforms(
                pre,
                train=True,
                random_erasing=config.random_erasing,
                flip=config.flip,
                pad_crop=config.pad_crop,
                grayscale=config.grayscale,
            ),
        )
        self.sampler = CrossModalitySampler(
            self.dataset.labels,
            self.dataset.modalities,
            num_ids=config.num_ids,
            num_per_modality=config.num_per_modality,
            seed=config.seed,
            num_batches=config.batches_per_epoch,
            rank=ctx.rank,
            world_size=ctx.world_size,
            epoch_pass=config.epoch_pass,
        )
        seed_everything(config.seed)
        self.model = self._build_model(pre).to(self.device)
        step_module = _TrainStep(self.model)
        if ctx.distributed:
            step_module = DistributedDataParallel(
                step_module, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        self.step_module = step_module
        self.optimizer = torch.optim.Adam(
            parameter_groups(self.model, config.weight_decay), lr=config.lr
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp)
        self.progress = Progress()
        self.stop = _StopSignals()
        if ctx.is_main:
            removed = remove_temp_files(self.output)
            if removed:
                self._log(
                    f"removed {len(removed)} temporary file(s) of killed writes in "
                    f"{self.output}: {', '.join(p.name for p in removed)}"
                )
        if state is not None:
            self._restore(state)
        elif ctx.is_main:
            self.output.mkdir(parents=True, exist_ok=True)
            for name in RUN_FILES:  # present only with overwrite (_check_output)
                (self.output / name).unlink(missing_ok=True)
            record = run_config_record(config, self.splits.root, ctx.world_size)
            (self.output / "config.json").write_text(json.dumps(record, indent=2) + "\n")

    # ----------------------------------------------------------------------- set-up
    def _check_output(self, resume: bool, overwrite: bool) -> dict[str, Any] | None:
        """The resume state to continue from (None for a fresh run); refuse to overwrite."""
        path = self.output / RESUME_FILE
        if resume and overwrite:
            raise ValueError(
                "--resume continues the run in the output folder and --overwrite "
                "replaces it: pass one of them"
            )
        if not resume:
            held = [name for name in RUN_FILES if (self.output / name).exists()]
            if held and not overwrite:
                raise TrainingError(
                    f"{self.output} already holds a training run ({', '.join(held)}); pass "
                    f"--resume to continue it, --overwrite to replace it, or choose another "
                    f"--output"
                )
            return None
        state = load_resume_state(path)
        try:
            saved_config = TrainConfig.from_dict(state["config"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{path} holds no readable training config ({error})") from error
        differences = config_differences(saved_config, self.config)
        if differences:
            raise ValueError(
                f"cannot resume {path} with a different config: " + "; ".join(differences)
            )
        if state["world_size"] != self.ctx.world_size:
            raise ValueError(
                f"{path} was written by {state['world_size']} process(es); resume "
                f"it with the same number (now {self.ctx.world_size})"
            )
        return state

    def _check_images(self, decode: bool) -> None:
        """Read every training and validation image's header (or decode it): fail before
        training, on every rank, rather than when a broken image is first sampled."""
        problem = None
        if self.ctx.is_main:
            paths = [r.path for r in self.splits.train + self.splits.val]
            try:
                check_images(
                    paths,
                    decode=decode,
                    workers=max(1, self.config.workers),
                    progress=self.config.progress,
                )
            except ImageReadError as error:
                problem = str(error)
        problem = ddp.broadcast_object(problem)
        if problem is not None:
            raise ImageReadError(problem)

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
            spec = ModelSpec(c.variant, c.backbone, self.dataset.num_classes, c.model, pre)
            model = model_from_spec(spec, load_pretrained=True)
        except RuntimeError as error:
            if not c.model.pretrained:
                raise
            raise TrainingError(f"{error}\n(or train from scratch with --no-pretrained)") from error
        model.backbone.freeze(c.freeze_stages)
        if c.sync_bn:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return model

    # ----------------------------------------------------------------------- loop
    def fit(self) -> TrainResult:
        c, p = self.config, self.progress
        if self.ctx.is_main and self.splits.val == []:
            self._log(
                "no validation identities (pass --validation to hold some out): best is "
                "not written; last.safetensors is the result"
            )
        with self.stop:
            while p.epoch < c.epochs:
                if self._max_steps_reached() or not self._train_epoch():
                    self._log(
                        f"stopped after --max-steps {c.max_steps} steps (epoch "
                        f"{p.epoch + 1}, step {p.position}); --resume continues"
                    )
                    return self._result(finished=False)
                self._end_epoch()
                signum = self._stop_signal()  # received during validation or saving
                if signum is not None:
                    self._raise_stopped(signum)
        if self.ctx.is_main:
            result = self._result(finished=True)
            summary = {
                k: (str(v) if isinstance(v, Path) else v)
                for k, v in vars(result).items()
                if k != "model"
            }
            (self.output / "result.json").write_text(json.dumps(summary, indent=2) + "\n")
        return self._result(finished=True)

    def _train_epoch(self) -> bool:
        """Train the rest of the current epoch; False if ``max_steps`` stopped it."""
        c, p = self.config, self.progress
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(c, p.epoch)
        batches = SeededBatches(self.sampler, c.seed, p.epoch, p.position)
        loader = DataLoader(
            SeededDataset(self.dataset),
            batch_sampler=batches,
            num_workers=c.workers,
            pin_memory=self.device.type == "cuda",
            generator=torch.Generator(),
            worker_init_fn=_leave_signals_to_main,
        )
        self.step_module.train()
        bar = tqdm(
            total=len(self.sampler),
            initial=p.position,
            leave=False,
            desc=f"epoch {p.epoch + 1}/{c.epochs}",
            disable=not (self.ctx.is_main and c.progress),
        )
        started = time.perf_counter()
        with bar:
            for images, labels, modalities, _ in loader:
                values = self._step(images, labels, modalities)
                p.add_step(values)
                bar.set_postfix(loss=f"{values['loss']:.3f}")
                bar.update()
                stop = self._max_steps_reached()
                mid_epoch = p.position < len(self.sampler)
                signum = self._stop_signal()
                if signum is not None or (
                    mid_epoch and (stop or (c.save_every and p.global_step % c.save_every == 0))
                ):
                    p.epoch_seconds += time.perf_counter() - started
                    started = time.perf_counter()
                    self._save_state()
                if signum is not None:
                    self._raise_stopped(signum)
                if stop and mid_epoch:
                    self._save_model("last")
                    return False
        p.epoch_seconds += time.perf_counter() - started
        return True

    def _stop_signal(self) -> int | None:
        """The signal asking the run to stop (agreed by every rank), or None."""
        if not self.ctx.distributed:
            return self.stop.received
        flags = ddp.all_reduce_sum(
            torch.tensor([float(self.stop.received == s) for s in STOP_SIGNALS], device=self.device)
        )
        return next((s for s, f in zip(STOP_SIGNALS, flags.tolist(), strict=True) if f > 0), None)

    def _raise_stopped(self, signum: int) -> None:
        """Raise StoppedBySignalError once the resume state is saved."""
        p = self.progress
        raise StoppedBySignalError(
            f"stopped by {signal.Signals(signum).name} at epoch {p.epoch + 1}, step {p.position} "
            f"(global step {p.global_step}); the resume state is saved: --resume continues "
            f"{self.output}",
            signum,
        )

    def _max_steps_reached(self) -> bool:
        return (
            self.config.max_steps is not None and self.progress.global_step >= self.config.max_steps
        )

    def _step(
        self, images: torch.Tensor, labels: torch.Tensor, modalities: torch.Tensor
    ) -> dict[str, float]:
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
            for rank, terms in enumerate(per_rank)
        )
        p = self.progress
        raise NonFiniteLossError(
            f"non-finite loss at epoch {p.epoch + 1}, step {p.position + 1} (global step "
            f"{p.global_step + 1}): {terms}. The run stopped; the last resume state in "
            f"{self.output} is from before this step. Try a lower --lr (now "
            f"{learning_rate(self.config, p.epoch):g}) or check the data."
        )

    def _end_epoch(self) -> None:
        """Average the epoch's losses, validate, write checkpoints, metrics and resume state."""
        c, p = self.config, self.progress
        names = sorted(p.sums)
        totals = ddp.all_reduce_sum(
            torch.tensor(
                [p.sums[n] for n in names] + [float(p.position)],
                dtype=torch.float64,
                device=self.device,
            )
        )
        steps = totals[-1].item()
        row: dict[str, Any] = {
            "epoch": p.epoch + 1,
            "lr": learning_rate(c, p.epoch),
            "time_s": round(p.epoch_seconds, 3),
            "steps": p.position,
            "losses": {n: totals[i].item() / steps for i, n in enumerate(names)},
        }
        ddp.broadcast_buffers(self.model)
        last_epoch = p.epoch + 1 == c.epochs
        if self.splits.val and (last_epoch or (c.eval_every and row["epoch"] % c.eval_every == 0)):
            if self.ctx.is_main:
                row["val"] = self._validate()
                if p.best_score is None or row["val"][BEST_METRIC] > p.best_score:
                    p.best_score, p.best_epoch = row["val"][BEST_METRIC], row["epoch"]
                    self._save_model("best")
            p.best_score, p.best_epoch = ddp.broadcast_object((p.best_score, p.best_epoch))
        self._save_model("last")
        if self.ctx.is_main:
            with open(self.output / "metrics.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
            self._log(_epoch_line(row, p.best_score, p.best_epoch))
        p.next_epoch()
        self._save_state()

    def _validate(self) -> dict[str, float]:
        c = self.config
        feats = extract_features(
            self.model,
            self.splits.val,
            batch_size=c.eval_batch_size,
            device=self.device,
            workers=c.workers,
            progress=False,
        )
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
        save_resume_state(
            self.output / RESUME_FILE,
            {
                "config": self.config.to_dict(),
                "world_size": self.ctx.world_size,
                "progress": self.progress.to_dict(),
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(),
                "rng": rngs,
            },
        )

    def _restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"][self.ctx.rank])
        self.progress = p = Progress.from_dict(state["progress"])
        if self.ctx.is_main:
            torn = _truncate_metrics(self.output / "metrics.jsonl", p.epoch)
            if torn is not None:
                self._log(
                    f"dropped a torn last line of {self.output / 'metrics.jsonl'} (a write "
                    f"cut short by a kill): {torn[:60]!r}"
                )
            self._log(
                f"resuming {self.output} at epoch {p.epoch + 1}, step {p.position} "
                f"(global step {p.global_step})"
            )

    def _result(self, finished: bool) -> TrainResult:
        best = self.output / "best.safetensors"
        p = self.progress
        return TrainResult(
            output=self.output,
            last=self.output / "last.safetensors",
            best=best if p.best_epoch is not None else None,
            best_score=p.best_score,
            best_epoch=p.best_epoch,
            epochs_done=p.epoch,
            global_step=p.global_step,
            finished=finished,
            model=self.model,
        )

    def _log(self, message: str) -> None:
        if self.ctx.is_main:
            tqdm.write(message)


class _StopSignals:
    """While entered: the first SIGINT or SIGTERM is only recorded in ``received`` (the trainer
    stops at the next step boundary) and the previous handlers come back, so a second signal
    acts at once. Signal handlers exist in the main thread only; elsewhere this does nothing."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._record) for s in STOP_SIGNALS}
        return self

    def _record(self, signum: int, frame: object) -> None:
        self.received = signum
        self._restore_handlers()

    def _restore_handlers(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def __exit__(self, *exc: object) -> None:
        self._restore_handlers()


def _leave_signals_to_main(worker_id: int) -> None:
    """DataLoader workers ignore SIGINT/SIGTERM (a Ctrl-C reaches the whole process group):
    the main process stops them when it stops."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


class _TrainStep(nn.Module):
    """Forward pass and loss in one module, so DDP sees every tensor the loss depends on."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, images: torch.Tensor, modalities: torch.Tensor, labels: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """``images [B,3,H,W]``, ``modalities [B]``, ``labels [B]`` -> loss terms (eq. 19)."""
        return self.model.loss(self.model(images, modalities, labels), labels, modalities)


def _truncate_metrics(path: Path, epochs_done: int) -> str | None:
    """Drop metrics lines of epochs after ``epochs_done`` (written before a kill), and a torn
    last line (a kill mid-append), which is returned; another bad line raises ValueError."""
    if not path.is_file():
        return None
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    kept, torn = [], None
    for number, line in enumerate(lines, start=1):
        try:
            epoch = json.loads(line)["epoch"]
        except json.JSONDecodeError as error:
            if number < len(lines):
                raise ValueError(f"{path} line {number} is not valid JSON ({error})") from error
            torn = line
            continue
        except (KeyError, TypeError) as error:
            raise ValueError(
                f"{path} line {number} is not a metrics row with an 'epoch'"
            ) from error
        if epoch <= epochs_done:
            kept.append(line)
    path.write_text("".join(line + "\n" for line in kept))
    return torn


def _epoch_line(row: dict[str, Any], best: float | None, best_epoch: int | None) -> str:
    losses = " ".join(f"{k}={v:.4f}" for k, v in row["losses"].items())
    line = f"epoch {row['epoch']}: {losses} lr={row['lr']:.3g} ({row['time_s']:.1f}s)"
    if "val" in row:
        v = row["val"]
        line += (
            f" | val R1={100 * v['r1']:.2f} mAP={100 * v['mAP']:.2f}"
            f" (best mAP {100 * best:.2f} at epoch {best_epoch})"
        )
    return line
