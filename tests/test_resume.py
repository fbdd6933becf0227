"""Kill a training run with SIGKILL right after a mid-epoch resume state, resume it, and get
exactly the weights, best checkpoint and metrics of an uninterrupted run (CPU)."""

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

# Runs train(config) in a fresh process; with KILL_AFTER = n it SIGKILLs itself right after
# the n-th resume state is written (a real kill at a known point, not a clean exit).
DRIVER = """
import json, os, signal, sys
import torch
torch.set_num_threads(1)
from cycletrans.engine import trainer
from cycletrans.engine.config import TrainConfig

config = TrainConfig.from_dict(json.loads(open(sys.argv[1]).read()))
kill_after = int(sys.argv[3])
written = 0
original = trainer.save_resume_state

def save_then_maybe_die(path, state):
    global written
    original(path, state)
    written += 1
    if written == kill_after:
        os.kill(os.getpid(), signal.SIGKILL)

trainer.save_resume_state = save_then_maybe_die
trainer.train(config, resume=sys.argv[2] == "resume")
"""


def _run(tmp_path: Path, config, mode: str, kill_after: int = 0) -> subprocess.CompletedProcess:
    config_path = tmp_path / f"{Path(config.output).name}-{mode}.json"
    config_path.write_text(json.dumps(config.to_dict()))
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(driver), str(config_path), mode, str(kill_after)],
                          capture_output=True, text=True, env=env, timeout=300)


def _metrics(output: Path) -> list[dict]:
    lines = (output / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "time_s"} for line in lines]


def test_a_killed_run_resumes_to_exactly_the_uninterrupted_result(tmp_path):
    tree = write_sysu_tree(tmp_path / "sysu")
    base = {**TINY, "data_root": str(tree), "validation": True, "eval_every": 1}
    reference = resolve_config("demo", {**base, "output": str(tmp_path / "reference")})
    killed = resolve_config("demo", {**base, "output": str(tmp_path / "killed"),
                                     "save_every": 1, "workers": 2})

    done = _run(tmp_path, reference, "fresh")
    assert done.returncode == 0, done.stderr

    # Saves: step 1 (mid-epoch), end of epoch 1, step 3 (mid-epoch 2) -> killed there.
    dead = _run(tmp_path, killed, "fresh", kill_after=3)
    assert dead.returncode == -signal.SIGKILL, dead.stderr
    state = load_resume_state(tmp_path / "killed" / "resume.pt")
    assert (state["epoch"], state["position"], state["global_step"]) == (1, 1, 3)
    assert not (tmp_path / "killed" / "result.json").exists()

    again = _run(tmp_path, killed.replace(workers=0), "resume")
    assert again.returncode == 0, again.stderr
    assert "resuming" in again.stdout

    for name in ("last.safetensors", "best.safetensors"):
        a = load_file(str(tmp_path / "reference" / name))
        b = load_file(str(tmp_path / "killed" / name))
        assert a.keys() == b.keys()
        mismatched = [k for k in a if not torch.equal(a[k], b[k])]
        assert mismatched == [], f"{name}: {mismatched[:5]}"
    assert _metrics(tmp_path / "reference") == _metrics(tmp_path / "killed")


def test_resume_refuses_a_different_number_of_processes(tmp_path, monkeypatch):
    tree = write_sysu_tree(tmp_path / "sysu")
    config = resolve_config("demo", {**TINY, "data_root": str(tree), "epochs": 1,
                                     "variant": "baseline", "output": str(tmp_path / "run")})
    from cycletrans.engine import train

    train(config)
    path = tmp_path / "run" / "resume.pt"
    state = load_resume_state(path)
    state["world_size"] = 2
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"written by 2 process\(es\)"):
        train(config, resume=True)
