"""Slide coordinates for every orientation: mapping, round trips, slide regions."""

from __future__ import annotations

import itertools

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dicomslide
from dicomslide.cache import FrameCache
from dicomslide.testing import synthetic

# Image Orientation (Slide): rotations by 90 degrees, with and without a flip
ORIENTATIONS = [
    row + column
    for row, column in itertools.product(
        [(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0)],
        [(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0)],
    )
    if np.dot(row, column) == 0
]
SPACING = (0.0005, 0.00025)  # (between rows, between columns) in mm
ORIGIN = (20.0, 40.0)
ROWS, COLUMNS = 90, 130


@pytest.fixture(scope="module")
def oriented(tmp_path_factory) -> dict[tuple, tuple]:
    images = {}
    for orientation in ORIENTATIONS:
        folder = tmp_path_factory.mktemp("orientation")
        truth = synthetic.write_wsi_image(
            folder,
            total_rows=ROWS,
            total_cols=COLUMNS,
            tile_rows=32,
            tile_cols=48,
            image_orientation=orientation,
            pixel_spacing=SPACING,
            origin=ORIGIN,
            seed=2,
        )
        metadata = pydicom.dcmread(truth.files[0], stop_before_pixels=True)
        image = dicomslide.TiledImage(
            folder, metadata, correct_color=False, cache=FrameCache(1 << 24)
        )
        images[tuple(orientation)] = (truth, image)
    return images


def test_eight_orientations():
    assert len(ORIENTATIONS) == 8


def _slide_position(orientation, row: float, column: float) -> tuple[float, float]:
    x = (
        ORIGIN[0]
        + column * SPACING[1] * orientation[0]
        + row * SPACING[0] * orientation[3]
    )
    y = (
        ORIGIN[1]
        + column * SPACING[1] * orientation[1]
        + row * SPACING[0] * orientation[4]
    )
    return (x, y)


@pytest.mark.parametrize("orientation", ORIENTATIONS, ids=str)
def test_mapping_matches_the_standard(oriented, orientation):
    _, image = oriented[tuple(orientation)]
    indices = np.array([[0, 0], [5, 7], [ROWS - 1, COLUMNS - 1]])
    coordinates = image.map_pixel_indices_to_slide_coordinates(indices)
    for (row, column), (x, y, _) in zip(indices, coordinates, strict=True):
        assert (x, y) == pytest.approx(_slide_position(orientation, row, column))
    assert image.get_slide_offset((5, 7)) == pytest.approx(
        _slide_position(orientation, 5, 7)
    )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    orientation=st.sampled_from(ORIENTATIONS),
    rows=st.lists(st.integers(-500, 500), min_size=1, max_size=8),
    columns=st.lists(st.integers(-500, 500), min_size=1, max_size=8),
)
def test_pixel_to_slide_to_pixel_round_trips(oriented, orientation, rows, columns):
    _, image = oriented[tuple(orientation)]
    n = min(len(rows), len(columns))
    indices = np.column_stack([rows[:n], columns[:n]])
    coordinates = image.map_pixel_indices_to_slide_coordinates(indices)
    assert coordinates.shape == (n, 3)
    back = image.map_slide_coordinates_to_pixel_indices(coordinates)
    np.testing.assert_array_equal(back, indices)
    for (row, column), (x, y, _) in zip(indices, coordinates, strict=True):
        assert image.get_pixel_indices((x, y)) == (row, column)


def _expected_slide_region(truth, image, offset, size) -> np.ndarray:
    """Build the slide region pixel by pixel from the generator's array."""
    orientation = image.metadata.ImageOrientationSlide
    x_along_columns = abs(orientation[0]) == 1
    spacing_x = SPACING[1] if x_along_columns else SPACING[0]
    spacing_y = SPACING[0] if x_along_columns else SPACING[1]
    first = [
        origin + spacing * np.ceil((start - origin) / spacing - 1e-9)
        for origin, start, spacing in zip(
            ORIGIN, offset, (spacing_x, spacing_y), strict=True
        )
    ]
    height, width = round(size[1] / spacing_y), round(size[0] / spacing_x)
    expected = np.full((height, width, 3), 255, dtype=np.uint8)
    for i in range(height):
        for j in range(width):
            point = np.array([[first[0] + j * spacing_x, first[1] + i * spacing_y]])
            row, column = image.map_slide_coordinates_to_pixel_indices(point)[0]
            if 0 <= row < ROWS and 0 <= column < COLUMNS:
                expected[i, j] = truth.pixels[0, 0, row, column]
    return expected


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    orientation=st.sampled_from(ORIENTATIONS),
    corner=st.tuples(st.floats(-0.01, 0.06), st.floats(-0.01, 0.06)),
    size=st.tuples(st.floats(0.0, 0.02), st.floats(0.0, 0.02)),
)
def test_slide_region_returns_the_pattern_in_place(oriented, orientation, corner, size):
    truth, image = oriented[tuple(orientation)]
    # the image covers x, y in [origin - extent, origin + extent]
    offset = (ORIGIN[0] - 0.04 + corner[0], ORIGIN[1] - 0.04 + corner[1])
    region = image.get_slide_region(offset, size)
    expected = _expected_slide_region(truth, image, offset, size)
    assert region.shape == expected.shape
    np.testing.assert_array_equal(region, expected)


@pytest.mark.parametrize("orientation", ORIENTATIONS, ids=str)
def test_slide_region_shape_is_constant(oriented, orientation):
    _, image = oriented[tuple(orientation)]
    shapes = {
        image.get_slide_region(
            (ORIGIN[0] - 0.03 + d, ORIGIN[1] - 0.02 + d), (0.01, 0.005)
        ).shape
        for d in np.linspace(0, 0.001, 17)
    }
    assert len(shapes) == 1


@pytest.mark.parametrize("orientation", ORIENTATIONS, ids=str)
def test_whole_image_as_slide_region(oriented, orientation):
    truth, image = oriented[tuple(orientation)]
    x0, y0 = image.physical_offset
    width, height = image.physical_size
    region = image.get_slide_region((x0, y0), (width, height))
    assert region.size == truth.pixels[0, 0].size  # nothing lost, no blank border
    assert not (region == 255).all(axis=2).all(axis=1).any()  # no blank row
    assert not (region == 255).all(axis=2).all(axis=0).any()  # no blank column
