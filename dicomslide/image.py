"""A tiled DICOM image: metadata, channels, focal planes and slide geometry.

:class:`TiledImage` is the face of one image (an instance, or the instances of
a concatenation): it names its channels and focal planes, maps its pixels to
the slide (:mod:`dicomslide.coordinates`) and gives a
:class:`~dicomslide.TotalPixelMatrix` per channel and focal plane, all over
the image's pixel values (:class:`dicomslide.pixels.ImagePixels`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import numpy as np
from pydicom.dataset import Dataset

from dicomslide.cache import FrameCache
from dicomslide.coordinates import (
    SlideAxes,
    SlideMapping,
    face_the_slide,
    get_image_orientation,
    get_pixel_to_slide_affine,
)
from dicomslide.enum import ChannelTypes as ChannelTypes  # a dicomslide 0.7 name
from dicomslide.matrix import TotalPixelMatrix
from dicomslide.pixels import ImagePixels
from dicomslide.store import FrameStore
from dicomslide.tile import (
    compute_frame_positions as compute_frame_positions,  # a dicomslide 0.7 name
)
from dicomslide.utils import get_referenced_instances

if TYPE_CHECKING:
    from dicomweb_client.protocol import DICOMClient

logger = logging.getLogger(__name__)


class TiledImage:
    """A tiled DICOM image.

    An instance of the class represents a tiled DICOM image instance (or the
    instances of one concatenation) and provides methods for convenient and
    efficient access of image metadata and pixel data from a DICOMweb server
    or local files (or another source for which the
    ``dicomweb_client.DICOMClient`` protocol has been implemented).

    A tiled image is hereby defined as a DICOM image instance that contains
    the Total Pixel Matrix Rows and Total Pixel Matrix Columns attributes.
    Each image is associated with one or more
    :class:`dicomslide.TotalPixelMatrix` instances, one for each unique
    combination of channel and focal plane. In case of a VL Whole Slide
    Microscopy Image, a channel corresponds to an optical path, in case of a
    Segmentation, to a segment.

    Examples
    --------
    >>> image = TiledImage(client, metadata)  # doctest: +SKIP
    >>> pixel_matrix = image.get_total_pixel_matrix(channel_index=0)  # doctest: +SKIP
    >>> region = pixel_matrix[:1000, 350:750, :]  # doctest: +SKIP

    Parameters
    ----------
    client: Union[dicomweb_client.api.DICOMClient, str, os.PathLike]
        DICOMweb client, or a local folder path or DICOMweb URL to open one
    image_metadata: Union[pydicom.dataset.Dataset, Sequence[pydicom.dataset.Dataset]]
        Metadata of a tiled DICOM image, or of every instance of its
        concatenation
    max_frame_cache_size: int, optional
        Number of frames of this image the cache holds at least; the cache is
        bounded in bytes (:class:`dicomslide.cache.FrameCache`) and grown if
        needed to hold that many frames
    correct_color: bool, optional
        Whether pixels of matrices obtained from this image are colour
        corrected with the image's ICC profile
    cache: Union[dicomslide.cache.FrameCache, None], optional
        Cache for decoded frames; by default the cache shared by all images
        (:func:`dicomslide.cache.get_default_cache`)

    Note
    ----
    If `image_metadata` is the metadata of a color image, it should contain
    the ICC Profile element to enable color management.

    """  # noqa: E501

    def __init__(
        self,
        client: DICOMClient,
        image_metadata: Dataset | Sequence[Dataset],
        max_frame_cache_size: int = 6,
        *,
        correct_color: bool = True,
        cache: FrameCache | None = None,
    ) -> None:
        parts = (
            [image_metadata]
            if isinstance(image_metadata, Dataset)
            else list(image_metadata)
        )
        self._pixels = ImagePixels(client, parts, max_frame_cache_size, cache)
        self._store = self._pixels.store
        self._cache = self._pixels.cache
        self._metadata = self._store.metadata
        self._correct_color = correct_color
        self._mapping: SlideMapping | None = None
        self._matrices: dict[tuple[int, int, bool], TotalPixelMatrix] = {}

    @property
    def _slide(self) -> SlideMapping:
        # Built on first use: LABEL and OVERVIEW images may lack the spacing.
        if self._mapping is None:
            self._mapping = SlideMapping(
                get_pixel_to_slide_affine(self._metadata),
                str(self._metadata.get("SOPInstanceUID")),
            )
        return self._mapping

    def __repr__(self) -> str:
        return (
            f"<TiledImage {self._metadata.SOPInstanceUID} "
            f"size (rows, columns)={self.size} "
            f"channels={self.num_channels} focal_planes={self.num_focal_planes}>"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TiledImage):
            return NotImplemented
        return self.sop_instance_uids == other.sop_instance_uids

    def __hash__(self) -> int:
        return hash(self.sop_instance_uids)

    @property
    def metrics(self) -> dict[str, int]:
        """Dict[str, int]: what reading this image cost so far: ``requests``
        (fetches of encoded frames, one per instance and read),
        ``frames_fetched``, ``bytes_fetched`` and ``cache_hits``"""
        return self._store.metrics.as_dict()

    @property
    def client(self) -> DICOMClient:
        """dicomweb_client.api.DICOMClient: client that serves the image"""
        return self._pixels.client

    @property
    def metadata(self) -> Dataset:
        """pydicom.dataset.Dataset: Image metadata (of the first instance of a
        concatenation)"""
        return self._metadata

    @property
    def instance_metadata(self) -> tuple[Dataset, ...]:
        """Tuple[pydicom.dataset.Dataset, ...]: metadata of every instance of
        the image (the parts of a concatenation, in order)"""
        return tuple(self._store.parts)

    @property
    def sop_instance_uids(self) -> tuple[str, ...]:
        """Tuple[str, ...]: SOP Instance UIDs of the instances of the image"""
        return self._pixels.sop_instance_uids

    @property
    def icc_profile(self) -> bytes | None:
        """Union[bytes, None]: ICC profile of the image, if it has one

        Where the metadata give it as bulk data, it is fetched on first use.
        While it cannot be fetched, this is None (and a warning is logged at
        each failed attempt); it is fetched again at a later use, no sooner
        than a backoff that doubles with each failure.
        """
        return self._pixels.icc_profile

    @property
    def channel_type(self) -> ChannelTypes:
        """dicomslide.ChannelTypes: type of channels"""
        return self._pixels.channel_type

    @property
    def frame_of_reference_uid(self) -> str:
        """str: Unique identifier of the frame of reference"""
        return str(self._metadata.get("FrameOfReferenceUID", ""))

    @property
    def num_channels(self) -> int:
        """int: Number of channels"""
        return len(self._pixels.channel_identifiers)

    @property
    def num_focal_planes(self) -> int:
        """int: Number of focal planes"""
        return len(self._store.z_planes)

    @property
    def size(self) -> tuple[int, int]:
        """Tuple[int, int]: Number of total pixel matrix rows and columns"""
        return self._store.total_shape

    @property
    def num_frames(self) -> int:
        """int: Number of frames, over all instances of a concatenation"""
        return self._store.number_of_frames

    def _corners(self) -> np.ndarray:
        rows, columns = self.size
        corners = np.array(
            [
                [-0.5, -0.5],
                [-0.5, columns - 0.5],
                [rows - 0.5, -0.5],
                [rows - 0.5, columns - 0.5],
            ]
        )
        return self.map_pixel_indices_to_slide_coordinates(corners)[:, :2]

    @property
    def physical_offset(self) -> tuple[float, float]:
        """Tuple[float, float]: Offset of the total pixel matrix from the
        origin of the frame of reference along the X and Y axes of the slide
        coordinate system in millimeter (the smallest X and Y of its area)"""
        low = self._corners().min(axis=0)
        return (float(low[0]), float(low[1]))

    @property
    def physical_size(self) -> tuple[float, float]:
        """Tuple[float, float]: Size of the total pixel matrix along the X and
        Y axes of the slide coordinate system in millimeter"""
        corners = self._corners()
        extent = corners.max(axis=0) - corners.min(axis=0)
        return (float(extent[0]), float(extent[1]))

    def get_channel_identifier(self, channel_index: int) -> str:
        """Get identifier of a channel.

        Parameters
        ----------
        channel_index: int
            Zero-based index into channels along the direction defined by
            successive items of the appropriate DICOM attribute.

        Returns
        -------
        str
            Channel identifier

        Raises
        ------
        ValueError
            When no channel is found for `channel_index`

        """
        if not 0 <= channel_index < self.num_channels:
            raise ValueError(f"no channel with index {channel_index}")
        return self._pixels.channel_identifiers[channel_index]

    def get_channel_index(self, channel_identifier: str) -> int:
        """Get index of a channel.

        Parameters
        ----------
        channel_identifier: str
            Identifier of a channel (Optical Path Identifier, or Segment
            Number of a segmentation)

        Returns
        -------
        int
            Zero-based index into channels along the direction defined by
            successive items of the corresponding attribute.

        Raises
        ------
        ValueError
            When no channel is found for `channel_identifier`

        """
        try:
            return self._pixels.channel_identifiers.index(str(channel_identifier))
        except ValueError:
            raise ValueError(
                f"no channel with identifier {channel_identifier!r}"
            ) from None

    def get_focal_plane_index(self, focal_plane_offset: float) -> int:
        """Get index of a focal plane.

        Parameters
        ----------
        focal_plane_offset: float
            Offset of the focal plane from the slide surface along the Z axis
            of the slide coordinate system in micrometers

        Returns
        -------
        int
            Zero-based index into focal planes along depth direction from the
            glass slide towards the coverslip

        Raises
        ------
        ValueError
            When no focal plane is found for `focal_plane_offset`

        """
        planes = self._store.z_planes
        matches = np.nonzero(np.isclose(planes, float(focal_plane_offset), atol=1e-6))[
            0
        ]
        if len(matches) == 0:
            raise ValueError(f"no focal plane with offset {focal_plane_offset} µm")
        return int(matches[0])

    def get_focal_plane_offset(self, focal_plane_index: int) -> float:
        """Get z offset in slide coordinate system of a focal plane.

        Parameters
        ----------
        focal_plane_index: int
            Zero-based index into focal planes, in the range
            [0, Total Pixel Matrix Focal Planes).

        Returns
        -------
        float
            Offset of the focal plane from the slide surface along the Z axis
            of the slide coordinate system in micrometers

        Raises
        ------
        ValueError
            When no focal plane is found for `focal_plane_index`

        """
        if not 0 <= focal_plane_index < self.num_focal_planes:
            raise ValueError(f"no focal plane with index {focal_plane_index}")
        return float(self._store.z_planes[focal_plane_index])

    def get_total_pixel_matrix(
        self,
        channel_index: int = 0,
        focal_plane_index: int = 0,
        correct_color: bool | None = None,
    ) -> TotalPixelMatrix:
        """Get total pixel matrix for a given channel and focal plane.

        Parameters
        ----------
        channel_index: int, optional
            Zero-based index into channels along the direction defined by
            successive items of the appropriate DICOM attribute.
        focal_plane_index: int, optional
            Zero-based index into focal planes, in the range
            [0, Total Pixel Matrix Focal Planes).
        correct_color: Union[bool, None], optional
            Whether pixels should be colour corrected; by default as the image
            was constructed

        Returns
        -------
        dicomslide.TotalPixelMatrix
            Total Pixel Matrix

        """
        if correct_color is None:
            correct_color = self._correct_color
        key = (int(channel_index), int(focal_plane_index), bool(correct_color))
        matrix = self._matrices.get(key)
        if matrix is None:
            matrix = TotalPixelMatrix.of_image(
                self._pixels, channel_index, focal_plane_index, correct_color, self
            )
            self._matrices[key] = matrix
        return matrix

    def get_image_region(
        self,
        offset: tuple[int, int],
        size: tuple[int, int],
        channel_index: int = 0,
        focal_plane_index: int = 0,
    ) -> np.ndarray:
        """Get image region.

        Parameters
        ----------
        offset: Tuple[int, int]
            Zero-based (row, column) indices of the region's top left pixel in
            the total pixel matrix; may be negative or past the matrix, where
            pixels read as the fill value
        size: Tuple[int, int]
            Rows and columns of the requested image region
        channel_index: int, optional
            Zero-based channel index
        focal_plane_index: int, optional
            Zero-based focal plane index

        Returns
        -------
        numpy.ndarray
            Three-dimensional pixel array of shape (Rows, Columns, Samples per
            Pixel) for the requested image region

        Raises
        ------
        ValueError
            When `size` is negative

        """
        matrix = self.get_total_pixel_matrix(channel_index, focal_plane_index)
        return matrix.read_region(offset, size)

    def get_slide_region(
        self,
        offset: tuple[float, float],
        size: tuple[float, float],
        channel_index: int = 0,
        focal_plane_index: int = 0,
    ) -> np.ndarray:
        """Get slide region.

        Parameters
        ----------
        offset: Tuple[float, float]
            Zero-based (x, y) offset in the slide coordinate system in
            millimeter. The (0.0, 0.0) coordinate is located at the origin of
            the slide (usually the slide corner).
        size: Tuple[float, float]
            Width and height of the requested slide region in millimeter unit
            along the X and Y axis of the slide coordinate system, respectively.
        channel_index: int, optional
            Zero-based channel index
        focal_plane_index: int, optional
            Zero-based focal plane index

        Returns
        -------
        numpy.ndarray
            Three-dimensional pixel array of shape (Rows, Columns, Samples per
            Pixel) for the requested slide region

        Note
        ----
        The slide coordinate system is defined for the upright standing slide
        such that the X axis corresponds to the short side of the slide and
        the Y axis corresponds to the long side of the slide. The returned
        array is aligned with the slide: element ``[i, j]`` is the pixel whose
        centre lies at ``(x0 + j * sx, y0 + i * sy)``, where ``(x0, y0)`` is the
        first pixel centre at or after `offset` and ``sx``, ``sy`` are the
        pixel spacings along X and Y. Its shape is always
        ``(round(height / sy), round(width / sx), samples)``, the quotients
        taken to 1e-9 pixel (so that a size computed as a difference of
        coordinates gives the shape of the size meant); pixels outside the
        total pixel matrix have the fill value.

        """
        width, height = (float(v) for v in size)
        if width < 0 or height < 0:
            raise ValueError(f"region size must not be negative, got {size}")
        block = self._slide.region(offset, (width, height))
        region = self.get_image_region(
            block.offset, block.size, channel_index, focal_plane_index
        )
        return face_the_slide(region, block.axes)

    def get_slide_axes(self) -> SlideAxes:
        """Get how the axes of the total pixel matrix lie on the slide.

        Returns
        -------
        dicomslide.coordinates.SlideAxes
            The image axis (0: rows, 1: columns) along the slide's X and Y
            axes, whether indices grow or shrink along them, and the pixel
            spacings along X and Y in millimeter

        Raises
        ------
        dicomslide.errors.MetadataError
            When the image is rotated by other than a multiple of 90 degrees

        """
        return self._slide.axes()

    def map_pixel_indices_to_slide_coordinates(
        self, pixel_indices: np.ndarray
    ) -> np.ndarray:
        """Map pixel indices to slide coordinates.

        Parameters
        ----------
        pixel_indices: numpy.ndarray
            Zero-based (row, column) indices into the total pixel matrix of
            the image, shape (n, 2)

        Returns
        -------
        numpy.ndarray
            Zero-based (x, y, z) coordinates in the slide coordinate system in
            millimeter, shape (n, 3); z is the offset of focal plane 0

        """
        xy = self._slide.to_slide(pixel_indices)
        z = np.full((len(xy), 1), float(self._store.z_planes[0]) / 1000.0)
        return np.hstack([xy, z])

    def map_slide_coordinates_to_pixel_indices(
        self, slide_coordinates: np.ndarray
    ) -> np.ndarray:
        """Map slide coordinates to pixel indices.

        Parameters
        ----------
        slide_coordinates: numpy.ndarray
            Zero-based (x, y[, z]) coordinates in the slide coordinate system
            in millimeter, shape (n, 2) or (n, 3)

        Returns
        -------
        numpy.ndarray
            Zero-based (row, column) indices into the total pixel matrix of
            the image (the pixel whose centre is nearest), shape (n, 2); they
            may lie outside the matrix

        """
        coordinates = np.asarray(slide_coordinates, dtype=np.float64)
        coordinates = coordinates.reshape(-1, coordinates.shape[-1])[:, :2]
        return cast(
            "np.ndarray", np.rint(self._slide.to_pixels(coordinates)).astype(np.int64)
        )

    def get_pixel_indices(self, offset: tuple[float, float]) -> tuple[int, int]:
        """Get indices into total pixel matrix for a given slide position.

        Parameters
        ----------
        offset: Tuple[float, float]
            Zero-based (x, y) offset in the slide coordinate system in millimeter

        Returns
        -------
        Tuple[int, int]
            Zero-based (row, column) position in the total pixel matrix

        Note
        ----
        Pixel position may be negative or extend beyond the size of the total
        pixel matrix if slide position at `offset` does fall into a region on
        the slide that was not imaged.

        """
        row, column = self.map_slide_coordinates_to_pixel_indices(np.array([offset]))[0]
        return (int(row), int(column))

    def get_slide_offset(self, pixel_indices: tuple[int, int]) -> tuple[float, float]:
        """Get slide coordinates for a given total pixel matrix position.

        Parameters
        ----------
        pixel_indices: Tuple[int, int]
            Zero-based (row, column) offset in the total pixel matrix

        Returns
        -------
        Tuple[float, float]
            Zero-based (x, y) position on the slide in the slide coordinate
            system in millimeter

        """
        x, y, _ = self.map_pixel_indices_to_slide_coordinates(
            np.array([pixel_indices])
        )[0]
        return (float(x), float(y))

    def get_rotation(self) -> float:
        """Get angle to rotate image such that it aligns with slide.

        Returns
        -------
        float
            Counterclockwise angle in degrees, in [0, 360), from the slide's X
            axis to the image's row direction (the direction of increasing
            column index)

        """
        orientation = get_image_orientation(self._metadata)
        return math.degrees(math.atan2(orientation[1], orientation[0])) % 360.0

    def get_references(
        self, sop_class_uid: str | None = None
    ) -> list[tuple[str, str, str]]:
        """Get unique identifiers of referenced instances.

        Parameters
        ----------
        sop_class_uid: Union[str, None], optional
            SOP Class UID of instances for which references should be obtained

        Returns
        -------
        List[Tuple[str, str, str]]
            Study, Series, and SOP Instance UID of each referenced image

        """
        return get_referenced_instances(self._metadata, sop_class_uid)


def rgba_frame_store(image: TiledImage) -> FrameStore:
    """The frames of an image, read as opaque RGBA (package-internal).

    For faces that show pixels as RGBA, such as the OpenSlide facade: see
    :meth:`dicomslide.store.FrameStore.as_rgba`. The view shares the image's
    frame tables, loader and cache (a frame read through either view is
    loaded once); reads take ``fill=0`` for transparency.

    Parameters
    ----------
    image: dicomslide.TiledImage
        Image of 8-bit grey or RGB frames

    Returns
    -------
    dicomslide.store.FrameStore
        A new RGBA view of the image's frames

    Raises
    ------
    ValueError
        When the frames are not 8-bit grey or RGB

    """
    return image._store.as_rgba()
