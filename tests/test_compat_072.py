"""Code written for dicomslide 0.7 keeps working.

``NAMES_072`` lists, module by module, the public names of dicomslide 0.7.2
(the names its modules define or import from other dicomslide modules; not
``logger`` nor the private module ``_channel``), read from its sources. Each
must stay importable from the same module. The behavioural tests carry over
the ideas of dicomslide 0.7.2's own test suite to synthetic slides.
"""

from __future__ import annotations

import importlib

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

import dicomslide
from dicomslide.matrix import TotalPixelMatrix, TotalPixelMatrixSampler
from dicomslide.openslide import OPENSLIDE_MPP_X, OPENSLIDE_MPP_Y, OpenSlide
from dicomslide.pyramid import (
    sort_images_by_pixel_spacing,
    sort_images_by_resolution,
    sort_images_by_size,
)
from dicomslide.slide import Slide, find_slides
from dicomslide.testing import synthetic
from tests.subprocesses import run_python

NAMES_072: dict[str, list[str]] = {
    "dicomslide": [
        "ChannelTypes",
        "ImageFlavors",
        "OpenSlide",
        "Pyramid",
        "PyramidLevel",
        "Slide",
        "TiledImage",
        "TotalPixelMatrix",
        "TotalPixelMatrixSampler",
        "__version__",
        "assemble_total_pixel_matrix",
        "compute_frame_positions",
        "compute_image_center_position",
        "disassemble_total_pixel_matrix",
        "does_optical_path_item_match",
        "does_segment_item_match",
        "does_specimen_description_item_match",
        "find_slides",
        "get_image_pixel_spacing",
        "get_image_size",
        "is_image",
        "is_label_image",
        "is_overview_image",
        "is_tiled_image",
        "is_volume_image",
        "select_image_at_magnification",
        "select_image_at_pixel_spacing",
        "sort_images_by_pixel_spacing",
        "sort_images_by_size",
    ],
    "dicomslide.enum": ["ChannelTypes", "ImageFlavors"],
    "dicomslide.image": [
        "ChannelTypes",
        "TiledImage",
        "TotalPixelMatrix",
        "compute_frame_positions",
    ],
    "dicomslide.matrix": [
        "TotalPixelMatrix",
        "TotalPixelMatrixSampler",
        "assemble_total_pixel_matrix",
        "compute_frame_positions",
        "is_tiled_image",
    ],
    "dicomslide.openslide": [
        "ImageFlavors",
        "OPENSLIDE_BACKGROUND_COLOR",
        "OPENSLIDE_BOUNDS_HEIGHT",
        "OPENSLIDE_BOUNDS_WIDTH",
        "OPENSLIDE_BOUNDS_X",
        "OPENSLIDE_BOUNDS_Y",
        "OPENSLIDE_COMMENT",
        "OPENSLIDE_MPP_X",
        "OPENSLIDE_MPP_Y",
        "OPENSLIDE_OBJECTIVE_POWER",
        "OPENSLIDE_QUICKHASH1",
        "OPENSLIDE_VENDOR",
        "OpenSlide",
        "Slide",
    ],
    "dicomslide.pyramid": [
        "Pyramid",
        "PyramidLevel",
        "compute_image_center_position",
        "get_image_pixel_spacing",
        "get_image_size",
        "is_tiled_image",
        "is_volume_image",
        "select_image_at_magnification",
        "select_image_at_pixel_spacing",
        "sort_images_by_pixel_spacing",
        "sort_images_by_resolution",
        "sort_images_by_size",
    ],
    "dicomslide.slide": [
        "ChannelTypes",
        "Pyramid",
        "Slide",
        "TiledImage",
        "does_optical_path_item_match",
        "does_segment_item_match",
        "does_specimen_description_item_match",
        "find_slides",
        "get_image_size",
        "is_label_image",
        "is_overview_image",
        "is_volume_image",
    ],
    "dicomslide.tile": [
        "assemble_total_pixel_matrix",
        "compute_frame_positions",
        "disassemble_total_pixel_matrix",
        "is_tiled_image",
    ],
    "dicomslide.utils": [
        "ImageFlavors",
        "does_optical_path_item_match",
        "does_segment_item_match",
        "does_specimen_description_item_match",
        "is_image",
        "is_label_image",
        "is_overview_image",
        "is_tiled_image",
        "is_volume_image",
    ],
    "dicomslide.version": ["__version__"],
}

#: The values of dicomslide 0.7.2's OpenSlide property name constants.
OPENSLIDE_072 = {
    "OPENSLIDE_COMMENT": "openslide.comment",
    "OPENSLIDE_VENDOR": "openslide.vendor",
    "OPENSLIDE_QUICKHASH1": "openslide.quickhash-1",
    "OPENSLIDE_BACKGROUND_COLOR": "openslide.background-color",
    "OPENSLIDE_OBJECTIVE_POWER": "openslide.objective-power",
    "OPENSLIDE_MPP_X": "openslide.mpp-x",
    "OPENSLIDE_MPP_Y": "openslide.mpp-y",
    "OPENSLIDE_BOUNDS_X": "openslide.bounds-x",
    "OPENSLIDE_BOUNDS_Y": "openslide.bounds-y",
    "OPENSLIDE_BOUNDS_WIDTH": "openslide.bounds-width",
    "OPENSLIDE_BOUNDS_HEIGHT": "openslide.bounds-height",
}


# -- names ------------------------------------------------------------------


@pytest.mark.parametrize("module_name", sorted(NAMES_072))
def test_every_072_name_is_importable_from_its_module(module_name):
    module = importlib.import_module(module_name)
    for name in NAMES_072[module_name]:
        if (module_name, name) == ("dicomslide", "OpenSlide"):
            # resolved on first use, so that `import dicomslide` does not load
            # the OpenSlide library
            assert dicomslide.OpenSlide is OpenSlide
            continue
        # a module attribute, not one that a module __getattr__ makes up
        assert name in vars(module), f"{module_name}.{name}"


def test_the_072_imports_run_in_a_fresh_interpreter():
    statements = "\n".join(
        f"from {module_name} import {', '.join(names)}"
        for module_name, names in NAMES_072.items()
    )
    result = run_python(statements + "\nprint('imported')")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported"


def test_re_exported_names_are_the_objects_of_the_package():
    for module_name, names in NAMES_072.items():
        module = importlib.import_module(module_name)
        for name in names:
            if hasattr(dicomslide, name):
                assert getattr(module, name) is getattr(dicomslide, name), (
                    f"{module_name}.{name}"
                )


def test_openslide_property_names_keep_their_072_values():
    import dicomslide.openslide as facade

    for name, value in OPENSLIDE_072.items():
        assert getattr(facade, name) == value
        assert name in facade.__all__
    # the same properties under openslide-python's names
    assert facade.OPENSLIDE_MPP_X == facade.PROPERTY_NAME_MPP_X
    assert facade.OPENSLIDE_QUICKHASH1 == facade.PROPERTY_NAME_QUICKHASH1


# -- find_slides, Slide and the facade, as 0.7.2's tests used them ----------


@pytest.fixture(scope="module")
def two_slides(tmp_path_factory):
    folder = tmp_path_factory.mktemp("two")
    first = synthetic.write_slide(
        folder / "a", "rgb_full", uids=synthetic.SlideUIDs.new("COMPAT-A")
    )
    second = synthetic.write_slide(
        folder / "b", "sparse", uids=synthetic.SlideUIDs.new("COMPAT-B")
    )
    return folder, first, second


def test_find_slides_from_the_slide_module(two_slides):
    folder, first, _ = two_slides
    slides = find_slides(folder)
    assert len(slides) == 2 and all(isinstance(s, Slide) for s in slides)
    study = first.uids.study_instance_uid
    assert [s.container_id for s in find_slides(folder, study_instance_uid=study)] == [
        "COMPAT-A"
    ]
    assert find_slides(folder, study_instance_uid="1.2.3.4") == []
    assert [s.container_id for s in find_slides(folder, container_id="COMPAT-B")] == [
        "COMPAT-B"
    ]
    assert find_slides(folder, container_id="foo") == []


def test_facade_over_a_slide_with_the_072_property_names(two_slides):
    folder, first, _ = two_slides
    slide = find_slides(folder, container_id="COMPAT-A")[0]
    facade = OpenSlide(slide)
    level = first.levels[0]
    assert facade.dimensions == (level.total_cols, level.total_rows)
    row_spacing, column_spacing = level.pixel_spacing
    assert float(facade.properties[OPENSLIDE_MPP_X]) == pytest.approx(
        column_spacing * 1000
    )
    assert float(facade.properties[OPENSLIDE_MPP_Y]) == pytest.approx(
        row_spacing * 1000
    )
    # the keys 0.7 gave the associated images
    assert first.label is not None
    label = facade.associated_images["LABEL"]
    assert label.size == (first.label.total_cols, first.label.total_rows)


# -- sort_images_by_resolution ----------------------------------------------


def _metadata(rows: int, columns: int, spacing: tuple[float, float]) -> Dataset:
    dataset = Dataset()
    dataset.TotalPixelMatrixRows = rows
    dataset.TotalPixelMatrixColumns = columns
    measures = Dataset()
    measures.PixelSpacing = list(spacing)
    group = Dataset()
    group.PixelMeasuresSequence = [measures]
    dataset.SharedFunctionalGroupsSequence = [group]
    return dataset


def test_sort_images_as_072_sorted_them():
    images = [
        _metadata(1000, 1000, (0.5, 0.5)),
        _metadata(500, 500, (0.8, 0.8)),
        _metadata(750, 350, (0.2, 0.2)),
    ]
    by_size = sort_images_by_size(images)
    assert [images.index(image) for image in by_size] == [0, 2, 1]
    by_spacing = sort_images_by_pixel_spacing(images)
    assert [images.index(image) for image in by_spacing] == [2, 0, 1]
    # 0.7.2: pixel spacing descending, the coarsest image first
    by_resolution = sort_images_by_resolution(images)
    assert [images.index(image) for image in by_resolution] == [1, 0, 2]


def test_sort_images_by_resolution_keys_on_row_spacing_and_is_stable():
    images = [
        _metadata(10, 10, (0.25, 0.5)),
        _metadata(10, 10, (0.5, 0.1)),
        _metadata(10, 10, (0.25, 0.125)),
        _metadata(10, 10, (1.0, 1.0)),
    ]
    ordered = sort_images_by_resolution(images)
    assert [images.index(image) for image in ordered] == [3, 1, 0, 2]


def test_sort_images_by_resolution_on_a_slides_images(two_slides):
    _, first, _ = two_slides
    headers = [
        pydicom.dcmread(image.files[0], stop_before_pixels=True)
        for image in first.levels + [first.thumbnail]
    ]
    ordered = sort_images_by_resolution(headers[::-1])
    spacings = [dicomslide.get_image_pixel_spacing(header)[0] for header in ordered]
    assert spacings == sorted(spacings, reverse=True) and len(set(spacings)) == 4
    assert ordered == sort_images_by_pixel_spacing(headers)[::-1]


# -- TotalPixelMatrixSampler ------------------------------------------------


@pytest.fixture(scope="module")
def small_image(tmp_path_factory) -> synthetic.SyntheticImage:
    """30 x 28 RGB pixels in 4 x 6 tiles, as in 0.7.2's sampler test."""
    return synthetic.write_wsi_image(
        tmp_path_factory.mktemp("small"),
        total_rows=30,
        total_cols=28,
        tile_rows=4,
        tile_cols=6,
        seed=72,
    )


@pytest.fixture(scope="module")
def small_matrix(small_image) -> TotalPixelMatrix:
    metadata = pydicom.dcmread(small_image.files[0], stop_before_pixels=True)
    return TotalPixelMatrix(
        client=small_image.files[0].parent,
        image_metadata=metadata,
        channel_index=0,
        focal_plane_index=0,
    )


def _window(truth: np.ndarray, row: int, column: int, rows: int, columns: int):
    """truth[row:row + rows, column:column + columns], white outside truth."""
    window = np.full((rows, columns, truth.shape[2]), 255, truth.dtype)
    r0, c0 = max(row, 0), max(column, 0)
    r1 = min(row + rows, truth.shape[0])
    c1 = min(column + columns, truth.shape[1])
    if r1 > r0 and c1 > c0:
        window[r0 - row : r1 - row, c0 - column : c1 - column] = truth[r0:r1, c0:c1]
    return window


def _check_regions(sampler: TotalPixelMatrixSampler, truth: np.ndarray) -> None:
    left, top, _, _ = sampler.padding
    region_rows, region_columns, _ = sampler.region_shape
    padded_rows, padded_columns, _ = sampler.padded_region_shape
    seen = 0
    for index, region in enumerate(sampler):
        grid_row, grid_column = sampler.get_region_grid_position(index)
        expected = _window(
            truth,
            grid_row * region_rows - top,
            grid_column * region_columns - left,
            padded_rows,
            padded_columns,
        )
        np.testing.assert_array_equal(region, expected, err_msg=f"region {index}")
        seen += 1
    assert seen == len(sampler)


def test_sampler_walks_the_whole_grid(small_image, small_matrix):
    sampler = TotalPixelMatrixSampler(
        matrix=small_matrix, region_dimensions=(6, 10), padding=2
    )
    assert len(sampler) == 5 * 3
    assert sampler.padded_region_shape == (10, 14, 3)
    _check_regions(sampler, small_image.pixels[0, 0])


def test_sampler_bounding_box_selects_the_matrix_grid_regions(
    small_image, small_matrix
):
    sampler = TotalPixelMatrixSampler(
        matrix=small_matrix,
        region_dimensions=(6, 10),
        bounding_box=((7, 7), (12, 12)),
        padding=(2, 4),
    )
    # rows 7..18 lie in region rows 1-3, columns 7..18 in region columns 0-1
    assert len(sampler) == 6
    positions = [sampler.get_region_grid_position(i) for i in range(len(sampler))]
    assert positions == [(1, 0), (1, 1), (2, 0), (2, 1), (3, 0), (3, 1)]
    assert sampler.padding == (2, 4, 2, 4)
    left, top, right, bottom = sampler.padding
    for padded_region in sampler:
        assert padded_region.shape == sampler.padded_region_shape
        region = padded_region[top:-bottom, left:-right, :]
        assert region.shape == sampler.region_shape
    _check_regions(sampler, small_image.pixels[0, 0])


def test_sampler_bounding_box_edges(small_image, small_matrix):
    truth = small_image.pixels[0, 0]
    # a box that ends at the matrix's last row and column: its region (4, 2)
    # reaches past the matrix, where it reads white
    corner = TotalPixelMatrixSampler(small_matrix, (6, 10), ((24, 20), (6, 8)))
    assert [corner.get_region_grid_position(i) for i in range(len(corner))] == [(4, 2)]
    _check_regions(corner, truth)
    assert (corner[0][:, 8:] == 255).all()
    # a box on the grid lines holds only its own regions
    aligned = TotalPixelMatrixSampler(small_matrix, (6, 10), ((6, 10), (6, 10)))
    assert [aligned.get_region_grid_position(i) for i in range(len(aligned))] == [
        (1, 1)
    ]
    # an empty box holds no pixel
    assert len(TotalPixelMatrixSampler(small_matrix, (6, 10), ((7, 7), (0, 5)))) == 0
    # the box wins over tile positions
    both = TotalPixelMatrixSampler(
        small_matrix, (6, 10), ((0, 0), (6, 10)), tile_grid_positions=[(7, 4)]
    )
    assert [both.get_region_grid_position(i) for i in range(len(both))] == [(0, 0)]
    for box in (((25, 0), (6, 1)), ((0, 21), (1, 8)), ((-1, 0), (2, 2))):
        with pytest.raises(ValueError):
            TotalPixelMatrixSampler(small_matrix, (6, 10), box)


# -- get_slide_region_for_annotation ----------------------------------------


@pytest.fixture(scope="module")
def coarse_slide(tmp_path_factory):
    """A slide at 0.004 mm per pixel, as 0.7.2's annotation tests read."""
    folder = tmp_path_factory.mktemp("coarse")
    image = synthetic.write_wsi_image(
        folder,
        total_rows=60,
        total_cols=80,
        tile_rows=16,
        tile_cols=16,
        pixel_spacing=(0.004, 0.004),
        seed=4,
    )
    return image, find_slides(folder, correct_color=False)[0]


def _annotation(graphic_type, points, frame_of_reference_uid):
    return hd.sr.Scoord3DContentItem(
        name=codes.DCM.ImageRegion,
        graphic_type=graphic_type,
        graphic_data=np.array(points, dtype=float),
        frame_of_reference_uid=frame_of_reference_uid,
    )


def _rectangle(x: float, y: float, width: float, height: float):
    return [
        (x, y, 0.0),
        (x + width, y, 0.0),
        (x + width, y + height, 0.0),
        (x, y + height, 0.0),
        (x, y, 0.0),
    ]


def test_annotation_region_is_the_slide_region_of_its_bounding_box(coarse_slide):
    image, slide = coarse_slide
    uid = slide.frame_of_reference_uid
    truth = image.pixels[0, 0]
    # image rows run along -X and columns along -Y from the origin (20, 40);
    # the pixel (row 50, column 50) is centred on (19.8, 39.8)
    assert slide.get_slide_offset((50, 50), 0) == pytest.approx((19.8, 39.8))
    polygon = _annotation("POLYGON", _rectangle(19.8, 39.8, 0.05, 0.03), uid)
    region = slide.get_slide_region_for_annotation(polygon, level=0)
    assert region.shape == (8, 12, 3)
    box = slide.get_slide_region((19.8, 39.8), 0, (0.05, 0.03))
    assert box.shape == (8, 12, 3)
    np.testing.assert_array_equal(region, box)
    # element [i, j] lies at (19.8 + j * 0.004, 39.8 + i * 0.004): row 50 - j,
    # column 50 - i
    np.testing.assert_array_equal(
        region, truth[39:51, 43:51].transpose(1, 0, 2)[::-1, ::-1]
    )

    # an ellipse with the same bounding box (0.7.2's axis endpoints)
    ellipse = _annotation(
        "ELLIPSE",
        [
            (19.8, 39.815, 0.0),
            (19.85, 39.815, 0.0),
            (19.825, 39.8, 0.0),
            (19.825, 39.83, 0.0),
        ],
        uid,
    )
    np.testing.assert_array_equal(
        slide.get_slide_region_for_annotation(ellipse, level=0), box
    )


def test_annotation_region_shape_follows_the_box_anywhere(coarse_slide):
    _, slide = coarse_slide
    uid = slide.frame_of_reference_uid
    rng = np.random.default_rng(7)
    for x, y in zip(
        rng.uniform(19.77, 19.9, 20), rng.uniform(39.69, 39.9, 20), strict=True
    ):
        polygon = _annotation("POLYGON", _rectangle(x, y, 0.05, 0.03), uid)
        region = slide.get_slide_region_for_annotation(polygon, 0)
        box = slide.get_slide_region((x, y), 0, (0.05, 0.03))
        assert region.shape == box.shape == (8, 12, 3), (x, y)
        np.testing.assert_array_equal(region, box)


def test_annotation_padding_is_in_pixels_of_the_level(coarse_slide):
    image, slide = coarse_slide
    uid = slide.frame_of_reference_uid
    polygon = _annotation("POLYGON", _rectangle(19.8, 39.8, 0.048, 0.032), uid)
    # left (-X) 1, top (+Y) 2, right (+X) 3, bottom (-Y) 4 pixels
    padded = slide.get_slide_region_for_annotation(polygon, 0, padding=(1, 2, 3, 4))
    assert padded.shape == (8 + 2 + 4, 12 + 1 + 3, 3)
    spacing = 0.004
    box = slide.get_slide_region(
        (19.8 - 1 * spacing, 39.8 - 4 * spacing),
        0,
        (0.048 + 4 * spacing, 0.032 + 6 * spacing),
    )
    np.testing.assert_array_equal(padded, box)
    # X from row 51 down to row 36, Y from column 54 down to column 41
    np.testing.assert_array_equal(
        padded, image.pixels[0, 0][36:52, 41:55].transpose(1, 0, 2)[::-1, ::-1]
    )
