"""save_model / load_model: bit-exact round trips, and refusal of anything but safetensors."""

import hashlib
import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import load_file, save_file

import cycletrans
from cycletrans.checkpoint import load_model, save_model
from cycletrans.models import build_model, resnet
from cycletrans.preprocessing import Preprocessing

TINY = {"num_anchors": 3, "num_prototypes": 8, "preprocessing": Preprocessing(64, 32)}


def trained_model(variant: str):
    """A tiny model after one step, so BatchNorm statistics and weights are non-trivial."""
    torch.manual_seed(0)
    model = build_model(variant, "resnet18", num_classes=2, cycle_grad="all", **TINY)
    images = torch.randn(8, 3, 64, 32)
    modalities = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1])
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.loss(model(images, modalities, labels), labels, modalities)["loss"].backward()
    opt.step()
    return model.eval(), images


@pytest.mark.parametrize("variant", ["baseline", "full", "transformer"])
def test_round_trip_is_bit_exact(tmp_path, variant):
    model, images = trained_model(variant)
    path = tmp_path / "run" / f"{variant}.safetensors"
    save_model(model, path)
    assert path.is_file()
    assert path.with_suffix(".json").is_file()
    loaded = load_model(path)
    assert not loaded.training
    assert loaded.config == model.config
    assert loaded.preprocessing == model.preprocessing == Preprocessing(64, 32)
    assert loaded.options.cycle_grad == "all"
    original, restored = model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    for name in original:
        assert torch.equal(original[name], restored[name]), name
        assert original[name].dtype == restored[name].dtype, name
    for modality in ("visible", "infrared"):
        assert torch.equal(model.embed(images, modality), loaded.embed(images, modality))


def test_the_json_config_holds_what_the_lead_documents(tmp_path):
    model, _ = trained_model("full")
    save_model(model, tmp_path / "m.safetensors")
    config = json.loads((tmp_path / "m.json").read_text())
    assert config["format_version"] == 1
    assert {"variant", "backbone", "num_classes", "options", "preprocessing"} <= set(config)


def test_top_level_names_are_the_checkpoint_functions():
    assert cycletrans.save_model is save_model
    assert cycletrans.load_model is load_model


def test_loading_never_downloads_imagenet_weights(tmp_path, monkeypatch):
    fake_imagenet = torchvision.models.resnet18().state_dict()
    monkeypatch.setattr(resnet, "imagenet_state_dict", lambda arch: fake_imagenet)
    model = build_model("baseline", "resnet18", num_classes=2, pretrained=True, **TINY)
    assert torch.equal(model.backbone.stem[0].weight, fake_imagenet["conv1.weight"])
    save_model(model, tmp_path / "p.safetensors")

    def offline(arch):
        raise AssertionError("load_model tried to fetch ImageNet weights")

    monkeypatch.setattr(resnet, "imagenet_state_dict", offline)
    loaded = load_model(tmp_path / "p.safetensors")
    assert loaded.config["options"]["pretrained"] is True


class _Payload:
    """Unpickling this object writes a marker file: proof that a pickle was deserialised."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pickle_is_refused_before_anything_is_deserialised(tmp_path):
    marker = tmp_path / "unpickled"
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps(_Payload(marker)))
    (tmp_path / "evil.json").write_text("{}")
    with pytest.raises(ValueError, match=r"not a safetensors file.*pickle"):
        load_model(path)
    assert not marker.exists()


def test_a_torch_save_archive_is_refused(tmp_path):
    model, _ = trained_model("baseline")
    path = tmp_path / "model.safetensors"
    torch.save(model.state_dict(), path)
    with pytest.raises(ValueError, match=r"not a safetensors file.*zip"):
        load_model(path)
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="not a safetensors file"):
        load_model(path)


def test_missing_files_and_wrong_names_are_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model weights"):
        load_model(tmp_path / "absent.safetensors")
    model, _ = trained_model("baseline")
    path = tmp_path / "m.safetensors"
    save_model(model, path)
    path.with_suffix(".json").unlink()
    with pytest.raises(FileNotFoundError, match=r"m\.json is missing"):
        load_model(path)
    with pytest.raises(ValueError, match=r"\.safetensors"):
        save_model(model, tmp_path / "m.pt")
    with pytest.raises(ValueError, match=r"\.safetensors"):
        load_model(tmp_path / "m.pth")


def test_unknown_format_versions_and_broken_configs_are_refused(tmp_path):
    model, _ = trained_model("baseline")
    path = tmp_path / "m.safetensors"
    save_model(model, path)
    config = json.loads(path.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps({**config, "format_version": 99}))
    with pytest.raises(ValueError, match="format_version 99"):
        load_model(path)
    del config["options"]
    path.with_suffix(".json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="incomplete or malformed model config"):
        load_model(path)


def test_identical_tensors_give_byte_identical_files(tmp_path):
    model, _ = trained_model("baseline")
    digests = set()
    for n in range(8):  # safetensors' own metadata order varied from one call to the next
        path = tmp_path / f"m{n}.safetensors"
        save_model(model, path)
        digests.add(hashlib.sha256(path.read_bytes()).hexdigest())
    assert len(digests) == 1
    assert torch.equal(
        load_model(tmp_path / "m0.safetensors").classifier.weight, model.classifier.weight
    )


@pytest.fixture(scope="module")
def saved_full(tmp_path_factory) -> Path:
    """A tiny trained ``full`` model saved once; tests edit copies of it."""
    model, _ = trained_model("full")
    path = tmp_path_factory.mktemp("saved") / "full.safetensors"
    save_model(model, path)
    return path


def _copy(saved: Path, folder: Path) -> tuple[Path, dict]:
    path = folder / saved.name
    shutil.copy(saved, path)
    shutil.copy(saved.with_suffix(".json"), path.with_suffix(".json"))
    return path, json.loads(path.with_suffix(".json").read_text())


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        ({"num_classes": 5}, "classifier.weight is [2, 1536] in the file, [5, 1536]"),
        ({"num_classes": 10**12}, "classifier.weight is [2, 1536] in the file"),
        ({"backbone": "resnet50"}, "in the file"),
        ({"variant": "baseline"}, "not in the model: anchors, head."),
        ({"variant": "kcm"}, "not in the model: head."),
        ({"options": {"num_prototypes": 16}}, "head.prototypes is [8, 512] in the file, [16, 512]"),
    ],
)
def test_a_config_that_does_not_match_the_tensors_is_refused_before_building(
    saved_full, tmp_path, monkeypatch, edit, named
):
    path, config = _copy(saved_full, tmp_path)
    options = {**config["options"], **edit.pop("options", {})}
    path.with_suffix(".json").write_text(json.dumps({**config, **edit, "options": options}))
    from cycletrans import checkpoint

    built = []
    real_build = checkpoint.model_from_config
    monkeypatch.setattr(
        checkpoint,
        "model_from_config",
        lambda *a, **k: built.append(torch.empty(0).device) or real_build(*a, **k),
    )
    with pytest.raises(
        ValueError,
        match=r"full\.safetensors does not match the model its config "
        r"full\.json describes",
    ) as error:
        load_model(path)
    assert named in str(error.value)
    assert built == [torch.device("meta")]  # nothing was built for real


def test_a_truncated_or_garbled_file_is_named_and_refused(saved_full, tmp_path):
    path, _ = _copy(saved_full, tmp_path)
    data = saved_full.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"full\.safetensors is not a readable safetensors file"):
        load_model(path)
    garbled = bytearray(data)
    garbled[20:30] = b"#" * 10
    path.write_bytes(bytes(garbled))
    with pytest.raises(ValueError, match=r"full\.safetensors is not a readable.*JSON"):
        load_model(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", r"full\.json holds a JSON list, not the model config"),
        ('{"format_version": 1, "variant": ', r"full\.json is not valid JSON"),
    ],
)
def test_a_config_that_is_not_a_model_config_is_named(saved_full, tmp_path, text, message):
    path, _ = _copy(saved_full, tmp_path)
    path.with_suffix(".json").write_text(text)
    with pytest.raises(ValueError, match=message):
        load_model(path)


def test_an_invalid_config_value_is_named_with_its_file(saved_full, tmp_path):
    path, config = _copy(saved_full, tmp_path)
    path.with_suffix(".json").write_text(json.dumps({**config, "variant": "nope"}))
    with pytest.raises(ValueError, match=r"full\.json: unknown variant 'nope'"):
        load_model(path)


def test_an_unexpected_top_level_key_is_a_warning(saved_full, tmp_path):
    path, config = _copy(saved_full, tmp_path)
    path.with_suffix(".json").write_text(json.dumps({**config, "note": "mine"}))
    with pytest.warns(UserWarning, match=r"full\.json: unexpected key\(s\) \['note'\] ignored"):
        model = load_model(path)
    assert model.config["variant"] == "full"


def test_weights_holding_nan_or_inf_are_refused(tmp_path):
    model, _ = trained_model("baseline")
    with torch.no_grad():
        model.classifier.weight[0, 0] = float("nan")
        model.neck.running_var[1] = float("inf")
    save_model(model, tmp_path / "m.safetensors")
    with pytest.raises(
        ValueError,
        match=r"m\.safetensors holds NaN or infinite values in "
        r"(classifier\.weight, neck\.running_var|neck\.running_var, classifier)",
    ):
        load_model(tmp_path / "m.safetensors")


def test_weights_of_another_dtype_are_refused(saved_full, tmp_path):
    weights = load_file(str(saved_full))
    weights["anchors"] = weights["anchors"].half()
    path, _ = _copy(saved_full, tmp_path)
    save_file(weights, str(path))
    with pytest.raises(ValueError, match=r"anchors is torch\.float16 in the file, torch\.float32"):
        load_model(path)
