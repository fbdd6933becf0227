"""``python -m cycletrans ablate``: reproduce the paper's Table II and/or III.

Every row of the asked tables is trained with the same preset, overrides and seed into
``<output>/<variant>/`` (Table II: baseline, kcm, kcm_me, kcm_me_mmd, dmm, dmm_rec, full;
Table III: baseline, dmm_ap, dmm_residual_ap, transformer, full). A row whose folder already
holds a finished run of the same config is reused, a killed one is resumed, so ``--table 2
--table 3`` trains baseline and full once and a killed ablation continues where it stopped. Each
row's checkpoint (best on validation if there is one, else last) is evaluated on the test split
in the paper's setting (SYSU-MM01 all-search single-shot; RegDB visible -> infrared, trial
``--trial``) and the table is written as ``<output>/table<N>.csv`` and ``.json``
(``cycletrans.evaluation.tables``; the app and ``analysis.ablation_tables`` read them).

Example::

    python -m cycletrans ablate --preset demo --table 2 --table 3 --output runs/ablation/demo
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
from pathlib import Path
from typing import Any

from cycletrans.cli.train import add_override_arguments, overrides_from_args
from cycletrans.engine.config import PRESETS, TrainConfig
from cycletrans.files import read_json

TABLE_SETTING = {"sysu": ("all", 1), "regdb": "visible_to_infrared"}
EVAL_FILE = "ablation_eval.json"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "ablate",
        help="train and evaluate every row of Table II / III",
        description="Train every row of the paper's Table II and/or III with one preset and "
        "seed (finished rows in --output are reused, killed ones resumed), evaluate each on "
        "the test split (SYSU-MM01 all-search single-shot; RegDB visible -> infrared) and write "
        "the reproduced tables (CSV + JSON). Runs in one process, row after row.",
    )
    parser.add_argument(
        "--preset",
        choices=PRESETS,
        default="demo",
        help="training recipe of every row (default: demo)",
    )
    parser.add_argument(
        "--table",
        type=int,
        choices=(2, 3),
        action="append",
        required=True,
        help="paper table to reproduce: 2 or 3 (repeat for both)",
    )
    parser.add_argument(
        "--output",
        default=None,
        metavar="DIR",
        help="folder of the row runs and tables (default: runs/ablation/<preset>)",
    )
    parser.add_argument(
        "--trials",
        type=int,
        default=10,
        help="SYSU-MM01 gallery draws per evaluation (default: 10)",
    )
    add_override_arguments(parser, variant=False)
    parser.set_defaults(run=run)
    return parser


def train_row(config: TrainConfig) -> Path:
    """Train (or reuse, or resume) one row's run; return the checkpoint to evaluate."""
    from cycletrans.engine import train
    from cycletrans.engine.config import config_differences, load_run_config
    from cycletrans.engine.state import RESUME_FILE

    output = Path(config.output)
    resume = False
    if (output / "config.json").is_file():
        differences = config_differences(load_run_config(output), config)
        if differences:
            raise ValueError(
                f"{output} holds a {config.variant} run with another config ("
                + "; ".join(differences)
                + "); choose another --output"
            )
        result_path = output / "result.json"
        if result_path.is_file():
            result = read_json(result_path)
            print(f"reusing the finished run in {output}")
            return Path(result["best"] or result["last"])
        resume = (output / RESUME_FILE).is_file()
    # a row killed before its first resume state cannot be resumed: it starts again
    result = train(config, resume=resume, overwrite=not resume)
    if not result.finished:
        raise ValueError(
            f"the {config.variant} run stopped early (--max-steps); the table needs finished rows"
        )
    return result.best or result.last


def evaluate_row(config: TrainConfig, checkpoint: Path, trials: int) -> dict[str, Any]:
    """The row's test metrics in the table setting, cached in ``<run>/ablation_eval.json``."""
    from cycletrans import load_model
    from cycletrans.data import split_records
    from cycletrans.engine.config import RUN_KEYS
    from cycletrans.engine.distributed import resolve_device
    from cycletrans.engine.inference import extract_features
    from cycletrans.evaluation.protocols import evaluate_protocols, setting_key

    cache = Path(config.output) / EVAL_FILE
    stamp = {
        "checkpoint": str(checkpoint),
        "mtime_ns": checkpoint.stat().st_mtime_ns,
        "trials": trials,
    }
    if cache.is_file():
        saved = read_json(cache)
        if saved["stamp"] == stamp:
            return saved["metrics"]
    root = read_json(Path(config.output) / "config.json")[RUN_KEYS[0]]
    device = resolve_device(config.device)
    model = load_model(checkpoint, device=str(device))
    records = split_records(root, config.dataset, "test", trial=config.trial)
    feats = extract_features(
        model,
        records,
        batch_size=config.eval_batch_size,
        device=device,
        workers=config.workers,
        progress=config.progress,
        desc=f"{config.variant} test features",
    )
    if config.dataset == "sysu":
        mode, shots = TABLE_SETTING["sysu"]
        results = evaluate_protocols(feats, "sysu", trials=trials, settings=[(mode, shots)])
        metrics = results[setting_key(mode, shots)]
    else:
        metrics = evaluate_protocols(feats, "regdb")[TABLE_SETTING["regdb"]]
    cache.write_text(json.dumps({"stamp": stamp, "metrics": metrics}, indent=2) + "\n")
    return metrics


def run(args: argparse.Namespace) -> int:
    from cycletrans.cli.evaluate import format_table
    from cycletrans.engine.config import resolve_config
    from cycletrans.evaluation.tables import TABLE_METRICS, table_row, write_table
    from cycletrans.models.variants import ABLATION_TABLES

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ValueError(
            "ablate runs in one process; launch it without torchrun (or train "
            "single rows with torchrun ... train --variant V)"
        )
    if args.trials < 1:
        raise ValueError(f"--trials must be at least 1, got {args.trials}")
    tables = sorted(set(args.table))
    variants = list(dict.fromkeys(v for t in tables for v in ABLATION_TABLES[t]))
    output = Path(args.output or f"runs/ablation/{args.preset}")
    overrides = overrides_from_args(args)
    metrics, checkpoints = {}, {}
    for i, variant in enumerate(variants, start=1):
        config = resolve_config(
            args.preset, {**overrides, "variant": variant, "output": str(output / variant)}
        )
        print(f"[{i}/{len(variants)}] {variant}")
        checkpoint = train_row(config)
        checkpoints[variant] = checkpoint.stem
        metrics[variant] = evaluate_row(config, checkpoint, args.trials)
    command = shlex.join(
        [
            "python",
            "-m",
            "cycletrans",
            "ablate",
            "--preset",
            args.preset,
            *[x for t in tables for x in ("--table", str(t))],
            "--output",
            str(output),
        ]
    ) + _override_flags(overrides)
    for table in tables:
        rows = ABLATION_TABLES[table]
        csv_path, json_path = write_table(
            [table_row(v, metrics[v]) for v in rows],
            ["variant", *TABLE_METRICS],
            output / f"table{table}",
            table=table,
            metadata={
                "command": command,
                "preset": args.preset,
                "seed": config.seed,
                "setting": str(TABLE_SETTING[config.dataset]),
                "checkpoints": {v: checkpoints[v] for v in rows},
                "epochs": config.epochs,
                "trials": args.trials,
                "gallery_source": metrics[rows[0]].get("gallery_source"),
            },
        )
        print(f"\nTable {table} (reproduced, percent) -> {csv_path}, {json_path}")
        print(format_table({v: metrics[v] for v in rows}, label="variant"))
    return 0


def _override_flags(overrides: dict[str, Any]) -> str:
    """The overrides as command-line flags (for the tables' provenance)."""
    parts = []
    for name, value in overrides.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            parts.append(flag if value else "--no-" + name.replace("_", "-"))
        elif isinstance(value, list | tuple):
            parts += [flag, *map(str, value)]
        else:
            parts += [flag, str(value)]
    return (" " + shlex.join(parts)) if parts else ""
