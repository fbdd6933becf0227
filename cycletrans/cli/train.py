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

from cycletrans.engine.config import PRESETS, TrainConfig, preset_values
from cycletrans.models.dmm import DISCREPANCY_NORMS
from cycletrans.models.reid_model import CYCLE_GRADS

# TrainConfig's own defaults; presets change some of them (preset_values).
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}


def preset_default(name: str) -> str:
    """Help-text default of a config field: one value, or the value of each preset."""
    values = {p: {**_DEFAULTS, **preset_values(p)}.get(name) for p in PRESETS}
    shown = {p: " ".join(map(str, v)) if isinstance(v, tuple) else
             ("none" if name == "max_steps" else "auto") if v is None else str(v)
             for p, v in values.items()}
    if len(set(shown.values())) == 1:
        return f"default: {shown['sysu']}"
    return "default: " + ", ".join(f"{p} {v}" for p, v in shown.items())


def add_override_arguments(parser: argparse.ArgumentParser, variant: bool = True) -> None:
    """The training options shared by ``train`` and ``ablate`` (all default to the preset)."""
    from cycletrans.models import BACKBONES, VARIANTS

    def option(flag: str, field: str, help: str, **kwargs: Any) -> None:
        shown = "" if field == "data_root" else f" ({preset_default(field)})"
        parser.add_argument(flag, dest=field, default=None, help=help + shown, **kwargs)

    def switch(flag: str, field: str, help: str) -> None:
        parser.add_argument(flag, dest=field, default=None, action=argparse.BooleanOptionalAction,
                            help=f"{help} ({preset_default(field)})")

    option("--data-root", "data_root", "dataset folder (SYSU-MM01 or RegDB layout); the demo "
           "preset uses the generated set cached in $CYCLETRANS_CACHE or ~/.cache/cycletrans "
           "(generated on first use) when omitted", metavar="DIR")
    if variant:
        option("--variant", "variant", "model variant (ablation row)", choices=VARIANTS)
    option("--backbone", "backbone", "convolutional backbone", choices=BACKBONES)
    switch("--pretrained", "pretrained", "start from ImageNet weights (needs the torchvision "
           "weights in the torch.hub cache or network access)")
    option("--trial", "trial", "RegDB trial (1..10) to train on", type=int)
    option("--epochs", "epochs", "number of epochs", type=int)
    option("--lr", "lr", "Adam learning rate", type=float)
    option("--milestones", "milestones", "epoch indices (0-based, as MultiStepLR) from which "
           "the learning rate is multiplied by --gamma once more", type=int, nargs="+",
           metavar="EPOCH")
    option("--gamma", "gamma", "learning-rate factor at each milestone", type=float)
    option("--weight-decay", "weight_decay", "Adam weight decay of the backbone, BN neck and "
           "classifier; the CycleTrans head (anchors, prototypes, attention) gets none (not given "
           "by the paper; 5e-4 as in Adam-trained ReID baselines)", type=float)
    option("--num-ids", "num_ids", "identities per batch (P, per process)", type=int)
    option("--num-per-modality", "num_per_modality", "images per identity and modality (K): "
           "a batch holds P x (K visible + K infrared)", type=int)
    option("--batches-per-epoch", "batches_per_epoch", "batches per epoch (auto: about one pass "
           "over the larger modality)", type=int)
    option("--height", "height", "input height in pixels", type=int)
    option("--width", "width", "input width in pixels", type=int)
    switch("--flip", "flip", "random horizontal flip (p = 0.5)")
    option("--random-erasing", "random_erasing", "random erasing probability", type=float)
    switch("--pad-crop", "pad_crop", "pad 10 pixels and random-crop back (the authors' code; "
           "not in the paper)")
    option("--num-anchors", "num_anchors", "pseudo anchors k (eq. 5)", type=int)
    option("--num-prototypes", "num_prototypes", "prototypes n (eq. 6-7)", type=int)
    option("--margin", "margin", "metric-loss margin rho (eq. 14)", type=float)
    option("--cycle-grad", "cycle_grad", "gradient route of the cycle: 'anchors' (only through "
           "the anchor features F_N, the paper) or 'all'", choices=CYCLE_GRADS)
    option("--discrepancy-norm", "discrepancy_norm", "P' of eq. 6: 'layer' = LayerNorm(P - f^) "
           "as in the authors' code (trains from the first step), 'none' = as printed (starts "
           "degenerate, see docs/paper-notes.md)", choices=DISCREPANCY_NORMS)
    option("--loss-weights", "loss_weights", "lambda_1..4 of eq. 19 (L_sep, L_MMD, L_rec, "
           "L_aln)", type=float, nargs=4, metavar=("L1", "L2", "L3", "L4"))
    option("--seed", "seed", "random seed (model init, batches, augmentation)", type=int)
    option("--workers", "workers", "DataLoader worker processes", type=int)
    option("--device", "device", "auto (CUDA when available), cpu, cuda or cuda:N")
    switch("--amp", "amp", "mixed precision (float16 autocast + GradScaler) on CUDA; always off "
           "on CPU (auto = on for CUDA)")
    switch("--sync-bn", "sync_bn", "SyncBatchNorm across DDP processes (CUDA only)")
    switch("--validation", "validation", "hold out validation identities (SYSU-MM01: the val "
           "ids; RegDB: --val-fraction of the training ids), validate every --eval-every epochs "
           "and keep the best validation mAP as best.safetensors")
    option("--val-fraction", "val_fraction", "RegDB: fraction of training ids held out by "
           "--validation", type=float)
    option("--eval-every", "eval_every", "validate every N epochs (and after the last; 0: only "
           "after the last)", type=int)
    option("--eval-batch-size", "eval_batch_size", "batch size of feature extraction", type=int)
    option("--save-every", "save_every", "also write the resume state every N steps (0: only at "
           "the end of each epoch)", type=int)
    option("--max-steps", "max_steps", "debugging: stop after N optimiser steps in all "
           "(--resume continues)", type=int)
    parser.add_argument("--progress", dest="progress", default=None,
                        action=argparse.BooleanOptionalAction,
                        help="show progress bars (default: on)")


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Config fields given on the command line (the ones left at None take the preset's)."""
    names = set(_DEFAULTS) - {"preset", "output", "dataset"}
    return {k: v for k, v in vars(args).items() if k in names and v is not None}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train", help="train a model (paper recipe per preset, resumable, DDP under torchrun)",
        description="Train CycleTrans or one of its ablation rows. A preset sets the paper's "
        "recipe (sysu, regdb) or the CPU demo; every option below overrides one value. Files "
        "written to --output: config.json, metrics.jsonl (one line per epoch), "
        "last.safetensors/.json, best.safetensors/.json (with --validation), resume.pt, "
        "result.json. Under torchrun each process trains on its own identities (DDP); only "
        "rank 0 writes files.")
    parser.add_argument("--preset", choices=PRESETS, default=None,
                        help="recipe: sysu / regdb (paper, ResNet-50 at 384x192, 140 epochs) or "
                        "demo (synthetic set, slim ResNet-18 at 128x64, minutes on a CPU); "
                        "required unless --resume")
    parser.add_argument("--output", default=None, metavar="DIR",
                        help="run folder (default: runs/<preset>/<variant>)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --output from its resume.pt, with its saved "
                        "config (options given again must agree, except --workers, "
                        "--eval-batch-size, --progress, --save-every, --max-steps)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the run already in --output (its metrics, checkpoints, "
                        "resume state and result are deleted); without it such a folder is "
                        "refused")
    parser.add_argument("--check-images", action="store_true",
                        help="decode every training and validation image before training, so a "
                        "corrupt or truncated file stops the run at once, not when first "
                        "sampled (default: only each file's header is read)")
    add_override_arguments(parser)
    parser.set_defaults(run=run)
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The run's config: the preset + overrides, or the saved config of a resumed run."""
    from cycletrans.engine.config import default_output, load_run_config, resolve_config

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
    return saved.replace(**overrides, output=args.output)


def run(args: argparse.Namespace) -> int:
    from cycletrans.engine import train

    config = config_from_args(args)
    result = train(config, resume=args.resume, overwrite=args.overwrite,
                   check_images=args.check_images)
    if result.finished and os.environ.get("RANK", "0") == "0":
        chosen = result.best or result.last
        print(f"done: {result.epochs_done} epochs, {result.global_step} steps; model: {chosen}"
              + (f" (best validation mAP {100 * result.best_score:.2f} at epoch "
                 f"{result.best_epoch})" if result.best else " (last epoch; no validation)"))
    return 0
