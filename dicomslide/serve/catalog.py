"""The slides a server shows: stable ids, their layers, and what the pages say.

A :class:`SlideEntry` holds one :class:`dicomslide.Slide`, its id (from the
container identifier, the frame of reference and the series of its images,
so the same slide gets the same id in every run and from every source), and
its layers (:class:`~dicomslide.serve.tiles.Layer`), made on first use: the
main view ``c0z0``, every other optical path and focal plane ``c<channel>z<plane>``,
and an overlay per segment and parameter ``c<channel>z0``.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from collections.abc import Sequence
from typing import Any

from PIL import Image

from dicomslide.enum import ChannelTypes
from dicomslide.openslide import OpenSlide
from dicomslide.openslide.dicom.levels import levels_of
from dicomslide.openslide.library import OpenSlideError
from dicomslide.serve.colors import segment_color, segment_label
from dicomslide.serve.layers import ChannelSlide
from dicomslide.serve.tiles import Layer, TileOptions
from dicomslide.slide import Slide

__all__ = ["Catalog", "SlideEntry", "slide_id"]

logger = logging.getLogger(__name__)


def slide_id(slide: Slide) -> str:
    """The stable id of a slide in URLs.

    Parameters
    ----------
    slide: dicomslide.Slide
        Slide

    Returns
    -------
    str
        16 hexadecimal digits of a SHA-256 of the slide's container
        identifier, frame of reference UID and Series Instance UIDs

    """
    series = sorted(
        {
            str(image.metadata.SeriesInstanceUID)
            for channel in range(slide.num_channels)
            for plane in range(slide.num_focal_planes)
            for image in _images(slide, channel, plane)
        }
    )
    text = "\\".join([slide.container_id, slide.frame_of_reference_uid, *series])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _images(slide: Slide, channel: int, plane: int) -> Sequence[Any]:
    try:
        return slide.get_volume_images(channel, plane)
    except ValueError:
        return ()


def _png(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()


class SlideEntry:
    """One slide of the server.

    Parameters
    ----------
    slide: dicomslide.Slide
        Slide (opened with ``correct_color=False``: the viewer shows stored
        colours, as the Deep Zoom tiles hold them)
    native: bool, optional
        Whether stored JPEG frames are sent as tiles where they can be

    """

    def __init__(self, slide: Slide, native: bool = True) -> None:
        self.slide = slide
        self.id = slide_id(slide)
        self._native = native
        self._layers: dict[str, Layer] = {}
        self._lock = threading.Lock()
        try:
            self.facade: OpenSlide | None = OpenSlide(slide)
        except OpenSlideError as error:
            logger.info("slide %s: main view read per channel (%s)", self.id, error)
            self.facade = None
        self.options = self._options()

    def _options(self) -> TileOptions:
        """Tiles of the stored frames' size without overlap where frames are
        square and at most 1024 pixels, else OpenSlide's 254 and 1."""
        rows, columns, _ = self.slide.get_image(0).get_total_pixel_matrix().tile_shape
        if rows == columns and rows <= 1024 and self.facade is not None:
            return TileOptions(tile_size=rows, overlap=0)
        return TileOptions()

    @property
    def base_metadata(self) -> Any:
        """pydicom.Dataset: metadata of the largest image of the main view"""
        return self.slide.get_volume_images(0, 0)[0].metadata

    def layer_names(self) -> list[str]:
        """Names of the layers: views first, then overlays."""
        slide = self.slide
        views = [
            f"c{c}z{z}"
            for c in range(slide.num_channels)
            if slide.get_channel_type(c) == ChannelTypes.OPTICAL_PATH
            for z in range(slide.num_focal_planes)
        ]
        overlays = [
            f"c{c}z0"
            for c in range(slide.num_channels)
            if slide.get_channel_type(c) != ChannelTypes.OPTICAL_PATH
        ]
        return views + overlays

    def layer(self, name: str) -> Layer:
        """A layer by name, made on first use.

        Raises
        ------
        KeyError
            When the slide has no such layer

        """
        if name not in self.layer_names():
            raise KeyError(name)
        with self._lock:
            layer = self._layers.get(name)
            if layer is None:
                layer = self._make_layer(name)
                self._layers[name] = layer
        return layer

    def made_layer(self, name: str) -> Layer | None:
        """A layer by name if it was made already (never waits to make it)."""
        return self._layers.get(name)

    def _make_layer(self, name: str) -> Layer:
        channel, plane = (int(v) for v in name[1:].split("z"))
        if name == "c0z0" and self.facade is not None:
            levels = levels_of(self.slide) if self._native else None
            return Layer(self.slide, self.facade, self.options, "jpeg", levels=levels)
        source = ChannelSlide(self.slide, channel, plane)
        overlay = self.slide.get_channel_type(channel) != ChannelTypes.OPTICAL_PATH
        return Layer(
            self.slide,
            source,
            self.options,
            "png" if overlay else "jpeg",
            overlay=overlay,
        )

    def describe_layer(self, name: str) -> dict[str, Any]:
        """What the viewer says about a layer: its kind, label and colours."""
        slide = self.slide
        channel, plane = (int(v) for v in name[1:].split("z"))
        kind = slide.get_channel_type(channel)
        identifier = slide.get_channel_identifier(channel)
        metadata = slide.get_volume_images(channel)[0].metadata
        description: dict[str, Any] = {
            "name": name,
            "kind": kind.value,
            "channel": channel,
            "plane": plane,
            "identifier": identifier,
            "series": str(metadata.SeriesInstanceUID),
        }
        if kind == ChannelTypes.OPTICAL_PATH:
            description["label"] = f"optical path {identifier}"
            description["focus"] = slide.get_focal_plane_offset(plane)
        elif kind == ChannelTypes.SEGMENT:
            description["label"] = segment_label(metadata, identifier)
            description["color"] = "#{:02x}{:02x}{:02x}".format(
                *segment_color(metadata, identifier)
            )
        else:
            mappings = metadata.get("RealWorldValueMappingSequence") or [{}]
            label = mappings[0].get("LUTLabel", "") or f"parameter {identifier}"
            description["label"] = str(label)
        return description

    def value_range(self, name: str) -> tuple[float, float] | None:
        """The values a parametric map's colour map spans."""
        source = self.layer(name).source
        return source.value_range if isinstance(source, ChannelSlide) else None

    def thumbnail(self, size: int = 256) -> bytes:
        """A PNG thumbnail of the main view."""
        source = self.layer("c0z0").source
        picture = source.get_thumbnail((size, size))
        return _png(picture.convert("RGB"))

    def associated_name_exists(self, name: str) -> bool:
        """Whether the slide has a ``label`` or ``macro`` image."""
        return self.facade is not None and name in self.facade.associated_images

    def associated(self, name: str) -> bytes | None:
        """A PNG of the ``label`` or ``macro`` image, if the slide has one."""
        if self.facade is None or not self.associated_name_exists(name):
            return None
        return _png(self.facade.associated_images[name].convert("RGB"))


class Catalog:
    """The slides of a server, by id.

    Parameters
    ----------
    slides: Sequence[dicomslide.Slide]
        Slides to show
    native: bool, optional
        Whether stored JPEG frames are sent as tiles where they can be

    """

    def __init__(self, slides: Sequence[Slide], native: bool = True) -> None:
        self.entries: dict[str, SlideEntry] = {}
        for slide in slides:
            entry = SlideEntry(slide, native=native)
            self.entries.setdefault(entry.id, entry)

    def __getitem__(self, identifier: str) -> SlideEntry:
        return self.entries[identifier]

    def __iter__(self) -> Any:
        return iter(self.entries.values())

    def __len__(self) -> int:
        return len(self.entries)
