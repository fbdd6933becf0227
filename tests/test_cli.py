"""The command line: train -> evaluate -> extract on a tiny tree, ablate, help, clear errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from engine_helpers import TEST_IDS, TINY_FLAGS, TRAIN_IDS, VAL_IDS, person_image, write_sysu_tree

from cycletrans import save_model
from cycletrans.cli import main
from cycletrans.engine import FeatureSet
from cycletrans.evaluation import UnofficialPicksWarning
from cycletrans.models import build_model
from cycletrans.models.reid_model import ReIDModel
from cycletrans.preprocessing import Preprocessing

REPO = Path(__file__).resolve().parents[1]
METRICS = ("r1", "r5", "r10", "r20", "mAP", "mINP")


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return write_sysu_tree(tmp_path_factory.mktemp("sysu"))


@pytest.fixture(scope="module")
def trained(tree, tmp_path_factory) -> Path:
    """One tiny epoch trained by ``python -m cycletrans train`` in a subprocess."""
    output = tmp_path_factory.mktemp("cli") / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cycletrans",
            "train",
            "--preset",
            "demo",
            "--data-root",
            str(tree),
            "--output",
            str(output),
            "--epochs",
            "1",
            *TINY_FLAGS,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "done: 1 epochs, 2 steps" in done.stdout
    return output


def test_train_command_writes_a_loadable_run(trained):
    for name in (
        "config.json",
        "metrics.jsonl",
        "last.safetensors",
        "last.json",
        "resume.pt",
        "result.json",
    ):
        assert (trained / name).is_file(), name
    assert json.loads((trained / "config.json").read_text())["epochs"] == 1


def test_evaluate_writes_every_sysu_setting_and_the_modality_gap(trained, tree, tmp_path, capsys):
    out = tmp_path / "eval.json"
    with pytest.warns(UnofficialPicksWarning, match="not the official ones"):
        code = main(
            [
                "evaluate",
                "--checkpoint",
                str(trained / "last.safetensors"),
                "--data-root",
                str(tree),
                "--trials",
                "2",
                "--workers",
                "0",
                "--intra-modality",
                "--output",
                str(out),
            ]
        )
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc["dataset"] == "sysu"
    assert doc["model"]["variant"] == "full"
    assert doc["num_images"] == len(TEST_IDS) * 6 * 2
    assert list(doc["results"]) == ["all_single", "all_multi", "indoor_single", "indoor_multi"]
    for metrics in [*doc["results"].values(), *doc["intra_modality"].values()]:
        assert all(0.0 <= metrics[k] <= 1.0 for k in METRICS)
    assert doc["results"]["all_single"]["trials"] == 2
    assert doc["official_gallery_picks"] is False  # the tiny tree does not fit the official file
    assert doc["results"]["all_single"]["gallery_note"].startswith("the images do not fit")
    assert doc["results"]["all_single"]["num_queries"] == len(TEST_IDS) * 2 * 2
    assert set(doc["intra_modality"]) == {
        "visible_to_visible",
        "infrared_to_infrared",
        "infrared_to_visible",
        "visible_to_infrared",
    }
    printed = capsys.readouterr().out
    assert "all_single" in printed
    assert "visible_to_visible" in printed


@pytest.mark.filterwarnings("ignore::cycletrans.evaluation.UnofficialPicksWarning")  # tiny tree
def test_evaluate_runs_only_the_asked_settings_and_rejects_foreign_ones(
    trained, tree, tmp_path, capsys
):
    out = tmp_path / "eval.json"
    args = [
        "evaluate",
        "--checkpoint",
        str(trained / "last.safetensors"),
        "--data-root",
        str(tree),
        "--trials",
        "1",
        "--workers",
        "0",
    ]
    assert main([*args, "--protocol", "indoor_multi", "--output", str(out)]) == 0
    assert list(json.loads(out.read_text())["results"]) == ["indoor_multi"]
    assert main([*args, "--protocol", "visible_to_infrared"]) == 2
    assert "is not a sysu setting" in capsys.readouterr().err


def write_regdb_tree(root: Path, ids=range(1, 9), per_modality: int = 2) -> Path:
    """A tiny RegDB layout without idx/ (the reader draws the trials' splits itself)."""
    for pid in ids:
        for folder, cam in (("Visible", 1), ("Thermal", 3)):
            (root / folder / str(pid)).mkdir(parents=True)
            for n in range(per_modality):
                person_image(pid, cam, n).save(root / folder / str(pid) / f"{n}.bmp")
    return root


def test_evaluate_averages_regdb_trials_each_with_its_own_checkpoint(tmp_path, capsys):
    root = write_regdb_tree(tmp_path / "RegDB")
    for trial in (1, 2):
        torch.manual_seed(trial)
        save_model(
            build_model("baseline", "resnet18", num_classes=4, preprocessing=Preprocessing(32, 16)),
            tmp_path / f"trial{trial}" / "m.safetensors",
        )
    base = ["evaluate", "--data-root", str(root), "--workers", "0", "--device", "cpu"]
    singles = []
    for trial in (1, 2):
        out = tmp_path / f"trial{trial}.json"
        assert (
            main(
                [
                    *base,
                    "--checkpoint",
                    str(tmp_path / f"trial{trial}" / "m.safetensors"),
                    "--trial",
                    str(trial),
                    "--output",
                    str(out),
                ]
            )
            == 0
        )
        singles.append(json.loads(out.read_text()))
    assert singles[0]["results"] != singles[1]["results"]  # other splits, other models
    out = tmp_path / "mean.json"
    pattern = str(tmp_path / "trial{trial}" / "m.safetensors")
    assert (
        main(
            [
                *base,
                "--checkpoint",
                pattern,
                "--trial",
                "1",
                "2",
                "--intra-modality",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    doc = json.loads(out.read_text())
    assert doc["regdb_trials"] == [1, 2]
    for trial, single in zip(("1", "2"), singles, strict=True):
        assert doc["per_trial"][trial]["results"] == single["results"]
        assert doc["per_trial"][trial]["checkpoint"] == single["checkpoint"]
    for direction in ("visible_to_infrared", "infrared_to_visible"):
        mean = doc["results"][direction]
        for key in METRICS:
            assert mean[key] == pytest.approx(
                np.mean([single["results"][direction][key] for single in singles])
            )
        assert mean["num_trials"] == 2
    assert doc["intra_modality"]["visible_to_visible"]["num_trials"] == 2
    assert "mean over the 2 trials" in capsys.readouterr().out
    # one model for several trials would be tested on other trials' training identities
    one = str(tmp_path / "trial1" / "m.safetensors")
    assert main([*base, "--checkpoint", one, "--trial", "1", "2"]) == 2
    assert "must contain {trial}" in capsys.readouterr().err


def test_several_trials_are_refused_on_sysu_mm01(trained, tree, capsys):
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(trained / "last.safetensors"),
                "--data-root",
                str(tree),
                "--trial",
                "1",
                "2",
            ]
        )
        == 2
    )
    assert "sysu has one test split" in capsys.readouterr().err


def test_extract_writes_the_documented_arrays(trained, tree, tmp_path):
    out = tmp_path / "test.npz"
    assert (
        main(
            [
                "extract",
                "--checkpoint",
                str(trained / "last.safetensors"),
                "--data-root",
                str(tree),
                "--out",
                str(out),
                "--workers",
                "0",
            ]
        )
        == 0
    )
    with np.load(out) as data:
        assert set(data.files) == {"features", "ids", "cams", "frames", "paths", "modalities"}
        n = len(TEST_IDS) * 6 * 2
        assert data["features"].shape == (n, 3 * 512)
        assert set(data["ids"].tolist()) == set(TEST_IDS)
        assert set(data["cams"].tolist()) == {1, 2, 3, 4, 5, 6}
        assert data["frames"].min() == 1
        assert all(Path(p).is_file() for p in data["paths"])
        np.testing.assert_array_equal(data["modalities"], np.isin(data["cams"], (3, 6)))


@pytest.mark.filterwarnings("ignore::cycletrans.evaluation.UnofficialPicksWarning")  # tiny tree
def test_ablate_trains_each_row_once_and_reuses_finished_rows(tree, tmp_path, capsys, monkeypatch):
    from analysis.ablation_tables import load_reproduced_table

    args = [
        "ablate",
        "--preset",
        "demo",
        "--table",
        "3",
        "--data-root",
        str(tree),
        "--output",
        str(tmp_path / "ablation"),
        "--trials",
        "2",
        "--epochs",
        "1",
        *TINY_FLAGS,
        "--batches-per-epoch",
        "1",
    ]
    assert main(args) == 0
    table = load_reproduced_table(tmp_path / "ablation" / "table3.json")
    assert list(table["variant"]) == [
        "baseline",
        "dmm_ap",
        "dmm_residual_ap",
        "transformer",
        "full",
    ]
    assert list(table["Method"]) == [
        "Baseline",
        "F_N = AP",
        "F_N = F'_I + AP",
        "Transformer",
        "DMM",
    ]  # the paper's row names, added on loading
    assert table[["Rank-1", "Rank-10", "Rank-20", "mAP"]].to_numpy().max() <= 100
    assert (tmp_path / "ablation" / "table3.csv").is_file()
    assert table.attrs["metadata"]["preset"] == "demo"

    def no_training(*args, **kwargs):
        raise AssertionError("a finished row was trained again")

    monkeypatch.setattr("cycletrans.engine.train", no_training)
    assert main(args) == 0
    assert capsys.readouterr().out.count("reusing the finished run") == 5
    assert main([*args[:-2], "--batches-per-epoch", "2"]) == 2
    assert "holds a baseline run with another config" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("command", "flags"),
    [
        ("synth", ["--out", "--preset"]),
        (
            "train",
            [
                "--preset",
                "--data-root",
                "--variant",
                "--resume",
                "--epochs",
                "--lr",
                "--milestones",
                "--loss-weights",
                "--validation",
                "--sync-bn",
                "--amp",
                "--max-steps",
                "--save-every",
                "--output",
            ],
        ),
        (
            "evaluate",
            [
                "--checkpoint",
                "--data-root",
                "--protocol",
                "--trials",
                "--intra-modality",
                "--output",
            ],
        ),
        ("extract", ["--checkpoint", "--data-root", "--out", "--split"]),
        ("ablate", ["--preset", "--table", "--output", "--epochs"]),
    ],
)
def test_every_command_has_a_help_that_names_its_flags(command, flags, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    missing = [f for f in flags if f not in text]
    assert missing == []
    if command == "train":
        assert "default: sysu 140, regdb 140, demo" in text


def test_train_flags_reach_the_config_and_unset_ones_keep_the_preset():
    from cycletrans.cli import build_parser
    from cycletrans.cli.train import config_from_args

    args = build_parser().parse_args(
        [
            "train",
            "--preset",
            "sysu",
            "--data-root",
            "/d",
            "--pad-crop",
            "--no-flip",
            "--epochs",
            "3",
        ]
    )
    config = config_from_args(args)
    assert (config.pad_crop, config.flip, config.epochs) == (True, False, 3)
    assert (config.random_erasing, config.lr) == (0.5, 3.5e-4)


def test_model_flags_reach_the_model_options_and_the_authors_schedule_is_one_flag():
    from cycletrans.cli import build_parser
    from cycletrans.cli.train import config_from_args
    from cycletrans.losses import AUTHORS_WEIGHTS

    args = build_parser().parse_args(
        [
            "train",
            "--preset",
            "sysu",
            "--data-root",
            "/d",
            "--num-anchors",
            "4",
            "--loss-weights",
            "authors",
            "--cycle-grad",
            "authors",
            "--no-pretrained",
            "--schedule",
            "authors",
            "--milestones",
            "50",
        ]
    )
    config = config_from_args(args)
    assert (config.model.num_anchors, config.model.cycle_grad) == (4, "authors")
    assert (config.model.loss_weights, config.model.pretrained) == (AUTHORS_WEIGHTS, False)
    assert (config.epoch_pass, config.warmup_epochs) == ("paired", 10)
    assert config.milestones == (50,)  # given explicitly: the schedule does not override it
    numbers = build_parser().parse_args(
        ["train", "--preset", "demo", "--loss-weights", "1", "2", "3", "4"]
    )
    assert config_from_args(numbers).model.loss_weights.to_dict() == {
        "sep": 1.0,
        "mmd": 2.0,
        "rec": 3.0,
        "aln": 4.0,
        "me": 1.0,
    }


def test_python_m_cycletrans_help_lists_the_commands():
    done = subprocess.run(
        [sys.executable, "-m", "cycletrans", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert done.returncode == 0
    assert all(c in done.stdout for c in ("synth", "train", "evaluate", "extract", "ablate"))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--preset", "sysu"], "needs a data root"),
        (["train", "--preset", "sysu", "--data-root", "/nonexistent/sysu"], "is not a folder"),
        (["train"], "--preset is required"),
        (["train", "--resume", "--output", "/nonexistent/run"], "no training run"),
        (["train", "--preset", "demo", "--epochs", "0"], "epochs must be at least 1"),
        (
            [
                "evaluate",
                "--checkpoint",
                "/nonexistent/m.safetensors",
                "--data-root",
                "/nonexistent",
            ],
            "is not a folder",
        ),
    ],
)
def test_bad_arguments_give_one_clear_error_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_unknown_variant_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--preset", "demo", "--variant", "nope"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_a_nan_loss_stops_the_command_with_a_clear_message(tree, tmp_path, capsys, monkeypatch):
    original = ReIDModel.loss

    def poisoned(self, out, labels, modalities):
        terms = original(self, out, labels, modalities)
        terms["loss"] = terms["loss"] * float("inf")
        return terms

    monkeypatch.setattr(ReIDModel, "loss", poisoned)
    code = main(
        [
            "train",
            "--preset",
            "demo",
            "--data-root",
            str(tree),
            "--output",
            str(tmp_path / "run"),
            *TINY_FLAGS,
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "non-finite loss at epoch 1, step 1" in err
    assert "loss=inf" in err


def test_train_refuses_a_folder_holding_a_run_and_names_overwrite(trained, tree, capsys):
    before = (trained / "metrics.jsonl").read_text()
    code = main(
        [
            "train",
            "--preset",
            "demo",
            "--data-root",
            str(tree),
            "--output",
            str(trained),
            "--epochs",
            "1",
            *TINY_FLAGS,
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "already holds a training run" in err
    assert "--overwrite to replace it" in err
    assert (trained / "metrics.jsonl").read_text() == before


def test_a_run_stopped_by_a_signal_exits_with_128_plus_its_number(monkeypatch, capsys):
    from cycletrans.cli import train as train_command
    from cycletrans.engine import StoppedBySignalError

    def stopped(args):
        raise StoppedBySignalError("stopped by SIGINT at epoch 1, step 1", signal.SIGINT)

    monkeypatch.setattr(train_command, "run", stopped)
    assert main(["train", "--preset", "demo"]) == 130
    assert "train: stopped by SIGINT at epoch 1, step 1" in capsys.readouterr().err


def test_extract_writes_exactly_the_file_it_names(trained, tree, tmp_path, capsys):
    out = tmp_path / "feats.bin"
    assert (
        main(
            [
                "extract",
                "--checkpoint",
                str(trained / "last.safetensors"),
                "--data-root",
                str(tree),
                "--out",
                str(out),
                "--workers",
                "0",
            ]
        )
        == 0
    )
    assert f"wrote {out}:" in capsys.readouterr().out
    assert os.listdir(tmp_path) == ["feats.bin"]
    assert FeatureSet.load(out).features.shape == (len(TEST_IDS) * 6 * 2, 3 * 512)


def _one_error_line(capsys) -> str:
    """The one ``error:`` line the command printed (after any progress bar), no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("error:") == 1, err
    line = err.splitlines()[-1].split("\r")[-1]
    assert "error:" in line
    return line


def test_evaluate_refuses_a_checkpoint_whose_config_was_edited_in_one_line(
    trained, tree, tmp_path, capsys
):
    for suffix in (".safetensors", ".json"):
        shutil.copy(trained / f"last{suffix}", tmp_path / f"last{suffix}")
    config = json.loads((tmp_path / "last.json").read_text())
    (tmp_path / "last.json").write_text(json.dumps({**config, "num_classes": 10**12}))
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(tmp_path / "last.safetensors"),
                "--data-root",
                str(tree),
                "--workers",
                "0",
            ]
        )
        == 2
    )
    err = _one_error_line(capsys)
    assert f"{tmp_path / 'last.safetensors'} does not match the model its config" in err
    classes = len(TRAIN_IDS) + len(VAL_IDS)
    assert f"classifier.weight is [{classes}, 1536] in the file, [1000000000000, 1536]" in err


def test_a_truncated_image_stops_evaluate_in_one_line_naming_it(trained, tree, tmp_path, capsys):
    broken = tmp_path / "sysu"
    shutil.copytree(tree, broken)
    image = broken / "cam3" / f"{TEST_IDS[0]:04d}" / "0001.jpg"
    image.write_bytes(image.read_bytes()[:-200])
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(trained / "last.safetensors"),
                "--data-root",
                str(broken),
                "--workers",
                "2",
                "--trials",
                "1",
            ]
        )
        == 2
    )
    err = _one_error_line(capsys)
    assert f"error: cannot read image {image}: " in err
