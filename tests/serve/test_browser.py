"""The explorer in a real browser: Debian's headless Chromium driven by Selenium (chromedriver from the same package),
on the StyleGAN3-T parity network. Moves the psi slider and the translate-x slider with the keyboard, as a person
would, and checks that the image changed and equals `stylegan generate`'s output for the same settings. Then loads
the StyleGAN-XL parity stem through the page and picks a class with the class selector, the same way.

Leaves screenshots at out/artifacts/serve_browser.png and serve_browser_xl.png (under the repository's ignored out/),
kept by CI as artefacts. Without /usr/bin/chromium the test is skipped, unless STYLEGAN_REQUIRE_BROWSER=1 (set by .ci/run, which
installs it) makes that a failure.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylegan.cli.main import main

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOT = Path(__file__).resolve().parents[2] / "out" / "artifacts" / "serve_browser.png"
SCREENSHOT_XL = SCREENSHOT.with_name("serve_browser_xl.png")
# JPEG (quality 90) as Chromium decodes it, against the lossless frame: measured mean |Δ| 0.81 levels, max 5. The
# bounds leave room for other codec builds and stay well below what the sliders change (mean |Δ| 7.4 here).
JPEG_MEAN_TOLERANCE = 2.0
JPEG_MAX_TOLERANCE = 16

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        message = f"needs {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)"
        if os.environ.get("STYLEGAN_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager look for drivers online
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,900",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver, condition, what: str, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(condition)
        if value:
            return value
        if time.monotonic() > deadline:
            error = driver.execute_script("return document.getElementById('error').textContent")
            raise AssertionError(f"timed out waiting for {what} (page error: {error!r})")
        time.sleep(0.1)


def _shown(driver) -> tuple[dict, np.ndarray]:
    """The parameters of the frame on screen and its decoded pixels (drawn into a canvas by the page's own decoder)."""
    data = driver.execute_script("""
        const img = document.getElementById('frame');
        const canvas = document.createElement('canvas');
        canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
        const ctx = canvas.getContext('2d');
        ctx.drawImage(img, 0, 0);
        return [img.dataset.params, canvas.width, Array.from(ctx.getImageData(0, 0, canvas.width, canvas.height).data)];
    """)
    params, width, rgba = data
    return json.loads(params), np.array(rgba, np.uint8).reshape(width, width, 4)[:, :, :3]


def _frame_settled(condition: str) -> str:
    """JS: the frame on screen matches `condition` (on its params `p`) and no newer request is under way."""
    return f"""
        const img = document.getElementById('frame');
        if (!img.dataset.params) return false;
        const p = JSON.parse(img.dataset.params);
        return ({condition}) && String(state.seq) === img.dataset.seq && !state.inFlight;
    """


def test_sliders_in_chromium_match_stylegan_generate(browser, live_server, parity_dir, tmp_path):
    browser.get(live_server + "/")
    _wait(browser, _frame_settled("p.psi === 1"), "the first frame")
    before_params, before = _shown(browser)
    assert before_params["network"] == "sg3t_32" and before_params["x"] == 0
    assert browser.find_element("id", "transform").is_displayed()  # StyleGAN3 controls shown

    from selenium.webdriver.common.keys import Keys

    psi = browser.find_element("id", "psi")
    for _ in range(6):  # 1 -> 0.7 in steps of 0.05
        psi.send_keys(Keys.ARROW_LEFT)
    translate = browser.find_element("id", "translate-x")
    for _ in range(25):  # 0 -> 0.25 in steps of 0.01
        translate.send_keys(Keys.ARROW_RIGHT)
    _wait(browser, _frame_settled("p.psi === 0.7 && p.translate[0] === 0.25"), "the frame at psi 0.7, translate 0.25")
    params, shown = _shown(browser)
    assert browser.find_element("id", "psi-value").text == "0.7"
    assert browser.find_element("id", "translate-x-value").text == "0.25"
    assert "render" in browser.find_element("id", "latency").text and "ms" in browser.find_element("id", "latency").text

    assert main(["generate", "--network", str(parity_dir / "sg3t_32"), "--seeds", "0", "--trunc", "0.7",
                 "--translate", "0.25,0", "--outdir", str(tmp_path), "--device", "cpu"]) == 0
    expected = np.asarray(Image.open(tmp_path / "seed0000.png").convert("RGB")).astype(np.int16)

    # The same parameters as a lossless PNG from the server: identical to `stylegan generate`.
    assert np.array_equal(_lossless(live_server, params), expected)

    # What the page shows (JPEG, decoded by Chromium): the expected image within the codec's error, not the old one.
    shown_err = np.abs(shown.astype(np.int16) - expected)
    change = np.abs(before.astype(np.int16) - expected).mean()
    print(f"shown JPEG vs generate: mean |Δ| {shown_err.mean():.2f}, max {shown_err.max()}; first frame: mean |Δ| {change:.2f}")
    assert shown_err.mean() <= JPEG_MEAN_TOLERANCE and shown_err.max() <= JPEG_MAX_TOLERANCE, shown_err
    assert change > 3 * JPEG_MEAN_TOLERANCE, change

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOT))

    # Bad input is reported in the page and the server keeps serving.
    cutoff = browser.find_element("id", "cutoff")
    cutoff.send_keys("99")
    _wait(browser, "return document.getElementById('error').textContent.includes('cutoff 99')", "the cutoff error")
    assert browser.find_element("id", "error").is_displayed()
    cutoff.send_keys(Keys.BACKSPACE)  # cutoff 9: valid again
    _wait(browser, "return document.getElementById('error').hidden", "the error to clear")


def _lossless(live_server: str, params: dict) -> np.ndarray:
    """The frame of `params` as a PNG from the server, RGB int16."""
    request = urllib.request.Request(live_server + "/api/render", data=json.dumps({**params, "format": "png"}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=120) as response:
        return np.asarray(Image.open(response).convert("RGB")).astype(np.int16)


def test_class_selector_of_a_stylegan_xl_network_in_chromium(browser, live_server, parity_xl_dir, tmp_path):
    from selenium.webdriver.common.keys import Keys

    browser.get(live_server + "/")
    _wait(browser, _frame_settled("p.psi === 1"), "the first frame")
    quality = browser.find_element("id", "quality")  # 16² frames are all detail: JPEG at its best quality
    quality.clear()
    quality.send_keys("100")
    browser.find_element("id", "load-path").send_keys(str(parity_xl_dir / "xl_g16_cond"))
    browser.find_element("id", "load").click()
    _wait(browser, _frame_settled("p.network === 'xl_g16_cond' && p.class_idx === 0 && p.quality === 100"), "the XL network's first frame")
    _, class0 = _shown(browser)
    assert browser.find_element("id", "class-row").is_displayed() and browser.find_element("id", "transform").is_displayed()
    for _ in range(6):  # 1 -> 0.7: truncation towards the class's own W average
        browser.find_element("id", "psi").send_keys(Keys.ARROW_LEFT)
    for _ in range(3):  # class 0 -> 3
        browser.find_element("id", "class").send_keys(Keys.ARROW_UP)
    _wait(browser, _frame_settled("p.class_idx === 3 && p.psi === 0.7"), "the frame of class 3 at psi 0.7")
    params, shown = _shown(browser)

    assert main(["generate", "--network", str(parity_xl_dir / "xl_g16_cond"), "--seeds", "0", "--class", "3", "--trunc", "0.7",
                 "--outdir", str(tmp_path), "--device", "cpu"]) == 0
    expected = np.asarray(Image.open(tmp_path / "seed0000.png").convert("RGB")).astype(np.int16)
    assert np.array_equal(_lossless(live_server, params), expected)
    shown_err = np.abs(shown.astype(np.int16) - expected)
    change = np.abs(class0.astype(np.int16) - expected).mean()
    print(f"XL: shown JPEG (quality 100) vs generate: mean |Δ| {shown_err.mean():.2f}, max {shown_err.max()}; "
          f"class 0 at psi 1: mean |Δ| {change:.2f}")
    assert shown_err.mean() <= JPEG_MEAN_TOLERANCE and shown_err.max() <= JPEG_MAX_TOLERANCE, shown_err
    assert change > 3 * JPEG_MEAN_TOLERANCE, change
    browser.save_screenshot(str(SCREENSHOT_XL))
