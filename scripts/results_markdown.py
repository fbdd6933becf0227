"""Print the shipped demo results (``assets/results/*.json``) as the README's Markdown tables.

Reads the JSON written by ``python -m cycletrans evaluate --intra-modality --output ...`` for
each shipped model and prints two tables, Rank-1 / mAP in percent: the SYSU-MM01 protocol
settings (infrared queries, visible gallery, mean over the trials), and retrieval over all test
images within and across modalities (the modality gap). A line gives CycleTrans minus the
baseline on the all-search single-shot setting; the same retrieval table on a demo set of new
people when ``<results>/new-people/`` holds its files. Then each reproduced ablation table found
under ``<results>/ablation/`` (written by ``python -m cycletrans ablate``) next to the paper's
numbers.

Example::

    python scripts/results_markdown.py
    python scripts/results_markdown.py --results my_results/ --models baseline full
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from analysis.ablation_tables import METRICS, compare_with_paper, load_reproduced_table  # noqa: E402

MODELS = {"baseline": "Baseline", "nocycle": "CycleTrans (no cycle)", "full": "CycleTrans"}
SETTINGS = {
    "all_single": "all-search single",
    "all_multi": "all-search multi",
    "indoor_single": "indoor single",
    "indoor_multi": "indoor multi",
}
GAP = {
    "visible_to_visible": "V -> V",
    "infrared_to_infrared": "IR -> IR",
    "infrared_to_visible": "IR -> V",
    "visible_to_infrared": "V -> IR",
}


def cell(metrics: dict) -> str:
    return f"{100 * metrics['r1']:.2f} / {100 * metrics['mAP']:.2f}"


def table(documents: dict[str, dict], section: str, columns: dict[str, str]) -> list[str]:
    lines = ["| model | " + " | ".join(columns.values()) + " |", "|---|" + "---:|" * len(columns)]
    for name, doc in documents.items():
        lines.append(
            f"| {MODELS.get(name, name)} | "
            + " | ".join(cell(doc[section][key]) for key in columns)
            + " |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--results",
        type=Path,
        default=REPO / "assets" / "results",
        help="folder of <model>.json evaluation files",
    )
    parser.add_argument(
        "--models", nargs="+", default=list(MODELS), help="file stems to read, the baseline first"
    )
    args = parser.parse_args(argv)
    documents = {}
    for name in args.models:
        path = args.results / f"{name}.json"
        if not path.is_file():
            parser.error(
                f"no {path}: write it with python -m cycletrans evaluate "
                f"--checkpoint assets/checkpoints/{name}.safetensors --intra-modality "
                f"--output {path}"
            )
        documents[name] = json.loads(path.read_text())
        if "intra_modality" not in documents[name]:
            parser.error(f"{path} has no intra-modality results: evaluate with --intra-modality")
    print("SYSU-MM01 protocol on the synthetic test set, infrared -> visible, Rank-1 / mAP (%):\n")
    print("\n".join(table(documents, "results", SETTINGS)))
    print("\nAll test images as gallery, Rank-1 / mAP (%):\n")
    print("\n".join(table(documents, "intra_modality", GAP)))
    first, last = args.models[0], args.models[-1]
    a = documents[first]["results"]["all_single"]
    b = documents[last]["results"]["all_single"]
    print(
        f"\n{MODELS.get(last, last)} - {MODELS.get(first, first)}, all-search single-shot: "
        f"Rank-1 {100 * (b['r1'] - a['r1']):+.2f}, mAP {100 * (b['mAP'] - a['mAP']):+.2f}"
    )
    new_people_files = {name: args.results / "new-people" / f"{name}.json" for name in args.models}
    new_people = {
        name: json.loads(path.read_text())
        for name, path in new_people_files.items()
        if path.is_file()
    }
    if new_people:
        print("\nA demo set of new people (`synth --seed 1`), all test images as gallery:\n")
        print("\n".join(table(new_people, "intra_modality", GAP)))
    for path in sorted((args.results / "ablation").glob("table*.json")):
        print("\n" + "\n".join(ablation_table(path)))
    return 0


def ours(value: float) -> str:
    """A reproduced value, or "n/a" for a row that was not reproduced (NaN)."""
    return "n/a" if math.isnan(value) else f"{value:.2f}"


def ablation_table(path: Path) -> list[str]:
    """A reproduced table beside the paper's: ours (paper) per metric, percent."""
    reproduced = load_reproduced_table(path)
    table = reproduced.attrs["paper_table"]
    both = compare_with_paper(reproduced, table)
    lines = [
        f"Reproduced Table {table} ({path.name}), ours (paper), percent:",
        "",
        "| Method | variant | " + " | ".join(METRICS) + " |",
        "|---|---|" + "---:|" * len(METRICS),
    ]
    for _, row in both.iterrows():
        cells = [f"{ours(row[f'{m} (ours)'])} ({row[f'{m} (paper)']:.2f})" for m in METRICS]
        lines.append(f"| {row['Method']} | `{row['variant']}` | " + " | ".join(cells) + " |")
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
