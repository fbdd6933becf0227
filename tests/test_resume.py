"""Kill a training run with SIGKILL right after a mid-epoch resume state, or stop it with Ctrl-C
(SIGINT to its whole process group, DataLoader workers included), resume it, and get exactly
the weights, best checkpoint and metrics of an uninterrupted run (CPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from engine_helpers import TINY, write_sysu_tree
from safetensors.torch import load_file

from cycletrans.engine import resolve_config
from cycletrans.engine.state import load_resume_state

REPO = Path(__file__).resolve().parents[1]

# Runs train(config) in a fresh process (a session of its own); with KILL_AFTER = n it SIGKILLs
# itself right after the n-th resume state is written (a real kill at a known point, not a
# clean exit); with CTRL_C_AT = n it sends SIGINT to its process group during step n, as a
# Ctrl-C in a terminal does, and exits as the command line does.
DRIVER = """
import json, os, signal, sys
import torch
torch.set_num_threads(1)
from cycletrans.engine import trainer
from cycletrans.engine.config import TrainConfig

config = TrainConfig.from_dict(json.loads(open(sys.argv[1]).read()))
kill_after, ctrl_c_at = int(sys.argv[3]), int(sys.argv[4])
written = steps = 0
original_save, original_step = trainer.save_resume_state, trainer.Trainer._step

def save_then_maybe_die(path, state):
    global written
    original_save(path, state)
    written += 1
    if written == kill_after:
        os.kill(os.getpid(), signal.SIGKILL)

def step_and_maybe_ctrl_c(self, *args):
    global steps
    steps += 1
    if steps == ctrl_c_at:
        os.killpg(os.getpgid(0), signal.SIGINT)
    return original_step(self, *args)

trainer.save_resume_state = save_then_maybe_die
trainer.Trainer._step = step_and_maybe_ctrl_c
try:
    trainer.train(config, resume=sys.argv[2] == "resume")
except trainer.StoppedBySignalError as error:
    print(error)
    sys.exit(128 + error.signum)
"""


def _run(
    tmp_path: Path, config, mode: str, kill_after: int = 0, ctrl_c_at: int = 0
) -> subprocess.CompletedProcess:
    config_path = tmp_path / f"{Path(config.output).name}-{mode}.json"
    config_path.write_text(json.dumps(config.to_dict()))
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(driver), str(config_path), mode, str(kill_after), str(ctrl_c_at)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        start_new_session=True,
    )


def _metrics(output: Path) -> list[dict]:
    lines = (output / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "time_s"} for line in lines]


def _progress(output: Path) -> tuple[int, int, int]:
    progress = load_resume_state(output / "resume.pt")["progress"]
    return progress["epoch"], progress["position"], progress["global_step"]


def _assert_same_results(reference: Path, output: Path) -> None:
    for name in ("last.safetensors", "best.safetensors"):
        a = load_file(str(reference / name))
        b = load_file(str(output / name))
        assert a.keys() == b.keys()
        mismatched = [k for k in a if not torch.equal(a[k], b[k])]
        assert mismatched == [], f"{name}: {mismatched[:5]}"
    assert _metrics(reference) == _metrics(output)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> dict:
    """Config values of every run here: a tiny tree, validation after each epoch."""
    tree = write_sysu_tree(tmp_path_factory.mktemp("sysu"))
    return {**TINY, "data_root": str(tree), "validation": True, "eval_every": 1}


@pytest.fixture(scope="module")
def reference(base, tmp_path_factory) -> Path:
    """The uninterrupted run's folder."""
    folder = tmp_path_factory.mktemp("reference")
    config = resolve_config("demo", {**base, "output": str(folder / "run")})
    done = _run(folder, config, "fresh")
    assert done.returncode == 0, done.stderr
    return folder / "run"


def test_a_killed_run_resumes_to_exactly_the_uninterrupted_result(tmp_path, base, reference):
    killed = resolve_config(
        "demo", {**base, "output": str(tmp_path / "killed"), "save_every": 1, "workers": 2}
    )

    # Saves: step 1 (mid-epoch), end of epoch 1, step 3 (mid-epoch 2) -> killed there.
    dead = _run(tmp_path, killed, "fresh", kill_after=3)
    assert dead.returncode == -signal.SIGKILL, dead.stderr
    assert _progress(tmp_path / "killed") == (1, 1, 3)
    assert not (tmp_path / "killed" / "result.json").exists()

    again = _run(tmp_path, killed.replace(workers=0), "resume")
    assert again.returncode == 0, again.stderr
    assert "resuming" in again.stdout
    _assert_same_results(reference, tmp_path / "killed")


def test_ctrl_c_saves_the_resume_state_at_the_step_boundary_and_resume_is_exact(
    tmp_path, base, reference
):
    config = resolve_config("demo", {**base, "output": str(tmp_path / "stopped"), "workers": 2})

    # No periodic saves: the only mid-epoch state is the one Ctrl-C asks for, after step 3.
    stopped = _run(tmp_path, config, "fresh", ctrl_c_at=3)
    assert stopped.returncode == 130, stopped.stderr
    assert "stopped by SIGINT at epoch 2, step 1 (global step 3)" in stopped.stdout
    assert "Traceback" not in stopped.stderr  # the workers were not hit either
    assert _progress(tmp_path / "stopped") == (1, 1, 3)

    again = _run(tmp_path, config, "resume")
    assert again.returncode == 0, again.stderr
    _assert_same_results(reference, tmp_path / "stopped")


def test_resume_refuses_a_different_number_of_processes(tmp_path, monkeypatch):
    tree = write_sysu_tree(tmp_path / "sysu")
    config = resolve_config(
        "demo",
        {
            **TINY,
            "data_root": str(tree),
            "epochs": 1,
            "variant": "baseline",
            "output": str(tmp_path / "run"),
        },
    )
    from cycletrans.engine import train

    train(config)
    path = tmp_path / "run" / "resume.pt"
    state = load_resume_state(path)
    state["world_size"] = 2
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"written by 2 process\(es\)"):
        train(config, resume=True)
