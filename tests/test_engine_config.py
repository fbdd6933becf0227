"""Training configs: the paper's recipe per preset, overrides, the schedule, and bad values."""

from __future__ import annotations

import json

import pytest

from cycletrans.engine.config import (
    RUN_KEYS,
    TrainConfig,
    config_differences,
    learning_rate,
    load_run_config,
    resolve_config,
    run_config_record,
)
from cycletrans.losses import LossWeights
from cycletrans.models import ModelOptions


def test_sysu_preset_is_the_papers_recipe():
    c = resolve_config("sysu", {"data_root": "/data/sysu"})
    assert (c.backbone, c.model.pretrained, c.height, c.width) == ("resnet50", True, 384, 192)
    assert (c.lr, c.milestones, c.gamma, c.epochs) == (3.5e-4, (40, 70), 0.1, 140)
    assert (c.num_ids, c.num_per_modality) == (8, 4)
    assert (c.model.num_anchors, c.model.num_prototypes) == (7, 1024)
    assert c.model.loss_weights == LossWeights(0.3, 0.7, 0.15, 0.2)
    assert (c.flip, c.random_erasing, c.pad_crop, c.model.margin) == (True, 0.5, False, 0.5)
    assert (c.grayscale, c.freeze_stages) == (0.0, 0)
    assert c.model == ModelOptions(pretrained=True)  # everything else as printed
    assert c.output == "runs/sysu/full"


def test_regdb_preset_uses_the_regdb_lambdas_and_trial_one():
    c = resolve_config("regdb", {"data_root": "/data/regdb"})
    assert c.dataset == "regdb"
    assert c.trial == 1
    assert c.model.loss_weights == LossWeights(0.2, 0.8, 0.1, 0.1)


def test_demo_preset_is_an_imagenet_mobilenet_at_128x64_without_data_root():
    c = resolve_config("demo")
    assert c.data_root is None
    assert c.dataset == "sysu"
    assert (c.backbone, c.model.pretrained, c.height, c.width) == ("mobilenet_v2", True, 128, 64)


def test_overrides_replace_preset_values_and_none_keeps_them():
    c = resolve_config(
        "demo", {"epochs": 3, "milestones": [1, 2], "variant": "baseline", "lr": None}
    )
    assert (c.epochs, c.milestones, c.variant, c.lr) == (3, (1, 2), "baseline", 3.5e-4)
    assert c.output == "runs/demo/baseline"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"epochs": 0}, "epochs must be at least 1"),
        ({"loss_weights": (1.0, 2.0)}, "four or five numbers"),
        ({"num_anchor": 3}, "unknown training option"),
        ({"refine_temperature": 0}, "refine_temperature must be positive"),
        ({"device": "tpu"}, "device must be"),
        ({"trial": 11}, "trial must be in 1..10"),
        ({"cycle_grad": "none"}, "cycle_grad"),
        ({"lr": -1.0}, "need lr > 0"),
    ],
)
def test_invalid_values_raise_a_clear_value_error(overrides, message):
    with pytest.raises(ValueError, match=message):
        resolve_config("demo", overrides)


def test_unknown_preset_option_and_missing_data_root_are_rejected():
    with pytest.raises(ValueError, match="unknown preset"):
        resolve_config("market")
    with pytest.raises(ValueError, match="unknown training option"):
        resolve_config("demo", {"epoch": 3})
    with pytest.raises(ValueError, match="needs a data root"):
        resolve_config("sysu")


def test_learning_rate_drops_tenfold_at_each_milestone():
    c = resolve_config("sysu", {"data_root": "x"})
    assert [learning_rate(c, e) for e in (0, 39)] == [3.5e-4, 3.5e-4]
    assert learning_rate(c, 40) == pytest.approx(3.5e-5)
    assert learning_rate(c, 69) == pytest.approx(3.5e-5)
    assert learning_rate(c, 70) == pytest.approx(3.5e-6)


def test_warm_up_raises_the_rate_linearly_as_the_authors_code_does():
    c = resolve_config("demo", {"warmup_epochs": 10, "milestones": (40, 80), "epochs": 90})
    # their 1-based epoch e <= 10 uses lr / 10 * e; x0.1 from their epochs 41 and 81
    assert [learning_rate(c, e) for e in (0, 4, 9, 10)] == pytest.approx(
        [3.5e-5, 1.75e-4, 3.5e-4, 3.5e-4]
    )
    assert [learning_rate(c, e) for e in (39, 40, 80)] == pytest.approx([3.5e-4, 3.5e-5, 3.5e-6])


def test_dict_round_trip_and_runtime_fields_are_not_differences():
    c = resolve_config("demo", {"loss_weights": (0.1, 0.2, 0.3, 0.4), "num_anchors": 4})
    assert c.model.num_anchors == 4
    assert TrainConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    assert config_differences(c, c.replace(workers=7, max_steps=3, progress=False)) == []
    assert config_differences(c, c.replace(epochs=5)) == [f"epochs: saved {c.epochs}, now 5"]
    with pytest.raises(ValueError, match="unknown training config keys"):
        TrainConfig.from_dict({**c.to_dict(), "bogus": 1})


def test_run_config_json_reads_back_without_its_extra_keys(tmp_path):
    c = resolve_config("demo", {"output": str(tmp_path)})
    record = run_config_record(c, "/cache/demo", world_size=2)
    assert record[RUN_KEYS[0]] == "/cache/demo"
    assert record[RUN_KEYS[1]] == 2
    (tmp_path / "config.json").write_text(json.dumps(record))
    assert load_run_config(tmp_path) == c
    with pytest.raises(FileNotFoundError, match="no training run"):
        load_run_config(tmp_path / "missing")
