"""Print the shipped demo results (``assets/results/*.json``) as the README's Markdown tables.

Reads the JSON written by ``python -m cycletrans evaluate --intra-modality --output ...`` for
each shipped model and prints two tables, Rank-1 / mAP in percent: the SYSU-MM01 protocol
settings (infrared queries, visible gallery, mean over the trials), and retrieval over all test
images within and across modalities (the modality gap). A last line gives CycleTrans minus the
baseline on the all-search single-shot setting.

Example::

    python scripts/results_markdown.py
    python scripts/results_markdown.py --results my_results/ --models baseline full
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODELS = {"baseline": "Baseline", "nocycle": "CycleTrans (no cycle)", "full": "CycleTrans"}
SETTINGS = {"all_single": "all-search single", "all_multi": "all-search multi",
            "indoor_single": "indoor single", "indoor_multi": "indoor multi"}
GAP = {"visible_to_visible": "V -> V", "infrared_to_infrared": "IR -> IR",
       "infrared_to_visible": "IR -> V", "visible_to_infrared": "V -> IR"}


def cell(metrics: dict) -> str:
    return f"{100 * metrics['r1']:.2f} / {100 * metrics['mAP']:.2f}"


def table(documents: dict[str, dict], section: str, columns: dict[str, str]) -> list[str]:
    lines = ["| model | " + " | ".join(columns.values()) + " |",
             "|---|" + "---:|" * len(columns)]
    for name, doc in documents.items():
        lines.append(f"| {MODELS.get(name, name)} | "
                     + " | ".join(cell(doc[section][key]) for key in columns) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=REPO / "assets" / "results",
                        help="folder of <model>.json evaluation files")
    parser.add_argument("--models", nargs="+", default=list(MODELS),
                        help="file stems to read, the baseline first")
    args = parser.parse_args(argv)
    documents = {}
    for name in args.models:
        path = args.results / f"{name}.json"
        if not path.is_file():
            parser.error(f"no {path}: write it with python -m cycletrans evaluate "
                         f"--checkpoint assets/checkpoints/{name}.safetensors --intra-modality "
                         f"--output {path}")
        documents[name] = json.loads(path.read_text())
        if "intra_modality" not in documents[name]:
            parser.error(f"{path} has no intra-modality results: evaluate with --intra-modality")
    print("SYSU-MM01 protocol on the synthetic test set, infrared -> visible, "
          "Rank-1 / mAP (%):\n")
    print("\n".join(table(documents, "results", SETTINGS)))
    print("\nAll test images as gallery, Rank-1 / mAP (%):\n")
    print("\n".join(table(documents, "intra_modality", GAP)))
    first, last = args.models[0], args.models[-1]
    a = documents[first]["results"]["all_single"]
    b = documents[last]["results"]["all_single"]
    print(f"\n{MODELS.get(last, last)} - {MODELS.get(first, first)}, all-search single-shot: "
          f"Rank-1 {100 * (b['r1'] - a['r1']):+.2f}, mAP {100 * (b['mAP'] - a['mAP']):+.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
