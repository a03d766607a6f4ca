"""End to end in a real browser: Playwright drives Debian's Chromium (/usr/bin/chromium).

Uploads an image, asks, sees the trajectory stream in (the crop box drawn on the image, the crop,
the answer with its sources), then opens the run again from the past-trajectories list. Saves a
screenshot to the test's tmp dir; with DMS_UPDATE_SCREENSHOT=1 (or when it is missing) also to
docs/img/serve.png for the README. Skipped, with the reason printed at the end of the run, when
Chromium or the playwright package is missing (`make test` installs both where it can).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .conftest import BROWSER_SKIPS

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
DOCS_SHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "serve.png"


def _skip(reason: str) -> None:
    BROWSER_SKIPS.append(reason)
    pytest.skip(reason)


@pytest.mark.browser
@pytest.mark.timeout(120)
def test_browser_ask_and_browse(make_server, scene_image, tmp_path) -> None:
    if not os.access(CHROMIUM, os.X_OK):
        _skip(f"{CHROMIUM} is missing: apt-get install -y chromium (make browser-deps)")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _skip("the playwright package is missing: pip install -e '.[dev]'")
    srv = make_server()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(srv.url + "/")
            page.set_input_files("#image", scene_image)
            page.fill("#question", "What is the wingspan of this bird?")
            page.click("#ask")
            answer = page.locator("#answer .answer-text")
            expect(answer).to_have_text("131 to 170 cm", timeout=20_000)
            box = page.locator("svg rect.crop-box")
            expect(box).to_have_count(1)
            # the fixed grounder box [20, 20, 90, 80] padded by 10%
            assert [box.get_attribute(a) for a in ("x", "y", "width", "height")] == [
                "13", "14", "84", "72"]
            expect(page.locator(".boxed-wrap")).to_be_visible()
            crop = page.locator("img.crop")
            expect(crop).to_be_visible()
            page.wait_for_function("document.querySelector('img.crop').naturalWidth > 0")
            page.wait_for_function("document.querySelector('.boxed-wrap img').naturalWidth > 0")
            assert page.locator("#turns > li.turn").count() == 3
            expect(page.locator(".pending")).to_have_count(0)  # every search got its result
            expect(page.locator("#turns > li.turn").nth(1).locator(".action .query")).to_have_text(
                "great egret wingspan")
            expect(page.locator("#answer a[href='https://example.org/great-egret']")).to_be_visible()
            shot = tmp_path / "serve.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            if os.environ.get("DMS_UPDATE_SCREENSHOT") == "1" or not DOCS_SHOT.exists():
                DOCS_SHOT.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(shot, DOCS_SHOT)

            page.reload()  # the served run is now a past trajectory
            page.select_option("#traj-files", "served/served.jsonl")
            page.locator("#traj-rows li").first.click()
            expect(answer).to_have_text("131 to 170 cm")
            expect(page.locator("svg rect.crop-box")).to_have_count(1)
        finally:
            browser.close()
