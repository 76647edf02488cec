"""Faulting in the memory of new frames on an idle core (Linux)."""

from __future__ import annotations

import json
import mmap
import sys

import numpy as np
import pytest
import simplejpeg

from dicomslide import codec, pages
from dicomslide.errors import FrameDecodeError
from dicomslide.testing import synthetic
from tests.subprocesses import run_python

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


def test_a_read_of_one_frame_has_its_memory_faulted_in_by_the_idle_core(tmp_path):
    # A fresh interpreter: no decoding left over from other tests keeps the
    # cores busy; and glibc maps every block of 128 KiB or more anew, so the
    # frame's memory is fresh (not memory that imports used and freed).
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
    np.save(tmp_path / "truth.npy", image.redecode("pillow-direct")[0, 0])
    result = run_python(
        f"""
        import json
        import numpy as np
        import pydicom
        import dicomslide
        from dicomslide import pages, pool
        from dicomslide.cache import FrameCache

        pool.WORKERS = 2
        faulted = []
        fault_in = pages.fault_in

        def record(array):
            faulted.append(array.nbytes)
            fault_in(array)

        pages.fault_in = record
        path = {str(image.files[0])!r}
        truth = np.load({str(tmp_path / "truth.npy")!r})
        tiled = dicomslide.TiledImage(
            path.rsplit("/", 1)[0],
            pydicom.dcmread(path, stop_before_pixels=True),
            correct_color=False,
            cache=FrameCache(1 << 26),
        )
        matrix = tiled.get_total_pixel_matrix()
        report = {{}}
        for name, rows, columns in [
            ("one", slice(100, 300), slice(600, 800)),
            # three frames to decode keep both cores busy: none is faulted in
            ("three", slice(400, 700), slice(400, 900)),
        ]:
            equal = (matrix[rows, columns] == truth[rows, columns]).all()
            report[name] = [bool(equal), list(faulted)]
        report["busy"] = pool.busy.count
        print(json.dumps(report))
        """,
        MALLOC_MMAP_THRESHOLD_=str(128 * 1024),
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["one"] == [True, [512 * 512 * 3]]
    assert report["three"] == [True, [512 * 512 * 3]]
    assert report["busy"] == 0
