"""Saving and loading models: weights in safetensors, the model description in JSON beside them.

``save_model(model, "runs/full.safetensors")`` writes ``runs/full.safetensors`` (every tensor
of the state dict) and ``runs/full.json`` (variant, backbone, num_classes, options,
preprocessing and a format version), each atomically. Identical tensors give byte-identical
files (the safetensors header is written with sorted keys). ``load_model`` rebuilds the model
from the JSON without downloading anything, loads the weights and returns it in eval mode with
``.preprocessing``.

Loading refuses, with one message naming the file: anything but safetensors (a pickle or a
``torch.save`` archive is refused before any of it is deserialised, since unpickling can run
code), a truncated or garbled file, a JSON that is not a model config, a config whose tensors
differ from the file's in names or shapes (checked against the header on the ``meta`` device
before anything is allocated, so an edited ``num_classes`` cannot ask for petabytes), other
dtypes, and NaN or infinite weights. An unexpected top-level key in the JSON is a warning.

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
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from safetensors.torch import save as serialize

from cycletrans.data.records import preview
from cycletrans.files import atomic_write, read_json
from cycletrans.models.reid_model import ReIDModel
from cycletrans.models.variants import model_from_config

FORMAT_VERSION = 1
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on the JSON header
_METADATA = {"format": "cycletrans", "format_version": str(FORMAT_VERSION)}


def _weights_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"model weights are saved as .safetensors files, got {str(path)!r}")
    return path


def save_model(model: ReIDModel, path: str | Path) -> None:
    """Write ``model``'s weights to ``path`` (``.safetensors``) and its config beside it."""
    path = _weights_path(path)
    tensors = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    data = serialize(tensors, metadata=_METADATA)
    (length,) = struct.unpack("<Q", data[:8])
    with atomic_write(path) as f:
        f.write(_sorted_header(data[8 : 8 + length]))
        f.write(memoryview(data)[8 + length :])
    config = {"format_version": FORMAT_VERSION, **model.config}
    with atomic_write(path.with_suffix(".json")) as f:
        f.write((json.dumps(config, indent=2) + "\n").encode())


def _sorted_header(header: bytes) -> bytes:
    """The length-prefixed safetensors header with sorted keys, space-padded to 8 bytes.

    safetensors writes its metadata from a hash map, in an order that varies between calls;
    the tensors' offsets are relative to the end of the header, so they are unchanged.
    """
    text = json.dumps(json.loads(header), sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text


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


def _stored_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor in the file, from its header alone (nothing loaded)."""
    _check_safetensors(path)
    try:
        with safe_open(str(path), "pt") as f:
            return {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}  # noqa: SIM118 (not iterable)
    except SafetensorError as error:
        raise ValueError(
            f"{path} is not a readable safetensors file, truncated or corrupted? ({error})"
        ) from error


def _read_config(config_path: Path) -> dict[str, Any]:
    if not config_path.is_file():
        raise FileNotFoundError(
            f"the model config {config_path} is missing: save_model writes it beside the "
            f"weights, and load_model needs it to know which model {config_path.stem} holds"
        )
    config = read_json(config_path)
    if not isinstance(config, dict):
        raise ValueError(
            f"{config_path} holds a JSON {type(config).__name__}, not the model "
            f"config (an object) that save_model writes"
        )
    if config.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{config_path} has format_version {config.get('format_version')!r}; "
            f"this version of cycletrans reads {FORMAT_VERSION}"
        )
    return config


def _mismatches(stored: dict[str, tuple[int, ...]], expected: dict[str, torch.Tensor]) -> str:
    """What differs between the file's tensors and the model's state dict ("" if nothing)."""
    shapes = [
        f"{name} is {list(stored[name])} in the file, {list(t.shape)} by the config"
        for name, t in expected.items()
        if name in stored and stored[name] != t.shape
    ]
    missing = [name for name in expected if name not in stored]
    extra = [name for name in stored if name not in expected]
    return "; ".join(
        ([preview(shapes, 3)] if shapes else [])
        + ([f"missing from the file: {preview(missing, 3)}"] if missing else [])
        + ([f"not in the model: {preview(extra, 3)}"] if extra else [])
    )


def _checked_model(
    path: Path, stored: dict[str, tuple[int, ...]], config_path: Path, config: dict[str, Any]
) -> ReIDModel:
    """The model ``config`` describes, built only once its tensors match the ``stored`` ones."""
    try:
        with torch.device("meta"):  # allocates nothing, whatever the config asks for
            skeleton = model_from_config(config, load_pretrained=False)
    except ValueError as error:
        raise ValueError(f"{config_path}: {error}") from error
    unexpected = sorted(set(config) - {"format_version", *skeleton.config})
    if unexpected:
        warnings.warn(f"{config_path}: unexpected key(s) {unexpected} ignored", stacklevel=3)
    differences = _mismatches(stored, skeleton.state_dict())
    if differences:
        raise ValueError(
            f"{path} does not match the model its config {config_path.name} "
            f"describes (an edited config, or another checkpoint's?): {differences}"
        )
    return model_from_config(config, load_pretrained=False)


def _load_weights(path: Path, model: ReIDModel, device: str) -> dict[str, torch.Tensor]:
    """The file's tensors, checked for dtype against ``model`` and for finite values."""
    try:
        weights = load_file(str(path), device=device)
    except SafetensorError as error:
        raise ValueError(f"{path} is not a readable safetensors file ({error})") from error
    expected = model.state_dict()
    dtypes = [
        f"{name} is {t.dtype} in the file, {expected[name].dtype} in the model"
        for name, t in weights.items()
        if t.dtype != expected[name].dtype
    ]
    if dtypes:
        raise ValueError(
            f"{path} holds tensors of other dtypes than its model: {preview(dtypes, 3)}"
        )
    non_finite = [
        name
        for name, t in weights.items()
        if t.is_floating_point() and not bool(torch.isfinite(t).all())
    ]
    if non_finite:
        raise ValueError(
            f"{path} holds NaN or infinite values in {preview(non_finite, 3)}; refusing to load it"
        )
    return weights


def load_model(path: str | Path, device: str = "cpu") -> ReIDModel:
    """Load a model saved by ``save_model``; returned in eval mode on ``device``.

    Raises:
        FileNotFoundError: the weights or the JSON config beside them are missing.
        ValueError: the file is not (readable) safetensors, the config is not one we can read
            or does not match the tensors, or the weights hold NaN/inf (see the module doc).
    """
    path = _weights_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model weights at {path}")
    stored = _stored_shapes(path)
    config_path = path.with_suffix(".json")
    model = _checked_model(path, stored, config_path, _read_config(config_path)).to(device)
    model.load_state_dict(_load_weights(path, model, device))
    return model.eval()
