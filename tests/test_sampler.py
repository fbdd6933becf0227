"""CrossModalitySampler: P identities x (K visible + K infrared) batches."""

from __future__ import annotations

import math
from itertools import islice

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import cycletrans.data.sampler as sampler_module
from cycletrans.data import CrossModalitySampler


def make_labels(counts: dict[int, tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """labels/modalities arrays from {label: (#visible, #infrared)}, images interleaved."""
    labels, modalities = [], []
    for label, (n_vis, n_ir) in counts.items():
        labels += [label] * (n_vis + n_ir)
        modalities += [0] * n_vis + [1] * n_ir
    order = np.random.default_rng(123).permutation(len(labels))  # scatter over the dataset
    return np.array(labels)[order], np.array(modalities)[order]


COUNTS = {label: (6 + label % 3, 5 + label % 2) for label in range(10)}  # 10 ids, >= 5 each


def batches(sampler, count=None):
    return [list(b) for b in islice(iter(sampler), count)]


def test_batch_is_p_ids_with_k_visible_then_k_infrared_each():
    labels, modalities = make_labels(COUNTS)
    sampler = CrossModalitySampler(labels, modalities, num_ids=3, num_per_modality=4)
    for batch in batches(sampler):
        assert len(batch) == sampler.batch_size == 2 * 3 * 4
        visible, infrared = batch[:12], batch[12:]
        assert (modalities[visible] == 0).all()
        assert (modalities[infrared] == 1).all()
        ids = labels[visible].reshape(3, 4)
        assert (ids == ids[:, :1]).all()  # K consecutive images per identity
        assert len(set(ids[:, 0])) == 3  # P different identities
        assert (labels[infrared].reshape(3, 4) == ids).all()  # same identity order
        assert len(set(visible)) == 12  # no repeats when an identity has >= K images
        assert len(set(infrared)) == 12


def test_paper_default_is_8_ids_of_4_plus_4_images():
    labels, modalities = make_labels({label: (5, 5) for label in range(20)})
    sampler = CrossModalitySampler(labels, modalities)
    assert (sampler.num_ids, sampler.num_per_modality, sampler.batch_size) == (8, 4, 64)


def test_identity_with_fewer_than_k_images_is_sampled_with_replacement():
    counts = dict(COUNTS)
    counts[0] = (2, 1)  # 2 visible, 1 infrared image
    labels, modalities = make_labels(counts)
    sampler = CrossModalitySampler(labels, modalities, num_ids=2, num_per_modality=4, seed=3)
    seen = 0
    for batch in batches(sampler):
        for start, modality_count in ((0, 2), (8, 1)):
            block = batch[start : start + 8]
            for i in range(0, 8, 4):
                group = block[i : i + 4]
                if labels[group[0]] == 0:
                    seen += 1
                    assert sorted(set(group)) == sorted(
                        np.flatnonzero((labels == 0) & (modalities == start // 8)).tolist()
                    )
                    assert len(set(group)) == modality_count
    assert seen > 0


def test_images_of_an_identity_are_cycled_before_repeating():
    labels, modalities = make_labels({label: (8, 8) for label in range(4)})
    sampler = CrossModalitySampler(labels, modalities, num_ids=4, num_per_modality=4, seed=1)
    first, second = batches(sampler, 2)
    for label in range(4):
        for modality, half in ((0, slice(0, 16)), (1, slice(16, 32))):
            drawn = [i for b in (first, second) for i in b[half] if labels[i] == label]
            expected = np.flatnonzero((labels == label) & (modalities == modality))
            assert sorted(drawn) == expected.tolist()  # 2 x 4 draws = all 8 images once


def test_identities_lacking_a_modality_are_left_out_with_a_warning():
    counts = dict(COUNTS)
    counts[10] = (5, 0)
    counts[11] = (0, 4)
    labels, modalities = make_labels(counts)
    with pytest.warns(UserWarning, match=r"2 identities have no visible or no infrared.*10, 11"):
        sampler = CrossModalitySampler(labels, modalities, num_ids=4, num_per_modality=2)
    assert sampler.identities.tolist() == list(range(10))
    assert not {labels[i] for b in batches(sampler) for i in b} & {10, 11}


def test_too_few_usable_identities_raise():
    labels, modalities = make_labels({0: (4, 4), 1: (4, 4), 2: (4, 0)})
    with (
        pytest.warns(UserWarning, match="1 identities"),
        pytest.raises(ValueError, match=r"at least .* = 3 identities"),
    ):
        CrossModalitySampler(labels, modalities, num_ids=3)


def test_default_epoch_covers_the_larger_modality_about_once():
    labels, modalities = make_labels(COUNTS)
    n_vis, n_ir = int((modalities == 0).sum()), int((modalities == 1).sum())
    sampler = CrossModalitySampler(labels, modalities, num_ids=3, num_per_modality=4)
    assert len(sampler) == math.ceil(max(n_vis, n_ir) / 12) == len(batches(sampler))
    two_ranks = CrossModalitySampler(
        labels, modalities, num_ids=3, num_per_modality=4, rank=0, world_size=2
    )
    assert len(two_ranks) == math.ceil(max(n_vis, n_ir) / 24)
    fixed = CrossModalitySampler(labels, modalities, num_ids=3, num_batches=5)
    assert len(fixed) == len(batches(fixed)) == 5


def test_a_paired_epoch_passes_over_the_images_that_pair_across_modalities():
    labels, modalities = make_labels(COUNTS)
    pairs = sum(
        min(int(((labels == pid) & (modalities == m)).sum()) for m in (0, 1))
        for pid in np.unique(labels)
    )
    sampler = CrossModalitySampler(
        labels, modalities, num_ids=3, num_per_modality=4, epoch_pass="paired"
    )
    assert len(sampler) == math.ceil(pairs / 12) == len(batches(sampler))
    assert len(sampler) < len(CrossModalitySampler(labels, modalities, num_ids=3))
    with pytest.raises(ValueError, match="epoch_pass must be one of"):
        CrossModalitySampler(labels, modalities, num_ids=3, epoch_pass="all")


def test_same_seed_same_batches_other_seed_other_batches():
    labels, modalities = make_labels(COUNTS)
    make = lambda seed: CrossModalitySampler(labels, modalities, num_ids=3, seed=seed)  # noqa: E731
    assert batches(make(7)) == batches(make(7))
    assert batches(make(7)) != batches(make(8))


def test_set_epoch_changes_the_order_and_is_reproducible():
    labels, modalities = make_labels(COUNTS)
    sampler = CrossModalitySampler(labels, modalities, num_ids=3)
    epoch0 = batches(sampler)
    assert batches(sampler) == epoch0  # no set_epoch: the same epoch again
    sampler.set_epoch(1)
    epoch1 = batches(sampler)
    assert epoch1 != epoch0
    sampler.set_epoch(0)
    assert batches(sampler) == epoch0


def test_each_step_has_distinct_ids_and_steps_walk_through_a_permutation():
    labels, modalities = make_labels(COUNTS)  # 10 ids, P = 3 does not divide 10
    sampler = CrossModalitySampler(labels, modalities, num_ids=3, num_batches=30)
    steps = [labels[b[: 3 * 4 : 4]].tolist() for b in batches(sampler)]
    for ids in steps:
        assert len(set(ids)) == 3
    counts = np.bincount(np.concatenate(steps), minlength=10)
    assert counts.max() - counts.min() <= 1  # 90 draws over 10 ids: 9 each, give or take one


@pytest.mark.parametrize("world_size", [2, 3])
def test_distributed_ranks_get_disjoint_ids_and_equal_lengths(world_size):
    labels, modalities = make_labels({label: (5, 5) for label in range(12)})
    ranks = [
        CrossModalitySampler(labels, modalities, num_ids=2, seed=4, rank=r, world_size=world_size)
        for r in range(world_size)
    ]
    assert len({len(s) for s in ranks}) == 1
    per_rank = [batches(s) for s in ranks]
    assert len({len(b) for b in per_rank}) == 1
    for step in zip(*per_rank, strict=True):
        ids = [set(labels[batch].tolist()) for batch in step]
        assert sum(len(i) for i in ids) == len(set().union(*ids)) == 2 * world_size
    first_pass = 12 // (2 * world_size)  # steps that together cover the permutation once
    covered = [labels[b].tolist() for steps in per_rank for b in steps[:first_pass]]
    assert sorted({i for ids in covered for i in ids}) == list(range(12))


def test_rank_and_world_size_come_from_torch_distributed_when_initialised(monkeypatch):
    labels, modalities = make_labels(COUNTS)
    monkeypatch.setattr(sampler_module.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(sampler_module.dist, "get_rank", lambda: 1)
    monkeypatch.setattr(sampler_module.dist, "get_world_size", lambda: 2)
    sampler = CrossModalitySampler(labels, modalities, num_ids=2)
    assert (sampler.rank, sampler.world_size) == (1, 2)
    explicit = CrossModalitySampler(labels, modalities, num_ids=2, rank=1, world_size=2)
    assert batches(sampler) == batches(explicit)


def test_rank_outside_world_size_raises():
    labels, modalities = make_labels(COUNTS)
    with pytest.raises(ValueError, match="0 <= rank < world_size"):
        CrossModalitySampler(labels, modalities, num_ids=2, rank=2, world_size=2)


def test_resume_mid_epoch_gives_the_batches_of_an_uninterrupted_run():
    labels, modalities = make_labels(COUNTS)
    make = lambda: CrossModalitySampler(labels, modalities, num_ids=3, seed=5)  # noqa: E731
    reference = make()
    reference.set_epoch(2)
    uninterrupted = batches(reference)

    interrupted = make()
    interrupted.set_epoch(2)
    done = batches(interrupted, 3)
    state = interrupted.state_dict()
    assert state == {"epoch": 2, "position": 3}

    resumed = make()
    resumed.load_state_dict(state)
    resumed.set_epoch(2)  # a trainer's loop calls this again: it must not restart the epoch
    assert done + batches(resumed) == uninterrupted
    assert resumed.state_dict() == {"epoch": 2, "position": 0}
    resumed.set_epoch(3)
    reference.set_epoch(3)
    assert batches(resumed) == batches(reference)


def test_load_state_dict_rejects_bad_states():
    labels, modalities = make_labels(COUNTS)
    sampler = CrossModalitySampler(labels, modalities, num_ids=3, num_batches=4)
    with pytest.raises(ValueError, match="expected keys"):
        sampler.load_state_dict({"epoch": 1})
    with pytest.raises(ValueError, match="0 <= position <= 4"):
        sampler.load_state_dict({"epoch": 1, "position": 5})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"modalities": [0, 1, 2, 1]}, "0 \\(visible\\) or 1"),
        ({"modalities": [0, 1]}, "same length"),
        ({"num_ids": 0}, "num_ids must be at least 1"),
        ({"num_per_modality": 0}, "num_per_modality must be at least 1"),
        ({"seed": -1}, "seed must be non-negative"),
        ({"num_batches": 0}, "num_batches must be at least 1"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    arguments = {"labels": [0, 0, 1, 1], "modalities": [0, 1, 0, 1], "num_ids": 1} | kwargs
    with pytest.raises(ValueError, match=message):
        CrossModalitySampler(**arguments)


def test_works_as_a_dataloader_batch_sampler():
    labels, modalities = make_labels(COUNTS)
    dataset = [(torch.tensor(i), int(labels[i]), int(modalities[i])) for i in range(len(labels))]
    sampler = CrossModalitySampler(labels, modalities, num_ids=2, num_per_modality=2)
    loader = DataLoader(dataset, batch_sampler=sampler)
    assert len(loader) == len(sampler)
    index, label, modality = next(iter(loader))
    assert index.shape == (8,)
    assert modality.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert label.tolist()[:4] == label.tolist()[4:]
