"""Fast paths that rely on how a dependency behaves beyond its documented API.

Each fast path is checked once, on a small example, when this module is
imported; if the dependency does not behave as the fast path needs (a release
changed it), the public-API fallback is used instead and the result is the
same, only slower. The tests run both.

Pillow: :func:`paste_rgb_opaque` writes RGB pixels into an RGBA NumPy array
with an alpha of 255. The fast path maps the target rectangle of the array as
a Pillow image (``Image.frombuffer``, public) and loads the RGB pixels into it
(``Image.Image.frombytes``, public): Pillow's RGB unpacker writes each pixel
as its three samples and an alpha of 255 in one pass, about three times the
cost of a plain copy and ten times faster than NumPy's copy into three of four
bands. That the pixels land in the array relies on ``frombytes`` writing into
the memory that ``frombuffer`` mapped (the image is marked read-only, which
the other methods that write honour by copying first). The fallback is NumPy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from PIL import Image

__all__ = ["PILLOW_RGB_PASTE", "paste_rgb_opaque"]

_logger = logging.getLogger(__name__)

#: Signature of :func:`paste_rgb_opaque`
Paste = Callable[
    [np.ndarray, np.ndarray, tuple[int, int], tuple[int, int], tuple[int, int]],
    None,
]


def _numpy_paste(
    out: np.ndarray,
    frame: np.ndarray,
    rows: tuple[int, int],
    columns: tuple[int, int],
    origin: tuple[int, int],
) -> None:
    """The public-API path: NumPy copies the bands, then sets alpha."""
    (f_r0, f_r1), (f_c0, f_c1) = rows, columns
    row, column = origin
    dest = out[row : row + f_r1 - f_r0, column : column + f_c1 - f_c0]
    dest[..., :3] = frame[f_r0:f_r1, f_c0:f_c1]
    dest[..., 3] = 255


def _pillow_paste(
    out: np.ndarray,
    frame: np.ndarray,
    rows: tuple[int, int],
    columns: tuple[int, int],
    origin: tuple[int, int],
) -> None:
    """The fast path: Pillow unpacks RGB into the array's RGBX rectangle."""
    (f_r0, f_r1), (f_c0, f_c1) = rows, columns
    row, column = origin
    height, width = f_r1 - f_r0, f_c1 - f_c0
    if height <= 0 or width <= 0:
        return
    if not (out.flags.c_contiguous and frame.flags.c_contiguous):
        _numpy_paste(out, frame, rows, columns, origin)
        return
    stride, line = out.strides[0], frame.strides[0]
    target = out.reshape(-1)
    source = frame.reshape(-1)[f_r0 * line + f_c0 * 3 :]
    start = row * stride + column * 4
    # Pillow maps `stride` bytes for every row, the last one included: a
    # rectangle whose last row ends before the array's does not fit, and its
    # last row is mapped on its own.
    mapped = height if len(target) - start >= height * stride else height - 1
    if mapped:
        image = Image.frombuffer(
            "RGBX", (width, mapped), target[start:], "raw", "RGBX", stride, 1
        )
        image.frombytes(source, "raw", "RGB", line, 1)
    if mapped < height:
        last = Image.frombuffer(
            "RGBX", (width, 1), target[start + mapped * stride :], "raw", "RGBX", 0, 1
        )
        last.frombytes(source[mapped * line :], "raw", "RGB", 0, 1)


def _pillow_paste_works() -> bool:
    """Whether the fast path writes what the fallback writes, in place."""
    try:
        rng = np.random.default_rng(7)
        frame = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
        expected = rng.integers(0, 256, (6, 7, 4), dtype=np.uint8)
        out = expected.copy()
        for rows, columns, origin in (
            ((0, 5), (0, 6), (0, 0)),
            ((1, 5), (2, 6), (2, 3)),  # ends at the array's last row
        ):
            _numpy_paste(expected, frame, rows, columns, origin)
            _pillow_paste(out, frame, rows, columns, origin)
        return bool(np.array_equal(out, expected))
    except Exception as error:  # any change in Pillow: take the public path
        _logger.debug("Pillow RGB paste fast path unavailable: %s", error)
        return False


#: Whether :func:`paste_rgb_opaque` takes the fast path with the installed Pillow
PILLOW_RGB_PASTE: bool = _pillow_paste_works()

_paste: Paste = _pillow_paste if PILLOW_RGB_PASTE else _numpy_paste


def paste_rgb_opaque(
    out: np.ndarray,
    frame: np.ndarray,
    rows: tuple[int, int],
    columns: tuple[int, int],
    origin: tuple[int, int],
) -> None:
    """Paste part of an RGB frame into an RGBA array, with an alpha of 255.

    Parameters
    ----------
    out: numpy.ndarray
        C-contiguous uint8 array of shape (rows, columns, 4)
    frame: numpy.ndarray
        C-contiguous uint8 array of shape (rows, columns, 3)
    rows: Tuple[int, int]
        First and one-past-last row of the frame to paste
    columns: Tuple[int, int]
        First and one-past-last column of the frame to paste
    origin: Tuple[int, int]
        Row and column of `out` where the part goes (it must fit)

    """
    _paste(out, frame, rows, columns, origin)
