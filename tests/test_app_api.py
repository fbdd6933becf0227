"""The app's public API through gradio_client: /search, /explain, /tsne, /ablation, /failures,
and what the server serves.

One app for the module (the ``tiny_app`` session of tests/conftest.py: a tiny generated
SYSU-MM01-layout set, three tiny random-init checkpoints, a reproduced Table II in a results
folder). The client does not download result files; the server runs in this process, so their
paths are checked here.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from app_helpers import running_app, torch_threads
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from analysis.session import BASELINE, CYCLETRANS, NOCYCLE, Session
from cycletrans.data.images import MAX_PIXELS

ENDPOINTS = {"/search", "/explain", "/tsne", "/ablation", "/failures"}
VISIBLE_CAMS = {1, 2, 4, 5}


@pytest.fixture(scope="module")
def session(tiny_app: Session) -> Iterator[Session]:
    with torch_threads(1):
        yield tiny_app


@pytest.fixture(scope="module")
def client(session: Session) -> Iterator[Client]:
    with running_app(session) as url:
        yield Client(url, verbose=False, download_files=False)


def first_image(session: Session, cam: int) -> str:
    """The first test image of camera ``cam``."""
    return next(r.path for r in session.split.records if r.cam == cam)


def search(
    client: Client, path: str, modality: str = "infrared", model: str = CYCLETRANS, top_k: int = 5
) -> tuple:
    return client.predict(handle_file(path), modality, model, top_k, api_name="/search")


def served_file(item: dict) -> Path:
    """The server-side file of a gallery item (the client does not download files)."""
    return Path(item["image"]["path"])


def cams_of(gallery: list[dict]) -> set[int]:
    return {int(item["caption"].split("cam ")[1].split(" ")[0]) for item in gallery}


def fetch(client: Client, path: str | Path) -> urllib.request.addinfourl:
    return urllib.request.urlopen(client.src.rstrip("/") + "/gradio_api/file=" + str(path))


def test_the_five_endpoints_are_named_with_the_contract_parameters(client: Client) -> None:
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(api) == ENDPOINTS
    names = [p["parameter_name"] for p in api["/search"]["parameters"]]
    assert names == ["image", "modality", "model", "top_k"]


def test_search_of_a_test_image_gives_k_captioned_results_and_its_ap(
    client: Client, session: Session
) -> None:
    path = first_image(session, 6)
    gallery, summary, details = search(client, path, top_k=5)
    assert len(gallery) == 5  # one ranking per reply: its files are all the client fetches
    for rank, item in enumerate(gallery, start=1):
        assert item["caption"].startswith(f"#{rank} ")
        assert "id=" in item["caption"]
        assert " · dist " in item["caption"]  # the quantity that ranks
        assert ("✓" in item["caption"]) != ("✗" in item["caption"])
        assert served_file(item).is_file()
    distances = [entry["distance"] for entry in details["result"]["ranking"]]
    assert distances == sorted(distances)
    assert cams_of(gallery) <= VISIBLE_CAMS  # the other modality only
    result = details["result"]
    assert details["query"]["test_image"] is True
    assert 0.0 < result["ap"] <= 1.0
    assert 1 <= result["first_hit"] <= result["first_position"]
    assert "AP" in summary
    assert "Euclidean distance" in summary
    assert [c["model"] for c in details["compared"]] == [BASELINE]
    # the same AP as the failure analysis of the whole split
    table = session.query_results(CYCLETRANS, "infrared")
    assert result["ap"] == pytest.approx(table.loc[table["path"] == path, "ap"].item())


def test_result_thumbnails_are_small_marked_and_the_same_file_each_time(
    client: Client, session: Session
) -> None:
    path = first_image(session, 3)
    first, _, details = search(client, path, top_k=8)
    again, *_ = search(client, path, top_k=8)
    assert [served_file(i).name for i in first] == [served_file(i).name for i in again]
    for item, entry in zip(first, details["result"]["ranking"], strict=True):
        name = served_file(item).name
        assert name.endswith("-match.jpg" if entry["match"] else "-wrong.jpg")
        with Image.open(served_file(item)) as thumbnail:
            assert thumbnail.height == 170  # 160 pixels and a 5-pixel frame
            frame = np.asarray(thumbnail.convert("RGB"))[thumbnail.height // 2, 1]
        assert (frame[1] > frame[0]) == entry["match"]  # green frame for a match, else red
        assert served_file(item).stat().st_size < 20_000


def test_camera_3_queries_never_see_camera_2(client: Client, session: Session) -> None:
    gallery, *_ = search(client, first_image(session, 3), top_k=50)
    assert 2 not in cams_of(gallery)
    assert len(gallery) == min(50, sum(r.cam in (1, 4, 5) for r in session.split.records))


def test_visible_queries_search_the_infrared_images(client: Client, session: Session) -> None:
    gallery, _, details = search(client, first_image(session, 1), modality="visible")
    assert cams_of(gallery) <= {3, 6}
    assert details["result"]["ap"] is not None


def test_test_image_uploaded_with_the_wrong_modality_is_searched_as_its_own(
    client: Client, session: Session
) -> None:
    _, summary, details = search(client, first_image(session, 3), modality="visible")
    assert details["query"]["modality"] == "infrared"
    assert "searched as infrared" in summary


def test_unknown_upload_is_searched_without_identity(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "stranger.png"
    grey = np.random.default_rng(1).integers(0, 255, (90, 40, 1), np.uint8).repeat(3, axis=2)
    Image.fromarray(grey).save(path)
    gallery, summary, details = search(client, str(path), top_k=4)
    assert len(gallery) == 4
    assert not any("✓" in i["caption"] or "✗" in i["caption"] for i in gallery)
    assert details["result"]["ap"] is None
    assert "identity is unknown" in summary
    assert details["query"]["warning"] is None  # a grey image searched as infrared is fine


def test_a_colour_image_searched_as_infrared_gets_a_warning(
    client: Client, session: Session, tmp_path: Path
) -> None:
    colour = tmp_path / "colour.png"  # a visible test image, re-encoded (not a test file)
    Image.open(first_image(session, 1)).save(colour)
    _, summary, details = search(client, str(colour), modality="infrared")
    assert "this image has colour" in details["query"]["warning"]
    assert "⚠" in summary
    _, _, details = search(client, str(colour), modality="visible")
    assert details["query"]["warning"] is None


@pytest.mark.parametrize("model", [BASELINE, NOCYCLE, CYCLETRANS])
def test_every_model_can_search(client: Client, session: Session, model: str) -> None:
    gallery, _, details = search(client, first_image(session, 6), model=model, top_k=3)
    assert len(gallery) == 3
    assert details["result"]["model"] == model


def test_explain_gives_grad_cam_for_every_model_and_the_anchor_maps(
    client: Client, session: Session
) -> None:
    cams, anchors, summary = client.predict(
        handle_file(first_image(session, 6)), "infrared", 2, CYCLETRANS, api_name="/explain"
    )
    captions = [item["caption"] for item in cams]
    expected = [
        f"{role} · {name}"
        for name in (BASELINE, NOCYCLE, CYCLETRANS)
        for role in ("query", "match")
    ]
    assert [c.split(" · flat")[0] for c in captions] == expected
    assert all(Image.open(served_file(item)).size == (128, 256) for item in cams)  # drawn large
    assert len(anchors) == 2 * 3  # two KCM models x 3 anchors
    assert "rank 2" in summary
    assert "Anchor attention peak" in summary
    assert ("Flat maps" in summary) == any("flat map" in c for c in captions)
    agreement = re.search(r"one map\): (.*)", summary).group(1).split("\n")[0]
    values = {
        name: float(value)
        for name, value in (part.rsplit(" ", 1) for part in agreement.strip().split(" · "))
    }
    assert set(values) == {NOCYCLE, CYCLETRANS}
    collapsed = [name for name, value in values.items() if value >= 0.99]
    assert ("**One map:**" in summary) == bool(collapsed)


def test_tsne_gives_a_plot_per_model_and_the_gap_table(client: Client) -> None:
    *plots, table, h1, h2, h3 = client.predict(4, 0, api_name="/tsne")
    assert len(plots) == 3
    assert all(plot is not None for plot in (*plots, h1, h2, h3))
    assert [row[0] for row in table["data"]] == [BASELINE, NOCYCLE, CYCLETRANS]
    assert "MMD" in table["headers"]
    axes = [json.loads(h["plot"])["layout"]["xaxis"]["range"] for h in (h1, h2, h3)]
    assert axes[0] == axes[1] == axes[2]  # one shared cosine-distance axis


def test_ablation_pairs_each_paper_table_with_its_reproduction(client: Client) -> None:
    paper, _chart, comparison, comparison_chart, status = client.predict(
        2, "mAP", "table2.json", None, api_name="/ablation"
    )
    assert paper["headers"][0] == "Method"
    assert len(paper["data"]) == 7
    assert "Rank-1 (diff)" in comparison["headers"]
    assert comparison_chart is not None
    assert "Reproduced Table II" in status
    # no reproduction chosen: Table II's own is found; Table I has none
    *_, status = client.predict(2, "", "", None, api_name="/ablation")
    assert "Reproduced Table II" in status
    paper, _, comparison, _, status = client.predict(1, "", "", None, api_name="/ablation")
    assert paper["headers"][:3] == ["setting", "k", "n"]
    assert "Not reproduced" in status
    assert comparison["data"] in ([], [[]], [["", ""]]) or not comparison["headers"][0]


def test_ablation_compares_an_upload_with_its_own_paper_table(
    client: Client, session: Session
) -> None:
    upload = handle_file(str(session.results_dir / "table2.json"))
    *_, comparison, _, status = client.predict(2, "", "", upload, api_name="/ablation")
    assert "Rank-1 (ours)" in comparison["headers"]
    assert "table2.json" in status
    *_, status = client.predict(4, "", "", upload, api_name="/ablation")
    assert "reproduces Table II**, not Table IV" in status


def test_a_malformed_upload_is_named_in_the_status_and_the_paper_table_stays(
    client: Client, tmp_path: Path
) -> None:
    bad = tmp_path / "hello.json"
    bad.write_text('{"hello": 1}')
    paper, chart, _, _, status = client.predict(
        2, "", "", handle_file(str(bad)), api_name="/ablation"
    )
    assert len(paper["data"]) == 7
    assert chart is not None
    assert "hello.json is not a reproduced table" in status
    assert "/tmp" not in status  # no server paths


def test_failures_lists_the_worst_queries_and_the_comparison(client: Client) -> None:
    worst, ranked, fixed, broken, summary = client.predict(
        CYCLETRANS, "infrared", [], 5, api_name="/failures"
    )
    headers = worst["headers"]
    aps = [row[headers.index("AP")] for row in worst["data"]]
    assert len(aps) == 5
    assert aps == sorted(aps)
    assert all(len(row[headers.index("top-10 ids")].split()) == 10 for row in worst["data"])
    assert ranked[0]["caption"].startswith("query")
    assert len(ranked) == 11
    assert "fixed" in summary
    assert "broken" in summary
    assert "Retrieval and Attention tabs" in summary
    assert f"first match, {BASELINE}" in fixed["headers"]
    assert "AP change" in broken["headers"]
    worst, *_ = client.predict(CYCLETRANS, "infrared", ["3"], 50, api_name="/failures")
    assert {row[worst["headers"].index("cam")] for row in worst["data"]} == {3}
    worst, *_ = client.predict(BASELINE, "visible", ["1", "4"], 50, api_name="/failures")
    assert {row[worst["headers"].index("cam")] for row in worst["data"]} == {1, 4}


def bad_upload(tmp: Path, kind: str) -> str:
    path = tmp / f"{kind}.png"
    if kind == "text":
        path.write_text("hello")
    elif kind == "corrupt":
        whole = tmp / "whole.png"
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 32, 3), np.uint8)).save(
            whole
        )
        path.write_bytes(whole.read_bytes()[:200])
    elif kind == "tiny":
        Image.new("RGB", (3, 3)).save(path)
    elif kind == "bomb":
        Image.new("1", (10_000, 10_000)).save(path)  # 100 M pixels, a few kB on disk
    return str(path)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("text", "not an image file"),
        ("corrupt", "corrupt or truncated"),
        ("tiny", "too small"),
        ("bomb", f"too many to decode safely \\(the limit is {MAX_PIXELS:,}"),
    ],
)
def test_bad_uploads_give_a_clear_error_and_the_app_keeps_serving(
    client: Client, session: Session, tmp_path: Path, kind: str, message: str
) -> None:
    with pytest.raises(AppError, match=message):
        search(client, bad_upload(tmp_path, kind))
    with pytest.raises(AppError, match=message):
        client.predict(
            handle_file(bad_upload(tmp_path, kind)), "infrared", 1, CYCLETRANS, api_name="/explain"
        )
    gallery, *_ = search(client, first_image(session, 6))
    assert len(gallery) == 5


@pytest.mark.parametrize("mode", ["RGBA", "P", "I;16", "L"])
def test_unusual_image_modes_are_converted_and_searched(
    client: Client, tmp_path: Path, mode: str
) -> None:
    pixels = np.random.default_rng(2).integers(0, 255, (80, 40, 3), np.uint8)
    image = Image.fromarray(pixels)
    if mode == "I;16":
        image = Image.fromarray(pixels[..., 0].astype(np.uint16) * 200)
    else:
        image = image.convert(mode)
    path = tmp_path / "input.png"
    image.save(path)
    gallery, *_ = search(client, str(path), top_k=3)
    assert len(gallery) == 3


def test_bad_arguments_give_clear_errors(client: Client, session: Session) -> None:
    path = first_image(session, 6)
    with pytest.raises(AppError, match="ResNet"):  # not one of the model names
        client.predict(handle_file(path), "infrared", "ResNet", 5, api_name="/search")
    with pytest.raises(AppError, match="less than minimum value 1"):
        search(client, path, top_k=0)
    with pytest.raises(AppError, match="not in the list of choices"):
        client.predict(9, "", "", None, api_name="/ablation")
    with pytest.raises(AppError, match="has no metric"):
        client.predict(2, "Speed", "", None, api_name="/ablation")
    with pytest.raises(AppError, match="read from"):
        client.predict(2, "", "../../etc/passwd.json", None, api_name="/ablation")
    with pytest.raises(AppError, match=r"infrared queries come from cameras \[3, 6\]"):
        client.predict(CYCLETRANS, "infrared", ["1"], 5, api_name="/failures")
    with pytest.raises(AppError, match="less than minimum value 2"):
        client.predict(1, 0, api_name="/tsne")


def test_twenty_concurrent_searches_all_succeed(client: Client, session: Session) -> None:
    paths = [r.path for r in session.split.records if r.modality == 1][:20]
    with ThreadPoolExecutor(max_workers=20) as pool:
        jobs = [pool.submit(search, client, p, "infrared", CYCLETRANS, 5) for p in paths]
        results = [job.result(timeout=120) for job in jobs]
    assert len(results) == 20
    assert all(len(gallery) == 5 for gallery, *_ in results)
    assert all(details["result"]["ap"] is not None for _, _, details in results)


def test_only_the_images_the_ui_shows_are_served(client: Client, session: Session) -> None:
    gallery, *_ = search(client, first_image(session, 6), top_k=2)
    with fetch(client, served_file(gallery[0])) as response:
        assert response.status == 200
        assert "immutable" in response.headers["Cache-Control"]  # browsers fetch it once
    repo_file = Path(__file__).resolve().parents[1] / "app.py"
    features = next((session.cache_dir / "features").glob("*.npz"))
    for secret in (repo_file, features, Path(first_image(session, 1))):
        with pytest.raises(urllib.error.HTTPError) as refused:
            fetch(client, secret)
        assert refused.value.code in (403, 404)
