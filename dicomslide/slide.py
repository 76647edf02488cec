"""Slides: the images of one glass slide, grouped into pyramids."""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from pydicom.dataset import Dataset

from dicomslide.cache import FrameCache
from dicomslide.client import open_client, portable
from dicomslide.discovery import describe_group, find_slide_images, open_source
from dicomslide.elements import element_value
from dicomslide.enum import ChannelTypes
from dicomslide.errors import DicomSlideError, MetadataError
from dicomslide.image import TiledImage
from dicomslide.matrix import normalize_padding
from dicomslide.pyramid import Pyramid, PyramidLevel, derive_pixel_spacings
from dicomslide.utils import (
    DERIVED_PIXEL_SPACING,
    VL_WSI_SOP_CLASS_UID,
    does_optical_path_item_match,
    does_segment_item_match,
    does_specimen_description_item_match,
    get_image_pixel_spacing,
    get_image_size,
    image_flavor,
    is_label_image,
    is_overview_image,
    is_tiled_image,
    is_volume_image,
)

if TYPE_CHECKING:
    import highdicom as hd
    from pydicom.sr.coding import Code

logger = logging.getLogger(__name__)

_OPTICAL_PATH = ChannelTypes.OPTICAL_PATH
_CHANNEL_TYPE_ORDER = (
    ChannelTypes.OPTICAL_PATH,
    ChannelTypes.SEGMENT,
    ChannelTypes.PARAMETER,
)


def _annotation_bounds(
    annotation: hd.sr.Scoord3DContentItem,
) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest (x, y) of the area an annotation covers, in mm."""
    import highdicom as hd

    points = np.asarray(annotation.value, dtype=np.float64).reshape(-1, 3)[:, :2]
    graphic_type = hd.sr.GraphicTypeValues3D(annotation.graphic_type)
    if graphic_type in (
        hd.sr.GraphicTypeValues3D.ELLIPSE,
        hd.sr.GraphicTypeValues3D.ELLIPSOID,
    ):
        # endpoints of the major axis, then of the minor axis (and, for an
        # ellipsoid, of a third axis that is ignored in the slide plane)
        center = (points[0] + points[1]) / 2.0
        major = (points[1] - points[0]) / 2.0
        minor = (points[3] - points[2]) / 2.0
        half = np.sqrt(major**2 + minor**2)
        return center - half, center + half
    return points.min(axis=0), points.max(axis=0)


def _one_per_size(images: Sequence[TiledImage]) -> tuple[TiledImage, ...]:
    """Images by size, largest first; of images of one size, a VOLUME image
    wins over a THUMBNAIL (a thumbnail as large as a level adds nothing)."""
    by_size: dict[tuple[int, int], TiledImage] = {}
    for image in dict.fromkeys(images):
        kept = by_size.get(image.size)
        if kept is None or _flavor(kept) == "THUMBNAIL" != _flavor(image):
            by_size[image.size] = image
    return tuple(
        sorted(by_size.values(), key=lambda i: get_image_size(i.metadata), reverse=True)
    )


def _values(image_metadata: Sequence[Dataset], keyword: str) -> list[str]:
    """The distinct non-empty values of an attribute, in order of appearance."""
    values = (element_value(m, keyword) for m in image_metadata)
    return list(dict.fromkeys(str(v) for v in values if v))


def _derive_pixel_spacings(image_metadata: Sequence[Dataset]) -> None:
    """Give images whose stored Pixel Spacing contradicts their size the
    spacing their size implies (see :func:`dicomslide.pyramid.derive_pixel_spacings`),
    and warn once."""
    derived = derive_pixel_spacings(image_metadata)
    if not derived:
        return
    for metadata in image_metadata:
        if not is_tiled_image(metadata) or is_label_image(metadata):
            continue
        size = (
            int(metadata.TotalPixelMatrixRows),
            int(metadata.TotalPixelMatrixColumns),
        )
        try:
            stored = get_image_pixel_spacing(metadata)
        except MetadataError:
            continue
        for (wrong_size, wrong_spacing), spacing in derived.items():
            if size == wrong_size and np.allclose(stored, wrong_spacing, rtol=1e-6):
                setattr(metadata, DERIVED_PIXEL_SPACING, spacing)
    sizes = ", ".join(
        f"{rows}x{columns} px: {spacing[0]:.6g} mm"
        for ((rows, columns), _), spacing in sorted(derived.items(), reverse=True)
    )
    (_, repeated) = next(iter(derived))
    logger.warning(
        "slide %s: images of several sizes state the Pixel Spacing %s mm of the "
        "largest image; the spacing of the others is derived from their sizes "
        "(%s)",
        _name(image_metadata),
        tuple(float(v) for v in repeated),
        sizes,
    )


def _name(image_metadata: Sequence[Dataset]) -> str:
    """Name a slide in messages by its container, or else its series."""
    containers = _values(image_metadata, "ContainerIdentifier")
    if containers:
        return repr(containers[0])
    series = _values(image_metadata, "SeriesInstanceUID")
    return f"of series {series[0]} (no container)" if series else "(no container)"


def _is_associated(metadata: Dataset) -> bool:
    return is_label_image(metadata) or is_overview_image(metadata)


def _flavor(image: TiledImage) -> str:
    return image_flavor(image.metadata) or ""


class ChannelKey(NamedTuple):
    """What identifies a channel of a slide."""

    #: Type of the channel
    type: ChannelTypes
    #: Series Instance UID of a derived series, empty for optical paths
    scope: str
    #: Optical Path Identifier, Segment Number or parameter number
    identifier: str


def group_concatenations(image_metadata: Sequence[Dataset]) -> list[list[Dataset]]:
    """Group instances into images: the parts of a concatenation form one.

    Parameters
    ----------
    image_metadata: Sequence[pydicom.Dataset]
        Metadata of image instances

    Returns
    -------
    List[List[pydicom.Dataset]]
        Instances of each image, in the order images first appear

    """
    groups: dict[str, list[Dataset]] = {}
    for metadata in image_metadata:
        key = str(
            element_value(metadata, "ConcatenationUID")
            or element_value(metadata, "SOPInstanceUID")
        )
        groups.setdefault(key, []).append(metadata)
    return list(groups.values())


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
        client: Any,
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
        self._check_consistency(image_metadata)
        _derive_pixel_spacings(image_metadata)
        first = image_metadata[0]
        self._container_id = next(
            iter(_values(image_metadata, "ContainerIdentifier")), ""
        )
        self._correct_color = correct_color

        # A channel is an optical path, or a segment or parameter of one
        # derived series (segment numbers repeat across segmentations).
        volume: dict[tuple[ChannelKey, float], list[TiledImage]] = defaultdict(list)
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
        # Several pyramids (Pyramid UIDs) may image the slide: the one with
        # the largest image gives the levels, the others are kept aside.
        by_pyramid: dict[str, list[TiledImage]] = defaultdict(list)
        for image in images:
            if is_volume_image(image.metadata):
                by_pyramid[str(image.metadata.get("PyramidUID", ""))].append(image)
        primary = max(
            by_pyramid.items(),
            key=lambda item: (
                max(get_image_size(i.metadata) for i in item[1]),
                item[0],
            ),
            default=("", []),
        )[0]
        secondary = {
            uid: group
            for uid, group in by_pyramid.items()
            if uid not in (primary, "")  # images without a Pyramid UID join the main
        }
        for image in images:
            metadata = image.metadata
            if str(metadata.get("PyramidUID", "")) in secondary and is_volume_image(
                metadata
            ):
                continue
            if (
                is_volume_image(metadata)
                or image.channel_type != ChannelTypes.OPTICAL_PATH
            ):
                scope = (
                    ""
                    if image.channel_type == ChannelTypes.OPTICAL_PATH
                    else str(metadata.SeriesInstanceUID)
                )
                for channel in range(image.num_channels):
                    channel_key = ChannelKey(
                        image.channel_type, scope, image.get_channel_identifier(channel)
                    )
                    for plane in range(image.num_focal_planes):
                        volume[
                            (channel_key, image.get_focal_plane_offset(plane))
                        ].append(image)
            else:
                logger.debug(
                    "image %s is neither VOLUME, LABEL nor OVERVIEW",
                    metadata.SOPInstanceUID,
                )
        if not any(key.type == ChannelTypes.OPTICAL_PATH for key, _ in volume):
            raise MetadataError(
                "a slide needs at least one VOLUME or THUMBNAIL image",
                str(first.get("SOPInstanceUID")),
            )
        self._thumbnail_images = tuple(
            image for image in images if _flavor(image) == "THUMBNAIL"
        )

        # optical paths as stored; derived channels by series (Series Number,
        # then UID), then segment or parameter number
        channels = list(dict.fromkeys(k for k, _ in volume if k.type == _OPTICAL_PATH))
        series_numbers = {
            str(image.metadata.SeriesInstanceUID): int(
                image.metadata.get("SeriesNumber") or 0
            )
            for group in volume.values()
            for image in group
        }
        channels += sorted(
            {k for k, _ in volume if k.type != _OPTICAL_PATH},
            key=lambda k: (
                _CHANNEL_TYPE_ORDER.index(k.type),
                series_numbers.get(k.scope, 0),
                k.scope,
                int(k.identifier) if k.identifier.isdigit() else 0,
                k.identifier,
            ),
        )
        self._channels = channels
        self._focal_plane_offsets = sorted(
            {offset for key, offset in volume if key.type == ChannelTypes.OPTICAL_PATH}
        )

        self._volume_images: dict[tuple[int, int], tuple[TiledImage, ...]] = {}
        for channel_index, channel_key in enumerate(channels):
            plane_offsets = sorted(
                {offset for key, offset in volume if key == channel_key}
            )
            for plane_index, offset in enumerate(self._focal_plane_offsets):
                if offset not in plane_offsets:
                    if len(plane_offsets) != 1:
                        continue
                    # derived images of a single plane apply to every plane
                    offset = plane_offsets[0]
                self._volume_images[(channel_index, plane_index)] = _one_per_size(
                    volume[(channel_key, offset)]
                )

        reference = [image.metadata for image in self._volume_images[(0, 0)]]
        self._pyramids: dict[tuple[int, int], Pyramid] = {}
        for key_, volume_images in self._volume_images.items():
            try:
                self._pyramids[key_] = Pyramid(
                    [image.metadata for image in volume_images],
                    pyramid_tolerance,
                    ref_metadata=reference,
                )
            except ValueError as error:
                raise MetadataError(
                    f"images of channel {key_[0]} and focal plane {key_[1]} do not "
                    f"form a pyramid: {error}",
                    str(volume_images[0].metadata.SOPInstanceUID),
                ) from error
        self._pyramid = self._pyramids[(0, 0)]
        self._frame_of_reference_uid = str(
            element_value(
                self._volume_images[(0, 0)][0].metadata, "FrameOfReferenceUID"
            )
            or ""
        )
        self._secondary = [
            self._assign_to_channels(group) for _, group in sorted(secondary.items())
        ]
        self._other_pyramids = tuple(
            Pyramid(
                [image.metadata for image in volume_images[(0, 0)]], pyramid_tolerance
            )
            for volume_images in self._secondary
            if (0, 0) in volume_images
        )
        uids = sorted(str(m.SOPInstanceUID) for m in image_metadata)
        self._sop_instance_uids = frozenset(uids)
        self._uid_hash = hashlib.sha256("\\".join(uids).encode()).hexdigest()

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

    def _assign_to_channels(
        self, images: Sequence[TiledImage]
    ) -> dict[tuple[int, int], tuple[TiledImage, ...]]:
        """Sort the images of another pyramid by the slide's channels and planes."""
        assigned: dict[tuple[int, int], list[TiledImage]] = defaultdict(list)
        for image in images:
            for channel in range(image.num_channels):
                for plane in range(image.num_focal_planes):
                    try:
                        key = (
                            self.get_channel_index(
                                image.get_channel_identifier(channel),
                                ChannelTypes.OPTICAL_PATH,
                            ),
                            self.get_focal_plane_index(
                                image.get_focal_plane_offset(plane)
                            ),
                        )
                    except ValueError:
                        logger.debug(
                            "image %s: channel or focal plane not in the main pyramid",
                            image.metadata.SOPInstanceUID,
                        )
                        continue
                    assigned[key].append(image)
        return {
            key: tuple(
                sorted(group, key=lambda i: get_image_size(i.metadata), reverse=True)
            )
            for key, group in assigned.items()
        }

    @staticmethod
    def _check_consistency(image_metadata: Sequence[Dataset]) -> None:
        """Refuse what cannot be one slide; warn about what contradicts itself.

        Two containers cannot be one glass slide. Images that name different
        frames of reference (or a container only some of them name) are read
        as one slide, as OpenSlide does: grouping put them together.
        """
        seen: set[str] = set()
        for metadata in image_metadata:
            if not isinstance(metadata, Dataset):
                raise TypeError("image_metadata must be a sequence of datasets")
            uid = str(element_value(metadata, "SOPInstanceUID"))
            if uid in seen:
                raise MetadataError("SOP Instance UID occurs twice in the slide", uid)
            seen.add(uid)
        containers = _values(image_metadata, "ContainerIdentifier")
        if len(containers) > 1:
            raise MetadataError(
                "the images name several containers: "
                + ", ".join(repr(c) for c in containers)
            )
        frames_of_reference = _values(image_metadata, "FrameOfReferenceUID")
        if len(frames_of_reference) > 1:
            logger.warning(
                "slide %s: its images name %d frames of reference (%s%s); they "
                "are read as one slide, placed by their own positions",
                _name(image_metadata),
                len(frames_of_reference),
                ", ".join(frames_of_reference[:2]),
                ", ..." if len(frames_of_reference) > 2 else "",
            )

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
        its images (see :attr:`dicomslide.TiledImage.metrics`)"""
        images = {
            id(image): image
            for group in (
                *self._volume_images.values(),
                *self._associated_images.values(),
                *(images for other in self._secondary for images in other.values()),
            )
            for image in group
        }
        totals: dict[str, int] = {}
        for image in images.values():
            for name, value in image.metrics.items():
                totals[name] = totals.get(name, 0) + value
        return totals

    @property
    def sop_instance_uids(self) -> frozenset[str]:
        """FrozenSet[str]: SOP Instance UIDs of every instance of the slide
        (all its images, associated and derived ones included)"""
        return self._sop_instance_uids

    @property
    def client(self) -> Any:
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
        return matrix.read_region((row, column), size)

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
        low, high = _annotation_bounds(annotation)
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
            items = [
                item
                for item in metadata.get("OpticalPathSequence", [])
                if str(item.OpticalPathIdentifier) == channel_id
            ]
            item = items[0] if items else Dataset()
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
            Segment label
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
            items = [
                item
                for item in metadata.get("SegmentSequence", [])
                if str(item.SegmentNumber) == channel_id
            ]
            if items and does_segment_item_match(
                items[0], number, label, property_category, property_type
            ):
                matches.append(index)
        return tuple(matches)


def find_slides(
    client: Any,
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
) -> list[Slide]:
    """Find slides.

    Parameters
    ----------
    client: Union[dicomweb_client.api.DICOMClient, str, os.PathLike]
        DICOMweb client; or a local folder path (opens the embedded
        ``DICOMfileClient``); or a path to one file (finds the slide that
        file belongs to among the files of its folder); or an ``http(s)://``
        DICOMweb base URL
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

    Returns
    -------
    List[dicomslide.Slide]
        Digital slides, sorted by container identifier

    """  # noqa: E501
    client, source_file = open_source(client)
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
    slides = []
    for images in image_groups:
        slide = _make_slide(
            client,
            images,
            fail_on_error,
            max_frame_cache_size=max_frame_cache_size,
            pyramid_tolerance=pyramid_tolerance,
            correct_color=correct_color,
            cache=cache,
        )
        if slide is not None:
            slides.append(slide)
    if source_file is not None:
        slides = [s for s in slides if source_file in s.sop_instance_uids]
    return slides


def _make_slide(
    client: Any, members: list[Dataset], fail_on_error: bool, **options: Any
) -> Slide | None:
    """Make a slide of a group of images; a derived image that breaks it is
    left out with a warning, and a broken slide raises or is skipped."""
    try:
        return Slide(client, members, **options)
    except (DicomSlideError, ValueError) as error:
        whole_slide = [m for m in members if m.SOPClassUID == VL_WSI_SOP_CLASS_UID]
        if len(whole_slide) == len(members):
            if fail_on_error:
                raise
            logger.warning("skipping slide (%s): %s", describe_group(members), error)
            return None
        failure = error
    # Without its derived images the slide may be fine: add them series by series.
    try:
        slide = Slide(client, whole_slide, **options)
    except (DicomSlideError, ValueError) as error:
        if fail_on_error:
            raise
        logger.warning("skipping slide (%s): %s", describe_group(members), error)
        return None
    logger.debug(
        "slide (%s) fails with its derived images: %s", describe_group(members), failure
    )
    series: dict[str, list[Dataset]] = defaultdict(list)
    for image in members:
        if image.SOPClassUID != VL_WSI_SOP_CLASS_UID:
            series[str(element_value(image, "SeriesInstanceUID"))].append(image)
    accepted = list(whole_slide)
    for images in series.values():
        try:
            slide = Slide(client, accepted + images, **options)
        except (DicomSlideError, ValueError) as error:
            logger.warning(
                "skipping derived image(s) of %s: %s", describe_group(images), error
            )
            continue
        accepted += images
    return slide
