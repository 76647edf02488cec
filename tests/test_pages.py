"""Faulting in the memory of new frames on an idle core (Linux)."""

from __future__ import annotations

import ctypes
import mmap
import sys

import numpy as np
import pydicom
import pytest
import simplejpeg
import synthetic

import dicomslide
from dicomslide import codec, pages, store
from dicomslide.cache import FrameCache
from dicomslide.errors import FrameDecodeError

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="madvise/mincore are Linux's"
)

JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
PAGE = mmap.PAGESIZE


def _fresh(nbytes: int) -> tuple[mmap.mmap, np.ndarray]:
    """Anonymous memory that no page of is mapped yet."""
    memory = mmap.mmap(-1, nbytes)
    return memory, np.frombuffer(memory, np.uint8)


def test_fault_in_maps_the_pages_and_keeps_what_was_written():
    memory, array = _fresh(64 * PAGE)
    assert pages.needs_faulting(array)
    written = np.random.default_rng(0).integers(0, 256, 3 * PAGE, np.uint8)
    array[: 3 * PAGE] = written
    pages.fault_in(array)
    assert not pages.needs_faulting(array)
    np.testing.assert_array_equal(array[: 3 * PAGE], written)
    assert not array[3 * PAGE :].any()
    del array
    memory.close()


def test_what_is_worth_faulting_in():
    assert pages.worth_faulting(512 * 512 * 3)
    assert not pages.worth_faulting(240 * 240 * 3)  # hand-over costs as much
    # no whole page: nothing to map ahead
    assert not pages.needs_faulting(np.ones(PAGE // 2, np.uint8))
    # memory in use is resident
    assert not pages.needs_faulting(np.ones(64 * PAGE, np.uint8))


def _jpeg_frame(rows: int, columns: int, samples: int = 3) -> tuple[bytes, np.ndarray]:
    rng = np.random.default_rng(rows)
    pixels = rng.integers(0, 256, (rows, columns, samples), np.uint8)
    colorspace = "GRAY" if samples == 1 else "RGB"
    data = simplejpeg.encode_jpeg(
        pixels, quality=95, colorspace=colorspace, colorsubsampling="422"
    )
    return data, simplejpeg.decode_jpeg(data, colorspace=colorspace)


def _desc(rows: int, columns: int, samples: int = 3) -> codec.PixelDescription:
    return codec.PixelDescription(
        rows=rows,
        columns=columns,
        samples_per_pixel=samples,
        bits_allocated=8,
        bits_stored=8,
        pixel_representation=0,
        photometric_interpretation="MONOCHROME2" if samples == 1 else "YBR_FULL_422",
        planar_configuration=0,
        transfer_syntax_uid=JPEG_BASELINE,
    )


@pytest.mark.parametrize("samples", [1, 3])
def test_jpeg_frames_decode_into_given_memory(samples):
    data, expected = _jpeg_frame(512, 384, samples)
    desc = _desc(512, 384, samples)
    assert codec.decodes_into(desc)
    out = np.empty(desc.shape, desc.dtype)
    frame = codec.decode_frame(data, desc, "1.2.3", 7, out)
    assert np.shares_memory(frame, out)
    np.testing.assert_array_equal(frame, expected)


@pytest.mark.parametrize("stored_rows", [256, 768], ids=["smaller", "larger"])
def test_a_frame_of_another_size_is_an_error_naming_it(stored_rows):
    data, _ = _jpeg_frame(stored_rows, 384)
    desc = _desc(512, 384)
    out = np.empty(desc.shape, desc.dtype)
    with pytest.raises(FrameDecodeError) as info:
        codec.decode_frame(data, desc, "1.2.3", 7, out)
    assert info.value.frame_number == 7
    assert "1.2.3" in str(info.value)


def _tiled(image: synthetic.SyntheticImage) -> dicomslide.TiledImage:
    metadata = pydicom.dcmread(image.files[0], stop_before_pixels=True)
    return dicomslide.TiledImage(
        image.files[0].parent, metadata, correct_color=False, cache=FrameCache(1 << 26)
    )


@pytest.fixture
def faulted(monkeypatch):
    """Arrays faulted in by pool threads, with two decoding threads."""
    calls: list[int] = []
    fault_in = pages.fault_in

    def record(array: np.ndarray) -> None:
        calls.append(array.nbytes)
        fault_in(array)

    monkeypatch.setattr(pages, "fault_in", record)
    monkeypatch.setattr(store, "_WORKERS", 2)
    return calls


def test_a_read_of_one_frame_has_its_memory_faulted_in_by_the_idle_core(
    tmp_path, faulted
):
    image = synthetic.write_wsi_image(
        tmp_path,
        total_rows=700,
        total_cols=900,
        tile_rows=512,
        tile_cols=512,
        transfer_syntax=JPEG_BASELINE,
        jpeg_quality=95,
        seed=5,
    )
    truth = image.redecode("pillow-direct")[0, 0]
    matrix = _tiled(image).get_total_pixel_matrix()
    # Free memory goes back to the system, so the frame's memory is fresh.
    ctypes.CDLL(None).malloc_trim(0)
    np.testing.assert_array_equal(matrix[100:300, 600:800], truth[100:300, 600:800])
    assert faulted == [512 * 512 * 3]
    # three frames to decode keep both cores busy: none is faulted in ahead
    np.testing.assert_array_equal(matrix[400:700, 400:900], truth[400:700, 400:900])
    assert faulted == [512 * 512 * 3]
    assert store._busy.count == 0
