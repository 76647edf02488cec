"""Every folder of ``../shared/data/wild-dicom`` behaves as its README says.

Files other projects wrote (Google's converters and test data, highdicom's
test files). A folder that holds a VOLUME image opens as one slide whose raw
pixels equal those of independent readers: wsidicom and OpenSlide 4 for
VOLUME images, highdicom for segmentations. A folder with only a LABEL image,
only annotations or a non-WSI image gives no slide and no exception. The
OpenSlide facade shows what OpenSlide 4 shows wherever OpenSlide opens the
files, and raises ``OpenSlideError`` where OpenSlide does.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import highdicom as hd
import numpy as np
import openslide
import pytest
import wsidicom

import dicomslide
import dicomslide.openslide as dicomslide_openslide
from dicomslide.enum import ChannelTypes

#: Folders with a VOLUME image: one slide each
SLIDES = (
    "ezwsi-camelyon-jpeg",
    "gcp-wsi2dcm-jpeg",
    "gcp-wsi2dcm-jpeg2000",
    "gcp-wsi2dcm-raw",
    "gmi-camelyon-j2k",
    "gmi-camelyon-jpeg-proxy",
    "gmi-volume-jpeg-1frame",
    "gmi-volume-raw-1frame",
    "highdicom-sm_image",
    "highdicom-sm_image_control",
    "highdicom-sm_image_dots",
    "highdicom-sm_image_grayscale",
    "highdicom-sm_image_grayscale_reversed",
    "highdicom-sm_image_jpegls",
    "highdicom-sm_image_jpegls_nobot",
    "highdicom-sm_image_numbers",
)
#: Folders with only LABEL images: no slide, one warning
LABELS_ONLY = ("ezwsi-label-test", "gmi-label-matrix", "gmi-label-private-tags")
#: Folders without images of a slide: no slide, nothing to warn about
NO_SLIDE = ("gmi-annotation-orphan", "gmi-slide-coordinates")
#: wsidicom 0.36 fails on a single frame that is the whole matrix
# ("generator raised StopIteration"); OpenSlide 4 is their oracle
WSIDICOM_FAILS = ("gmi-volume-jpeg-1frame", "gmi-volume-raw-1frame")


@pytest.fixture(autouse=True)
def _quiet_pydicom():
    # a UI value of 66 characters (ezwsi-camelyon-jpeg) makes pydicom warn
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith("dicomslide")
    ]


def _volume_file(folder: Path) -> Path:
    """One VOLUME file of a folder (what OpenSlide 4 is given)."""
    import pydicom

    for path in sorted(folder.iterdir()):
        header = pydicom.dcmread(path, stop_before_pixels=True)
        image_type = header.get("ImageType") or []
        if len(image_type) > 2 and image_type[2] == "VOLUME":
            return path
    raise AssertionError(f"no VOLUME file in {folder}")


def test_every_folder_is_covered(wild):
    folders = {p.name for p in wild.iterdir() if p.is_dir()}
    assert folders == set(SLIDES) | set(LABELS_ONLY) | set(NO_SLIDE)


@pytest.mark.parametrize("name", SLIDES)
def test_slide_pixels_equal_independent_readers(wild, name, caplog):
    folder = wild / name
    with caplog.at_level(logging.WARNING):
        (slide,) = dicomslide.find_slides(folder, correct_color=False)
    assert _warnings(caplog) == []
    oracles = 0
    if name not in WSIDICOM_FAILS:
        with wsidicom.WsiDicom.open(folder) as reference:
            assert len(reference.levels) == slide.num_levels
            for level in range(slide.num_levels):
                rows, cols = slide.total_pixel_matrix_dimensions[level]
                expected = np.asarray(
                    reference.read_region((0, 0), level, (cols, rows))
                )
                ours = slide.get_image(level).get_total_pixel_matrix(
                    correct_color=False
                )[:, :]
                if expected.ndim == 2:
                    expected = expected[..., None]
                assert np.array_equal(ours, expected[..., : ours.shape[-1]]), level
        oracles += 1
    try:
        reference_os = openslide.OpenSlide(str(_volume_file(folder)))
    except openslide.OpenSlideError:
        reference_os = None  # 16-bit grey, JPEG-LS, SEG: not OpenSlide's
    if reference_os is not None:
        with reference_os, dicomslide_openslide.OpenSlide(folder) as ours_os:
            assert ours_os.level_count == reference_os.level_count
            assert ours_os.level_dimensions == reference_os.level_dimensions
            for level, size in enumerate(reference_os.level_dimensions):
                expected = np.asarray(reference_os.read_region((0, 0), level, size))
                actual = np.asarray(ours_os.read_region((0, 0), level, size))
                assert np.array_equal(actual, expected), level
            rows, cols = slide.total_pixel_matrix_dimensions[0]
            api = slide.get_image_region((0, 0), 0, (rows, cols))
            assert np.array_equal(
                api,
                np.asarray(reference_os.read_region((0, 0), 0, (cols, rows)))[..., :3],
            )
        oracles += 1
    assert oracles > 0


def test_segmentations_equal_highdicom(wild, caplog):
    folder = wild / "highdicom-sm_image"
    with caplog.at_level(logging.WARNING):
        (slide,) = dicomslide.find_slides(folder, correct_color=False)
    assert _warnings(caplog) == []
    seg_files = sorted(folder.glob("seg_*.dcm"))
    assert len(seg_files) == 6  # none is lost: the old ones lack a container
    checked = 0
    for path in seg_files:
        reference = hd.seg.segread(path)
        series = str(reference.SeriesInstanceUID)
        channels = {
            int(slide.get_channel_identifier(i)): i
            for i in range(slide.num_channels)
            if slide.get_channel_type(i) == ChannelTypes.SEGMENT
            and slide.get_volume_images(i)[0].metadata.SeriesInstanceUID == series
        }
        expected = reference.get_total_pixel_matrix(combine_segments=False)
        numbers = list(reference.segment_numbers)
        if reference.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.7":
            # a label map's segment 0 is the background: where no label is
            labels = reference.get_total_pixel_matrix(combine_segments=True)
            expected = np.concatenate([(labels == 0)[..., None], expected], axis=-1)
            numbers = [0, *numbers]
        assert sorted(channels) == sorted(numbers), path.name
        for position, number in enumerate(numbers):
            ours = slide.get_image_region(
                (0, 0), 0, (50, 50), channel_index=channels[number]
            )
            assert np.array_equal(ours[..., 0], expected[..., position]), (
                path.name,
                number,
            )
            checked += 1
    assert checked == 20 + 21 + 21 + 50 + 50 + 20


@pytest.mark.parametrize("name", LABELS_ONLY)
def test_label_only_folders_give_no_slide(wild, name, caplog):
    folder = wild / name
    with caplog.at_level(logging.WARNING):
        assert dicomslide.find_slides(folder) == []
    (warning,) = _warnings(caplog)
    assert "without a VOLUME image" in warning and "container (none)" in warning
    with pytest.raises(openslide.OpenSlideError):
        openslide.OpenSlide(str(next(folder.iterdir())))
    with pytest.raises(dicomslide_openslide.OpenSlideError):
        dicomslide_openslide.OpenSlide(folder)
    with pytest.raises(dicomslide_openslide.OpenSlideError):
        dicomslide_openslide.OpenSlide(next(folder.iterdir()))


@pytest.mark.parametrize("name", NO_SLIDE)
def test_folders_without_slide_images(wild, name, caplog):
    with caplog.at_level(logging.WARNING):
        assert dicomslide.find_slides(wild / name) == []
    assert _warnings(caplog) == []


def test_a_file_opens_its_slide(wild):
    folder = wild / "gcp-wsi2dcm-jpeg"
    (by_file,) = dicomslide.find_slides(folder / "jpeg.dicom")
    (by_folder,) = dicomslide.find_slides(folder)
    assert by_file == by_folder


def test_one_instance_uid_in_two_folders(wild):
    # sm_image_control has sm_image's SOP Instance UID and other pixels
    first = wild / "highdicom-sm_image" / "sm_image.dcm"
    second = wild / "highdicom-sm_image_control" / "sm_image_control.dcm"
    for path in (first, second, first):
        (slide,) = dicomslide.find_slides(path, correct_color=False)
        with wsidicom.WsiDicom.open(path.parent) as reference:
            expected = np.asarray(reference.read_region((0, 0), 0, (50, 50)))
        assert np.array_equal(slide.get_image_region((0, 0), 0, (50, 50)), expected)
