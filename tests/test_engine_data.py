"""The engine's data side: a run's splits, the demo cache, seeded augmentation."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from engine_helpers import TEST_IDS, TRAIN_IDS, VAL_IDS, write_sysu_tree
from PIL import Image
from torch.utils.data import DataLoader

from cycletrans.data import CrossModalitySampler, ReIDDataset, build_transforms, split_records
from cycletrans.engine import data as engine_data
from cycletrans.engine.config import resolve_config
from cycletrans.engine.data import (
    SeededBatches,
    SeededDataset,
    demo_data_root,
    item_seeds,
    load_splits,
)
from cycletrans.preprocessing import Preprocessing


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return write_sysu_tree(tmp_path_factory.mktemp("sysu"))


def _train_dataset(tree: Path) -> ReIDDataset:
    transform = build_transforms(Preprocessing(32, 16), train=True, random_erasing=0.5)
    return ReIDDataset(split_records(tree, "sysu", "train"), transform)


def test_item_seeds_depend_on_every_key_and_nothing_else():
    seeds = item_seeds(0, 1, 2, 0, 4)
    assert seeds == item_seeds(0, 1, 2, 0, 4)
    assert len(set(seeds)) == 4
    for other in (
        item_seeds(1, 1, 2, 0, 4),
        item_seeds(0, 2, 2, 0, 4),
        item_seeds(0, 1, 3, 0, 4),
        item_seeds(0, 1, 2, 1, 4),
    ):
        assert other != seeds
    assert all(0 <= s < 2**63 for s in seeds)


def test_seeded_item_is_the_same_whatever_the_global_generators_and_leaves_them_alone(tree):
    dataset = SeededDataset(_train_dataset(tree))
    torch.manual_seed(1)
    random.seed(1)
    first = dataset[(0, 1234)][0]
    after = (torch.rand(1), random.random())
    torch.manual_seed(99)
    second = dataset[(0, 1234)][0]
    torch.manual_seed(1)
    random.seed(1)
    dataset[(0, 1234)]
    assert torch.equal(first, second)
    assert (torch.rand(1), random.random()) == after  # the item did not consume them
    different = [dataset[(0, s)][0] for s in range(8)]
    assert any(not torch.equal(first, d) for d in different)


def test_seeded_batches_resumed_mid_epoch_continue_with_the_same_batches_and_seeds(tree):
    dataset = _train_dataset(tree)
    sampler = CrossModalitySampler(
        dataset.labels, dataset.modalities, num_ids=2, num_per_modality=2, seed=3, num_batches=4
    )
    full = list(SeededBatches(sampler, seed=3, epoch=2, position=0))
    resumed = list(SeededBatches(sampler, seed=3, epoch=2, position=2))
    assert len(full) == 4
    assert resumed == full[2:]
    assert len(SeededBatches(sampler, seed=3, epoch=2, position=2)) == 2
    assert list(SeededBatches(sampler, seed=3, epoch=3, position=0)) != full


def test_augmentation_does_not_depend_on_the_number_of_workers(tree):
    dataset = _train_dataset(tree)
    sampler = CrossModalitySampler(
        dataset.labels, dataset.modalities, num_ids=2, num_per_modality=2, seed=0, num_batches=2
    )

    def images(workers: int) -> list[torch.Tensor]:
        loader = DataLoader(
            SeededDataset(dataset),
            num_workers=workers,
            batch_sampler=SeededBatches(sampler, 0, 0, 0),
        )
        return [batch[0] for batch in loader]

    assert all(torch.equal(a, b) for a, b in zip(images(0), images(2), strict=True))


def test_sysu_splits_with_and_without_validation(tree):
    plain = load_splits(resolve_config("demo", {"data_root": str(tree)}), tree)
    assert {r.pid for r in plain.train} == set(TRAIN_IDS + VAL_IDS)
    assert plain.val == []
    held = load_splits(resolve_config("demo", {"data_root": str(tree), "validation": True}), tree)
    assert {r.pid for r in held.train} == set(TRAIN_IDS)
    assert {r.pid for r in held.val} == set(VAL_IDS)
    assert {r.pid for r in held.test} == set(TEST_IDS)


def _write_regdb_tree(root: Path, ids: range) -> Path:
    for pid in ids:
        for folder in ("Visible", "Thermal"):
            (root / folder / str(pid)).mkdir(parents=True)
            for n in range(2):
                Image.new("RGB", (8, 16), (pid * 10, n, 0)).save(
                    root / folder / str(pid) / f"{n}.bmp"
                )
    return root


def test_regdb_validation_holds_out_a_seeded_fraction_of_the_training_ids(tmp_path):
    root = _write_regdb_tree(tmp_path, range(1, 41))
    config = resolve_config(
        "regdb", {"data_root": str(root), "validation": True, "val_fraction": 0.25}
    )
    splits = load_splits(config, root)
    train_ids, val_ids = {r.pid for r in splits.train}, {r.pid for r in splits.val}
    assert len(val_ids) == 5
    assert not train_ids & val_ids
    assert len(train_ids) == 15
    assert {r.pid for r in load_splits(config, root).val} == val_ids  # seeded


def test_demo_data_is_generated_once_into_a_temporary_folder_then_renamed(tmp_path, monkeypatch):
    monkeypatch.setenv("CYCLETRANS_CACHE", str(tmp_path))
    calls = []

    def fake_generate(out_dir, **kwargs):
        calls.append(Path(out_dir))
        assert not (tmp_path / "synth" / "demo-seed0").exists()  # not visible while writing
        Path(out_dir, "exp").mkdir(parents=True)

    monkeypatch.setattr("cycletrans.data.synth.generate", fake_generate)
    leftover = tmp_path / "synth" / ".demo-seed0.tmp1"  # a killed earlier generation
    leftover.mkdir(parents=True)
    root = demo_data_root(progress=False)
    assert root == tmp_path / "synth" / "demo-seed0"
    assert (root / "exp").is_dir()
    assert calls[0].name.startswith(".demo-seed0.tmp")
    assert not calls[0].exists()
    assert demo_data_root(progress=False) == root
    assert len(calls) == 1


def test_a_failed_demo_generation_leaves_no_finished_looking_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("CYCLETRANS_CACHE", str(tmp_path))

    def broken_generate(out_dir, **kwargs):
        Path(out_dir, "cam1").mkdir(parents=True)
        raise KeyboardInterrupt

    monkeypatch.setattr("cycletrans.data.synth.generate", broken_generate)
    with pytest.raises(KeyboardInterrupt):
        demo_data_root(progress=False)
    assert not (tmp_path / "synth" / "demo-seed0").exists()
    assert engine_data.cache_dir() == tmp_path


def test_cache_dir_defaults_to_the_home_cache(monkeypatch):
    monkeypatch.delenv("CYCLETRANS_CACHE", raising=False)
    assert engine_data.cache_dir() == Path.home() / ".cache" / "cycletrans"
