"""Options and steps shared by the ``evaluate`` and ``extract`` commands."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_feature_arguments(parser: argparse.ArgumentParser, several_trials: bool = False) -> None:
    """--checkpoint, --data-root, --dataset, --trial, --batch-size, --workers, --device.

    ``several_trials``: ``--trial`` takes one or more RegDB trials (``args.trial`` is a list).
    """
    parser.add_argument(
        "--checkpoint",
        required=True,
        metavar="FILE",
        help="model weights written by train (.safetensors, with its .json beside it)",
    )
    parser.add_argument(
        "--data-root",
        default=None,
        metavar="DIR",
        help="dataset folder (default: the generated demo set in "
        "$CYCLETRANS_CACHE or ~/.cache/cycletrans, generated on first use)",
    )
    parser.add_argument(
        "--dataset",
        choices=("auto", "sysu", "regdb"),
        default="auto",
        help="dataset layout (default: auto, detected from the folder: exp/ -> "
        "sysu, Visible/ -> regdb)",
    )
    if several_trials:
        parser.add_argument(
            "--trial",
            type=int,
            nargs="+",
            default=[1],
            metavar="T",
            help="RegDB trial(s) whose test split to use, 1..10; with several, "
            "each trial's own model (--checkpoint with {trial}) is evaluated on "
            "its split and the results are averaged, as the paper reports "
            "(default: 1)",
        )
    else:
        parser.add_argument(
            "--trial",
            type=int,
            default=1,
            help="RegDB trial whose split to use, 1..10 (default: 1)",
        )
    parser.add_argument(
        "--batch-size", type=int, default=64, help="images per forward pass (default: 64)"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="DataLoader worker processes (default: 2)"
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="auto (CUDA when available), cpu, cuda or cuda:N (default: auto)",
    )


def data_location(args: argparse.Namespace) -> tuple[Path, str]:
    """``(root, dataset)`` of ``--data-root`` (default: the demo set) and ``--dataset``."""
    from cycletrans.data import detect_dataset
    from cycletrans.engine.data import demo_data_root

    root = Path(args.data_root) if args.data_root else demo_data_root()
    return root, detect_dataset(root) if args.dataset == "auto" else args.dataset


def extract_split(
    args: argparse.Namespace, split: str, checkpoint: str | None = None, trial: int | None = None
) -> dict[str, Any]:
    """Load the checkpoint and extract the features of one split of the dataset.

    ``checkpoint`` and ``trial`` default to ``--checkpoint`` and ``--trial``.
    Returns ``{"model", "features" (FeatureSet), "dataset", "root"}``.
    """
    from cycletrans import load_model
    from cycletrans.data import split_records
    from cycletrans.engine.distributed import resolve_device
    from cycletrans.engine.inference import extract_features

    device = resolve_device(args.device)
    root, dataset = data_location(args)
    records = split_records(root, dataset, split, trial=args.trial if trial is None else trial)
    model = load_model(checkpoint or args.checkpoint, device=str(device))
    features = extract_features(
        model,
        records,
        batch_size=args.batch_size,
        device=device,
        workers=args.workers,
        desc=f"{split} features",
    )
    return {"model": model, "features": features, "dataset": dataset, "root": root}
