"""The frame store: the frames of one image, and the regions assembled from them.

A :class:`FrameStore` stands for one logical tiled image: a single instance or
the instances of a concatenation. It knows where every frame lies (one
:class:`~dicomslide.tile.FrameGrid` per channel and focal plane) and
assembles a region of the total pixel matrix from the frames that intersect
it, which its :class:`~dicomslide.loader.FrameLoader` gets from the cache or
fetches and decodes, straight into the output array. The frames of a scan's
next regions are loaded ahead (:mod:`dicomslide.readahead`). An RGBA view of
the same frames (:meth:`FrameStore.as_rgba`) shares the loader and the cache.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from dicomslide import pool
from dicomslide.cache import FrameCache
from dicomslide.elements import IMAGE_ELEMENTS, convert_elements
from dicomslide.fetch import describe_pixels
from dicomslide.frametable import (
    FrameTable,
    compute_frame_table,
    rank_focal_planes,
    sort_concatenation_parts,
)
from dicomslide.loader import FrameLoader, FrameTransform, ReadMetrics
from dicomslide.readahead import Region, ScanPredictor
from dicomslide.rgba import OpaqueRGBA
from dicomslide.tile import FrameGrid

__all__ = ["FrameStore", "ReadMetrics", "sort_concatenation_parts"]

# Reads of at least this many bytes share the pasting of cached frames with
# an idle pool thread: below it, waking one costs more than it saves.
_SHARED_PASTES_MIN_BYTES = 2 << 20


class FrameStore:
    """Frames of one logical tiled image.

    Parameters
    ----------
    client: dicomweb_client.api.DICOMClient
        Client that serves the image
    parts: Sequence[pydicom.Dataset]
        Metadata of the instance, or of every instance of its concatenation
    cache: dicomslide.cache.FrameCache
        Cache for decoded frames

    """

    def __init__(
        self, client: Any, parts: Sequence[Dataset], cache: FrameCache
    ) -> None:
        self.parts = sort_concatenation_parts(parts)
        for part in self.parts:
            convert_elements(part, IMAGE_ELEMENTS)
        self.metadata = self.parts[0]
        tables: list[FrameTable] = []
        part_of_frame = []
        local_numbers = []
        for i, part in enumerate(self.parts):
            # (checks the attributes that size the image, e.g. Rows of 0)
            table = compute_frame_table(part)
            tables.append(table)
            # (zeros for the first part: memory the OS maps in when touched)
            part_of_frame.append(
                np.full(len(table.positions), i, dtype=np.int64)
                if i
                else np.zeros(len(table.positions), dtype=np.int64)
            )
            local_numbers.append(np.arange(1, len(table.positions) + 1, dtype=np.int64))
        first = self.metadata
        self.tile_shape = (int(first.Rows), int(first.Columns))
        self.total_shape = (
            int(first.TotalPixelMatrixRows),
            int(first.TotalPixelMatrixColumns),
        )
        self._layout = describe_pixels(first, "")
        self.positions = _joined([t.positions for t in tables])
        self.channels = _joined([t.channel_indices for t in tables])
        self.z_planes, self.planes = rank_focal_planes(
            _joined([t.z_offsets for t in tables])
        )
        self.loader = FrameLoader(
            client,
            self.parts,
            self._layout,
            cache,
            _joined(part_of_frame),
            _joined(local_numbers),
        )
        self._grids: dict[tuple[int, int], FrameGrid] = {}
        self._readahead = ScanPredictor(self.total_shape)
        self._rgba = False

    def as_rgba(self) -> FrameStore:
        """The same frames, read as opaque RGBA.

        Grey or RGB pixels of 8 bits gain an alpha channel of 255 as they are
        pasted; the frames and their cache entries are the plain ones, loaded
        once for both views. Reads have 4 samples per pixel, and ``fill=0``
        makes absent tiles and pixels outside the matrix transparent: what
        the OpenSlide facade shows.

        Returns
        -------
        dicomslide.store.FrameStore
            A store that shares this one's frame tables and loader

        Raises
        ------
        ValueError
            When the frames are not 8-bit grey or RGB

        """
        layout = self._layout
        if layout.bits_allocated != 8 or layout.samples_per_pixel not in (1, 3):
            raise ValueError("only 8-bit grey or RGB frames can be shown as RGBA")
        view = object.__new__(FrameStore)
        view.__dict__.update(self.__dict__)
        view._rgba = True
        view._readahead = ScanPredictor(self.total_shape)
        return view

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_grids"] = {}
        return state

    @property
    def cache(self) -> FrameCache:
        """dicomslide.cache.FrameCache: cache of the decoded frames"""
        return self.loader.cache

    @property
    def metrics(self) -> ReadMetrics:
        """dicomslide.loader.ReadMetrics: what reading the frames cost so far
        (shared by every view of them)"""
        return self.loader.metrics

    @property
    def number_of_frames(self) -> int:
        """int: number of frames over all parts"""
        return len(self.positions)

    @property
    def samples_per_pixel(self) -> int:
        """int: samples per pixel of reads (4 for :meth:`as_rgba`)"""
        return 4 if self._rgba else self._layout.samples_per_pixel

    @property
    def frame_nbytes(self) -> int:
        """int: number of bytes of a decoded frame, as cached"""
        return self._layout.frame_nbytes

    @property
    def dtype(self) -> np.dtype:
        """numpy.dtype: data type of decoded pixels"""
        if self._layout.bits_allocated == 1:
            return np.dtype(np.uint8)
        return self._layout.dtype

    def grid(self, channel: int, plane: int) -> FrameGrid:
        """Get the frame grid of one channel and focal plane.

        Parameters
        ----------
        channel: int
            Zero-based channel index
        plane: int
            Zero-based focal plane index

        Returns
        -------
        dicomslide.tile.FrameGrid
            Which frames cover which pixels

        """
        key = (channel, plane)
        grid = self._grids.get(key)
        if grid is None:
            wanted = (self.channels == channel) & (self.planes == plane)
            if wanted.all():  # one channel and plane: no copy of the positions
                selected, positions = np.arange(len(wanted)), self.positions
            else:
                selected = np.nonzero(wanted)[0]
                positions = self.positions[selected]
            grid = FrameGrid(selected, positions, self.tile_shape, self.total_shape)
            self._grids[key] = grid
        return grid

    def encoded_frames(
        self,
        channel: int,
        plane: int,
        grid_positions: Sequence[tuple[int, int]],
        decode: Collection[tuple[int, int]] = (),
    ) -> dict[tuple[int, int], tuple[bytes, str]]:
        """The stored bytes of the frames at tile grid positions.

        Parameters
        ----------
        channel: int
            Zero-based channel index
        plane: int
            Zero-based focal plane index
        grid_positions: Sequence[Tuple[int, int]]
            (row, column) of frames in the tile grid; fetched in one call per
            instance
        decode: Collection[Tuple[int, int]], optional
            Those of `grid_positions` whose frames reads will want decoded
            too: decoded in the background into the cache, from the bytes
            fetched here (see :meth:`dicomslide.loader.FrameLoader.read_encoded`)

        Returns
        -------
        Dict[Tuple[int, int], Tuple[bytes, str]]
            The encoded frame and its Transfer Syntax UID by position; the
            positions where the grid has no frame are left out

        """
        grid = self.grid(channel, plane)
        rows, columns = grid.grid_shape
        held = {
            (row, column): grid.frame_at(row, column)
            for row, column in grid_positions
            if 0 <= row < rows and 0 <= column < columns
        }
        held = {position: index for position, index in held.items() if index >= 0}
        encoded = self.loader.read_encoded(
            list(held.values()),
            {held[p] for p in decode if p in held},
        )
        return dict(zip(held, encoded, strict=True))

    def load_frames(
        self,
        indices: Sequence[int],
        on_frame: Callable[[int, np.ndarray], None],
        frame_transform: FrameTransform | None = None,
    ) -> None:
        """Get decoded frames, fetching and decoding only those not cached.

        Parameters
        ----------
        indices: Sequence[int]
            Zero-based indices of frames over all parts
        on_frame: Callable[[int, numpy.ndarray], None]
            Called once per distinct index with the decoded frame (as cached:
            plain samples, also for an RGBA view); may run in a decoder thread
        frame_transform: Union[dicomslide.loader.FrameTransform, None], optional
            Applied to every frame as it is decoded, and cached apart from the
            plain frames (e.g. colour correction)

        """
        self.loader.transformed(frame_transform).load_frames(indices, on_frame)

    def transforms_frames(
        self,
        channel: int,
        plane: int,
        rows: tuple[int, int],
        columns: tuple[int, int],
        frame_transform: FrameTransform,
    ) -> bool:
        """Whether a read had better transform its frames than its region.

        Transformed frames are cached and transformed by the decode threads in
        parallel; a region is transformed once, by the reading thread. Frames
        win unless those not cached transformed yet hold more pixels than the
        decode threads transform meanwhile: a small read of large frames has
        its region transformed instead (from frames cached plain).

        Parameters
        ----------
        channel: int
            Zero-based channel index
        plane: int
            Zero-based focal plane index
        rows: Tuple[int, int]
            First and one-past-last row of the read
        columns: Tuple[int, int]
            First and one-past-last column of the read
        frame_transform: dicomslide.loader.FrameTransform
            The transform

        Returns
        -------
        bool
            True to read with `frame_transform`, False to transform the region

        """
        (r0, r1), (c0, c1) = rows, columns
        total_rows, total_columns = self.total_shape
        hits = self.grid(channel, plane).frames_in(
            max(r0, 0), min(r1, total_rows), max(c0, 0), min(c1, total_columns)
        )
        loader = self.loader.transformed(frame_transform)
        missing = sum(1 for index, _, _ in hits if not loader.is_cached(index))
        tile_rows, tile_columns = self.tile_shape
        region = max(r1 - r0, 0) * max(c1 - c0, 0)
        return missing * tile_rows * tile_columns <= pool.WORKERS * region

    def read_region(
        self,
        channel: int,
        plane: int,
        rows: tuple[int, int],
        columns: tuple[int, int],
        fill: float | np.ndarray,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
        dtype: np.dtype | None = None,
        out: np.ndarray | None = None,
        absent: float | None = None,
        frame_transform: FrameTransform | None = None,
    ) -> np.ndarray:
        """Read a region of the total pixel matrix.

        Parameters
        ----------
        channel: int
            Zero-based channel index
        plane: int
            Zero-based focal plane index
        rows: Tuple[int, int]
            First and one-past-last row; may extend past the matrix
        columns: Tuple[int, int]
            First and one-past-last column; may extend past the matrix
        fill: Union[float, numpy.ndarray]
            Value of pixels outside the matrix, and of absent tiles unless
            `absent` says otherwise (or one value per sample)
        transform: Union[Callable[[numpy.ndarray], numpy.ndarray], None], optional
            Applied to every frame before it is pasted (e.g. label values to a
            segment's mask); pixels without a frame keep `fill`. Not for the
            reads of an :meth:`as_rgba` store
        dtype: Union[numpy.dtype, None], optional
            Data type of the transformed pixels (default: the stored type)
        out: Union[numpy.ndarray, None], optional
            Array of shape (rows, columns, samples) to write the pixels into
            (may be a view, e.g. the colour bands of an RGBA array)
        absent: Union[float, None], optional
            Value of the pixels inside the matrix that no frame covers (tiles
            absent from a TILED_SPARSE image), if not `fill`: e.g. 1 in the
            mask of a label map's background segment, as an absent tile of a
            label map holds label 0
        frame_transform: Union[dicomslide.loader.FrameTransform, None], optional
            Applied to every frame as it is decoded, before `transform`, and
            cached apart from the plain frames (e.g. colour correction; not
            for the reads of an :meth:`as_rgba` store)

        Returns
        -------
        numpy.ndarray
            Pixels of shape (rows, columns, samples): `out` when given

        """
        if (transform is not None or frame_transform is not None) and self._rgba:
            raise ValueError("reads of RGBA frames take no transform")
        r0, r1 = rows
        c0, c1 = columns
        total_rows, total_columns = self.total_shape
        v_r0, v_r1 = max(r0, 0), min(r1, total_rows)
        v_c0, v_c1 = max(c0, 0), min(c1, total_columns)
        grid = self.grid(channel, plane)
        hits = grid.frames_in(v_r0, v_r1, v_c0, v_c1)
        shape = (max(r1 - r0, 0), max(c1 - c0, 0), self.samples_per_pixel)
        out_dtype = self.dtype if dtype is None else dtype
        covered = (v_r0, v_r1, v_c0, v_c1) == (r0, r1, c0, c1) and len(
            hits
        ) == grid.cells(r0, r1, c0, c1)
        if out is None:
            # no fill where frames cover every pixel
            out = (
                np.empty(shape, out_dtype)
                if covered
                else np.full(shape, fill, out_dtype)
            )
        elif out.shape != shape:
            raise ValueError(f"out has shape {out.shape}, the region {shape}")
        elif not covered:
            out[...] = fill
        if not covered and absent is not None and v_r1 > v_r0 and v_c1 > v_c0:
            out[v_r0 - r0 : v_r1 - r0, v_c0 - c0 : v_c1 - c0] = absent
        if not hits:
            return out
        placement = {index: (row, column) for index, row, column in hits}
        tile_rows, tile_columns = self.tile_shape
        opaque = OpaqueRGBA(out) if self._rgba else None

        def paste(index: int, frame: np.ndarray) -> None:
            row, column = placement[index]
            # the part of the tile inside both the matrix and the request
            a_r0, a_r1 = max(row, v_r0), min(row + tile_rows, v_r1)
            a_c0, a_c1 = max(column, v_c0), min(column + tile_columns, v_c1)
            if a_r1 <= a_r0 or a_c1 <= a_c0:
                return
            if opaque is not None:
                opaque.paste(
                    frame,
                    (a_r0 - row, a_r1 - row),
                    (a_c0 - column, a_c1 - column),
                    (a_r0 - r0, a_c0 - c0),
                )
                return
            part = frame[a_r0 - row : a_r1 - row, a_c0 - column : a_c1 - column]
            out[a_r0 - r0 : a_r1 - r0, a_c0 - c0 : a_c1 - c0] = (
                part if transform is None else transform(part)
            )

        ahead = self._read_ahead(channel, plane, rows, columns)
        loader = self.loader.transformed(frame_transform)
        loader.load_frames(
            list(placement),
            paste,
            ahead,
            None
            if ahead
            else lambda: self._neighbours(loader, grid, rows, columns, placement),
            share_pastes=out.nbytes >= _SHARED_PASTES_MIN_BYTES,
        )
        return out

    def _read_ahead(
        self,
        channel: int,
        plane: int,
        rows: tuple[int, int],
        columns: tuple[int, int],
    ) -> list[int]:
        """Frames of the regions a scan would read next (none for other reads):
        the next few regions, or over a network as many frames ahead as the
        loader may load in the background."""
        key, region = (channel, plane), (*rows, *columns)
        remote = self.loader.remote
        if remote:
            regions: Iterable[Region] = self._readahead.observe_rows(key, region)
        else:
            regions = self._readahead.observe(key, region)
        grid = self.grid(channel, plane)
        total_rows, total_columns = self.total_shape
        limit = self.loader.background_limit if remote else None
        frames: dict[int, None] = {}
        for r0, r1, c0, c1 in regions:
            r0, r1 = max(r0, 0), min(r1, total_rows)
            c0, c1 = max(c0, 0), min(c1, total_columns)
            for index, _, _ in grid.frames_in(r0, r1, c0, c1):
                frames[index] = None
            if limit is not None and len(frames) >= limit:
                break
        return list(frames)

    def _neighbours(
        self,
        loader: FrameLoader,
        grid: FrameGrid,
        rows: tuple[int, int],
        columns: tuple[int, int],
        own: Collection[int],
    ) -> list[int]:
        """Frames of the ring of tiles around a read, to fetch with its frames
        where the loader wants them (see
        :meth:`dicomslide.loader.FrameLoader.wants_neighbours`)."""
        if not loader.wants_neighbours():
            return []
        (r0, r1), (c0, c1) = rows, columns
        tile_rows, tile_columns = self.tile_shape
        total_rows, total_columns = self.total_shape
        ring = grid.frames_in(
            max(r0 - tile_rows, 0),
            min(r1 + tile_rows, total_rows),
            max(c0 - tile_columns, 0),
            min(c1 + tile_columns, total_columns),
        )
        return [index for index, _, _ in ring if index not in own]


def _joined(arrays: list[np.ndarray]) -> np.ndarray:
    """The arrays end to end (the one array itself, not a copy, when alone)."""
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
