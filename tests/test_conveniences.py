"""What users of openslide, tiffslide and wsidicom expect: open_slide,
thumbnails, microns per pixel, objective power, forgiving segment labels."""

from __future__ import annotations

import numpy as np
import pytest
from dicomweb_client import DICOMfileClient
from PIL import Image

import dicomslide
import dicomslide.openslide as openslide
from dicomslide.errors import MultipleSlidesError, SlideNotFoundError
from dicomslide.testing import synthetic, synthetic_derived


@pytest.fixture(scope="module")
def two_slides(tmp_path_factory) -> tuple[synthetic.SyntheticSlide, ...]:
    folder = tmp_path_factory.mktemp("two")
    first = synthetic.write_slide(
        folder / "a", "rgb_full", uids=synthetic.SlideUIDs.new("FIRST")
    )
    second = synthetic.write_slide(
        folder / "b", "sparse", uids=synthetic.SlideUIDs.new("SECOND")
    )
    return first, second


def test_open_slide_opens_the_one_slide(two_slides):
    first, second = two_slides
    assert dicomslide.open_slide(first.folder).container_id == "FIRST"
    assert dicomslide.open_slide(second.levels[0].files[0]).container_id == "SECOND"
    both = first.folder.parent
    with pytest.raises(
        MultipleSlidesError, match="2 slides found.*FIRST, SECOND"
    ) as info:
        dicomslide.open_slide(both)
    assert info.value.candidates == ("FIRST", "SECOND")
    assert isinstance(info.value, LookupError)
    assert dicomslide.open_slide(both, container_id="SECOND").container_id == "SECOND"
    with pytest.raises(SlideNotFoundError, match="no slide found"):
        dicomslide.open_slide(both, container_id="THIRD")


def test_open_slide_of_an_empty_folder_is_not_an_index_error(tmp_path):
    with pytest.raises(SlideNotFoundError, match=str(tmp_path)):
        dicomslide.open_slide(tmp_path)


def test_find_slides_takes_a_source_and_the_07_keyword(two_slides):
    first, _ = two_slides
    by_source = dicomslide.find_slides(source=first.folder)
    client = DICOMfileClient(url=first.folder.as_uri(), in_memory=True)
    by_client = dicomslide.find_slides(client=client)
    assert by_source == by_client and len(by_source) == 1
    with pytest.raises(TypeError, match="not both"):
        dicomslide.find_slides(first.folder, client=client)
    with pytest.raises(TypeError, match="needs a source"):
        dicomslide.find_slides()


def test_thumbnail_fits_the_size_from_the_best_level(two_slides):
    first, _ = two_slides
    slide = dicomslide.open_slide(first.folder, correct_color=False)
    picture = slide.get_thumbnail(100)
    assert isinstance(picture, Image.Image) and picture.mode == "RGB"
    assert picture.size == (100, 64)  # level 0 is 470 x 300 (W x H)
    # made from the smallest level at least as large: level 2 (118 x 75, the
    # THUMBNAIL image), not level 3 (79 x 50)
    assert slide.total_pixel_matrix_dimensions[2:] == ((75, 118), (50, 79))
    level2 = slide.get_image_region((0, 0), 2, (75, 118))
    expected = Image.fromarray(level2)
    expected.thumbnail((100, 100), Image.Resampling.LANCZOS, reducing_gap=3.0)
    assert np.array_equal(np.asarray(picture), np.asarray(expected))
    assert slide.get_thumbnail((30, 200)).size == (47, 30)  # (rows, columns)
    assert slide.get_thumbnail(10_000).size == (470, 300)  # never enlarged
    facade = openslide.OpenSlide(first.folder)
    assert slide.get_thumbnail(256).size == facade.get_thumbnail((256, 256)).size
    with pytest.raises(ValueError, match="positive"):
        slide.get_thumbnail(0)


def test_thumbnail_is_colour_managed_as_configured(tmp_path):
    truth = synthetic.write_slide(tmp_path, "rgb_full", icc="wide")
    raw = dicomslide.open_slide(truth.folder, correct_color=False).get_thumbnail(64)
    managed = dicomslide.open_slide(truth.folder).get_thumbnail(64)
    assert raw.size == managed.size
    assert not np.array_equal(np.asarray(raw), np.asarray(managed))


def test_microns_per_pixel_and_objective_power(two_slides):
    first, _ = two_slides
    slide = dicomslide.open_slide(first.folder)
    facade = openslide.OpenSlide(first.folder)
    mpp_x, mpp_y = slide.microns_per_pixel[0]
    assert mpp_x == pytest.approx(
        float(facade.properties[openslide.PROPERTY_NAME_MPP_X])
    )
    assert mpp_y == pytest.approx(
        float(facade.properties[openslide.PROPERTY_NAME_MPP_Y])
    )
    assert slide.microns_per_pixel[1] == pytest.approx((1.0, 1.0))
    power = facade.properties.get(openslide.PROPERTY_NAME_OBJECTIVE_POWER)
    if power is None:
        assert slide.objective_power is None
    else:
        assert slide.objective_power == pytest.approx(float(power))


def test_objective_power_from_the_optical_path(tmp_path):
    import pydicom

    truth = synthetic.write_slide(tmp_path, "sparse")
    for path in truth.files:
        dataset = pydicom.dcmread(path)
        for item in dataset.OpticalPathSequence:
            item.ObjectiveLensPower = 40
        dataset.save_as(path)
    assert dicomslide.open_slide(tmp_path).objective_power == 40.0
    facade = openslide.OpenSlide(tmp_path)
    assert facade.properties[openslide.PROPERTY_NAME_OBJECTIVE_POWER] == "40"


def test_segment_labels_match_regardless_of_case(tmp_path):
    source = synthetic.write_slide(tmp_path, "rgb_full")
    seg = synthetic_derived.write_segmentation(tmp_path / "seg", source.levels[0])
    slide = dicomslide.open_slide(tmp_path)
    label = seg.segment_labels[0]
    exact = slide.find_segments(label=label)
    assert len(exact) == 1
    assert slide.find_segments(label=label.upper()) == exact
    assert slide.find_segments(label=f"  {label.lower()} ") == exact
    assert slide.find_segments(label=label + "x") == ()


def test_a_tile_index_out_of_range_shows_the_pixel_form():
    slide = dicomslide.open_slide("data/sample")
    matrix = slide.get_image(4).get_total_pixel_matrix()
    assert matrix.num_tiles == 1
    with pytest.raises(IndexError, match=r"1-D index selects tiles.*matrix\[5, :\]"):
        matrix[5]
    assert matrix[5, :].shape == (255, 3)  # the pixel form: row 5
    doc = type(matrix).__getitem__.__doc__ or ""
    assert "1-D index" in doc and "tiles" in doc and "matrix[5, :]" in doc
    assert "rows, columns" in repr(matrix) and "rows, columns" in repr(matrix.image)
