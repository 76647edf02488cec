"""Clients: request economy, caching, threads, and the DICOMfileClient's gaps."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pydicom
import pytest
from dicomweb_client import DICOMfileClient

import dicomslide
from dicomslide import folder as folder_module
from dicomslide.cache import FrameCache
from dicomslide.client import LocalFolderClient, call, open_client
from dicomslide.files import PIXEL_DATA_OFFSET, files_under, read_header
from dicomslide.testing import synthetic
from tests.recording import RecordingClient

IMPLICIT_VR = "1.2.840.10008.1.2"
RLE = "1.2.840.10008.1.2.5"
JPEG_XL = "1.2.840.10008.1.2.4.110"


@pytest.fixture()
def image(tmp_path) -> synthetic.SyntheticImage:
    return synthetic.write_wsi_image(
        tmp_path / "slide",
        total_rows=300,
        total_cols=470,
        tile_rows=64,
        tile_cols=96,
        seed=5,
    )


def _metadata(image: synthetic.SyntheticImage) -> pydicom.Dataset:
    return pydicom.dcmread(image.files[0], stop_before_pixels=True)


def test_one_batched_request_per_read_and_none_when_cached(image, tmp_path):
    (tmp_path / "db").mkdir()
    inner = DICOMfileClient(
        url=image.files[0].parent.as_uri(), db_dir=tmp_path / "db", readonly=True
    )
    client = RecordingClient(inner)
    tiled = dicomslide.TiledImage(
        client, _metadata(image), correct_color=False, cache=FrameCache(1 << 26)
    )
    matrix = tiled.get_total_pixel_matrix()
    first = matrix[10:150, 50:250]  # 3 tile rows x 3 tile columns
    np.testing.assert_array_equal(first, image.pixels[0, 0, 10:150, 50:250])
    requests = client.frame_requests
    # the first request may be turned down while media types are negotiated
    assert requests[-1] == sorted(requests[-1]) and len(requests[-1]) == 9
    assert all(r == requests[-1] for r in requests)
    assert len(requests) <= 2
    count = client.calls["retrieve_instance_frames"]

    second = matrix[10:150, 50:250]
    np.testing.assert_array_equal(second, first)
    assert client.calls["retrieve_instance_frames"] == count  # cache served it

    matrix[10:150, 50:350]  # 3 more tiles: one more request, only for them
    assert client.calls["retrieve_instance_frames"] == count + 1
    assert len(client.frame_requests[-1]) == 3


def test_cache_eviction_is_bounded_in_bytes(image):
    frame_bytes = 64 * 96 * 3
    cache = FrameCache(4 * frame_bytes)
    tiled = dicomslide.TiledImage(
        LocalFolderClient(image.files[0].parent),
        _metadata(image),
        max_frame_cache_size=0,
        correct_color=False,
        cache=cache,
    )
    matrix = tiled.get_total_pixel_matrix()
    matrix[:, :]
    assert cache.nbytes <= 4 * frame_bytes
    assert len(cache) == 4
    # the most recently used frames survive
    hits = cache.hits
    matrix[matrix.num_tiles - 1]
    assert cache.hits == hits + 1
    matrix[0]
    assert cache.misses > 0 and cache.hits == hits + 1


def test_max_frame_cache_size_grows_the_budget(image):
    cache = FrameCache(0)
    dicomslide.TiledImage(
        LocalFolderClient(image.files[0].parent),
        _metadata(image),
        max_frame_cache_size=10,
        cache=cache,
    )
    assert cache.max_bytes == 10 * 64 * 96 * 3


def test_cached_frames_are_read_only(image):
    cache = FrameCache(1 << 26)
    tiled = dicomslide.TiledImage(
        image.files[0].parent, _metadata(image), correct_color=False, cache=cache
    )
    tile = tiled.get_total_pixel_matrix()[3]
    tile[:] = 0  # the caller's copy
    np.testing.assert_array_equal(
        tiled.get_total_pixel_matrix()[3][:64, :96], image.pixels[0, 0, :64, 288:384]
    )


@pytest.mark.parametrize("transfer_syntax", [IMPLICIT_VR, RLE, JPEG_XL])
def test_files_the_file_client_cannot_serve(tmp_path, transfer_syntax):
    image = synthetic.write_wsi_image(
        tmp_path,
        total_rows=150,
        total_cols=230,
        tile_rows=64,
        tile_cols=96,
        transfer_syntax=transfer_syntax,
    )
    slides = dicomslide.find_slides(tmp_path, correct_color=False)
    assert len(slides) == 1
    region = slides[0].get_image_region((0, 0), 0, (150, 230))
    np.testing.assert_array_equal(region, image.pixels[0, 0])


def test_plain_file_client_of_the_user(tmp_path):
    image = synthetic.write_wsi_image(
        tmp_path / "data",
        total_rows=150,
        total_cols=230,
        tile_rows=64,
        tile_cols=96,
        transfer_syntax=IMPLICIT_VR,
    )
    client = DICOMfileClient(url=(tmp_path / "data").as_uri(), in_memory=True)
    slides = dicomslide.find_slides(client, correct_color=False)
    region = slides[0].get_image_region((0, 0), 0, (150, 230))
    np.testing.assert_array_equal(region, image.pixels[0, 0])

    # reads from other threads (the client's SQLite index is bound to this one)
    def read(offset: int) -> np.ndarray:
        return slides[0].get_image_region((offset, offset), 0, (40, 40))

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(read, range(0, 100, 10)))
    for offset, result in zip(range(0, 100, 10), results, strict=True):
        np.testing.assert_array_equal(
            result, image.pixels[0, 0, offset : offset + 40, offset : offset + 40]
        )


def test_embedded_client_writes_nothing_into_the_folder(tmp_path):
    synthetic.write_slide(tmp_path, "rgb_full")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    slides = dicomslide.find_slides(str(tmp_path))
    slides[0].get_image_region((0, 0), 0, (10, 10))
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_open_client_accepts_paths_urls_and_clients(tmp_path):
    assert isinstance(open_client(tmp_path), LocalFolderClient)
    assert isinstance(open_client(tmp_path.as_uri()), LocalFolderClient)
    web = open_client("http://127.0.0.1:9/dicom-web")
    assert web.base_url == "http://127.0.0.1:9/dicom-web"
    client = LocalFolderClient(tmp_path)
    assert open_client(client) is client
    with pytest.raises(FileNotFoundError):
        open_client(tmp_path / "missing")


def test_concurrent_reads_equal_serial_reads(tmp_path):
    slide = synthetic.write_slide(tmp_path, "concatenation")
    level = slide.levels[0]
    parts = [pydicom.dcmread(f, stop_before_pixels=True) for f in level.files]
    tiled = dicomslide.TiledImage(
        tmp_path, parts, correct_color=False, cache=FrameCache(64 * 96 * 3 * 4)
    )
    matrix = tiled.get_total_pixel_matrix()
    rng = np.random.default_rng(1)
    boxes = [
        (int(rng.integers(0, 280)), int(rng.integers(0, 450)), 20, 20)
        for _ in range(60)
    ]

    def read(box: tuple[int, int, int, int]) -> np.ndarray:
        r, c, h, w = box
        return matrix[r : r + h, c : c + w]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(read, boxes))
    for (r, c, h, w), result in zip(boxes, results, strict=True):
        np.testing.assert_array_equal(result, level.pixels[0, 0, r : r + h, c : c + w])


def _count_header_reads(monkeypatch, delay: float = 0.0) -> list:
    """Count (and slow down) the header reads of embedded clients."""
    reads = []

    def counted(path):
        reads.append(path)
        time.sleep(delay)
        return read_header(path)

    monkeypatch.setattr(folder_module, "read_header", counted)
    return reads


def test_embedded_client_reads_each_header_once_from_any_thread(tmp_path, monkeypatch):
    slide = synthetic.write_slide(tmp_path, "concatenation")
    reads = _count_header_reads(monkeypatch, delay=0.01)
    client = LocalFolderClient(tmp_path)
    with ThreadPoolExecutor(4) as pool:
        series = list(pool.map(lambda _: call(client, "search_for_series"), range(8)))
        instances = list(
            pool.map(lambda _: len(client.search_for_instances()), range(8))
        )
    assert all(len(found) == 1 for found in series)
    assert instances == [len(slide.files)] * 8
    # each file's header was read once, whichever thread asked first
    assert sorted(reads) == sorted(files_under(tmp_path))


def test_callers_wait_for_the_headers_another_thread_is_reading(image, monkeypatch):
    reads = _count_header_reads(monkeypatch, delay=0.2)
    client = LocalFolderClient(image.files[0].parent)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(call, client, "search_for_series")
        time.sleep(0.05)
        second = pool.submit(call, client, "search_for_series")
        assert len(first.result()) == len(second.result()) == 1
    assert len(reads) == len(image.files)


def test_files_under_lists_what_rglob_lists(tmp_path):
    for name in ["b.dcm", "a/x.dcm", "a/b/y", "a-b/z.dcm", "a b/w", "c/.hidden"]:
        path = tmp_path / "data" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(name.encode())
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "v.dcm").write_bytes(b"v")
    (tmp_path / "data" / "link-to-folder").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "data" / "link-to-file").symlink_to(tmp_path / "data" / "b.dcm")
    folder = tmp_path / "data"
    expected = sorted(p for p in folder.rglob("*") if p.is_file())
    listed = files_under(folder)
    assert listed == expected
    assert folder / "link-to-file" in listed
    assert not any("elsewhere" in str(p) or "link-to-folder" in str(p) for p in listed)


@pytest.mark.parametrize("icc_bytes", [0, 200_000])
def test_headers_equal_what_pydicom_reads_from_the_file(tmp_path, icc_bytes):
    # A header within the first bytes read is parsed from memory; a longer one
    # (here a large ICC profile) from the file. Either way: pydicom's dataset,
    # and the offset where the pixel data element begins.
    profile = np.random.default_rng(4).integers(0, 256, icc_bytes, np.uint8).tobytes()
    image = synthetic.write_wsi_image(
        tmp_path,
        total_rows=150,
        total_cols=230,
        tile_rows=64,
        tile_cols=96,
        icc_profile=profile or None,
    )
    path = image.files[0]
    header = read_header(path)
    assert header is not None
    expected = pydicom.dcmread(path, stop_before_pixels=True)
    assert header == expected
    assert header.filename == str(path)
    assert header.buffer is None  # the bytes read are not kept alive with it
    offset = getattr(header, PIXEL_DATA_OFFSET)
    assert (offset > 64 * 1024) == bool(icc_bytes)
    with open(path, "rb") as fp:
        fp.seek(offset)
        assert fp.read(4) == b"\xe0\x7f\x10\x00"  # (7FE0,0010) Pixel Data
    if icc_bytes:
        assert header.OpticalPathSequence[0].ICCProfile == profile


def test_headers_of_files_shorter_than_the_first_read(image, tmp_path):
    # A DICOM file without pixel data, shorter than the bytes read at once,
    # and a file cut inside its header: what pydicom reads of them.
    path = image.files[0]
    dataset = pydicom.dcmread(path)
    del dataset.PixelData
    bare = tmp_path / "bare.dcm"
    dataset.save_as(bare)
    header = read_header(bare)
    assert header is not None and header.SOPInstanceUID == dataset.SOPInstanceUID
    assert getattr(header, PIXEL_DATA_OFFSET) == bare.stat().st_size
    offset = getattr(read_header(path), PIXEL_DATA_OFFSET)
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(path.read_bytes()[: offset - 100])
    header = read_header(cut)
    assert header is not None
    assert header == pydicom.dcmread(cut, stop_before_pixels=True)
    assert "Rows" in header


def test_part10_files_are_told_apart_one_way(image, tmp_path):
    from dicomslide.errors import MetadataError
    from dicomslide.files import NotPart10Error, is_part10, read_part10_header

    path = image.files[0]
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening it would block: it is not opened
    short = tmp_path / "short.dcm"
    short.write_bytes(path.read_bytes()[:131])
    text = tmp_path / "notes.txt"
    text.write_text("not DICOM " * 20)
    assert is_part10(path) and is_part10(os.fsencode(path))
    for other in (tmp_path, fifo, short, text, tmp_path / "missing"):
        assert not is_part10(other)
    header = read_part10_header(path)
    assert header == pydicom.dcmread(path, stop_before_pixels=True)
    with pytest.raises(NotPart10Error, match="not a DICOM Part 10 file"):
        read_part10_header(text)
    broken = tmp_path / "broken.dcm"
    # a file meta element of an unknown VR, which pydicom refuses
    element = b"\x02\x00\x00\x00ZZ\x04\x00\x00\x00\x00\x00"
    broken.write_bytes(path.read_bytes()[:132] + element + b"x" * 70_000)
    with pytest.raises(MetadataError, match="cannot parse"):
        read_part10_header(broken)
    assert read_header(broken) is None and read_header(text) is None
