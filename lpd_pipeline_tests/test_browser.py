"""Browser test (issue 9, section 3): the results page and the survey in headless Chromium driven by Selenium.

Chromium and its driver are Debian's (``apt-get install chromium chromium-driver``; ``.ci/run`` installs them);
Selenium is pointed at ``/usr/bin/chromedriver`` so it never downloads a driver. Both pages are served from a
local static server on 127.0.0.1 and also opened from ``file://``. Every ``<img>`` must have
loaded (``naturalWidth > 0``), and so must the OpenSeadragon tiles, also after zooming to the deepest level; the
quiz is answered and its CSV downloaded and scored. The tests skip, with the reason, only where Chromium cannot
start.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import shutil
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from lpd_pipeline import imaging
from lpd_pipeline.reports.site import SampleSheet, build_results_site
from lpd_pipeline.reports.survey import build_survey_kit, read_survey_key, score_survey

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1400,1000")
WAIT_S = 30.0


# --- helpers (also used by hand to take screenshots) -------------------------------------------------------------

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@contextlib.contextmanager
def static_server(root: Path):
    """Serve ``root`` on 127.0.0.1 (a free port) from a thread; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def start_chromium(profile_dir: Path, download_dir: Path):
    """A headless Chromium with a fresh profile, downloads going to ``download_dir``; skips when it cannot start."""
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        pytest.skip(f"selenium is not installed ({exc}); pip install selenium")
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(f"Chromium cannot start: {CHROMIUM} / {CHROMEDRIVER} not installed "
                    "(apt-get install -y chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_dir}")
    options.add_experimental_option("prefs", {"download.default_directory": str(download_dir),
                                              "download.prompt_for_download": False})
    try:
        driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    except WebDriverException as exc:
        pytest.skip(f"Chromium cannot start here: {str(exc).splitlines()[0]}")
    driver.set_page_load_timeout(WAIT_S)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(download_dir)})
    return driver


def wait_for(predicate, what: str, timeout: float = WAIT_S):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


BROKEN_IMAGES_JS = """
const imgs = Array.from(document.images);
const pending = imgs.filter(i => !i.complete);
if (pending.length) return {pending: pending.map(i => i.src), broken: [], total: imgs.length};
return {pending: [], broken: imgs.filter(i => !(i.naturalWidth > 0)).map(i => i.src), total: imgs.length};
"""

TILE_CHECK_JS = """
const urls = arguments[0], done = arguments[arguments.length - 1];
Promise.all(urls.map(u => new Promise(ok => { const im = new Image(); im.onload = () => ok(im.naturalWidth);
  im.onerror = () => ok(0); im.src = u; }))).then(done);
"""


def images_loaded(driver) -> dict:
    """Wait until every ``<img>`` finished; returns the last check (``broken``: sources with naturalWidth 0)."""
    return wait_for(lambda: (r := driver.execute_script(BROKEN_IMAGES_JS)) and not r["pending"] and r,
                    "the page's images to finish loading")


def tile_stats(driver) -> dict:
    return driver.execute_script("return window.lpdTileStats || null;")


def wait_tiles(driver, viewer_ids, minimum_level=None) -> dict:
    """Wait until every viewer opened and loaded tiles (at ``minimum_level`` or deeper, if given)."""
    def ready():
        stats = tile_stats(driver) or {}
        for vid in viewer_ids:
            record = stats.get(vid)
            if not record or not record["open"] or not record["loaded"]:
                return None
            if minimum_level is not None and max(record["levels"]) < minimum_level[vid]:
                return None
        return stats
    return wait_for(ready, "OpenSeadragon tiles to load")


def tile_widths(driver, urls: list[str]) -> list[int]:
    """naturalWidth of each tile URL, loaded afresh as an image in the page."""
    driver.set_script_timeout(WAIT_S)
    return driver.execute_async_script(TILE_CHECK_JS, urls)


def zoom_all_to_max(driver) -> None:
    driver.execute_script("""
        for (const v of Object.values(window.lpdViewers)) {
          v.viewport.zoomTo(v.viewport.getMaxZoom(), null, true); v.viewport.applyConstraints(true); }""")


# --- synthetic inputs ---------------------------------------------------------------------------------------------

def _smooth(height: int, width: int, seed: int) -> np.ndarray:
    coarse = np.random.default_rng(seed).uniform(0, 255, (5, 7, 3)).astype(np.uint8)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    # Fine ink-like strokes so the deepest zoom level shows detail.
    image[::17, :, :] //= 2
    return image


def make_site_inputs(root: Path) -> dict:
    rows = []
    for index, (height, width) in enumerate([(600, 900), (260, 1400)]):
        ink = imaging.luma_bt601(_smooth(height, width, index))
        imaging.save_image(root / f"ink_{index}.png", ink)
        for shift, variant in enumerate(("resnet9", "unet256")):
            output = _smooth(height, width, 10 + index + shift)
            imaging.save_image(root / f"out_{index}_{variant}.png", output)
            rows.append({"painting_id": f"painting{index}", "title": f"<script>alert({index})</script> Mountain",
                         "artist": "Anon & co", "source": "synthetic", "license": "CC0", "variant": variant,
                         "epoch": 5, "checkpoint": f"/ckpt/{variant}/epoch_0005.pt",
                         "input_path": f"ink_{index}.png", "output_path": f"out_{index}_{variant}.png",
                         "width": width, "height": height, "seconds": 0.5})
    imaging.save_image(root / "sheet.png", _smooth(96, 288, 7))
    imaging.save_image(root / "fid.png", _smooth(120, 200, 8))
    comparison = pd.DataFrame({"variant": ["resnet9", "unet256"], "best_epoch": [5, 5], "fid": [11.5, 9.25]})
    by_epoch = pd.DataFrame({"variant": ["resnet9", "unet256"], "epoch": [5, 5], "fid": [11.5, 9.25]})
    return {"renders": pd.DataFrame(rows), "base_dir": root, "comparison": comparison,
            "metrics_by_epoch": by_epoch, "plots": [root / "fid.png"],
            "samples": [SampleSheet("resnet9", 5, root / "sheet.png", "best epoch")]}


def make_survey_inputs(root: Path, n_paintings: int = 10, tiles_per_painting: int = 3):
    real, fake = [], []
    for painting in range(n_paintings):
        for tile in range(tiles_per_painting):
            path = root / f"real_{painting}_{tile}.png"
            imaging.save_image(path, _smooth(48, 48, 100 + painting * 10 + tile))
            real.append({"path": path, "painting_id": f"p{painting}"})
        for variant in ("resnet9", "unet256"):
            path = root / f"fake_{painting}_{variant}.png"
            imaging.save_image(path, _smooth(48, 48, 500 + painting + (variant == "unet256") * 50))
            fake.append({"path": path, "painting_id": f"p{painting}", "variant": variant})
    return pd.DataFrame(real), pd.DataFrame(fake)


# --- the tests ----------------------------------------------------------------------------------------------------

@pytest.fixture()
def browser(tmp_path):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = start_chromium(tmp_path / "profile", downloads)
    driver.lpd_downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


def open_viewers_by_scrolling(driver, expected: int) -> list[str]:
    """Scroll each painting into view (its viewers are created when it comes near the screen)."""
    for article in driver.find_elements("css selector", "article.painting"):
        driver.execute_script("arguments[0].scrollIntoView();", article)
        group = int(article.get_attribute("data-group"))
        wait_for(lambda: any(k.startswith(f"viewer-{group:03d}-") for k in driver.execute_script(
            "return Object.keys(window.lpdViewers);")), f"the viewers of painting {group}")
    viewer_ids = list(driver.execute_script("return Object.keys(window.lpdViewers);"))
    assert len(viewer_ids) == expected, viewer_ids
    driver.execute_script("window.scrollTo(0, 0);")
    return viewer_ids


def _check_results_page(driver, url: str, screenshot: Path | None = None) -> None:
    driver.get(url)
    viewer_ids = open_viewers_by_scrolling(driver, 6)  # 2 paintings x (ink + 2 variants)
    result = images_loaded(driver)
    assert result["total"] >= 2 and not result["broken"], result
    assert "<script>alert" not in driver.execute_script("return document.body.innerHTML")
    stats = wait_tiles(driver, viewer_ids)
    assert all(stats[v]["failed"] == 0 for v in viewer_ids), stats
    deepest = driver.execute_script("""
        const out = {}; for (const [k, v] of Object.entries(window.lpdViewers)) {
          out[k] = v.world.getItemAt(0).source.maxLevel; } return out;""")
    zoom_all_to_max(driver)
    stats = wait_tiles(driver, viewer_ids, minimum_level=deepest)
    urls = sorted({u for v in viewer_ids for u in stats[v]["urls"]})
    assert all(stats[v]["failed"] == 0 for v in viewer_ids), stats
    widths = tile_widths(driver, urls)
    assert min(widths) > 0, [u for u, w in zip(urls, widths) if not w]
    labels = driver.execute_script("return Array.from(document.querySelectorAll('.cell.machine .badge'))"
                                   ".map(b => b.offsetParent !== null && b.textContent);")
    assert labels and all(label == "machine-colorized" for label in labels)
    if screenshot is not None:
        driver.execute_script("for (const v of Object.values(window.lpdViewers)) v.viewport.goHome(true);")
        time.sleep(0.5)
        driver.save_screenshot(str(screenshot))


def test_results_page_served_and_from_file_url(browser, tmp_path):
    inputs = make_site_inputs(tmp_path)
    site = build_results_site(tmp_path / "site", tile_size=128, **inputs)
    assert not site.problems
    with static_server(tmp_path / "site") as base_url:
        _check_results_page(browser, base_url + "index.html", tmp_path / "results_http.png")
    _check_results_page(browser, site.url, tmp_path / "results_file.png")


def test_survey_answered_downloaded_and_scored(browser, tmp_path):
    real, fake = make_survey_inputs(tmp_path)
    kit = build_survey_kit(tmp_path / "survey", tmp_path / "survey_key.json", real, fake, questions=6, seed=3,
                           size=48)
    key = read_survey_key(kit.key_path)
    fakes = {q["number"]: q["fake"] for q in key["questions"]}
    with static_server(tmp_path / "survey") as base_url:
        browser.get(base_url + "index.html")
        result = images_loaded(browser)
        assert result["total"] == 6 * 4 and not result["broken"], result
        # Spot the fake in the first two questions, miss it in the others.
        for number in sorted(fakes):
            options = browser.find_elements("css selector", f'input[name="q{number}"]')
            assert len(options) == 4
            wanted = [o for o in options if (o.get_attribute("value") == fakes[number]) == (number <= 2)][0]
            browser.execute_script("arguments[0].click();", wanted)
        browser.find_element("id", "download").click()
        csv_path = wait_for(lambda: [p for p in browser.lpd_downloads.glob("*.csv")], "the answers CSV")[0]
        browser.save_screenshot(str(tmp_path / "survey.png"))
    # The kit also works opened straight from disk (sent around as a folder or zip).
    browser.get(kit.url)
    result = images_loaded(browser)
    assert result["total"] == 6 * 4 and not result["broken"], result
    assert browser.find_element("id", "download").get_attribute("disabled")  # nothing answered yet
    answers = tmp_path / "answers"
    answers.mkdir()
    shutil.copy(csv_path, answers / csv_path.name)
    scores = score_survey(answers, kit.key_path)
    assert not scores.errors
    overall = scores.table.set_index("variant").loc["all"]
    assert overall["answers"] == 6 and overall["fakes_spotted"] == 2
    assert json.loads(kit.key_path.read_text())["survey_id"] in csv_path.read_text()
