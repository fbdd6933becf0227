"""The app in a real browser: Debian's Chromium driven by Playwright over every tab.

The tour is scripts/screenshots.py's (the script that makes the README screenshots), run here on
the tiny app (tests/conftest.py) with the screenshots going to tmp_path; then what a user does
next: the paired ablation selectors, an upload that deserves a warning, a bad upload, the
failure tab's camera choices. Skipped only when /usr/bin/chromium is missing (CI installs it;
never `playwright install`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from app_helpers import running_app, torch_threads
from PIL import Image

from analysis.session import BASELINE, CYCLETRANS, NOCYCLE, Session

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "screenshots.py"
CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 60_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.is_file(),
        reason="Debian's Chromium (/usr/bin/chromium) "
        "is not installed: apt-get install -y chromium",
    ),
]


def screenshots_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("screenshots", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SHOTS = screenshots_module()


@pytest.fixture(scope="module")
def app_page(tiny_app: Session, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """(the app's session, the browser page after the tour, what the tour saw)."""
    from playwright.sync_api import sync_playwright

    tmp = tmp_path_factory.mktemp("browser")
    with torch_threads(1), running_app(tiny_app) as url, sync_playwright() as playwright:
        browser = SHOTS.launch_browser(playwright)
        try:
            page = browser.new_page(viewport=SHOTS.VIEWPORT)
            yield tiny_app, page, SHOTS.tour(page, url, tmp / "screenshots", top_k=10)
        finally:
            browser.close()


@pytest.fixture(scope="module")
def seen(app_page: tuple) -> dict[str, Any]:
    return app_page[2]


def test_the_overview_lands_with_the_headline_table_example_and_t_sne(seen: dict[str, Any]) -> None:
    assert seen["overview_rows"] == 3  # one row per model
    assert seen["overview_plots"] >= 3
    assert "modality gap" in seen["overview_story"]
    assert "Rule:" in seen["overview_example"]


def test_retrieval_shows_k_marked_thumbnails_and_the_ap(seen: dict[str, Any]) -> None:
    assert seen["retrieval_thumbnails"] == 10
    assert "Query: test image" in seen["retrieval_summary"]
    assert "AP " in seen["retrieval_summary"]
    marks = seen["retrieval_marks"]
    assert len(marks) == 10
    for source, caption in marks:  # the frame (file) and the caption say the same thing
        assert source.endswith("-match.jpg") == ("✓" in caption)
        assert source.endswith("-wrong.jpg") == ("✗" in caption)
        assert "id=" in caption
        assert "cam " in caption


def test_attention_shows_grad_cam_for_every_model_and_anchor_maps(seen: dict[str, Any]) -> None:
    assert seen["gradcam_images"] == 6  # query and match for three models
    assert seen["anchor_images"] == 6  # two KCM models x 3 anchors
    assert "Match: rank 1" in seen["explain_summary"]


def test_feature_space_shows_a_t_sne_plot_per_model(seen: dict[str, Any]) -> None:
    assert seen["tsne_plots"] == len((BASELINE, NOCYCLE, CYCLETRANS))


def test_ablations_show_the_paper_table_and_its_reproduction(seen: dict[str, Any]) -> None:
    assert seen["paper_table_rows"] == 7  # Table II
    assert "Reproduced Table II" in seen["ablation_status"]


def test_selecting_a_failure_opens_it_in_the_retrieval_tab(seen: dict[str, Any]) -> None:
    assert seen["worst_rows"] >= 1
    assert seen["opened_failure_summary"].startswith(f"Query: test image {seen['worst_file']}")


def test_every_tab_was_screenshotted(seen: dict[str, Any]) -> None:
    names = [path.stem for path in seen["screenshots"]]
    assert names == [
        "overview",
        "retrieval",
        "attention",
        "feature-space",
        "ablations",
        "failure-cases",
    ]
    for path in seen["screenshots"]:
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.width >= 1000


def status_text(page: Any, selector: str, contains: str) -> str:
    page.wait_for_function(
        "([s, t]) => document.querySelector(s).innerText.includes(t)",
        arg=[selector, contains],
        timeout=TIMEOUT_MS,
    )
    return page.locator(selector).inner_text()


def test_the_paper_and_reproduced_table_selectors_are_paired(app_page: tuple) -> None:
    _, page, _ = app_page
    page.get_by_role("tab", name="Ablations").click()
    reproduced = page.get_by_label("Its reproduction (assets/results)", exact=True).first
    SHOTS._choose(page, "Paper table", "Table IV")
    assert "Not reproduced" in status_text(page, "#ablation-status", "Table IV")
    assert reproduced.input_value() == ""
    assert not page.locator("#comparison-table").is_visible()
    SHOTS._choose(page, "Paper table", "Table II")
    assert "table2.json" in status_text(page, "#ablation-status", "Reproduced Table II")
    assert reproduced.input_value() == "table2.json"
    page.locator("#comparison-table").wait_for(state="visible", timeout=TIMEOUT_MS)


def upload(page: Any, path: Path, modality: str) -> None:
    page.get_by_role("tab", name="Retrieval").click()
    page.locator("#query-modality").get_by_label(modality, exact=True).check()
    page.set_input_files("#query-image input[type=file]", str(path))


def test_a_colour_upload_marked_infrared_is_warned_about(app_page: tuple, tmp_path: Path) -> None:
    session, page, _ = app_page
    colour = tmp_path / "colour.png"  # a visible test image, re-encoded: not a test file
    Image.open(next(r.path for r in session.split.records if r.cam == 1)).save(colour)
    upload(page, colour, "infrared")
    assert "this image has colour" in status_text(page, "#query-status", "⚠")
    toast = page.locator("[data-testid=toast-body]").filter(has_text="this image has colour")
    toast.first.wait_for(timeout=TIMEOUT_MS)
    page.click("#search-button")
    assert "identity is unknown" in status_text(page, "#search-summary", "this image has colour")


def test_an_uploaded_test_image_is_recognised_by_its_bytes(app_page: tuple) -> None:
    session, page, _ = app_page
    record = next(r for r in session.split.records if r.cam == 6)
    upload(page, Path(record.path), "infrared")
    page.click("#search-button")
    summary = status_text(page, "#search-summary", session.relative(record.path))
    assert f"id={record.pid}" in summary


def test_a_bad_upload_is_said_where_the_user_looks_and_the_results_stay(
    app_page: tuple, tmp_path: Path
) -> None:
    _, page, _ = app_page
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    before = page.locator("#search-gallery img").count()
    upload(page, bad, "infrared")
    assert "notes.png is not an image file" in status_text(page, "#query-status", "notes.png")
    toast = page.locator("[data-testid=toast-body]").filter(has_text="notes.png")
    assert "/tmp" not in toast.first.inner_text()  # no server-side paths in messages
    page.click("#search-button")
    status_text(page, "#search-summary", "notes.png is not an image file")
    assert page.locator("#search-gallery img").count() == before  # the last results stay
    assert page.locator("[data-testid=status-tracker] .error").count() == 0  # no "Error" badge


def test_failure_cameras_follow_the_query_modality(app_page: tuple) -> None:
    _, page, _ = app_page
    page.get_by_role("tab", name="Failure cases").click()
    cameras = page.locator("#failures-cameras label")
    assert cameras.all_inner_texts() == ["camera 3", "camera 6"]
    page.locator("#failures-modality").get_by_label("visible", exact=True).check()
    page.wait_for_function(
        "() => document.querySelectorAll('#failures-cameras label').length === 4",
        timeout=TIMEOUT_MS,
    )
    assert cameras.all_inner_texts() == [f"camera {c}" for c in (1, 2, 4, 5)]


def test_selecting_a_result_makes_it_the_attention_tabs_match(app_page: tuple) -> None:
    from playwright.sync_api import expect

    _, page, _ = app_page
    page.get_by_role("tab", name="Retrieval").click()
    page.click("#random-query")  # a fresh result
    page.locator("#search-gallery [data-testid=status-tracker].hide").wait_for(state="attached")
    page.wait_for_function(
        "() => document.querySelectorAll('#search-gallery img').length >= 3", timeout=TIMEOUT_MS
    )
    page.locator("#search-gallery img").nth(2).click()
    page.get_by_role("tab", name="Attention").click()
    expect(page.get_by_label("Match: rank in the model's ranking").first).to_have_value("3")
