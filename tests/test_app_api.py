"""The app's public API through gradio_client: /search, /explain, /tsne, /ablation, /failures.

One app for the whole module (tests/app_helpers.py): a tiny generated SYSU-MM01-layout set,
three tiny random-init checkpoints, a reproduced Table II in a results folder. The client does
not download result files; the server runs in this process, so their paths are checked here.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from app_helpers import running_app, tiny_context, torch_threads
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from app.context import BASELINE, CYCLETRANS, NOCYCLE, AppContext

ENDPOINTS = {"/search", "/explain", "/tsne", "/ablation", "/failures"}
VISIBLE_CAMS = {1, 2, 4, 5}


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppContext]:
    with torch_threads(1):
        yield tiny_context(tmp_path_factory.mktemp("app"))


@pytest.fixture(scope="module")
def client(context: AppContext) -> Iterator[Client]:
    with running_app(context) as url:
        yield Client(url, verbose=False, download_files=False)


def first_image(context: AppContext, cam: int) -> str:
    """The first test image of camera ``cam``."""
    return next(r.path for r in context.split.records if r.cam == cam)


def search(client: Client, path: str, modality: str = "infrared", model: str = CYCLETRANS,
           top_k: int = 5) -> tuple:
    return client.predict(handle_file(path), modality, model, top_k, api_name="/search")


def served_file(item: dict) -> Path:
    """The server-side file of a gallery item (the client does not download files)."""
    return Path(item["image"]["path"])


def cams_of(gallery: list[dict]) -> set[int]:
    return {int(item["caption"].split("cam ")[1].split(" ")[0]) for item in gallery}


def test_the_five_endpoints_are_named_with_the_contract_parameters(client: Client) -> None:
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(api) == ENDPOINTS
    names = [p["parameter_name"] for p in api["/search"]["parameters"]]
    assert names == ["image", "modality", "model", "top_k"]


def test_search_of_a_test_image_gives_k_captioned_results_and_its_ap(
        client: Client, context: AppContext) -> None:
    path = first_image(context, 6)
    gallery, summary, details, baseline, cycletrans = search(client, path, top_k=5)
    assert len(gallery) == 5
    for rank, item in enumerate(gallery, start=1):
        assert item["caption"].startswith(f"#{rank} ")
        assert "id=" in item["caption"]
        assert ("✓" in item["caption"]) != ("✗" in item["caption"])
        assert served_file(item).is_file()
    assert cams_of(gallery) <= VISIBLE_CAMS  # the other modality only
    result = details["result"]
    assert details["query"]["test_image"] is True
    assert 0.0 < result["ap"] <= 1.0
    assert result["first_hit"] >= 1
    assert "AP" in summary
    assert len(baseline) == len(cycletrans) == 5
    # the same AP as the failure analysis of the whole split
    table = context.query_results(CYCLETRANS, "infrared")
    assert result["ap"] == pytest.approx(table.loc[table["path"] == path, "ap"].item())


def test_camera_3_queries_never_see_camera_2(client: Client, context: AppContext) -> None:
    gallery, *_ = search(client, first_image(context, 3), top_k=50)
    assert 2 not in cams_of(gallery)
    assert len(gallery) == min(50, sum(r.cam in (1, 4, 5) for r in context.split.records))


def test_visible_queries_search_the_infrared_images(client: Client, context: AppContext
                                                    ) -> None:
    gallery, _, details, *_ = search(client, first_image(context, 1), modality="visible")
    assert cams_of(gallery) <= {3, 6}
    assert details["result"]["ap"] is not None


def test_test_image_uploaded_with_the_wrong_modality_is_searched_as_its_own(
        client: Client, context: AppContext) -> None:
    _, summary, details, *_ = search(client, first_image(context, 3), modality="visible")
    assert details["query"]["modality"] == "infrared"
    assert "searched as infrared" in summary


def test_unknown_upload_is_searched_without_identity(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "stranger.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (90, 40, 3), np.uint8)).save(path)
    gallery, summary, details, *_ = search(client, str(path), top_k=4)
    assert len(gallery) == 4
    assert not any("✓" in i["caption"] or "✗" in i["caption"] for i in gallery)
    assert details["result"]["ap"] is None
    assert "identity unknown" in summary


@pytest.mark.parametrize("model", [BASELINE, NOCYCLE, CYCLETRANS])
def test_every_model_can_search(client: Client, context: AppContext, model: str) -> None:
    gallery, _, details, *_ = search(client, first_image(context, 6), model=model, top_k=3)
    assert len(gallery) == 3
    assert details["result"]["model"] == model


def test_explain_gives_grad_cam_for_every_model_and_the_anchor_maps(
        client: Client, context: AppContext) -> None:
    cams, anchors, summary = client.predict(handle_file(first_image(context, 6)), "infrared", 2,
                                            CYCLETRANS, api_name="/explain")
    assert [item["caption"] for item in cams] == [
        f"{role} · {name}" for name in (BASELINE, NOCYCLE, CYCLETRANS)
        for role in ("query", "match")]
    assert all(Image.open(served_file(item)).size == (32, 64) for item in cams)
    assert len(anchors) == 2 * 3  # two KCM models x 3 anchors
    assert "rank 2" in summary
    assert "Anchor attention peak" in summary


def test_tsne_gives_a_plot_per_model_and_the_gap_table(client: Client) -> None:
    *plots, table, h1, h2, h3 = client.predict(4, 0, api_name="/tsne")
    assert len(plots) == 3
    assert all(plot is not None for plot in (*plots, h1, h2, h3))
    assert [row[0] for row in table["data"]] == [BASELINE, NOCYCLE, CYCLETRANS]
    assert "MMD" in table["headers"]


def test_ablation_shows_the_paper_table_and_the_reproduced_comparison(client: Client) -> None:
    paper, _chart, comparison, comparison_chart, status = client.predict(
        2, "mAP", "table2.json", None, api_name="/ablation")
    assert paper["headers"][0] == "Method"
    assert len(paper["data"]) == 7
    assert "Rank-1 (diff)" in comparison["headers"]
    assert comparison_chart is not None
    assert "Reproduced Table II" in status
    paper, *_, status = client.predict(1, "", "", None, api_name="/ablation")
    assert paper["headers"][:3] == ["setting", "k", "n"]
    assert "Choose a reproduced table" in status


def test_ablation_accepts_an_uploaded_reproduced_table(client: Client, context: AppContext
                                                       ) -> None:
    upload = handle_file(str(context.results_dir / "table2.json"))
    *_, comparison, _, status = client.predict(4, "", "", upload, api_name="/ablation")
    assert "Rank-1 (ours)" in comparison["headers"]
    assert "table2.json" in status


def test_failures_lists_the_worst_queries_and_the_comparison(client: Client) -> None:
    worst, ranked, fixed, broken, summary = client.predict(CYCLETRANS, "infrared", [], 5,
                                                           api_name="/failures")
    headers = worst["headers"]
    aps = [row[headers.index("ap")] for row in worst["data"]]
    assert len(aps) == 5
    assert aps == sorted(aps)
    assert all(len(row[headers.index("top-10 ids")].split()) == 10 for row in worst["data"])
    assert ranked[0]["caption"].startswith("query")
    assert len(ranked) == 11
    assert "fixed" in summary
    assert "broken" in summary
    assert "first_hit_baseline" in fixed["headers"]
    assert "ap_change" in broken["headers"]
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
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 32, 3), np.uint8)
                        ).save(whole)
        path.write_bytes(whole.read_bytes()[:200])
    elif kind == "tiny":
        Image.new("RGB", (3, 3)).save(path)
    elif kind == "bomb":
        Image.new("1", (10_000, 10_000)).save(path)  # 100 M pixels, a few kB on disk
    return str(path)


@pytest.mark.parametrize(("kind", "message"), [
    ("text", "not an image file"), ("corrupt", "corrupt or truncated"),
    ("tiny", "too small"), ("bomb", "too many pixels")])
def test_bad_uploads_give_a_clear_error_and_the_app_keeps_serving(
        client: Client, context: AppContext, tmp_path: Path, kind: str, message: str) -> None:
    with pytest.raises(AppError, match=message):
        search(client, bad_upload(tmp_path, kind))
    with pytest.raises(AppError, match=message):
        client.predict(handle_file(bad_upload(tmp_path, kind)), "infrared", 1, CYCLETRANS,
                       api_name="/explain")
    gallery, *_ = search(client, first_image(context, 6))
    assert len(gallery) == 5


@pytest.mark.parametrize("mode", ["RGBA", "P", "I;16", "L"])
def test_unusual_image_modes_are_converted_and_searched(client: Client, tmp_path: Path,
                                                        mode: str) -> None:
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


def test_bad_arguments_give_clear_errors(client: Client, context: AppContext) -> None:
    path = first_image(context, 6)
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


def test_twenty_concurrent_searches_all_succeed(client: Client, context: AppContext) -> None:
    paths = [r.path for r in context.split.records if r.modality == 1][:20]
    with ThreadPoolExecutor(max_workers=20) as pool:
        jobs = [pool.submit(search, client, p, "infrared", CYCLETRANS, 5) for p in paths]
        results = [job.result(timeout=120) for job in jobs]
    assert len(results) == 20
    assert all(len(gallery) == 5 for gallery, *_ in results)
    assert all(details["result"]["ap"] is not None for _, _, details, *_ in results)


def test_only_the_dataset_and_cache_are_served(client: Client, context: AppContext) -> None:
    base = client.src.rstrip("/") + "/gradio_api/file="
    with urllib.request.urlopen(base + first_image(context, 1)) as response:
        assert response.status == 200
    repo_file = Path(__file__).resolve().parents[1] / "app.py"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(base + str(repo_file))
    assert refused.value.code in (403, 404)
