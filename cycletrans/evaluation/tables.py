"""A reproduced ablation table (the paper's Table II or III) on disk: ``<stem>.csv`` and ``.json``.

One row per model variant: ``variant`` and the metrics of :data:`TABLE_METRICS` in percent. The
JSON is the file readers load (``analysis.ablation_tables.load_reproduced_table``, which adds the
paper's row names and compares); the CSV holds the same rows for spreadsheets::

    {"format": "cycletrans-reproduced-table", "version": 1, "paper_table": 2,
     "metadata": {"command": "...", "date": "2024-...Z", ...},
     "columns": ["variant", "Rank-1", ...], "rows": [{"variant": "baseline", ...}, ...]}

Example:
    >>> table_row("full", {"r1": 0.5, "r10": 0.9, "r20": 0.95, "mAP": 0.45})["Rank-1"]
    50.0
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

TABLE_FORMAT = "cycletrans-reproduced-table"
TABLE_VERSION = 1
# table column (percent) -> key of rank_metrics / evaluate_sysu results (fraction)
TABLE_METRICS = {"Rank-1": "r1", "Rank-10": "r10", "Rank-20": "r20", "mAP": "mAP"}


def table_row(variant: str, metrics: Mapping[str, float]) -> dict[str, Any]:
    """``{"variant", "Rank-1", "Rank-10", "Rank-20", "mAP"}`` from one variant's results
    (fractions in [0, 1], as ``rank_metrics`` returns them), in percent."""
    row: dict[str, Any] = {"variant": variant}
    for column, key in TABLE_METRICS.items():
        if key not in metrics:
            raise ValueError(f"results of {variant!r} lack {key!r}: got keys {list(metrics)}")
        value = float(metrics[key])
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{variant!r} {key} must be a fraction in [0, 1], got {value}")
        row[column] = 100.0 * value
    return row


def write_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    path_stem: str | Path,
    *,
    table: int,
    metadata: Mapping[str, Any],
) -> tuple[Path, Path]:
    """Write ``rows`` (dicts keyed by ``columns``) to ``<path_stem>.csv`` and ``.json``.

    ``metadata`` (provenance: command, preset, seed, ...) goes into the JSON with the UTC
    ``date``; NaN values become null. Parent folders are created. Returns the two paths.
    """
    csv_path, json_path = Path(f"{path_stem}.csv"), Path(f"{path_stem}.json")
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    info = {**metadata, "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    clean = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        for r in rows
    ]
    document = {
        "format": TABLE_FORMAT,
        "version": TABLE_VERSION,
        "paper_table": table,
        "metadata": info,
        "columns": list(columns),
        "rows": clean,
    }
    json_path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    return csv_path, json_path
