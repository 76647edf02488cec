"""Native tiles of a DICOMweb source: which frames the viewer asks Orthanc for.

The real Orthanc serves the sample slide through a proxy that counts every
request (:class:`tests.faultproxy.FaultProxy`); the viewer's layers are used in
process (``dicomslide serve`` over HTTP is tested in ``test_serve.py``). The
sample's level 0 is a grid of 16 x 12 frames of 256 pixels (4 x 3 blocks of
4 x 4 frames); its last column and row are edge tiles, which are rendered.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections import Counter
from collections.abc import Iterator

import numpy as np
import pydicom
import pytest

import dicomslide
from dicomslide.openslide import OpenSlide
from dicomslide.openslide.deepzoom import DeepZoomGenerator
from dicomslide.serve.catalog import SlideEntry
from dicomslide.serve.tiles import Layer
from tests.faultproxy import FaultProxy
from tests.test_serve import SAMPLE, _pixels, _stored_frames

LEVEL0 = SAMPLE / "level0.dcm"
COLUMNS = 16  # frames across level 0


@pytest.fixture(scope="module")
def frames() -> list[bytes]:
    return _stored_frames(LEVEL0)


@pytest.fixture
def remote(orthanc) -> Iterator[tuple[FaultProxy, Layer]]:
    orthanc.upload(sorted(SAMPLE.glob("*.dcm")))
    with FaultProxy(orthanc.base_url) as proxy:
        (slide,) = dicomslide.find_slides(
            proxy.dicomweb_url, container_id="DEMO-001", correct_color=False
        )
        yield proxy, SlideEntry(slide).layer("c0z0")


def _asked(proxy: FaultProxy) -> list[list[int]]:
    """Frame numbers of level 0 in each request the proxy saw, in order."""
    sop = pydicom.dcmread(LEVEL0, stop_before_pixels=True).SOPInstanceUID
    asked = []
    for seen in proxy.requests_to(f"{sop}/frames/"):
        numbers = seen.path.split("/frames/")[1].split("?")[0].replace("%2C", ",")
        asked.append([int(n) for n in numbers.split(",")])
    return asked


def _block(row: int, column: int) -> set[int]:
    """Frame numbers of a block of level 0."""
    return {
        r * COLUMNS + c + 1
        for r in range(4 * row, 4 * row + 4)
        for c in range(4 * column, 4 * column + 4)
    }


def _tiles(row: int, column: int) -> list[tuple[int, int]]:
    """(column, row) of the tiles of a block that are whole frames."""
    return [
        (c, r)
        for r in range(4 * row, min(4 * row + 4, 11))
        for c in range(4 * column, min(4 * column + 4, 15))
    ]


def _wait_for(proxy: FaultProxy, *blocks: tuple[int, int]) -> None:
    """Wait until each block was asked for in a request of its own."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        asked = [set(numbers) for numbers in _asked(proxy)]
        if all(_block(*block) in asked for block in blocks):
            return
        time.sleep(0.02)
    pytest.fail(f"blocks {blocks} were not fetched ahead: {_asked(proxy)}")


def _top(layer: Layer) -> int:
    return int(layer.generator.level_count) - 1


def test_a_viewer_that_pans_finds_the_next_block_fetched(remote, frames):
    proxy, layer = remote
    top = _top(layer)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        tiles = list(pool.map(lambda a: layer.tile(top, *a, "jpeg"), _tiles(0, 0)))
    for (column, row), tile in zip(_tiles(0, 0), tiles, strict=True):
        assert tile == frames[row * COLUMNS + column]
    # the block in one request, then the blocks beside it in one request each
    assert [set(numbers) for numbers in _asked(proxy)][0] == _block(0, 0)
    _wait_for(proxy, (0, 1), (1, 0))
    for column, row in _tiles(0, 1):
        assert layer.tile(top, column, row, "jpeg") == frames[row * COLUMNS + column]
    counts = Counter(n for numbers in _asked(proxy) for n in numbers)
    assert all(counts[n] == 1 for n in _block(0, 0) | _block(0, 1) | _block(1, 0))
    assert layer.slide.metrics["tiles_native"] == 32


def test_an_edge_tile_is_rendered_from_the_frames_of_its_block(remote, frames):
    proxy, layer = remote
    top = _top(layer)
    generator = DeepZoomGenerator(OpenSlide(SAMPLE), tile_size=256, overlap=0)
    # an edge tile asked for first: its block comes in one request (then
    # the blocks beside it)
    edge = _pixels(layer.tile(top, 15, 11, "jpeg"))
    assert [set(numbers) for numbers in _asked(proxy)][0] == _block(2, 3)
    expected = np.asarray(generator.get_tile(top, (15, 11)))
    assert edge.shape == expected.shape
    assert np.abs(edge.astype(np.int16) - expected).mean() < 3  # JPEG's loss
    # the block's other tiles, native and rendered, need no other request
    assert layer.tile(top, 12, 8, "jpeg") == frames[8 * COLUMNS + 12]
    png = _pixels(layer.tile(top, 15, 10, "png"))
    np.testing.assert_array_equal(png, np.asarray(generator.get_tile(top, (15, 10))))
    assert len(np.unique(png)) > 10  # (the slide's background, not a constant)
    counts = Counter(n for numbers in _asked(proxy) for n in numbers)
    assert all(counts[n] == 1 for n in _block(2, 3))
    assert layer.slide.metrics["tiles_rendered"] == 2


def test_a_tile_at_hand_never_waits_for_the_network(remote, frames):
    proxy, layer = remote
    top = _top(layer)
    assert layer.cached_tile(top, 5, 5, "jpeg") is None
    assert _asked(proxy) == []  # it did not fetch
    assert layer.tile(top, 5, 5, "jpeg") == frames[5 * COLUMNS + 5]
    assert layer.cached_tile(top, 5, 5, "jpeg") == frames[5 * COLUMNS + 5]
    assert layer.cached_tile(top, 6, 7, "jpeg") == frames[7 * COLUMNS + 6]
    assert layer.cached_tile(top, 6, 7, "png") is None  # rendered
    assert layer.slide.metrics["tiles_native"] == 3


def test_blocks_are_fetched_ahead_only_while_they_are_used(remote, frames):
    proxy, layer = remote
    top = _top(layer)
    # jumps that use nothing fetched ahead: 4 blocks (64 frames) fetched for
    # nothing, after which nothing more is fetched ahead
    layer.tile(top, 0, 0, "jpeg")
    _wait_for(proxy, (0, 1), (1, 0))
    layer.tile(top, 12, 8, "jpeg")
    _wait_for(proxy, (2, 2), (1, 3))
    layer.tile(top, 8, 0, "jpeg")  # block (0, 2): (0, 3) and (1, 2) beside it
    time.sleep(1)
    asked = [set(numbers) for numbers in _asked(proxy)]
    assert _block(0, 2) in asked
    assert _block(0, 3) not in asked and _block(1, 2) not in asked
    # once what was fetched ahead is used, it goes on again
    for block in [(0, 1), (1, 0)]:
        for column, row in _tiles(*block):
            tile = layer.tile(top, column, row, "jpeg")
            assert tile == frames[row * COLUMNS + column]
    _wait_for(proxy, (2, 0))  # beside (1, 0) only


def test_fetches_ahead_still_on_their_way_count_as_fetched(remote, frames):
    proxy, layer = remote
    top = _top(layer)
    layer.tile(top, 0, 0, "jpeg")  # (0, 1) and (1, 0) ahead: 32 frames
    _wait_for(proxy, (0, 1), (1, 0))
    slow = proxy.add("/frames/", times=None, delay=1.0)
    layer.tile(top, 12, 8, "jpeg")  # (2, 2) and (1, 3) ahead: 64 with those
    _wait_for(proxy, (2, 2), (1, 3))  # asked for, not answered yet
    # a jump before those answers come: nothing of 64 was served, so nothing
    # more is fetched ahead
    assert layer.tile(top, 8, 0, "jpeg") == frames[8]  # block (0, 2)
    time.sleep(1.5)
    slow.times = 0
    asked = [set(numbers) for numbers in _asked(proxy)]
    assert _block(0, 2) in asked
    assert _block(0, 3) not in asked and _block(1, 2) not in asked


def test_a_tile_wanted_now_does_not_wait_behind_fetches_ahead(
    remote, frames, monkeypatch
):
    from dicomslide.transport import settings

    proxy, layer = remote
    top = _top(layer)
    monkeypatch.setattr(settings, "connections", 1)  # one fetch ahead at a time
    # block (0, 1), fetched ahead first, stalls; block (1, 0) waits its turn
    proxy.add("/frames/5", delay=3.0)
    layer.tile(top, 0, 0, "jpeg")
    start = time.monotonic()
    assert layer.tile(top, 0, 5, "jpeg") == frames[5 * COLUMNS]  # block (1, 0)
    assert time.monotonic() - start < 2.0  # not after the stalled fetch
    deadline = time.monotonic() + 10
    while layer.cached_tile(top, 4, 0, "jpeg") is None:  # the stalled block
        assert time.monotonic() < deadline, "the stalled fetch ahead never ended"
        time.sleep(0.05)
    time.sleep(0.2)  # (where the fetch ahead of (1, 0) would run)
    counts = Counter(n for numbers in _asked(proxy) for n in numbers)
    assert all(counts[n] == 1 for n in _block(1, 0))
