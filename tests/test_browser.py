"""The app in a real browser: Debian's Chromium driven by Playwright over every tab.

The tour is scripts/screenshots.py's (the script that makes the README screenshots), run here on
the tiny app of tests/app_helpers.py with the screenshots going to tmp_path. Skipped only when
/usr/bin/chromium is missing (CI installs it; never `playwright install`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from app_helpers import running_app, tiny_context, torch_threads
from PIL import Image

from app.context import BASELINE, CYCLETRANS, NOCYCLE

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "screenshots.py"
CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.is_file(), reason="Debian's Chromium (/usr/bin/chromium) "
                       "is not installed: apt-get install -y chromium"),
]


def screenshots_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("screenshots", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def app_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """(the app's context, the browser page after the tour, what the tour saw)."""
    from playwright.sync_api import sync_playwright

    shots = screenshots_module()
    tmp = tmp_path_factory.mktemp("browser")
    with torch_threads(1):
        context = tiny_context(tmp)
        with running_app(context) as url, sync_playwright() as playwright:
            browser = shots.launch_browser(playwright)
            try:
                page = browser.new_page(viewport=shots.VIEWPORT)
                yield context, page, shots.tour(page, url, tmp / "screenshots", top_k=10)
            finally:
                browser.close()


@pytest.fixture(scope="module")
def seen(app_page: tuple) -> dict[str, Any]:
    return app_page[2]


def test_retrieval_shows_k_result_thumbnails_and_the_ap(seen: dict[str, Any]) -> None:
    assert seen["retrieval_thumbnails"] == 10
    assert "Query: test image" in seen["retrieval_summary"]
    assert "AP " in seen["retrieval_summary"]


def test_attention_shows_grad_cam_for_every_model_and_anchor_maps(seen: dict[str, Any]) -> None:
    assert seen["gradcam_images"] == 6  # query and match for three models
    assert seen["anchor_images"] == 6  # two KCM models x 3 anchors
    assert "Match: rank 1" in seen["explain_summary"]


def test_feature_space_shows_a_t_sne_plot_per_model(seen: dict[str, Any]) -> None:
    assert seen["tsne_plots"] == len((BASELINE, NOCYCLE, CYCLETRANS))


def test_ablations_show_the_paper_table_and_the_reproduced_one(seen: dict[str, Any]) -> None:
    assert seen["paper_table_rows"] == 7  # Table II
    assert "Reproduced Table II" in seen["ablation_status"]


def test_selecting_a_failure_opens_it_in_the_retrieval_tab(seen: dict[str, Any]) -> None:
    assert seen["worst_rows"] >= 1
    assert seen["opened_failure_summary"].startswith(f"Query: test image {seen['worst_file']}")


def test_every_tab_was_screenshotted(seen: dict[str, Any]) -> None:
    names = [path.stem for path in seen["screenshots"]]
    assert names == ["retrieval", "attention", "feature-space", "ablations", "failure-cases"]
    for path in seen["screenshots"]:
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.width >= 1000


def upload_and_search(page: Any, path: Path) -> None:
    page.get_by_role("tab", name="Retrieval").click()
    page.set_input_files("#query-image input[type=file]", str(path))
    page.click("#search-button")


def test_an_uploaded_test_image_is_recognised_by_its_bytes(app_page: tuple) -> None:
    context, page, _ = app_page
    record = next(r for r in context.split.records if r.cam == 6)
    relative = Path(record.path).relative_to(context.split.root).as_posix()
    upload_and_search(page, Path(record.path))
    page.wait_for_function("file => document.querySelector('#search-summary').innerText"
                           ".includes(file)", arg=relative, timeout=60_000)
    assert f"id={record.pid}" in page.locator("#search-summary").inner_text()


def test_a_non_image_upload_shows_a_clear_error(app_page: tuple, tmp_path: Path) -> None:
    _, page, _ = app_page
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    upload_and_search(page, bad)
    toast = page.locator("[data-testid=toast-body]").last
    toast.wait_for(timeout=60_000)
    assert "notes.png is not an image file" in toast.inner_text()
    assert "/tmp" not in toast.inner_text()  # no server-side paths in messages


def test_selecting_a_result_makes_it_the_attention_tabs_match(app_page: tuple) -> None:
    from playwright.sync_api import expect

    _, page, _ = app_page
    page.get_by_role("tab", name="Retrieval").click()
    page.click("#random-query")  # a fresh result (the last search above was an error)
    page.locator("#search-gallery [data-testid=status-tracker].hide").wait_for(state="attached")
    page.locator("#search-gallery img").nth(2).click()
    page.get_by_role("tab", name="Attention").click()
    expect(page.get_by_label("Match: rank in the model's ranking").first).to_have_value("3")
