"""Saving and loading models: weights in safetensors, the model description in JSON beside them.

``save_model(model, "runs/full.safetensors")`` writes ``runs/full.safetensors`` (every tensor
of the state dict) and ``runs/full.json`` (variant, backbone, num_classes, options,
preprocessing and a format version). ``load_model`` rebuilds the model from the JSON without
downloading anything, loads the weights and returns it in eval mode with ``.preprocessing``.
Only safetensors files are read: a pickle or a ``torch.save`` archive is refused before any of
it is deserialised, since unpickling a file can run arbitrary code.

Example:
    >>> import cycletrans, tempfile, pathlib
    >>> model = cycletrans.build_model("baseline", "resnet18", num_classes=3)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "baseline.safetensors"
    >>> cycletrans.save_model(model, path)
    >>> cycletrans.load_model(path).config == model.config
    True
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from safetensors.torch import load_file, save_file

from cycletrans.models.reid_model import ReIDModel
from cycletrans.models.variants import model_from_config

FORMAT_VERSION = 1
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on the JSON header


def _weights_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"model weights are saved as .safetensors files, got {str(path)!r}")
    return path


def save_model(model: ReIDModel, path: str | Path) -> None:
    """Write ``model``'s weights to ``path`` (``.safetensors``) and its config beside it."""
    path = _weights_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    save_file(tensors, str(path), metadata={"format": "cycletrans",
                                            "format_version": str(FORMAT_VERSION)})
    config = {"format_version": FORMAT_VERSION, **model.config}
    path.with_suffix(".json").write_text(json.dumps(config, indent=2) + "\n")


def _check_safetensors(path: Path) -> None:
    """Refuse anything whose header is not safetensors' (u64 length + a JSON object)."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(9)
    if len(head) == 9:
        (length,) = struct.unpack("<Q", head[:8])
        if 0 < length <= min(size - 8, _MAX_HEADER) and head[8:9] == b"{":
            return
    kind = "an unknown format"
    if head[:1] == b"\x80":
        kind = "a pickle"
    elif head[:2] == b"PK":
        kind = "a zip archive, as torch.save writes"
    raise ValueError(
        f"{path} is not a safetensors file (it looks like {kind}); refusing to load it. "
        "Only checkpoints written by cycletrans.save_model (.safetensors + .json) are read."
    )


def load_model(path: str | Path, device: str = "cpu") -> ReIDModel:
    """Load a model saved by ``save_model``; returned in eval mode on ``device``.

    Raises:
        FileNotFoundError: the weights or the JSON config beside them are missing.
        ValueError: the file is not safetensors, or the config is not one we can read.
    """
    path = _weights_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model weights at {path}")
    _check_safetensors(path)
    config_path = path.with_suffix(".json")
    if not config_path.is_file():
        raise FileNotFoundError(
            f"the model config {config_path} is missing: save_model writes it beside the "
            f"weights, and load_model needs it to know which model {path.name} holds")
    config = json.loads(config_path.read_text())
    if config.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{config_path} has format_version {config.get('format_version')!r}; "
                         f"this version of cycletrans reads {FORMAT_VERSION}")
    model = model_from_config(config, load_pretrained=False).to(device)
    model.load_state_dict(load_file(str(path), device=device))
    return model.eval()
