"""The analysis session and the app's handlers without a server: the feature cache and its keys,
query resolution by file bytes, the overview, the handlers' argument checks, partial model sets,
start-up phases and the command line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from app_helpers import tiny_model, torch_threads
from PIL import Image

import cycletrans
from analysis import overview
from analysis.feature_store import load_split
from analysis.retrieval import search
from analysis.session import BASELINE, CYCLETRANS, NOCYCLE, Query, Session, build_session
from app import main as app_main
from app import tab_ablations, tab_attention, tab_failures, tab_features, tab_retrieval
from app.formatting import result_line
from app.media import Media
from cycletrans.data.images import ImageInputError, load_image
from cycletrans.data.records import ImageRecord
from cycletrans.engine.inference import FeatureSet
from cycletrans.modality import modality_name

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def context(tiny_app: Session) -> Iterator[Session]:
    with torch_threads(1):
        yield tiny_app


@pytest.fixture(scope="module")
def tmp(context: Session) -> Path:
    return context.split.root.parent


@pytest.fixture(scope="module")
def media(tmp: Path) -> Media:
    return Media(tmp / "cache" / "media")


def rebuild(tmp: Path, checkpoints: dict, **kwargs) -> Session:
    return build_session(
        data_root=tmp / "data",
        checkpoints=checkpoints,
        cache_dir=tmp / "cache",
        progress=False,
        log=lambda _: None,
        **kwargs,
    )


def checkpoints(tmp: Path) -> dict[str, Path]:
    return {
        name: tmp / "checkpoints" / f"{variant}.safetensors"
        for name, variant in ((BASELINE, "baseline"), (NOCYCLE, "dmm"), (CYCLETRANS, "full"))
    }


def test_features_are_cached_on_disk_and_reused(
    context: Session, tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = sorted((tmp / "cache" / "features").glob("*.npz"))
    assert len(cached) == 3

    def no_extraction(*args, **kwargs):
        raise AssertionError("features were extracted again")

    monkeypatch.setattr("cycletrans.engine.inference.extract_features", no_extraction)
    again = rebuild(tmp, checkpoints(tmp))
    for name in context.models:
        assert np.array_equal(
            again.model(name).features.features, context.model(name).features.features
        )


def test_each_modality_of_the_test_features_is_held_once(context: Session) -> None:
    # records are visible first, so each modality's half of a model's features (both search
    # directions use them) is a view of the features, not another copy
    modalities = context.modalities
    assert (np.diff(modalities) >= 0).all()
    assert set(modalities) == {0, 1}
    for name in context.model_names:
        features = context.model(name).features.features
        for modality in ("infrared", "visible"):
            cross = context.cross(name, modality)
            for half in (cross.queries, cross.gallery):
                assert np.shares_memory(half.features, features)


def test_a_changed_checkpoint_gets_new_features(context: Session, tmp: Path) -> None:
    folder = tmp / "changed"
    path = folder / "full.safetensors"
    cycletrans.save_model(tiny_model("full", seed=1), path)
    first = rebuild(tmp, {CYCLETRANS: path})
    cycletrans.save_model(tiny_model("full", seed=2), path)  # same path, other weights
    second = rebuild(tmp, {CYCLETRANS: path})
    assert first.model(CYCLETRANS).digest != second.model(CYCLETRANS).digest
    assert not np.allclose(
        first.model(CYCLETRANS).features.features, second.model(CYCLETRANS).features.features
    )
    record = second.split.records[0]  # the cached features are the model's embeddings
    entry = second.model(CYCLETRANS)
    expected = entry.embed(load_image(record.path), modality_name(record.modality))
    assert np.allclose(entry.features.features[0], expected, atol=1e-4)


def test_a_changed_dataset_gets_a_new_key(context: Session, tmp: Path) -> None:
    copy = tmp / "data-copy"
    shutil.copytree(tmp / "data", copy)
    before = load_split(copy).key
    first = Path(load_split(copy).records[0].path)
    os.utime(first, ns=(first.stat().st_atime_ns, first.stat().st_mtime_ns + 10**9))
    assert load_split(copy).key != before
    assert load_split(tmp / "data").key != before  # another root, another key


def test_an_uploaded_copy_of_a_test_image_is_recognised(context: Session, tmp: Path) -> None:
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


def test_a_new_query_is_embedded_and_searched_without_metrics(context: Session, tmp: Path) -> None:
    path = tmp / "new.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (70, 30, 3), np.uint8)).save(path)
    result = context.search(CYCLETRANS, context.query(path, "visible"), top_k=3)
    assert result.ap is None
    assert set(result.ranking["cam"]) <= {3, 6}
    assert result.ranking["match"].isna().all()


def test_bad_queries_raise_image_input_errors(context: Session, tmp: Path) -> None:
    with pytest.raises(ImageInputError, match="no image given"):
        context.query(None, "infrared")
    (tmp / "bad.jpg").write_text("nope")
    with pytest.raises(ImageInputError, match="not an image file"):
        context.query(tmp / "bad.jpg", "infrared")
    with pytest.raises(ValueError, match="unknown modality"):
        context.query(context.split.records[0].path, "thermal-ish")


def test_handlers_check_their_arguments(context: Session, media: Media) -> None:
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
        tab_failures.failures(context, media, CYCLETRANS, "infrared", [], 0)
    with pytest.raises(ValueError, match="unknown modality"):
        tab_failures.failures(context, media, CYCLETRANS, "x-ray", [], 5)
    with pytest.raises(ValueError, match="unknown model"):
        tab_retrieval.search(context, media, context.split.records[0].path, "visible", "ResNet", 5)
    with pytest.raises(ValueError, match="not a test image"):
        tab_failures.open_query(context, "cam9/0001/0001.jpg")


def test_explain_refuses_a_rank_beyond_the_ranking(context: Session) -> None:
    record = next(r for r in context.split.records if r.cam == 3)
    with pytest.raises(ValueError, match=r"match_rank must be in 1\.\.50"):
        tab_attention.explain(context, record.path, "infrared", 51, CYCLETRANS)


def test_random_and_identity_queries_are_test_images_of_the_modality(context: Session) -> None:
    query = context.random_query("visible", seed=0)
    assert (query.modality, query.record.modality) == ("visible", 0)
    pid = context.split.records[0].pid
    assert context.identity_query(pid, "infrared", seed=0).record.pid == pid
    with pytest.raises(ValueError, match="not in the test split"):
        context.identity_query(99999, "infrared")


def test_random_queries_have_a_true_match_unless_asked_otherwise(context: Session) -> None:
    valid = context.cross_metrics(CYCLETRANS, "visible")["valid"]
    drawn = {context.random_query("visible", seed=s).index for s in range(40)}
    matched = set(context.cross(CYCLETRANS, "visible").query_index[valid])
    assert drawn <= matched
    anything = {
        context.random_query("visible", seed=s, matched_only=False).index for s in range(200)
    }
    assert anything - matched or valid.all()  # unmatched ones come back when asked for


def test_the_list_position_and_the_cmc_rank_of_the_first_match_are_both_known(
    context: Session,
) -> None:
    differ = 0
    for index in context.cross(CYCLETRANS, "infrared").query_index:
        result = context.search(CYCLETRANS, context.test_query(int(index)), top_k=50)
        if result.ap is None:
            continue
        position = int(np.flatnonzero(result.ranking["match"].to_numpy(bool))[0]) + 1
        assert result.first_position == position  # where the list shows its first ✓
        assert result.first_hit <= result.first_position  # CMC: each identity counted once
        differ += result.first_hit < result.first_position
    assert differ  # the tiny set repeats identities before some first matches


def test_a_query_without_a_true_match_says_why() -> None:
    gallery = FeatureSet(
        features=np.eye(3, dtype=np.float32),
        ids=np.array([7, 8, 8]),
        cams=np.array([2, 1, 4]),
        frames=np.ones(3, int),
        modalities=np.zeros(3, int),
        paths=np.array(["a", "b", "c"]),
    )
    query = Query(Path("q.jpg"), "infrared", 0, ImageRecord("q.jpg", 7, 3, 1, 1))
    # identity 7's only visible image is in camera 2, which a camera-3 query skips
    result = search(np.ones(3), gallery, top_k=2, protocol="sysu", query_pid=7, query_cam=3)
    assert result.ap is None
    assert "camera 2) were taken at this query's camera location" in result.no_match
    assert "because all 1 visible images of identity 7" in result_line("M", query, result)
    result = search(np.ones(3), gallery, top_k=2, protocol="sysu", query_pid=9, query_cam=3)
    assert result.no_match == "identity 9 has no visible image in the test split"


def test_the_overview_is_computed_from_the_models(context: Session) -> None:
    table = overview.retrieval_table(context)
    assert list(table["model"]) == [BASELINE, NOCYCLE, CYCLETRANS]
    metrics = context.cross_metrics(BASELINE, "visible")
    assert table.loc[0, "VIS→IR Rank-1"] == pytest.approx(100 * metrics["r1"])
    assert table.loc[0, "VIS→IR mAP"] == pytest.approx(100 * metrics["mAP"])
    assert table[["VIS→VIS Rank-1", "IR→IR Rank-1"]].notna().all().all()
    assert "modality gap" in overview.gap_sentence(table)
    example = overview.example_query(context)
    assert example.query.modality == "infrared"
    assert example.model_first_hit == 1 < example.baseline_first_hit
    assert context.search(CYCLETRANS, example.query, 1).first_hit == 1
    assert context.search(BASELINE, example.query, 1).first_hit == example.baseline_first_hit
    gaps = overview.gap_table(context)
    assert (gaps["cross / same"] > 0).all()
    assert len(overview.tsne_figures(context, count=3)) == 3


def test_the_app_works_with_a_partial_set_of_models(
    context: Session, tmp: Path, media: Media
) -> None:
    only = rebuild(tmp, {CYCLETRANS: checkpoints(tmp)[CYCLETRANS]})
    assert only.model_names == [CYCLETRANS]
    plots = tab_features.tsne(only, 3, 0)
    assert plots[:3] == (None, None, plots[2])
    assert plots[2] is not None
    *_, summary = tab_failures.failures(only, media, CYCLETRANS, "infrared", [], 3)
    assert "No Baseline model is loaded" in summary
    assert overview.example_query(only) is None
    with pytest.raises(ValueError, match="CycleTrans"):
        rebuild(tmp, {BASELINE: checkpoints(tmp)[BASELINE]})


def test_start_up_reports_one_line_per_phase_with_its_time(tmp: Path) -> None:
    lines: list[str] = []
    build_session(
        data_root=tmp / "data",
        checkpoints=checkpoints(tmp),
        cache_dir=tmp / "cache",
        progress=False,
        log=lines.append,
    )
    assert [line.split(":")[0] for line in lines] == [
        "dataset",
        "test image digests",
        f"model {BASELINE}",
        f"model {NOCYCLE}",
        f"model {CYCLETRANS}",
    ]
    assert all(line.endswith(" s)") for line in lines)
    assert all("from the cache" in line for line in lines[2:])


def test_missing_checkpoint_is_a_clear_error(
    context: Session, tmp: Path, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(FileNotFoundError, match="no CycleTrans checkpoint"):
        rebuild(tmp, {CYCLETRANS: tmp / "nowhere.safetensors"})
    code = app_main.main(
        [
            "--data-root",
            str(tmp / "data"),
            "--checkpoint",
            str(tmp / "nowhere.safetensors"),
            "--cache-dir",
            str(tmp / "cache"),
        ]
    )
    assert code == 2
    assert "no CycleTrans checkpoint" in capsys.readouterr().err


def test_command_line_flags(tmp: Path) -> None:
    args = app_main.parse_args([])
    assert (args.host, args.share, args.port) == ("127.0.0.1", False, None)
    assert set(app_main.checkpoints_from_args(args).values()) == {
        REPO / "assets" / "checkpoints" / f"{n}.safetensors"
        for n in ("baseline", "nocycle", "full")
    }
    real = app_main.parse_args(["--data-root", "/data", "--checkpoint", "c.safetensors"])
    assert app_main.checkpoints_from_args(real) == {
        CYCLETRANS: "c.safetensors",
        NOCYCLE: None,
        BASELINE: None,
    }
    for bad in (["--data-root", "/data"], ["--trial", "11"], ["--dataset", "regdb"]):
        with pytest.raises(SystemExit):
            app_main.parse_args(bad)


MEMORY_PROBE = """
import sys
from concurrent.futures import ThreadPoolExecutor
from app.main import return_freed_memory
from cycletrans.data import images
if sys.argv[2] == "fix":
    assert return_freed_memory()
one = images.decoded_bytes("RGBA", (1600, 1600))
images.BUDGET = images.DecodeBudget(one)  # one decode at a time
def peak():
    status = open("/proc/self/status").read().split("VmHWM:")[1]
    return int(status.split()[0]) * 1024
before = peak()
with ThreadPoolExecutor(12) as pool:
    list(pool.map(images.load_image, [sys.argv[1]] * 12))
print((peak() - before) / one)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's heap, /proc")
def test_freed_image_memory_goes_back_to_the_system(tmp_path: Path) -> None:
    ramp = np.broadcast_to((np.arange(1600) // 7).astype(np.uint8)[:, None, None], (1600, 1600, 4))
    path = tmp_path / "large.png"
    Image.fromarray(np.ascontiguousarray(ramp), "RGBA").save(path)
    growth = {
        mode: float(
            subprocess.run(
                [sys.executable, "-c", MEMORY_PROBE, str(path), mode],
                cwd=REPO,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        for mode in ("fix", "plain")
    }
    # in units of one decode's bytes (measured: about 4 with the fix, 19 without)
    assert growth["fix"] < 6  # the budget's one decode at a time, and the first use's imports
    assert growth["plain"] > 3 * growth["fix"]  # freed buffers kept in 12 threads' heaps


def test_importing_the_app_does_no_work_and_help_runs() -> None:
    probe = "import sys, app.main; print('torch' in sys.modules, 'gradio' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]
    helped = subprocess.run(
        [sys.executable, "app.py", "--help"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    for flag in (
        "--dataset",
        "--data-root",
        "--checkpoint",
        "--nocycle-checkpoint",
        "--baseline-checkpoint",
        "--trial",
        "--host",
        "--port",
        "--share",
        "--cache-dir",
    ):
        assert flag in helped


def test_a_regdb_layout_dataset_is_served_with_its_protocol(tmp: Path) -> None:
    from app_helpers import TINY_PRESET

    from cycletrans.data.synth import generate

    root = tmp / "regdb"
    generate(root, TINY_PRESET, seed=0, layout="regdb", progress=False)
    path = tmp / "regdb-full.safetensors"
    cycletrans.save_model(tiny_model("full"), path)
    with torch_threads(1):
        regdb = build_session(
            data_root=root,
            checkpoints={CYCLETRANS: path},
            cache_dir=tmp / "cache",
            progress=False,
            log=lambda _: None,
        )
        assert regdb.split.protocol == "regdb"
        thermal = next(r for r in regdb.split.records if r.modality == 1)
        _, _, details = tab_retrieval.search(
            regdb, Media(tmp / "media"), thermal.path, "infrared", CYCLETRANS, 5
        )
    assert details["result"]["ap"] is not None
    assert details["result"]["first_hit"] == details["result"]["first_position"]  # plain CMC
    assert {item["cam"] for item in details["result"]["ranking"]} == {1}
    assert regdb.cameras("infrared") == [2]
