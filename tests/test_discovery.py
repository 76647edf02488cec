"""find_slides asks frugally: requests do not grow with the instance count."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from dicomweb_client import DICOMfileClient

import dicomslide
from dicomslide.errors import MetadataError
from dicomslide.testing import synthetic
from tests.recording import RecordingClient


def _recorded_find(folder) -> RecordingClient:
    client = RecordingClient(DICOMfileClient(url=folder.as_uri(), in_memory=True))
    slides = dicomslide.find_slides(client)
    assert len(slides) == 1
    return client


def test_requests_do_not_grow_with_instances(tmp_path):
    small = synthetic.write_slide(tmp_path / "small", "sparse")
    large = synthetic.write_slide(tmp_path / "large", "concatenation")
    assert len(large.files) > len(small.files)
    few = _recorded_find(tmp_path / "small")
    many = _recorded_find(tmp_path / "large")
    assert few.calls == many.calls
    # one search, one metadata request per series, nothing per instance
    assert many.calls["search_for_series"] == 1
    assert many.calls["retrieve_series_metadata"] == 1
    assert many.calls["retrieve_instance_metadata"] == 0
    assert many.calls["retrieve_instance_frames"] == 0


def test_contradictory_metadata(tmp_path):
    slide = synthetic.write_slide(tmp_path, "rgb_full")
    metadata = [pydicom.dcmread(f, stop_before_pixels=True) for f in slide.files]
    client = tmp_path
    duplicate = metadata + [metadata[0]]
    with pytest.raises(MetadataError, match="occurs twice"):
        dicomslide.Slide(client, duplicate)
    other = [m.copy() for m in metadata]
    other[1].ContainerIdentifier = "ANOTHER-GLASS"
    with pytest.raises(MetadataError, match="several containers.*ANOTHER-GLASS"):
        dicomslide.Slide(client, other)
    labels_only = [m for m in metadata if m.ImageType[2] == "LABEL"]
    with pytest.raises(MetadataError, match="VOLUME"):
        dicomslide.Slide(client, labels_only)


def test_fail_on_error_false_skips_and_logs(tmp_path, caplog):
    good = synthetic.write_slide(
        tmp_path / "good", "rgb_full", uids=synthetic.SlideUIDs.new("GOOD")
    )
    bad = synthetic.write_slide(
        tmp_path / "bad", "sparse", uids=synthetic.SlideUIDs.new("BAD")
    )
    # a level whose centre lies far from the others: no valid pyramid
    level = pydicom.dcmread(bad.levels[1].files[0])
    level.TotalPixelMatrixOriginSequence[0].XOffsetInSlideCoordinateSystem = 5.0
    level.save_as(bad.levels[1].files[0])
    with pytest.raises(MetadataError):
        dicomslide.find_slides(tmp_path)
    with caplog.at_level("WARNING", logger="dicomslide"):
        slides = dicomslide.find_slides(tmp_path, fail_on_error=False)
    assert [s.container_id for s in slides] == [good.uids.container_identifier]
    assert "BAD" in caplog.text


def test_a_series_split_over_frames_of_reference_is_one_slide(tmp_path, caplog):
    truth = synthetic.write_slide(
        tmp_path, "rgb_full", uids=synthetic.SlideUIDs.new("SPLIT")
    )
    level = pydicom.dcmread(truth.levels[1].files[0])
    level.FrameOfReferenceUID = "1.2.3.4.5.6"
    level.save_as(truth.levels[1].files[0])
    with caplog.at_level("WARNING", logger="dicomslide"):
        (slide,) = dicomslide.find_slides(tmp_path)
    assert slide.num_levels == len(truth.levels) + 1  # the thumbnail is a level
    assert slide.frame_of_reference_uid == truth.uids.frame_of_reference_uid
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "1.2.3.4.5.6" in warnings[0].getMessage()
    region = slide.get_image_region((0, 0), 1, (40, 60))
    assert np.array_equal(region, slide.get_image(1).get_image_region((0, 0), (40, 60)))


def test_a_series_naming_two_containers_is_refused(tmp_path, caplog):
    truth = synthetic.write_slide(
        tmp_path, "rgb_full", uids=synthetic.SlideUIDs.new("ONE")
    )
    level = pydicom.dcmread(truth.levels[1].files[0])
    level.ContainerIdentifier = "TWO"
    level.save_as(truth.levels[1].files[0])
    with pytest.raises(MetadataError, match="several containers"):
        dicomslide.find_slides(tmp_path)
    with caplog.at_level("WARNING", logger="dicomslide"):
        assert dicomslide.find_slides(tmp_path, fail_on_error=False) == []
    assert "'ONE'" in caplog.text and "'TWO'" in caplog.text


def test_derived_image_whose_references_are_missing(tmp_path, caplog):
    from dicomslide.testing import synthetic_derived

    source = synthetic.write_slide(tmp_path / "src", "rgb_full")
    synthetic_derived.write_segmentation(tmp_path / "seg", source.levels[0])
    source.levels[0].files[0].unlink()  # the segmented image is gone
    for fail_on_error in (True, False):
        caplog.clear()
        with caplog.at_level("WARNING", logger="dicomslide"):
            slides = dicomslide.find_slides(tmp_path, fail_on_error=fail_on_error)
        # the slide stays; the segmentation is skipped with one warning
        assert len(slides) == 1 and slides[0].num_channels == 1
        warnings = [r for r in caplog.records if r.levelname == "WARNING"]
        assert len(warnings) == 1
        assert "references none" in warnings[0].getMessage()
