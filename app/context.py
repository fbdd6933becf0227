"""The app's state: the test split, the models with their cached features, and memoised analyses.

:func:`build_context` does all the start-up work (the tabs only read the context):

1. the dataset: the generated demo set (``cycletrans.engine.data.demo_data_root``, the same
   cache as training) unless a data root is given; its test split;
2. an index of the test images' SHA-256 digests, so that an uploaded file whose bytes equal a
   test image is known to be that image (its identity and camera, hence its AP);
3. each model through ``cycletrans.load_model`` and its test-split features, computed once with
   ``cycletrans.engine.inference.extract_features`` and cached on disk under
   ``<cache_dir>/features/`` in a file named after the dataset key (dataset, trial, root and
   every test image's path, size and modification time) and the checkpoint's digest (weights
   and JSON config bytes): a changed checkpoint or dataset is never served stale features.

Torch work on a model holds that model's lock: Grad-CAM registers hooks on the model's layers,
which must not see another request's forward pass.

Example:
    >>> context = build_context()  # doctest: +SKIP  (demo set + shipped checkpoints)
    >>> query = context.query("/path/to/cam3/0001/0001.jpg", "infrared")  # doctest: +SKIP
    >>> context.search("CycleTrans", query, top_k=10).ap  # doctest: +SKIP
    0.82
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image
from tqdm import tqdm

from analysis.gradcam import image_tensor
from analysis.retrieval import (
    CrossModality,
    SearchResult,
    all_query_results,
    cross_modality,
    search,
)
from analysis.tsne import TSNECache
from app.images import NO_IMAGE, ImageInputError, file_digest, load_image
from cycletrans.data.records import ImageRecord
from cycletrans.engine.inference import FeatureSet
from cycletrans.modality import modality_name

BASELINE, NOCYCLE, CYCLETRANS = MODEL_NAMES = ("Baseline", "CycleTrans (no cycle)", "CycleTrans")
REPO_ROOT = Path(__file__).resolve().parent.parent
CHECKPOINT_DIR = REPO_ROOT / "assets" / "checkpoints"
RESULTS_DIR = REPO_ROOT / "assets" / "results"
DEFAULT_CHECKPOINTS = {BASELINE: CHECKPOINT_DIR / "baseline.safetensors",
                       NOCYCLE: CHECKPOINT_DIR / "nocycle.safetensors",
                       CYCLETRANS: CHECKPOINT_DIR / "full.safetensors"}
DEMO_TRAIN_HINT = ("the demo checkpoints are trained with `python -m cycletrans train --preset "
                   "demo --variant V` (V = baseline, dmm, full) and shipped as "
                   "assets/checkpoints/{baseline,nocycle,full}.safetensors; or pass "
                   "--checkpoint, --nocycle-checkpoint, --baseline-checkpoint")


def default_cache_dir() -> Path:
    """``<cycletrans cache>/app`` (``$CYCLETRANS_CACHE`` or ``~/.cache/cycletrans``)."""
    from cycletrans.engine.data import cache_dir

    return cache_dir() / "app"


@dataclass(frozen=True)
class DatasetSplit:
    """The dataset's test split as the app sees it.

    ``protocol`` is "sysu" (SYSU-MM01 layout, also the demo set) or "regdb"; ``key`` a digest
    of everything the features depend on (module docstring).
    """

    protocol: str
    root: Path
    trial: int
    label: str
    records: list[ImageRecord]
    key: str


@dataclass
class LoadedModel:
    """A model, its checkpoint, and its features of the test split (record order)."""

    name: str
    model: torch.nn.Module
    checkpoint: Path
    digest: str
    features: FeatureSet
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def has_anchors(self) -> bool:
        """Whether the model has KCM's pseudo anchors (eq. 5 maps)."""
        return getattr(self.model, "kcm", None) is not None

    def embed(self, image: Image.Image, modality: str) -> np.ndarray:
        """``[D]`` retrieval feature of one RGB image."""
        with self.lock:
            return self.model.embed(image_tensor(self.model, image), modality)[0].cpu().numpy()


@dataclass
class Query:
    """A query image: its file, modality, and its test record when the file is a test image."""

    path: Path
    modality: str
    index: int | None = None
    record: ImageRecord | None = None
    note: str = ""
    _image: Image.Image | None = None

    @property
    def image(self) -> Image.Image:
        """The RGB image (read through the safe loader on first use)."""
        if self._image is None:
            self._image = load_image(self.path)
        return self._image


@dataclass
class GapStats:
    """Modality-gap numbers of one model (one table row) and its histogram figure."""

    row: dict[str, Any]
    histogram: Any


class AppContext:
    """Everything the tabs read: the split, the models, the digest index, memoised analyses."""

    def __init__(self, split: DatasetSplit, models: Mapping[str, LoadedModel],
                 digests: Mapping[str, int], cache_dir: Path,
                 results_dir: Path = RESULTS_DIR) -> None:
        if CYCLETRANS not in models:
            raise ValueError(f"the app needs the {CYCLETRANS!r} model, got {list(models)}")
        self.split = split
        self.models = {name: models[name] for name in MODEL_NAMES if name in models}
        self.digests = dict(digests)
        self.path_index = {r.path: i for i, r in enumerate(split.records)}
        self.cache_dir = cache_dir
        self.results_dir = results_dir
        self.tsne_cache = TSNECache(max_entries=64)
        self._memo: dict[tuple, Any] = {}
        self._key_locks: dict[tuple, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    @property
    def model_names(self) -> list[str]:
        return list(self.models)

    def model(self, name: str) -> LoadedModel:
        """The loaded model called ``name`` (ValueError naming the available ones)."""
        if name not in self.models:
            raise ValueError(f"unknown model {name!r}: this app has {', '.join(self.models)}")
        return self.models[name]

    def served_paths(self) -> list[str]:
        """The folders the web server may serve files from: the dataset and the cache."""
        return [str(self.split.root), str(self.cache_dir)]

    def memo(self, key: tuple, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per ``key`` (thread-safe; a computation blocks only callers of
        the same key, and may use other keys)."""
        if key in self._memo:
            return self._memo[key]
        with self._locks_lock:
            lock = self._key_locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._memo:
                self._memo[key] = compute()
        return self._memo[key]

    # queries ---------------------------------------------------------------------------
    def query(self, path: str | Path | None, modality: str) -> Query:
        """Resolve an input file: a test image (by its bytes) or a new image (checked now).

        A test image's own modality wins over ``modality`` (the note says so).
        """
        asked = modality_name(modality)
        if path is None or str(path) == "":
            raise ImageInputError(NO_IMAGE)
        path = Path(path)
        index = self.digests.get(file_digest(path)) if path.is_file() else None
        if index is None:
            query = Query(path, asked)
            _ = query.image  # validate the upload before any work
            return query
        record = self.split.records[index]
        note = ""
        if modality_name(record.modality) != asked:
            note = (f"this is a {modality_name(record.modality)} test image: searched as "
                    f"{modality_name(record.modality)} (not {asked})")
        return Query(path, modality_name(record.modality), index, record, note)

    def test_query(self, index: int) -> Query:
        """The test image at ``index`` of the split as a query."""
        if not 0 <= index < len(self.split.records):
            raise ValueError(f"test image index must be in 0..{len(self.split.records) - 1}, "
                             f"got {index}")
        record = self.split.records[index]
        return Query(Path(record.path), modality_name(record.modality), index, record)

    def query_feature(self, name: str, query: Query) -> np.ndarray:
        """``[D]`` feature of the query for model ``name`` (cached for test images)."""
        entry = self.model(name)
        if query.index is not None:
            return entry.features.features[query.index]
        return entry.embed(query.image, query.modality)

    def cross(self, name: str, query_modality: str) -> CrossModality:
        """Model ``name``'s test images of ``query_modality`` against the other modality, with
        their distance matrix (memoised)."""
        modality = modality_name(query_modality)
        return self.memo(("cross", name, modality),
                         lambda: cross_modality(self.model(name).features, modality))

    def search(self, name: str, query: Query, top_k: int) -> SearchResult:
        """Rank the other modality's test images for ``query`` with model ``name``.

        A test query uses its row of the split's distance matrix, so its AP is exactly the one
        of the whole-split evaluation (the Failure cases tab).
        """
        cross, record = self.cross(name, query.modality), query.record
        return search(self.query_feature(name, query), cross.gallery, top_k=top_k,
                      protocol=self.split.protocol, query_pid=record.pid if record else None,
                      query_cam=record.cam if record else None,
                      distances=cross.row(query.index) if query.index is not None else None)

    # whole-split analyses ---------------------------------------------------------------
    def query_results(self, name: str, modality: str) -> pd.DataFrame:
        """Per-query AP / first hit of every ``modality`` test image (memoised)."""
        modality = modality_name(modality)
        return self.memo(("results", name, modality), lambda: all_query_results(
            self.cross(name, modality), self.split.protocol))

    def gap(self, name: str) -> GapStats:
        """Modality-gap statistics of model ``name`` over the whole test split (memoised)."""
        return self.memo(("gap", name), lambda: _gap_stats(self.model(name).features,
                                                           name, self.split.protocol))


def _gap_stats(features: FeatureSet, name: str, protocol: str) -> GapStats:
    from analysis.modality_gap import GROUPS, gap_histogram, modality_gap

    gap = modality_gap(features.features, features.ids, features.modalities, features.cams,
                       protocol=protocol)
    means = gap.summary["mean"]
    row: dict[str, Any] = {
        "model": name,
        "same id, same modality": means[GROUPS[0]],
        "same id, cross modality": means[GROUPS[1]],
        "different id": means[GROUPS[2]],
        "cross / same (ratio)": means[GROUPS[1]] / means[GROUPS[0]],
        "MMD": gap.mmd,
    }
    for direction, label in (("infrared_to_visible", "IR→VIS"), ("visible_to_infrared",
                                                                  "VIS→IR")):
        row[f"{label} Rank-1"] = gap.retrieval.loc[direction, "Rank-1"]
        row[f"{label} mAP"] = gap.retrieval.loc[direction, "mAP"]
    return GapStats(row, gap_histogram(gap, title=f"{name}: pair distances"))


# start-up --------------------------------------------------------------------------------
def checkpoint_digest(path: Path) -> str:
    """Digest of a checkpoint: its weights' and its JSON config's bytes."""
    digest = hashlib.sha256()
    for part in (path, path.with_suffix(".json")):
        digest.update(file_digest(part).encode())
    return digest.hexdigest()


def split_key(protocol: str, root: Path, trial: int, records: list[ImageRecord]) -> str:
    """Digest of what the test features depend on: dataset, trial, root, and every image's
    path, identity, camera, frame, size and modification time."""
    digest = hashlib.sha256(f"{protocol}|{trial}|{root.resolve()}".encode())
    for r in records:
        stat = os.stat(r.path)
        digest.update(f"\n{r.path}|{r.pid}|{r.cam}|{r.modality}|{r.frame}|{stat.st_size}|"
                      f"{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def load_split(data_root: str | Path | None = None, dataset: str | None = None, trial: int = 1,
               progress: bool = True) -> DatasetSplit:
    """The test split of ``data_root`` (default: the generated demo set, made on first use)."""
    from cycletrans.data import detect_dataset, split_records
    from cycletrans.engine.data import demo_data_root

    if data_root is None:
        if dataset not in (None, "sysu"):
            raise ValueError(f"the demo set has the SYSU-MM01 layout; --dataset {dataset} "
                             "needs --data-root")
        root, protocol, label = demo_data_root(progress=progress), "sysu", "demo synthetic set"
    else:
        root = Path(data_root).expanduser().resolve()
        protocol = dataset or detect_dataset(root)
        label = {"sysu": "SYSU-MM01", "regdb": f"RegDB (trial {trial})"}[protocol]
    records = split_records(root, protocol, "test", trial=trial)
    return DatasetSplit(protocol, Path(root), trial, label, records,
                        split_key(protocol, Path(root), trial, records))


def digest_index(records: list[ImageRecord], progress: bool = True) -> dict[str, int]:
    """SHA-256 digest of each test image's bytes -> its index (first one for duplicates)."""
    index: dict[str, int] = {}
    for i, r in enumerate(tqdm(records, desc="test image digests", disable=not progress,
                               unit="img")):
        index.setdefault(file_digest(r.path), i)
    return index


def cached_features(model: torch.nn.Module, digest: str, split: DatasetSplit, cache_dir: Path,
                    device: str = "cpu", progress: bool = True, desc: str = "features"
                    ) -> tuple[FeatureSet, Path]:
    """The model's test-split features from the disk cache (``digest``: the checkpoint's),
    extracted and saved on a miss."""
    from cycletrans.engine.inference import extract_features

    name = f"{split.protocol}-{split.key[:20]}-{digest[:20]}.npz"
    path = cache_dir / "features" / name
    expected = np.array([r.path for r in split.records])
    if path.is_file():
        try:
            features = FeatureSet.load(path)
            if np.array_equal(features.paths, expected):
                return features, path
        except (ValueError, OSError):
            pass  # unreadable or foreign file: extract again
    features = extract_features(model, split.records, device=device, progress=progress,
                                desc=desc)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.npz")
    features.save(tmp)
    os.replace(tmp, path)
    return features, path


def build_context(
    data_root: str | Path | None = None,
    dataset: str | None = None,
    checkpoints: Mapping[str, str | Path | None] | None = None,
    trial: int = 1,
    cache_dir: str | Path | None = None,
    device: str = "cpu",
    progress: bool = True,
    log: Callable[[str], None] = print,
    results_dir: str | Path = RESULTS_DIR,
) -> AppContext:
    """Load the dataset's test split, the models and their (cached) features.

    Args:
        data_root, dataset, trial: the dataset (default: the demo set; ``dataset`` "sysu" or
            "regdb", detected from the folder when None).
        checkpoints: model name (``MODEL_NAMES``) -> ``.safetensors`` path; None values are
            skipped. Default: the shipped demo checkpoints. ``CycleTrans`` is required.
        cache_dir: where features are cached (default :func:`default_cache_dir`).
        device: where the models run.
        progress, log: progress bars and messages.
        results_dir: where the Ablations tab looks for reproduced tables.

    Raises:
        FileNotFoundError: a checkpoint or the dataset is missing.
        ValueError: bad arguments.
    """
    from cycletrans import load_model

    checkpoints = dict(DEFAULT_CHECKPOINTS if checkpoints is None else checkpoints)
    unknown = sorted(set(checkpoints) - set(MODEL_NAMES))
    if unknown:
        raise ValueError(f"unknown model names {unknown}: expected {list(MODEL_NAMES)}")
    if checkpoints.get(CYCLETRANS) is None:
        raise ValueError("the CycleTrans checkpoint is required (--checkpoint)")
    paths = {name: Path(path).expanduser() for name, path in checkpoints.items() if path}
    for name, path in paths.items():  # before any long work
        if not path.is_file():
            hint = DEMO_TRAIN_HINT if data_root is None else "check the path"
            raise FileNotFoundError(f"no {name} checkpoint at {path}: {hint}")
    cache = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    log(f"dataset: {'generating/locating the demo set' if data_root is None else data_root}")
    split = load_split(data_root, dataset, trial, progress)
    log(f"dataset: {split.label} at {split.root}, {len(split.records)} test images")
    digests = digest_index(split.records, progress)
    models = {}
    for name in (n for n in MODEL_NAMES if n in paths):
        path = paths[name]
        log(f"model {name}: loading {path}")
        model = load_model(path, device=device)
        digest = checkpoint_digest(path)
        features, feature_path = cached_features(model, digest, split, cache, device, progress,
                                                 desc=f"{name} test features")
        log(f"model {name}: {features.features.shape[1]}-d features of "
            f"{len(features.features)} images ({feature_path})")
        models[name] = LoadedModel(name, model, path, digest, features)
    return AppContext(split, models, digests, cache, Path(results_dir))
