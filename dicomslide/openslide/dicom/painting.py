"""Fractional reads: how OpenSlide's cairo and pixman paint a region of a level.

OpenSlide paints the tiles of a level with cairo: tile by tile from the last
(bottom right) to the first, with the SATURATE operator, each translated by
its position minus ``location / downsample``. Where that translation is a whole
number of pixels the tiles are copied (:meth:`Level.read` does that). Where it
is not, pixman samples every tile with its bilinear filter in single-precision
floats (SATURATE needs pixman's float pipeline) and rounds down on the way back
to 8 bits; tile edges and the image edge (tiles are cleared past the image)
come out partly transparent. :func:`paint_area` reproduces this arithmetic
exactly, including the whole-pixel shift OpenSlide applies to negative
locations; the caller splits large reads into OpenSlide's areas of
:data:`AREA` pixels. The result is premultiplied RGBA.
"""

from __future__ import annotations

import math

import numpy as np

from dicomslide.openslide.dicom.levels import Level

__all__ = ["AREA", "paint_area"]

#: OpenSlide splits reads into areas of at most this many pixels on a side.
AREA = 4096

_F32 = np.float32
#: pixman's 1 / 255 in single precision (8-bit channel to float)
_INV255 = _F32(1.0) / _F32(255.0)


def _to_float(pixels: np.ndarray) -> np.ndarray:
    """8-bit channels to pixman's floats (``unorm_to_float``)."""
    return pixels.astype(_F32) * _INV255


def _saturate(dest: np.ndarray, source: np.ndarray) -> np.ndarray:
    """pixman's float SATURATE of premultiplied RGBA, back to 8 bits.

    Parameters
    ----------
    dest: numpy.ndarray
        Destination, uint8 (..., 4) premultiplied RGBA
    source: numpy.ndarray
        Source, float32 (..., 4) premultiplied RGBA in [0, 1]

    Returns
    -------
    numpy.ndarray
        New destination, uint8

    """
    d = _to_float(dest)
    sa = source[..., 3:4]
    da = d[..., 3:4]
    tiny = np.finfo(np.float32).tiny
    zero = (sa > -tiny) & (sa < tiny)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = (_F32(1.0) - da) / np.where(zero, _F32(1.0), sa)
    factor = np.where(factor < 0, _F32(0.0), np.where(factor > 1, _F32(1.0), factor))
    factor = np.where(zero, _F32(1.0), factor).astype(_F32)
    value = np.minimum(_F32(1.0), source * factor + d)
    value = np.clip(value, _F32(0.0), _F32(1.0))
    units: np.ndarray = (value * _F32(256.0)).astype(np.uint32)  # float_to_unorm
    units -= units >> 8
    return units.astype(np.uint8)


def _bilinear(
    tile: np.ndarray,
    first: tuple[int, int],
    count: tuple[int, int],
    fixed: tuple[int, int],
) -> np.ndarray:
    """Sample a tile as pixman's float bilinear fetcher does.

    Parameters
    ----------
    tile: numpy.ndarray
        Tile, uint8 (rows, columns, 4) premultiplied RGBA; outside it is transparent
    first: Tuple[int, int]
        First destination (row, column) to compute
    count: Tuple[int, int]
        Number of destination rows and columns
    fixed: Tuple[int, int]
        (y, x) translation from destination to tile coordinates in 16.16 fixed point

    Returns
    -------
    numpy.ndarray
        float32 (rows, columns, 4)

    """
    rows, columns = tile.shape[:2]

    def axis(start: int, n: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
        # pixel centre, translated, minus half a pixel: left tap and weight
        position = (np.arange(start, start + n, dtype=np.int64) << 16) + offset
        return position >> 16, (position & 0xFFFF).astype(_F32) / _F32(65536.0)

    y1, dy = axis(first[0], count[0], fixed[0])
    x1, dx = axis(first[1], count[1], fixed[1])
    padded = np.zeros((rows + 4, columns + 4, 4), dtype=_F32)
    padded[2:-2, 2:-2] = _to_float(tile)
    yi = np.clip(y1 + 2, 0, rows + 2)[:, None]
    xi = np.clip(x1 + 2, 0, columns + 2)[None, :]
    one = _F32(1.0)
    dxx = dx[None, :]
    dyy = dy[:, None]
    w_xy = (dxx * dyy)[..., None]
    w_xiy = (dxx * (one - dyy))[..., None]
    w_ixy = ((one - dxx) * dyy)[..., None]
    w_ixiy = ((one - dxx) * (one - dyy))[..., None]
    # bilinear_interpolation_float, summed in its order
    result: np.ndarray = padded[yi, xi] * w_ixiy + padded[yi, xi + 1] * w_xiy
    result = result + padded[yi + 1, xi] * w_ixy
    result = result + padded[yi + 1, xi + 1] * w_xy
    return result.astype(_F32)


def paint_area(level: Level, x: int, y: int, out: np.ndarray) -> None:
    """Paint one area of a read as OpenSlide's ``read_region`` does.

    Parameters
    ----------
    level: dicomslide.openslide.dicom.levels.Level
        Level to read
    x, y: int
        Level-0 location of the area
    out: numpy.ndarray
        Transparent uint8 (h, w, 4) premultiplied RGBA to paint into

    """
    h, w = out.shape[:2]
    ds = level.downsample
    tx = ty = 0
    if x < 0:  # OpenSlide starts at 0 and shifts by whole level pixels
        tx = int(float(-x) / ds)
        x = 0
        w -= tx
    if y < 0:
        ty = int(float(-y) / ds)
        y = 0
        h -= ty
    if w <= 0 or h <= 0:
        return
    lx = x / ds
    ly = y / ds
    advance_x = float(level.tile_width)
    advance_y = float(level.tile_height)
    start_x = int(lx / advance_x)
    start_y = int(ly / advance_y)
    if start_x > level.tiles_across - 1 or start_y > level.tiles_down - 1:
        return
    end_x = min(math.ceil((lx + w) / advance_x), level.tiles_across)
    end_y = min(math.ceil((ly + h) / advance_y), level.tiles_down)
    offset_x = lx - start_x * advance_x
    offset_y = ly - start_y * advance_y
    tw, th = level.tile_width, level.tile_height
    if lx == math.floor(lx) and ly == math.floor(ly):
        # Whole-pixel translation: cairo copies the tiles side by side, which
        # gives the level's pixels of the window itself (transparent past
        # its edge): read just the window.
        top, left = int(ly), int(lx)
        out[ty : ty + h, tx : tx + w] = level.read((top, top + h), (left, left + w))
        return
    block = level.read((start_y * th, end_y * th), (start_x * tw, end_x * tw))
    height, width = out.shape[:2]

    for tile_y in range(end_y - 1, start_y - 1, -1):
        translate_y = ((tile_y - start_y) * advance_y) - offset_y
        fixed_y = _fixed(translate_y + ty)
        for tile_x in range(end_x - 1, start_x - 1, -1):
            translate_x = ((tile_x - start_x) * advance_x) - offset_x
            fixed_x = _fixed(translate_x + tx)
            r = (tile_y - start_y) * th
            c = (tile_x - start_x) * tw
            tile = block[r : r + th, c : c + tw]
            # destination pixels whose samples can touch the tile
            y0 = max((fixed_y >> 16) - 1, 0)
            y1 = min((fixed_y >> 16) + th + 2, height)
            x0 = max((fixed_x >> 16) - 1, 0)
            x1 = min((fixed_x >> 16) + tw + 2, width)
            if y1 <= y0 or x1 <= x0:
                continue
            # destination pixel centre i + 1/2 samples the tile at
            # i + 1/2 - translate; _bilinear subtracts the half pixel again
            source = _bilinear(tile, (y0, x0), (y1 - y0, x1 - x0), (-fixed_y, -fixed_x))
            out[y0:y1, x0:x1] = _saturate(out[y0:y1, x0:x1], source)


def _fixed(translation: float) -> int:
    """cairo's 16.16 fixed-point value of a (negated) translation.

    cairo rounds the pattern offset ``-translation`` to nearest, ties to even.
    """
    return -round(-translation * 65536.0)
