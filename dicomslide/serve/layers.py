"""Any channel and focal plane of a slide as an OpenSlide-style slide.

:class:`ChannelSlide` shows one channel and focal plane of a
:class:`dicomslide.Slide` through the :class:`~dicomslide.openslide.AbstractSlide`
interface, so that :class:`~dicomslide.openslide.deepzoom.DeepZoomGenerator`
cuts it into Deep Zoom tiles with the same geometry as the slide's main view.
Its levels are the slide levels that hold the channel; its level 0 is the
largest of them. Optical paths read as their stored (uncorrected) colours;
segments read as their colour with the mask as alpha, parametric maps through
a colour map (:mod:`dicomslide.serve.colors`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from PIL import Image

from dicomslide.enum import ChannelTypes
from dicomslide.openslide.abstract import AbstractSlide, Filename, best_level
from dicomslide.serve.colors import parameter_painter, segment_painter
from dicomslide.slide import Slide

__all__ = ["ChannelSlide"]

#: Turns the pixels a channel reads into straight-alpha RGBA
Painter = Callable[[np.ndarray], np.ndarray]


def _optical_painter(pixels: np.ndarray) -> np.ndarray:
    if pixels.dtype != np.uint8 or pixels.shape[2] not in (1, 3):
        raise ValueError(
            f"{pixels.dtype} pixels with {pixels.shape[2]} samples cannot be shown"
        )
    rgba = np.empty(pixels.shape[:2] + (4,), dtype=np.uint8)
    rgba[..., :3] = pixels
    rgba[..., 3] = 255
    return rgba


class ChannelSlide(AbstractSlide):
    """One channel and focal plane of a slide, read as RGBA levels.

    Parameters
    ----------
    slide: dicomslide.Slide
        Slide
    channel_index: int
        Zero-based channel index
    focal_plane_index: int, optional
        Zero-based focal plane index

    Raises
    ------
    ValueError
        When the slide has no such channel or focal plane

    """

    def __init__(
        self, slide: Slide, channel_index: int, focal_plane_index: int = 0
    ) -> None:
        if not 0 <= channel_index < slide.num_channels:
            raise ValueError(f"no channel {channel_index}")
        if not 0 <= focal_plane_index < slide.num_focal_planes:
            raise ValueError(f"no focal plane {focal_plane_index}")
        self.slide = slide
        self.channel_index = channel_index
        self.focal_plane_index = focal_plane_index
        self.channel_type = slide.get_channel_type(channel_index)
        identifier = slide.get_channel_identifier(channel_index)
        offset = slide.get_focal_plane_offset(focal_plane_index)
        self._matrices: list[Any] = []
        dimensions: list[tuple[int, int]] = []
        for level in range(slide.num_levels):
            try:
                image = slide.get_image(level, channel_index, focal_plane_index)
            except ValueError:
                continue
            planes = [
                image.get_focal_plane_offset(i) for i in range(image.num_focal_planes)
            ]
            plane = planes.index(offset) if offset in planes else 0
            self._matrices.append(
                image.get_total_pixel_matrix(
                    image.get_channel_index(identifier), plane, correct_color=False
                )
            )
            rows, columns = image.size
            dimensions.append((columns, rows))
        self._dimensions = tuple(dimensions)
        width0, height0 = dimensions[0]
        self._downsamples = tuple(
            (height0 / height + width0 / width) / 2.0 if i else 1.0
            for i, (width, height) in enumerate(dimensions)
        )
        self._painter = self._make_painter()

    def _make_painter(self) -> Painter:
        if self.channel_type == ChannelTypes.SEGMENT:
            metadata = self.slide.get_volume_images(self.channel_index)[0].metadata
            return segment_painter(
                metadata, self.slide.get_channel_identifier(self.channel_index)
            )
        if self.channel_type == ChannelTypes.PARAMETER:
            smallest = self._matrices[-1]
            rows, columns = smallest.shape[:2]
            values = np.asarray(smallest.read_region((0, 0), (rows, columns)))
            return parameter_painter(values)
        return _optical_painter

    @property
    def value_range(self) -> tuple[float, float] | None:
        """Union[Tuple[float, float], None]: values the colour map spans, for
        a parametric map"""
        return getattr(self._painter, "value_range", None)

    @classmethod
    def detect_format(cls, filename: Filename) -> str | None:
        """Return None: a channel slide is made from a slide, not a file."""
        return None

    def close(self) -> None:
        """Nothing to release: the slide stays open."""

    @property
    def level_count(self) -> int:
        """int: number of levels that hold the channel"""
        return len(self._dimensions)

    @property
    def level_dimensions(self) -> tuple[tuple[int, int], ...]:
        """Tuple[Tuple[int, int], ...]: (width, height) of every level"""
        return self._dimensions

    @property
    def level_downsamples(self) -> tuple[float, ...]:
        """Tuple[float, ...]: downsample of every level, as OpenSlide computes it"""
        return self._downsamples

    @property
    def properties(self) -> Mapping[str, str]:
        """Mapping[str, str]: none: the background is white"""
        return {}

    @property
    def associated_images(self) -> Mapping[str, Image.Image]:
        """Mapping[str, PIL.Image.Image]: none"""
        return {}

    def get_best_level_for_downsample(self, downsample: float) -> int:
        """The last level whose downsample is not above `downsample`.

        Parameters
        ----------
        downsample: float
            Wanted downsample

        Returns
        -------
        int
            Level

        """
        return best_level(self._downsamples, downsample)

    def read_region(
        self, location: tuple[int, int], level: int, size: tuple[int, int]
    ) -> Image.Image:
        """Read a region of a level as straight-alpha RGBA.

        Parameters
        ----------
        location: Tuple[int, int]
            (x, y) of the top left pixel in level-0 coordinates
        level: int
            Level
        size: Tuple[int, int]
            (width, height) in pixels of `level`

        Returns
        -------
        PIL.Image.Image
            RGBA region, transparent outside the channel's pixels

        """
        width, height = size
        downsample = self._downsamples[level]
        column = int(location[0] // downsample)
        row = int(location[1] // downsample)
        pixels = self._matrices[level].read_region((row, column), (height, width))
        rgba = np.ascontiguousarray(self._painter(np.asarray(pixels)))
        # pixels outside the matrix are transparent
        rows, columns = self._dimensions[level][1], self._dimensions[level][0]
        rgba[max(0, rows - row) :, :, 3] = 0
        rgba[:, max(0, columns - column) :, 3] = 0
        return Image.fromarray(rgba, "RGBA")
