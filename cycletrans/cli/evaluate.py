"""``python -m cycletrans evaluate``: a checkpoint on a dataset's test split, every protocol.

SYSU-MM01 layout (the real set and the synthetic one): all / indoor search x single / multi-shot
over ``--trials`` gallery draws (the official ``rand_perm_cam.mat`` picks when the images fit
it, else seeded random picks: the JSON's ``official_gallery_picks``, each setting's
``gallery_source`` and ``gallery_note`` say which, and a warning is printed). RegDB: visible ->
infrared and infrared -> visible of the trial's test split; with several ``--trial`` values,
each trial's own checkpoint (``{trial}`` in ``--checkpoint``) on its own split, and their mean
(the paper's RegDB numbers), each trial under ``per_trial``. ``--intra-modality`` adds
retrieval within each modality (all images, other cameras) and across modalities on the same
all-image gallery, to show the modality gap. Prints a table (percent) and writes JSON
(fractions in [0, 1]).

Examples::

    python -m cycletrans evaluate --checkpoint runs/demo/full/last.safetensors \\
        --intra-modality --output results/demo_full.json
    python -m cycletrans evaluate --data-root /data/RegDB --trial $(seq 10) \\
        --checkpoint 'runs/regdb/trial{trial}/last.safetensors' --output regdb.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cycletrans.cli.common import add_feature_arguments, data_location, extract_split
from cycletrans.evaluation import DIRECTIONS, SYSU_SETTINGS
from cycletrans.evaluation.protocols import setting_key

SYSU_BY_KEY = {setting_key(mode, shots): (mode, shots) for mode, shots in SYSU_SETTINGS}
SYSU_KEYS = tuple(SYSU_BY_KEY)
REGDB_KEYS = tuple(DIRECTIONS)
GAP_SETTINGS = (  # (key, query modality, gallery modality)
    ("visible_to_visible", "visible", "visible"),
    ("infrared_to_infrared", "infrared", "infrared"),
    ("infrared_to_visible", "infrared", "visible"),
    ("visible_to_infrared", "visible", "infrared"),
)
COLUMNS = (
    ("R1", "r1"),
    ("R5", "r5"),
    ("R10", "r10"),
    ("R20", "r20"),
    ("mAP", "mAP"),
    ("mINP", "mINP"),
)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a checkpoint by the official protocols",
        description="Extract the test split's features with a checkpoint and run every "
        "protocol setting of the dataset; print a table and optionally write JSON.",
    )
    add_feature_arguments(parser, several_trials=True)
    parser.add_argument(
        "--protocol",
        nargs="+",
        choices=SYSU_KEYS + REGDB_KEYS,
        default=None,
        metavar="SETTING",
        help="settings to run (default: all of the dataset's): SYSU-MM01 "
        f"{', '.join(SYSU_KEYS)}; RegDB {', '.join(REGDB_KEYS)}",
    )
    parser.add_argument(
        "--trials",
        type=int,
        default=10,
        help="SYSU-MM01: gallery draws to average over (default: 10, the official protocol)",
    )
    parser.add_argument(
        "--rand-perm-cam",
        default="auto",
        metavar="auto|official|none|FILE",
        help="SYSU-MM01 gallery picks: auto (the official rand_perm_cam.mat when "
        "the images fit it, else seeded random picks), official or a .mat file "
        "(error if the images do not fit), none (seeded random) (default: auto)",
    )
    parser.add_argument(
        "--intra-modality",
        action="store_true",
        help="also rank all test images within each modality (visible -> "
        "visible, infrared -> infrared; other cameras only on SYSU-MM01, the "
        "query itself left out on RegDB) and across modalities on the same "
        "all-image gallery (default: off)",
    )
    parser.add_argument(
        "--output",
        default=None,
        metavar="FILE.json",
        help="write the results as JSON (default: print only)",
    )
    parser.set_defaults(run=run)
    return parser


def evaluate_checkpoint(args: argparse.Namespace) -> dict[str, Any]:
    """The JSON document of an evaluation (see the module docstring)."""
    if args.trials < 1:
        raise ValueError(f"--trials must be at least 1, got {args.trials}")
    dataset = data_location(args)[1]
    keys = SYSU_KEYS if dataset == "sysu" else REGDB_KEYS
    wanted = args.protocol or list(keys)
    foreign = [k for k in wanted if k not in keys]
    if foreign:
        raise ValueError(
            f"--protocol {' '.join(foreign)} is not a {dataset} setting; choose "
            f"from {', '.join(keys)}"
        )
    trials = args.trial
    if len(trials) > 1:
        if dataset != "regdb":
            raise ValueError(
                "several --trial values are for RegDB (one split per trial); "
                f"{dataset} has one test split"
            )
        if "{trial}" not in args.checkpoint or len(set(trials)) < len(trials):
            raise ValueError(
                "each RegDB trial has its own model, trained on that trial's "
                "split: with several (distinct) --trial values, --checkpoint must "
                "contain {trial}, e.g. runs/regdb/trial{trial}/last.safetensors"
            )
        return _average_trials({t: _evaluate_split(args, t, wanted) for t in trials}, args)
    return _evaluate_split(args, trials[0], wanted)


def _evaluate_split(args: argparse.Namespace, trial: int, wanted: list[str]) -> dict[str, Any]:
    """The document of one checkpoint on one test split (RegDB: trial ``trial``'s)."""
    from cycletrans.evaluation.protocols import evaluate_protocols, modality_retrieval

    checkpoint = args.checkpoint.replace("{trial}", str(trial))
    extracted = extract_split(args, "test", checkpoint=checkpoint, trial=trial)
    dataset, feats = extracted["dataset"], extracted["features"]
    rand_perm = None if args.rand_perm_cam == "none" else args.rand_perm_cam
    settings = [SYSU_BY_KEY[k] for k in wanted] if dataset == "sysu" else None
    results = evaluate_protocols(
        feats, dataset, trials=args.trials, rand_perm_cam=rand_perm, settings=settings
    )
    document: dict[str, Any] = {
        "checkpoint": checkpoint,
        "model": extracted["model"].config,
        "dataset": dataset,
        "data_root": str(extracted["root"]),
        "num_images": len(feats.ids),
        "results": {k: results[k] for k in wanted},
    }
    if dataset == "regdb":
        document["trial"] = trial
    else:
        document["official_gallery_picks"] = all(
            m["gallery_source"] == "official" for m in document["results"].values()
        )
    if args.intra_modality:
        protocol = "sysu" if dataset == "sysu" else "regdb"
        document["intra_modality"] = {
            key: modality_retrieval(feats, q, g, protocol) for key, q, g in GAP_SETTINGS
        }
    return document


def _average_trials(
    per_trial: dict[int, dict[str, Any]], args: argparse.Namespace
) -> dict[str, Any]:
    """One document for several RegDB trials: their mean (as the paper reports) and each."""
    from cycletrans.evaluation import average_regdb_trials, mean_metrics

    first = next(iter(per_trial.values()))
    mean = average_regdb_trials([doc["results"] for doc in per_trial.values()])
    document: dict[str, Any] = {
        "checkpoint": args.checkpoint,
        "model": first["model"],
        "dataset": "regdb",
        "data_root": first["data_root"],
        "regdb_trials": list(per_trial),
        "results": {k: mean[k] for k in first["results"]},
    }
    if "intra_modality" in first:
        document["intra_modality"] = {
            key: {
                **mean_metrics([doc["intra_modality"][key] for doc in per_trial.values()]),
                "num_trials": len(per_trial),
            }
            for key in first["intra_modality"]
        }
    document["per_trial"] = {str(t): doc for t, doc in per_trial.items()}
    return document


def format_table(rows: dict[str, dict[str, Any]], label: str = "setting") -> str:
    """A fixed-width table of metrics in percent, one line per row (``label``: its header)."""
    width = max(22, *(len(key) + 2 for key in rows))
    lines = [f"{label:<{width}}" + "".join(f"{name:>8}" for name, _ in COLUMNS) + "  gallery"]
    for key, m in rows.items():
        lines.append(
            f"{key:<{width}}"
            + "".join(f"{100 * m[k]:>8.2f}" for _, k in COLUMNS)
            + f"  {m.get('gallery_size', '')}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    document = evaluate_checkpoint(args)
    trials = document.get("regdb_trials")
    split = f"test splits of trials {', '.join(map(str, trials))}" if trials else "test split"
    images = f"{document['num_images']} images, " if "num_images" in document else ""
    print(
        f"{document['dataset']} {split} of {document['data_root']}: {images}model "
        f"{document['model']['variant']} ({document['checkpoint']})"
    )
    if trials:
        print(f"mean over the {len(trials)} trials:")
    print(format_table(document["results"]))
    for source, note in sorted(
        {
            (m["gallery_source"], m["gallery_note"])
            for m in document["results"].values()
            if "gallery_source" in m
        }
    ):
        print(f"gallery picks: {source}, mean over {args.trials} draws ({note})")
    if "intra_modality" in document:
        print("\nall test images as gallery (within and across modalities):")
        print(format_table(document["intra_modality"]))
    if trials:
        print("\neach trial:")
        print(
            format_table(
                {
                    f"trial {t} {key}": m
                    for t, doc in document["per_trial"].items()
                    for key, m in doc["results"].items()
                }
            )
        )
    if args.output:
        path = Path(args.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2) + "\n")
        print(f"wrote {path}")
    return 0
