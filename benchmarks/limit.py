"""The decode limit: what a read costs when nothing but decoding is left.

:class:`LimitReader` finds the VOLUME levels of a series with pydicom, loads
the encoded frames a workload needs into memory up front (``open``/``load``
are not part of the timed reads), and for each read decodes the frames it
touches with the same codec libraries dicomslide uses (simplejpeg for 8-bit
JPEG, imagecodecs' OpenJPEG ``jpeg2k_decode`` for JPEG 2000 and HTJ2K, NumPy
for native data) and pastes them into a preallocated array.

Variants (see :mod:`benchmarks.impls`):

* ``limit-1t``: one thread, no cache;
* ``limit-Nt``: ``os.cpu_count()`` threads (a ThreadPoolExecutor), no cache;
* ``limit-cache``: one thread, each frame decoded once over the whole
  workload (an unbounded dict).

The reference pixels of the cross-check come from here, too.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.workloads import Level

VL_WSI = "1.2.840.10008.5.1.4.1.1.77.1.6"
JPEG_8BIT = {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"}
JPEG_2000 = {
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.201",
    "1.2.840.10008.1.2.4.202",
    "1.2.840.10008.1.2.4.203",
}
NATIVE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}

Decoder = Callable[[bytes], np.ndarray]


def _decode_jpeg(data: bytes) -> np.ndarray:
    import simplejpeg

    return simplejpeg.decode_jpeg(data, colorspace="RGB")


def _decode_j2k(data: bytes) -> np.ndarray:
    import imagecodecs

    return imagecodecs.jpeg2k_decode(data)


def decoder_for(
    transfer_syntax_uid: str, rows: int, columns: int, samples: int
) -> Decoder:
    """The frame decoder for a transfer syntax.

    Raises
    ------
    NotImplementedError
        For transfer syntaxes the decode limit does not cover

    """
    if transfer_syntax_uid in JPEG_8BIT:
        return _decode_jpeg
    if transfer_syntax_uid in JPEG_2000:
        return _decode_j2k
    if transfer_syntax_uid in NATIVE:
        shape = (rows, columns, samples) if samples > 1 else (rows, columns)

        def native(data: bytes) -> np.ndarray:
            return np.frombuffer(data, dtype=np.uint8).reshape(shape)

        return native
    raise NotImplementedError(
        f"no decode limit for transfer syntax {transfer_syntax_uid}"
    )


@dataclass
class SeriesLevel:
    """A canonical level and the files (concatenation parts) that hold it."""

    level: Level
    files: list[Path]
    transfer_syntax_uid: str
    samples_per_pixel: int
    headers: list[Any] = field(default_factory=list)
    """pydicom datasets of the parts, read without pixel data."""
    positions: dict[tuple[int, int], int] | None = None
    """Grid (row, column) -> frame index for TILED_SPARSE; None for TILED_FULL."""
    frames: list[bytes] = field(default_factory=list)

    @property
    def grid_columns(self) -> int:
        """Tiles per row."""
        return -(-self.level.columns // self.level.tile_columns)

    def frame_index(self, grid_row: int, grid_column: int) -> int:
        """Zero-based frame index of a tile, -1 when the tile is absent."""
        if self.positions is None:
            return grid_row * self.grid_columns + grid_column
        return self.positions.get((grid_row, grid_column), -1)


def _is_volume(ds: Any) -> bool:
    image_type = [str(v).upper() for v in ds.get("ImageType", [])]
    return (
        ds.get("SOPClassUID") == VL_WSI
        and len(image_type) > 2
        and image_type[2] == "VOLUME"
    )


def scan_series(folder: Path) -> list[SeriesLevel]:
    """Find the VOLUME levels of the largest series in `folder` (recursive).

    Only headers are read here (``stop_before_pixels``).  Levels are sorted by
    decreasing size; several instances of the same size are treated as the
    parts of a concatenation.

    Raises
    ------
    ValueError
        When the folder holds no VOLUME image, or one the limit cannot handle
        (several focal planes or optical paths)

    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    by_series: dict[str, list[tuple[Path, Any]]] = defaultdict(list)
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError):
            continue
        if _is_volume(ds):
            by_series[str(ds.SeriesInstanceUID)].append((path, ds))
    if not by_series:
        raise ValueError(f"no VOLUME image in {folder}")

    def area(items: list[tuple[Path, Any]]) -> int:
        return max(
            int(d.TotalPixelMatrixRows) * int(d.TotalPixelMatrixColumns)
            for _, d in items
        )

    instances = max(by_series.values(), key=area)
    by_size: dict[tuple[int, int], list[tuple[Path, Any]]] = defaultdict(list)
    for path, ds in instances:
        by_size[(int(ds.TotalPixelMatrixRows), int(ds.TotalPixelMatrixColumns))].append(
            (path, ds)
        )
    base_columns = max(columns for _, columns in by_size)
    levels = []
    for index, (shape, parts) in enumerate(
        sorted(by_size.items(), key=lambda kv: -kv[0][1])
    ):
        parts.sort(
            key=lambda item: int(item[1].get("ConcatenationFrameOffsetNumber", 0))
        )
        ds = parts[0][1]
        if (
            int(ds.get("TotalPixelMatrixFocalPlanes", 1)) != 1
            or int(ds.get("NumberOfOpticalPaths", 1)) != 1
        ):
            raise ValueError(
                "the decode limit reads single-plane, single-path slides only"
            )
        level = Level(
            index=index,
            rows=shape[0],
            columns=shape[1],
            tile_rows=int(ds.Rows),
            tile_columns=int(ds.Columns),
            downsample=base_columns / shape[1],
        )
        levels.append(
            SeriesLevel(
                level=level,
                files=[path for path, _ in parts],
                transfer_syntax_uid=str(ds.file_meta.TransferSyntaxUID),
                samples_per_pixel=int(ds.SamplesPerPixel),
                headers=[d for _, d in parts],
            )
        )
    return levels


def _sparse_positions(
    datasets: Sequence[Any], level: Level
) -> dict[tuple[int, int], int] | None:
    """Frame positions from the Per-Frame Functional Groups, None for row-major.

    Frames are taken to be in row-major order only for TILED_FULL, or when no
    frame has a Plane Position (Slide) (e.g. Orthanc leaves the Dimension
    Organization Type out but lists every frame's position).
    """
    first = datasets[0]
    if first.get("DimensionOrganizationType") == "TILED_FULL":
        return None
    if "PerFrameFunctionalGroupsSequence" not in first:
        return None
    positions: dict[tuple[int, int], int] = {}
    index = 0
    for ds in datasets:
        for item in ds.PerFrameFunctionalGroupsSequence:
            if "PlanePositionSlideSequence" not in item:
                return None
            plane = item.PlanePositionSlideSequence[0]
            row = int(plane.RowPositionInTotalImagePixelMatrix) - 1
            column = int(plane.ColumnPositionInTotalImagePixelMatrix) - 1
            grid = (row // level.tile_rows, column // level.tile_columns)
            positions.setdefault(grid, index)
            index += 1
    return positions


def load_frames(series_level: SeriesLevel) -> None:
    """Read the encoded frames of a level into memory (pydicom).

    Only the pixel data (and the Extended Offset Table) are read here; the
    headers come from :func:`scan_series`.  Encapsulated data are split with
    ``pydicom.encaps.generate_frames``, using the Extended Offset Table when
    the file has one.  For TILED_SPARSE the frame positions are taken from the
    Per-Frame Functional Groups (plain pydicom attribute access).
    """
    import pydicom
    from pydicom.encaps import generate_frames
    from pydicom.uid import UID

    frames: list[bytes] = []
    wanted = ["PixelData", "ExtendedOffsetTable", "ExtendedOffsetTableLengths"]
    encapsulated = UID(series_level.transfer_syntax_uid).is_encapsulated
    for path, header in zip(series_level.files, series_level.headers):
        ds = pydicom.dcmread(path, specific_tags=wanted)
        count = int(header.get("NumberOfFrames", 1))
        data = ds.PixelData
        if encapsulated:
            extended = None
            if "ExtendedOffsetTable" in ds and "ExtendedOffsetTableLengths" in ds:
                extended = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
            frames.extend(
                generate_frames(data, number_of_frames=count, extended_offsets=extended)
            )
        else:
            size = (
                int(header.Rows)
                * int(header.Columns)
                * int(header.SamplesPerPixel)
                * int(header.BitsAllocated)
                // 8
            )
            frames.extend(bytes(data[i * size : (i + 1) * size]) for i in range(count))
    series_level.positions = _sparse_positions(series_level.headers, series_level.level)
    series_level.frames = frames


class LimitReader:
    """Decode the frames a region needs and paste them; nothing else.

    Parameters
    ----------
    threads: int
        1 decodes in the calling thread; more uses a ThreadPoolExecutor
    cache: bool
        Whether decoded frames are kept (unbounded) for the reader's lifetime

    """

    def __init__(self, threads: int = 1, cache: bool = False) -> None:
        self.threads = max(1, int(threads))
        self.cache = bool(cache)
        self.levels: list[SeriesLevel] = []
        self._decoders: list[Decoder] = []
        self._decoded: dict[tuple[int, int], np.ndarray] = {}
        self._pool: ThreadPoolExecutor | None = None
        self.decodes = 0

    def open(self, folder: Path) -> None:
        """Find the levels (headers only)."""
        self.levels = scan_series(folder)
        self._decoders = [
            decoder_for(
                s.transfer_syntax_uid,
                s.level.tile_rows,
                s.level.tile_columns,
                s.samples_per_pixel,
            )
            for s in self.levels
        ]
        if self.threads > 1:
            self._pool = ThreadPoolExecutor(max_workers=self.threads)

    def load(self, level_indices: Sequence[int]) -> None:
        """Load the encoded frames of these levels into memory."""
        for index in sorted(set(level_indices)):
            if not self.levels[index].frames:
                load_frames(self.levels[index])

    def close(self) -> None:
        """Stop the thread pool."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _frame(self, level: int, frame: int) -> np.ndarray:
        if self.cache:
            key = (level, frame)
            array = self._decoded.get(key)
            if array is None:
                array = self._decoders[level](self.levels[level].frames[frame])
                self.decodes += 1
                self._decoded[key] = array
            return array
        self.decodes += 1
        return self._decoders[level](self.levels[level].frames[frame])

    def read(
        self, level: int, row: int, column: int, height: int, width: int
    ) -> np.ndarray:
        """Read a region inside the level (absent sparse tiles read as 0).

        Raises
        ------
        ValueError
            When the region is not inside the level

        """
        series_level = self.levels[level]
        geometry = series_level.level
        if (
            row < 0
            or column < 0
            or row + height > geometry.rows
            or column + width > geometry.columns
        ):
            raise ValueError(
                f"region {(row, column, height, width)} outside level {geometry.shape}"
            )
        if not series_level.frames:
            self.load([level])
        tile_rows, tile_columns = geometry.tile_rows, geometry.tile_columns
        out = np.zeros((height, width, series_level.samples_per_pixel), dtype=np.uint8)
        jobs = []
        for grid_row in range(row // tile_rows, (row + height - 1) // tile_rows + 1):
            for grid_column in range(
                column // tile_columns, (column + width - 1) // tile_columns + 1
            ):
                frame = series_level.frame_index(grid_row, grid_column)
                if frame >= 0:
                    jobs.append((grid_row, grid_column, frame))

        def paste(job: tuple[int, int, int]) -> None:
            grid_row, grid_column, frame = job
            tile = self._frame(level, frame)
            if tile.ndim == 2:
                tile = tile[:, :, None]
            top, left = grid_row * tile_rows, grid_column * tile_columns
            r0, r1 = max(row, top), min(row + height, top + tile_rows)
            c0, c1 = max(column, left), min(column + width, left + tile_columns)
            out[r0 - row : r1 - row, c0 - column : c1 - column] = tile[
                r0 - top : r1 - top, c0 - left : c1 - left
            ]

        if self._pool is None or len(jobs) < 2:
            for job in jobs:
                paste(job)
        else:
            for _ in self._pool.map(paste, jobs):
                pass
        return out


def cpu_threads() -> int:
    """Threads of limit-Nt: os.cpu_count()."""
    return os.cpu_count() or 1
