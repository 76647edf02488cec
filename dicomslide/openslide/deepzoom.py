"""Deep Zoom tiles and metadata of any slide.

:class:`DeepZoomGenerator` cuts a slide (an :class:`~dicomslide.openslide.OpenSlide`
of any backend, an :class:`~dicomslide.openslide.ImageSlide`, or any other
:class:`~dicomslide.openslide.AbstractSlide`) into the tiles of a Deep Zoom
image, with the arithmetic of openslide-python's ``openslide.deepzoom``: the
same levels, tile grid, regions read and pixels.

Four coordinate frames are involved: tile column and row within a Deep Zoom
level, pixels of a Deep Zoom level, pixels of the slide level read, and pixels
of slide level 0.
"""

from __future__ import annotations

import math
from io import BytesIO
from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element, ElementTree, SubElement

from PIL import Image

import dicomslide.openslide as openslide

if TYPE_CHECKING:
    from dicomslide.openslide import AbstractSlide

__all__ = ["DeepZoomGenerator"]

_DZI_NAMESPACE = "http://schemas.microsoft.com/deepzoom/2008"

_Pair = tuple[int, int]


def _deep_zoom_dimensions(base: _Pair) -> tuple[_Pair, ...]:
    """Sizes of the Deep Zoom levels, from 1x1 up to `base`.

    Each level halves the next larger one, rounding up, down to one pixel.
    """
    sizes = [base]
    width, height = base
    while width > 1 or height > 1:
        width, height = max(1, math.ceil(width / 2)), max(1, math.ceil(height / 2))
        sizes.append((width, height))
    return tuple(reversed(sizes))


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

    BOUNDS_OFFSET_PROPS = (
        openslide.PROPERTY_NAME_BOUNDS_X,
        openslide.PROPERTY_NAME_BOUNDS_Y,
    )
    BOUNDS_SIZE_PROPS = (
        openslide.PROPERTY_NAME_BOUNDS_WIDTH,
        openslide.PROPERTY_NAME_BOUNDS_HEIGHT,
    )

    def __init__(
        self,
        osr: AbstractSlide,
        tile_size: int = 254,
        overlap: int = 1,
        limit_bounds: bool = False,
    ) -> None:
        self._osr = osr
        self._tile_size = tile_size
        self._overlap = overlap
        self._limit_bounds = limit_bounds
        properties = osr.properties

        # Slide level sizes (of the non-empty region if bounds are limited) and
        # the level 0 position of their origin.
        if limit_bounds:
            self._l0_offset: _Pair = (
                int(properties.get(self.BOUNDS_OFFSET_PROPS[0], 0)),
                int(properties.get(self.BOUNDS_OFFSET_PROPS[1], 0)),
            )
            scale = [
                int(properties.get(name, full)) / full
                for name, full in zip(
                    self.BOUNDS_SIZE_PROPS, osr.dimensions, strict=True
                )
            ]
            self._l_dimensions: tuple[_Pair, ...] = tuple(
                (math.ceil(width * scale[0]), math.ceil(height * scale[1]))
                for width, height in osr.level_dimensions
            )
        else:
            self._l0_offset = (0, 0)
            self._l_dimensions = tuple(osr.level_dimensions)
        self._l0_dimensions = self._l_dimensions[0]

        # Deep Zoom levels and their tile grids.
        self._z_dimensions = _deep_zoom_dimensions(self._l0_dimensions)
        self._t_dimensions = tuple(
            (math.ceil(width / tile_size), math.ceil(height / tile_size))
            for width, height in self._z_dimensions
        )
        self._dz_levels = len(self._z_dimensions)

        # For each Deep Zoom level: its downsample from level 0, the slide
        # level to read, and the downsample from that slide level.
        l0_z_downsamples = [
            2 ** (self._dz_levels - dz_level - 1) for dz_level in range(self._dz_levels)
        ]
        self._slide_from_dz_level = tuple(
            osr.get_best_level_for_downsample(factor) for factor in l0_z_downsamples
        )
        self._l0_l_downsamples = tuple(osr.level_downsamples)
        self._l_z_downsamples = tuple(
            factor / self._l0_l_downsamples[slide_level]
            for factor, slide_level in zip(
                l0_z_downsamples, self._slide_from_dz_level, strict=True
            )
        )

        background = properties.get(openslide.PROPERTY_NAME_BACKGROUND_COLOR, "ffffff")
        self._bg_color = f"#{background}"

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self._osr!r}, "
            f"tile_size={self._tile_size!r}, overlap={self._overlap!r}, "
            f"limit_bounds={self._limit_bounds!r})"
        )

    @property
    def level_count(self) -> int:
        """int: number of Deep Zoom levels"""
        return self._dz_levels

    @property
    def level_tiles(self) -> tuple[_Pair, ...]:
        """Tuple[Tuple[int, int], ...]: (columns, rows) of tiles of every level"""
        return self._t_dimensions

    @property
    def level_dimensions(self) -> tuple[_Pair, ...]:
        """Tuple[Tuple[int, int], ...]: (width, height) in pixels of every level"""
        return self._z_dimensions

    @property
    def tile_count(self) -> int:
        """int: number of tiles of all levels"""
        return sum(columns * rows for columns, rows in self._t_dimensions)

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
        read_args, z_size = self._get_tile_info(level, address)
        region = self._osr.read_region(*read_args)
        profile = region.info.get("icc_profile")
        background = Image.new("RGB", region.size, self._bg_color)
        tile = Image.composite(region, background, region)
        if tile.size != z_size:
            tile.thumbnail(z_size, Image.Resampling.LANCZOS)
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
        return self._get_tile_info(level, address)[0]

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
        return self._get_tile_info(level, address)[1]

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
        image = Element(
            "Image",
            TileSize=str(self._tile_size),
            Overlap=str(self._overlap),
            Format=format,
            xmlns=_DZI_NAMESPACE,
        )
        width, height = self._l0_dimensions
        SubElement(image, "Size", Width=str(width), Height=str(height))
        buffer = BytesIO()
        ElementTree(image).write(buffer, encoding="UTF-8")
        return buffer.getvalue().decode("UTF-8")

    def _get_tile_info(
        self, dz_level: int, address: tuple[int, int]
    ) -> tuple[tuple[_Pair, int, _Pair], _Pair]:
        """Region to read for a tile, and the size of the tile."""
        if dz_level < 0 or dz_level >= self._dz_levels:
            raise ValueError("Invalid level")
        grid = self._t_dimensions[dz_level]
        for index, count in zip(address, grid, strict=True):
            if index < 0 or index >= count:
                raise ValueError("Invalid address")
        slide_level = self._slide_from_dz_level[dz_level]
        l_z_downsample = self._l_z_downsamples[dz_level]
        l0_l_downsample = self._l0_l_downsamples[slide_level]

        location: list[int] = []
        l_size: list[int] = []
        z_size: list[int] = []
        for axis in range(2):
            index, count = address[axis], grid[axis]
            # Overlap on the edges that border other tiles.
            overlap_before = self._overlap * int(index != 0)
            overlap_after = self._overlap * int(index != count - 1)
            z_start = self._tile_size * index
            z_extent = (
                min(self._tile_size, self._z_dimensions[dz_level][axis] - z_start)
                + overlap_before
                + overlap_after
            )
            # Round the location down and the size up.
            l_start = l_z_downsample * (z_start - overlap_before)
            location.append(int(l0_l_downsample * l_start + self._l0_offset[axis]))
            l_limit = self._l_dimensions[slide_level][axis]
            l_size.append(
                int(
                    min(
                        math.ceil(l_z_downsample * z_extent),
                        l_limit - math.ceil(l_start),
                    )
                )
            )
            z_size.append(z_extent)
        return (
            ((location[0], location[1]), slide_level, (l_size[0], l_size[1])),
            (z_size[0], z_size[1]),
        )
