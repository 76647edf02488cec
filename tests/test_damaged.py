"""Damaged input: a clear error naming what is wrong, and nothing lost that is
on disk.

The damage is done to synthetic files by :mod:`synthetic`'s helpers: an
attribute that sizes the image set to 0 (or removed, or absurd), a transfer
syntax the data are not encoded in, a file cut at a chosen byte of its pixel
data.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

import dicomslide
from dicomslide.cache import FrameCache
from dicomslide.cli import main
from dicomslide.discovery import load_metadata
from dicomslide.errors import (
    FrameRetrievalError,
    MetadataError,
    UnsupportedTransferSyntaxError,
)
from dicomslide.openslide import OpenSlide, OpenSlideError
from dicomslide.testing import synthetic

try:
    from dicomslide.openslide import lowlevel
except ImportError:  # libopenslide is not installed
    lowlevel = None

#: A syntax nobody knows (a UID under the prefix pydicom generates UIDs with)
UNKNOWN_SYNTAX = "1.2.826.0.1.3680043.8.498.20.4242"


def _cache() -> FrameCache:
    return FrameCache(1 << 26)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> synthetic.SyntheticSlide:
    """An intact slide: VOLUME levels 0-2, thumbnail, label and overview."""
    return synthetic.write_slide(
        tmp_path_factory.mktemp("pristine"),
        "rgb_full",
        uids=synthetic.SlideUIDs.new("DAMAGED", key="damaged"),
    )


@pytest.fixture(scope="module")
def pristine_levels(pristine) -> dict[tuple[int, int], np.ndarray]:
    """Every level of the intact slide (THUMBNAIL included), as read by
    dicomslide, by size."""
    slide = dicomslide.find_slides(pristine.folder, correct_color=False)[0]
    return {
        size: slide.get_image_region((0, 0), level, size)
        for level, size in enumerate(slide.total_pixel_matrix_dimensions)
    }


# --------------------------------------------------------------------------
# Attributes that size an image
# --------------------------------------------------------------------------

#: (attribute, value written to level 1; None removes it, what the error says)
BROKEN_GEOMETRY = [
    ("Rows", 0, "Rows is 0"),
    ("Columns", 0, "Columns is 0"),
    ("TotalPixelMatrixRows", 0, "TotalPixelMatrixRows is 0"),
    ("TotalPixelMatrixColumns", 0, "TotalPixelMatrixColumns is 0"),
    ("NumberOfFrames", 0, "NumberOfFrames is 0"),
    ("Rows", None, "Rows is missing"),
    ("Columns", None, "Columns is missing"),
    # absurd values: the frames would not fill the TILED_FULL matrix
    ("Rows", 65535, "Rows 65535"),
    ("TotalPixelMatrixColumns", 2**32 - 1, "TotalPixelMatrixColumns 4294967295"),
]


def _break(pristine: synthetic.SyntheticSlide, tmp_path: Path, keyword, value):
    """A copy of the slide whose level 1 has a broken attribute."""
    folder = tmp_path / "slide"
    shutil.copytree(pristine.folder, folder)
    path = folder / pristine.levels[1].files[0].name
    synthetic.set_attribute(path, keyword, value)
    return folder, path, pristine.levels[1].sop_instance_uids[0]


def _names(error: BaseException, uid: str, what: str) -> None:
    message = str(error)
    assert uid in message and what in message, message


@pytest.mark.parametrize(("keyword", "value", "what"), BROKEN_GEOMETRY)
def test_broken_geometry_is_a_metadata_error(
    pristine, pristine_levels, tmp_path, caplog, keyword, value, what
):
    folder, path, uid = _break(pristine, tmp_path, keyword, value)
    metadata = pydicom.dcmread(path, stop_before_pixels=True)
    with pytest.raises(MetadataError) as info:
        dicomslide.TiledImage(folder, metadata, cache=_cache())
    assert info.value.sop_instance_uid == uid
    _names(info.value, uid, what)
    with pytest.raises(MetadataError) as info:
        dicomslide.find_slides(folder, cache=_cache())
    _names(info.value, uid, what)
    others = [
        pydicom.dcmread(image.files[0], stop_before_pixels=True)
        for image in (pristine.levels[0], pristine.levels[2])
    ]
    with pytest.raises(MetadataError) as info:
        dicomslide.Slide(folder, [others[0], metadata, others[1]], cache=_cache())
    _names(info.value, uid, what)

    # skipped with a warning: the rest of the folder opens
    with caplog.at_level(logging.WARNING, logger="dicomslide"):
        (slide,) = dicomslide.find_slides(
            folder, fail_on_error=False, correct_color=False, cache=_cache()
        )
    warnings = [r for r in caplog.records if uid in r.getMessage()]
    assert len(warnings) == 1 and what in warnings[0].getMessage()
    assert warnings[0].levelno == logging.WARNING
    broken = (pristine.levels[1].total_rows, pristine.levels[1].total_cols)
    sizes = slide.total_pixel_matrix_dimensions
    assert list(sizes) == [size for size in pristine_levels if size != broken]
    for level, size in enumerate(sizes):
        region = slide.get_image_region((0, 0), level, size)
        np.testing.assert_array_equal(region, pristine_levels[size])


@pytest.mark.filterwarnings("ignore:Invalid value")  # pydicom's, on reading
def test_broken_geometry_in_json_metadata(pristine):
    # metadata from a DICOMweb server: values out of range
    for keyword, tag, value in (
        ("Rows", "00280010", -256),
        ("TotalPixelMatrixColumns", "00480006", -1),
        ("NumberOfFrames", "00280008", -3),
    ):
        dataset = pydicom.dcmread(pristine.levels[0].files[0], stop_before_pixels=True)
        document = dataset.to_json_dict()
        document[tag]["Value"] = [value]
        metadata = load_metadata(None, document)
        with pytest.raises(MetadataError, match=keyword) as info:
            dicomslide.TiledImage(pristine.folder, metadata, cache=_cache())
        assert info.value.sop_instance_uid == pristine.levels[0].sop_instance_uids[0]


@pytest.mark.parametrize(("keyword", "value", "what"), BROKEN_GEOMETRY[:4])
def test_openslide_leaves_out_a_broken_level(pristine, tmp_path, keyword, value, what):
    # as OpenSlide 4 does: the other levels open; the broken file itself not
    folder, path, uid = _break(pristine, tmp_path, keyword, value)
    level0 = folder / pristine.levels[0].files[0].name
    for source in (folder, level0):
        with OpenSlide(source) as slide:
            assert slide.level_dimensions == (
                (pristine.levels[0].total_cols, pristine.levels[0].total_rows),
                (pristine.levels[2].total_cols, pristine.levels[2].total_rows),
            )
            assert slide.read_region((0, 0), 1, (30, 20)).size == (30, 20)
    with pytest.raises(OpenSlideError) as info:
        OpenSlide(path)
    _names(info.value, uid, what)
    if lowlevel is not None:  # the library agrees
        handle = lowlevel.open(level0)
        try:
            assert lowlevel.get_level_count(handle) == 2
        finally:
            lowlevel.close(handle)
        with pytest.raises(lowlevel.OpenSlideError):
            lowlevel.open(path)


@pytest.mark.parametrize(("keyword", "value", "what"), BROKEN_GEOMETRY[:2])
def test_cli_reports_broken_geometry_in_one_line(
    pristine, tmp_path, keyword, value, what
):
    folder, _, uid = _break(pristine, tmp_path, keyword, value)
    result = subprocess.run(
        [sys.executable, "-m", "dicomslide", "info", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,  # the dicomslide on sys.path, not one in the working folder
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("dicomslide: error:")
    _names(line, uid, what)


def test_cli_in_process(pristine, tmp_path, capsys):
    folder, _, uid = _break(pristine, tmp_path, "TotalPixelMatrixRows", 0)
    assert main(["ls", str(folder)]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    _names(line, uid, "TotalPixelMatrixRows is 0")


# --------------------------------------------------------------------------
# Transfer syntax the data are not encoded in
# --------------------------------------------------------------------------


def _image(folder: Path, transfer_syntax: str) -> synthetic.SyntheticImage:
    return synthetic.write_wsi_image(
        folder,
        total_rows=150,
        total_cols=230,
        tile_rows=64,
        tile_cols=96,
        transfer_syntax=transfer_syntax,
        uids=synthetic.SlideUIDs.new("SYNTAX"),
    )


@pytest.mark.filterwarnings("ignore:Expected explicit VR")  # pydicom's guess
@pytest.mark.parametrize(
    "transfer_syntax", [synthetic.EXPLICIT_VR_LE, synthetic.IMPLICIT_VR_LE]
)
def test_unknown_syntax_on_native_pixel_data(tmp_path, transfer_syntax):
    image = _image(tmp_path, transfer_syntax)
    synthetic.relabel_transfer_syntax(image.files[0], UNKNOWN_SYNTAX)
    (slide,) = dicomslide.find_slides(tmp_path, cache=_cache())  # metadata are fine
    assert slide.total_pixel_matrix_dimensions == ((150, 230),)
    for _ in range(2):  # and stay so
        with pytest.raises(UnsupportedTransferSyntaxError) as info:
            slide.get_image_region((70, 100), 0, (10, 10))
        assert info.value.sop_instance_uid == image.sop_instance_uids[0]
        assert info.value.frame_number == 5
        assert UNKNOWN_SYNTAX in str(info.value)
        assert "not encapsulated" in str(info.value)
    with (
        OpenSlide(image.files[0]) as facade,
        pytest.raises(OpenSlideError, match=UNKNOWN_SYNTAX),
    ):
        facade.read_region((0, 0), 0, (10, 10))


def test_unknown_syntax_on_encapsulated_pixel_data(tmp_path):
    image = _image(tmp_path, synthetic.JPEG_BASELINE)
    synthetic.relabel_transfer_syntax(image.files[0], UNKNOWN_SYNTAX)
    (slide,) = dicomslide.find_slides(tmp_path, cache=_cache())
    with pytest.raises(UnsupportedTransferSyntaxError) as info:
        slide.get_image_region((0, 0), 0, (10, 10))
    assert UNKNOWN_SYNTAX in str(info.value)
    assert info.value.sop_instance_uid == image.sop_instance_uids[0]
    assert info.value.frame_number == 1


@pytest.mark.parametrize(
    ("written", "claimed", "what"),
    [
        # JPEG streams are not read as pixels
        (synthetic.JPEG_BASELINE, synthetic.EXPLICIT_VR_LE, "are encapsulated"),
        (synthetic.EXPLICIT_VR_LE, synthetic.JPEG_BASELINE, "defined length"),
    ],
)
def test_syntax_that_contradicts_the_pixel_data(tmp_path, written, claimed, what):
    image = _image(tmp_path, written)
    synthetic.relabel_transfer_syntax(image.files[0], claimed)
    (slide,) = dicomslide.find_slides(tmp_path, cache=_cache())
    with pytest.raises(FrameRetrievalError, match=what) as info:
        slide.get_image_region((0, 0), 0, (10, 10))
    assert info.value.sop_instance_uid == image.sop_instance_uids[0]
    assert claimed in str(info.value)


def test_native_pixel_data_of_another_size(tmp_path):
    # a wrong Rows in sparse metadata would read every frame from the wrong
    # bytes; the Pixel Data's length shows it
    image = synthetic.write_wsi_image(
        tmp_path,
        total_rows=150,
        total_cols=230,
        tile_rows=64,
        tile_cols=96,
        organization="TILED_SPARSE",
        transfer_syntax=synthetic.EXPLICIT_VR_LE,
        uids=synthetic.SlideUIDs.new("SIZE"),
    )
    synthetic.set_attribute(image.files[0], "Rows", 63)
    (slide,) = dicomslide.find_slides(tmp_path, cache=_cache())
    with pytest.raises(FrameRetrievalError, match="Pixel Data hold") as info:
        slide.get_image_region((0, 0), 0, (10, 10))
    assert info.value.sop_instance_uid == image.sop_instance_uids[0]


# --------------------------------------------------------------------------
# Files cut inside their pixel data
# --------------------------------------------------------------------------

CUT_LAYOUTS = [
    # transfer syntax, offset table, fragments per frame
    (synthetic.JPEG_BASELINE, "basic", 1),
    (synthetic.JPEG_BASELINE, "empty", 1),
    (synthetic.JPEG_BASELINE, "extended", 1),
    (synthetic.JPEG_BASELINE, "basic", 2),
    (synthetic.JPEG_BASELINE, "empty", 3),
    (synthetic.RLE_LOSSLESS, "empty", 1),
    (synthetic.EXPLICIT_VR_LE, "basic", 1),
]
#: Frame (one-based) inside or after which the file is cut
CUT_FRAME = 10


def _tiled(folder: Path, path: Path, metadata) -> dicomslide.TotalPixelMatrix:
    image = dicomslide.TiledImage(folder, metadata, correct_color=False, cache=_cache())
    return image.get_total_pixel_matrix()


@pytest.mark.parametrize(("transfer_syntax", "offset_table", "fragments"), CUT_LAYOUTS)
@pytest.mark.parametrize("where", ["inside a frame", "after a frame"])
def test_cut_file_keeps_the_frames_before_the_cut(
    tmp_path, caplog, transfer_syntax, offset_table, fragments, where
):
    image = synthetic.write_wsi_image(
        tmp_path,
        total_rows=256,
        total_cols=384,
        tile_rows=64,
        tile_cols=64,
        transfer_syntax=transfer_syntax,
        offset_table=offset_table,
        fragments_per_frame=fragments,
        uids=synthetic.SlideUIDs.new("CUT"),
    )
    path = image.files[0]
    metadata = pydicom.dcmread(path, stop_before_pixels=True)
    matrix = _tiled(tmp_path, path, metadata)
    grid_rows, grid_columns = matrix.tile_grid_shape
    number_of_frames = grid_rows * grid_columns
    before = [matrix[index] for index in range(number_of_frames)]  # frame order
    if not image.lossy:
        np.testing.assert_array_equal(np.asarray(matrix), image.pixels[0, 0])

    ranges = synthetic.frame_byte_ranges(path)
    begin, end = ranges[CUT_FRAME - 1]
    # inside the frame's data, or 4 bytes into the next frame's item header
    cut = (begin + end) // 2 if where == "inside a frame" else end + 4
    path.write_bytes(path.read_bytes()[:cut])
    whole = [number for number, (_, stop) in enumerate(ranges, 1) if stop <= cut]
    assert whole == list(range(1, CUT_FRAME + (where == "after a frame")))

    with caplog.at_level(logging.WARNING, logger="dicomslide"):
        matrix = _tiled(tmp_path, path, metadata)
        for number in range(1, number_of_frames + 1):
            if number in whole:
                np.testing.assert_array_equal(matrix[number - 1], before[number - 1])
                continue
            with pytest.raises(FrameRetrievalError, match="truncated") as info:
                matrix[number - 1]
            assert info.value.sop_instance_uid == image.sop_instance_uids[0]
            assert info.value.frame_number == number
            assert f"{image.sop_instance_uids[0]}, frame {number}:" in str(info.value)
    lost = [r.getMessage() for r in caplog.records if "are lost" in r.getMessage()]
    assert lost == [
        f"instance {image.sop_instance_uids[0]}: file {path} ends inside its "
        f"pixel data: frames {len(whole) + 1} to {number_of_frames} are lost"
    ]

    # regions: the intact rows of tiles read; one lost tile fails the read
    intact_rows = len(whole) // grid_columns
    matrix = _tiled(tmp_path, path, metadata)
    region = matrix[: intact_rows * 64 - 3, 5:]
    expected = np.concatenate(
        [
            np.concatenate(before[r * grid_columns : (r + 1) * grid_columns], axis=1)
            for r in range(intact_rows)
        ]
    )
    np.testing.assert_array_equal(region, expected[: intact_rows * 64 - 3, 5:])
    with pytest.raises(FrameRetrievalError) as info:
        matrix[: intact_rows * 64 + 1, :]
    assert info.value.frame_number > len(whole)


def test_cut_file_through_find_slides_and_openslide(tmp_path):
    # the faces above the frame store: a slide, and OpenSlide's read_region
    image = synthetic.write_wsi_image(
        tmp_path,
        total_rows=256,
        total_cols=384,
        tile_rows=64,
        tile_cols=64,
        transfer_syntax=synthetic.JPEG_BASELINE,
        uids=synthetic.SlideUIDs.new("CUT-FACES"),
    )
    path = image.files[0]
    (slide,) = dicomslide.find_slides(tmp_path, correct_color=False, cache=_cache())
    top = slide.get_image_region((0, 0), 0, (64, 384))
    begin, _ = synthetic.frame_byte_ranges(path)[12]  # frames 1-12: tile rows 0-1
    path.write_bytes(path.read_bytes()[: begin + 100])
    (slide,) = dicomslide.find_slides(tmp_path, correct_color=False, cache=_cache())
    np.testing.assert_array_equal(slide.get_image_region((0, 0), 0, (64, 384)), top)
    with pytest.raises(FrameRetrievalError) as info:
        slide.get_image_region((100, 0), 0, (64, 64))
    assert info.value.frame_number == 13
    with OpenSlide(path) as facade:
        pixels = np.asarray(facade.read_region((0, 0), 0, (384, 128)))
        assert (pixels[..., 3] == 255).all()
        with pytest.raises(OpenSlideError, match="frame 13"):
            facade.read_region((0, 100), 0, (64, 64))
