"""Two Gloo processes, launched the way torchrun launches them (RANK / WORLD_SIZE / LOCAL_RANK /
MASTER_ADDR / MASTER_PORT), train a tiny model with DistributedDataParallel: the replicas end
identical (every parameter and buffer) and the ranks see different identities at every step."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from engine_helpers import TINY, write_sysu_tree
from safetensors.torch import load_file

from cycletrans.engine import resolve_config

REPO = Path(__file__).resolve().parents[1]

# One rank: train, then dump this rank's final model state and the person id of every item
# it loaded (workers=0, so items load in this process, batch after batch).
DRIVER = """
import json, os, sys
import torch
torch.set_num_threads(1)
from safetensors.torch import save_file
from cycletrans.engine import trainer
from cycletrans.engine.config import TrainConfig
from cycletrans.engine.data import SeededDataset

config = TrainConfig.from_dict(json.loads(open(sys.argv[1]).read()))
seen = []
original = SeededDataset.__getitem__

def recording(self, key):
    seen.append(self.dataset.records[key[0]].pid)
    return original(self, key)

SeededDataset.__getitem__ = recording
result = trainer.train(config)
rank = os.environ["RANK"]
state = {k: v.detach().contiguous() for k, v in result.model.state_dict().items()}
save_file(state, os.path.join(sys.argv[2], f"rank{rank}.safetensors"))
open(os.path.join(sys.argv[2], f"rank{rank}.json"), "w").write(json.dumps(seen))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_ranks_stay_identical_and_see_different_identities(tmp_path):
    tree = write_sysu_tree(tmp_path / "sysu")
    config = resolve_config(
        "demo",
        {
            **TINY,
            "data_root": str(tree),
            "validation": True,
            "eval_every": 1,
            "output": str(tmp_path / "run"),
        },
    )
    (tmp_path / "config.json").write_text(json.dumps(config.to_dict()))
    (tmp_path / "driver.py").write_text(DRIVER)
    port = _free_port()
    procs = []
    for rank in (0, 1):
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "OMP_NUM_THREADS": "1",
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    str(tmp_path / "driver.py"),
                    str(tmp_path / "config.json"),
                    str(tmp_path),
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err

    a = load_file(str(tmp_path / "rank0.safetensors"))
    b = load_file(str(tmp_path / "rank1.safetensors"))
    assert a.keys() == b.keys()
    assert any("running_mean" in k for k in a)  # buffers are compared too
    assert [k for k in a if not torch.equal(a[k], b[k])] == []

    batch = 2 * config.num_ids * config.num_per_modality
    seen = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    steps = config.epochs * config.batches_per_epoch
    assert [len(s) for s in seen] == [steps * batch] * 2
    for step in range(steps):
        ids0 = set(seen[0][step * batch : (step + 1) * batch])
        ids1 = set(seen[1][step * batch : (step + 1) * batch])
        assert len(ids0) == len(ids1) == config.num_ids
        assert not ids0 & ids1, f"step {step}: both ranks trained on ids {ids0 & ids1}"

    out = tmp_path / "run"
    assert json.loads((out / "config.json").read_text())["world_size"] == 2
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert all("val" in r for r in rows)
    assert (out / "best.safetensors").is_file()
