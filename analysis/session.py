"""An analysis session: a dataset's test split, trained models with their features, and the
analyses the app shows, memoised. Usable from a notebook as from the app.

:func:`build_session` does the start-up work, one phase at a time, each reported with its
time: the dataset (the generated demo set unless a data root is given), the test images'
digests (an uploaded file whose bytes equal a test image is known to be that image: its
identity and camera, hence its AP), each model through ``cycletrans.load_model`` with its
test features (``analysis.feature_store``).

Torch work on a model holds that model's lock: Grad-CAM registers hooks on the model's layers,
which must not see another request's forward pass.

Example (the demo set and the shipped checkpoints):
    >>> session = build_session()  # doctest: +SKIP
    >>> query = session.query("/path/to/cam3/0001/0001.jpg", "infrared")  # doctest: +SKIP
    >>> session.search("CycleTrans", query, top_k=10).ap  # doctest: +SKIP
    0.82
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

from analysis.failures import query_results
from analysis.feature_store import (
    DatasetSplit,
    cached_features,
    checkpoint_digest,
    digest_index,
    load_split,
)
from analysis.modality_gap import ModalityGap, modality_gap
from analysis.retrieval import (
    CrossModality,
    SearchResult,
    cross_modality,
    modality_halves,
    search,
)
from analysis.tsne import TSNECache
from cycletrans.data.images import NO_IMAGE, ImageInputError, file_digest, load_image
from cycletrans.data.records import ImageRecord
from cycletrans.data.transforms import image_batch
from cycletrans.engine.inference import FeatureSet
from cycletrans.evaluation import rank_metrics
from cycletrans.modality import MODALITIES, modality_index, modality_name

BASELINE, NOCYCLE, CYCLETRANS = MODEL_NAMES = ("Baseline", "CycleTrans (no cycle)", "CycleTrans")
REPO_ROOT = Path(__file__).resolve().parent.parent
CHECKPOINT_DIR = REPO_ROOT / "assets" / "checkpoints"
RESULTS_DIR = REPO_ROOT / "assets" / "results"
DEFAULT_CHECKPOINTS = {
    BASELINE: CHECKPOINT_DIR / "baseline.safetensors",
    NOCYCLE: CHECKPOINT_DIR / "nocycle.safetensors",
    CYCLETRANS: CHECKPOINT_DIR / "full.safetensors",
}
DEMO_TRAIN_HINT = (
    "the demo checkpoints are trained with `python -m cycletrans train --preset "
    "demo --variant V` (V = baseline, dmm, full) and shipped as "
    "assets/checkpoints/{baseline,nocycle,full}.safetensors; or pass "
    "--checkpoint, --nocycle-checkpoint, --baseline-checkpoint"
)
COLOUR_SPREAD = 0.02  # mean channel spread (max - min, fraction of 255) above which an image
# has colour: infrared images have three equal channels (0; JPEG noise stays near 0.005), the
# demo set's visible images 0.04 or more
__all__ = [
    "BASELINE",
    "CYCLETRANS",
    "MODALITIES",
    "MODEL_NAMES",
    "NOCYCLE",
    "Session",
    "build_session",
    "modality_name",
]


def default_cache_dir() -> Path:
    """``<cycletrans cache>/app`` (``$CYCLETRANS_CACHE`` or ``~/.cache/cycletrans``)."""
    from cycletrans.engine.data import cache_dir

    return cache_dir() / "app"


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
        device = next(self.model.parameters()).device
        with self.lock:
            batch = image_batch(image, self.model.preprocessing).to(device)
            return self.model.embed(batch, modality)[0].cpu().numpy()


def channel_spread(image: Image.Image) -> float:
    """Mean over pixels of (largest - smallest channel) / 255: 0 for a grey image."""
    small = np.asarray(image.convert("RGB").resize((32, 64), Image.Resampling.BOX), np.int16)
    return float((small.max(axis=2) - small.min(axis=2)).mean() / 255.0)


@dataclass
class Query:
    """A query image: its file, modality, its test record when the file is a test image,
    a note (how it was resolved) and a warning (what may mislead in its results)."""

    path: Path
    modality: str
    index: int | None = None
    record: ImageRecord | None = None
    note: str = ""
    warning: str = ""
    _image: Image.Image | None = None

    @property
    def image(self) -> Image.Image:
        """The RGB image (read through the safe loader on first use)."""
        if self._image is None:
            self._image = load_image(self.path)
        return self._image


class Session:
    """Everything the analyses read: the split, the models, the digest index, memoised results.

    Args:
        split: the test split.
        models: model name (``MODEL_NAMES``) -> loaded model; ``CycleTrans`` is required.
        digests: test images' SHA-256 -> index in ``split.records``.
        cache_dir: the session's cache folder (features, the app's media).
        results_dir: where reproduced ablation tables are looked up.
    """

    def __init__(
        self,
        split: DatasetSplit,
        models: Mapping[str, LoadedModel],
        digests: Mapping[str, int],
        cache_dir: Path,
        results_dir: Path = RESULTS_DIR,
    ) -> None:
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

    def relative(self, path: str | Path) -> str:
        """A test image's path relative to the dataset root (what the app shows)."""
        return Path(path).relative_to(self.split.root).as_posix()

    def cameras(self, modality: str) -> list[int]:
        """Cameras of the test images of ``modality``."""
        code = modality_index(modality)
        return sorted({r.cam for r in self.split.records if r.modality == code})

    # queries ---------------------------------------------------------------------------
    def query(self, path: str | Path | None, modality: str) -> Query:
        """Resolve an input file: a test image (by its bytes) or a new image (checked now).

        A test image's own modality wins over ``modality`` (the note says so); a new image
        whose channels contradict ``modality`` gets a warning.
        """
        asked = modality_name(modality)
        if path is None or str(path) == "":
            raise ImageInputError(NO_IMAGE)
        path = Path(path)
        index = self.digests.get(file_digest(path)) if path.is_file() else None
        if index is None:
            query = Query(path, asked)
            query.warning = modality_warning(query.image, asked)
            return query
        record = self.split.records[index]
        note = ""
        if modality_name(record.modality) != asked:
            note = (
                f"this is a {modality_name(record.modality)} test image: searched as "
                f"{modality_name(record.modality)} (not {asked})"
            )
        return Query(path, modality_name(record.modality), index, record, note)

    def test_query(self, index: int) -> Query:
        """The test image at ``index`` of the split as a query."""
        if not 0 <= index < len(self.split.records):
            raise ValueError(
                f"test image index must be in 0..{len(self.split.records) - 1}, got {index}"
            )
        record = self.split.records[index]
        return Query(Path(record.path), modality_name(record.modality), index, record)

    def query_feature(self, name: str, query: Query) -> np.ndarray:
        """``[D]`` feature of the query for model ``name`` (cached for test images)."""
        entry = self.model(name)
        if query.index is not None:
            return entry.features.features[query.index]
        return entry.embed(query.image, query.modality)

    def random_query(
        self, modality: str, seed: int | None = None, matched_only: bool = True
    ) -> Query:
        """A random test image of ``modality``; ``matched_only``: one with a true match in the
        gallery the protocol ranks it against."""
        modality = modality_name(modality)
        candidates = np.flatnonzero(self.modalities == modality_index(modality))
        if matched_only:
            cross = self.cross(CYCLETRANS, modality)
            candidates = cross.query_index[self.cross_metrics(CYCLETRANS, modality)["valid"]]
        if not len(candidates):
            raise ValueError(
                f"the test split has no {modality} image"
                + (" with a true match" if matched_only else "")
            )
        return self.test_query(int(np.random.default_rng(seed).choice(candidates)))

    def identity_query(self, identity: Any, modality: str, seed: int | None = None) -> Query:
        """A random test image of person ``identity``, in ``modality`` if it has one there."""
        try:
            pid = int(identity)
        except (TypeError, ValueError):
            raise ValueError(f"choose a test identity, got {identity!r}") from None
        images = [i for i, r in enumerate(self.split.records) if r.pid == pid]
        if not images:
            raise ValueError(f"identity {pid} is not in the test split")
        same = [i for i in images if self.split.records[i].modality == modality_index(modality)]
        chosen = same or images
        return self.test_query(chosen[int(np.random.default_rng(seed).integers(len(chosen)))])

    @property
    def modalities(self) -> np.ndarray:
        """``[N]`` modality code of every test image."""
        return np.array([r.modality for r in self.split.records])

    # retrieval -------------------------------------------------------------------------
    def cross(self, name: str, query_modality: str) -> CrossModality:
        """Model ``name``'s test images of ``query_modality`` against the other modality, with
        their distance matrix (memoised)."""
        modality = modality_name(query_modality)
        features = self.model(name).features
        return self.memo(
            ("cross", name, modality),
            lambda: cross_modality(
                features,
                modality,
                halves=self.memo(("halves", name), lambda: modality_halves(features)),
            ),
        )

    def cross_metrics(
        self, name: str, query_modality: str, cams: list[int] | None = None
    ) -> dict[str, Any]:
        """``rank_metrics`` of every ``query_modality`` test image (or of those from ``cams``)
        against the other modality (memoised)."""
        modality = modality_name(query_modality)
        key = ("metrics", name, modality, tuple(cams) if cams else None)

        def compute() -> dict[str, Any]:
            cross = self.cross(name, modality)
            queries, gallery = cross.queries, cross.gallery
            rows = np.isin(queries.cams, cams) if cams else np.ones(len(queries.ids), bool)
            return rank_metrics(
                cross.distances[rows],
                queries.ids[rows],
                gallery.ids,
                queries.cams[rows],
                gallery.cams,
                self.split.protocol,
            )

        return self.memo(key, compute)

    def query_results(self, name: str, modality: str) -> pd.DataFrame:
        """Per-query AP / first hit of every ``modality`` test image (``analysis.failures``'
        columns; ``query`` indexes the modality's queries)."""
        modality = modality_name(modality)
        queries = self.cross(name, modality).queries
        return self.memo(
            ("results", name, modality),
            lambda: query_results(
                self.cross_metrics(name, modality), queries.paths, queries.ids, queries.cams
            ),
        )

    def search(self, name: str, query: Query, top_k: int) -> SearchResult:
        """Rank the other modality's test images for ``query`` with model ``name``.

        A test query uses its row of the split's distance matrix, so its AP is exactly the one
        of the whole-split evaluation (the Failure cases tab).
        """
        cross, record = self.cross(name, query.modality), query.record
        return search(
            self.query_feature(name, query),
            cross.gallery,
            top_k=top_k,
            protocol=self.split.protocol,
            query_pid=record.pid if record else None,
            query_cam=record.cam if record else None,
            distances=cross.row(query.index) if query.index is not None else None,
        )

    # modality gap ----------------------------------------------------------------------
    def gap(self, name: str) -> ModalityGap:
        """Modality-gap statistics (cosine distances) of model ``name`` over the test split."""
        features = self.model(name).features
        return self.memo(
            ("gap", name),
            lambda: modality_gap(features.features, features.ids, features.modalities),
        )


def modality_warning(image: Image.Image, modality: str) -> str:
    """A warning when an image's channels contradict its claimed modality, else ""."""
    spread = channel_spread(image)
    if modality == "infrared" and spread > COLOUR_SPREAD:
        return (
            "this image has colour (its channels differ), but infrared images are grey: "
            "searched as infrared against the visible gallery, so a colour image can look "
            "like a perfect cross-modal match of itself. Choose 'visible' if it is one."
        )
    if modality == "visible" and spread <= COLOUR_SPREAD / 2:
        return (
            "this image is grey (its three channels are equal), like an infrared image: "
            "searched as visible against the infrared gallery. Choose 'infrared' if it is "
            "one."
        )
    return ""


@contextmanager
def phase(log: Callable[[str], None], name: str) -> Iterator[dict[str, str]]:
    """Log ``name: <detail> (<seconds> s)`` when the block ends; the block fills ``detail``."""
    start = time.perf_counter()
    detail = {"text": ""}
    yield detail
    log(f"{name}: {detail['text']} ({time.perf_counter() - start:.1f} s)")


def build_session(
    data_root: str | Path | None = None,
    dataset: str | None = None,
    checkpoints: Mapping[str, str | Path | None] | None = None,
    trial: int = 1,
    cache_dir: str | Path | None = None,
    device: str = "cpu",
    progress: bool = True,
    log: Callable[[str], None] = print,
    results_dir: str | Path = RESULTS_DIR,
) -> Session:
    """Load the dataset's test split, the models and their (cached) features.

    Args:
        data_root, dataset, trial: the dataset (default: the demo set; ``dataset`` "sysu" or
            "regdb", detected from the folder when None).
        checkpoints: model name (``MODEL_NAMES``) -> ``.safetensors`` path; None values are
            skipped. Default: the shipped demo checkpoints. ``CycleTrans`` is required.
        cache_dir: where features are cached (default :func:`default_cache_dir`).
        device: where the models run.
        progress: progress bars (for a terminal); ``log``: one line per phase with its time.
        results_dir: where reproduced ablation tables are looked up.

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
    with phase(log, "dataset") as done:
        if data_root is None:
            log("dataset: locating the demo set (generated on first use, about a minute)")
        split = load_split(data_root, dataset, trial, progress)
        done["text"] = f"{split.label} at {split.root}, {len(split.records)} test images"
    with phase(log, "test image digests") as done:
        digests = digest_index(split.records, progress)
        done["text"] = f"{len(digests)} images"
    models = {}
    for name in (n for n in MODEL_NAMES if n in paths):
        with phase(log, f"model {name}") as done:
            model = load_model(paths[name], device=device)
            digest = checkpoint_digest(paths[name])
            features, cached = cached_features(
                model, digest, split, cache, device, progress, desc=f"{name} test features"
            )
            done["text"] = f"{paths[name].name}, {features.features.shape[1]}-d features " + (
                "from the cache" if cached else "extracted and cached"
            )
        models[name] = LoadedModel(name, model, paths[name], digest, features)
    return Session(split, models, digests, cache, Path(results_dir))
