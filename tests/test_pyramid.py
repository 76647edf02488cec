"""Pyramids and the selection helpers."""

from __future__ import annotations

import pydicom
import pytest

import dicomslide
from dicomslide.testing import synthetic


@pytest.fixture(scope="module")
def levels(tmp_path_factory) -> list[pydicom.Dataset]:
    slide = synthetic.write_slide(tmp_path_factory.mktemp("pyramid"), "rgb_full")
    return [
        pydicom.dcmread(level.files[0], stop_before_pixels=True)
        for level in slide.levels
    ]


def test_pyramid_levels(levels):
    pyramid = dicomslide.Pyramid(levels, tolerance=0.1)
    assert len(pyramid) == 3
    assert [lvl.total_pixel_matrix_dimensions for lvl in pyramid] == [
        (300, 470),
        (150, 235),
        (50, 79),
    ]
    # iterable any number of times
    assert list(pyramid) == list(pyramid)
    assert pyramid[0].downsampling_factors == (1.0, 1.0)
    assert pyramid[2].downsampling_factors == pytest.approx((6.0, 470 / 79))
    assert pyramid[1].pixel_spacing == pytest.approx((0.001, 0.001))
    assert all(level.has_pixels for level in pyramid)
    assert "level 2" in repr(pyramid)


def test_pyramid_with_a_template(levels):
    pyramid = dicomslide.Pyramid(levels[1:], tolerance=0.1, ref_metadata=levels)
    assert [level.has_pixels for level in pyramid] == [False, True, True]


def test_pyramid_rejects_bad_input(levels):
    with pytest.raises(ValueError, match="sorted"):
        dicomslide.Pyramid(levels[::-1], tolerance=0.1)
    with pytest.raises(ValueError, match="distinct"):
        dicomslide.Pyramid([levels[0], levels[0]], tolerance=0.1)
    moved = levels[1].copy()
    moved.TotalPixelMatrixOriginSequence = pydicom.Sequence(
        [pydicom.Dataset(moved.TotalPixelMatrixOriginSequence[0])]
    )
    moved.TotalPixelMatrixOriginSequence[0].XOffsetInSlideCoordinateSystem = 25.0
    with pytest.raises(ValueError, match="aligned"):
        dicomslide.Pyramid([levels[0], moved], tolerance=0.1)
    with pytest.raises(ValueError, match="reference"):
        dicomslide.Pyramid(levels[:1], tolerance=0.1, ref_metadata=levels[1:])


def test_sorting_and_selection(levels):
    shuffled = [levels[1], levels[2], levels[0]]
    assert dicomslide.sort_images_by_size(shuffled) == levels
    assert dicomslide.sort_images_by_pixel_spacing(shuffled) == levels
    assert (
        dicomslide.select_image_at_pixel_spacing(levels, (0.0011, 0.0011)) is levels[1]
    )
    with pytest.raises(ValueError):
        dicomslide.select_image_at_pixel_spacing(levels, (0.1, 0.1), tolerance=0.001)
    with pytest.raises(ValueError):
        dicomslide.select_image_at_pixel_spacing([], (0.1, 0.1))
    # 20x ~ 0.5 µm/px, 10x ~ 1 µm/px, 4x ~ 2.5 µm/px
    assert dicomslide.select_image_at_magnification(levels, 20) is levels[0]
    assert dicomslide.select_image_at_magnification(levels, 10) is levels[1]
    assert dicomslide.select_image_at_magnification(levels, 4) is levels[2]
    with pytest.raises(ValueError):
        dicomslide.select_image_at_magnification(levels, 17)


def test_image_center(levels):
    x, y, z = dicomslide.compute_image_center_position(levels[0])
    # origin (20, 40) mm; rows run along -X, columns along -Y at 0.5 µm/px
    assert x == pytest.approx(20.0 - 299 / 2 * 0.0005)
    assert y == pytest.approx(40.0 - 469 / 2 * 0.0005)
    assert z == 0.0
