"""Reproduced ablation tables: the file format, the comparison with the paper, the charts."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from analysis.ablation_tables import (
    ABLATION_VARIANTS,
    METRICS,
    ablation_chart,
    compare_with_paper,
    find_reproduced,
    load_reproduced_table,
    paper_rows,
    reproduced_table,
    save_reproduced_table,
)
from analysis.paper_tables import load_paper_table


def results(r1: float, mAP: float) -> dict[str, float]:
    return {"r1": r1, "r5": 0.9, "r10": 0.95, "r20": 0.975, "mAP": mAP, "mINP": 0.2}


@pytest.fixture
def table2() -> pd.DataFrame:
    # given out of the paper's order on purpose
    return reproduced_table(
        {
            "full": results(0.75, 0.625),
            "baseline": results(0.5, 0.375),
            "kcm": results(0.5625, 0.5),
        },
        table=2,
    )


def test_every_paper_row_has_one_variant_name():
    for table, variants in ABLATION_VARIANTS.items():
        rows = paper_rows(table)
        assert list(rows["variant"]) == list(variants)
        assert list(rows["Method"]) == list(load_paper_table(table)["Method"])
    assert paper_rows(3).set_index("variant").loc["full", "Method"] == "DMM"
    assert paper_rows(2).set_index("variant").loc["full", "Method"] == "+ L_aln (Full)"


def test_reproduced_table_is_in_percent_in_paper_order_with_paper_names(table2):
    assert list(table2.columns) == ["Method", *METRICS, "variant"]
    assert list(table2["variant"]) == ["baseline", "kcm", "full"]
    assert list(table2["Method"]) == ["Baseline", "+ KCM", "+ L_aln (Full)"]
    assert list(table2["Rank-1"]) == [50.0, 56.25, 75.0]
    assert list(table2["mAP"]) == [37.5, 50.0, 62.5]
    assert list(table2["Rank-20"]) == [97.5, 97.5, 97.5]


def test_save_then_load_round_trips_rows_and_metadata(table2, tmp_path):
    csv_path, json_path = save_reproduced_table(
        table2,
        tmp_path / "out" / "table2",
        table=2,
        command="ablate --preset demo",
        preset="demo",
        seed=3,
        dataset="synthetic",
    )
    assert csv_path == tmp_path / "out" / "table2.csv"
    assert json_path == tmp_path / "out" / "table2.json"
    on_disk = pd.read_csv(csv_path)
    assert list(on_disk.columns) == ["Method", *METRICS, "variant"]
    assert list(on_disk["Rank-1"]) == [50.0, 56.25, 75.0]
    document = json.loads(json_path.read_text())
    assert document["format"] == "cycletrans-reproduced-table"
    assert document["paper_table"] == 2
    assert document["metadata"]["seed"] == 3
    assert document["metadata"]["date"]
    for path in (json_path, csv_path, tmp_path / "out" / "table2"):
        loaded = load_reproduced_table(path)
        pd.testing.assert_frame_equal(loaded, table2)
        assert loaded.attrs["paper_table"] == 2
        assert loaded.attrs["metadata"]["command"] == "ablate --preset demo"
        assert loaded.attrs["metadata"]["dataset"] == "synthetic"


def test_extra_columns_are_kept_after_the_paper_columns(tmp_path):
    df = pd.DataFrame(
        {
            "variant": ["full", "baseline"],
            "Rank-1": [70.0, 50.0],
            "Rank-10": [90.0, 80.0],
            "Rank-20": [95.0, 85.0],
            "mAP": [60.0, 40.0],
            "mINP": [30.0, 20.0],
        }
    )
    save_reproduced_table(df, tmp_path / "t3", table=3)
    loaded = load_reproduced_table(tmp_path / "t3.json")
    assert list(loaded.columns) == ["Method", *METRICS, "variant", "mINP"]
    assert list(loaded["Method"]) == ["Baseline", "DMM"]
    assert list(loaded["mINP"]) == [20.0, 30.0]


def test_compare_with_paper_gives_both_values_and_exact_differences(table2):
    compared = compare_with_paper(table2, 2)
    assert list(compared["variant"]) == list(ABLATION_VARIANTS[2])
    assert list(compared.columns[:5]) == [
        "Method",
        "variant",
        "Rank-1 (paper)",
        "Rank-1 (ours)",
        "Rank-1 (diff)",
    ]
    by_variant = compared.set_index("variant")
    assert by_variant.loc["baseline", "Rank-1 (paper)"] == 58.99
    assert by_variant.loc["baseline", "Rank-1 (ours)"] == 50.0
    assert by_variant.loc["baseline", "Rank-1 (diff)"] == pytest.approx(-8.99, abs=1e-12)
    assert by_variant.loc["baseline", "mAP (diff)"] == pytest.approx(37.5 - 54.29, abs=1e-12)
    assert by_variant.loc["full", "Rank-1 (diff)"] == pytest.approx(75.0 - 71.96, abs=1e-12)
    assert by_variant.loc["kcm", "Rank-10 (diff)"] == pytest.approx(95.0 - 91.53, abs=1e-12)
    # rows not reproduced keep the paper's value and have no difference
    assert by_variant.loc["dmm", "Rank-1 (paper)"] == 67.40
    assert pd.isna(by_variant.loc["dmm", "Rank-1 (ours)"])
    assert pd.isna(by_variant.loc["dmm", "Rank-1 (diff)"])


def test_compare_with_table_iii_matches_full_to_the_dmm_row():
    ours = reproduced_table({"full": results(0.72, 0.67), "transformer": results(0.7, 0.6)}, 3)
    compared = compare_with_paper(ours, 3).set_index("Method")
    assert compared.loc["DMM", "Rank-1 (ours)"] == 72.0
    assert compared.loc["DMM", "Rank-1 (diff)"] == pytest.approx(72.0 - 71.96, abs=1e-12)
    assert compared.loc["Transformer", "mAP (diff)"] == pytest.approx(60.0 - 63.55, abs=1e-12)


def test_chart_of_a_comparison_has_paper_and_ours_bars(table2):
    fig = ablation_chart(compare_with_paper(table2, 2), "Rank-1")
    assert [trace.name for trace in fig.data] == ["paper", "ours"]
    assert list(fig.data[0].y) == list(load_paper_table(2)["Method"])
    assert fig.data[0].orientation == "h"  # long method names stay readable
    paper_bars, our_bars = list(fig.data[0].x), list(fig.data[1].x)
    assert (paper_bars[0], paper_bars[-1]) == (58.99, 71.96)
    assert (our_bars[0], our_bars[-1]) == (50.0, 75.0)


def test_chart_of_a_single_table_has_one_bar_per_row():
    fig = ablation_chart(load_paper_table(3), "mAP")
    assert len(fig.data) == 1
    assert list(fig.data[0].x) == [54.29, 64.32, 62.66, 63.55, 67.24]
    table1 = load_paper_table(1).assign(setting=lambda t: "k=" + t["k"].astype(str))
    assert len(ablation_chart(table1, "Rank-1", label="setting").data[0].y) == 8


def test_reproduced_tables_are_found_by_the_paper_table_they_reproduce(table2, tmp_path):
    save_reproduced_table(table2, tmp_path / "runs" / "t2", table=2)
    (tmp_path / "other.json").write_text('{"hello": 1}')
    assert find_reproduced(tmp_path) == {2: [tmp_path / "runs" / "t2.json"]}
    assert find_reproduced(tmp_path / "missing") == {}


def test_bad_input_raises_clear_errors(table2, tmp_path):
    with pytest.raises(ValueError, match="Table 2 or 3"):
        compare_with_paper(table2, 4)
    with pytest.raises(ValueError, match="variants must be distinct"):
        reproduced_table({"kcm_me_mmd": results(0.5, 0.5)}, table=3)
    with pytest.raises(ValueError, match="fraction"):
        reproduced_table({"baseline": results(58.99, 0.5)}, table=2)
    with pytest.raises(ValueError, match="lack 'r10'"):
        reproduced_table({"baseline": {"r1": 0.5, "r20": 0.9, "mAP": 0.4}}, table=2)
    with pytest.raises(ValueError, match="missing"):
        save_reproduced_table(table2.drop(columns=["mAP"]), tmp_path / "x", table=2)
    with pytest.raises(ValueError, match="percentages"):
        save_reproduced_table(table2.assign(mAP=[0.5, 101.0, 3.0]), tmp_path / "x", table=2)
    with pytest.raises(ValueError, match="its Method is"):
        save_reproduced_table(table2.assign(Method="ours"), tmp_path / "x", table=2)
    with pytest.raises(FileNotFoundError, match=r"expected the \.json"):
        load_reproduced_table(tmp_path / "missing")
    (tmp_path / "other.json").write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="not a reproduced table"):
        load_reproduced_table(tmp_path / "other.json")
    with pytest.raises(ValueError, match="no column 'R1'"):
        ablation_chart(table2, "R1")
    with pytest.raises(ValueError, match="no label column"):
        ablation_chart(table2, "mAP", label="name")
