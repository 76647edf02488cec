"""Segmentations and parametric maps join the slide as channels."""

from __future__ import annotations

import numpy as np
import pytest
import synthetic
import synthetic_derived

import dicomslide
from dicomslide import ChannelTypes


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> synthetic.SyntheticSlide:
    folder = tmp_path_factory.mktemp("derived")
    return synthetic.write_slide(
        folder / "slide", "rgb_full", uids=synthetic.SlideUIDs.new("DERIVED")
    )


def _beside(source: synthetic.SyntheticSlide, tmp_path) -> object:
    """A new folder next to the slide's, so one find_slides sees both."""
    folder = source.folder.parent / tmp_path.name
    folder.mkdir()
    return folder


def _segment_channels(slide: dicomslide.Slide, series_uid: str) -> list[int]:
    return [
        index
        for index in range(slide.num_channels)
        if slide.get_channel_type(index) == ChannelTypes.SEGMENT
        and slide.get_volume_images(index)[0].metadata.SeriesInstanceUID == series_uid
    ]


@pytest.mark.parametrize("organization", ["TILED_FULL", "TILED_SPARSE"])
@pytest.mark.parametrize("segmentation_type", ["BINARY", "FRACTIONAL", "LABELMAP"])
def test_segment_masks_for_a_region(source, tmp_path, organization, segmentation_type):
    seg = synthetic_derived.write_segmentation(
        _beside(source, tmp_path),
        source.levels[0],
        segmentation_type=segmentation_type,
        segments=3,
        organization=organization,
    )
    slides = dicomslide.find_slides(source.folder.parent, include_derived=True)
    slides = [s for s in slides if s.container_id == "DERIVED"]
    assert len(slides) == 1
    slide = slides[0]
    channels = _segment_channels(slide, seg.series_instance_uid)
    numbers = [int(slide.get_channel_identifier(c)) for c in channels]
    # a label map describes its background as segment 0
    assert [n for n in numbers if n != 0] == seg.segment_numbers
    for channel, number in zip(channels, numbers, strict=True):
        if number == 0:
            continue
        region = slide.get_image_region((0, 0), 0, (300, 470), channel)
        assert region.shape == (300, 470, 1) and region.dtype == np.uint8
        expected = seg.masks[0][seg.segment_numbers.index(number)]
        np.testing.assert_array_equal(region[:, :, 0], expected)
    assert slide.find_segments(number=2)
    references = slide.get_volume_images(channels[0])[0].get_references()
    assert [uid for _, _, uid in references] == source.levels[0].sop_instance_uids
    assert slide.find_segments(label=seg.segment_labels[0])


def test_segmentation_pyramid_joins_the_levels(source, tmp_path):
    seg = synthetic_derived.write_segmentation(
        _beside(source, tmp_path),
        source.levels,
        segments=2,
        organization="TILED_SPARSE",
        pyramid=True,
    )
    assert len(seg.files) == len(source.levels)
    slide = next(
        s
        for s in dicomslide.find_slides(source.folder.parent)
        if s.container_id == "DERIVED"
    )
    channel = _segment_channels(slide, seg.series_instance_uid)[0]
    images = slide.get_volume_images(channel)
    assert len(images) == len(source.levels)
    for level_index, level in enumerate(source.levels):
        level_number = list(slide.total_pixel_matrix_dimensions).index(
            (level.total_rows, level.total_cols)
        )
        region = slide.get_image_region(
            (0, 0), level_number, (level.total_rows, level.total_cols), channel
        )
        np.testing.assert_array_equal(region[:, :, 0], seg.masks[level_index][0])
    # the thumbnail level has no segmentation: a clear error, not a blank
    sizes = {image.size for image in images}
    (missing,) = [
        level
        for level, size in enumerate(slide.total_pixel_matrix_dimensions)
        if size not in sizes
    ]
    with pytest.raises(ValueError, match="no image at level"):
        slide.get_image_region((0, 0), missing, (10, 10), channel)


@pytest.mark.parametrize("dtype", ["float32", "uint16"])
def test_parametric_map_returns_real_world_values(source, tmp_path, dtype):
    pmap = synthetic_derived.write_parametric_map(
        _beside(source, tmp_path), source.levels[0], dtype=dtype
    )
    slide = next(
        s
        for s in dicomslide.find_slides(source.folder.parent)
        if s.container_id == "DERIVED"
    )
    channels = [
        i
        for i in range(slide.num_channels)
        if slide.get_channel_type(i) == ChannelTypes.PARAMETER
        and slide.get_volume_images(i)[0].metadata.SeriesInstanceUID
        == pmap.series_instance_uid
    ]
    assert len(channels) == 1
    region = slide.get_image_region((0, 0), 0, (300, 470), channels[0])
    assert region.dtype.kind == "f"
    np.testing.assert_allclose(region[:, :, 0], pmap.values, rtol=1e-6, atol=1e-6)
    # outside the image: 0, as for every non-colour channel
    outside = slide.get_image_region((290, 460), 0, (20, 20), channels[0])
    assert (outside[10:, :, 0] == 0).all()
