"""The resume state: atomic writes, weights_only reads, generator states restored, one
versioned Progress."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

from cycletrans.engine.state import (
    STATE_VERSION,
    Progress,
    load_resume_state,
    rng_state,
    save_resume_state,
    set_rng_state,
)


def _draws() -> tuple:
    return random.random(), np.random.rand(), torch.rand(2).tolist()  # noqa: NPY002


def test_generator_states_round_trip_through_the_file(tmp_path):
    path = tmp_path / "resume.pt"
    save_resume_state(path, {"epoch": 1, "rng": rng_state()})
    expected = _draws()
    set_rng_state(load_resume_state(path)["rng"])
    assert _draws() == expected


def test_model_and_optimizer_state_survive_a_weights_only_load(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), weight_decay=5e-4)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    path = tmp_path / "resume.pt"
    save_resume_state(
        path,
        {
            "epoch": 2,
            "best_score": None,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "sums": {"loss": 1.5},
        },
    )
    state = load_resume_state(path)
    assert torch.equal(state["model"]["weight"], model.weight)
    fresh = torch.optim.Adam(torch.nn.Linear(3, 2).parameters())
    fresh.load_state_dict(state["optimizer"])
    assert state["epoch"] == 2
    assert state["sums"] == {"loss": 1.5}


def test_saving_replaces_the_old_state_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "run" / "resume.pt"
    save_resume_state(path, {"epoch": 1})
    save_resume_state(path, {"epoch": 2})
    assert load_resume_state(path)["epoch"] == 2
    assert os.listdir(path.parent) == ["resume.pt"]


def test_a_failed_save_keeps_the_previous_state(tmp_path):
    path = tmp_path / "resume.pt"
    save_resume_state(path, {"epoch": 1})
    with pytest.raises(Exception, match=r"pickle|lambda"):
        save_resume_state(path, {"epoch": 2, "bad": lambda: None})
    assert load_resume_state(path)["epoch"] == 1
    assert os.listdir(tmp_path) == ["resume.pt"]


class _Payload:
    """Anything that is not tensors and plain containers."""


def test_loading_refuses_arbitrary_pickled_objects_and_missing_files(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"epoch": 1, "payload": _Payload()}, path)
    with pytest.raises(ValueError, match="not a readable resume state"):
        load_resume_state(path)
    torch.save([1, 2], path)
    with pytest.raises(ValueError, match="expected a dict with a 'version'"):
        load_resume_state(path)
    with pytest.raises(FileNotFoundError, match="no resume state"):
        load_resume_state(tmp_path / "missing.pt")


def test_a_state_of_another_version_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "resume.pt"
    torch.save({"version": STATE_VERSION - 1, "epoch": 3}, path)
    with pytest.raises(
        ValueError,
        match=rf"resume\.pt is a resume state of version "
        rf"{STATE_VERSION - 1}; .* reads version {STATE_VERSION} only",
    ):
        load_resume_state(path)


def test_progress_is_saved_and_restored_whole(tmp_path):
    progress = Progress()
    progress.add_step({"loss": 2.0, "id": 1.5})
    progress.add_step({"loss": 1.0, "id": 0.5})
    progress.best_score, progress.best_epoch, progress.epoch_seconds = 0.25, 1, 3.5
    path = tmp_path / "resume.pt"
    save_resume_state(path, {"progress": progress.to_dict()})
    assert Progress.from_dict(load_resume_state(path)["progress"]) == progress
    assert (progress.position, progress.global_step, progress.sums) == (
        2,
        2,
        {"loss": 3.0, "id": 2.0},
    )
    progress.next_epoch()
    assert progress == Progress(epoch=1, global_step=2, best_score=0.25, best_epoch=1)
