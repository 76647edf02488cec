"""Read-ahead of row-major scans, and one load per frame under concurrency."""

from __future__ import annotations

import threading
import time

import numpy as np
import pydicom
import pytest
from pydicom.encaps import generate_frames

import dicomslide
from dicomslide.cache import FrameCache
from dicomslide.client import LocalFolderClient
from dicomslide.errors import FrameDecodeError
from dicomslide.readahead import ScanPredictor
from dicomslide.testing import synthetic
from tests.subprocesses import run_python

JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
KEY = (0, 0)


def _scan(origin, patch, step, count_rows, count_columns):
    r0, c0 = origin
    for i in range(count_rows):
        for j in range(count_columns):
            row, column = r0 + i * step[0], c0 + j * step[1]
            yield (row, row + patch[0], column, column + patch[1])


def test_a_row_major_scan_is_predicted_across_rows():
    predictor = ScanPredictor((1000, 2000), depth=2)
    regions = list(_scan((10, 30), (100, 100), (100, 100), 3, 4))
    predictions = [predictor.observe(KEY, region) for region in regions]
    assert predictions[0] == []  # one read is no scan yet
    assert predictions[1] == [regions[2], regions[3]]
    # the first row's end is unknown: the matrix edge bounds it (2000 columns)
    assert predictions[3] == [(10, 110, 430, 530), (10, 110, 530, 630)]
    # once a row has ended, predictions wrap to the next row
    assert predictions[5] == [regions[6], regions[7]]
    assert predictions[6] == [regions[7], regions[8]]
    assert predictions[7] == [regions[8], regions[9]]


def test_overlapping_scans_and_the_matrix_edge():
    predictor = ScanPredictor((300, 260), depth=3)
    regions = list(_scan((0, 0), (128, 128), (64, 64), 2, 4))
    predictions = [predictor.observe(KEY, region) for region in regions]
    # a region may reach past the matrix, but must start inside it
    assert predictions[1] == [
        (0, 128, 128, 256),
        (0, 128, 192, 320),
        (0, 128, 256, 384),
    ]
    assert predictions[2] == [(0, 128, 192, 320), (0, 128, 256, 384)]
    assert predictions[4] == [regions[5], regions[6], regions[7]]


@pytest.mark.parametrize(
    "reads",
    [
        # random reads of one size
        [(0, 100, 0, 100), (500, 600, 900, 1000), (200, 300, 40, 140)],
        # a step larger than the region: gaps are not a scan
        [(0, 100, 0, 100), (0, 100, 150, 250), (0, 100, 300, 400)],
        # sizes change
        [(0, 100, 0, 100), (0, 100, 100, 150), (0, 100, 150, 230)],
        # leftwards
        [(0, 100, 500, 600), (0, 100, 400, 500)],
    ],
)
def test_other_reads_predict_nothing(reads):
    predictor = ScanPredictor((1000, 2000), depth=2)
    assert all(predictor.observe(KEY, region) == [] for region in reads)


def test_another_channel_starts_afresh_and_depth_zero_is_off():
    predictor = ScanPredictor((1000, 2000), depth=2)
    predictor.observe(KEY, (0, 100, 0, 100))
    assert predictor.observe((1, 0), (0, 100, 100, 200)) == []
    off = ScanPredictor((1000, 2000), depth=0)
    assert all(
        off.observe(KEY, region) == []
        for region in _scan((0, 0), (100, 100), (100, 100), 2, 5)
    )


def test_depth_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("DICOMSLIDE_READAHEAD", "5")
    assert ScanPredictor((10, 10)).depth == 5
    monkeypatch.setenv("DICOMSLIDE_READAHEAD", "0")
    assert ScanPredictor((10, 10)).depth == 0


# -- through the frame store -----------------------------------------------------


@pytest.fixture(scope="module")
def jpeg_image(tmp_path_factory) -> synthetic.SyntheticImage:
    return synthetic.write_wsi_image(
        tmp_path_factory.mktemp("readahead"),
        total_rows=600,
        total_cols=700,
        tile_rows=64,
        tile_cols=96,
        transfer_syntax=JPEG_BASELINE,
        seed=11,
    )


def _matrix(image, cache_bytes=1 << 26) -> dicomslide.TotalPixelMatrix:
    metadata = pydicom.dcmread(image.files[0], stop_before_pixels=True)
    tiled = dicomslide.TiledImage(
        LocalFolderClient(image.files[0].parent),
        metadata,
        correct_color=False,
        cache=FrameCache(cache_bytes),
    )
    return tiled.get_total_pixel_matrix()


def _decoded(image) -> np.ndarray:
    """The whole matrix, frame by frame through the same decoder."""
    matrix = _matrix(image)
    return matrix.read_region((0, 0), matrix.shape[:2])


def _tiles(regions) -> set[tuple[int, int]]:
    """Tiles (64 x 96) the regions touch."""
    return {
        (row, column)
        for r0, r1, c0, c1 in regions
        for row in range(r0 // 64, (r1 - 1) // 64 + 1)
        for column in range(c0 // 96, (c1 - 1) // 96 + 1)
    }


def test_a_scan_reads_ahead_and_reads_each_frame_once(jpeg_image):
    expected = _decoded(jpeg_image)
    matrix = _matrix(jpeg_image)
    image = matrix.image
    regions = list(_scan((5, 7), (100, 150), (100, 150), 5, 4))
    for r0, r1, c0, c1 in regions:
        got = matrix.read_region((r0, c0), (r1 - r0, c1 - c0))
        np.testing.assert_array_equal(got, expected[r0:r1, c0:c1])
    # the tiles the scan touched, plus at most those of regions predicted in
    # vain (read ahead in the background, maybe still loading): past the
    # first row's end, not known yet, and a row after the last one (a scan's
    # end is never known). Never a frame twice.
    in_vain = [(5, 105, 607, 757), (505, 605, 7, 157), (505, 605, 157, 307)]
    metrics = image.metrics
    assert len(_tiles(regions)) <= metrics["frames_fetched"]
    assert metrics["frames_fetched"] <= len(_tiles(regions + in_vain))
    assert metrics["cache_hits"] > 0
    # fewer requests than reads would need without read-ahead: the frames a
    # read needed were already loading or loaded
    assert metrics["requests"] < len(regions) + 6


def _settle(matrix) -> None:
    """Wait until no frame of the matrix's image is loading in the background."""
    store = matrix._store
    deadline = time.monotonic() + 10
    while store.loader.loading and time.monotonic() < deadline:
        time.sleep(0.005)
    assert not store.loader.loading


@pytest.mark.parametrize("depth", [0, 2])
def test_the_next_region_of_a_scan_is_loaded_before_it_is_read(
    jpeg_image, monkeypatch, depth
):
    monkeypatch.setenv("DICOMSLIDE_READAHEAD", str(depth))
    matrix = _matrix(jpeg_image)
    regions = list(_scan((5, 7), (100, 150), (100, 150), 2, 4))
    for r0, r1, c0, c1 in regions[:5]:  # a row, and the first of the next
        matrix.read_region((r0, c0), (r1 - r0, c1 - c0))
    _settle(matrix)
    before = dict(matrix.image.metrics)
    r0, r1, c0, c1 = regions[5]
    matrix.read_region((r0, c0), (r1 - r0, c1 - c0))
    # (its own read-ahead may be fetching frames of later regions by now)
    hits = matrix.image.metrics["cache_hits"] - before["cache_hits"]
    tiles = _tiles(regions[5:6])
    new_tiles = tiles - _tiles(regions[:5])
    assert (len(tiles), len(new_tiles)) == (9, 4)
    assert hits == (len(tiles) if depth else len(tiles) - len(new_tiles))


def test_without_read_ahead_nothing_extra_is_fetched(jpeg_image, monkeypatch):
    monkeypatch.setenv("DICOMSLIDE_READAHEAD", "0")
    matrix = _matrix(jpeg_image)
    regions = list(_scan((5, 7), (100, 150), (100, 150), 2, 4))
    for r0, r1, c0, c1 in regions:
        matrix.read_region((r0, c0), (r1 - r0, c1 - c0))
    assert matrix.image.metrics["frames_fetched"] == len(_tiles(regions))


def test_a_local_scan_reads_ahead_in_the_decode_threads(jpeg_image):
    # Reading a local file is work for a core, not a wait on a network: a
    # scan's read-ahead runs in the decode pool, and the I/O pool (whose
    # threads nobody counts as busy) never starts. A fresh interpreter, since
    # other tests start the I/O pool.
    result = run_python(
        """
        import os, threading
        import dicomslide
        slide = dicomslide.open_slide(os.environ["FOLDER"], correct_color=False)
        for column in range(0, 600, 100):
            slide.get_image_region((5, column), 0, (100, 100))
        io = [t for t in threading.enumerate() if t.name.startswith("dicomslide-io")]
        print(slide.metrics["cache_hits"], len(io))
        """,
        FOLDER=str(jpeg_image.files[0].parent),
    )
    assert result.returncode == 0, result.stderr
    hits, io_threads = map(int, result.stdout.split())
    assert hits > 0  # frames were read ahead
    assert io_threads == 0


def test_concurrent_reads_load_each_frame_once(jpeg_image):
    expected = _decoded(jpeg_image)
    matrix = _matrix(jpeg_image)
    barrier = threading.Barrier(6)
    failures: list[BaseException] = []

    def read(seed: int) -> None:
        rng = np.random.default_rng(seed)
        barrier.wait()
        try:
            for _ in range(15):
                r0, c0 = int(rng.integers(0, 500)), int(rng.integers(0, 560))
                got = matrix.read_region((r0, c0), (100, 140))
                np.testing.assert_array_equal(
                    got, expected[r0 : r0 + 100, c0 : c0 + 140]
                )
        except BaseException as error:  # reported below
            failures.append(error)

    threads = [threading.Thread(target=read, args=(seed,)) for seed in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[0]
    assert matrix.image.metrics["frames_fetched"] <= matrix.num_tiles


def test_a_damaged_frame_ahead_fails_only_the_read_that_needs_it(tmp_path):
    image = synthetic.write_wsi_image(
        tmp_path,
        total_rows=128,
        total_cols=96 * 6,
        tile_rows=64,
        tile_cols=96,
        transfer_syntax=JPEG_BASELINE,
        seed=12,
    )
    dataset = pydicom.dcmread(image.files[0])
    frames = list(generate_frames(dataset.PixelData, number_of_frames=12))
    damaged = frames[4][: len(frames[4]) // 2]
    damaged += b"\xff" * (len(frames[4]) - len(damaged) - 2) + b"\xff\xd9"
    data = image.files[0].read_bytes()
    image.files[0].write_bytes(data.replace(frames[4], damaged))
    matrix = _matrix(image)
    # a scan along the first tile row: frame 5 (column 4) is read ahead
    matrix.read_region((0, 0), (64, 96))
    matrix.read_region((0, 96), (64, 96))
    matrix.read_region((0, 192), (64, 96))
    matrix.read_region((64, 96), (64, 96))  # another row, unaffected
    with pytest.raises(FrameDecodeError) as info:
        matrix.read_region((0, 384), (64, 96))
    assert info.value.frame_number == 5
    assert image.sop_instance_uids[0] in str(info.value)
    # the error is not cached: the same read raises again
    with pytest.raises(FrameDecodeError):
        matrix.read_region((0, 384), (64, 96))
    matrix.read_region((0, 288), (64, 96))


def test_a_read_that_fails_midway_leaves_no_frame_pending(jpeg_image):
    expected = _decoded(jpeg_image)
    matrix = _matrix(jpeg_image)
    store = matrix._store
    grid = store.grid(0, 0)
    first, second = grid.frame_at(0, 0), grid.frame_at(3, 4)
    store.load_frames([first], lambda index, frame: None)  # now cached

    def fail(index: int, frame: np.ndarray) -> None:
        raise RuntimeError("the caller's callback failed")

    # the cached frame's callback fails before the other frame is decoded
    with pytest.raises(RuntimeError, match="callback"):
        store.load_frames([first, second], fail)
    assert not store.loader.loading
    got = matrix.read_region((3 * 64, 4 * 96), (64, 96))
    np.testing.assert_array_equal(got, expected[192:256, 384:480])


def test_remote_reads_ahead_name_the_rest_of_a_scan_row_by_row():
    predictor = ScanPredictor((500, 1000))
    assert list(predictor.observe_rows(KEY, (0, 100, 0, 100))) == []  # no scan yet
    # in the first row: its rest, to the matrix's edge
    assert list(predictor.observe_rows(KEY, (0, 100, 100, 200))) == [
        (0, 100, 200, 1000)
    ]
    # a scan of columns [0, 300): once its first row has ended, rows end
    # there, and four times as many rows as have ended come next
    predictor = ScanPredictor((900, 1000))
    for region in ((0, 100, 0, 100), (0, 100, 100, 200), (0, 100, 200, 300)):
        predictor.observe_rows(KEY, region)
    assert list(predictor.observe_rows(KEY, (100, 200, 0, 100))) == [
        (100, 200, 100, 300),
        *((top, top + 100, 0, 300) for top in (200, 300, 400, 500)),
    ]
    for column in (100, 200):
        predictor.observe_rows(KEY, (100, 200, column, column + 100))
    assert list(predictor.observe_rows(KEY, (200, 300, 0, 100))) == [
        (200, 300, 100, 300),
        *((top, top + 100, 0, 300) for top in (300, 400, 500, 600, 700, 800)),
    ]  # the matrix ends at row 900
    assert list(predictor.observe_rows(KEY, (0, 100, 0, 100))) == []  # not a scan
    off = ScanPredictor((500, 1000), depth=0)
    assert list(off.observe_rows(KEY, (0, 1, 0, 1))) == []
