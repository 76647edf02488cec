"""Pictures of a slide for display: what thumbnails and Deep Zoom tiles share.

:meth:`dicomslide.openslide.AbstractSlide.get_thumbnail` and
:meth:`dicomslide.openslide.deepzoom.DeepZoomGenerator.get_tile` both turn a
region that ``read_region`` returned (straight-alpha RGBA, transparent where the
slide has no pixels) into an opaque RGB picture: :func:`render` lays the region
on the slide's background colour and shrinks it to fit a box with Pillow's
LANCZOS filter, keeping its aspect ratio, as openslide-python's pictures come
out.
"""

from __future__ import annotations

from collections.abc import Mapping

from PIL import Image

from dicomslide.openslide.properties import PROPERTY_NAME_BACKGROUND_COLOR

__all__ = ["render"]

#: Background of a slide that names none: white, like glass under a lamp.
_WHITE = "ffffff"


def render(
    region: Image.Image, properties: Mapping[str, str], box: tuple[int, int]
) -> Image.Image:
    """Lay a region on the slide's background colour and fit it into a box.

    Parameters
    ----------
    region: PIL.Image.Image
        Straight-alpha RGBA region of the slide
    properties: Mapping[str, str]
        Properties of the slide; ``openslide.background-color`` (``RRGGBB``)
        is the background, white if it is absent
    box: Tuple[int, int]
        (width, height) that the picture must fit in; a smaller region is not
        enlarged

    Returns
    -------
    PIL.Image.Image
        RGB picture (no ICC profile attached)

    Raises
    ------
    ValueError
        When the background colour is not a colour

    """
    colour = "#" + properties.get(PROPERTY_NAME_BACKGROUND_COLOR, _WHITE)
    picture = Image.new("RGB", region.size, colour)
    picture.paste(region, (0, 0), region)  # its alpha band is the mask
    picture.thumbnail(box, Image.Resampling.LANCZOS)
    return picture
