"""Opaque RGBA output: 8-bit grey or RGB frames pasted into RGBA arrays.

What the OpenSlide facade shows: every pixel a frame covers gains an alpha of
255 as it is pasted, the pixels no frame covers keep the array's fill (0:
transparent). RGB frames go through :func:`dicomslide._compat.rgb_paster`
(Pillow's unpacker, one pass); a grey sample becomes a word of three equal
samples and an alpha of 255 in one NumPy multiplication.
"""

from __future__ import annotations

import numpy as np

from dicomslide import _compat


class OpaqueRGBA:
    """An RGBA array that 8-bit grey or RGB frames are pasted into, alpha 255.

    Parameters
    ----------
    out: numpy.ndarray
        uint8 array of shape (rows, columns, 4)

    """

    def __init__(self, out: np.ndarray) -> None:
        self.out = out
        self._rgb: _compat.Paster | None = None
        if out.dtype == np.uint8 and out.flags.c_contiguous and out.size:
            self._rgb = _compat.rgb_paster(out)

    def paste(
        self,
        frame: np.ndarray,
        rows: tuple[int, int],
        columns: tuple[int, int],
        origin: tuple[int, int],
    ) -> None:
        """Paste rows [r0, r1) and columns [c0, c1) of a frame at `origin`.

        Parameters
        ----------
        frame: numpy.ndarray
            uint8 array of shape (rows, columns, 1) or (rows, columns, 3)
        rows: Tuple[int, int]
            First and one-past-last row of the frame to paste
        columns: Tuple[int, int]
            First and one-past-last column of the frame to paste
        origin: Tuple[int, int]
            Row and column of the array where the part goes

        """
        if self._rgb is not None and frame.shape[2] == 3 and frame.flags.c_contiguous:
            self._rgb(frame, rows, columns, origin)
            return
        (f_r0, f_r1), (f_c0, f_c1) = rows, columns
        row, column = origin
        dest = self.out[row : row + f_r1 - f_r0, column : column + f_c1 - f_c0]
        pixels = frame[f_r0:f_r1, f_c0:f_c1]
        if pixels.shape[2] == 1 and dest.strides[1:] == (4, 1):
            # a grey pixel times 0x010101 is a word of three equal samples
            words = dest.view("<u4")[..., 0]
            np.multiply(pixels[..., 0], np.uint32(0x010101), out=words)
            words |= np.uint32(0xFF000000)
            return
        dest[..., :3] = pixels
        dest[..., 3] = 255
