"""The paper's Tables I-VI as data: known values, shapes, captions, and a cell-by-cell check
against the paper's text when it is available on this machine."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import pytest

from analysis.paper_tables import (
    PAPER_DIR,
    load_paper_table,
    paper_caption,
    paper_table_info,
    readable_caption,
)

PAPER_TEXT = Path("/work/shared/paper/cycletrans-tnnls2024.md")
ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V", 6: "VI"}


def row(table, method: str) -> dict:
    rows = table[table["Method"] == method]
    assert len(rows) == 1, f"expected one row {method!r}, found {len(rows)}"
    return rows.iloc[0].to_dict()


@pytest.mark.parametrize(
    ("n", "rows", "columns"),
    [(1, 8, 6), (2, 7, 5), (3, 5, 5), (4, 27, 17), (5, 25, 5), (6, 4, 5)],
)
def test_every_table_has_the_printed_number_of_rows_and_columns(n, rows, columns):
    assert load_paper_table(n).shape == (rows, columns)


def test_table_iv_has_sixteen_metric_columns_named_by_setting():
    columns = list(load_paper_table(4).columns)
    assert columns[0] == "Method"
    assert columns[1] == "All-Search Single-Shot R1"
    assert columns[8] == "All-Search Multi-Shot mAP"
    assert columns[9] == "Indoor-Search Single-Shot R1"
    assert columns[16] == "Indoor-Search Multi-Shot mAP"
    assert len(set(columns)) == 17


def test_table_iv_cycletrans_star_all_search_single_shot():
    values = row(load_paper_table(4), "CycleTrans*(Ours)")
    assert values["All-Search Single-Shot R1"] == 76.58
    assert values["All-Search Single-Shot R10"] == 97.22
    assert values["All-Search Single-Shot R20"] == 99.28
    assert values["All-Search Single-Shot mAP"] == 72.62
    assert values["Indoor-Search Multi-Shot R20"] == 100.00
    assert values["Indoor-Search Multi-Shot mAP"] == 81.41


def test_table_iv_other_rows_and_missing_values():
    table = load_paper_table(4)
    assert table["Method"].iloc[0] == "Zero-Padding [1]"
    assert table["Method"].iloc[-2] == "CycleTrans(Ours)"
    assert row(table, "CycleTrans(Ours)")["All-Search Multi-Shot R1"] == 79.36
    assert row(table, "DEEN [51]")["All-Search Single-Shot R10"] == 97.60
    assert row(table, "D2RL [22]")["All-Search Single-Shot mAP"] == 29.20
    hi_cmd = row(table, "Hi-CMD [59]")
    assert hi_cmd["All-Search Single-Shot R10"] == 77.58
    assert math.isnan(hi_cmd["All-Search Single-Shot R20"])
    assert math.isnan(row(table, "AGW [17]")["All-Search Single-Shot R10"])


def test_table_ii_baseline_and_full():
    table = load_paper_table(2)
    assert row(table, "Baseline") == {
        "Method": "Baseline",
        "Rank-1": 58.99,
        "Rank-10": 91.18,
        "Rank-20": 96.06,
        "mAP": 54.29,
    }
    full = row(table, "+ L_aln (Full)")
    assert (full["Rank-1"], full["mAP"]) == (71.96, 67.24)
    assert list(table["Method"]) == [
        "Baseline",
        "+ KCM",
        "+ L_me",
        "+ L_MMD",
        "+ DMM",
        "+ L_rec",
        "+ L_aln (Full)",
    ]


def test_table_iii_rows_in_printed_order():
    table = load_paper_table(3)
    assert list(table["Method"]) == [
        "Baseline",
        "F_N = AP",
        "F_N = F'_I + AP",
        "Transformer",
        "DMM",
    ]
    assert row(table, "Transformer")["mAP"] == 63.55
    assert row(table, "DMM")["Rank-1"] == 71.96


def test_table_i_anchor_and_prototype_counts():
    table = load_paper_table(1)
    assert list(table.columns[:2]) == ["k", "n"]
    best = table[(table["k"] == 7) & (table["n"] == 1024)].iloc[0]
    assert (best["Rank-1"], best["mAP"]) == (71.96, 67.24)
    assert table[(table["k"] == 8)].iloc[0]["mAP"] == 65.46
    assert sorted(table["n"].unique()) == [256, 512, 1024, 2048]


def test_table_v_regdb_cycletrans_star():
    values = row(load_paper_table(5), "CycleTrans*(Ours)")
    assert [
        values["Infrared to Visible Rank-1"],
        values["Infrared to Visible mAP"],
        values["Visible to Infrared Rank-1"],
        values["Visible to Infrared mAP"],
    ] == [90.6, 85.6, 91.5, 87.0]
    assert math.isnan(row(load_paper_table(5), "AGW [17]")["Infrared to Visible Rank-1"])


def test_table_vi_training_and_inference_times():
    table = load_paper_table(6)
    assert list(table["Method"]) == ["Baseline", "DEEN [51]", "CycleTrans", "CycleTrans*"]
    assert list(table["Training Time (h)"]) == [3.0, 12.9, 3.6, 4.3]
    assert list(table["Inference Time (s/sample)"]) == [0.019, 0.031, 0.023, 0.030]


def test_captions_and_column_meanings():
    assert paper_caption(1).startswith("HYPERPARAMETER SELECTION ON SYSU-MM01")
    assert paper_caption(5).startswith("COMPARISON WITH SOTA METHODS ON REGDB")
    assert paper_table_info(3)["label"] == "TABLE III"
    for n in range(1, 7):
        info = paper_table_info(n)
        assert list(info["columns"]) == list(load_paper_table(n).columns)
        assert all(info["columns"].values())


@pytest.mark.parametrize("bad", [0, 7, -1, "2", 2.0, True, None])
def test_table_number_outside_one_to_six_is_rejected(bad):
    with pytest.raises(ValueError, match=r"1\.\.6"):
        load_paper_table(bad)
    with pytest.raises(ValueError, match=r"1\.\.6"):
        paper_caption(bad)


def _printed_rows(text: str, n: int) -> list[list[str]]:
    """The tab-separated data rows under "TABLE <roman>" in the paper's text, marks removed."""
    start = re.search(rf"^TABLE {ROMAN[n]}\s*$", text, flags=re.MULTILINE).end()
    block = text[start:].split("\n")
    first = next(i for i, line in enumerate(block) if "\t" in line)
    lines = []
    for line in block[first:]:
        if "\t" not in line:
            break
        lines.append(line)
    rows = []
    for line in lines:
        cells = [re.sub(r"</?[bu]>", "", cell).strip() for cell in line.split("\t")]
        if re.fullmatch(r"-|[\d.]+(h| s/sample)?", cells[-1]) and cells[0]:
            rows.append(cells)
    return rows


@pytest.mark.skipif(not PAPER_TEXT.is_file(), reason="the paper's text is not on this machine")
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6])
def test_every_cell_matches_the_paper_text(n):
    printed = _printed_rows(PAPER_TEXT.read_text(encoding="utf-8"), n)
    with (PAPER_DIR / f"table{n}.csv").open(encoding="utf-8", newline="") as f:
        stored = list(csv.reader(f))[1:]
    assert len(stored) == len(printed)
    first_value = 0 if n == 1 else 1
    for ours, paper in zip(stored, printed, strict=True):
        paper_values = [re.sub(r"(h| s/sample)$", "", cell) for cell in paper[first_value:]]
        assert ours[first_value:] == paper_values, f"Table {n} row {paper[0]!r}"
        name = paper[0].replace("D <sup>2</sup> RL", "D2RL")
        if n > 1 and "$" not in name:
            assert ours[0] == name


def test_readable_captions_are_sentence_case_with_names_as_spelled():
    assert readable_caption(4).startswith(
        "Comparison between CycleTrans and the SOTA methods "
        "on SYSU-MM01. The best performance is bold"
    )
    assert "AGW [17]" in readable_caption(4)
    assert readable_caption(5).startswith("Comparison with SOTA methods on RegDB.")
