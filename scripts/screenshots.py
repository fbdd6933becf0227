"""Screenshots of each tab of the real demo app, for the README: ``assets/screenshots/*.png``.

Starts the app as ``python app.py`` would (the demo set and the shipped checkpoints, or the
flags given), drives Debian's Chromium through Playwright over every tab (the overview, a
random retrieval, Grad-CAM of its top match, the feature space, the ablation tables, the
failure cases, then a failure opened in the Retrieval tab) and saves one full-page screenshot
per tab. Needs
``/usr/bin/chromium`` (never ``playwright install``).

The tour (:func:`tour`) is also what ``tests/test_browser.py`` runs on a tiny app: it waits for
each tab's results and returns what it saw.

Example::

    python scripts/screenshots.py                     # -> assets/screenshots/
    python scripts/screenshots.py --out /tmp/shots --port 7861
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 1000}
TIMEOUT_MS = 60_000
ROWS = " [role=gridcell][data-col='0']"  # one cell per row of a Gradio 6 dataframe


def _count(page: Any, selector: str) -> int:
    return page.locator(selector).count()


def _wait_count(page: Any, selector: str, count: int) -> int:
    """Wait until ``selector`` matches at least ``count`` elements; return how many it does."""
    page.wait_for_function(
        "([selector, count]) => document.querySelectorAll(selector).length >= count",
        arg=[selector, count],
        timeout=TIMEOUT_MS,
    )
    return _count(page, selector)


def _wait_images(page: Any, selector: str) -> None:
    """Wait until every image matched by ``selector`` has loaded."""
    page.wait_for_function(
        "selector => Array.from(document.querySelectorAll(selector))"
        ".every(image => image.complete && image.naturalWidth > 0)",
        arg=selector,
        timeout=TIMEOUT_MS,
    )


def _text(page: Any, selector: str) -> str:
    """The text of ``selector`` once its component is idle (no progress timer showing)."""
    page.wait_for_function(
        "selector => { const t = document.querySelector("
        "selector + ' [data-testid=status-tracker]'); return !t || t.classList.contains('hide'); }",
        arg=selector,
        timeout=TIMEOUT_MS,
    )
    return page.locator(selector).inner_text().strip()


def _open_tab(page: Any, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def _marks(page: Any, gallery: str) -> list[tuple[str, str]]:
    """``(mark of the thumbnail file, caption)`` of each image of a ranked gallery."""
    return page.eval_on_selector_all(
        gallery + " button.thumbnail-item, " + gallery + " .thumbnail-item",
        "items => items.map(item => [(item.querySelector('img') || {}).src || '',"
        " item.innerText || ''])",
    )


def _choose(page: Any, label: str, option: str) -> None:
    """Pick ``option`` in the dropdown labelled ``label``."""
    page.get_by_label(label, exact=True).first.click()
    page.get_by_role("option", name=option, exact=True).click()


def tour(page: Any, url: str, out_dir: Path, top_k: int = 10) -> dict[str, Any]:
    """Visit every tab of the app at ``url``, run its main action, screenshot it.

    Returns what was seen: the overview's table rows and plots, thumbnails and their marks in
    the retrieval gallery, Grad-CAM and anchor images, t-SNE plots, rows of the paper table,
    the ablation status for a paper table without reproduction, the failure tables, the
    retrieval summary after opening a failure, and the screenshot paths (``out_dir/<tab>.png``).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    seen: dict[str, Any] = {"screenshots": []}

    def shot(name: str) -> None:
        path = out_dir / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        seen["screenshots"].append(path)

    page.goto(url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="Overview").wait_for(timeout=TIMEOUT_MS)
    seen["overview_rows"] = _wait_count(page, "#overview-table" + ROWS, 1)
    seen["overview_plots"] = _wait_count(page, ".js-plotly-plot", 1)
    seen["overview_story"] = _text(page, "#overview-story")
    seen["overview_example"] = _text(page, "#overview-example")
    shot("overview")

    _open_tab(page, "Retrieval")
    page.click("#random-query")
    seen["retrieval_thumbnails"] = _wait_count(page, "#search-gallery img", top_k)
    seen["retrieval_summary"] = _text(page, "#search-summary")
    _wait_count(page, "#compare-gallery img", top_k)
    _wait_images(page, "#search-gallery img, #compare-gallery img")
    seen["retrieval_marks"] = _marks(page, "#search-gallery")
    shot("retrieval")

    _open_tab(page, "Attention")
    page.click("#explain-button")
    seen["gradcam_images"] = _wait_count(page, "#gradcam-gallery img", 2)
    seen["anchor_images"] = _count(page, "#anchor-gallery img")
    seen["explain_summary"] = _text(page, "#explain-summary")
    _wait_images(page, "#gradcam-gallery img, #anchor-gallery img")
    shot("attention")

    _open_tab(page, "Feature space")
    seen["tsne_plots"] = _wait_count(page, "[id^=tsne-plot] .js-plotly-plot", 1)
    _wait_count(page, "#gap-table" + ROWS, 1)
    shot("feature-space")

    _open_tab(page, "Ablations")
    seen["paper_table_rows"] = _wait_count(page, "#paper-table" + ROWS, 1)
    seen["ablation_status"] = _text(page, "#ablation-status")
    shot("ablations")

    _open_tab(page, "Failure cases")
    seen["worst_rows"] = _wait_count(page, "#worst-table" + ROWS, 1)
    shot("failure-cases")

    worst = page.locator("#worst-table [data-testid='cell-0-0']")
    seen["worst_file"] = worst.inner_text().strip()
    worst.click()
    page.get_by_role("tab", name="Retrieval", selected=True).wait_for(timeout=TIMEOUT_MS)
    page.wait_for_function(
        "file => document.querySelector('#search-summary').innerText.includes(file)",
        arg=seen["worst_file"],
        timeout=TIMEOUT_MS,
    )
    seen["opened_failure_summary"] = _text(page, "#search-summary")
    return seen


def launch_browser(playwright: Any) -> Any:
    """Debian's Chromium, headless, with the flags the project uses everywhere."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        default=str(REPO / "assets" / "screenshots"),
        help="folder of the screenshots (default: assets/screenshots)",
    )
    parser.add_argument("--port", type=int, default=None, help="port of the app")
    args, app_argv = parser.parse_known_args(argv)
    if not Path(CHROMIUM).is_file():
        print(f"error: {CHROMIUM} is missing (apt-get install chromium)", file=sys.stderr)
        return 2
    sys.path.insert(0, str(REPO))
    from playwright.sync_api import sync_playwright

    from analysis.session import build_session
    from app.main import checkpoints_from_args, parse_args, serve

    app_args = parse_args(app_argv)
    session = build_session(
        data_root=app_args.data_root,
        dataset=app_args.dataset,
        checkpoints=checkpoints_from_args(app_args),
        trial=app_args.trial,
        cache_dir=app_args.cache_dir,
        progress=sys.stderr.isatty(),
    )
    demo, url = serve(session, port=args.port, block=False, log=print)
    try:
        with sync_playwright() as playwright:
            browser = launch_browser(playwright)
            page = browser.new_page(viewport=VIEWPORT)
            seen = tour(page, url, Path(args.out))
            browser.close()
    finally:
        demo.close()
    for path in seen["screenshots"]:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
