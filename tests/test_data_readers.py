"""Dataset readers (SYSU-MM01, RegDB), read_image and ReIDDataset on tiny generated trees."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cycletrans.data import (
    SYSUMM01,
    ImageReadError,
    ImageRecord,
    RegDB,
    ReIDDataset,
    build_transforms,
    check_images,
    detect_dataset,
    read_image,
    split_records,
)
from cycletrans.data.regdb import seeded_split
from cycletrans.data.sysu import read_id_file
from cycletrans.preprocessing import Preprocessing

REAL_SYSU_EXP = Path("/work/shared/data/sysu-mm01/exp")

# ---------------------------------------------------------------- tiny trees


def write_image(path: Path, mode: str, shade: int = 100) -> None:
    """A tiny 8x4 (HxW) image; 'L' for single-channel infrared files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    color = shade if mode == "L" else (shade, 20, 200)
    Image.new(mode, (4, 8), color).save(path)


SYSU_SPLITS = {"train": [1, 2, 3], "val": [4], "test": [5, 6]}
# pid -> camera -> number of images (persons are missing from most cameras)
SYSU_IMAGES = {
    1: {1: 2, 3: 2},
    2: {2: 1, 6: 3},
    3: {4: 2, 3: 1},
    4: {5: 1, 6: 1},
    5: {1: 2, 2: 1, 3: 2},
    6: {4: 1, 6: 2},
}


def make_sysu(root: Path) -> Path:
    """SYSU-MM01 layout: cam1..cam6/<pid:04d>/<nnnn>.jpg and exp/*_id.txt; IR saved as 'L'."""
    for cam in range(1, 7):
        (root / f"cam{cam}").mkdir(parents=True)
    for pid, cams in SYSU_IMAGES.items():
        for cam, count in cams.items():
            mode = "L" if cam in (3, 6) else "RGB"
            for n in reversed(range(1, count + 1)):  # written out of name order on purpose
                write_image(root / f"cam{cam}" / f"{pid:04d}" / f"{n:04d}.jpg", mode)
    (root / "exp").mkdir()
    for split, ids in SYSU_SPLITS.items():
        (root / "exp" / f"{split}_id.txt").write_text(",".join(map(str, ids)) + "\n")
    (root / "exp" / "available_id.txt").write_text("1,2,3,4,5,6\n")
    return root


REGDB_IDS = list(range(1, 9))  # 8 persons, 3 visible + 3 thermal images each
REGDB_TRAIN = {trial: REGDB_IDS[trial % 2 :: 2] for trial in range(1, 11)}


def regdb_name(pid: int, modality: str, n: int) -> str:
    letter = "v" if modality == "Visible" else "t"
    return f"female_front_{letter}_{pid:05d}_{n}.bmp"


def make_regdb(root: Path, idx: bool = True) -> Path:
    """RegDB layout: Visible/<id>/*.bmp, Thermal/<id>/*.bmp ('L'), optional idx/ lists."""
    for pid in REGDB_IDS:
        for modality, mode in (("Visible", "RGB"), ("Thermal", "L")):
            for n in (3, 1, 2):
                write_image(root / modality / str(pid) / regdb_name(pid, modality, n), mode)
    if idx:
        (root / "idx").mkdir()
        for trial, train_ids in REGDB_TRAIN.items():
            test_ids = [pid for pid in REGDB_IDS if pid not in train_ids]
            for split, ids in (("train", train_ids), ("test", test_ids)):
                for modality in ("Visible", "Thermal"):
                    lines = [
                        f"{modality}/{pid}/{regdb_name(pid, modality, n)} {label}"
                        for label, pid in enumerate(ids)
                        for n in (1, 2, 3)
                    ]
                    name = f"{split}_{modality.lower()}_{trial}.txt"
                    (root / "idx" / name).write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def sysu_root(tmp_path: Path) -> Path:
    return make_sysu(tmp_path / "SYSU-MM01")


@pytest.fixture
def regdb_root(tmp_path: Path) -> Path:
    return make_regdb(tmp_path / "RegDB")


def tree_snapshot(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# ---------------------------------------------------------------- SYSU-MM01


def test_sysu_train_holds_train_and_val_ids_by_default(sysu_root):
    data = SYSUMM01(sysu_root)
    assert data.train_ids == [1, 2, 3, 4]
    assert data.val_ids == []
    assert data.val == []
    assert data.test_ids == [5, 6]
    assert {r.pid for r in data.train} == {1, 2, 3, 4}
    assert {r.pid for r in data.test} == {5, 6}
    assert len(data.train) == sum(sum(SYSU_IMAGES[p].values()) for p in (1, 2, 3, 4))
    assert len(data.test) == sum(sum(SYSU_IMAGES[p].values()) for p in (5, 6))


def test_sysu_validation_switch_moves_val_ids_out_of_train(sysu_root):
    data = SYSUMM01(sysu_root, validation=True)
    assert data.train_ids == [1, 2, 3]
    assert data.val_ids == [4]
    assert {r.pid for r in data.train} == {1, 2, 3}
    assert [(r.pid, r.cam) for r in data.val] == [(4, 5), (4, 6)]


def test_sysu_records_carry_camera_modality_and_absolute_paths(sysu_root):
    data = SYSUMM01(sysu_root)
    for record in data.train + data.test:
        assert isinstance(record, ImageRecord)
        assert record.modality == (1 if record.cam in (3, 6) else 0)
        path = Path(record.path)
        assert path.is_absolute()
        assert path.is_file()
        assert path.parent.name == f"{record.pid:04d}"
        assert path.parent.parent.name == f"cam{record.cam}"


def test_sysu_records_are_sorted_and_deterministic(sysu_root):
    first, second = SYSUMM01(sysu_root), SYSUMM01(sysu_root)
    assert first.test == second.test
    keys = [(r.pid, r.cam, r.frame) for r in first.train]
    assert keys == sorted(keys)


def test_sysu_frames_are_one_based_in_file_name_order(sysu_root):
    folder = sysu_root / "cam2" / "0005"
    write_image(folder / "0010.jpg", "RGB")  # name order: 0001, 0010
    (folder / "notes.txt").write_text("not an image")
    records = [r for r in SYSUMM01(sysu_root).test if (r.pid, r.cam) == (5, 2)]
    assert [(Path(r.path).name, r.frame) for r in records] == [("0001.jpg", 1), ("0010.jpg", 2)]
    cam6 = [r for r in SYSUMM01(sysu_root).train if (r.pid, r.cam) == (2, 6)]
    assert [(Path(r.path).name, r.frame) for r in cam6] == [
        ("0001.jpg", 1),
        ("0002.jpg", 2),
        ("0003.jpg", 3),
    ]


def test_sysu_missing_parts_give_one_error_naming_the_layout(sysu_root):
    (sysu_root / "exp" / "val_id.txt").unlink()
    for image in (sysu_root / "cam4").rglob("*.jpg"):
        image.unlink()
    for folder in sorted((sysu_root / "cam4").rglob("*"), reverse=True):
        folder.rmdir()
    (sysu_root / "cam4").rmdir()
    with pytest.raises(FileNotFoundError, match=r"cam1\.\.cam6") as error:
        SYSUMM01(sysu_root)
    message = str(error.value)
    assert "missing: cam4/, exp/val_id.txt" in message
    assert "found in root: cam1/, cam2/, cam3/, cam5/, cam6/, exp/" in message


def test_sysu_root_that_does_not_exist_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        SYSUMM01(tmp_path / "nowhere")


def test_sysu_non_integer_id_raises_with_line_and_token(sysu_root):
    (sysu_root / "exp" / "test_id.txt").write_text("5,six\n")
    with pytest.raises(ValueError, match=r"test_id\.txt, line 1: .*'six'"):
        SYSUMM01(sysu_root)


def test_sysu_empty_id_file_raises(sysu_root):
    (sysu_root / "exp" / "val_id.txt").write_text("\n")
    with pytest.raises(ValueError, match="empty file"):
        SYSUMM01(sysu_root)


def test_sysu_repeated_id_raises(sysu_root):
    (sysu_root / "exp" / "train_id.txt").write_text("1,2,3,2\n")
    with pytest.raises(ValueError, match="more than once: 2"):
        SYSUMM01(sysu_root)


def test_sysu_overlapping_splits_raise(sysu_root):
    (sysu_root / "exp" / "test_id.txt").write_text("3,5,6\n")
    with pytest.raises(ValueError, match="share ids"):
        SYSUMM01(sysu_root)


def test_sysu_listed_id_absent_from_every_camera_raises(sysu_root):
    (sysu_root / "exp" / "test_id.txt").write_text("5,6,7\n")
    with pytest.raises(ValueError, match=r"without images in any camera.*: 7$"):
        SYSUMM01(sysu_root)


def test_sysu_test_only_copy_reads_with_empty_train_and_val(sysu_root):
    ids = read_id_file(sysu_root / "exp" / "test_id.txt")
    (sysu_root / "exp" / "train_id.txt").write_text("901,902\n")
    (sysu_root / "exp" / "val_id.txt").write_text("903\n")
    dataset = SYSUMM01(sysu_root)
    assert dataset.train == []
    assert dataset.val == []
    assert dataset.test_ids == sorted(ids)


def test_sysu_partly_missing_training_ids_still_raise(sysu_root):
    train = read_id_file(sysu_root / "exp" / "train_id.txt")
    (sysu_root / "exp" / "train_id.txt").write_text(",".join(map(str, [*train, 901])) + "\n")
    with pytest.raises(ValueError, match=r"without images in any camera.*: 901$"):
        SYSUMM01(sysu_root)


def test_read_id_file_accepts_whitespace_and_several_lines(tmp_path):
    path = tmp_path / "ids.txt"
    path.write_text(" 3, 1 ,2\n\n10,0011\n")
    assert read_id_file(path) == [3, 1, 2, 10, 11]


def test_read_id_file_missing_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="id file not found"):
        read_id_file(tmp_path / "train_id.txt")


@pytest.mark.skipif(not REAL_SYSU_EXP.is_dir(), reason="real SYSU-MM01 split files not present")
def test_real_sysu_split_files_give_296_plus_99_train_ids_and_96_test_ids():
    ids = {s: read_id_file(REAL_SYSU_EXP / f"{s}_id.txt") for s in ("train", "val", "test")}
    assert [len(ids[s]) for s in ("train", "val", "test")] == [296, 99, 96]
    assert len(set(ids["train"]) | set(ids["val"])) == 395
    assert not set(ids["train"] + ids["val"]) & set(ids["test"])
    available = read_id_file(REAL_SYSU_EXP / "available_id.txt")
    assert sorted(available) == sorted(ids["train"] + ids["val"] + ids["test"])


# ---------------------------------------------------------------- images


def test_read_image_gives_rgb_for_single_channel_infrared_files(sysu_root, regdb_root):
    for path in (
        sysu_root / "cam3" / "0001" / "0001.jpg",
        regdb_root / "Thermal" / "1" / regdb_name(1, "Thermal", 1),
    ):
        assert Image.open(path).mode == "L"
        image = read_image(path)
        assert image.mode == "RGB"
        assert image.size == (4, 8)
        pixels = np.asarray(image)
        assert pixels.shape == (8, 4, 3)
        assert (pixels[..., 0] == pixels[..., 1]).all()
        assert (pixels[..., 1] == pixels[..., 2]).all()


def test_read_image_missing_file_raises(tmp_path):
    with pytest.raises(ImageReadError, match=r"missing\.jpg: no such file"):
        read_image(tmp_path / "missing.jpg")


def broken_images(folder: Path) -> dict[str, Path]:
    """A good JPEG, and an empty, a truncated (header intact) and a non-image file."""
    good = folder / "good.jpg"
    write_image(good, "RGB")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 32, 3), np.uint8)).save(
        folder / "whole.jpg"
    )
    data = (folder / "whole.jpg").read_bytes()
    files = {
        "good": good,
        "empty": folder / "empty.jpg",
        "truncated": folder / "truncated.jpg",
        "text": folder / "text.jpg",
    }
    files["empty"].write_bytes(b"")
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["text"].write_text("not an image\n")
    return files


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("empty", "empty file (0 bytes)"),
        ("truncated", "image file is truncated"),
        ("text", "not an image format PIL can read"),
    ],
)
def test_read_image_names_a_broken_file_and_what_is_wrong(tmp_path, name, reason):
    path = broken_images(tmp_path)[name]
    with pytest.raises(ImageReadError) as error:
        read_image(path)
    assert str(error.value).startswith(f"cannot read image {path}: {reason}")
    assert "\n" not in str(error.value)


def test_check_images_reads_headers_or_decodes_everything(tmp_path):
    files = broken_images(tmp_path)
    with pytest.raises(
        ImageReadError,
        match=r"^2 of 4 images cannot be read: .*empty\.jpg: "
        r"empty file.*text\.jpg: not an image",
    ) as header_only:
        check_images(list(files.values()))
    assert "truncated" not in str(header_only.value)  # its header is intact
    with pytest.raises(
        ImageReadError,
        match=r"^3 of 4 images cannot be read: .*empty.*"
        r"truncated\.jpg: image file is truncated.*text",
    ):
        check_images(list(files.values()), decode=True, workers=2)
    check_images([files["good"]], decode=True)


def test_a_broken_image_read_in_a_loader_worker_keeps_its_one_line_message(tmp_path):
    files = broken_images(tmp_path)
    records = [
        ImageRecord(str(files[n]), pid=1, cam=1, modality=0, frame=i + 1)
        for i, n in enumerate(("good", "truncated"))
    ]
    loader = torch.utils.data.DataLoader(ReIDDataset(records), num_workers=1, batch_size=1)
    with pytest.raises(ImageReadError) as error:
        list(loader)
    assert str(error.value).startswith(
        f"cannot read image {files['truncated']}: image file is truncated"
    )
    assert "\n" not in str(error.value)


# ---------------------------------------------------------------- RegDB


def test_regdb_reads_trial_lists_from_idx(regdb_root):
    data = RegDB(regdb_root, trial=3)
    assert data.split_source == "idx"
    assert data.train_ids == REGDB_TRAIN[3]
    assert data.test_ids == [pid for pid in REGDB_IDS if pid not in REGDB_TRAIN[3]]
    assert len(data.train) == len(data.train_ids) * 6
    assert len(data.test) == len(data.test_ids) * 6
    for record in data.train + data.test:
        assert (record.cam, record.modality) in {(1, 0), (2, 1)}
        folder = "Visible" if record.cam == 1 else "Thermal"
        assert Path(record.path).parent == regdb_root.absolute() / folder / str(record.pid)
        assert Path(record.path).name.endswith(f"_{record.frame}.bmp")  # names end _1, _2, _3
    keys = [(r.pid, r.cam, r.frame) for r in data.train]
    assert keys == sorted(keys)


def test_regdb_trials_read_different_splits(regdb_root):
    assert RegDB(regdb_root, trial=1).train_ids != RegDB(regdb_root, trial=2).train_ids


@pytest.mark.parametrize("trial", [0, 11, -1, "1", 1.0, True])
def test_regdb_trial_outside_1_to_10_raises(regdb_root, trial):
    with pytest.raises(ValueError, match=r"trial must be an integer in 1\.\.10"):
        RegDB(regdb_root, trial=trial)


def test_regdb_idx_line_pointing_to_missing_file_raises(regdb_root):
    path = regdb_root / "idx" / "test_thermal_1.txt"
    path.write_text(path.read_text() + "Thermal/2/gone.bmp 0\n")
    with pytest.raises(FileNotFoundError, match=r"test_thermal_1\.txt, line \d+: image .*gone"):
        RegDB(regdb_root, trial=1)


@pytest.mark.parametrize(
    "line",
    [
        "Visible/2/female_front_v_00002_1.bmp",
        "Visible/2/x.bmp zero",
        "Visible/x.bmp 0",
        "Thermal/2/female_front_t_00002_1.bmp 0",
        "Visible/two/female_front_v_00002_1.bmp 0",
    ],
)
def test_regdb_malformed_idx_line_raises(regdb_root, line):
    path = regdb_root / "idx" / "train_visible_1.txt"
    path.write_text(line + "\n" + path.read_text())
    with pytest.raises(ValueError, match=r"train_visible_1\.txt, line 1: expected"):
        RegDB(regdb_root, trial=1)


def test_regdb_idx_label_disagreeing_with_folder_raises(regdb_root):
    path = regdb_root / "idx" / "train_visible_1.txt"
    lines = path.read_text().splitlines()
    lines[1] = lines[1].rsplit(" ", 1)[0] + " 3"  # person of label 0 given label 3
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="line 2: label 3 for person 2 disagrees"):
        RegDB(regdb_root, trial=1)


def test_regdb_missing_idx_list_of_a_trial_raises(regdb_root):
    (regdb_root / "idx" / "test_visible_4.txt").unlink()
    RegDB(regdb_root, trial=3)
    with pytest.raises(FileNotFoundError, match=r"test_visible_4\.txt not found"):
        RegDB(regdb_root, trial=4)


def test_regdb_missing_thermal_folder_names_the_layout(tmp_path):
    root = tmp_path / "RegDB"
    write_image(root / "Visible" / "1" / "a.bmp", "RGB")
    with pytest.raises(FileNotFoundError, match=r"expected <root>/Visible.*missing: Thermal/"):
        RegDB(root)


def test_regdb_person_ids_differing_between_modalities_raise(regdb_root):
    write_image(regdb_root / "Visible" / "99" / "a.bmp", "RGB")
    with pytest.raises(ValueError, match="only in Visible/: 99; only in Thermal/: none"):
        RegDB(regdb_root)


def test_regdb_non_integer_person_folder_raises(regdb_root):
    write_image(regdb_root / "Thermal" / "extra" / "a.bmp", "L")
    with pytest.raises(ValueError, match="Thermal/ must hold one folder per integer person id"):
        RegDB(regdb_root)


def test_regdb_person_folder_without_images_raises(regdb_root):
    for image in (regdb_root / "Thermal" / "5").iterdir():
        image.unlink()
    with pytest.raises(ValueError, match=r"person folders without images.*: 5$"):
        RegDB(regdb_root)


def test_regdb_without_idx_makes_seeded_disjoint_half_splits(tmp_path):
    root = make_regdb(tmp_path / "RegDB", idx=False)
    before = tree_snapshot(root)
    trials = [RegDB(root, trial=t) for t in range(1, 11)]
    assert tree_snapshot(root) == before  # nothing written into the dataset folder
    for data in trials:
        assert data.split_source == "seeded"
        assert len(data.train_ids) == len(data.test_ids) == 4
        assert not set(data.train_ids) & set(data.test_ids)
        assert sorted(data.train_ids + data.test_ids) == REGDB_IDS
        assert {r.pid for r in data.train} == set(data.train_ids)
        assert len(data.test) == 4 * 6
    assert len({tuple(d.train_ids) for d in trials}) > 1
    again = RegDB(root, trial=7)
    assert again.train == trials[6].train
    assert again.test == trials[6].test


def test_seeded_split_of_412_ids_is_206_206_and_fixed_per_trial():
    ids = list(range(1, 413))
    train, test = seeded_split(ids, trial=1)
    assert (len(train), len(test)) == (206, 206)
    assert sorted(train + test) == ids
    assert seeded_split(ids[::-1], trial=1) == (train, test)  # depends on the id set only
    assert seeded_split(ids, trial=2) != (train, test)


def test_seeded_split_of_odd_count_gives_the_extra_id_to_test():
    train, test = seeded_split([4, 8, 15, 16, 23], trial=5)
    assert (len(train), len(test)) == (2, 3)


def test_seeded_split_needs_two_ids():
    with pytest.raises(ValueError, match="at least 2 person ids"):
        seeded_split([1], trial=1)


# ---------------------------------------------------------------- detect_dataset, split_records


def test_detect_dataset_tells_the_layout_and_explains_what_it_expected(
    sysu_root, regdb_root, tmp_path
):
    assert detect_dataset(sysu_root) == "sysu"
    assert detect_dataset(regdb_root) == "regdb"
    with pytest.raises(ValueError, match="cannot tell the dataset"):
        detect_dataset(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        detect_dataset(tmp_path / "missing")


def test_split_records_reads_one_split_with_the_datasets_reader(sysu_root, regdb_root):
    assert split_records(sysu_root, "sysu", "test") == SYSUMM01(sysu_root).test
    assert split_records(sysu_root, "sysu", "val") == SYSUMM01(sysu_root, validation=True).val
    assert split_records(regdb_root, "regdb", "train", trial=2) == RegDB(regdb_root, 2).train
    with pytest.raises(ValueError, match="RegDB has no val split"):
        split_records(regdb_root, "regdb", "val")
    with pytest.raises(ValueError, match="unknown dataset 'market'"):
        split_records(sysu_root, "market", "test")
    with pytest.raises(ValueError, match="unknown split"):
        split_records(sysu_root, "sysu", "query")


# ---------------------------------------------------------------- ReIDDataset


def test_reid_dataset_relabels_pids_in_sorted_order(sysu_root):
    records = SYSUMM01(sysu_root).test[::-1]  # pids 6 first, then 5
    dataset = ReIDDataset(records)
    assert dataset.num_classes == 2
    assert dataset.pid_to_label == {5: 0, 6: 1}
    assert dataset.pids == [5, 6]
    assert dataset.labels.dtype == np.int64
    assert dataset.labels.tolist() == [dataset.pid_to_label[r.pid] for r in records]
    assert dataset.modalities.tolist() == [r.modality for r in records]


def test_reid_dataset_item_is_image_label_modality_index(sysu_root):
    records = SYSUMM01(sysu_root).test
    dataset = ReIDDataset(records)
    index = next(i for i, r in enumerate(records) if r.modality == 1)
    image, label, modality, returned = dataset[index]
    assert isinstance(image, torch.Tensor)
    assert image.shape == (3, 8, 4)
    assert 0.0 <= image.min() <= image.max() <= 1.0
    assert (label, modality, returned) == (dataset.labels[index], 1, index)


def test_reid_dataset_applies_the_transform(regdb_root):
    transform = build_transforms(Preprocessing(height=16, width=8), train=False)
    dataset = ReIDDataset(RegDB(regdb_root).train, transform)
    batch = torch.utils.data.default_collate([dataset[0], dataset[1]])
    assert batch[0].shape == (2, 3, 16, 8)
    assert batch[1].dtype == torch.int64


def test_reid_dataset_without_records_raises():
    with pytest.raises(ValueError, match="at least one image record"):
        ReIDDataset([])
