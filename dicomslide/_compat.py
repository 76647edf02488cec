"""Fast paths that rely on how a dependency behaves beyond its documented API.

Each fast path is checked once, on a small example, when this module is
imported; if the dependency does not behave as the fast path needs (a newer
release changed it), the public-API fallback is used instead and the result is
the same, only slower. The tests run both paths of each.

Pillow: :func:`rgba_image` wraps an RGBA NumPy array in a PIL image without a
copy (``Image.frombuffer``, public), and, on the fast path, also lets
``numpy.asarray(image)`` return a read-only view of the array instead of the
copy that Pillow's ``__array_interface__`` makes through ``tobytes`` (about
1.4 ms per megapixel: a tenth of a facade read of 1024 x 1024 pixels). It does
so by giving the image a subclass whose ``__array_interface__`` points at the
array while Pillow still treats the image as a read-only map of that memory
(its ``readonly`` flag). Pillow copies such an image's pixels before anything
writes to it; from then on the subclass defers to Pillow.

Pillow: :func:`rgb_paster` writes RGB pixels into an RGBA NumPy array with an
alpha of 255. The fast path maps the array as a Pillow image once
(``Image.core.map_buffer``, what ``Image.frombuffer`` calls) and unpacks each
frame's pixels into their rectangle of it with Pillow's ``raw`` decoder
(``Image.core.raw_decoder``, what ``Image.Image.frombytes`` calls): the RGB
unpacker writes each pixel as its three samples and an alpha of 255 in one
pass, without the GIL, about three times the cost of a plain copy and ten
times faster than NumPy's copy into three of four bands. The public methods
(``Image.frombuffer`` and ``Image.Image.frombytes``) decode only into a whole
image, so that each paste would build two images: some 6 microseconds more a
frame, several percent of a small read of 240-pixel tiles. Pillow 10.0 to 13.0
behave alike here. The fallback is NumPy.

dicomweb-client: :func:`client_session` returns the ``requests.Session`` a
user-built ``DICOMwebClient`` sends with (its ``_session`` attribute), so that
dicomslide's own requests (several frames per request, media-type
negotiation, server URIs re-based onto the client's origin) go with the
user's authentication, headers and certificates; :func:`replace_client_session`
gives the client a fresh session in a forked process. dicomweb-client has
no public accessor. Clients that dicomslide builds from a URL are given their
session by dicomslide and never need this. The fallback returns no session,
and dicomslide then reads through the client's public methods
(``retrieve_instance_frames``, ``retrieve_bulkdata``): the same pixels, with
one request per call that the client makes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import requests
from PIL import Image

__all__ = [
    "PILLOW_RGB_PASTE",
    "client_session",
    "replace_client_session",
    "rgb_paster",
    "rgba_image",
]

_logger = logging.getLogger(__name__)

#: Pillow's C module (``PIL.Image.core``), which Pillow does not export
_PILLOW_CORE: Any = getattr(Image, "core", None)


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


#: Pastes rows [r0, r1) and columns [c0, c1) of a C-contiguous uint8 RGB frame
#: at (row, column) of the array a paster was made for
Paster = Callable[[np.ndarray, tuple[int, int], tuple[int, int], tuple[int, int]], None]


def _numpy_paster(out: np.ndarray) -> Paster:
    """The public-API path: NumPy copies the bands, then sets alpha."""

    def paste(
        frame: np.ndarray,
        rows: tuple[int, int],
        columns: tuple[int, int],
        origin: tuple[int, int],
    ) -> None:
        (f_r0, f_r1), (f_c0, f_c1) = rows, columns
        row, column = origin
        dest = out[row : row + f_r1 - f_r0, column : column + f_c1 - f_c0]
        dest[..., :3] = frame[f_r0:f_r1, f_c0:f_c1]
        dest[..., 3] = 255

    return paste


def _pillow_paster(out: np.ndarray) -> Paster:
    """The fast path: Pillow's unpacker writes into the mapped array."""
    rows, columns = out.shape[:2]
    image: Any = _PILLOW_CORE.map_buffer(out, (columns, rows), "raw", 0, ("RGBX", 0, 1))

    def paste(
        frame: np.ndarray,
        rows: tuple[int, int],
        columns: tuple[int, int],
        origin: tuple[int, int],
    ) -> None:
        (f_r0, f_r1), (f_c0, f_c1) = rows, columns
        row, column = origin
        line = frame.strides[0]
        decoder = _PILLOW_CORE.raw_decoder("RGBX", "RGB", line, 1)
        decoder.setimage(image, (column, row, column + f_c1 - f_c0, row + f_r1 - f_r0))
        decoder.decode(frame.data.cast("B")[f_r0 * line + f_c0 * 3 :])

    return paste


def _pillow_paster_works() -> bool:
    """Whether the fast path writes what the fallback writes, in place."""
    try:
        # samples that differ from pixel to pixel (no numpy.random: slow import)
        frame = (np.arange(90, dtype=np.uint8) * 37).reshape(5, 6, 3)
        expected = (np.arange(168, dtype=np.uint8) * 11 + 5).reshape(6, 7, 4)
        out = expected.copy()
        fast, public = _pillow_paster(out), _numpy_paster(expected)
        for rows, columns, origin in (
            ((0, 5), (0, 6), (0, 0)),
            ((1, 5), (2, 6), (2, 3)),  # ends at the array's last row
        ):
            public(frame, rows, columns, origin)
            fast(frame, rows, columns, origin)
        return bool(np.array_equal(out, expected))
    except Exception as error:  # any change in Pillow: take the public path
        _logger.debug("Pillow RGB paste fast path unavailable: %s", error)
        return False


#: Whether :func:`rgb_paster` takes the fast path with the installed Pillow
PILLOW_RGB_PASTE: bool = _pillow_paster_works()

_paster: Callable[[np.ndarray], Paster] = (
    _pillow_paster if PILLOW_RGB_PASTE else _numpy_paster
)


def rgb_paster(out: np.ndarray) -> Paster:
    """A function that pastes RGB frames into an RGBA array, alpha 255.

    Parameters
    ----------
    out: numpy.ndarray
        C-contiguous uint8 array of shape (rows, columns, 4), not empty

    Returns
    -------
    Callable[[numpy.ndarray, Tuple[int, int], Tuple[int, int], Tuple[int, int]], None]
        ``paste(frame, (r0, r1), (c0, c1), (row, column))`` writes rows
        [r0, r1) and columns [c0, c1) of a C-contiguous uint8 RGB frame at
        (row, column) of `out` (the part must fit), with an alpha of 255

    """  # noqa: E501
    return _paster(out)


_SESSION_ATTRIBUTE = "_session"
#: Whether user-built DICOMweb clients expose their session (set by tests to
#: run the public fallback).
CLIENT_SESSION = True


def client_session(client: object) -> requests.Session | None:
    """Return the session a user-built ``DICOMwebClient`` sends requests with.

    Parameters
    ----------
    client : dicomweb_client.DICOMwebClient
        A client that dicomslide did not build.

    Returns
    -------
    requests.Session or None
        The client's session, or ``None`` when it cannot be reached (then use
        the client's public methods).
    """
    if not CLIENT_SESSION:
        return None
    session = getattr(client, _SESSION_ATTRIBUTE, None)
    return session if isinstance(session, requests.Session) else None


def replace_client_session(client: object, session: requests.Session) -> None:
    """Let a user-built ``DICOMwebClient`` send with `session` from now on.

    Parameters
    ----------
    client : dicomweb_client.DICOMwebClient
        A client whose session :func:`client_session` returned.
    session : requests.Session
        Its replacement (in a forked process: one no other process uses).
    """
    if CLIENT_SESSION and isinstance(
        getattr(client, _SESSION_ATTRIBUTE, None), requests.Session
    ):
        setattr(client, _SESSION_ATTRIBUTE, session)
