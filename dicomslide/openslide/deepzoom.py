"""Deep Zoom images of any slide: :class:`DeepZoomGenerator`.

A Deep Zoom image (Seadragon's format, which OpenSeadragon shows) is a pyramid
of levels numbered from 0, a single pixel, up to the full image; each level is
half its successor, rounded up, until both sides are 1. Every level is cut into
square tiles of ``tile_size`` pixels from its top left corner (the last column
and row may be narrower), and a tile also carries ``overlap`` pixels of its
neighbours on each side that has a neighbour. A ``.dzi`` XML document gives the
tile size, the overlap, the tile format and the size of the full image; a
viewer asks for tile ``<level>/<column>_<row>.<format>``.

:class:`DeepZoomGenerator` draws such tiles from any
:class:`~dicomslide.openslide.AbstractSlide` (an
:class:`~dicomslide.openslide.OpenSlide` of either backend, an
:class:`~dicomslide.openslide.ImageSlide`, or a class of your own) through the
slide's own ``read_region``, with the levels, regions and pixels of
openslide-python's generator. Each Deep Zoom level is read from the slide level
that ``get_best_level_for_downsample`` picks for the level's power-of-two
downsample, and a region of that level is shrunk to the tile
(:mod:`dicomslide.openslide.rendering`). With ``limit_bounds``, the pyramid
covers the slide's bounds (``openslide.bounds-*``) instead of all of level 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeAlias
from xml.etree.ElementTree import Element, SubElement, tostring

from PIL import Image

from dicomslide.openslide.abstract import AbstractSlide
from dicomslide.openslide.properties import (
    PROPERTY_NAME_BOUNDS_HEIGHT,
    PROPERTY_NAME_BOUNDS_WIDTH,
    PROPERTY_NAME_BOUNDS_X,
    PROPERTY_NAME_BOUNDS_Y,
)
from dicomslide.openslide.rendering import render

__all__ = ["DeepZoomGenerator"]

#: XML namespace of ``.dzi`` documents
_DZI_NAMESPACE = "http://schemas.microsoft.com/deepzoom/2008"

_Pair: TypeAlias = tuple[int, int]


@dataclass(frozen=True)
class _Axis:
    """One direction (x or y) of a Deep Zoom level and of the slide level it reads.

    Attributes
    ----------
    extent: int
        Deep Zoom pixels of the level
    tiles: int
        Tiles of the level
    stretch: float
        Slide-level pixels per Deep Zoom pixel
    source_extent: int
        Pixels of the shown part of the slide, in the slide level
    source_downsample: float
        Downsample of the slide level
    origin: int
        Level-0 coordinate of the shown part of the slide

    """

    extent: int
    tiles: int
    stretch: float
    source_extent: int
    source_downsample: float
    origin: int

    def span(self, index: int, tile_size: int, overlap: int) -> tuple[int, int]:
        """First Deep Zoom pixel and length of a tile, overlap included."""
        before = overlap if index > 0 else 0
        after = overlap if index < self.tiles - 1 else 0
        first = index * tile_size
        return first - before, before + min(tile_size, self.extent - first) + after

    def source(self, first: int, length: int) -> tuple[int, int]:
        """Level-0 coordinate and slide-level length of the region of a span."""
        start = first * self.stretch  # in slide-level pixels, not rounded
        reach = self.source_extent - math.ceil(start)
        # the origin is added before truncating (in floating point), which
        # decides some coordinates just below a whole number
        location = int(self.origin + start * self.source_downsample)
        return location, min(math.ceil(length * self.stretch), reach)


@dataclass(frozen=True)
class _ZoomLevel:
    """A Deep Zoom level: the slide level it is read from, and its two axes."""

    source_level: int
    x: _Axis
    y: _Axis


def _pyramid(full: _Pair) -> list[_Pair]:
    """Sizes of the Deep Zoom levels of an image, from 1 x 1 up to `full`."""
    sizes = [full]
    while max(sizes[-1]) > 1:
        width, height = sizes[-1]
        sizes.append((max(1, math.ceil(width / 2)), max(1, math.ceil(height / 2))))
    return sizes[::-1]


class DeepZoomGenerator:
    """Generates Deep Zoom tiles and metadata of a slide.

    Parameters
    ----------
    osr: dicomslide.openslide.AbstractSlide
        The slide
    tile_size: int, optional
        Width and height of a tile, without overlap. For the best viewer
        performance, ``tile_size + 2 * overlap`` should be a power of two.
    overlap: int, optional
        Number of extra pixels on each interior edge of a tile
    limit_bounds: bool, optional
        Whether to render only the non-empty region of the slide, as given by
        its ``openslide.bounds-*`` properties

    """

    #: Properties that give the level-0 location of the slide's bounds
    BOUNDS_OFFSET_PROPS = (PROPERTY_NAME_BOUNDS_X, PROPERTY_NAME_BOUNDS_Y)
    #: Properties that give the level-0 size of the slide's bounds
    BOUNDS_SIZE_PROPS = (PROPERTY_NAME_BOUNDS_WIDTH, PROPERTY_NAME_BOUNDS_HEIGHT)

    def __init__(
        self,
        osr: AbstractSlide,
        tile_size: int = 254,
        overlap: int = 1,
        limit_bounds: bool = False,
    ) -> None:
        self._slide = osr
        self._tile_size = tile_size
        self._overlap = overlap
        self._bounded = limit_bounds

        # The shown part of the slide: its level-0 origin, and its size as a
        # fraction of level 0 (which sizes it in every slide level).
        origin = (0, 0)
        fraction = (1.0, 1.0)
        if limit_bounds:
            properties = osr.properties
            base_width, base_height = osr.level_dimensions[0]
            left, top = self.BOUNDS_OFFSET_PROPS
            across, down = self.BOUNDS_SIZE_PROPS
            origin = (int(properties.get(left, 0)), int(properties.get(top, 0)))
            fraction = (
                int(properties.get(across, base_width)) / base_width,
                int(properties.get(down, base_height)) / base_height,
            )
        shown = [
            (math.ceil(width * fraction[0]), math.ceil(height * fraction[1]))
            for width, height in osr.level_dimensions
        ]

        sizes = _pyramid(shown[0])
        levels = []
        for number, (width, height) in enumerate(sizes):
            downsample = 2 ** (len(sizes) - 1 - number)
            source = osr.get_best_level_for_downsample(downsample)
            source_downsample = osr.level_downsamples[source]
            stretch = downsample / source_downsample
            axis_x, axis_y = (
                _Axis(
                    extent=extent,
                    tiles=math.ceil(extent / tile_size),
                    stretch=stretch,
                    source_extent=shown[source][axis],
                    source_downsample=source_downsample,
                    origin=origin[axis],
                )
                for axis, extent in enumerate((width, height))
            )
            levels.append(_ZoomLevel(source, axis_x, axis_y))
        self._levels = tuple(levels)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self._slide!r}, "
            f"tile_size={self._tile_size!r}, overlap={self._overlap!r}, "
            f"limit_bounds={self._bounded!r})"
        )

    @property
    def level_count(self) -> int:
        """int: number of Deep Zoom levels"""
        return len(self._levels)

    @property
    def level_tiles(self) -> tuple[_Pair, ...]:
        """Tuple[Tuple[int, int], ...]: (columns, rows) of tiles of every level"""
        return tuple((level.x.tiles, level.y.tiles) for level in self._levels)

    @property
    def level_dimensions(self) -> tuple[_Pair, ...]:
        """Tuple[Tuple[int, int], ...]: (width, height) in pixels of every level"""
        return tuple((level.x.extent, level.y.extent) for level in self._levels)

    @property
    def tile_count(self) -> int:
        """int: number of tiles of all levels"""
        return sum(level.x.tiles * level.y.tiles for level in self._levels)

    def _locate(
        self, level: int, address: tuple[int, int]
    ) -> tuple[tuple[_Pair, int, _Pair], _Pair]:
        """The read_region arguments of a tile, and the tile's size."""
        if level < 0 or level >= len(self._levels):
            raise ValueError("Invalid level")
        zoom = self._levels[level]
        axes = (zoom.x, zoom.y)
        for index, axis in zip(address, axes, strict=True):
            if index < 0 or index >= axis.tiles:
                raise ValueError("Invalid address")
        spans = [
            axis.span(index, self._tile_size, self._overlap)
            for index, axis in zip(address, axes)
        ]
        regions = [axis.source(*span) for axis, span in zip(axes, spans)]
        location = (regions[0][0], regions[1][0])
        region_size = (regions[0][1], regions[1][1])
        tile_size = (spans[0][1], spans[1][1])
        return (location, zoom.source_level, region_size), tile_size

    def get_tile(self, level: int, address: tuple[int, int]) -> Image.Image:
        """Render a tile.

        Parameters
        ----------
        level: int
            Deep Zoom level
        address: Tuple[int, int]
            (column, row) of the tile in the level

        Returns
        -------
        PIL.Image.Image
            RGB tile on the slide's background colour, with the slide's ICC
            profile in ``info["icc_profile"]`` if it has one

        Raises
        ------
        ValueError
            When the level or the address is out of range

        """
        arguments, size = self._locate(level, address)
        region = self._slide.read_region(*arguments)
        tile = render(region, self._slide.properties, size)
        profile = region.info.get("icc_profile")
        if profile is not None:
            tile.info["icc_profile"] = profile
        return tile

    def get_tile_coordinates(
        self, level: int, address: tuple[int, int]
    ) -> tuple[_Pair, int, _Pair]:
        """Return the ``read_region`` arguments that a tile is rendered from.

        Parameters
        ----------
        level: int
            Deep Zoom level
        address: Tuple[int, int]
            (column, row) of the tile in the level

        Returns
        -------
        Tuple[Tuple[int, int], int, Tuple[int, int]]
            Level 0 location, slide level and size of the region

        """
        return self._locate(level, address)[0]

    def get_tile_dimensions(self, level: int, address: tuple[int, int]) -> _Pair:
        """Return the size of a tile.

        Parameters
        ----------
        level: int
            Deep Zoom level
        address: Tuple[int, int]
            (column, row) of the tile in the level

        Returns
        -------
        Tuple[int, int]
            (width, height) in pixels, overlap included

        """
        return self._locate(level, address)[1]

    def get_dzi(self, format: str) -> str:
        """Return the XML metadata of the ``.dzi`` file.

        Parameters
        ----------
        format: str
            Format of the tiles (``"png"`` or ``"jpeg"``)

        Returns
        -------
        str
            XML document

        """
        width, height = self.level_dimensions[-1]
        image = Element(
            "Image",
            TileSize=str(self._tile_size),
            Overlap=str(self._overlap),
            Format=format,
            xmlns=_DZI_NAMESPACE,
        )
        SubElement(image, "Size", Width=str(width), Height=str(height))
        return tostring(image, encoding="unicode")
