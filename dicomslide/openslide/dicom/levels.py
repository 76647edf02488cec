"""A DICOM slide as OpenSlide's DICOM driver sees it: levels and associated images.

The levels are the VOLUME images of the slide's first optical path and lowest
focal plane, largest first; a level's downsample is ``(h0 / h + w0 / w) / 2``
(level 0: 1). A :class:`Level` reads its pixels through the model as opaque
RGBA (transparent where the level has no tile). The associated images are the
slide's first LABEL, OVERVIEW and THUMBNAIL images that can be shown, named
``label``, ``macro`` and ``thumbnail``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace

import numpy as np

from dicomslide.cache import FrameCache
from dicomslide.enum import ChannelTypes
from dicomslide.image import TiledImage, rgba_frame_store
from dicomslide.openslide.library import (
    OpenSlideError,
    OpenSlideUnsupportedFormatError,
)
from dicomslide.slide import Slide
from dicomslide.store import FrameStore

__all__ = ["Level", "associated_images", "is_grey", "levels_of"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Level:
    """One pyramid level as OpenSlide sees it, read through dicomslide.

    `store` holds the level's frames as opaque RGBA; read with a fill of 0,
    absent tiles and pixels past the level's edge are transparent, as OpenSlide
    paints them.
    """

    image: TiledImage
    store: FrameStore
    width: int
    height: int
    tile_width: int
    tile_height: int
    downsample: float
    channel: int = 0
    plane: int = 0

    @property
    def tiles_across(self) -> int:
        """int: number of tile columns"""
        return -(-self.width // self.tile_width)

    @property
    def tiles_down(self) -> int:
        """int: number of tile rows"""
        return -(-self.height // self.tile_height)

    def with_cache(self, cache: FrameCache) -> Level:
        """The same level, read through another frame cache."""
        image = TiledImage(
            self.image.client,
            self.image.instance_metadata,
            correct_color=False,
            cache=cache,
        )
        return replace(self, image=image, store=rgba_frame_store(image))

    def read_whole(self, x: int, y: int, w: int, h: int) -> np.ndarray | None:
        """RGBA of a read on whole level pixels; None for other locations.

        Such a read paints the level's pixels themselves: alpha is 255 where
        a tile is and 0 elsewhere, so the premultiplied pixels are also the
        straight ones.
        """
        lx, ly = x / self.downsample, y / self.downsample
        if lx != math.floor(lx) or ly != math.floor(ly):
            return None
        top, left = int(ly), int(lx)
        return self.read((top, top + h), (left, left + w))

    def read(self, rows: tuple[int, int], columns: tuple[int, int]) -> np.ndarray:
        """Premultiplied RGBA of level pixels; transparent where no tile is."""
        return self.store.read_region(self.channel, self.plane, rows, columns, 0)


def _flavor(image: TiledImage) -> str:
    image_type = image.metadata.get("ImageType") or []
    return str(image_type[2]).upper() if len(image_type) >= 3 else ""


def is_grey(image: TiledImage, what: str) -> bool:
    """Whether an image is grey; raise if it cannot be shown as 8-bit RGBA.

    Parameters
    ----------
    image: dicomslide.TiledImage
        Image
    what: str
        What the image is to the slide, for messages (``"image"``, ``"label"``)

    Returns
    -------
    bool
        True for one sample per pixel, False for three

    Raises
    ------
    OpenSlideUnsupportedFormatError
        When the pixels have more than 8 bits or neither 1 nor 3 samples

    """
    matrix = image.get_total_pixel_matrix(0, 0, correct_color=False)
    samples = matrix.tile_shape[2]
    if matrix.dtype != np.uint8:
        bits = image.metadata.get("BitsAllocated", "?")
        photometric = image.metadata.get("PhotometricInterpretation", "")
        raise OpenSlideUnsupportedFormatError(
            f"{what} {image.metadata.SOPInstanceUID} has {bits}-bit {photometric} "
            "pixels, which cannot be shown as 8-bit RGBA"
        )
    if samples not in (1, 3):
        raise OpenSlideUnsupportedFormatError(
            f"{what} {image.metadata.SOPInstanceUID} has {samples} samples per "
            "pixel, which cannot be shown as RGBA"
        )
    return samples == 1


def _channel_and_plane(
    image: TiledImage, identifier: str, focus: float
) -> tuple[int, int]:
    """Indices, in an image, of the slide's first channel and lowest plane."""
    try:
        channel = image.get_channel_index(identifier)
    except ValueError:
        channel = 0
    offsets = [image.get_focal_plane_offset(i) for i in range(image.num_focal_planes)]
    plane = offsets.index(focus) if focus in offsets else 0
    return channel, plane


def levels_of(slide: Slide) -> tuple[Level, ...]:
    """The levels of a slide, largest first.

    Parameters
    ----------
    slide: dicomslide.Slide
        Slide

    Returns
    -------
    Tuple[Level, ...]
        Levels

    Raises
    ------
    OpenSlideError
        When the slide has no VOLUME image
    OpenSlideUnsupportedFormatError
        When a level cannot be shown as 8-bit RGBA, several monochrome optical
        paths would have to be shown as one, or the downsamples do not grow

    """
    paths = sum(
        1
        for channel in range(slide.num_channels)
        if slide.get_channel_type(channel) == ChannelTypes.OPTICAL_PATH
    )
    images = [
        image for image in slide.get_volume_images(0, 0) if _flavor(image) == "VOLUME"
    ]
    if not images:
        raise OpenSlideError("No pyramid levels found")
    if is_grey(images[0], "image") and paths > 1:
        raise OpenSlideUnsupportedFormatError(
            f"the slide has {paths} monochrome optical paths (channels), which "
            "cannot be shown as one RGBA image"
        )
    images.sort(key=lambda image: image.size[1], reverse=True)  # by width
    identifier = slide.get_channel_identifier(0)
    focus = slide.get_focal_plane_offset(0)
    height0, width0 = images[0].size
    levels: list[Level] = []
    for image in images:
        is_grey(image, "image")
        height, width = image.size
        channel, plane = _channel_and_plane(image, identifier, focus)
        rows, columns, _ = image.get_total_pixel_matrix(
            channel, plane, correct_color=False
        ).tile_shape
        downsample = ((height0 / height) + (width0 / width)) / 2.0 if levels else 1.0
        if levels and downsample < levels[-1].downsample:
            raise OpenSlideUnsupportedFormatError(
                f"Downsampled images not correctly ordered: {downsample} < "
                f"{levels[-1].downsample}"
            )
        levels.append(
            Level(
                image=image,
                store=rgba_frame_store(image),
                width=width,
                height=height,
                tile_width=columns,
                tile_height=rows,
                downsample=downsample,
                channel=channel,
                plane=plane,
            )
        )
    return tuple(levels)


def associated_images(slide: Slide) -> dict[str, TiledImage]:
    """The associated images of a slide, by OpenSlide's names.

    The first image of each kind that can be shown as RGBA; the others are
    left out (logged at INFO).

    Parameters
    ----------
    slide: dicomslide.Slide
        Slide

    Returns
    -------
    Dict[str, dicomslide.TiledImage]
        ``label``, ``macro`` and ``thumbnail`` images, those the slide has

    """
    found: dict[str, TiledImage] = {}
    for name, candidates in (
        ("label", slide.label_images),
        ("macro", slide.overview_images),
        ("thumbnail", slide.thumbnail_images),
    ):
        for image in candidates:
            try:
                is_grey(image, name)
            except OpenSlideUnsupportedFormatError as error:
                logger.info("associated image %s left out: %s", name, error)
                continue
            found[name] = image
            break
    return found
