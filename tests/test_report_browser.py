"""report.html opened in headless Chromium: every image loads (decodes with a non-zero size).

Needs Debian's ``chromium`` and ``chromium-driver`` (``make test`` installs them when it can) and the
``selenium`` package (dev extra). Skipped, with the reason printed, only where they cannot be had."""

import shutil

import pytest

from improved_gan import cli


def _driver():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("chromium/chromedriver not installed and could not be installed (apt-get install "
                    "chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (pip install selenium)")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--allow-file-access-from-files"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=opts)


def test_report_images_load_in_chromium(tmp_path):
    out = tmp_path / "run"
    assert cli.main(["toy", "--compare", "--out", str(out), "--steps", "20", "--log-every", "10",
                     "--frames", "2", "--eval-samples", "200"]) == 0
    browser = _driver()
    try:
        browser.get((out / "report.html").resolve().as_uri())
        images = browser.execute_script(
            "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])")
        title = browser.title
    finally:
        browser.quit()
    assert title.startswith("1D study")
    assert len(images) == 10  # comparison + 3 figures for each of 3 variants
    broken = [src for src, complete, width in images if not (complete and width > 0)]
    assert not broken, f"images that did not load: {broken}"
