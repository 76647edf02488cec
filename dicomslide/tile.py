"""The tile grid: which frames cover which pixels of a total pixel matrix.

A :class:`FrameGrid` holds the frames of one channel and focal plane and
answers which of them intersect a region, and where each lands; frames on the
tile grid (what converters write) are found by indexing a grid of frame
indices, others by their positions. The 0.7 helpers that place tiles in a
total pixel matrix, or cut it into tiles, are here too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from pydicom.dataset import Dataset

from dicomslide.coordinates import get_pixel_to_slide_affine

# FRAME_TABLE_ATTRIBUTE, check_image_geometry and frame_table_from_json are
# imported from here by other modules; they live in frametable
from dicomslide.frametable import FRAME_TABLE_ATTRIBUTE as FRAME_TABLE_ATTRIBUTE
from dicomslide.frametable import check_image_geometry as check_image_geometry
from dicomslide.frametable import compute_frame_table, rank_focal_planes
from dicomslide.frametable import frame_table_from_json as frame_table_from_json
from dicomslide.utils import is_tiled_image as is_tiled_image  # a dicomslide 0.7 name

__all__ = [
    "FrameGrid",
    "assemble_total_pixel_matrix",
    "compute_frame_positions",
    "disassemble_total_pixel_matrix",
    "get_pixel_to_slide_affine",
    "is_tiled_image",
]

logger = logging.getLogger(__name__)


def _row_major(
    positions: np.ndarray, grid_shape: tuple[int, int], tile_shape: tuple[int, int]
) -> bool:
    """Whether frame positions are every tile of the grid in row-major order
    (checked without an array of the frames' size)."""
    rows, columns = grid_shape
    if len(positions) != rows * columns:
        return False
    laid = positions.reshape(rows, columns, 2)
    return bool(
        (laid[..., 0] == (np.arange(rows) * tile_shape[0])[:, None]).all()
        and (laid[..., 1] == (np.arange(columns) * tile_shape[1])[None, :]).all()
    )


class FrameGrid:
    """Which frames of one channel and focal plane cover which pixels."""

    def __init__(
        self,
        indices: np.ndarray,
        positions: np.ndarray,
        tile_shape: tuple[int, int],
        total_shape: tuple[int, int],
    ) -> None:
        self.tile_rows, self.tile_columns = tile_shape
        self.grid_shape = (
            -(-total_shape[0] // self.tile_rows),
            -(-total_shape[1] // self.tile_columns),
        )
        self.indices = indices
        self.positions = positions
        self.grid: np.ndarray | None = None
        if _row_major(positions, self.grid_shape, tile_shape):
            # one frame per tile in row-major order (TILED_FULL): no scatter
            self.grid = indices.reshape(self.grid_shape)
            return
        aligned = bool(
            np.all(positions[:, 0] % self.tile_rows == 0)
            and np.all(positions[:, 1] % self.tile_columns == 0)
        )
        if aligned:
            grid = np.full(self.grid_shape, -1, dtype=np.int64)
            grid_rows = positions[:, 0] // self.tile_rows
            grid_columns = positions[:, 1] // self.tile_columns
            inside = (grid_rows < self.grid_shape[0]) & (
                grid_columns < self.grid_shape[1]
            )
            if not np.all(inside):
                logger.debug(
                    "%d frames lie outside the total pixel matrix", np.sum(~inside)
                )
            grid[grid_rows[inside], grid_columns[inside]] = indices[inside]
            self.grid = grid

    def frame_at(self, grid_row: int, grid_column: int) -> int:
        """Index of the frame at a tile grid position, or -1 where there is none."""
        if self.grid is not None:
            return int(self.grid[grid_row, grid_column])
        row = grid_row * self.tile_rows
        column = grid_column * self.tile_columns
        hit = np.nonzero(
            (self.positions[:, 0] == row) & (self.positions[:, 1] == column)
        )[0]
        return int(self.indices[hit[-1]]) if len(hit) else -1

    def cells(self, r0: int, r1: int, c0: int, c1: int) -> int:
        """Number of tile grid cells rows [r0, r1) and columns [c0, c1) touch
        (-1 where frames are not on the grid)."""
        if self.grid is None:
            return -1
        if r1 <= r0 or c1 <= c0:
            return 0
        rows = -(-r1 // self.tile_rows) - r0 // self.tile_rows
        columns = -(-c1 // self.tile_columns) - c0 // self.tile_columns
        return rows * columns

    def frames_in(
        self, r0: int, r1: int, c0: int, c1: int
    ) -> list[tuple[int, int, int]]:
        """Frames that intersect rows [r0, r1) and columns [c0, c1).

        Returns (frame index, row offset, column offset) triples.
        """
        if r1 <= r0 or c1 <= c0:
            return []
        if self.grid is not None:
            g_r0 = max(r0 // self.tile_rows, 0)
            g_r1 = min(-(-r1 // self.tile_rows), self.grid_shape[0])
            g_c0 = max(c0 // self.tile_columns, 0)
            g_c1 = min(-(-c1 // self.tile_columns), self.grid_shape[1])
            block = self.grid[g_r0:g_r1, g_c0:g_c1]
            rows, columns = np.nonzero(block >= 0)
            return [
                (
                    int(block[r, c]),
                    (g_r0 + int(r)) * self.tile_rows,
                    (g_c0 + int(c)) * self.tile_columns,
                )
                for r, c in zip(rows, columns, strict=True)
            ]
        p = self.positions
        hit = np.nonzero(
            (p[:, 0] < r1)
            & (p[:, 0] + self.tile_rows > r0)
            & (p[:, 1] < c1)
            & (p[:, 1] + self.tile_columns > c0)
        )[0]
        return [(int(self.indices[i]), int(p[i, 0]), int(p[i, 1])) for i in hit]


def compute_frame_positions(
    image: Dataset,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Compute the positions of frames.

    Parameters
    ----------
    image: pydicom.Dataset
        Metadata of a tiled image

    Returns
    -------
    total_pixel_matrix_positions: numpy.ndarray
        Zero-based (row, column) offset of the center of the top lefthand
        corner pixel of each frame from the origin of the total pixel matrix
        in pixel unit.
    slide_positions: numpy.ndarray
        Zero-based (x, y, z) offset of the center of the top lefthand corner
        pixel of each frame from the origin of the slide coordinate system
        (frame of reference) in millimeter unit.
    channel_indices: numpy.ndarray
        Zero-based index for each frame into channels along the direction
        defined by successive items of the appropriate attribute (Optical
        Path Sequence, Segment Sequence).
    focal_plane_indices: numpy.ndarray
        Zero-based index for each frame into focal planes along depth
        direction from the glass slide towards the coverslip.

    """
    table = compute_frame_table(image)
    affine = get_pixel_to_slide_affine(image)
    rc1 = np.column_stack(
        [table.positions.astype(np.float64), np.ones(len(table.positions))]
    )
    xy = rc1 @ affine.T
    slide_positions = np.column_stack([xy, table.z_offsets / 1000.0])
    _, focal_plane_indices = rank_focal_planes(table.z_offsets)
    return table.positions, slide_positions, table.channel_indices, focal_plane_indices


def assemble_total_pixel_matrix(
    tiles: Sequence[np.ndarray],
    tile_positions: Sequence[tuple[int, int]] | np.ndarray,
    total_pixel_matrix_rows: int,
    total_pixel_matrix_columns: int,
) -> np.ndarray:
    """Assemble a total pixel matrix from individual tiles.

    Parameters
    ----------
    tiles: Sequence[numpy.ndarray]
        Individual image tiles of shape (rows, columns, samples)
    tile_positions: Union[Sequence[Tuple[int, int]], numpy.ndarray]
        Zero-based (row, column) position of each tile in the total pixel matrix
    total_pixel_matrix_rows: int
        Number of total rows
    total_pixel_matrix_columns: int
        Number of total columns

    Returns
    -------
    numpy.ndarray
        Total pixel matrix of shape (rows, columns, samples); tiles that
        extend past the matrix are cropped, uncovered pixels are 0

    """
    if len(tiles) == 0:
        raise ValueError("at least one tile is needed")
    first = np.asarray(tiles[0])
    samples = first.shape[2] if first.ndim == 3 else 1
    total = np.zeros(
        (total_pixel_matrix_rows, total_pixel_matrix_columns, samples), first.dtype
    )
    for tile, (row, column) in zip(tiles, np.asarray(tile_positions), strict=True):
        tile = np.asarray(tile)
        if tile.ndim == 2:
            tile = tile[:, :, np.newaxis]
        r, c = int(row), int(column)
        height = min(tile.shape[0], total_pixel_matrix_rows - r)
        width = min(tile.shape[1], total_pixel_matrix_columns - c)
        if height > 0 and width > 0:
            total[r : r + height, c : c + width] = tile[:height, :width]
    return total


def disassemble_total_pixel_matrix(
    total_pixel_matrix: np.ndarray,
    tile_positions: Sequence[tuple[int, int]] | np.ndarray,
    rows: int,
    columns: int,
) -> np.ndarray:
    """Disassemble a total pixel matrix into individual tiles.

    Parameters
    ----------
    total_pixel_matrix: numpy.ndarray
        Total pixel matrix of shape (rows, columns[, samples])
    tile_positions: Union[Sequence[Tuple[int, int]], numpy.ndarray]
        Zero-based (row, column) position of each tile in the total pixel matrix
    rows: int
        Number of rows per tile
    columns: int
        Number of columns per tile

    Returns
    -------
    numpy.ndarray
        Stacked tiles of shape (tiles, rows, columns, samples); the parts of
        edge tiles outside the matrix are 0

    """
    matrix = np.asarray(total_pixel_matrix)
    if matrix.ndim == 2:
        matrix = matrix[:, :, np.newaxis]
    positions = np.asarray(tile_positions).reshape(-1, 2)
    tiles = np.zeros((len(positions), rows, columns, matrix.shape[2]), matrix.dtype)
    for i, (row, column) in enumerate(positions):
        part = matrix[int(row) : int(row) + rows, int(column) : int(column) + columns]
        tiles[i, : part.shape[0], : part.shape[1]] = part
    return tiles
