"""The report scripts behind the README's numbers: training times and result tables."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPTS / name), *args], capture_output=True, text=True, timeout=120
    )


def write_run(folder: Path, variant: str, seconds: list[float]) -> None:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(
        json.dumps({"variant": variant, "backbone": "resnet18_slim"})
    )
    (folder / "metrics.jsonl").write_text(
        "".join(
            json.dumps({"epoch": i + 1, "time_s": s, "steps": 20}) + "\n"
            for i, s in enumerate(seconds)
        )
    )


def test_training_times_sum_the_epochs_and_give_a_load_robust_median(tmp_path):
    write_run(tmp_path / "baseline", "baseline", [60.0, 60.0, 600.0])  # one slowed epoch
    done = run_script("training_times.py", str(tmp_path))
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith("| baseline"))
    assert [c.strip() for c in row.strip("|").split("|")] == [
        "baseline",
        "resnet18_slim",
        "60",
        "12.0",
        "3.0",
    ]
    assert done.stdout.startswith("Machine: ")


def test_training_times_refuses_a_folder_without_runs(tmp_path):
    done = run_script("training_times.py", str(tmp_path))
    assert done.returncode == 2
    assert "no run folder" in done.stderr


def _metrics(r1: float, m_ap: float) -> dict:
    return {"r1": r1, "mAP": m_ap}


def write_result(folder: Path, name: str, r1: float, m_ap: float, intra: bool = True) -> None:
    doc = {
        "results": {
            k: _metrics(r1, m_ap)
            for k in ("all_single", "all_multi", "indoor_single", "indoor_multi")
        }
    }
    if intra:
        doc["intra_modality"] = {
            k: _metrics(r1, m_ap)
            for k in (
                "visible_to_visible",
                "infrared_to_infrared",
                "infrared_to_visible",
                "visible_to_infrared",
            )
        }
    (folder / f"{name}.json").write_text(json.dumps(doc))


def test_results_markdown_prints_both_tables_and_the_difference(tmp_path):
    write_result(tmp_path, "baseline", 0.10, 0.20)
    write_result(tmp_path, "full", 0.125, 0.19)
    done = run_script(
        "results_markdown.py", "--results", str(tmp_path), "--models", "baseline", "full"
    )
    assert done.returncode == 0, done.stderr
    assert "| Baseline | 10.00 / 20.00 | 10.00 / 20.00 |" in done.stdout
    assert "| CycleTrans | 12.50 / 19.00 |" in done.stdout
    assert done.stdout.rstrip().endswith("Rank-1 +2.50, mAP -1.00")


@pytest.mark.parametrize(
    ("intra", "message"), [(None, "no "), (False, "no intra-modality results")]
)
def test_results_markdown_names_what_is_missing(tmp_path, intra, message):
    if intra is not None:
        write_result(tmp_path, "baseline", 0.1, 0.1, intra=intra)
    done = run_script("results_markdown.py", "--results", str(tmp_path), "--models", "baseline")
    assert done.returncode == 2
    assert message in done.stderr


def test_chance_level_scores_random_features_on_a_tiny_tree(tmp_path):
    from engine_helpers import write_sysu_tree

    done = run_script(
        "chance_level.py", "--data-root", str(write_sysu_tree(tmp_path)), "--draws", "2"
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].endswith("2 draws")
    assert lines[1].startswith("all-search single-shot, random features: Rank-1 ")
    assert lines[2].startswith("indoor-search single-shot")


def test_chance_level_refuses_zero_draws(tmp_path):
    done = run_script("chance_level.py", "--data-root", str(tmp_path), "--draws", "0")
    assert done.returncode == 2
    assert "--draws must be at least 1" in done.stderr


def test_kcm_diagnostics_report_each_kcm_model_and_skip_the_baseline(tmp_path):
    import torch
    from engine_helpers import write_sysu_tree

    import cycletrans

    paths = []
    for variant in ("baseline", "full"):
        torch.manual_seed(0)
        model = cycletrans.build_model(
            variant,
            "resnet18_slim",
            num_classes=3,
            num_anchors=3,
            num_prototypes=8,
            preprocessing={"height": 64, "width": 32, "mean": [0.5] * 3, "std": [0.5] * 3},
        )
        paths.append(str(tmp_path / f"{variant}.safetensors"))
        cycletrans.save_model(model.eval(), paths[-1])
    done = run_script(
        "kcm_diagnostics.py",
        *paths,
        "--data-root",
        str(write_sysu_tree(tmp_path / "tree")),
        "--queries",
        "4",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1].endswith("no KCM (baseline), skipped")
    stats = dict(part.rsplit(" ", 1) for part in lines[2].split(": ", 1)[1].split(", "))
    assert set(stats) == {
        "F~ cos min",
        "F' cos mean",
        "F_N cos mean",
        "A W_theta cos",
        "map cos",
        "map cos across images",
        "peak",
    }
    for name in ("A W_theta cos", "map cos", "map cos across images"):
        assert -1.0 <= float(stats[name]) <= 1.0
    assert -1.0 <= float(stats["F~ cos min"]) <= 1.0
    assert float(stats["peak"]) >= 1.0


def test_results_markdown_puts_a_reproduced_table_beside_the_papers(tmp_path):
    from analysis.ablation_tables import reproduced_table, save_reproduced_table

    write_result(tmp_path, "baseline", 0.10, 0.20)
    metrics = {"r1": 0.5, "r10": 0.6, "r20": 0.7, "mAP": 0.4}
    table = reproduced_table({"baseline": metrics, "full": metrics}, 3)
    (tmp_path / "ablation").mkdir()
    save_reproduced_table(table, tmp_path / "ablation" / "table3", table=3)
    done = run_script("results_markdown.py", "--results", str(tmp_path), "--models", "baseline")
    assert done.returncode == 0, done.stderr
    assert "Reproduced Table 3 (table3.json)" in done.stdout
    assert (
        "| Baseline | `baseline` | 50.00 (58.99) | 60.00 (91.18) | 70.00 (96.06) | 40.00 (54.29) |"
    ) in done.stdout
    assert "| Transformer | `transformer` | n/a (68.44)" in done.stdout  # not reproduced
