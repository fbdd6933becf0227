"""``python -m cycletrans extract``: write a split's features to an ``.npz`` file.

Arrays: ``features`` [N, D] float32, ``ids``, ``cams``, ``frames``, ``modalities`` [N] int64,
``paths`` [N] str (``cycletrans.engine.FeatureSet.load`` reads it back). The archive is written
at exactly the ``--out`` path, whatever its suffix.

Example::

    python -m cycletrans extract --checkpoint runs/demo/full/last.safetensors --out test.npz
"""

from __future__ import annotations

import argparse

from cycletrans.cli.common import add_feature_arguments, extract_split


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "extract",
        help="write a split's retrieval features to .npz",
        description="Extract a model's retrieval features (eval mode, each image embedded with "
        "its own modality) of one split and write them with ids, cams, frames, paths and "
        "modalities to an .npz file.",
    )
    add_feature_arguments(parser)
    parser.add_argument(
        "--out",
        required=True,
        metavar="FILE.npz",
        help="output file: an .npz archive, written under exactly this name (no suffix is added)",
    )
    parser.add_argument(
        "--split",
        choices=("test", "train", "val"),
        default="test",
        help="which images: test, train (all training ids) or val (SYSU-MM01 "
        "layout's val ids) (default: test)",
    )
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    extracted = extract_split(args, args.split)
    features = extracted["features"]
    path = features.save(args.out)
    print(
        f"wrote {path}: {features.features.shape[0]} images x {features.features.shape[1]} "
        f"dims ({args.split} split of {extracted['root']})"
    )
    return 0
