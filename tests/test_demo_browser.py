"""A real headless browser against ``zoo demo``: upload a digit, submit, read the label.

Runs the installed command in a subprocess (the path a user takes), drives Debian's
chromium through playwright, and keeps a screenshot: under ``$ZOO_TEST_ARTIFACTS`` when
set (CI uploads that folder), else in pytest's tmp_path. ``ZOO_UPDATE_SCREENSHOTS=1``
also refreshes ``docs/images/demo-lenet5.png`` (the README's picture); normal runs never
write into the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import free_port, stop

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
DOCS_SHOT = ROOT / "docs" / "images" / "demo-lenet5.png"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"{CHROMIUM} is missing (apt-get install -y chromium)")


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory):
    """``zoo demo <digits model>`` running in a subprocess; yields its URL."""
    from zoo.demos.standins import digits_model

    model = digits_model(tmp_path_factory.mktemp("models"))
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "1"}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "zoo", "demo", model, "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    url = None
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            text = log.read_text()
            if "Serving on " in text:
                url = text.split("Serving on ", 1)[1].split()[0]
                break
            time.sleep(0.3)
        assert url, f"zoo demo did not start:\n{log.read_text()}"
        yield url
    finally:
        stop(proc)


def _artifacts(tmp_path: Path) -> Path:
    d = Path(os.environ.get("ZOO_TEST_ARTIFACTS") or tmp_path)
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.mark.parametrize("digit", [7])
def test_browser_upload_digit_and_read_the_predicted_label(demo_url, tmp_path, digit):
    from playwright.sync_api import sync_playwright

    from zoo.demos.base import EXAMPLES_DIR

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.goto(demo_url, wait_until="domcontentloaded")
            upload = page.locator("input[type=file]").first
            upload.wait_for(state="attached", timeout=60_000)
            upload.set_input_files(str(EXAMPLES_DIR / f"digit_{digit}.png"))
            page.locator("img[src*='gradio_api/file=']").first.wait_for(timeout=30_000)
            page.get_by_role("button", name="Submit").click()
            label = page.locator("[data-testid='label-output-value']").first
            label.wait_for(timeout=60_000)
            page.wait_for_function(
                "() => { const e = document.querySelector(\"[data-testid='label-output-value']\");"
                " return e && e.textContent.trim().length > 0; }", timeout=60_000)
            predicted = label.inner_text().strip()
            confidences = page.locator("[data-testid$='-confidence-set']").count()
            shot = _artifacts(tmp_path) / "demo-lenet5.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert predicted == str(digit), f"page shows {predicted!r}; screenshot: {shot}"
    assert confidences == 5
    assert shot.stat().st_size > 10_000
    if os.environ.get("ZOO_UPDATE_SCREENSHOTS") == "1":
        DOCS_SHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_SHOT)


def test_browser_shows_a_clear_message_for_submit_without_an_image(demo_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.goto(demo_url, wait_until="domcontentloaded")
            page.get_by_role("button", name="Submit").click()
            page.get_by_text("no image: upload an image").first.wait_for(timeout=60_000)
        finally:
            browser.close()
