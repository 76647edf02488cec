"""Channels and focal planes of a slide: which images show each of them.

A channel is an optical path, or a segment or parameter of one derived series
(segment numbers repeat across segmentations, so a derived channel is scoped
by its series). :func:`arrange_images` sorts a slide's tiled images into
channels and focal planes, largest image first, with the images of further
pyramids (other Pyramid UIDs) kept aside.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from pydicom.dataset import Dataset

from dicomslide.elements import element_value
from dicomslide.enum import ChannelTypes
from dicomslide.errors import MetadataError
from dicomslide.image import TiledImage
from dicomslide.utils import get_image_size, image_flavor, is_volume_image

logger = logging.getLogger(__name__)

#: Order of the channel types in a slide's channels
CHANNEL_TYPE_ORDER = (
    ChannelTypes.OPTICAL_PATH,
    ChannelTypes.SEGMENT,
    ChannelTypes.PARAMETER,
)

#: Images of each (channel index, focal plane index), largest first
ImagesByChannel = dict[tuple[int, int], tuple[TiledImage, ...]]


class ChannelKey(NamedTuple):
    """What identifies a channel of a slide."""

    #: Type of the channel
    type: ChannelTypes
    #: Series Instance UID of a derived series, empty for optical paths
    scope: str
    #: Optical Path Identifier, Segment Number or parameter number
    identifier: str


#: The sequence whose items describe the channels of each type, and the
#: attribute of an item that identifies its channel (no item describes a
#: parameter)
_DESCRIBED_BY = {
    ChannelTypes.OPTICAL_PATH: ("OpticalPathSequence", "OpticalPathIdentifier"),
    ChannelTypes.SEGMENT: ("SegmentSequence", "SegmentNumber"),
}


def channel_item(
    metadata: Dataset, channel_type: ChannelTypes, identifier: str
) -> Dataset | None:
    """The item of an image's metadata that describes one of its channels.

    Parameters
    ----------
    metadata: pydicom.Dataset
        Metadata of an image of the channel
    channel_type: dicomslide.ChannelTypes
        Type of the channel
    identifier: str
        Optical Path Identifier or Segment Number of the channel

    Returns
    -------
    Union[pydicom.Dataset, None]
        The item of the Optical Path Sequence or the Segment Sequence that
        names the channel; None when none does (and for a parameter)

    """
    described_by = _DESCRIBED_BY.get(channel_type)
    if described_by is None:
        return None
    sequence, attribute = described_by
    for item in metadata.get(sequence) or []:
        if str(item.get(attribute, "")) == identifier:
            return item  # type: ignore[no-any-return]
    return None


@dataclass(frozen=True)
class Arrangement:
    """The channels and focal planes of a slide, and the images of each."""

    #: Channels: optical paths as stored, then derived channels by series
    #: (Series Number, then UID), then segment or parameter number
    channels: tuple[ChannelKey, ...]
    #: Focal plane offsets of the optical paths in micrometers, ascending
    focal_plane_offsets: tuple[float, ...]
    #: Images of the main pyramid by (channel index, focal plane index)
    volume_images: ImagesByChannel
    #: Images of each further pyramid (by Pyramid UID) in the same layout
    other_pyramids: tuple[ImagesByChannel, ...]
    #: THUMBNAIL images, also those that are not pyramid levels
    thumbnail_images: tuple[TiledImage, ...]


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


def _flavor(image: TiledImage) -> str:
    return image_flavor(image.metadata) or ""


def _largest_first(images: Sequence[TiledImage]) -> tuple[TiledImage, ...]:
    return tuple(sorted(images, key=lambda i: get_image_size(i.metadata), reverse=True))


def _one_per_size(images: Sequence[TiledImage]) -> tuple[TiledImage, ...]:
    """Images by size, largest first; of images of one size, a VOLUME image
    wins over a THUMBNAIL (a thumbnail as large as a level adds nothing)."""
    by_size: dict[tuple[int, int], TiledImage] = {}
    for image in dict.fromkeys(images):
        kept = by_size.get(image.size)
        if kept is None or _flavor(kept) == "THUMBNAIL" != _flavor(image):
            by_size[image.size] = image
    return _largest_first(list(by_size.values()))


def _pyramid_uid(image: TiledImage) -> str:
    return str(element_value(image.metadata, "PyramidUID") or "")


def _split_pyramids(
    images: Sequence[TiledImage],
) -> tuple[list[TiledImage], dict[str, list[TiledImage]]]:
    """The images of the main pyramid, and those of every other pyramid.

    The pyramid with the largest image gives the levels; images without a
    Pyramid UID, and derived images, join it.
    """
    by_pyramid: dict[str, list[TiledImage]] = defaultdict(list)
    for image in images:
        if is_volume_image(image.metadata):
            by_pyramid[_pyramid_uid(image)].append(image)
    primary = max(
        by_pyramid.items(),
        key=lambda item: (max(get_image_size(i.metadata) for i in item[1]), item[0]),
        default=("", []),
    )[0]
    others = {
        uid: group for uid, group in by_pyramid.items() if uid not in (primary, "")
    }
    main = [
        image
        for image in images
        if not (is_volume_image(image.metadata) and _pyramid_uid(image) in others)
    ]
    return main, others


def _images_by_channel(
    images: Sequence[TiledImage],
) -> dict[tuple[ChannelKey, float], list[TiledImage]]:
    """The images that show each (channel, focal plane offset)."""
    shown: dict[tuple[ChannelKey, float], list[TiledImage]] = defaultdict(list)
    for image in images:
        optical = image.channel_type == ChannelTypes.OPTICAL_PATH
        if optical and not is_volume_image(image.metadata):
            logger.debug(
                "image %s is neither VOLUME, LABEL nor OVERVIEW",
                image.metadata.SOPInstanceUID,
            )
            continue
        scope = "" if optical else str(image.metadata.SeriesInstanceUID)
        for channel in range(image.num_channels):
            key = ChannelKey(
                image.channel_type, scope, image.get_channel_identifier(channel)
            )
            for plane in range(image.num_focal_planes):
                shown[(key, image.get_focal_plane_offset(plane))].append(image)
    return shown


def _order_channels(
    shown: dict[tuple[ChannelKey, float], list[TiledImage]],
) -> tuple[ChannelKey, ...]:
    optical = ChannelTypes.OPTICAL_PATH
    channels = list(dict.fromkeys(k for k, _ in shown if k.type == optical))
    series_numbers = {
        str(image.metadata.SeriesInstanceUID): int(
            element_value(image.metadata, "SeriesNumber") or 0
        )
        for group in shown.values()
        for image in group
    }
    channels += sorted(
        {k for k, _ in shown if k.type != optical},
        key=lambda k: (
            CHANNEL_TYPE_ORDER.index(k.type),
            series_numbers.get(k.scope, 0),
            k.scope,
            int(k.identifier) if k.identifier.isdigit() else 0,
            k.identifier,
        ),
    )
    return tuple(channels)


def _other_pyramid(
    images: Sequence[TiledImage],
    channels: Sequence[ChannelKey],
    offsets: Sequence[float],
) -> ImagesByChannel:
    """Sort the images of another pyramid by the slide's channels and planes."""
    assigned: dict[tuple[int, int], list[TiledImage]] = defaultdict(list)
    index_of = {key.identifier: i for i, key in enumerate(channels) if not key.scope}
    for image in images:
        for channel in range(image.num_channels):
            for plane in range(image.num_focal_planes):
                offset = image.get_focal_plane_offset(plane)
                planes = [i for i, z in enumerate(offsets) if abs(z - offset) < 1e-6]
                identifier = image.get_channel_identifier(channel)
                if identifier not in index_of or not planes:
                    logger.debug(
                        "image %s: channel or focal plane not in the main pyramid",
                        image.metadata.SOPInstanceUID,
                    )
                    continue
                assigned[(index_of[identifier], planes[0])].append(image)
    return {key: _largest_first(group) for key, group in assigned.items()}


def arrange_images(images: Sequence[TiledImage]) -> Arrangement:
    """Sort the tiled images of a slide into channels and focal planes.

    Parameters
    ----------
    images: Sequence[dicomslide.TiledImage]
        VOLUME and THUMBNAIL images and derived images of one slide (not its
        LABEL and OVERVIEW images)

    Returns
    -------
    dicomslide.channels.Arrangement
        Channels, focal planes and the images of each

    Raises
    ------
    dicomslide.errors.MetadataError
        When no image shows an optical path (a slide needs a VOLUME or
        THUMBNAIL image)

    """
    main, others = _split_pyramids(images)
    shown = _images_by_channel(main)
    if not any(key.type == ChannelTypes.OPTICAL_PATH for key, _ in shown):
        first = images[0].metadata if images else Dataset()
        raise MetadataError(
            "a slide needs at least one VOLUME or THUMBNAIL image",
            str(element_value(first, "SOPInstanceUID")),
        )
    channels = _order_channels(shown)
    offsets = tuple(
        sorted({z for key, z in shown if key.type == ChannelTypes.OPTICAL_PATH})
    )
    volume_images: ImagesByChannel = {}
    for channel_index, channel in enumerate(channels):
        own = sorted({z for key, z in shown if key == channel})
        for plane_index, offset in enumerate(offsets):
            if offset not in own:
                if len(own) != 1:
                    continue
                offset = own[0]  # derived images of one plane apply to every plane
            volume_images[(channel_index, plane_index)] = _one_per_size(
                shown[(channel, offset)]
            )
    return Arrangement(
        channels=channels,
        focal_plane_offsets=offsets,
        volume_images=volume_images,
        other_pyramids=tuple(
            _other_pyramid(group, channels, offsets)
            for _, group in sorted(others.items())
        ),
        thumbnail_images=tuple(i for i in images if _flavor(i) == "THUMBNAIL"),
    )
