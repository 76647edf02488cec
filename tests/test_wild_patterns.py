"""Slides in the shapes other converters write open, as in OpenSlide 4.

The synthetic writers in :mod:`synthetic_wild` reproduce each pattern seen in
``../shared/data/wild-dicom`` and in the issue reports, so these tests hold
without the wild files; ``test_wild_data`` runs the wild files themselves.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import openslide
import pydicom
import pytest
from pydicom.sr.codedict import codes

import dicomslide
import dicomslide.openslide as dicomslide_openslide
from dicomslide.errors import MetadataError
from dicomslide.testing import synthetic, synthetic_derived, synthetic_wild


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def _assert_facade_equals_openslide(folder: Path, level0_file: Path) -> None:
    """The facade on the folder shows what OpenSlide 4 shows for the file."""
    reference = openslide.OpenSlide(str(level0_file))
    ours = dicomslide_openslide.OpenSlide(folder)
    try:
        assert ours.level_count == reference.level_count > 1
        assert ours.level_dimensions == reference.level_dimensions
        assert ours.level_downsamples == pytest.approx(reference.level_downsamples)
        assert sorted(ours.associated_images) == sorted(reference.associated_images)
        for level, (width, height) in enumerate(reference.level_dimensions):
            expected = np.asarray(reference.read_region((0, 0), level, (width, height)))
            actual = np.asarray(ours.read_region((0, 0), level, (width, height)))
            assert np.array_equal(actual, expected), f"level {level}"
        for key in ("openslide.mpp-x", "openslide.mpp-y"):
            assert ours.properties[key] == reference.properties[key]
    finally:
        ours.close()
        reference.close()


def _level(slide: dicomslide.Slide, image: synthetic.SyntheticImage) -> int:
    """The slide's level of a synthetic image (thumbnails are levels too)."""
    return slide.total_pixel_matrix_dimensions.index(
        (image.total_rows, image.total_cols)
    )


def test_per_level_frames_of_reference_are_one_slide(tmp_path, caplog):
    truth = synthetic_wild.write_per_level_frames_of_reference(
        tmp_path, transfer_syntax=synthetic.EXPLICIT_VR_LE
    )
    with caplog.at_level(logging.WARNING, logger="dicomslide"):
        (slide,) = dicomslide.find_slides(tmp_path, correct_color=False)
    # one WARNING that names the conflict
    (warning,) = _warnings(caplog)
    assert "frames of reference" in warning
    assert truth.uids.series_instance_uid in warning
    assert slide.container_id == ""
    assert slide.num_levels == len(truth.levels) + 1  # the thumbnail is a level
    assert len(slide.label_images) == len(slide.overview_images) == 1
    for image in truth.levels:
        rows, cols = image.total_rows, image.total_cols
        region = slide.get_image_region((0, 0), _level(slide, image), (rows, cols))
        assert np.array_equal(region, image.decoded[0, 0])
    level0 = pydicom.dcmread(truth.levels[0].files[0], stop_before_pixels=True)
    assert slide.frame_of_reference_uid == level0.FrameOfReferenceUID


def test_per_level_frames_of_reference_in_the_facade(tmp_path):
    truth = synthetic_wild.write_per_level_frames_of_reference(tmp_path)
    _assert_facade_equals_openslide(tmp_path, truth.levels[0].files[0])


def test_repeated_pixel_spacing_is_derived_from_the_sizes(tmp_path, caplog):
    truth = synthetic_wild.write_repeated_pixel_spacing(
        tmp_path, transfer_syntax=synthetic.EXPLICIT_VR_LE
    )
    with caplog.at_level(logging.WARNING, logger="dicomslide"):
        (slide,) = dicomslide.find_slides(tmp_path, correct_color=False)
    (warning,) = _warnings(caplog)
    assert "derived from their sizes" in warning
    base = truth.levels[0]
    spacing = synthetic_wild.REPEATED_SPACING_MM
    for image in truth.levels:
        level = _level(slide, image)
        expected = (
            spacing * base.total_cols / image.total_cols,
            spacing * base.total_rows / image.total_rows,
        )
        assert slide.pixel_spacings[level] == pytest.approx(expected)
        assert dicomslide.get_image_pixel_spacing(
            slide.get_image(level).metadata
        ) == pytest.approx(expected[::-1])
        region = slide.get_image_region((0, 0), level, (image.total_rows, 40))
        assert np.array_equal(region, image.decoded[0, 0][:, :40])
    # every level covers the same area of the slide
    sizes = [slide.get_image(i).physical_size for i in range(slide.num_levels)]
    assert np.allclose(sizes, sizes[0], rtol=0.02)
    # one area of the slide has as many pixels as the derived spacings say
    x, y = slide.physical_offset
    for level in range(3):
        region = slide.get_slide_region((x + 0.2, y + 0.2), level, (0.6, 0.4))
        spacing = np.mean(slide.pixel_spacings[level])
        # aligned with the slide axes: 0.4 mm along Y down, 0.6 mm along X
        assert region.shape[:2] == (
            pytest.approx(0.4 / spacing, abs=1),
            pytest.approx(0.6 / spacing, abs=1),
        )


def test_repeated_pixel_spacing_in_the_facade(tmp_path):
    truth = synthetic_wild.write_repeated_pixel_spacing(tmp_path)
    _assert_facade_equals_openslide(tmp_path, truth.levels[0].files[0])


def test_consistent_spacing_is_left_alone(tmp_path, caplog):
    synthetic.write_slide(tmp_path, "rgb_full")
    with caplog.at_level(logging.WARNING, logger="dicomslide"):
        (slide,) = dicomslide.find_slides(tmp_path)
    assert _warnings(caplog) == []
    # levels x1, x2, the thumbnail (x4) and x6
    assert slide.pixel_spacings == (
        (0.0005, 0.0005),
        (0.001, 0.001),
        (0.002, 0.002),
        (0.003, 0.003),
    )


def test_containerless_segmentation_is_attached(tmp_path, caplog):
    source = synthetic.write_slide(tmp_path, "rgb_full")
    seg = synthetic_wild.write_containerless_segmentation(
        tmp_path / "seg", source.levels[0], segments=2
    )
    with caplog.at_level(logging.WARNING, logger="dicomslide"):
        (slide,) = dicomslide.find_slides(tmp_path)
    assert _warnings(caplog) == []
    segments = slide.find_segments()
    assert len(segments) == 2
    for number, channel in enumerate(segments, start=1):
        mask = slide.get_image_region(
            (0, 0),
            0,
            (source.levels[0].total_rows, source.levels[0].total_cols),
            channel_index=channel,
        )
        assert np.array_equal(mask[..., 0], seg.masks[0][number - 1])


def test_a_derived_image_that_breaks_its_slide_is_left_out(tmp_path, caplog):
    source = synthetic.write_slide(tmp_path, "rgb_full")
    seg = synthetic_derived.write_segmentation(tmp_path / "seg", source.levels[0])
    # a segmentation of a size that no level of its source has
    dataset = pydicom.dcmread(seg.files[0])
    dataset.TotalPixelMatrixColumns += 1000
    dataset.save_as(seg.files[0])
    for fail_on_error in (True, False):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="dicomslide"):
            (slide,) = dicomslide.find_slides(tmp_path, fail_on_error=fail_on_error)
        assert slide.num_channels == 1
        (warning,) = _warnings(caplog)
        assert "skipping derived image" in warning
        assert str(dataset.SeriesInstanceUID) in warning


def test_orphan_parametric_map_is_skipped_with_one_warning(tmp_path, caplog):
    synthetic.write_slide(tmp_path / "slide", "rgb_full")
    pm = synthetic_wild.write_orphan_parametric_map(tmp_path / "pm")
    with caplog.at_level(logging.WARNING, logger="dicomslide"):
        (slide,) = dicomslide.find_slides(tmp_path)
    assert slide.num_channels == 1
    (warning,) = _warnings(caplog)
    assert "references none of the images found" in warning
    assert pm.series_instance_uid in warning


def test_lone_and_stray_labels(tmp_path, caplog):
    lone = tmp_path / "lone"
    write_label = synthetic_wild.write_stray_label
    label_file = write_label(lone)
    with caplog.at_level(logging.WARNING, logger="dicomslide"):
        assert dicomslide.find_slides(lone) == []
    (warning,) = _warnings(caplog)
    assert "without a VOLUME image" in warning and "container 'STRAY'" in warning
    with pytest.raises(dicomslide_openslide.OpenSlideError):
        dicomslide_openslide.OpenSlide(lone)
    with pytest.raises(openslide.OpenSlideError):  # OpenSlide 4 refuses it too
        openslide.OpenSlide(str(label_file))

    mixed = tmp_path / "mixed"
    truth = synthetic.write_slide(mixed, "rgb_full")
    write_label(mixed)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dicomslide"):
        (slide,) = dicomslide.find_slides(mixed)
    assert len(_warnings(caplog)) == 1
    assert slide.container_id == truth.uids.container_identifier
    (label,) = slide.label_images
    assert label.sop_instance_uids == tuple(truth.label.sop_instance_uids)


def test_one_warning_per_skipped_group(tmp_path, caplog):
    source = synthetic.write_slide(tmp_path / "src", "rgb_full")
    synthetic_derived.write_segmentation(tmp_path / "seg", source.levels, pyramid=True)
    shutil.rmtree(tmp_path / "src")  # the segmentation pyramid is an orphan now
    synthetic.write_slide(tmp_path / "other", "sparse")
    with caplog.at_level(logging.WARNING, logger="dicomslide"):
        (slide,) = dicomslide.find_slides(tmp_path)
    (warning,) = _warnings(caplog)  # one for the series, not one per instance
    assert "container 'SYNTH-001'" in warning and len(warning) < 400


def test_filters_on_folders_with_derived_images(tmp_path, caplog):
    source = synthetic.write_slide(tmp_path, "rgb_full")
    seg = synthetic_derived.write_segmentation(tmp_path / "seg", source.levels[0])
    synthetic_derived.write_parametric_map(tmp_path / "pm", source.levels[0])
    channels = 1 + len(seg.segment_numbers) + 1  # optical path, segments, map
    with caplog.at_level(logging.WARNING, logger="dicomslide"):
        # a stain no image has: no slide, and nothing to complain about
        assert (
            dicomslide.find_slides(tmp_path, specimen_stains=[codes.SCT.Tissue]) == []
        )
        assert dicomslide.find_slides(tmp_path, optical_path_ids=["nope"]) == []
        assert dicomslide.find_slides(tmp_path, container_id="nope") == []
    assert _warnings(caplog) == []
    path_id = source.levels[0].optical_path_identifiers[0]
    (slide,) = dicomslide.find_slides(tmp_path, optical_path_ids=[path_id])
    assert slide.num_channels == channels
    (slide,) = dicomslide.find_slides(
        tmp_path, container_id=source.uids.container_identifier
    )
    assert slide.num_channels == channels


def _cli(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dicomslide", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_ls_of_a_folder_with_only_a_segmentation(tmp_path):
    source = synthetic.write_slide(tmp_path / "src", "rgb_full")
    synthetic_derived.write_segmentation(tmp_path / "seg", source.levels[0])
    done = _cli("ls", tmp_path / "seg")
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "no slides found" in done.stderr
    assert "references none of the images found" in done.stderr


@pytest.mark.parametrize("name", ["level0.dcm", "level0.dicom", "level0"])
def test_a_file_opens_the_slide_it_belongs_to(tmp_path, name):
    first = synthetic.write_slide(
        tmp_path, "rgb_full", uids=synthetic.SlideUIDs.new("FIRST")
    )
    second_folder = tmp_path / "second"
    second = synthetic.write_slide(
        second_folder, "sparse", uids=synthetic.SlideUIDs.new("SECOND")
    )
    renamed = first.levels[0].files[0].with_name(name)
    first.levels[0].files[0].rename(renamed)
    (slide,) = dicomslide.find_slides(renamed)
    assert slide.container_id == "FIRST"
    (slide,) = dicomslide.find_slides(str(second.levels[1].files[0]))
    assert slide.container_id == "SECOND"
    # a label opens the slide it labels
    (slide,) = dicomslide.find_slides(first.label.files[0])
    assert slide.container_id == "FIRST"
    (slide,) = dicomslide.find_slides(renamed.as_uri())
    assert slide.container_id == "FIRST"
    done = _cli("ls", renamed)
    assert done.returncode == 0, done.stderr
    assert "FIRST" in done.stdout and "SECOND" not in done.stdout


def test_a_file_that_is_not_dicom(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not DICOM")
    with pytest.raises(MetadataError, match="not a DICOM image file"):
        dicomslide.find_slides(path)
    done = _cli("ls", path)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "not a DICOM image file" in done.stderr
    done = _cli("ls", tmp_path / "missing")
    assert done.returncode != 0 and "no such file or folder" in done.stderr


def test_same_instance_uid_in_two_files_keeps_their_own_pixels(tmp_path):
    first = synthetic.write_slide(tmp_path / "a", "sparse", seed=1)
    second = synthetic_wild.write_twin(tmp_path / "b", first, seed=2)
    assert first.levels[0].sop_instance_uids == second.levels[0].sop_instance_uids
    assert not np.array_equal(first.levels[0].decoded, second.levels[0].decoded)
    for truth in (first, second, first):
        (slide,) = dicomslide.find_slides(truth.folder, correct_color=False)
        level = truth.levels[0]
        region = slide.get_image_region((0, 0), 0, (level.total_rows, level.total_cols))
        assert np.array_equal(region, level.decoded[0, 0])
