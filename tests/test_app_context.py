"""The app's start-up work and handlers without a server: the feature cache and its keys, query
resolution by file bytes, the handlers' argument checks, partial model sets, the command line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from app_helpers import tiny_context, tiny_model, torch_threads
from PIL import Image

import cycletrans
from app import main as app_main
from app import tab_ablations, tab_attention, tab_failures, tab_features, tab_retrieval
from app.context import BASELINE, CYCLETRANS, NOCYCLE, AppContext, build_context
from app.images import ImageInputError, load_image
from cycletrans.modality import modality_name

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("context")


@pytest.fixture(scope="module")
def context(tmp: Path) -> Iterator[AppContext]:
    with torch_threads(1):
        yield tiny_context(tmp)


def rebuild(tmp: Path, checkpoints: dict, **kwargs) -> AppContext:
    return build_context(data_root=tmp / "data", checkpoints=checkpoints, cache_dir=tmp / "cache",
                         progress=False, log=lambda _: None, **kwargs)


def checkpoints(tmp: Path) -> dict[str, Path]:
    return {name: tmp / "checkpoints" / f"{variant}.safetensors"
            for name, variant in ((BASELINE, "baseline"), (NOCYCLE, "dmm"), (CYCLETRANS, "full"))}


def test_features_are_cached_on_disk_and_reused(context: AppContext, tmp: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    cached = sorted((tmp / "cache" / "features").glob("*.npz"))
    assert len(cached) == 3

    def no_extraction(*args, **kwargs):
        raise AssertionError("features were extracted again")

    monkeypatch.setattr("cycletrans.engine.inference.extract_features", no_extraction)
    again = rebuild(tmp, checkpoints(tmp))
    for name in context.models:
        assert np.array_equal(again.model(name).features.features,
                              context.model(name).features.features)


def test_a_changed_checkpoint_gets_new_features(context: AppContext, tmp: Path) -> None:
    folder = tmp / "changed"
    path = folder / "full.safetensors"
    cycletrans.save_model(tiny_model("full", seed=1), path)
    first = rebuild(tmp, {CYCLETRANS: path})
    cycletrans.save_model(tiny_model("full", seed=2), path)  # same path, other weights
    second = rebuild(tmp, {CYCLETRANS: path})
    assert first.model(CYCLETRANS).digest != second.model(CYCLETRANS).digest
    assert not np.allclose(first.model(CYCLETRANS).features.features,
                           second.model(CYCLETRANS).features.features)
    record = second.split.records[0]  # the cached features are the model's embeddings
    entry = second.model(CYCLETRANS)
    expected = entry.embed(load_image(record.path), modality_name(record.modality))
    assert np.allclose(entry.features.features[0], expected, atol=1e-4)


def test_a_changed_dataset_gets_a_new_key(context: AppContext, tmp: Path) -> None:
    copy = tmp / "data-copy"
    shutil.copytree(tmp / "data", copy)
    from app.context import load_split

    before = load_split(copy).key
    first = Path(load_split(copy).records[0].path)
    os.utime(first, ns=(first.stat().st_atime_ns, first.stat().st_mtime_ns + 10**9))
    assert load_split(copy).key != before
    assert load_split(tmp / "data").key != before  # another root, another key


def test_an_uploaded_copy_of_a_test_image_is_recognised(context: AppContext, tmp: Path) -> None:
    record = next(r for r in context.split.records if r.cam == 3)
    upload = tmp / "upload.jpg"
    shutil.copyfile(record.path, upload)
    query = context.query(upload, "infrared")
    assert query.record == record
    assert query.note == ""
    assert context.query(upload, "visible").note.startswith("this is a infrared test image")
    other = tmp / "changed.png"
    Image.open(record.path).save(other)  # same pixels, other bytes
    assert context.query(other, "infrared").record is None


def test_a_new_query_is_embedded_and_searched_without_metrics(context: AppContext,
                                                              tmp: Path) -> None:
    path = tmp / "new.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (70, 30, 3), np.uint8)).save(path)
    result = context.search(CYCLETRANS, context.query(path, "visible"), top_k=3)
    assert result.ap is None
    assert set(result.ranking["cam"]) <= {3, 6}
    assert result.ranking["match"].isna().all()


def test_bad_queries_raise_image_input_errors(context: AppContext, tmp: Path) -> None:
    with pytest.raises(ImageInputError, match="no image given"):
        context.query(None, "infrared")
    (tmp / "bad.jpg").write_text("nope")
    with pytest.raises(ImageInputError, match="not an image file"):
        context.query(tmp / "bad.jpg", "infrared")
    with pytest.raises(ValueError, match="unknown modality"):
        context.query(context.split.records[0].path, "thermal-ish")


def test_handlers_check_their_arguments(context: AppContext) -> None:
    for bad in (0, 51, 2.5, "x", None, True):
        with pytest.raises(ValueError, match="top_k must be"):
            tab_retrieval.check_top_k(bad)
    assert tab_retrieval.check_top_k(7.0) == 7
    assert tab_retrieval.check_top_k("7") == 7
    assert [tab_ablations.table_number(t) for t in (2, "2", "II", "Table VI")] == [2, 2, 2, 6]
    with pytest.raises(ValueError, match="Tables I-VI"):
        tab_ablations.table_number("VII")
    with pytest.raises(ValueError, match="identities"):
        tab_features.tsne(context, 1, 0)
    with pytest.raises(ValueError, match="count"):
        tab_failures.failures(context, CYCLETRANS, "infrared", [], 0)
    with pytest.raises(ValueError, match="unknown model"):
        tab_retrieval.search(context, context.split.records[0].path, "visible", "ResNet", 5)
    with pytest.raises(ValueError, match="not a test image"):
        tab_failures.open_query(context, "cam9/0001/0001.jpg")


def test_explain_refuses_a_rank_beyond_the_ranking(context: AppContext) -> None:
    record = next(r for r in context.split.records if r.cam == 3)
    gallery = len(context.cross(CYCLETRANS, "infrared").gallery.ids)
    with pytest.raises(ValueError, match="top_k must be in"):
        tab_attention.explain(context, record.path, "infrared", gallery + 1, CYCLETRANS)


def test_random_and_identity_queries_are_test_images_of_the_modality(context: AppContext
                                                                    ) -> None:
    path, modality = tab_retrieval.random_query(context, "visible", seed=0)
    assert modality == "visible"
    assert context.split.records[context.path_index[path]].modality == 0
    pid = context.split.records[0].pid
    path, modality = tab_retrieval.identity_query(context, pid, "infrared", seed=0)
    assert context.split.records[context.path_index[path]].pid == pid
    with pytest.raises(ValueError, match="not in the test split"):
        tab_retrieval.identity_query(context, 99999, "infrared")


def test_the_app_works_with_a_partial_set_of_models(context: AppContext, tmp: Path) -> None:
    only = rebuild(tmp, {CYCLETRANS: checkpoints(tmp)[CYCLETRANS]})
    assert only.model_names == [CYCLETRANS]
    plots = tab_features.tsne(only, 3, 0)
    assert plots[:3] == (None, None, plots[2])
    assert plots[2] is not None
    *_, summary = tab_failures.failures(only, CYCLETRANS, "infrared", [], 3)
    assert "No Baseline model is loaded" in summary
    with pytest.raises(ValueError, match="CycleTrans"):
        rebuild(tmp, {BASELINE: checkpoints(tmp)[BASELINE]})


def test_missing_checkpoint_is_a_clear_error(context: AppContext, tmp: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(FileNotFoundError, match="no CycleTrans checkpoint"):
        rebuild(tmp, {CYCLETRANS: tmp / "nowhere.safetensors"})
    code = app_main.main(["--data-root", str(tmp / "data"), "--checkpoint",
                          str(tmp / "nowhere.safetensors"), "--cache-dir", str(tmp / "cache")])
    assert code == 2
    assert "no CycleTrans checkpoint" in capsys.readouterr().err


def test_command_line_flags(tmp: Path) -> None:
    args = app_main.parse_args([])
    assert (args.host, args.share, args.port) == ("127.0.0.1", False, None)
    assert set(app_main.checkpoints_from_args(args).values()) == {
        REPO / "assets" / "checkpoints" / f"{n}.safetensors"
        for n in ("baseline", "nocycle", "full")}
    real = app_main.parse_args(["--data-root", "/data", "--checkpoint", "c.safetensors"])
    assert app_main.checkpoints_from_args(real) == {CYCLETRANS: "c.safetensors", NOCYCLE: None,
                                                   BASELINE: None}
    for bad in (["--data-root", "/data"], ["--trial", "11"], ["--dataset", "regdb"]):
        with pytest.raises(SystemExit):
            app_main.parse_args(bad)


def test_importing_the_app_does_no_work_and_help_runs() -> None:
    probe = ("import sys, app.main; print('torch' in sys.modules, 'gradio' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    assert out.split() == ["False", "False"]
    helped = subprocess.run([sys.executable, "app.py", "--help"], cwd=REPO, capture_output=True,
                            text=True, check=True).stdout
    for flag in ("--dataset", "--data-root", "--checkpoint", "--nocycle-checkpoint",
                 "--baseline-checkpoint", "--trial", "--host", "--port", "--share",
                 "--cache-dir"):
        assert flag in helped


def test_a_regdb_layout_dataset_is_served_with_its_protocol(tmp: Path) -> None:
    from app_helpers import TINY_PRESET

    from cycletrans.data.synth import generate

    root = tmp / "regdb"
    generate(root, TINY_PRESET, seed=0, layout="regdb", progress=False)
    path = tmp / "regdb-full.safetensors"
    cycletrans.save_model(tiny_model("full"), path)
    with torch_threads(1):
        regdb = build_context(data_root=root, checkpoints={CYCLETRANS: path},
                              cache_dir=tmp / "cache", progress=False, log=lambda _: None)
        assert regdb.split.protocol == "regdb"
        thermal = next(r for r in regdb.split.records if r.modality == 1)
        _, summary, details, *_ = tab_retrieval.search(regdb, thermal.path, "infrared",
                                                       CYCLETRANS, 5)
    assert details["result"]["ap"] is not None
    assert {item["cam"] for item in details["result"]["ranking"]} == {1}
    assert "RegDB protocol" in summary
    assert tab_failures.query_cameras(regdb, "infrared") == [2]
