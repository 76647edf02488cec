"""Slides and find_slides over synthetic slides."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.sr.codedict import codes

import dicomslide
from dicomslide.testing import synthetic


@pytest.fixture(scope="module")
def rgb_slide(tmp_path_factory) -> synthetic.SyntheticSlide:
    return synthetic.write_slide(tmp_path_factory.mktemp("rgb"), "rgb_full")


def test_find_slides_builds_the_pyramid(rgb_slide):
    slides = dicomslide.find_slides(rgb_slide.folder, correct_color=False)
    assert len(slides) == 1
    slide = slides[0]
    volume = [(level.total_rows, level.total_cols) for level in rgb_slide.levels]
    thumbnail = rgb_slide.thumbnail
    assert thumbnail is not None
    expected = sorted(
        volume + [(thumbnail.total_rows, thumbnail.total_cols)],
        key=lambda s: -s[0] * s[1],
    )
    assert list(slide.total_pixel_matrix_dimensions) == expected
    assert slide.num_levels == len(expected)
    assert slide.size == expected[0]
    assert slide.container_id == rgb_slide.uids.container_identifier
    assert len(slide.label_images) == 1 and len(slide.overview_images) == 1
    assert slide.downsampling_factors[0] == 1.0
    assert slide.pixel_spacings[0] == pytest.approx(
        rgb_slide.levels[0].pixel_spacing[::-1]
    )
    assert "Slide" in repr(slide) and hash(slide) == hash(
        dicomslide.find_slides(rgb_slide.folder)[0]
    )


def test_slide_regions_at_every_level(rgb_slide):
    slide = dicomslide.find_slides(rgb_slide.folder, correct_color=False)[0]
    for level_index, level in enumerate(rgb_slide.levels):
        level_number = list(slide.total_pixel_matrix_dimensions).index(
            (level.total_rows, level.total_cols)
        )
        factor = slide.pyramid[level_number].downsampling_factors
        # the level-0 offset of level pixel (5, 7)
        offset = (int(np.ceil(5 * factor[0])), int(np.ceil(7 * factor[1])))
        region = slide.get_image_region(offset, level_number, (30, 40))
        expected = level.redecode("pillow-direct")[0, 0, 5:35, 7:47]
        np.testing.assert_array_equal(region, expected, err_msg=f"level {level_index}")


def test_label_image_pixels(rgb_slide):
    slide = dicomslide.find_slides(rgb_slide.folder, correct_color=False)[0]
    label = slide.label_images[0]
    truth = rgb_slide.label
    assert truth is not None
    pixels = label.get_image_region((0, 0), label.size)
    assert pixels.shape == (truth.total_rows, truth.total_cols, 3)
    np.testing.assert_array_equal(pixels, truth.redecode("pillow-direct")[0, 0])


def test_multi_z_and_channels(tmp_path):
    truth = synthetic.write_slide(tmp_path, "multi_z_channel_sparse")
    slide = dicomslide.find_slides(tmp_path)[0]
    assert slide.num_channels == 2 and slide.num_focal_planes == 3
    level = truth.levels[0]
    for plane in range(3):
        assert slide.get_focal_plane_offset(plane) == pytest.approx(
            level.z_offsets_um[plane]
        )
        for channel in range(2):
            region = slide.get_image_region((0, 0), 0, (100, 120), channel, plane)
            np.testing.assert_array_equal(
                region, level.pixels[plane, channel, :100, :120]
            )
    identifier = level.optical_path_identifiers[1]
    assert slide.find_optical_paths(identifier=identifier) == (1,)
    assert slide.get_channel_index(identifier, "OPTICAL_PATH") == 1
    assert slide.get_channel_type(1) == dicomslide.ChannelTypes.OPTICAL_PATH


def test_find_slides_filters(tmp_path):
    synthetic.write_slide(
        tmp_path / "a", "rgb_full", uids=synthetic.SlideUIDs.new("A-1")
    )
    synthetic.write_slide(tmp_path / "b", "sparse", uids=synthetic.SlideUIDs.new("B-2"))
    container = "B-2"
    everything = dicomslide.find_slides(tmp_path)
    assert len(everything) == 2
    only = dicomslide.find_slides(tmp_path, container_id=container)
    assert [s.container_id for s in only] == [container]
    assert dicomslide.find_slides(tmp_path, container_id="nothing-here") == []
    assert dicomslide.find_slides(tmp_path, optical_path_ids=["does-not-exist"]) == []
    stained = dicomslide.find_slides(
        tmp_path, specimen_stains=[codes.SCT.HematoxylinStain]
    )
    assert len(stained) == 2


def test_coordinates_round_trip(rgb_slide):
    slide = dicomslide.find_slides(rgb_slide.folder)[0]
    indices = np.array([[0, 0], [10, 20], [299, 469]])
    coordinates = slide.map_pixel_indices_to_slide_coordinates(indices, 0)
    assert coordinates.shape == (3, 3)
    back = slide.map_slide_coordinates_to_pixel_indices(coordinates, 0)
    np.testing.assert_array_equal(back, indices)
    level = rgb_slide.levels[0]
    x, y = slide.get_slide_offset((10, 20), 0)
    # default orientation: rows run along -X, columns along -Y
    assert x == pytest.approx(level.origin[0] - 10 * level.pixel_spacing[0])
    assert y == pytest.approx(level.origin[1] - 20 * level.pixel_spacing[1])
    assert slide.get_pixel_indices((x, y), 0) == (10, 20)


def _annotation(graphic_type: str, points, frame_of_reference_uid: str):
    import highdicom as hd
    from pydicom.sr.codedict import codes as sr_codes

    return hd.sr.Scoord3DContentItem(
        name=sr_codes.DCM.ImageRegion,
        graphic_type=graphic_type,
        graphic_data=np.array(points, dtype=float),
        frame_of_reference_uid=frame_of_reference_uid,
    )


def _slide_aligned(truth: np.ndarray) -> np.ndarray:
    # default orientation: image rows run along -X, columns along -Y
    return truth.transpose(1, 0, 2)[::-1, ::-1]


def test_region_for_annotations(rgb_slide):
    slide = dicomslide.find_slides(rgb_slide.folder, correct_color=False)[0]
    truth = rgb_slide.levels[0].redecode("pillow-direct")[0, 0]
    uid = slide.frame_of_reference_uid

    def at(row: float, column: float) -> list[float]:
        x, y = slide.get_slide_offset((row, column), 0)
        return [x, y, 0.0]

    # a region covers the pixel centres in [low, high) of the bounding box,
    # like get_slide_region: along -X (rows) and -Y (columns), the pixel of
    # the smallest row and column of the box lies outside it
    point = _annotation("POINT", [at(40, 50)], uid)
    assert slide.get_slide_region_for_annotation(point, 0).shape == (0, 0, 3)
    padded_point = slide.get_slide_region_for_annotation(point, 0, padding=1)
    np.testing.assert_array_equal(padded_point, _slide_aligned(truth[40:42, 50:52]))

    polygon = _annotation(
        "POLYGON", [at(30, 40), at(30, 90), at(70, 90), at(70, 40), at(30, 40)], uid
    )
    region = slide.get_slide_region_for_annotation(polygon, 0)
    np.testing.assert_array_equal(region, _slide_aligned(truth[31:71, 41:91]))

    polyline = _annotation("POLYLINE", [at(30, 40), at(70, 90)], uid)
    padded = slide.get_slide_region_for_annotation(polyline, 0, padding=(1, 2, 3, 4))
    # left -X (rows grow towards -X: row +1), top +Y (columns: -2), right +X
    # (rows -3), bottom -Y (columns +4)
    np.testing.assert_array_equal(padded, _slide_aligned(truth[28:72, 39:95]))

    # an axis-aligned ellipse: major axis along rows, minor along columns
    ellipse = _annotation(
        "ELLIPSE", [at(20, 60), at(80, 60), at(50, 45), at(50, 75)], uid
    )
    region = slide.get_slide_region_for_annotation(ellipse, 0)
    np.testing.assert_array_equal(region, _slide_aligned(truth[21:81, 46:76]))

    with pytest.raises(ValueError):
        slide.get_slide_region_for_annotation(
            _annotation("POINT", [at(1, 1)], "1.2.3.4"), 0
        )


def test_several_pyramids_in_one_slide(tmp_path):
    import dataclasses

    main = synthetic.write_slide(tmp_path / "main", "rgb_full")
    other_uids = dataclasses.replace(
        main.uids,
        series_instance_uid=synthetic.SlideUIDs.new().series_instance_uid,
        pyramid_uid=synthetic.SlideUIDs.new().pyramid_uid,
    )
    other = synthetic.write_slide(tmp_path / "other", "sparse", uids=other_uids)
    slides = dicomslide.find_slides(tmp_path, correct_color=False)
    assert len(slides) == 1
    slide = slides[0]
    assert len(slide.pyramids) == 2
    first = slide.get_volume_images()[0].metadata.PyramidUID
    images = slide.get_volume_images(pyramid_index=1)
    second = {image.metadata.PyramidUID for image in images}
    assert len(second) == 1 and first not in second
    assert {first} | second == {main.uids.pyramid_uid, other_uids.pyramid_uid}
    truth = other if second == {other_uids.pyramid_uid} else main
    expected = truth.levels[0].redecode("pillow-direct")[0, 0, :64, :96]
    np.testing.assert_array_equal(
        images[0].get_image_region((0, 0), (64, 96)), expected
    )
    with pytest.raises(ValueError):
        slide.get_volume_images(pyramid_index=2)


def test_thumbnail_as_large_as_a_level_is_not_a_second_level(tmp_path):
    """OpenSlide's boxes fixture: a 16x16 VOLUME and a 16x16 THUMBNAIL."""
    import shutil

    from tests.conftest import ROOT

    fixtures = ROOT.parent / "shared" / "data" / "openslide-fixtures"
    if not fixtures.is_dir():
        pytest.skip("openslide fixtures not found next to the repository")
    for name in ("boxes_0.dcm", "boxes_1.dcm"):
        shutil.copy(fixtures / name, tmp_path)
    slide = dicomslide.find_slides(tmp_path)[0]
    assert slide.total_pixel_matrix_dimensions == ((16, 16),)
    assert slide.get_volume_images()[0].metadata.ImageType[2] == "VOLUME"
    # the thumbnail is still there, as a thumbnail image
    assert [i.metadata.ImageType[2] for i in slide.thumbnail_images] == ["THUMBNAIL"]


def test_label_and_overview_images_are_made_on_first_use(rgb_slide):
    # A damaged LABEL image doesn't stop the slide from opening or reading;
    # its error comes when the label is asked for, naming the instance.
    from dicomslide.client import LocalFolderClient

    client = LocalFolderClient(rgb_slide.folder)
    headers = client.headers()
    label = next(h for h in headers if h.ImageType[2] == "LABEL")
    del label.TotalPixelMatrixRows
    slide = dicomslide.Slide(client, headers, correct_color=False)
    region = slide.get_image_region((5, 7), 0, (30, 40))
    expected = rgb_slide.levels[0].redecode("pillow-direct")[0, 0, 5:35, 7:47]
    np.testing.assert_array_equal(region, expected)
    assert len(slide.overview_images) == 1
    assert slide.overview_images is slide.overview_images
    with pytest.raises(dicomslide.errors.MetadataError) as caught:
        _ = slide.label_images
    assert caught.value.sop_instance_uid == label.SOPInstanceUID
