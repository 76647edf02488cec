"""Fast paths that rely on how a dependency behaves beyond its documented API.

Each fast path is checked once, on a small example, when this module is
imported; if the dependency does not behave as the fast path needs (a newer
release changed it), the public-API fallback is used instead and the result is
the same, only slower.

Pillow: :func:`rgba_image` wraps an RGBA NumPy array in a PIL image without a
copy (``Image.frombuffer``, public), and, on the fast path, also lets
``numpy.asarray(image)`` return a read-only view of the array instead of the
copy that Pillow's ``__array_interface__`` makes through ``tobytes`` (about
1.4 ms per megapixel: a tenth of a facade read of 1024 x 1024 pixels). It does
so by giving the image a subclass whose ``__array_interface__`` points at the
array while Pillow still treats the image as a read-only map of that memory
(its ``readonly`` flag). Pillow copies such an image's pixels before anything
writes to it; from then on the subclass defers to Pillow.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

import numpy as np
from PIL import Image

__all__ = ["rgba_image"]

_logger = logging.getLogger(__name__)


class _ArrayImage(Image.Image):
    """A PIL image over the memory of a NumPy array that NumPy views directly."""

    _array: np.ndarray | None = None

    @property
    def __array_interface__(self) -> dict[str, Any]:
        array = self._array
        if array is None or not self.readonly:  # closed, or Pillow's own copy
            return super().__array_interface__
        interface = dict(array.__array_interface__)
        interface["data"] = (interface["data"][0], True)  # read-only
        return interface

    def close(self) -> None:
        self._array = None
        super().close()


def _frombuffer(rgba: np.ndarray) -> Image.Image:
    height, width = rgba.shape[:2]
    return Image.frombuffer("RGBA", (width, height), rgba, "raw", "RGBA", 0, 1)


def _public_rgba_image(rgba: np.ndarray) -> Image.Image:
    """The public-API path: ``numpy.asarray`` of the image copies."""
    return _frombuffer(np.ascontiguousarray(rgba))


def _viewable_rgba_image(rgba: np.ndarray) -> Image.Image:
    """The fast path: ``numpy.asarray`` of the image is a view of `rgba`."""
    array = np.ascontiguousarray(rgba)
    image = _frombuffer(array)
    image.__class__ = _ArrayImage  # the same object, viewable without a copy
    cast(_ArrayImage, image)._array = array
    return image


def _view_is_safe() -> bool:
    """Whether the fast path behaves: a read-only view, and copied on write."""
    try:
        array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
        image = _viewable_rgba_image(array)
        view = np.asarray(image)
        if not np.shares_memory(view, array) or view.flags.writeable:
            return False
        image.putpixel((0, 0), (200, 201, 202, 203))
        written = np.asarray(image)
        return (
            int(array[0, 0, 0]) == 0
            and written[0, 0].tolist() == [200, 201, 202, 203]
            and not np.shares_memory(written, array)
            and written[1, 2].tolist() == array[1, 2].tolist()
        )
    except Exception as error:  # any change in Pillow: take the public path
        _logger.debug("Pillow view fast path unavailable: %s", error)
        return False


#: Whether :func:`rgba_image` takes the fast path with the installed Pillow.
VIEW_FAST_PATH: bool = _view_is_safe()

_rgba_image: Callable[[np.ndarray], Image.Image] = (
    _viewable_rgba_image if VIEW_FAST_PATH else _public_rgba_image
)


def rgba_image(rgba: np.ndarray) -> Image.Image:
    """An RGBA image that shares the memory of an (h, w, 4) uint8 array.

    The array must not change while the image is in use; Pillow copies the
    pixels before anything writes to the image.

    Parameters
    ----------
    rgba: numpy.ndarray
        uint8 array of shape (rows, columns, 4), straight alpha

    Returns
    -------
    PIL.Image.Image
        RGBA image; ``numpy.asarray`` of it is a read-only view of `rgba` on
        the fast path, a copy otherwise

    """
    return _rgba_image(rgba)
