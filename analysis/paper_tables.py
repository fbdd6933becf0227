"""The paper's Tables I-VI, read from ``assets/paper`` (see ``assets/paper/README.md``).

Each table is a CSV transcribed as printed; captions and column meanings are in
``assets/paper/tables.json``. Metrics are percentages; a printed "-" is a missing value (NaN).

Example:
    >>> from analysis.paper_tables import load_paper_table, paper_caption
    >>> table = load_paper_table(2)
    >>> table.loc[table["Method"] == "Baseline", "Rank-1"].item()
    58.99
    >>> paper_caption(2)
    'ABLATION STUDY ON SYSU-MM01 UNDER ALL-SEARCH SINGLE-SHOT SETTING'
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

PAPER_DIR = Path(__file__).resolve().parent.parent / "assets" / "paper"
TABLE_NUMBERS = (1, 2, 3, 4, 5, 6)
NAMES = ("CycleTrans", "SOTA", "AGW", "SYSU-MM01", "RegDB", "DMM", "KCM")  # kept as spelled


@cache
def _index() -> dict[str, Any]:
    path = PAPER_DIR / "tables.json"
    if not path.is_file():
        raise FileNotFoundError(f"the paper's table index is missing: expected {path}")
    return json.loads(path.read_text(encoding="utf-8"))


def paper_table_info(n: int) -> dict[str, Any]:
    """Return the index entry of Table ``n`` (1..6).

    Keys: ``number``, ``label`` ("TABLE II"), ``caption``, ``file``, ``setting`` and
    ``columns`` (column name -> meaning).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n not in TABLE_NUMBERS:
        raise ValueError(f"the paper has Tables 1 to 6: expected an int in 1..6, got {n!r}")
    entry = next(entry for entry in _index()["tables"] if entry["number"] == n)
    return copy.deepcopy(entry)  # the index is cached: callers get their own copy


def paper_caption(n: int) -> str:
    """Return the caption of Table ``n`` (1..6) as printed (upper case)."""
    return paper_table_info(n)["caption"]


def readable_caption(n: int) -> str:
    """The caption of Table ``n`` in sentence case, names kept as the paper spells them.

    Example:
        >>> readable_caption(6)[:47]
        'Computation overhead of the proposed CycleTrans'
    """
    text = re.sub(
        r"(^|[.!?]\s+)([a-z])", lambda m: m.group(1) + m.group(2).upper(), paper_caption(n).lower()
    )
    for name in NAMES:
        text = re.sub(rf"\b{re.escape(name)}\b", name, text, flags=re.IGNORECASE)
    return text


def load_paper_table(n: int) -> pd.DataFrame:
    """Return Table ``n`` (1..6) of the paper as a DataFrame, rows and columns as printed.

    Metric columns are floats (percent); "-" cells are NaN. Table I's ``k`` and ``n`` are ints;
    the other tables start with a ``Method`` column of strings.
    """
    info = paper_table_info(n)
    path = PAPER_DIR / info["file"]
    if not path.is_file():
        raise FileNotFoundError(f"Table {n} of the paper is missing: expected {path}")
    table = pd.read_csv(path, na_values=[_index()["missing_value"]], keep_default_na=False)
    if list(table.columns) != list(info["columns"]):
        raise ValueError(
            f"{path} has columns {list(table.columns)}, but tables.json lists "
            f"{list(info['columns'])}"
        )
    return table
