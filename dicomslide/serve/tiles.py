"""Deep Zoom tiles of one view of a slide: rendered, or sent as stored.

A :class:`Layer` is what the viewer shows as one Deep Zoom image: the slide's
main view (channel 0, focal plane 0, read through the OpenSlide facade exactly
as :class:`~dicomslide.openslide.deepzoom.DeepZoomGenerator` reads it), another
optical path or focal plane, or an overlay of a segment or parametric map
(:class:`~dicomslide.serve.layers.ChannelSlide`).

Native tiles: a JPEG tile of the main view is the stored frame itself, sent
without decoding and re-encoding, when the Deep Zoom level is a stored level
(same size, downsample exactly its power of two), the tile size is the frame
size, there is no overlap, the tile is a whole interior tile, and the frame is
baseline JPEG in YBR_FULL_422, YBR_FULL or MONOCHROME2. Such a tile holds the
pixels the generator renders. Stored frames are fetched by blocks
(:mod:`dicomslide.serve.frames`). Colours: every tile holds the stored pixels, as
the generator's tiles and the stored frames do, and carries no ICC profile (a
rendered tile would otherwise differ from a native one in how browsers show
it). Which path each tile took is counted in the slide's
:attr:`~dicomslide.Slide.counters` (``tiles_native``, ``tiles_rendered``).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

from PIL import Image

from dicomslide import uids
from dicomslide.openslide.abstract import AbstractSlide
from dicomslide.openslide.deepzoom import DeepZoomGenerator
from dicomslide.openslide.dicom.levels import Level
from dicomslide.serve.frames import EncodedFrames
from dicomslide.slide import Slide

__all__ = ["FORMATS", "Layer", "TileOptions"]

logger = logging.getLogger(__name__)

#: Media type of each tile format
FORMATS = {"jpeg": "image/jpeg", "png": "image/png"}

#: Transfer syntax of the frames that can be sent as they are: JPEG baseline
#: Photometric interpretations a browser decodes a baseline JPEG frame as
_NATIVE_PHOTOMETRIC = frozenset({"YBR_FULL_422", "YBR_FULL", "MONOCHROME2"})
#: Quality of rendered JPEG tiles
JPEG_QUALITY = 90


@dataclass(frozen=True)
class TileOptions:
    """The Deep Zoom options a layer's DZI declares."""

    tile_size: int = 254
    overlap: int = 1


class Layer:
    """One Deep Zoom image of a slide.

    Parameters
    ----------
    slide: dicomslide.Slide
        Slide, which counts the tiles sent
    source: dicomslide.openslide.AbstractSlide
        What the tiles are read from
    options: TileOptions
        Tile size and overlap
    tile_format: str
        Format the DZI declares (``"jpeg"`` or ``"png"``)
    overlay: bool, optional
        Whether tiles are transparent where the layer has nothing (overlays),
        rather than laid on the slide's background
    levels: Union[Tuple[dicomslide.openslide.dicom.levels.Level, ...], None], optional
        Stored levels whose frames may be sent as they are (the main view)

    """

    def __init__(
        self,
        slide: Slide,
        source: AbstractSlide,
        options: TileOptions,
        tile_format: str,
        overlay: bool = False,
        levels: tuple[Level, ...] | None = None,
    ) -> None:
        self.slide = slide
        self.source = source
        self.options = options
        self.format = tile_format
        self.overlay = overlay
        self.generator = DeepZoomGenerator(
            source, tile_size=options.tile_size, overlap=options.overlap
        )
        self._levels = levels
        self._frames = EncodedFrames()

    @property
    def dzi(self) -> str:
        """str: the DZI document"""
        return self.generator.get_dzi(self.format)

    def check(self, level: int, column: int, row: int) -> None:
        """Raise ValueError unless the layer has this tile."""
        self.generator.get_tile_dimensions(level, (column, row))

    def _native_level(self, level: int) -> Level | None:
        """The stored level whose frames are the tiles of a Deep Zoom level."""
        if self._levels is None or self.options.overlap != 0:
            return None
        generator = self.generator
        source = self.source.get_best_level_for_downsample(
            2 ** (generator.level_count - 1 - level)
        )
        stored = self._levels[source]
        size = self.options.tile_size
        if (
            generator.level_dimensions[level] != (stored.width, stored.height)
            or stored.downsample != 2 ** (generator.level_count - 1 - level)
            or (stored.tile_width, stored.tile_height) != (size, size)
        ):
            return None
        return stored

    def native_tile(
        self, level: int, column: int, row: int, fetch: bool = True
    ) -> bytes | None:
        """The stored JPEG frame that is this tile, if there is one.

        Parameters
        ----------
        level: int
            Deep Zoom level
        column: int
            Tile column
        row: int
            Tile row
        fetch: bool, optional
            Whether to fetch the frame when it is not cached (see
            :meth:`dicomslide.serve.frames.EncodedFrames.get`)

        Returns
        -------
        Union[bytes, None]
            The frame as stored; None when the tile must be rendered

        Raises
        ------
        KeyError
            When `fetch` is False and the frame is not cached

        """
        stored = self._native_level(level)
        if stored is None or self._levels is None:
            return None
        metadata = stored.image.metadata
        if str(metadata.get("PhotometricInterpretation", "")) not in (
            _NATIVE_PHOTOMETRIC
        ):
            return None
        # an edge tile too: its frame comes with its block, decoded for
        # rendering, instead of in a request of its own
        encoded = self._frames.get(
            self._levels.index(stored),
            stored.store,
            stored.channel,
            stored.plane,
            (row, column),
            fetch,
        )
        size = self.options.tile_size
        if (column + 1) * size > stored.width or (row + 1) * size > stored.height:
            return None  # an edge tile
        if encoded is None or encoded[1] != uids.JPEGBaseline8Bit:
            return None
        return encoded[0]

    def cached_tile(
        self, level: int, column: int, row: int, tile_format: str
    ) -> bytes | None:
        """The tile if it is given without waiting: a native tile whose frame
        is cached.

        Parameters
        ----------
        level: int
            Deep Zoom level
        column: int
            Tile column
        row: int
            Tile row
        tile_format: str
            ``"jpeg"`` or ``"png"``

        Returns
        -------
        Union[bytes, None]
            The tile; None when it must be made by :meth:`tile`

        """
        if tile_format != "jpeg":
            return None
        try:
            data = self.native_tile(level, column, row, fetch=False)
        except KeyError:
            return None
        if data is not None:
            self.slide.counters.add(tiles_native=1)
        return data

    def render(self, level: int, column: int, row: int) -> Image.Image:
        """Render a tile.

        Parameters
        ----------
        level: int
            Deep Zoom level
        column: int
            Tile column
        row: int
            Tile row

        Returns
        -------
        PIL.Image.Image
            RGB tile (the generator's), or RGBA for an overlay

        """
        address = (column, row)
        if not self.overlay:
            tile = self.generator.get_tile(level, address)
            tile.info.pop("icc_profile", None)
            return tile
        location, source_level, size = self.generator.get_tile_coordinates(
            level, address
        )
        region = self.source.read_region(location, source_level, size)
        region.thumbnail(
            self.generator.get_tile_dimensions(level, address),
            Image.Resampling.LANCZOS,
        )
        return region

    def tile(self, level: int, column: int, row: int, tile_format: str) -> bytes:
        """The encoded tile, native when it can be.

        Parameters
        ----------
        level: int
            Deep Zoom level
        column: int
            Tile column
        row: int
            Tile row
        tile_format: str
            ``"jpeg"`` or ``"png"``

        Returns
        -------
        bytes
            The tile

        Raises
        ------
        ValueError
            When the layer has no such tile

        """
        self.check(level, column, row)
        if tile_format == "jpeg":
            data = self.native_tile(level, column, row)
            if data is not None:
                self.slide.counters.add(tiles_native=1)
                return data
        picture = self.render(level, column, row)
        buffer = io.BytesIO()
        if tile_format == "jpeg":
            picture.convert("RGB").save(buffer, "JPEG", quality=JPEG_QUALITY)
        else:
            picture.save(buffer, "PNG", compress_level=1)
        self.slide.counters.add(tiles_rendered=1)
        return buffer.getvalue()
