"""The training loop on a tiny SYSU-layout tree: files, best/last, NaN stop, resume, refusals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from engine_helpers import TINY, write_sysu_tree
from PIL import Image
from safetensors.torch import load_file

import cycletrans
from cycletrans.data import ImageReadError
from cycletrans.engine import (
    NonFiniteLossError,
    StoppedBySignalError,
    TrainingError,
    resolve_config,
    train,
)
from cycletrans.models.reid_model import ReIDModel


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return write_sysu_tree(tmp_path_factory.mktemp("sysu"))


def _config(tree: Path, output: Path, **overrides):
    return resolve_config(
        "demo", {**TINY, "data_root": str(tree), "output": str(output), **overrides}
    )


@pytest.fixture(scope="module")
def validated(tree, tmp_path_factory):
    """A finished 2-epoch run with validation after every epoch."""
    config = _config(
        tree, tmp_path_factory.mktemp("validated") / "run", validation=True, eval_every=1
    )
    return config, train(config)


@pytest.fixture(scope="module")
def unvalidated(tree, tmp_path_factory):
    """A finished 1-epoch baseline run without validation, and what it printed."""
    config = _config(
        tree, tmp_path_factory.mktemp("unvalidated") / "run", epochs=1, variant="baseline"
    )
    return config, train(config)


def test_a_validated_run_writes_config_metrics_last_best_and_result(tree, validated):
    config, result = validated
    out = Path(config.output)
    assert result.finished
    assert (result.epochs_done, result.global_step) == (2, 4)
    saved = json.loads((out / "config.json").read_text())
    assert saved["epochs"] == 2
    assert saved["resolved_data_root"] == str(tree.absolute())
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert [r["lr"] for r in rows] == pytest.approx([3.5e-4, 3.5e-5])
    assert {"loss", "id", "me", "sep", "mmd", "rec", "aln"} == set(rows[0]["losses"])
    assert all(r["steps"] == 2 and r["time_s"] > 0 for r in rows)
    for row in rows:
        assert all(0.0 <= row["val"][k] <= 1.0 for k in ("r1", "r10", "mAP", "mINP"))
    best_epoch = max(rows, key=lambda r: r["val"]["mAP"])["epoch"]
    assert result.best_epoch == best_epoch
    assert result.best_score == rows[best_epoch - 1]["val"]["mAP"]
    assert result.best == out / "best.safetensors"
    model = cycletrans.load_model(result.last)
    assert model.embed(torch.zeros(2, 3, 32, 16), "infrared").shape == (2, 3 * 512)
    assert json.loads((out / "result.json").read_text())["best_epoch"] == best_epoch


def test_without_validation_best_is_not_written_and_last_is_the_result(unvalidated):
    config, result = unvalidated
    assert result.best is None
    assert result.finished
    assert not (Path(config.output) / "best.safetensors").exists()
    assert (Path(config.output) / "last.safetensors").is_file()


def test_the_log_says_when_best_is_not_written(tree, tmp_path, capsys):
    train(_config(tree, tmp_path / "run", epochs=1, variant="baseline", max_steps=1))
    assert "best is not written; last.safetensors is the result" in capsys.readouterr().out


def test_a_nan_loss_stops_the_run_naming_epoch_step_and_terms(tree, tmp_path, monkeypatch):
    original = ReIDModel.loss

    def poisoned(self, out, labels, modalities):
        terms = original(self, out, labels, modalities)
        terms["mmd"] = terms["mmd"] * float("nan")
        terms["loss"] = terms["loss"] + terms["mmd"]
        return terms

    monkeypatch.setattr(ReIDModel, "loss", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"epoch 1, step 1 .*mmd=nan.*lower --lr"):
        train(_config(tree, tmp_path / "run"))


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def test_a_run_stopped_by_max_steps_resumes_to_the_same_weights(tree, tmp_path, validated):
    whole_config, whole = validated
    part = _config(tree, tmp_path / "part", validation=True, eval_every=1, max_steps=3)
    stopped = train(part)
    assert not stopped.finished
    assert (stopped.global_step, stopped.epochs_done) == (3, 1)
    resumed = train(part.replace(max_steps=None), resume=True)
    assert resumed.finished
    a, b = _weights(whole.last), _weights(resumed.last)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _metrics(whole_config.output) == _metrics(part.output)
    assert resumed.best_epoch == whole.best_epoch


def _metrics(output: str) -> list[dict]:
    """metrics.jsonl rows without their timing."""
    lines = (Path(output) / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "time_s"} for line in lines]


def test_refuses_to_overwrite_a_run_or_resume_it_with_another_config(tree, tmp_path, unvalidated):
    config, _ = unvalidated
    with pytest.raises(TrainingError, match="already holds a training run"):
        train(config)
    with pytest.raises(ValueError, match=r"lr: saved 0\.00035, now 0\.001"):
        train(config.replace(lr=1e-3), resume=True)
    with pytest.raises(FileNotFoundError, match="no resume state"):
        train(_config(tree, tmp_path / "other"), resume=True)


def test_a_run_folder_holding_results_is_replaced_only_with_overwrite(tmp_path, unvalidated):
    config, _ = unvalidated
    run = tmp_path / "run"
    shutil.copytree(config.output, run)
    (run / "resume.pt").unlink()  # a finished run whose resume state is gone
    (run / "best.safetensors").write_bytes(b"stale")
    metrics = (run / "metrics.jsonl").read_text()
    config = config.replace(output=str(run))
    with pytest.raises(
        TrainingError,
        match=r"already holds a training run \(metrics\.jsonl, "
        r"last\.safetensors, last\.json, best\.safetensors, result\.json\); "
        r"pass --resume to continue it, --overwrite to replace it",
    ):
        train(config)
    assert (run / "metrics.jsonl").read_text() == metrics
    with pytest.raises(ValueError, match="pass one of them"):
        train(config, resume=True, overwrite=True)
    result = train(config, overwrite=True)
    assert result.finished
    assert not (run / "best.safetensors").exists()  # nothing of the old run is left
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1


def _signal_at_step(monkeypatch, step: int, *signums: int) -> None:
    """Send ``signums`` to this process, one after the other, during optimiser step ``step``
    (1-based); each is sent once the previous one has been handled (signals sent together
    merge into one)."""
    from cycletrans.engine.trainer import Trainer

    original, done = Trainer._step, []

    def step_and_signal(self, *args):
        done.append(1)
        if len(done) == step:
            for signum in signums:
                handler = signal.getsignal(signum)
                os.kill(os.getpid(), signum)
                deadline = time.monotonic() + 300
                while signal.getsignal(signum) is handler and time.monotonic() < deadline:
                    time.sleep(0.01)
        return original(self, *args)

    monkeypatch.setattr(Trainer, "_step", step_and_signal)


def test_sigterm_at_an_epochs_last_step_saves_the_state_and_resume_is_exact(
    tree, tmp_path, monkeypatch, validated
):
    whole_config, whole = validated
    config = _config(tree, tmp_path / "run", validation=True, eval_every=1)
    before = signal.getsignal(signal.SIGTERM)
    _signal_at_step(monkeypatch, 2, signal.SIGTERM)  # the last step of epoch 1
    with pytest.raises(
        StoppedBySignalError,
        match=r"stopped by SIGTERM at epoch 1, step 2 "
        r"\(global step 2\); the resume state is saved",
    ) as stopped:
        train(config)
    assert stopped.value.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == before
    monkeypatch.undo()
    resumed = train(config, resume=True)
    a, b = _weights(whole.last), _weights(resumed.last)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _metrics(whole_config.output) == _metrics(config.output)


def test_a_second_ctrl_c_stops_at_once(tree, tmp_path, monkeypatch):
    before = signal.getsignal(signal.SIGINT)
    _signal_at_step(monkeypatch, 1, signal.SIGINT, signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        train(_config(tree, tmp_path / "run", variant="baseline"))
    assert signal.getsignal(signal.SIGINT) == before
    assert not (tmp_path / "run" / "resume.pt").exists()


def test_resume_drops_a_torn_metrics_line_and_removes_temp_files_of_killed_writes(
    tree, tmp_path, capsys
):
    config = _config(tree, tmp_path / "run", variant="baseline", max_steps=3)
    train(config)  # epoch 1 done, stopped in epoch 2
    run = Path(config.output)
    metrics = run / "metrics.jsonl"
    good = metrics.read_text()
    metrics.write_text('{"epoch": 7, "lr\n' + good)
    with pytest.raises(ValueError, match=r"metrics\.jsonl line 1 is not valid JSON"):
        train(config.replace(max_steps=None), resume=True)
    metrics.write_text(good + '{"epoch": 2, "lr": 3.5e-05, "ti')  # killed mid-append
    leftovers = [".resume.pt.tmp4242", ".last.safetensors.tmp4242", ".tmpAb12Cd"]
    for name in leftovers:
        (run / name).write_bytes(b"partial")
    capsys.readouterr()
    result = train(config.replace(max_steps=None), resume=True)
    log = capsys.readouterr().out
    assert result.finished
    assert "dropped a torn last line of" in log
    assert "removed 3 temporary file(s) of killed writes" in log
    assert [row["epoch"] for row in _metrics(run)] == [1, 2]
    assert not [name for name in leftovers if (run / name).exists()]


def test_a_state_of_another_version_is_refused_on_resume(tree, tmp_path):
    config = _config(tree, tmp_path / "run", variant="baseline", max_steps=1)
    train(config)
    path = Path(config.output) / "resume.pt"
    state = torch.load(path, weights_only=True)
    torch.save({**state, "version": 1}, path)
    with pytest.raises(ValueError, match=r"resume\.pt is a resume state of version 1"):
        train(config, resume=True)


def test_an_unreadable_image_stops_training_before_it_starts(tree, tmp_path):
    broken = tmp_path / "sysu"
    shutil.copytree(tree, broken)
    empty = broken / "cam1" / "0001" / "0001.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ImageReadError, match=rf"1 of \d+ images cannot be read: {empty}: empty"):
        train(_config(broken, tmp_path / "run"))
    assert not (tmp_path / "run").exists()
    noise = np.random.default_rng(0).integers(0, 256, (128, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(empty)
    empty.write_bytes(empty.read_bytes()[:-1000])  # header intact, image data cut
    with pytest.raises(ImageReadError, match=rf"{empty}: image file is truncated"):
        train(_config(broken, tmp_path / "run"), check_images=True)
    assert not (tmp_path / "run").exists()


def test_sync_bn_needs_cuda(tree, tmp_path):
    with pytest.raises(ValueError, match="--sync-bn needs CUDA"):
        train(_config(tree, tmp_path / "run", sync_bn=True))


def test_unavailable_imagenet_weights_surface_as_a_training_error(tree, tmp_path, monkeypatch):
    def offline(arch):
        raise RuntimeError(f"could not obtain the ImageNet weights of {arch}")

    monkeypatch.setattr("cycletrans.models.resnet.imagenet_state_dict", offline)
    with pytest.raises(TrainingError, match=r"ImageNet weights of resnet18(.|\n)*--no-pretrained"):
        train(_config(tree, tmp_path / "run", pretrained=True))


@pytest.mark.parametrize("variant", ["baseline", "kcm", "full", "transformer"])
def test_weight_decay_covers_every_parameter_once_and_spares_the_cycletrans_head(variant):
    from cycletrans.engine.trainer import parameter_groups

    model = cycletrans.build_model(
        variant, "resnet18_slim", num_classes=3, num_anchors=3, num_prototypes=8
    )
    groups = parameter_groups(model, 5e-4)
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    decayed = {id(p) for g in groups if g["weight_decay"] == 5e-4 for p in g["params"]}
    assert decayed == {
        id(p)
        for name, p in model.named_parameters()
        if name.split(".")[0] in ("backbone", "neck", "classifier")
    }
    assert len(groups) == (1 if variant == "baseline" else 2)
    assert all(g["weight_decay"] == 0.0 for g in groups[1:])


def test_a_step_with_zero_gradient_leaves_the_head_unchanged_and_shrinks_the_classifier():
    from cycletrans.engine.trainer import parameter_groups

    model = cycletrans.build_model(
        "full", "resnet18_slim", num_classes=3, num_anchors=3, num_prototypes=8
    )
    optimizer = torch.optim.Adam(parameter_groups(model, 5e-4), lr=1e-3)
    anchors, classifier = model.anchors.detach().clone(), model.classifier.weight.detach().clone()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    assert torch.equal(model.anchors, anchors)
    assert model.classifier.weight.abs().sum() < classifier.abs().sum()
