"""The frame store: fetch, decode, cache and assemble the frames of one image.

A :class:`FrameStore` stands for one logical tiled image: a single instance or
the instances of a concatenation. It knows where every frame lies, fetches
the encoded frames a read needs (one batched request per instance for the
frames not cached), decodes them in a thread pool straight into the output
array, and keeps decoded frames in a byte-bounded cache shared by every
total pixel matrix of the image. A frame is loaded once however many readers
want it at the same time, and the frames of a scan's next regions are loaded
ahead (:mod:`dicomslide.readahead`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset

from dicomslide import pages
from dicomslide.cache import FrameCache
from dicomslide.client import make_frame_source, portable
from dicomslide.codec import PixelDescription, decode_frame, decodes_into
from dicomslide.elements import IMAGE_ELEMENTS, convert_elements
from dicomslide.errors import FrameRetrievalError, MetadataError
from dicomslide.fetch import FrameSource, describe_pixels
from dicomslide.readahead import ScanPredictor
from dicomslide.tile import FrameTable, compute_frame_table, rank_focal_planes

logger = logging.getLogger(__name__)

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


_WORKERS = os.cpu_count() or 2

# Neighbouring frames come with a read's request while at least this share of
# those fetched so far were read later, judged once this many were fetched.
_NEIGHBOURS_MIN_USE = 0.25
_NEIGHBOURS_PROBATION = 64

# Reads of at least this many bytes share the pasting of cached frames with
# an idle pool thread: below it, waking one costs more than it saves.
_SHARED_PASTES_MIN_BYTES = 2 << 20


def _decode_pool() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=_WORKERS, thread_name_prefix="dicomslide-decode"
            )
        return _executor


class _Busy:
    """Counts the threads at work for dicomslide now: readers decoding their
    frames and tasks of the decode pool, of all stores."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        with self._lock:
            self.count += 1

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self.count -= 1


_busy = _Busy()


def _counted(task: Callable[..., object], *args: Any) -> None:
    with _busy:
        task(*args)


def _submit(task: Callable[..., object], *args: Any) -> None:
    """Run a task in the decode pool."""
    _decode_pool().submit(_counted, task, *args)


def _forget_pool_after_fork() -> None:
    # Threads do not survive fork(): the child builds its own pool when needed.
    global _executor, _executor_lock, _busy
    _executor = None
    _executor_lock = threading.Lock()
    _busy = _Busy()


os.register_at_fork(after_in_child=_forget_pool_after_fork)


def sort_concatenation_parts(parts: Sequence[Dataset]) -> list[Dataset]:
    """Order the instances of a concatenation and check they belong together.

    Parameters
    ----------
    parts: Sequence[pydicom.Dataset]
        Metadata of one instance, or of the instances of one concatenation

    Returns
    -------
    List[pydicom.Dataset]
        Instances in In-concatenation Number order

    Raises
    ------
    dicomslide.errors.MetadataError
        When the instances are not parts of one concatenation

    """
    parts = list(parts)
    if not parts:
        raise MetadataError("no image metadata given")
    if len(parts) == 1:
        return parts
    uids = {str(part.get("ConcatenationUID", "")) for part in parts}
    if len(uids) != 1 or "" in uids:
        raise MetadataError(
            "several instances given for one image, but they are not parts of "
            f"one concatenation (Concatenation UIDs: {sorted(uids)})",
            str(parts[0].get("SOPInstanceUID")),
        )
    ordered = sorted(parts, key=lambda part: int(part.get("InConcatenationNumber", 0)))
    numbers = [int(part.get("InConcatenationNumber", 0)) for part in ordered]
    if len(set(numbers)) != len(numbers):
        raise MetadataError(
            f"concatenation has duplicate In-concatenation Numbers {numbers}",
            str(parts[0].get("SOPInstanceUID")),
        )
    return ordered


class ReadMetrics:
    """What reading an image cost, counted since it was opened.

    Attributes
    ----------
    requests: int
        Calls that fetched encoded frames (requests to a server, or reads of
        a local file), one per instance and read
    frames_fetched: int
        Encoded frames fetched
    bytes_fetched: int
        Bytes of encoded frames fetched
    cache_hits: int
        Frames served from the frame cache instead

    """

    _FIELDS = ("requests", "frames_fetched", "bytes_fetched", "cache_hits")

    def __init__(self) -> None:
        self.requests = 0
        self.frames_fetched = 0
        self.bytes_fetched = 0
        self.cache_hits = 0
        self._lock = threading.Lock()

    def add(self, **counts: int) -> None:
        """Add to the counters (thread-safe)."""
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, int]:
        """The counters as a dictionary."""
        return {name: getattr(self, name) for name in self._FIELDS}

    def __getstate__(self) -> dict[str, int]:
        return self.as_dict()

    def __setstate__(self, state: dict[str, int]) -> None:
        self.__init__()  # type: ignore[misc]
        self.add(**state)

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.as_dict().items())
        return f"ReadMetrics({counts})"


class _FrameGrid:
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
        aligned = bool(
            np.all(positions[:, 0] % self.tile_rows == 0)
            and np.all(positions[:, 1] % self.tile_columns == 0)
        )
        self.grid: np.ndarray | None = None
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


class _OpaqueRGBA:
    """An RGBA array that 8-bit grey or RGB frames are pasted into, alpha 255.

    RGB pixels go through Pillow's RGB unpacker, which writes each pixel as its
    three samples and an alpha of 255 in one pass, without the GIL: about
    three times the cost of a plain copy, and ten times faster than NumPy's
    copy into three of four bands. It is reached through Pillow's core
    (``map_buffer`` and the ``raw`` decoder, what ``Image.frombuffer`` and
    ``Image.frombytes`` use; the same from Pillow 10.0 to 13.0).

    Parameters
    ----------
    out: numpy.ndarray
        uint8 array of shape (rows, columns, 4)

    """

    def __init__(self, out: np.ndarray) -> None:
        self.out = out
        self._image: Any = None
        if out.dtype == np.uint8 and out.flags.c_contiguous and out.size:
            rows, columns = out.shape[:2]
            self._image = Image.core.map_buffer(
                out, (columns, rows), "raw", 0, ("RGBX", 0, 1)
            )

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
        (f_r0, f_r1), (f_c0, f_c1) = rows, columns
        row, column = origin
        height, width = f_r1 - f_r0, f_c1 - f_c0
        if self._image is not None and frame.shape[2] == 3 and frame.flags.c_contiguous:
            line = frame.strides[0]
            decoder = Image.core.raw_decoder("RGBX", "RGB", line, 1)
            decoder.setimage(self._image, (column, row, column + width, row + height))
            decoder.decode(frame.data.cast("B")[f_r0 * line + f_c0 * 3 :])
            return
        dest = self.out[row : row + height, column : column + width]
        pixels = frame[f_r0:f_r1, f_c0:f_c1]
        if pixels.shape[2] == 1 and dest.strides[1:] == (4, 1):
            # a grey pixel times 0x010101 is a word of three equal samples
            words = dest.view("<u4")[..., 0]
            np.multiply(pixels[..., 0], np.uint32(0x010101), out=words)
            words |= np.uint32(0xFF000000)
            return
        dest[..., :3] = pixels
        dest[..., 3] = 255


@dataclass(frozen=True)
class _Job:
    """One fetched frame to decode, and the future its readers wait on."""

    index: int
    future: Future
    data: bytes
    desc: PixelDescription
    sop: str
    number: int
    #: memory to decode into (see :meth:`FrameStore._fault_in_ahead`)
    out: np.ndarray | None = None


class _ReadRun:
    """The work of one read, shared by the reading thread and pool workers:
    frames to decode, then cached frames to paste.

    Each thread takes the next step until none is left, the largest encoding
    first: a thread that starts late or draws quick frames takes more, and
    the reader never waits for a worker that found nothing to do.
    """

    def __init__(
        self,
        jobs: Sequence[_Job],
        cached: Sequence[tuple[int, np.ndarray]],
        decode: Callable[[_Job, Callable[[int, np.ndarray], None]], None],
        on_frame: Callable[[int, np.ndarray], None],
    ) -> None:
        largest_first = sorted(jobs, key=lambda job: len(job.data), reverse=True)
        self._steps: deque[_Job | tuple[int, np.ndarray]] = deque(largest_first)
        self._steps.extend(cached)
        self._decode = decode
        self._on_frame = on_frame
        self._unfinished = len(self._steps)
        self._finished = threading.Condition()
        self._errors: list[BaseException] = []

    def work(self) -> None:
        """Decode or paste frames until none is left to take."""
        while True:
            try:
                step = self._steps.popleft()
            except IndexError:
                return
            try:
                if isinstance(step, _Job):
                    self._decode(step, self._on_frame)
                else:
                    self._on_frame(*step)
            except BaseException as error:  # the others still settle
                self._errors.append(error)
            finally:
                with self._finished:
                    self._unfinished -= 1
                    if self._unfinished == 0:
                        self._finished.notify_all()

    def wait(self) -> None:
        """Wait until every step taken is done (or has failed)."""
        with self._finished:
            self._finished.wait_for(lambda: self._unfinished == 0)

    def cancel(self) -> None:
        """Drop the steps nobody took yet (a read that stops early)."""
        while True:
            try:
                self._steps.popleft()
            except IndexError:
                return
            with self._finished:
                self._unfinished -= 1

    def raise_first_error(self) -> None:
        """Raise the error of the first step that failed, if any."""
        if self._errors:
            raise self._errors[0]


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
        self.client = client
        self.parts = sort_concatenation_parts(parts)
        for part in self.parts:
            convert_elements(part, IMAGE_ELEMENTS)
        self.metadata = self.parts[0]
        self.cache = cache
        tables: list[FrameTable] = []
        part_of_frame = []
        local_numbers = []
        for i, part in enumerate(self.parts):
            # (checks the attributes that size the image, e.g. Rows of 0)
            table = compute_frame_table(part)
            tables.append(table)
            part_of_frame.append(np.full(len(table.positions), i, dtype=np.int64))
            local_numbers.append(np.arange(1, len(table.positions) + 1, dtype=np.int64))
        first = self.metadata
        self.tile_shape = (int(first.Rows), int(first.Columns))
        self.total_shape = (
            int(first.TotalPixelMatrixRows),
            int(first.TotalPixelMatrixColumns),
        )
        self._layout = describe_pixels(first, "")
        self.positions = np.concatenate([t.positions for t in tables])
        self.channels = np.concatenate([t.channel_indices for t in tables])
        self.z_planes, self.planes = rank_focal_planes(
            np.concatenate([t.z_offsets for t in tables])
        )
        self.part_of_frame = np.concatenate(part_of_frame)
        self.local_numbers = np.concatenate(local_numbers)
        self._sop_uids = [str(part.SOPInstanceUID) for part in self.parts]
        # Files and servers may hold different pixels under one SOP Instance
        # UID (copies edited by hand, test files): cache keys name the origin.
        self._origins = [
            str(getattr(part, "filename", None) or getattr(client, "base_url", ""))
            for part in self.parts
        ]
        self._sources: list[FrameSource | None] = [None] * len(self.parts)
        self._descs: list[PixelDescription | None] = [None] * len(self.parts)
        self._grids: dict[tuple[int, int], _FrameGrid] = {}
        self._lock = threading.Lock()
        self._reset_pending()
        self._readahead = ScanPredictor(self.total_shape)
        self._rgba = False
        self.metrics = ReadMetrics()

    def as_rgba(self) -> FrameStore:
        """The same frames, read as opaque RGBA.

        Grey or RGB pixels of 8 bits gain an alpha channel of 255 as they are
        pasted; the frames and their cache entries are the plain ones. Reads
        have 4 samples per pixel, and ``fill=0`` makes absent tiles and
        pixels outside the matrix transparent: what the OpenSlide facade
        shows.

        Returns
        -------
        dicomslide.store.FrameStore
            A store that shares this one's frame tables, sources and metrics

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
        view._reset_pending()
        view._readahead = ScanPredictor(self.total_shape)
        return view

    def _reset_pending(self) -> None:
        # Frames being loaded, by index. A forked child never sees the
        # parent's loads complete, so it starts afresh (see _claim).
        self._pending: dict[int, Future[np.ndarray]] = {}
        self._pending_lock = threading.Lock()
        self._pid = os.getpid()
        # Neighbouring frames fetched with a read and not read yet, and how
        # many were fetched and read so far (see _neighbours).
        self._unread_neighbours: set[int] = set()
        self._neighbour_counts = [0, 0]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_lock"] = None
        state["_grids"] = {}
        for name in (
            "_pending",
            "_pending_lock",
            "_pid",
            "_unread_neighbours",
            "_neighbour_counts",
        ):
            del state[name]
        state["client"] = portable(self.client)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._reset_pending()

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

    def grid(self, channel: int, plane: int) -> _FrameGrid:
        """Get the frame grid of one channel and focal plane.

        Parameters
        ----------
        channel: int
            Zero-based channel index
        plane: int
            Zero-based focal plane index

        Returns
        -------
        dicomslide.store._FrameGrid
            Which frames cover which pixels

        """
        key = (channel, plane)
        grid = self._grids.get(key)
        if grid is None:
            selected = np.nonzero((self.channels == channel) & (self.planes == plane))[
                0
            ]
            grid = _FrameGrid(
                selected, self.positions[selected], self.tile_shape, self.total_shape
            )
            self._grids[key] = grid
        return grid

    def _source(self, part: int) -> FrameSource:
        source = self._sources[part]
        if source is None:
            with self._lock:
                source = self._sources[part]
                if source is None:
                    source = make_frame_source(
                        self.client, self.parts[part], self._layout
                    )
                    self._sources[part] = source
        return source

    def _description(
        self, part: int, transfer_syntax_uid: str | None
    ) -> PixelDescription:
        """Pixel layout of a part's frames in the syntax they arrived in."""
        desc = self._descs[part]
        if desc is None or desc.transfer_syntax_uid != (transfer_syntax_uid or ""):
            desc = replace(
                describe_pixels(self.parts[part], ""),
                transfer_syntax_uid=transfer_syntax_uid or "",
            )
            self._descs[part] = desc
        return desc

    def _frame_id(self, index: int) -> tuple[str, int]:
        """SOP Instance UID and frame number of a frame."""
        part = int(self.part_of_frame[index])
        return (self._sop_uids[part], int(self.local_numbers[index]))

    def _key(self, index: int) -> tuple[str, str, int]:
        """Cache key of a decoded frame: origin, SOP Instance UID, number."""
        part = int(self.part_of_frame[index])
        return (
            self._origins[part],
            self._sop_uids[part],
            int(self.local_numbers[index]),
        )

    def _claim(
        self, indices: Sequence[int]
    ) -> tuple[
        list[tuple[int, np.ndarray]], dict[int, Future], list[tuple[int, Future]]
    ]:
        """Sort frames into cached, to load here, and loading elsewhere.

        Frames to load here are registered as pending, so that a concurrent
        read (another thread, or read-ahead) waits for them instead of
        fetching and decoding them a second time. Every claimed frame must be
        settled (:meth:`_settle`), with its array or its error.
        """
        cached: list[tuple[int, np.ndarray]] = []
        claimed: dict[int, Future] = {}
        waiting: list[tuple[int, Future]] = []
        if self._pid != os.getpid():
            self._reset_pending()
        with self._pending_lock:
            for index in dict.fromkeys(int(i) for i in indices):
                array = self.cache.get(self._key(index))
                if array is not None:
                    cached.append((index, array))
                    continue
                future = self._pending.get(index)
                if future is None:
                    future = self._pending[index] = Future()
                    claimed[index] = future
                else:
                    waiting.append((index, future))
        return cached, claimed, waiting

    def _settle(
        self, index: int, future: Future, outcome: np.ndarray | BaseException
    ) -> None:
        """Publish a claimed frame, or its error, to whoever waits for it."""
        with self._pending_lock:
            if self._pending.get(index) is future:
                del self._pending[index]
            if future.done():
                return
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    def _settle_all(self, claimed: dict[int, Future], error: BaseException) -> None:
        for index, future in claimed.items():
            self._settle(index, future, error)

    def _abandon(self, claimed: dict[int, Future]) -> None:
        """Settle claimed frames a failed or interrupted read left unloaded,
        so that nobody waits for them forever."""
        for index, future in claimed.items():
            if not future.done():
                sop, number = self._frame_id(index)
                error = FrameRetrievalError(
                    "the read that was loading this frame stopped first", sop, number
                )
                self._settle(index, future, error)

    def _fetch(self, claimed: dict[int, Future]) -> list[_Job]:
        """Fetch claimed frames, one call per instance; on failure every
        claimed frame is settled with the error."""
        by_part: dict[int, list[int]] = defaultdict(list)
        for index in claimed:
            by_part[int(self.part_of_frame[index])].append(index)
        jobs: list[_Job] = []
        try:
            for part, missing in by_part.items():
                source = self._source(part)
                numbers = [int(self.local_numbers[i]) for i in missing]
                encoded = source.read_frames(numbers)
                self.metrics.add(
                    requests=1,
                    frames_fetched=len(encoded),
                    bytes_fetched=sum(len(data) for data in encoded),
                )
                desc = self._description(part, source.transfer_syntax_uid)
                sop = self._sop_uids[part]
                jobs.extend(
                    _Job(index, claimed[index], data, desc, sop, number)
                    for index, data, number in zip(
                        missing, encoded, numbers, strict=True
                    )
                )
        except BaseException as error:
            self._settle_all(claimed, error)
            raise
        return jobs

    def _decode(
        self, job: _Job, on_frame: Callable[[int, np.ndarray], None] | None
    ) -> None:
        try:
            array = decode_frame(job.data, job.desc, job.sop, job.number, job.out)
            if job.desc.bits_allocated == 1:
                array = array.astype(np.uint8)
            self.cache.put(self._key(job.index), array)
        except BaseException as error:
            self._settle(job.index, job.future, error)
            raise
        self._settle(job.index, job.future, array)
        if on_frame is not None:
            on_frame(job.index, array)

    def load_frames(
        self,
        indices: Sequence[int],
        on_frame: Callable[[int, np.ndarray], None],
        prefetch: Sequence[int] = (),
        neighbours: Callable[[], Sequence[int]] | None = None,
        share_pastes: bool = False,
    ) -> None:
        """Get decoded frames, fetching and decoding only those not cached.

        Parameters
        ----------
        indices: Sequence[int]
            Zero-based indices of frames over all parts
        on_frame: Callable[[int, numpy.ndarray], None]
            Called once per distinct index with the decoded frame; may run in a
            decoder thread
        prefetch: Sequence[int], optional
            Indices of frames to load in the background after these, for a
            read expected next (see :mod:`dicomslide.readahead`)
        neighbours: Union[Callable[[], Sequence[int]], None], optional
            Gives the indices of frames to ask for in the same requests as
            these, called only if any are fetched; they are decoded in the
            background
        share_pastes: bool, optional
            Whether idle pool threads may also hand cached frames to
            `on_frame`, for reads that paste enough pixels to be worth
            sharing; otherwise this thread does, while frames are decoded

        """
        self._note_read(indices)
        cached, claimed, waiting = self._claim(indices)
        self.metrics.add(cache_hits=len(cached))
        run: _ReadRun | None = None
        extra: dict[int, Future] = {}
        try:
            if claimed and neighbours is not None:
                extra = self._claim_neighbours(neighbours(), claimed)
            jobs = self._fetch({**claimed, **extra}) if claimed else []
            later = [job for job in jobs if job.index in extra]
            jobs = [job for job in jobs if job.index not in extra]
            shared = cached if share_pastes and _busy.count < _WORKERS - 1 else []
            if jobs or shared:
                helpers = min(len(jobs) + len(shared), _WORKERS) - 1
                idle = _WORKERS - _busy.count - 1 - helpers  # 1: this thread
                jobs = self._fault_in_ahead(jobs, idle)
                run = _ReadRun(jobs, shared, self._decode, on_frame)
                for _ in range(helpers):
                    _submit(run.work)
            if later:  # after the read's own frames
                self._decode_later(later)
            extra = {}  # handed over
            if prefetch:
                self._prefetch(prefetch)
            if not shared:
                for index, array in cached:
                    on_frame(index, array)
            if run is not None:
                with _busy:
                    run.work()
                run.wait()
        finally:
            if run is not None:
                run.cancel()
            self._abandon(claimed)
            self._abandon(extra)
        if run is not None:
            run.raise_first_error()
        for index, future in waiting:
            on_frame(index, future.result())

    def _fault_in_ahead(self, jobs: list[_Job], idle: int) -> list[_Job]:
        """Give the frames of a read their memory now, and have up to `idle`
        pool threads fault it in while the frames are decoded.

        A frame decoded into fresh memory waits for a page fault every 4 KiB
        (see :mod:`dicomslide.pages`). Memory used before needs no faulting;
        frames that no codec writes into given memory are left alone.
        """
        ready = []
        for job in jobs:
            desc = job.desc
            if (
                idle > 0
                and pages.worth_faulting(desc.frame_nbytes)
                and decodes_into(desc)
            ):
                out = np.empty(desc.shape, desc.dtype)
                if pages.needs_faulting(out):
                    _submit(pages.fault_in, out)
                    idle -= 1
                job = replace(job, out=out)
            ready.append(job)
        return ready

    def _background_limit(self) -> int:
        """How many frames may be loaded ahead of reads: a quarter of the
        cache's worth."""
        return self.cache.max_bytes // 4 // max(self.frame_nbytes, 1)

    def _prefetch(self, indices: Sequence[int]) -> None:
        """Load frames in the background, within a quarter of the cache."""
        _, claimed, _ = self._claim(list(indices)[: self._background_limit()])
        if not claimed:
            return

        def run() -> None:
            try:
                jobs = self._fetch(claimed)
            except Exception as error:  # readers waiting for them get the error
                logger.debug("read-ahead of %d frames failed: %s", len(claimed), error)
                return
            self._decode_later(jobs)

        _submit(run)

    def _decode_later(self, jobs: Sequence[_Job]) -> None:
        """Decode fetched frames in the background, into the cache."""
        try:
            for job in jobs:
                _submit(self._decode, job, None)
        except RuntimeError as error:  # the pool is shut down (exit)
            for job in jobs:
                self._settle(job.index, job.future, error)

    def _neighbours(
        self,
        grid: _FrameGrid,
        rows: tuple[int, int],
        columns: tuple[int, int],
        own: Collection[int],
    ) -> list[int]:
        """Frames of the ring of tiles around a read, to fetch with its frames.

        A request over DICOMweb costs a round trip however many frames it
        holds. Reads that go on near earlier ones then find their frames
        cached, while at least a quarter of the neighbours fetched so far
        were read (judged once 64 were fetched); otherwise none are asked for.
        """
        if not getattr(self._source(0), "fetches_neighbours", False):
            return []
        fetched, read = self._neighbour_counts
        if fetched >= _NEIGHBOURS_PROBATION and read < _NEIGHBOURS_MIN_USE * fetched:
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

    def _claim_neighbours(
        self, neighbours: Sequence[int], claimed: dict[int, Future]
    ) -> dict[int, Future]:
        """Claim the neighbours that a read's requests can carry, within a
        quarter of the cache."""
        if not neighbours:
            return {}
        parts = {int(self.part_of_frame[index]) for index in claimed}
        wanted = [i for i in neighbours if int(self.part_of_frame[i]) in parts]
        _, extra, _ = self._claim(wanted[: self._background_limit()])
        with self._pending_lock:
            self._unread_neighbours.update(extra)
            self._neighbour_counts[0] += len(extra)
        return extra

    def _note_read(self, indices: Sequence[int]) -> None:
        """Count the neighbours fetched earlier that a read asks for."""
        if not self._unread_neighbours:
            return
        with self._pending_lock:
            read = self._unread_neighbours.intersection(int(i) for i in indices)
            self._unread_neighbours -= read
            self._neighbour_counts[1] += len(read)

    def read_region(
        self,
        channel: int,
        plane: int,
        rows: tuple[int, int],
        columns: tuple[int, int],
        fill: float,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
        dtype: np.dtype | None = None,
        out: np.ndarray | None = None,
        absent: float | None = None,
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
        fill: float
            Value of pixels outside the matrix, and of absent tiles unless
            `absent` says otherwise
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

        Returns
        -------
        numpy.ndarray
            Pixels of shape (rows, columns, samples): `out` when given

        """
        if transform is not None and self._rgba:
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
        opaque = _OpaqueRGBA(out) if self._rgba else None

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
        self.load_frames(
            list(placement),
            paste,
            ahead,
            None if ahead else lambda: self._neighbours(grid, rows, columns, placement),
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
        """Frames of the regions a scan would read next (none for other reads)."""
        regions = self._readahead.observe((channel, plane), (*rows, *columns))
        if not regions:
            return []
        grid = self.grid(channel, plane)
        total_rows, total_columns = self.total_shape
        frames: dict[int, None] = {}
        for r0, r1, c0, c1 in regions:
            r0, r1 = max(r0, 0), min(r1, total_rows)
            c0, c1 = max(c0, 0), min(c1, total_columns)
            for index, _, _ in grid.frames_in(r0, r1, c0, c1):
                frames[index] = None
        return list(frames)
