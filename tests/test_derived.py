"""Segmentations and parametric maps join the slide as channels."""

from __future__ import annotations

import numpy as np
import pytest

import dicomslide
from dicomslide import ChannelTypes
from dicomslide.testing import synthetic, synthetic_derived


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


def _highdicom_labels(path) -> np.ndarray:
    """The label map as highdicom decodes it: segment numbers, 0 where the
    file stores no frame."""
    import highdicom as hd

    return np.asarray(
        hd.seg.segread(path).get_total_pixel_matrix(combine_segments=True)
    )


def test_label_map_absent_tiles_are_background(source, tmp_path):
    # TILED_SPARSE omits the tiles without any segment; in highdicom's
    # decoding they hold label 0, so the background segment's mask is 1 there
    seg = synthetic_derived.write_segmentation(
        _beside(source, tmp_path),
        source.levels[0],
        segmentation_type="LABELMAP",
        segments=3,
        organization="TILED_SPARSE",
        seed=7,
    )
    labels = _highdicom_labels(seg.files[0])
    np.testing.assert_array_equal(labels, seg.labels[0])
    slide = next(
        s
        for s in dicomslide.find_slides(source.folder.parent, correct_color=False)
        if s.container_id == "DERIVED"
    )
    channels = _segment_channels(slide, seg.series_instance_uid)
    numbers = [int(slide.get_channel_identifier(c)) for c in channels]
    assert numbers == [0, *seg.segment_numbers]
    matrix = slide.get_volume_images(channels[0])[0].get_total_pixel_matrix(0)
    absent = ~matrix.tile_presence
    assert absent.sum() >= 2  # the test needs absent tiles
    rows, columns = labels.shape
    for channel, number in zip(channels, numbers, strict=True):
        expected = (labels == number).astype(np.uint8)
        # the region reaches past the matrix: there every channel reads 0
        region = slide.get_image_region((-5, -7), 0, (rows + 10, columns + 14), channel)
        np.testing.assert_array_equal(region[5:-5, 7:-7, 0], expected)
        assert not region[:5].any() and not region[:, :7].any()
        assert not region[-5:].any() and not region[:, -7:].any()
        # tile by tile, absent tiles included (matrix of the same image)
        image = slide.get_volume_images(channel)[0]
        matrix = image.get_total_pixel_matrix(image.get_channel_index(str(number)))
        tile_rows, tile_columns, _ = matrix.tile_shape
        for index in np.flatnonzero(absent.ravel()):
            row, column = matrix.get_tile_position(int(index))
            tile = matrix[int(index)][:, :, 0]
            height = min(tile_rows, rows - row)
            width = min(tile_columns, columns - column)
            np.testing.assert_array_equal(
                tile[:height, :width],
                expected[row : row + height, column : column + width],
            )
            assert not tile[height:].any() and not tile[:, width:].any()


_HIGHDICOM_SEGS = [
    "seg_image_sm_control_labelmap.dcm",
    "seg_image_sm_control_labelmap_palette_color.dcm",
    "seg_image_sm_control.dcm",
    "seg_image_sm_dots.dcm",
    "seg_image_sm_dots_tiled_full.dcm",
    "seg_image_sm_numbers.dcm",
]


def _highdicom_masks(path) -> dict[int, np.ndarray]:
    """Every described segment's mask as highdicom decodes it."""
    import highdicom as hd

    segmentation = hd.seg.segread(path)
    labels = _highdicom_labels(path)
    masks = {}
    for item in segmentation.SegmentSequence:
        number = int(item.SegmentNumber)
        if number == 0:  # highdicom has no mask of the background segment
            masks[0] = (labels == 0).astype(np.uint8)
        else:
            masks[number] = segmentation.get_total_pixel_matrix(
                segment_numbers=[number], skip_overlap_checks=True
            )[:, :, 0]
    return masks


@pytest.mark.parametrize("name", _HIGHDICOM_SEGS)
def test_highdicom_segmentation_alone_equals_highdicom(wild, name):
    # each of highdicom's own test SEGs opened by itself (test_wild_data reads
    # them in their slide): every segment, by region and tile by tile, equals
    # highdicom's decoding
    import pydicom

    path = wild / "highdicom-sm_image" / name
    metadata = pydicom.dcmread(path, stop_before_pixels=True)
    image = dicomslide.TiledImage(path.parent, metadata)
    masks = _highdicom_masks(path)
    assert image.num_channels == len(masks)
    for channel in range(image.num_channels):
        number = int(image.get_channel_identifier(channel))
        matrix = image.get_total_pixel_matrix(channel)
        np.testing.assert_array_equal(
            matrix[:, :, 0], masks[number], err_msg=f"segment {number}"
        )
        tiles = np.stack([matrix[i] for i in range(matrix.num_tiles)])[..., 0]
        rows, columns, _ = matrix.tile_shape
        grid_rows, grid_columns = matrix.tile_grid_shape
        expected = (
            masks[number]
            .reshape(grid_rows, rows, grid_columns, columns)
            .transpose(0, 2, 1, 3)
            .reshape(-1, rows, columns)
        )
        np.testing.assert_array_equal(tiles, expected, err_msg=f"segment {number}")
