"""The viewer in a real browser: Debian's headless Chromium driven by Selenium.

The index and a viewer open on the sample slide and on a synthetic slide
with a segmentation; the test waits until OpenSeadragon has drawn every tile
it wants, takes a screenshot of the viewer (kept in out/test-artifacts/), and
checks that the canvas shows the slide (not a blank or black picture), at two
zoom levels and with an overlay on.
"""

from __future__ import annotations

import io
import shutil
import time
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from dicomslide.testing import synthetic, synthetic_derived
from tests.viewer_server import ROOT, slides, viewer_server

webdriver = pytest.importorskip("selenium.webdriver")

ARTIFACTS = ROOT / "out" / "test-artifacts"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1200,800",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _wait_for_tiles(driver, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not driver.execute_script(
        "return window.dicomslideReady && window.dicomslideReady();"
    ):
        assert time.monotonic() < deadline, "the viewer did not draw its tiles"
        time.sleep(0.1)
    time.sleep(0.3)  # the frame after the last tile


def _screenshot(driver, name: str) -> np.ndarray:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    element = driver.find_element("id", "viewer")
    data = element.screenshot_as_png
    (ARTIFACTS / f"{name}.png").write_bytes(data)
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.int16)


def _zoom(driver, factor: float) -> None:
    driver.execute_script(
        "var v = window.dicomslideViewer;"
        "v.viewport.zoomBy(arguments[0]); v.viewport.applyConstraints(true);",
        factor,
    )


def _tissue_shown(picture: np.ndarray) -> None:
    """Not blank: many colours, and pixels that are neither black nor white."""
    assert picture.std() > 15
    grey = picture.mean(axis=2)
    assert ((grey > 30) & (grey < 230)).mean() > 0.2
    assert len(np.unique(picture.reshape(-1, 3), axis=0)) > 500


@pytest.fixture(scope="module")
def sample_base():
    with viewer_server(ROOT / "data" / "sample") as base:
        yield base


def test_index_and_viewer_on_the_sample(browser, sample_base):
    (summary,) = slides(sample_base)
    browser.get(sample_base + "/")
    thumbnail = browser.find_element("css selector", "img.thumb")
    deadline = time.monotonic() + 10
    while not browser.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth > 0;", thumbnail
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert summary["id"] in browser.page_source
    browser.find_element("link text", "DEMO-001").click()
    assert browser.current_url.endswith(f"/slides/{summary['id']}")
    _wait_for_tiles(browser)
    whole = _screenshot(browser, "sample-home")
    browser.save_screenshot(str(ARTIFACTS / "sample-viewer-page.png"))
    _tissue_shown(whole)
    _zoom(browser, 8.0)
    _wait_for_tiles(browser)
    close = _screenshot(browser, "sample-zoomed")
    _tissue_shown(close)
    assert np.abs(close - whole).mean() > 10  # another view, not the same picture
    # the label image and the properties are on the page
    label = browser.find_element("css selector", "img[alt=label]")
    assert browser.execute_script("return arguments[0].naturalWidth;", label) > 0
    assert "openslide.mpp-x" in browser.page_source


@pytest.fixture(scope="module")
def derived_base(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    source = synthetic.write_slide(
        folder / "slide", "rgb_full", uids=synthetic.SlideUIDs.new("BROWSER")
    )
    synthetic_derived.write_segmentation(
        folder / "seg", source.levels[0], segments=2, organization="TILED_FULL"
    )
    with viewer_server(folder) as base:
        yield base


def test_segmentation_overlay_in_the_browser(browser, derived_base):
    (summary,) = [s for s in slides(derived_base) if s["container"] == "BROWSER"]
    browser.get(f"{derived_base}/slides/{summary['id']}")
    _wait_for_tiles(browser)
    plain = _screenshot(browser, "segmentation-off")
    _tissue_shown(plain)
    segment = next(layer for layer in summary["layers"] if layer["kind"] == "SEGMENT")
    browser.find_element("id", f"overlay-{segment['name']}").click()
    deadline = time.monotonic() + 10
    while (
        browser.execute_script("return window.dicomslideViewer.world.getItemCount();")
        < 2
    ):
        assert time.monotonic() < deadline, "the overlay was not added"
        time.sleep(0.1)
    _wait_for_tiles(browser)
    covered = _screenshot(browser, "segmentation-on")
    changed = np.abs(covered - plain).sum(axis=2) > 30
    assert 0.005 < changed.mean() < 0.5  # the segment, not the whole view
    colour = np.array([int(segment["color"][i : i + 2], 16) for i in (1, 3, 5)])
    # where the overlay is, the picture moved towards the segment's colour
    before = np.abs(plain[changed] - colour).sum(axis=1).mean()
    after = np.abs(covered[changed] - colour).sum(axis=1).mean()
    assert after < before * 0.8
    _zoom(browser, 4.0)
    _wait_for_tiles(browser)
    _tissue_shown(_screenshot(browser, "segmentation-zoomed"))


@pytest.fixture(scope="module")
def corpus_base(corpus, tmp_path_factory):
    """The corpus slide V05 with its segmentation pyramid V10, in one folder."""
    folder = tmp_path_factory.mktemp("corpus-seg")
    for variant in ("V05-wsidicomizer-svs", "V10-highdicom-seg"):
        for path in sorted((corpus / variant).glob("*.dcm")):
            (folder / f"{variant[:3]}-{path.name}").symlink_to(path)
    with viewer_server(folder) as base:
        yield base


def test_corpus_segmentation_overlay_in_the_browser(browser, corpus_base):
    (summary,) = slides(corpus_base)
    browser.get(f"{corpus_base}/slides/{summary['id']}")
    _wait_for_tiles(browser)
    plain = _screenshot(browser, "corpus-overlay-off")
    tissue = next(layer for layer in summary["layers"] if layer["label"] == "Tissue")
    browser.find_element("id", f"overlay-{tissue['name']}").click()
    deadline = time.monotonic() + 10
    while (
        browser.execute_script("return window.dicomslideViewer.world.getItemCount();")
        < 2
    ):
        assert time.monotonic() < deadline, "the overlay was not added"
        time.sleep(0.1)
    _wait_for_tiles(browser)
    covered = _screenshot(browser, "corpus-overlay-on")
    changed = np.abs(covered - plain).sum(axis=2) > 30
    assert 0.02 < changed.mean() < 0.9
    colour = np.array([int(tissue["color"][i : i + 2], 16) for i in (1, 3, 5)])
    before = np.abs(plain[changed] - colour).sum(axis=1).mean()
    after = np.abs(covered[changed] - colour).sum(axis=1).mean()
    assert after < before * 0.8
    _zoom(browser, 6.0)
    _wait_for_tiles(browser)
    zoomed = _screenshot(browser, "corpus-overlay-zoomed")
    assert zoomed.std() > 10
