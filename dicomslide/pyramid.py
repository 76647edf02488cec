"""Image pyramids: grouping, sorting and selecting images by resolution."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np
from pydicom.dataset import Dataset

from dicomslide.errors import MetadataError
from dicomslide.tile import check_image_geometry, get_pixel_to_slide_affine
from dicomslide.utils import (
    get_image_pixel_spacing,
    get_image_size,
    is_tiled_image,
    is_volume_image,  # also a dicomslide 0.7 name of this module
)

logger = logging.getLogger(__name__)

# Pixel spacing (mm) that corresponds roughly to an objective lens power.
_MAGNIFICATION_TO_PIXEL_SPACING = {
    1: 0.01,
    2: 0.005,
    4: 0.0025,
    10: 0.001,
    20: 0.0005,
    40: 0.00025,
}


def sort_images_by_size(collection: Sequence[Dataset]) -> list[Dataset]:
    """Sort images by size in descending order (largest to smallest).

    Parameters
    ----------
    collection: Sequence[pydicom.dataset.Dataset]
        Metadata of DICOM VL Whole Slide Microscopy Image instances

    Returns
    -------
    List[pydicom.dataset.Dataset]
        Sorted metadata of DICOM VL Whole Slide Microscopy Image instances

    """
    return sorted(collection, key=get_image_size, reverse=True)


def sort_images_by_pixel_spacing(collection: Sequence[Dataset]) -> list[Dataset]:
    """Sort images by pixel spacing in ascending order (lowest to highest).

    Parameters
    ----------
    collection: Sequence[pydicom.dataset.Dataset]
        Metadata of DICOM VL Whole Slide Microscopy Image instances

    Returns
    -------
    List[pydicom.dataset.Dataset]
        Sorted metadata of DICOM VL Whole Slide Microscopy Image instances

    """
    return sorted(collection, key=get_image_pixel_spacing)


def sort_images_by_resolution(collection: Sequence[Dataset]) -> list[Dataset]:
    """Sort images by pixel spacing in descending order (largest to smallest).

    This is the order of dicomslide 0.7, which calls the pixel spacing the
    resolution: the image with the largest spacing between rows (the coarsest,
    lowest-resolution image) comes first. Images with the same spacing between
    rows keep their order. For the opposite order, the finest image first,
    use :func:`sort_images_by_pixel_spacing`.

    Parameters
    ----------
    collection: Sequence[pydicom.dataset.Dataset]
        Metadata of DICOM VL Whole Slide Microscopy Image instances

    Returns
    -------
    List[pydicom.dataset.Dataset]
        Sorted metadata of DICOM VL Whole Slide Microscopy Image instances

    """
    return sorted(
        collection, key=lambda image: get_image_pixel_spacing(image)[0], reverse=True
    )


def select_image_at_pixel_spacing(
    collection: Sequence[Dataset],
    pixel_spacing: tuple[float, float],
    tolerance: float | None = None,
) -> Dataset:
    """Select an image from a collection at a desired spatial pixel spacing.

    Parameters
    ----------
    collection: Sequence[pydicom.dataset.Dataset]
        Metadata of DICOM VL Whole Slide Microscopy Image instances
    pixel_spacing: Tuple[float, float]
        Desired spacing between two pixels along the row and column direction
        of the image from top to bottom and left to right, respectively.
    tolerance: Union[float, None], optional
        Largest tolerated difference in millimeter between the desired and the
        nearest available pixel spacing

    Returns
    -------
    pydicom.dataset.Dataset
        Image closest to the desired pixel spacing

    Raises
    ------
    ValueError
        When argument `collection` is an empty sequence or when `tolerance`
        is exceeded.

    Note
    ----
    If multiple images with the same pixel spacing are contained in
    `collection`, the first matching image will be returned.

    """
    if len(collection) == 0:
        raise ValueError("collection must not be empty")
    spacings = np.array([get_image_pixel_spacing(image) for image in collection])
    distances = np.abs(spacings - np.asarray(pixel_spacing, dtype=float)).mean(axis=1)
    nearest = int(np.argmin(distances))
    if tolerance is not None and distances[nearest] > tolerance:
        raise ValueError(
            f"no image has a pixel spacing within {tolerance} mm of "
            f"{tuple(pixel_spacing)}: the nearest is {tuple(spacings[nearest])}"
        )
    return collection[nearest]


def select_image_at_magnification(
    collection: Sequence[Dataset],
    magnification: int,
    tolerance: float | None = None,
) -> Dataset:
    """Select an image from a collection at a desired magnification.

    Parameters
    ----------
    collection: Sequence[pydicom.dataset.Dataset]
        Metadata of DICOM VL Whole Slide Microscopy Image instances
    magnification: int
        Magnification level (corresponds roughly to object lens power of a
        microscope) of the image that should be selected; the nearest level is
        chosen. Choices: ``{1, 2, 4, 10, 20, 40}``
    tolerance: Union[float, None], optional
        Largest tolerated difference in millimeter between the pixel spacing
        of the magnification and the nearest available pixel spacing

    Returns
    -------
    pydicom.dataset.Dataset
        Image closest to the desired magnification

    Raises
    ------
    ValueError
        When argument `collection` is an empty sequence, when argument
        `magnification` does not match one of the available options, or when
        `tolerance` is exceeded.

    """
    if len(collection) == 0:
        raise ValueError("collection must not be empty")
    try:
        spacing = _MAGNIFICATION_TO_PIXEL_SPACING[magnification]
    except KeyError:
        choices = ", ".join(str(m) for m in _MAGNIFICATION_TO_PIXEL_SPACING)
        raise ValueError(f"magnification must be one of {choices}") from None
    return select_image_at_pixel_spacing(collection, (spacing, spacing), tolerance)


def derive_pixel_spacings(
    metadata: Sequence[Dataset],
) -> dict[tuple[tuple[int, int], tuple[float, float]], tuple[float, float]]:
    """Derive the pixel spacing of levels that repeat the base level's.

    Some converters write the Pixel Spacing of the largest image on every
    level. Positions and sizes win over such a spacing: a VOLUME or THUMBNAIL
    image of another size that states exactly the largest image's spacing
    covers the same area, so its spacing is the largest image's spacing
    scaled by the ratio of the matrix sizes.

    Parameters
    ----------
    metadata: Sequence[pydicom.Dataset]
        Metadata of the images of a slide

    Returns
    -------
    Dict[Tuple[Tuple[int, int], Tuple[float, float]], Tuple[float, float]]
        For each (total pixel matrix rows and columns, stored pixel spacing)
        of an image whose stored spacing is wrong, the derived (row, column)
        spacing in millimeter; empty when every spacing fits its size

    """
    sized = []
    for image in metadata:
        if not (is_volume_image(image) and is_tiled_image(image)):
            continue
        try:
            spacing = get_image_pixel_spacing(image)
        except MetadataError:
            continue
        size = (int(image.TotalPixelMatrixRows), int(image.TotalPixelMatrixColumns))
        if min(size) > 0:
            sized.append((size, spacing))
    if not sized:
        return {}
    (base_rows, base_columns), base_spacing = max(
        sized, key=lambda item: item[0][0] * item[0][1]
    )
    return {
        ((rows, columns), spacing): (
            base_spacing[0] * base_rows / rows,
            base_spacing[1] * base_columns / columns,
        )
        for (rows, columns), spacing in sized
        if (rows, columns) != (base_rows, base_columns)
        and all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(spacing, base_spacing))
    }


def compute_image_center_position(image: Dataset) -> tuple[float, float, float]:
    """Compute position of image center in slide coordinate system.

    Parameters
    ----------
    image: pydicom.dataset.Dataset
        Metadata of DICOM VL Whole Slide Microscopy Image instance

    Returns
    -------
    Tuple[float, float, float]
        (x, y, z) coordinates in millimeter

    """
    affine = get_pixel_to_slide_affine(image)
    center = np.array(
        [
            (int(image.TotalPixelMatrixRows) - 1) / 2.0,
            (int(image.TotalPixelMatrixColumns) - 1) / 2.0,
            1.0,
        ]
    )
    x, y = affine @ center
    return (float(x), float(y), 0.0)


class PyramidLevel(NamedTuple):
    """Image pyramid level."""

    #: Rows and columns of the total pixel matrix
    total_pixel_matrix_dimensions: tuple[int, int]
    #: Spacing between columns (left to right) and rows (top to bottom) in mm
    pixel_spacing: tuple[float, float]
    #: Downsampling factors along rows and columns relative to the base level
    downsampling_factors: tuple[float, float]
    #: Whether images with pixels exist for the level
    has_pixels: bool


def _level_of(image: Dataset, base: Dataset, has_pixels: bool) -> PyramidLevel:
    rows = int(image.TotalPixelMatrixRows)
    columns = int(image.TotalPixelMatrixColumns)
    row_spacing, column_spacing = get_image_pixel_spacing(image)
    return PyramidLevel(
        total_pixel_matrix_dimensions=(rows, columns),
        pixel_spacing=(column_spacing, row_spacing),
        downsampling_factors=(
            int(base.TotalPixelMatrixRows) / rows,
            int(base.TotalPixelMatrixColumns) / columns,
        ),
        has_pixels=has_pixels,
    )


class Pyramid:
    """Image pyramid.

    Levels are sorted by size, largest first. A pyramid is iterable any
    number of times and indexable by level.

    Parameters
    ----------
    metadata: Sequence[pydicom.Dataset]
        Metadata of DICOM image instances, one per level, sorted by size in
        descending order
    tolerance: float
        Maximally tolerated distances between the centers of images at
        different pyramid levels in the slide coordinate system in
        millimeter unit
    ref_metadata: Union[Sequence[pydicom.Dataset], None], optional
        Metadata of referenced DICOM source image instances that may serve as
        a template (e.g. the slide's VOLUME images for a segmentation that
        exists at only some of their levels)

    Raises
    ------
    dicomslide.errors.MetadataError
        When an attribute that sizes an image is missing or out of range
        (e.g. Total Pixel Matrix Rows of 0)
    ValueError
        When images are not tiled, not sorted by size, share a size, or are
        not spatially aligned within `tolerance`, or when an image matches no
        level of the template

    """

    def __init__(
        self,
        metadata: Sequence[Dataset],
        tolerance: float,
        ref_metadata: Sequence[Dataset] | None = None,
    ) -> None:
        if len(metadata) == 0:
            raise ValueError("a pyramid needs at least one image")
        if not all(is_tiled_image(image) for image in metadata):
            raise ValueError("images in a pyramid must be tiled")
        for image in [*metadata, *(ref_metadata or [])]:
            check_image_geometry(image, frame_count=False)  # sizes divided by
        sizes = [get_image_size(image) for image in metadata]
        if len(set(sizes)) != len(sizes):
            raise ValueError("images in a pyramid must have distinct sizes")
        if sizes != sorted(sizes, reverse=True):
            raise ValueError(
                "images in a pyramid must be sorted by size, largest first"
            )
        centers = np.array([compute_image_center_position(image) for image in metadata])
        spread = float(np.linalg.norm(centers.max(axis=0) - centers.min(axis=0)))
        if spread > tolerance:
            raise ValueError(
                "images in a pyramid must be spatially aligned: their centers "
                f"lie up to {spread:.4f} mm apart (tolerance {tolerance} mm)"
            )
        template = list(ref_metadata) if ref_metadata else list(metadata)
        base = template[0]
        levels = {
            (
                int(image.TotalPixelMatrixRows),
                int(image.TotalPixelMatrixColumns),
            ): _level_of(image, base, has_pixels=False)
            for image in template
        }
        for image in metadata:
            key = (int(image.TotalPixelMatrixRows), int(image.TotalPixelMatrixColumns))
            if key not in levels:
                raise ValueError(
                    f"image of size {key} matches no level of the reference pyramid"
                )
            levels[key] = levels[key]._replace(has_pixels=True)
        self._levels = tuple(levels.values())

    def __iter__(self) -> Iterator[PyramidLevel]:
        return iter(self._levels)

    def __len__(self) -> int:
        return len(self._levels)

    def __getitem__(self, index: int) -> PyramidLevel:
        return self._levels[index]

    def __repr__(self) -> str:
        lines = [f"<Pyramid of {len(self)} levels>"]
        for i, level in enumerate(self._levels):
            rows, columns = level.total_pixel_matrix_dimensions
            spacing_x, spacing_y = level.pixel_spacing  # along a row, a column
            down_rows, down_columns = level.downsampling_factors
            lines.append(
                f"  level {i}: {rows} rows x {columns} columns, "
                f"spacing {spacing_x:.6g} mm left-right x {spacing_y:.6g} mm "
                f"top-bottom, downsampling {down_rows:.6g} (rows) x "
                f"{down_columns:.6g} (columns)"
                + ("" if level.has_pixels else " (no pixels)")
            )
        return "\n".join(lines)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Pyramid):
            return NotImplemented
        return self._levels == other._levels

    def __hash__(self) -> int:
        return hash(self._levels)
