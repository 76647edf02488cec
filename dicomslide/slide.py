"""Slides: the images of one glass slide, grouped into pyramids."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import PIL.Image
from pydicom.dataset import Dataset

from dicomslide.annotations import annotation_bounds
from dicomslide.cache import FrameCache
from dicomslide.channels import arrange_images, channel_item, group_concatenations
from dicomslide.client import open_client, portable
from dicomslide.consistency import (
    check_slide_images,
    make_leaving_out,
    repair_pixel_spacings,
)
from dicomslide.counters import Counters
from dicomslide.discovery import find_slide_images, open_source
from dicomslide.elements import element_value
from dicomslide.enum import ChannelTypes
from dicomslide.errors import (
    MetadataError,
    MultipleSlidesError,
    SlideNotFoundError,
)
from dicomslide.image import TiledImage
from dicomslide.matrix import normalize_padding
from dicomslide.pyramid import Pyramid, PyramidLevel
from dicomslide.urls import without_credentials
from dicomslide.utils import (
    distinct_values,
    does_optical_path_item_match,
    does_segment_item_match,
    does_specimen_description_item_match,
    is_label_image,
    is_overview_image,
)

# names dicomslide 0.7 exported from this module
from dicomslide.utils import get_image_size as get_image_size
from dicomslide.utils import is_volume_image as is_volume_image

if TYPE_CHECKING:
    import highdicom as hd
    from dicomweb_client.protocol import DICOMClient
    from pydicom.sr.coding import Code

logger = logging.getLogger(__name__)


class Slide:
    """A digital slide.

    A collection of DICOM image instances that share the same Frame of
    Reference UID and Container Identifier, i.e., that have been acquired as
    part of one image acquisition for the same physical glass slide
    (container) and can be visualized and analyzed in the same frame of
    reference (coordinate system).

    A slide consists of one or more image pyramids - one for each unique pair
    of channel and focal plane. Pyramids have the same levels across channels
    and focal planes (derived images may lack some levels); the tiling of the
    total pixel matrices may differ between levels, channels and focal planes.

    Parameters
    ----------
    client: Union[dicomweb_client.api.DICOMClient, str, os.PathLike]
        DICOMweb client, or a local folder path or DICOMweb URL to open one
    image_metadata: Sequence[pydicom.Dataset]
        Metadata of DICOM VL Whole Slide Microscopy Image instances or of
        derived DICOM Segmentation or Parametric Map instances that belong to
        the slide
    max_frame_cache_size: int, optional
        Number of frames per image the frame cache holds at least (the cache
        is bounded in bytes, see :class:`dicomslide.cache.FrameCache`)
    pyramid_tolerance: float, optional
        Maximally tolerated distances between the centers of images at
        different pyramid levels in the slide coordinate system in millimeter
        unit
    correct_color: bool, optional
        Whether pixels are colour corrected with the images' ICC profiles
    cache: Union[dicomslide.cache.FrameCache, None], optional
        Cache for decoded frames; by default the cache shared by all images

    """

    def __init__(
        self,
        client: DICOMClient,
        image_metadata: Sequence[Dataset],
        max_frame_cache_size: int = 6,
        pyramid_tolerance: float = 0.1,
        *,
        correct_color: bool = True,
        cache: FrameCache | None = None,
    ) -> None:
        if isinstance(image_metadata, Dataset) or not isinstance(
            image_metadata, Sequence
        ):
            raise TypeError("image_metadata must be a sequence of datasets")
        if len(image_metadata) == 0:
            raise ValueError("image_metadata must not be empty")
        self._client = open_client(client)
        check_slide_images(image_metadata)
        repair_pixel_spacings(image_metadata)
        self._container_id = next(
            iter(distinct_values(image_metadata, "ContainerIdentifier")), ""
        )
        self._correct_color = correct_color
        self._image_options = (max_frame_cache_size, correct_color, cache)
        # LABEL and OVERVIEW images become TiledImages on first use: reading
        # the slide's pixels doesn't need them.
        self._associated_parts: dict[str, list[list[Dataset]]] = {
            "LABEL": [],
            "OVERVIEW": [],
        }
        self._associated_images: dict[str, tuple[TiledImage, ...]] = {}
        images = []
        for parts in group_concatenations(image_metadata):
            if is_label_image(parts[0]):
                self._associated_parts["LABEL"].append(parts)
            elif is_overview_image(parts[0]):
                self._associated_parts["OVERVIEW"].append(parts)
            else:
                images.append(self._make_image(parts))
        if not images:
            raise MetadataError(
                "a slide needs at least one VOLUME or THUMBNAIL image",
                str(element_value(image_metadata[0], "SOPInstanceUID")),
            )
        arrangement = arrange_images(images)
        self._channels = arrangement.channels
        self._focal_plane_offsets = arrangement.focal_plane_offsets
        self._volume_images = arrangement.volume_images
        self._secondary = arrangement.other_pyramids
        self._thumbnail_images = arrangement.thumbnail_images
        self._pyramids = self._build_pyramids(pyramid_tolerance)
        self._pyramid = self._pyramids[(0, 0)]
        self._other_pyramids = tuple(
            Pyramid([i.metadata for i in images[(0, 0)]], pyramid_tolerance)
            for images in self._secondary
            if (0, 0) in images
        )
        base = self._volume_images[(0, 0)][0].metadata
        self._frame_of_reference_uid = str(
            element_value(base, "FrameOfReferenceUID") or ""
        )
        uids = sorted(str(m.SOPInstanceUID) for m in image_metadata)
        self._sop_instance_uids = frozenset(uids)
        self._uid_hash = hashlib.sha256("\\".join(uids).encode()).hexdigest()
        #: counts about the slide as a whole, which :attr:`metrics` includes
        self.counters = Counters()

    def _build_pyramids(self, tolerance: float) -> dict[tuple[int, int], Pyramid]:
        """The pyramid of every channel and focal plane, on the levels of
        channel 0 and focal plane 0."""
        reference = [image.metadata for image in self._volume_images[(0, 0)]]
        pyramids: dict[tuple[int, int], Pyramid] = {}
        for key, volume_images in self._volume_images.items():
            try:
                pyramids[key] = Pyramid(
                    [image.metadata for image in volume_images],
                    tolerance,
                    ref_metadata=reference,
                )
            except ValueError as error:
                raise MetadataError(
                    f"images of channel {key[0]} and focal plane {key[1]} do not "
                    f"form a pyramid: {error}",
                    str(volume_images[0].metadata.SOPInstanceUID),
                ) from error
        return pyramids

    def _make_image(self, parts: Sequence[Dataset]) -> TiledImage:
        max_frame_cache_size, correct_color, cache = self._image_options
        return TiledImage(
            self._client,
            parts,
            max_frame_cache_size,
            correct_color=correct_color,
            cache=cache,
        )

    def _associated(self, flavor: str) -> tuple[TiledImage, ...]:
        """The LABEL or OVERVIEW images, made on first use."""
        images = self._associated_images.get(flavor)
        if images is None:
            made = tuple(
                self._make_image(parts) for parts in self._associated_parts[flavor]
            )
            # of two threads that made them at once, both get the first's
            images = self._associated_images.setdefault(flavor, made)
        return images

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_client"] = portable(self._client)
        return state

    def __repr__(self) -> str:
        return (
            f"<Slide {self._container_id!r} levels={self.num_levels} "
            f"channels={self.num_channels} focal_planes={self.num_focal_planes}>"
        )

    def __hash__(self) -> int:
        return hash(self._uid_hash)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Slide):
            return NotImplemented
        return self._uid_hash == other._uid_hash

    @property
    def metrics(self) -> dict[str, int]:
        """Dict[str, int]: what reading this slide cost so far, summed over
        its images (see :attr:`dicomslide.TiledImage.metrics`), and the
        slide's own ``counters`` (:class:`dicomslide.counters.Counters`:
        :mod:`dicomslide.serve` counts the Deep Zoom tiles it sent by path,
        ``tiles_native`` and ``tiles_rendered``)"""
        images = {
            id(image): image
            for group in (
                *self._volume_images.values(),
                *self._associated_images.values(),
                *(images for other in self._secondary for images in other.values()),
            )
            for image in group
        }
        return self.counters.total(image.metrics for image in images.values())

    @property
    def sop_instance_uids(self) -> frozenset[str]:
        """FrozenSet[str]: SOP Instance UIDs of every instance of the slide
        (all its images, associated and derived ones included)"""
        return self._sop_instance_uids

    @property
    def client(self) -> DICOMClient:
        """dicomweb_client.api.DICOMClient: client that serves the slide"""
        return self._client

    @property
    def container_id(self) -> str:
        """str: Container Identifier of the slide"""
        return self._container_id

    @property
    def frame_of_reference_uid(self) -> str:
        """str: Unique identifier of the frame of reference"""
        return self._frame_of_reference_uid

    @property
    def pyramid(self) -> Pyramid:
        """dicomslide.Pyramid: pyramid of channel 0 and focal plane 0"""
        return self._pyramid

    @property
    def pyramids(self) -> tuple[Pyramid, ...]:
        """Tuple[dicomslide.Pyramid, ...]: every pyramid that images the
        slide (distinct Pyramid UIDs), the one that gives the levels first"""
        return (self._pyramid, *self._other_pyramids)

    @property
    def num_channels(self) -> int:
        """int: Number of channels"""
        return len(self._channels)

    @property
    def num_focal_planes(self) -> int:
        """int: Number of focal planes"""
        return len(self._focal_plane_offsets)

    @property
    def num_levels(self) -> int:
        """int: Number of pyramid levels

        Note
        ----
        Levels are sorted by size in descending order from the base level
        (highest image resolution, smallest pixel spacing) to the top level
        (lowest image resolution, largest pixel spacing).

        """
        return len(self._pyramid)

    @property
    def label_images(self) -> tuple[TiledImage, ...]:
        """Tuple[dicomslide.TiledImage, ...]: LABEL images of the slide"""
        return self._associated("LABEL")

    @property
    def thumbnail_images(self) -> tuple[TiledImage, ...]:
        """Tuple[dicomslide.TiledImage, ...]: THUMBNAIL images of the slide
        (also those that are not pyramid levels because a VOLUME image has
        the same size)"""
        return self._thumbnail_images

    @property
    def overview_images(self) -> tuple[TiledImage, ...]:
        """Tuple[dicomslide.TiledImage, ...]: OVERVIEW images of the slide"""
        return self._associated("OVERVIEW")

    @property
    def total_pixel_matrix_dimensions(self) -> tuple[tuple[int, int], ...]:
        """Tuple[Tuple[int, int], ...]: Number of rows and columns of the total
        pixel matrix at each pyramid level"""
        return tuple(level.total_pixel_matrix_dimensions for level in self._pyramid)

    @property
    def pixel_spacings(self) -> tuple[tuple[float, float], ...]:
        """Tuple[Tuple[float, float], ...]: Distance between neighboring pixels
        along the row (left to right) and column (top to bottom) directions"""
        return tuple(level.pixel_spacing for level in self._pyramid)

    @property
    def microns_per_pixel(self) -> tuple[tuple[float, float], ...]:
        """Tuple[Tuple[float, float], ...]: :attr:`pixel_spacings` in
        micrometers per pixel: along the rows (x, left to right) and along the
        columns (y, top to bottom) of each level, as OpenSlide's ``mpp-x`` and
        ``mpp-y`` of level 0"""
        return tuple((x * 1000.0, y * 1000.0) for x, y in self.pixel_spacings)

    @property
    def objective_power(self) -> float | None:
        """Union[float, None]: Objective Lens Power of the optical path of
        channel 0, when the metadata give it"""
        metadata = self._volume_images[(0, 0)][0].metadata
        identifier = self._channels[0].identifier
        for item in element_value(metadata, "OpticalPathSequence") or []:
            if str(element_value(item, "OpticalPathIdentifier")) == identifier:
                power = element_value(item, "ObjectiveLensPower")
                return float(power) if power not in (None, "") else None
        return None

    @property
    def downsampling_factors(self) -> tuple[float, ...]:
        """Tuple[float, ...]: Downsampling factors of images at each pyramid
        level relative to the base level (mean of rows and columns)"""
        return tuple(
            (float(rows) + float(columns)) / 2
            for rows, columns in (level.downsampling_factors for level in self._pyramid)
        )

    @property
    def size(self) -> tuple[int, int]:
        """Tuple[int, int]: Maximum size of the total pixel matrices along the
        rows and columns axes of the total pixel matrix"""
        return self.total_pixel_matrix_dimensions[0]

    @property
    def physical_offset(self) -> tuple[float, float]:
        """Tuple[float, float]: Minimum offset of the total pixel matrices
        from the origin of the frame of reference along the X and Y axes of
        the slide coordinate system in millimeter"""
        offsets = np.array(
            [
                image.physical_offset
                for images in self._volume_images.values()
                for image in images
            ]
        )
        low = offsets.min(axis=0)
        return (float(low[0]), float(low[1]))

    @property
    def physical_size(self) -> tuple[float, float]:
        """Tuple[float, float]: Maximum size of the total pixel matrices along
        the X and Y axes of the slide coordinate system in millimeter"""
        sizes = np.array(
            [
                image.physical_size
                for images in self._volume_images.values()
                for image in images
            ]
        )
        high = sizes.max(axis=0)
        return (float(high[0]), float(high[1]))

    def get_volume_images(
        self,
        channel_index: int = 0,
        focal_plane_index: int = 0,
        *,
        pyramid_index: int = 0,
    ) -> tuple[TiledImage, ...]:
        """Get VOLUME or THUMBNAIL images for a channel and focal plane.

        Parameters
        ----------
        channel_index: int, optional
            Zero-based channel index
        focal_plane_index: int, optional
            Zero-based focal plane index
        pyramid_index: int, optional
            Zero-based index into :attr:`pyramids`

        Returns
        -------
        Tuple[dicomslide.TiledImage, ...]
            Images sorted by size in descending order

        Raises
        ------
        ValueError
            When there are no images for the channel and focal plane

        """
        if not 0 <= pyramid_index < len(self.pyramids):
            raise ValueError(f"no pyramid with index {pyramid_index}")
        volume_images = (
            self._volume_images
            if pyramid_index == 0
            else self._secondary[pyramid_index - 1]
        )
        try:
            return volume_images[(int(channel_index), int(focal_plane_index))]
        except KeyError:
            raise ValueError(
                f"no images for channel {channel_index} and focal plane "
                f"{focal_plane_index}"
            ) from None

    def _level(self, level: int) -> PyramidLevel:
        try:
            return self._pyramid[level]
        except IndexError:
            raise IndexError(
                f"level {level} is out of range for {self.num_levels} levels"
            ) from None

    def get_image(
        self, level: int, channel_index: int = 0, focal_plane_index: int = 0
    ) -> TiledImage:
        """Get the image of a pyramid level.

        Parameters
        ----------
        level: int
            Zero-based index into pyramid levels (negative counts from the top)
        channel_index: int, optional
            Zero-based channel index
        focal_plane_index: int, optional
            Zero-based focal plane index

        Returns
        -------
        dicomslide.TiledImage
            Image

        Raises
        ------
        ValueError
            When the channel has no image at that level

        """
        dimensions = self._level(level).total_pixel_matrix_dimensions
        for image in self.get_volume_images(channel_index, focal_plane_index):
            if image.size == dimensions:
                return image
        raise ValueError(
            f"channel {channel_index} has no image at level {level} (size {dimensions})"
        )

    def get_image_region(
        self,
        offset: tuple[int, int],
        level: int,
        size: tuple[int, int],
        channel_index: int = 0,
        focal_plane_index: int = 0,
    ) -> np.ndarray:
        """Get image region.

        Parameters
        ----------
        offset: Tuple[int, int]
            Zero-based (row, column) indices that specify the offset of the
            image region in the total pixel matrix of the image at the highest
            resolution level (level 0)
        level: int
            Zero-based index into pyramid levels
        size: Tuple[int, int]
            Rows and columns of the requested image region at `level`
        channel_index: int, optional
            Zero-based channel index
        focal_plane_index: int, optional
            Zero-based focal plane index

        Returns
        -------
        numpy.ndarray
            Three-dimensional pixel array of shape (Rows, Columns, Samples per
            Pixel) for the requested image region

        """
        factors = self._level(level).downsampling_factors
        row = int(np.floor(int(offset[0]) / factors[0]))
        column = int(np.floor(int(offset[1]) / factors[1]))
        matrix = self._matrix(level, channel_index, focal_plane_index)
        return cast("np.ndarray", matrix.read_region((row, column), size))

    def _matrix(self, level: int, channel_index: int, focal_plane_index: int) -> Any:
        image, channel, plane = self._located(level, channel_index, focal_plane_index)
        return image.get_total_pixel_matrix(channel, plane)

    def _located(
        self, level: int, channel_index: int, focal_plane_index: int
    ) -> tuple[TiledImage, int, int]:
        """The image of a level that holds a channel and focal plane of the
        slide, and their indices in that image."""
        image = self.get_image(level, channel_index, focal_plane_index)
        identifier = self._channels[channel_index].identifier
        offset = self._focal_plane_offsets[focal_plane_index]
        planes = [
            image.get_focal_plane_offset(i) for i in range(image.num_focal_planes)
        ]
        plane = planes.index(offset) if offset in planes else 0
        return image, image.get_channel_index(identifier), plane

    def get_thumbnail(
        self,
        size: int | tuple[int, int] = 512,
        channel_index: int = 0,
        focal_plane_index: int = 0,
    ) -> PIL.Image.Image:
        """Get a thumbnail of the slide.

        The thumbnail is made from the smallest level at least as large as
        the thumbnail, resampled with a Lanczos filter, with the colours of
        the slide's ``correct_color`` setting.

        Parameters
        ----------
        size: Union[int, Tuple[int, int]], optional
            Largest size: a number bounds both sides; a pair is (rows,
            columns), the order of the dicomslide API. The thumbnail keeps
            the slide's aspect ratio and is never larger than level 0.
        channel_index: int, optional
            Zero-based channel index
        focal_plane_index: int, optional
            Zero-based focal plane index

        Returns
        -------
        PIL.Image.Image
            RGB (or greyscale) picture

        Raises
        ------
        ValueError
            When the size is not positive, or the channel's samples are not
            8 bit (read them with :meth:`get_image_region`)

        """
        max_rows, max_columns = (size, size) if isinstance(size, int) else size
        if min(max_rows, max_columns) < 1:
            raise ValueError(f"thumbnail size must be positive, got {size}")
        rows, columns = self.size
        scale = min(max_rows / rows, max_columns / columns, 1.0)
        target = (max(1, int(rows * scale)), max(1, int(columns * scale)))
        level = self._level_for(target, channel_index, focal_plane_index)
        dimensions = self.total_pixel_matrix_dimensions[level]
        pixels = self.get_image_region(
            (0, 0), level, dimensions, channel_index, focal_plane_index
        )
        if pixels.dtype != np.uint8:
            raise ValueError(
                f"channel {channel_index} has {pixels.dtype} samples; thumbnails "
                "are made of 8-bit images"
            )
        array = pixels[:, :, 0] if pixels.shape[2] == 1 else pixels
        picture = PIL.Image.fromarray(array)
        # Pillow's own rounding of the size, as OpenSlide's thumbnails have
        picture.thumbnail(
            (max_columns, max_rows), PIL.Image.Resampling.LANCZOS, reducing_gap=3.0
        )
        return picture

    def _level_for(
        self, size: tuple[int, int], channel_index: int, focal_plane_index: int
    ) -> int:
        """The smallest level of a channel at least as large as `size`
        (else its largest level)."""
        sizes = {
            i.size for i in self.get_volume_images(channel_index, focal_plane_index)
        }
        dimensions = self.total_pixel_matrix_dimensions
        present = [level for level, dims in enumerate(dimensions) if dims in sizes]
        large = [v for v in present if min(np.subtract(dimensions[v], size)) >= 0]
        return max(large) if large else min(present)

    def to_dask(
        self, level: int = 0, channel_index: int = 0, focal_plane_index: int = 0
    ) -> Any:
        """Get the total pixel matrix of a level as a lazy Dask array.

        Parameters
        ----------
        level: int, optional
            Zero-based index into pyramid levels
        channel_index: int, optional
            Zero-based channel index
        focal_plane_index: int, optional
            Zero-based focal plane index

        Returns
        -------
        dask.array.Array
            Array of shape (rows, columns, samples) chunked by tiles (see
            :meth:`dicomslide.TotalPixelMatrix.to_dask`)

        """
        return self._matrix(level, channel_index, focal_plane_index).to_dask()

    def get_slide_region(
        self,
        offset: tuple[float, float],
        level: int,
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
        level: int
            Zero-based index into pyramid levels
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

        """
        image, channel, plane = self._located(level, channel_index, focal_plane_index)
        return image.get_slide_region(offset, size, channel, plane)

    def get_slide_region_for_annotation(
        self,
        annotation: hd.sr.Scoord3DContentItem,
        level: int,
        channel_index: int = 0,
        padding: float | tuple[float, float] | tuple[float, float, float, float] = 0.0,
        focal_plane_index: int = 0,
    ) -> np.ndarray:
        """Get slide region defined by a graphic annotation.

        Parameters
        ----------
        annotation: highdicom.sr.Scoord3DContentItem
            Graphic annotation (POINT, MULTIPOINT, POLYLINE, POLYGON, ELLIPSE
            or ELLIPSOID) that defines the region of interest in the slide
            coordinate system
        level: int
            Zero-based index into pyramid levels
        channel_index: int, optional
            Zero-based channel index
        padding: Union[float, Tuple[float, float], Tuple[float, float, float, float]], optional
            Padding in pixels of `level` on each border of the region that
            encloses the annotation. A single value pads all four borders;
            two values pad the left/right (along the X axis) and top/bottom
            (along the Y axis) borders; four values pad the left (- X axis),
            top (+ Y axis), right (+ X axis), and bottom (- Y axis) borders.
        focal_plane_index: int, optional
            Zero-based focal plane index

        Returns
        -------
        numpy.ndarray
            Three-dimensional pixel array of shape (Rows, Columns, Samples per
            Pixel): what :meth:`get_slide_region` returns for the bounding box
            of the annotation (in the slide plane) grown by the padding, with
            the same shape and pixels

        Raises
        ------
        ValueError
            When the annotation lies in another frame of reference, or its
            graphic type is unknown

        """  # noqa: E501
        reference = getattr(annotation, "frame_of_reference_uid", None)
        if (
            reference
            and self._frame_of_reference_uid
            and reference != self._frame_of_reference_uid
        ):
            raise ValueError(
                f"the annotation is in frame of reference {reference}, the slide "
                f"in {self._frame_of_reference_uid}"
            )
        low, high = annotation_bounds(annotation)
        left, top, right, bottom = normalize_padding(padding)
        image = self.get_image(level, channel_index, focal_plane_index)
        axes = image.get_slide_axes()
        # the bounding box, grown by the padding in pixels of the level
        x0 = low[0] - left * axes.spacing_x
        y0 = low[1] - bottom * axes.spacing_y
        x1 = high[0] + right * axes.spacing_x
        y1 = high[1] + top * axes.spacing_y
        return self.get_slide_region(
            (x0, y0), level, (x1 - x0, y1 - y0), channel_index, focal_plane_index
        )

    def get_pixel_indices(
        self,
        offset: tuple[float, float],
        level: int,
        channel_index: int = 0,
        focal_plane_index: int = 0,
    ) -> tuple[int, int]:
        """Get indices into total pixel matrix for a given slide position.

        Parameters
        ----------
        offset: Tuple[float, float]
            Zero-based (x, y) offset in the slide coordinate system in millimeter
        level: int
            Zero-based index into pyramid levels
        channel_index: int, optional
            Zero-based channel index
        focal_plane_index: int, optional
            Zero-based focal plane index

        Returns
        -------
        Tuple[int, int]
            Zero-based (row, column) position in the total pixel matrix

        """
        image = self.get_image(level, channel_index, focal_plane_index)
        return image.get_pixel_indices(offset)

    def get_slide_offset(
        self,
        pixel_indices: tuple[int, int],
        level: int,
        channel_index: int = 0,
        focal_plane_index: int = 0,
    ) -> tuple[float, float]:
        """Get slide coordinates for a given total pixel matrix position.

        Parameters
        ----------
        pixel_indices: Tuple[int, int]
            Zero-based (row, column) offset in the total pixel matrix
        level: int
            Zero-based index into pyramid levels
        channel_index: int, optional
            Zero-based channel index
        focal_plane_index: int, optional
            Zero-based focal plane index

        Returns
        -------
        Tuple[float, float]
            Zero-based (x, y) position on the slide in the slide coordinate
            system in millimeter

        """
        image = self.get_image(level, channel_index, focal_plane_index)
        return image.get_slide_offset(pixel_indices)

    def map_pixel_indices_to_slide_coordinates(
        self,
        pixel_indices: np.ndarray,
        level: int,
        channel_index: int = 0,
        focal_plane_index: int = 0,
    ) -> np.ndarray:
        """Map pixel indices to slide coordinates.

        Parameters
        ----------
        pixel_indices: numpy.ndarray
            Zero-based (row, column) indices into the total pixel matrix of
            the image, shape (n, 2)
        level: int
            Zero-based index into pyramid levels
        channel_index: int, optional
            Zero-based channel index
        focal_plane_index: int, optional
            Zero-based focal plane index

        Returns
        -------
        numpy.ndarray
            Zero-based (x, y, z) coordinates in the slide coordinate system in
            millimeter, shape (n, 3)

        """
        image = self.get_image(level, channel_index, focal_plane_index)
        coordinates = image.map_pixel_indices_to_slide_coordinates(pixel_indices)
        coordinates[:, 2] = self.get_focal_plane_offset(focal_plane_index) / 1000.0
        return coordinates

    def map_slide_coordinates_to_pixel_indices(
        self,
        slide_coordinates: np.ndarray,
        level: int,
        channel_index: int = 0,
        focal_plane_index: int = 0,
    ) -> np.ndarray:
        """Map slide coordinates to pixel indices.

        Parameters
        ----------
        slide_coordinates: numpy.ndarray
            Zero-based (x, y[, z]) coordinates in the slide coordinate system
            in millimeter, shape (n, 2) or (n, 3)
        level: int
            Zero-based index into pyramid levels
        channel_index: int, optional
            Zero-based channel index
        focal_plane_index: int, optional
            Zero-based focal plane index

        Returns
        -------
        numpy.ndarray
            Zero-based (row, column) indices into the total pixel matrix of
            the image, shape (n, 2)

        """
        image = self.get_image(level, channel_index, focal_plane_index)
        return image.map_slide_coordinates_to_pixel_indices(slide_coordinates)

    def get_channel_identifier(self, channel_index: int) -> str:
        """Get identifier of a channel.

        Parameters
        ----------
        channel_index: int
            Zero-based channel index

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
        return self._channels[channel_index].identifier

    def get_channel_type(self, channel_index: int) -> ChannelTypes:
        """Get type of a channel.

        Parameters
        ----------
        channel_index: int
            Zero-based channel index

        Returns
        -------
        dicomslide.ChannelTypes
            Channel type

        Raises
        ------
        ValueError
            When no channel is found for `channel_index`

        """
        if not 0 <= channel_index < self.num_channels:
            raise ValueError(f"no channel with index {channel_index}")
        return self._channels[channel_index].type

    def get_channel_index(
        self, channel_identifier: str, channel_type: str | ChannelTypes
    ) -> int:
        """Get index of a channel.

        Parameters
        ----------
        channel_identifier: str
            Channel identifier
        channel_type: Union[str, dicomslide.ChannelTypes]
            Channel type

        Returns
        -------
        int
            Zero-based channel index

        Raises
        ------
        ValueError
            When no channel is found for `channel_identifier` and `channel_type`

        """
        channel_type = ChannelTypes(channel_type)
        for index, key in enumerate(self._channels):
            if key.type == channel_type and key.identifier == str(channel_identifier):
                return index
        raise ValueError(
            f"no {channel_type.value} channel with identifier {channel_identifier!r}"
        )

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
            Zero-based focal plane index

        Raises
        ------
        ValueError
            When no focal plane is found for `focal_plane_offset`

        """
        for index, offset in enumerate(self._focal_plane_offsets):
            if abs(offset - float(focal_plane_offset)) < 1e-6:
                return index
        raise ValueError(f"no focal plane with offset {focal_plane_offset} µm")

    def get_focal_plane_offset(self, focal_plane_index: int) -> float:
        """Get z offset of focal plane in slide coordinate system.

        Parameters
        ----------
        focal_plane_index: int
            Zero-based focal plane index

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
        return float(self._focal_plane_offsets[focal_plane_index])

    def find_optical_paths(
        self,
        identifier: str | None = None,
        description: str | None = None,
        illumination_wavelength: float | None = None,
        specimen_stain: hd.sr.CodedConcept | Code | None = None,
    ) -> tuple[int, ...]:
        """Find optical paths.

        Parameters
        ----------
        identifier: Union[str, None], optional
            Optical path identifier
        description: Union[str, None], optional
            Optical path description
        illumination_wavelength: Union[float, None], optional
            Optical path illumination wavelength in nanometers
        specimen_stain: Union[highdicom.sr.CodedConcept, pydicom.sr.coding.Code, None], optional
            Substance used for specimen staining

        Returns
        -------
        Tuple[int, ...]
            Zero-based indices of the matching channels

        """  # noqa: E501
        matches = []
        for index, (channel_type, _, channel_id) in enumerate(self._channels):
            if channel_type != ChannelTypes.OPTICAL_PATH:
                continue
            metadata = self._volume_images[(index, 0)][0].metadata
            item = channel_item(metadata, channel_type, channel_id) or Dataset()
            specimens = metadata.get("SpecimenDescriptionSequence") or [Dataset()]
            if (
                (identifier is None or channel_id == identifier)
                and does_optical_path_item_match(
                    item, None, description, illumination_wavelength
                )
                and any(
                    does_specimen_description_item_match(specimen, specimen_stain)
                    for specimen in specimens
                )
            ):
                matches.append(index)
        return tuple(matches)

    def find_segments(
        self,
        number: int | None = None,
        label: str | None = None,
        property_category: hd.sr.CodedConcept | Code | None = None,
        property_type: hd.sr.CodedConcept | Code | None = None,
    ) -> tuple[int, ...]:
        """Find segments.

        Parameters
        ----------
        number: Union[int, None], optional
            Segment number
        label: Union[str, None], optional
            Segment label (compared ignoring case and white space)
        property_category: Union[highdicom.sr.CodedConcept, pydicom.sr.coding.Code, None], optional
            Category of segmented property
        property_type: Union[highdicom.sr.CodedConcept, pydicom.sr.coding.Code, None], optional
            Type of segmented property

        Returns
        -------
        Tuple[int, ...]
            Zero-based indices of the matching channels

        """  # noqa: E501
        matches = []
        for index, (channel_type, _, channel_id) in enumerate(self._channels):
            if channel_type != ChannelTypes.SEGMENT:
                continue
            metadata = self._volume_images[(index, 0)][0].metadata
            item = channel_item(metadata, channel_type, channel_id)
            if item is not None and does_segment_item_match(
                item, number, label, property_category, property_type
            ):
                matches.append(index)
        return tuple(matches)


def find_slides(
    source: Any = None,
    study_instance_uid: str | None = None,
    patient_id: str | None = None,
    study_id: str | None = None,
    container_id: str | None = None,
    max_frame_cache_size: int = 6,
    pyramid_tolerance: float = 0.1,
    fail_on_error: bool = True,
    include_derived: bool = True,
    specimen_stains: Sequence[Code | hd.sr.CodedConcept] | None = None,
    optical_path_ids: Sequence[str] | None = None,
    *,
    correct_color: bool = True,
    cache: FrameCache | None = None,
    progress: Callable[[int, int], None] | None = None,
    client: Any = None,
    storage_options: Mapping[str, Any] | None = None,
    filesystem: Any = None,
) -> list[Slide]:
    """Find slides.

    Parameters
    ----------
    source: Union[dicomweb_client.api.DICOMClient, str, os.PathLike, Sequence[str]]
        Where to look: a local folder path (opens the embedded client); a
        path to one file (finds the slide that file belongs to among the
        files of its folder); an ``http(s)://`` DICOMweb base URL; a URL of
        object storage read through fsspec (``s3://bucket/prefix/``,
        ``gs://...``: a prefix is a folder, one object's URL a file; needs
        the ``dicomslide[cloud]`` extra); a list of URLs of files (e.g.
        ``https://`` URLs of a web server that honours ``Range``); or a
        ``DICOMClient`` (e.g. a ``dicomweb_client.DICOMwebClient``)
    study_instance_uid: Union[str, None], optional
        DICOM Study Instance UID
    patient_id: Union[str, None], optional
        Patient identifier
    study_id: Union[str, None], optional
        Study identifier
    container_id: Union[str, None], optional
        Specimen container (slide) identifier
    max_frame_cache_size: int, optional
        Number of frames per image the frame cache holds at least
    pyramid_tolerance: float, optional
        Maximally tolerated distances between the centers of images at
        different pyramid levels in the slide coordinate system in millimeter
        unit
    fail_on_error: bool, optional
        Whether the function should raise an exception in case an error
        occurs. If False, slides will be skipped (and the reason logged).
        Derived images that cannot be attached to a slide are always skipped
        with a warning and never take a slide down.
    include_derived: bool, optional
        Whether derived images (DICOM Segmentation or DICOM Parametric Map
        instances) should be considered and included into slides
    specimen_stains: Union[Sequence[Union[pydicom.sr.coding.Code, highdicom.sr.CodedConcept]], None], optional
        Specimen stains for which corresponding slide microscopy images should
        be included in slides. Any image that does not contain one of the
        stains in the specimen description will be omitted.
    optical_path_ids: Union[Sequence[str], None], optional
        Identifiers of optical paths for which corresponding slide microscopy
        images should be included in slides. Any image that does not contain
        any of the specified optical paths will be omitted.
    correct_color: bool, optional
        Whether pixels of the slides' images are colour corrected with their
        ICC profiles
    cache: Union[dicomslide.cache.FrameCache, None], optional
        Cache for decoded frames of every slide found; by default the cache
        shared by all images
    progress: Union[Callable[[int, int], None], None], optional
        Called with (series done, series in all) as discovery proceeds
    client: Union[dicomweb_client.api.DICOMClient, str, os.PathLike, None], optional
        The name dicomslide 0.7 gave `source`, for callers that pass it by
        keyword
    storage_options: Union[Mapping[str, Any], None], optional
        Options of the fsspec filesystem of an object storage URL
        (credentials, ``endpoint_url``, ``anon``, ...), as fsspec, dask and
        pandas take them; never shown in reprs, logs or messages
    filesystem: Union[fsspec.AbstractFileSystem, None], optional
        An fsspec filesystem to read from instead of a URL, as pyarrow and
        pandas take one: `source` is then a path in it (``bucket/prefix/``
        of an ``s3fs.S3FileSystem``, a folder of a ``DirFileSystem``, ...) or
        a list of paths of files, read like object storage. Slides opened so
        pickle with the filesystem, which fsspec makes anew in another process
        from the arguments it was created with (a filesystem whose objects
        live in one process's memory, such as ``memory://``, serves forked
        workers only)

    Returns
    -------
    List[dicomslide.Slide]
        Digital slides, sorted by container identifier

    """  # noqa: E501
    if client is not None:
        if source is not None:
            raise TypeError("find_slides() takes a source or a client, not both")
        source = client
    if source is None:
        raise TypeError("find_slides() needs a source: a path, a URL or a client")
    client, source_file = open_source(source, storage_options, filesystem)
    image_groups = find_slide_images(
        client,
        study_instance_uid,
        patient_id,
        study_id,
        container_id,
        fail_on_error,
        include_derived,
        specimen_stains,
        optical_path_ids,
        progress=progress,
    )
    logger.debug(
        "%s: %d images in %d groups",
        _describe_source(source),
        sum(len(images) for images in image_groups),
        len(image_groups),
    )

    def make(images: list[Dataset]) -> Slide:
        return Slide(
            client,
            images,
            max_frame_cache_size=max_frame_cache_size,
            pyramid_tolerance=pyramid_tolerance,
            correct_color=correct_color,
            cache=cache,
        )

    slides = []
    for images in image_groups:
        slide = make_leaving_out(images, make, fail_on_error)
        if slide is not None:
            slides.append(slide)
    if source_file is not None:
        slides = [s for s in slides if source_file in s.sop_instance_uids]
    return slides


def open_slide(source: Any, **filters: Any) -> Slide:
    """Open the one slide of a source.

    Parameters
    ----------
    source: Union[dicomweb_client.api.DICOMClient, str, os.PathLike]
        A folder, a file of the slide, a DICOMweb URL or a client (see
        :func:`find_slides`)
    **filters: Any
        Further arguments of :func:`find_slides`, such as ``container_id``,
        ``study_instance_uid`` or ``correct_color``

    Returns
    -------
    dicomslide.Slide
        The slide

    Raises
    ------
    dicomslide.errors.SlideNotFoundError
        When the source holds no slide (that matches the filters)
    dicomslide.errors.MultipleSlidesError
        When it holds several; the message lists their container identifiers

    """
    slides = find_slides(source, **filters)
    where = _describe_source(source)
    if not slides:
        raise SlideNotFoundError(f"no slide found in {where}")
    if len(slides) > 1:
        names = [s.container_id or "(no container)" for s in slides]
        raise MultipleSlidesError(
            f"{len(slides)} slides found in {where}: {', '.join(names)}; choose one "
            "with container_id= (or study_instance_uid=), or open one of its files",
            names,
        )
    return slides[0]


def _describe_source(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return without_credentials(os.fsdecode(source))
    return f"{len(source)} URLs" if isinstance(source, list | tuple) else repr(source)
