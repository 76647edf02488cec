"""The frame store: how the pasting of a read's cached frames is shared."""

from __future__ import annotations

import threading
import time

import numpy as np
import pydicom
import pytest

from dicomslide import pool, store
from dicomslide.cache import FrameCache
from dicomslide.client import LocalFolderClient
from dicomslide.image import TiledImage
from dicomslide.testing import synthetic


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> synthetic.SyntheticImage:
    """3.3 MB of random RGB in 256 x 384 tiles, with partial edge tiles."""
    return synthetic.write_wsi_image(
        tmp_path_factory.mktemp("store"),
        total_rows=1100,
        total_cols=1000,
        tile_rows=256,
        tile_cols=384,
        seed=23,
    )


@pytest.fixture
def frames(image, monkeypatch) -> store.FrameStore:
    """The image's store on two workers, every frame cached, nothing busy."""
    monkeypatch.setattr(pool, "WORKERS", 2)
    metadata = pydicom.dcmread(image.files[0], stop_before_pixels=True)
    tiled = TiledImage(
        LocalFolderClient(image.files[0].parent),
        metadata,
        correct_color=False,
        cache=FrameCache(1 << 26),
    )
    frame_store = tiled._store
    rows, columns = frame_store.total_shape
    frame_store.read_region(0, 0, (0, rows), (0, columns), 0)
    deadline = time.monotonic() + 10
    while pool.busy.count and time.monotonic() < deadline:
        time.sleep(0.005)
    assert pool.busy.count == 0
    return frame_store


def _pasting_threads(meet: int = 0):
    """A transform that notes the threads pasting frames; with `meet`, each
    thread's first frame waits until that many threads are pasting."""
    threads: set[int] = set()
    barrier = threading.Barrier(meet) if meet else None
    lock = threading.Lock()

    def transform(part: np.ndarray) -> np.ndarray:
        with lock:
            first = threading.get_ident() not in threads
            threads.add(threading.get_ident())
        if first and barrier is not None:
            barrier.wait(timeout=10)
        return part

    return transform, threads


def test_a_large_read_of_cached_frames_is_pasted_by_two_threads(image, frames):
    # the reader's first frame waits for a second thread: without a pool
    # thread pasting too, the barrier breaks and the read fails
    transform, threads = _pasting_threads(meet=2)
    rows, columns = frames.total_shape
    hits = frames.metrics.as_dict()["cache_hits"]
    got = frames.read_region(0, 0, (0, rows), (0, columns), 0, transform=transform)
    np.testing.assert_array_equal(got, image.pixels[0, 0])
    assert len(threads) == 2
    assert threading.get_ident() in threads
    assert frames.metrics.as_dict()["cache_hits"] - hits == 15


def test_a_large_opaque_rgba_read_of_cached_frames_places_every_pixel(image, frames):
    rgba = frames.as_rgba()
    rows, columns = frames.total_shape
    got = rgba.read_region(0, 0, (-3, rows + 2), (-5, columns), 0)
    expected = np.zeros((rows + 5, columns + 5, 4), np.uint8)
    expected[3 : 3 + rows, 5:, :3] = image.pixels[0, 0]
    expected[3 : 3 + rows, 5:, 3] = 255
    np.testing.assert_array_equal(got, expected)


def test_a_small_read_of_cached_frames_is_pasted_by_the_reader(image, frames):
    transform, threads = _pasting_threads()
    got = frames.read_region(0, 0, (200, 600), (300, 800), 0, transform=transform)
    np.testing.assert_array_equal(got, image.pixels[0, 0, 200:600, 300:800])
    assert threads == {threading.get_ident()}  # 4 frames, 600 KB


def test_cached_frames_are_pasted_by_the_reader_while_the_pool_is_busy(image, frames):
    transform, threads = _pasting_threads()
    rows, columns = frames.total_shape
    with pool.busy:  # another read decoding on the other core
        got = frames.read_region(0, 0, (0, rows), (0, columns), 0, transform=transform)
    np.testing.assert_array_equal(got, image.pixels[0, 0])
    assert threads == {threading.get_ident()}


def test_an_error_in_a_shared_paste_fails_the_read(frames):
    meet, threads = _pasting_threads(meet=2)
    reader = threading.get_ident()

    def transform(part: np.ndarray) -> np.ndarray:
        meet(part)
        if threading.get_ident() != reader:
            raise ValueError("no paste on the pool thread")
        return part

    rows, columns = frames.total_shape
    with pytest.raises(ValueError, match="no paste on the pool thread"):
        frames.read_region(0, 0, (0, rows), (0, columns), 0, transform=transform)
    assert len(threads) == 2
