"""Where the pixels of a total pixel matrix lie on the slide.

A total pixel matrix and the slide coordinate system (millimetres; X along
the short side of the upright slide, Y along its long side) are related by an
affine map: Image Orientation (Slide) gives the directions of rows and
columns, the pixel spacing their steps, and the Total Pixel Matrix Origin
Sequence where the first pixel's centre lies. :class:`SlideMapping` maps
between the two, and finds the pixels of a slide region aligned with the
slide's axes.
"""

from __future__ import annotations

from typing import NamedTuple, cast

import numpy as np
from pydicom.dataset import Dataset

from dicomslide.elements import element_value
from dicomslide.errors import MetadataError
from dicomslide.utils import get_image_pixel_spacing

_DEFAULT_ORIENTATION = (0.0, -1.0, 0.0, -1.0, 0.0, 0.0)


def get_image_orientation(image: Dataset) -> tuple[float, ...]:
    """Get Image Orientation (Slide), defaulting to the usual orientation.

    Parameters
    ----------
    image: pydicom.Dataset
        Metadata of a tiled image

    Returns
    -------
    Tuple[float, ...]
        Direction cosines of the row and of the column direction

    """
    value = element_value(image, "ImageOrientationSlide")
    if value is None or len(value) != 6:
        return _DEFAULT_ORIENTATION
    return tuple(float(v) for v in value)


def get_pixel_to_slide_affine(image: Dataset) -> np.ndarray:
    """Get the affine that maps (row, column, 1) to slide (x, y) in mm.

    Parameters
    ----------
    image: pydicom.Dataset
        Metadata of a tiled image

    Returns
    -------
    numpy.ndarray
        Matrix of shape (2, 3)

    """
    row_spacing, column_spacing = get_image_pixel_spacing(image)
    orientation = get_image_orientation(image)
    origin = element_value(image, "TotalPixelMatrixOriginSequence")
    if origin:
        x0 = float(element_value(origin[0], "XOffsetInSlideCoordinateSystem", 0.0))
        y0 = float(element_value(origin[0], "YOffsetInSlideCoordinateSystem", 0.0))
    else:
        x0 = y0 = 0.0
    # Moving along a row (increasing column index) follows the first three
    # direction cosines; moving down a column follows the last three.
    return np.array(
        [
            [orientation[3] * row_spacing, orientation[0] * column_spacing, x0],
            [orientation[4] * row_spacing, orientation[1] * column_spacing, y0],
        ],
        dtype=np.float64,
    )


class SlideAxes(NamedTuple):
    """How the axes of a total pixel matrix lie on the slide."""

    axis_x: int  # image axis (0: rows, 1: columns) that runs along X
    axis_y: int
    sign_x: int  # +1 if the index grows with X, -1 if it shrinks
    sign_y: int
    spacing_x: float  # pixel spacing along X in mm
    spacing_y: float


class PixelRegion(NamedTuple):
    """The pixels of a slide region, and how to turn them to face the slide."""

    offset: tuple[int, int]  # (row, column) in the total pixel matrix
    size: tuple[int, int]  # (rows, columns)
    axes: SlideAxes


class SlideMapping:
    """Maps between pixel indices of a total pixel matrix and the slide.

    Parameters
    ----------
    affine: numpy.ndarray
        Matrix of shape (2, 3) that maps (row, column, 1) to slide (x, y) in
        millimetres (:func:`get_pixel_to_slide_affine`)
    sop_instance_uid: str
        SOP Instance UID of the image, for error messages

    """

    def __init__(self, affine: np.ndarray, sop_instance_uid: str) -> None:
        self.affine = affine
        self._linear = affine[:, :2]
        self._origin = affine[:, 2]
        self._sop_instance_uid = sop_instance_uid

    def to_slide(self, pixel_indices: np.ndarray) -> np.ndarray:
        """Slide (x, y) of (row, column) pixel indices, shape (n, 2)."""
        indices = np.asarray(pixel_indices, dtype=np.float64).reshape(-1, 2)
        return cast("np.ndarray", indices @ self._linear.T + self._origin)

    def to_pixels(self, xy: np.ndarray) -> np.ndarray:
        """Continuous (row, column) indices of slide (x, y), shape (n, 2)."""
        return np.linalg.solve(self._linear, (xy - self._origin).T).T

    def axes(self) -> SlideAxes:
        """How the matrix's axes lie along the slide's X and Y axes.

        Raises
        ------
        dicomslide.errors.MetadataError
            When the matrix is rotated by other than a multiple of 90 degrees

        """
        linear = self._linear
        axis_x = int(np.argmax(np.abs(linear[0])))
        axis_y = 1 - axis_x
        scale = np.abs(linear).max()
        if (
            abs(linear[0, axis_y]) > 1e-6 * scale
            or abs(linear[1, axis_x]) > 1e-6 * scale
        ):
            raise MetadataError(
                "Image Orientation (Slide) is not aligned with the slide axes; "
                "slide regions need rotations by multiples of 90 degrees",
                self._sop_instance_uid,
            )
        return SlideAxes(
            axis_x=axis_x,
            axis_y=axis_y,
            sign_x=int(np.sign(linear[0, axis_x])),
            sign_y=int(np.sign(linear[1, axis_y])),
            spacing_x=float(abs(linear[0, axis_x])),
            spacing_y=float(abs(linear[1, axis_y])),
        )

    def region(
        self, offset: tuple[float, float], size: tuple[float, float]
    ) -> PixelRegion:
        """The pixels whose centres lie in a slide region.

        Parameters
        ----------
        offset: Tuple[float, float]
            (x, y) of the region's corner in millimetres
        size: Tuple[float, float]
            Width and height of the region in millimetres (not negative)

        Returns
        -------
        dicomslide.coordinates.PixelRegion
            The block of the total pixel matrix: ``round(height / sy)`` pixels
            along Y and ``round(width / sx)`` along X, the quotients taken to
            1e-9 pixel, from the first pixel centre at or after `offset`

        """
        width, height = (float(v) for v in size)
        axes = self.axes()
        # Sizes that are differences of coordinates carry rounding errors
        # (19.85 - 19.8 is 0.05000000000000071): to 1e-9 pixel, they count
        # as what they were meant to be before they are rounded.
        columns = round(round(width / axes.spacing_x, 9))
        rows = round(round(height / axes.spacing_y, 9))
        origin = self._origin
        # first pixel centres at or after the offset along X and Y
        first = np.array(
            [
                origin[i]
                + spacing * np.ceil((float(offset[i]) - origin[i]) / spacing - 1e-9)
                for i, spacing in enumerate((axes.spacing_x, axes.spacing_y))
            ]
        )
        start = np.rint(np.linalg.solve(self._linear, first - origin)).astype(int)
        region_offset = [0, 0]
        region_size = [0, 0]
        for axis, sign, count in (
            (axes.axis_x, axes.sign_x, columns),
            (axes.axis_y, axes.sign_y, rows),
        ):
            region_offset[axis] = int(start[axis]) - (count - 1 if sign < 0 else 0)
            region_size[axis] = count
        return PixelRegion(
            (region_offset[0], region_offset[1]),
            (region_size[0], region_size[1]),
            axes,
        )


def face_the_slide(pixels: np.ndarray, axes: SlideAxes) -> np.ndarray:
    """Turn a block of pixels so that its rows run along the slide's Y axis
    and its columns along X, both growing.

    Parameters
    ----------
    pixels: numpy.ndarray
        Pixels of shape (rows, columns, samples) of a total pixel matrix
    axes: dicomslide.coordinates.SlideAxes
        How the matrix's axes lie on the slide

    Returns
    -------
    numpy.ndarray
        C-contiguous pixels, element ``[i, j]`` at slide ``(x0 + j * sx, y0 +
        i * sy)``

    """
    if axes.axis_x == 0:  # image rows run along X
        pixels = pixels.transpose(1, 0, 2)
    if axes.sign_x < 0:
        pixels = pixels[:, ::-1]
    if axes.sign_y < 0:
        pixels = pixels[::-1]
    return np.ascontiguousarray(pixels)
