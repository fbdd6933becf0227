"""The synthetic visible/infrared pedestrian generator (cycletrans.data.synth, `synth` command).

Specification: deterministic byte-for-byte from a seed, per identity (an identity generated alone
equals the same identity in a full run, with or without worker processes); the real SYSU-MM01
and RegDB layouts, readable by the project's readers; an attribute table; a real modality gap
(a colour-histogram matcher works across visible cameras, is at chance from infrared to
visible); the `sysu` preset's counts are SYSU-MM01's; clear errors for bad arguments.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cycletrans.cli import synth as synth_cli
from cycletrans.data import SYSUMM01, RegDB
from cycletrans.data.synth import Preset, generate, get_preset
from cycletrans.data.synth.baseline import modality_gap
from cycletrans.data.synth.derive_counts import derive_sysu_counts
from cycletrans.data.synth.identities import ATTRIBUTE_COLUMNS, sample_identity
from cycletrans.data.synth.layout import REGDB_IMAGES, regdb_trials
from cycletrans.data.synth.presets import PRESETS, load_counts_table, plan

REAL_SYSU = Path("/work/shared/data/sysu-mm01")
TINY = Preset("tiny", height=32, width=16, supersample=2, num_ids=(2, 1, 3), images=(1, 2))
# Test identities in cameras 1, 4 (visible) and 3, 6 (infrared), three images each, demo size.
GAP = Preset("gap", num_ids=(1, 1, 30), presence=(1, 0, 1, 1, 0, 1), images=(3, 3))


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> bytes)."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def images_of(files: dict[str, bytes], pid: int) -> dict[str, bytes]:
    return {k: v for k, v in files.items() if re.match(rf"cam\d/{pid:04d}/", k)}


@pytest.fixture(scope="module")
def tiny_sysu(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "sysu"
    generate(root, TINY, seed=0, progress=False)
    return root


@pytest.fixture(scope="module")
def tiny_regdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "regdb"
    generate(root, TINY, seed=0, layout="regdb", progress=False)
    return root


# ------------------------------------------------------------------------------ determinism


def test_same_seed_gives_byte_identical_files(tiny_sysu: Path, tmp_path: Path) -> None:
    generate(tmp_path / "again", TINY, seed=0, progress=False)
    assert tree(tmp_path / "again") == tree(tiny_sysu)


def test_another_seed_gives_other_images(tiny_sysu: Path, tmp_path: Path) -> None:
    generate(tmp_path / "other", TINY, seed=1, progress=False)
    first = tree(tiny_sysu)
    other = tree(tmp_path / "other")
    shared = [k for k in first if k.endswith(".jpg") and k in other]
    assert shared
    assert all(first[k] != other[k] for k in shared)


def test_identity_alone_is_byte_identical_to_the_full_run(tiny_sysu: Path, tmp_path: Path) -> None:
    full = tree(tiny_sysu)
    pid = plan(TINY, 0).splits["train"][1]
    generate(tmp_path / "alone", TINY, seed=0, ids=[pid], progress=False)
    alone = tree(tmp_path / "alone")
    assert images_of(alone, pid) == images_of(full, pid) != {}
    assert not any(k.endswith(".jpg") for k in set(alone) - set(images_of(alone, pid)))


def test_test_ids_alone_are_byte_identical_to_the_full_run(tiny_sysu: Path, tmp_path: Path) -> None:
    full = tree(tiny_sysu)
    generate(tmp_path / "test", TINY, seed=0, ids="test", progress=False)
    subset = tree(tmp_path / "test")
    expected = {
        k: v for pid in plan(TINY, 0).splits["test"] for k, v in images_of(full, pid).items()
    }
    assert {k: v for k, v in subset.items() if k.endswith(".jpg")} == expected
    # The split files describe the whole dataset whatever was generated.
    assert subset["exp/train_id.txt"] == full["exp/train_id.txt"]
    assert json.loads(subset["exp/synth.json"])["ids"] == "test"


def test_worker_processes_do_not_change_the_output(tiny_sysu: Path, tmp_path: Path) -> None:
    generate(tmp_path / "workers", TINY, seed=0, workers=2, progress=False)
    assert tree(tmp_path / "workers") == tree(tiny_sysu)


def test_identity_attributes_depend_only_on_seed_and_pid() -> None:
    later = [sample_identity(3, pid) for pid in (9, 2, 5)]
    assert sample_identity(3, 5) == later[2]
    assert sample_identity(4, 5) != later[2]


# ------------------------------------------------------------------------------ SYSU layout


def test_sysu_layout_has_every_camera_and_numbered_files(tiny_sysu: Path) -> None:
    the_plan = plan(TINY, 0)
    assert sorted(p.name for p in tiny_sysu.iterdir()) == [f"cam{c}" for c in range(1, 7)] + ["exp"]
    for pid, counts in the_plan.counts.items():
        for cam, count in enumerate(counts, start=1):
            folder = tiny_sysu / f"cam{cam}" / f"{pid:04d}"
            names = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
            assert names == [f"{n:04d}.jpg" for n in range(1, count + 1)]


def test_sysu_exp_id_files_are_one_line_of_disjoint_ids(tiny_sysu: Path) -> None:
    exp = tiny_sysu / "exp"
    ids = {}
    for name in ("train", "val", "test", "available"):
        text = (exp / f"{name}_id.txt").read_text()
        assert text.count("\n") == 1
        assert text.endswith("\n")
        ids[name] = [int(x) for x in text.strip().split(",")]
    assert [len(ids[s]) for s in ("train", "val", "test")] == list(TINY.num_ids)
    union = ids["train"] + ids["val"] + ids["test"]
    assert len(set(union)) == len(union)
    assert ids["available"] == sorted(union)


def test_images_have_the_preset_size_and_infrared_is_grey(tiny_sysu: Path) -> None:
    for cam in range(1, 7):
        for path in sorted((tiny_sysu / f"cam{cam}").rglob("*.jpg")):
            with Image.open(path) as image:
                assert image.format == "JPEG"
                assert image.mode == "RGB"
                assert image.size == (TINY.width, TINY.height)
                array = np.asarray(image).astype(int)
            grey = np.array_equal(array[..., 0], array[..., 1]) and np.array_equal(
                array[..., 1], array[..., 2]
            )
            assert grey == (cam in (3, 6)), path


def test_project_readers_load_the_generated_trees(tiny_sysu: Path, tiny_regdb: Path) -> None:
    the_plan = plan(TINY, 0)
    sysu = SYSUMM01(tiny_sysu)
    assert sysu.test_ids == the_plan.splits["test"]
    assert len(sysu.test) == sum(sum(the_plan.counts[p]) for p in the_plan.splits["test"])
    assert {r.modality for r in sysu.test if r.cam in (3, 6)} == {1}
    regdb = RegDB(tiny_regdb, trial=2)
    assert regdb.split_source == "idx"
    assert (regdb.train_ids, regdb.test_ids) == tuple(regdb_trials(0, the_plan.available)[1])


def test_attribute_table_has_one_row_per_identity(tiny_sysu: Path) -> None:
    with open(tiny_sysu / "exp" / "attributes.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    the_plan = plan(TINY, 0)
    assert [int(r["pid"]) for r in rows] == sorted(the_plan.counts)
    for column in (
        "split",
        "sex",
        "height",
        "build",
        "head_size",
        "leg_length",
        "hair_style",
        "hair_colour",
        "top_kind",
        "top_pattern",
        "top_colour",
        "top_rgb",
        "top_thermal",
        "bottom_kind",
        "shoes_kind",
        "hat_kind",
        "glasses",
        "backpack_colour",
        "bag_kind",
        "skin_thermal",
    ):
        assert column in rows[0]
    assert set(ATTRIBUTE_COLUMNS) - {"pid"} <= set(rows[0])
    split_of = {pid: s for s, pids in the_plan.splits.items() for pid in pids}
    assert all(r["split"] == split_of[int(r["pid"])] for r in rows)
    assert all(re.fullmatch(r"#[0-9a-f]{6}", r["top_rgb"]) for r in rows)


def test_synth_json_records_the_recipe(tiny_sysu: Path) -> None:
    meta = json.loads((tiny_sysu / "exp" / "synth.json").read_text())
    assert meta["preset"] == "tiny"
    assert meta["seed"] == 0
    assert meta["layout"] == "sysu"
    assert meta["image_size"] == [32, 16]
    assert meta["complete"] is True
    assert meta["ids"] == "all"
    jpgs = len(list(tiny_sysu.rglob("*.jpg")))
    assert sum(meta["images"].values()) == jpgs
    assert meta["identities"] == {"train": 2, "val": 1, "test": 3, "unused": 0}


# ----------------------------------------------------------------------------- RegDB layout


def test_regdb_layout_has_ten_visible_and_ten_thermal_bmps_per_identity(tiny_regdb: Path) -> None:
    ids = plan(TINY, 0).available
    pattern = re.compile(r"(female|male)_(front|back|side)_([vt])_(\d{5})_(\d+)\.bmp")
    for folder, letter in (("Visible", "v"), ("Thermal", "t")):
        assert sorted(int(p.name) for p in (tiny_regdb / folder).iterdir()) == ids
        for pid in ids:
            names = sorted(p.name for p in (tiny_regdb / folder / str(pid)).iterdir())
            assert len(names) == REGDB_IMAGES
            matches = [pattern.fullmatch(n) for n in names]
            assert all(m and m[3] == letter and int(m[4]) == pid for m in matches), names
    with Image.open(next((tiny_regdb / "Thermal").rglob("*.bmp"))) as image:
        assert image.format == "BMP"
        assert image.mode == "RGB"


def test_regdb_visible_and_thermal_frames_are_pairs(tiny_regdb: Path) -> None:
    pid = plan(TINY, 0).available[0]
    for n in range(1, REGDB_IMAGES + 1):
        vis = [p.name for p in (tiny_regdb / "Visible" / str(pid)).glob(f"*_{n}.bmp")]
        ther = [p.name for p in (tiny_regdb / "Thermal" / str(pid)).glob(f"*_{n}.bmp")]
        assert len(vis) == len(ther) == 1
        assert vis[0].replace("_v_", "_t_") == ther[0]


def test_regdb_idx_files_list_valid_paths_and_labels(tiny_regdb: Path) -> None:
    ids = plan(TINY, 0).available
    splits_seen = set()
    for trial in range(1, 11):
        halves = {}
        for split in ("train", "test"):
            for modality, folder in (("visible", "Visible"), ("thermal", "Thermal")):
                lines = (tiny_regdb / "idx" / f"{split}_{modality}_{trial}.txt").read_text()
                pairs = [line.rsplit(" ", 1) for line in lines.splitlines()]
                assert all(
                    path.startswith(f"{folder}/") and (tiny_regdb / path).is_file()
                    for path, _ in pairs
                )
                split_ids = sorted({int(path.split("/")[1]) for path, _ in pairs})
                assert len(pairs) == REGDB_IMAGES * len(split_ids)
                assert all(
                    int(label) == split_ids.index(int(path.split("/")[1])) for path, label in pairs
                )
                halves.setdefault(split, split_ids)
                assert halves[split] == split_ids  # visible and thermal lists agree
        assert sorted(halves["train"] + halves["test"]) == ids
        assert len(halves["train"]) == len(ids) // 2
        splits_seen.add(tuple(halves["train"]))
    assert len(splits_seen) > 1  # the 10 trials are different splits


# ---------------------------------------------------------------------------- modality gap


def test_colour_matcher_works_across_visible_cameras_and_fails_across_modalities(
    tmp_path: Path,
) -> None:
    generate(tmp_path / "gap", GAP, seed=0, ids="test", progress=False)
    report = modality_gap(tmp_path / "gap")
    chance = report["chance"]
    assert chance == pytest.approx(1 / 30)
    # Measured (seed 0): visible->visible 0.81, infrared->visible 0.033, infrared->infrared 0.28.
    assert report["visible->visible"] >= 0.6
    assert report["infrared->visible"] <= 3 * chance
    # The infrared images still carry identity (thermal levels, shapes): well above chance.
    assert report["infrared->infrared"] >= 3 * chance


def test_thermal_levels_are_unrelated_to_colour_and_skin_is_warmest() -> None:
    people = [sample_identity(0, pid) for pid in range(1, 401)]
    luma = np.array([np.dot(p.top.rgb, (0.299, 0.587, 0.114)) for p in people])
    thermal = np.array([p.top.thermal for p in people])
    assert abs(np.corrcoef(luma, thermal)[0, 1]) < 0.15
    assert all(p.skin_thermal > p.top.thermal and p.hair_thermal < 0.35 for p in people)


# ---------------------------------------------------------------------------- presets


def test_demo_preset_split_and_counts() -> None:
    the_plan = plan(get_preset("demo"), 0)
    assert [len(the_plan.splits[s]) for s in ("train", "val", "test")] == [100, 20, 72]
    counts = np.array([the_plan.counts[p] for p in the_plan.available])
    assert ((counts == 0) | ((counts >= 3) & (counts <= 6))).all()
    assert (counts[:, [0, 1, 3, 4]].sum(1) > 0).all()
    assert (counts[:, [2, 5]].sum(1) > 0).all()
    assert plan(get_preset("demo"), 1).splits["test"] != the_plan.splits["test"]


def test_sysu_counts_table_has_the_real_totals_and_split() -> None:
    rows = load_counts_table("sysu_counts.csv")
    totals = np.sum([counts for _, _, counts in rows], axis=0)
    assert totals.tolist() == [6289, 7528, 9812, 8030, 8224, 5980]
    assert totals.sum() == 45863
    sizes = {
        s: sum(1 for _, split, _ in rows if split == s) for s in ("train", "val", "test", "unused")
    }
    assert sizes == {"train": 296, "val": 99, "test": 96, "unused": 22}
    assert len({pid for pid, _, _ in rows}) == len(rows)


@pytest.mark.skipif(
    not (REAL_SYSU / "rand_perm_cam.mat").is_file(), reason="SYSU-MM01 split files not available"
)
def test_sysu_counts_table_equals_the_official_rand_perm_cam() -> None:
    derived = derive_sysu_counts(REAL_SYSU / "rand_perm_cam.mat", REAL_SYSU / "exp")
    assert tuple(derived) == load_counts_table("sysu_counts.csv")


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"preset": "market"}, "unknown preset"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"seed": 1.5}, "seed must be a non-negative integer"),
        ({"seed": "3"}, "seed must be a non-negative integer"),
        ({"seed": True}, "seed must be a non-negative integer"),
        ({"layout": "market"}, "unknown layout"),
        ({"layout": "regdb", "ids": "test"}, "needs the sysu layout"),
        ({"ids": [9999]}, "unknown: \\[9999\\]"),
        ({"ids": "some"}, "ids must be"),
        ({"workers": 0}, "workers must be a positive integer"),
    ],
)
def test_bad_arguments_raise_clear_errors(tmp_path: Path, kwargs: dict, message: str) -> None:
    args = {"preset": TINY, "progress": False, **kwargs}
    with pytest.raises(ValueError, match=message):
        generate(tmp_path / "out", **args)
    assert not (tmp_path / "out").exists()


def test_refuses_a_folder_holding_something_else(tiny_sysu: Path, tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        generate(tmp_path / "busy", TINY, progress=False)
    with pytest.raises(FileExistsError, match="another synthetic set"):
        generate(tiny_sysu, TINY, seed=5, progress=False)


def test_preset_rejects_a_tiny_image_size() -> None:
    with pytest.raises(ValueError, match="too small"):
        Preset("bad", height=8, width=4)


# ---------------------------------------------------------------------------- command line


def test_cli_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        synth_cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert all(flag in out for flag in ("--out", "--preset", "--seed", "--layout", "--ids"))


@pytest.mark.parametrize(
    "argv",
    [
        ["--seed", "-2"],
        ["--seed", "x"],
        ["--preset", "market"],
        ["--layout", "market"],
        ["--ids", "half"],
    ],
)
def test_cli_rejects_bad_arguments(
    tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        synth_cli.main(["--out", str(tmp_path / "out"), *argv])
    assert exit_info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_cli_generates_and_reports_the_rate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(PRESETS, "demo", TINY)
    parser = argparse.ArgumentParser()
    synth_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["synth", "--out", str(tmp_path / "cli"), "--ids", "test", "--quiet"])
    assert args.run(args) == 0
    assert "images/s" in capsys.readouterr().out
    assert json.loads((tmp_path / "cli" / "exp" / "synth.json").read_text())["ids"] == "test"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("x")
    assert synth_cli.main(["--out", str(tmp_path / "other"), "--quiet"]) == 2
    assert "not empty" in capsys.readouterr().err
