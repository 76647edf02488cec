"""Frames of encapsulated pixel data located by the file's offset table.

A Basic or Extended Offset Table says where every frame starts, so a file
can be opened without walking (and so reading) its fragments: opening costs
the same for ten frames as for a hundred thousand. Tables are wrong in some
files, so they are trusted only as far as they are checked.
:func:`table_index` checks the table's shape and the items at its first and
last entries when the file is opened; :class:`TableFrameIndex` checks the
items of every frame when the frame is read: the frame's byte range must hold
whole fragment items and nothing else, and start like the first frame (with
the marker that starts a JPEG, JPEG 2000 or JPEG XL stream, if the first
frame does). A table that fails a check at opening is not used; one that
fails when a frame is read raises :class:`OffsetTableMismatchError`, upon which
:class:`dicomslide.fileframes.FileFrameSource` scans the file instead. No
frame is ever taken from bytes a check rejected.

The module also holds the reading of byte ranges and the splitting of item
sequences that the frame indexes of :mod:`dicomslide.fileframes` share.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from dicomslide.errors import FrameRetrievalError

ITEM = 0xE000FFFE  # (FFFE,E000) read as little endian uint32 (group, element)
SEQUENCE_DELIMITER = 0xE0DDFFFE
# Bytes a frame's encoded stream can start with; used to group fragments into
# frames when neither a Basic nor an Extended Offset Table says where they are.
FRAME_START_MARKERS = (
    b"\xff\xd8",  # JPEG, JPEG-LS
    b"\xff\x4f\xff\x51",  # JPEG 2000 codestream
    b"\x00\x00\x00\x0cjP  ",  # JP2 file
    b"\xff\x0a",  # JPEG XL codestream
    b"\x00\x00\x00\x0cJXL ",  # JPEG XL container
)
# Frames closer than this in a file are read with one call.
_MAX_READ_GAP = 256 * 1024
# Fragments of the last frame walked at opening before the table is given up
_MAX_LAST_FRAGMENTS = 1024


class OffsetTableMismatchError(Exception):
    """An offset table disagrees with the items at the place it gives a frame.

    Parameters
    ----------
    frame_number: int
        One-based number of the frame whose bytes fail the check
    reason: str
        What the bytes there hold instead

    """

    def __init__(self, frame_number: int, reason: str) -> None:
        super().__init__(f"frame {frame_number}: {reason}")
        self.frame_number = frame_number


class FrameBytes(Protocol):
    """The reading of a file's bytes that frame indexes need."""

    def pread_available(self, length: int, offset: int, frame_number: int) -> bytes:
        """Up to `length` bytes at `offset` (fewer where the file ends)."""

    def read_runs(self, runs: Sequence[tuple[int, int, int]]) -> list[bytes]:
        """What the file holds of each range (begin, end, frame number)."""

    def truncation_error(
        self, needed: int, available: int, frame_number: int
    ) -> FrameRetrievalError:
        """The error for a frame that reaches past the end of the file."""

    def error(
        self, message: str, frame_number: int | None = None
    ) -> FrameRetrievalError:
        """An error about a frame that names the instance and the file."""


def starts_with_marker(data: bytes | memoryview) -> bool:
    """Whether bytes start with a marker that starts an encoded frame."""
    head = bytes(data[:12])
    return any(head.startswith(marker) for marker in FRAME_START_MARKERS)


def ends_stream(data: bytes | memoryview) -> bool:
    """Whether bytes end with the marker that ends a JPEG, JPEG-LS or JPEG
    2000 stream (FFD9, which no other place in those streams holds), maybe
    padded to an even length."""
    tail = bytes(data[-3:])
    return tail[1:] == b"\xff\xd9" or tail == b"\xff\xd9\x00"


def split_items(data: bytes | memoryview) -> list[memoryview] | None:
    """The values of the fragment items that make up `data` exactly, or None
    when `data` are not a sequence of whole items."""
    view = memoryview(data)
    parts = []
    position = 0
    while position < len(view):
        if position + 8 > len(view):
            return None
        tag, length = struct.unpack_from("<II", view, position)
        end = position + 8 + length
        if tag != ITEM or end > len(view):
            return None
        parts.append(view[position + 8 : end])
        position = end
    return parts


def join_fragments(data: bytes, source: FrameBytes, frame_number: int) -> bytes:
    """The frame held by the fragment items `data` (headers included)."""
    parts = split_items(data)
    if parts is None:
        raise source.error("malformed fragment item", frame_number)
    return b"".join(parts)


def read_spans(
    source: FrameBytes,
    spans: Sequence[tuple[int, ...]],
    frame_numbers: list[int],
) -> list[bytes]:
    """Read byte ranges, one range per run of ranges that lie close together
    (all runs handed to :meth:`FrameBytes.read_runs` at once)."""
    order = sorted(range(len(spans)), key=lambda i: spans[i][0])
    frames: list[bytes] = [b""] * len(spans)
    runs: list[list[int]] = []
    ends: list[int] = []
    for i in order:
        if runs and spans[i][0] - ends[-1] <= _MAX_READ_GAP:
            runs[-1].append(i)
            ends[-1] = max(ends[-1], spans[i][1])
        else:
            runs.append([i])
            ends.append(spans[i][1])
    read = source.read_runs(
        [
            (spans[run[0]][0], end, frame_numbers[run[0]])
            for run, end in zip(runs, ends, strict=True)
        ]
    )
    for run, data in zip(runs, read, strict=True):
        begin = spans[run[0]][0]
        view = memoryview(data)
        for i in run:
            if spans[i][1] - begin > len(data):
                raise source.truncation_error(
                    spans[i][1], begin + len(data), frame_numbers[i]
                )
            frames[i] = bytes(view[spans[i][0] - begin : spans[i][1] - begin])
    return frames


class TableFrameIndex:
    """Frames at the places an offset table gives, checked as they are read.

    Parameters
    ----------
    starts: numpy.ndarray
        File offset of each frame's first item (int64)
    ends: Union[numpy.ndarray, int]
        Where each frame's items end (the ranges of an Extended Offset
        Table: each frame is one item whose value is the whole range after its
        header, maybe but for one byte of padding); or, for a Basic Offset
        Table, where the last frame's items end: every other frame's items
        then end where the next frame starts, however many they are
    marked: Tuple[bool, bool]
        Whether frames start with a marker of :data:`FRAME_START_MARKERS`,
        and whether they end with the marker that ends a stream (as the
        first frame does): a frame that does not, when the first does, is
        not the frame the table says

    """

    def __init__(
        self,
        starts: np.ndarray,
        ends: np.ndarray | int,
        marked: tuple[bool, bool],
        open_end: bool = False,
    ) -> None:
        self._starts = starts
        self._ends = ends
        self._start_marked, self._end_marked = marked
        self._open_end = open_end

    def span(self, frame_number: int) -> tuple[int, int]:
        """Byte range of a frame's items in the file (headers included)."""
        i = frame_number - 1
        if isinstance(self._ends, int):
            last = i == len(self._starts) - 1
            return int(self._starts[i]), self._ends if last else int(
                self._starts[i + 1]
            )
        return int(self._starts[i]), int(self._ends[i])

    def read(self, source: FrameBytes, frame_numbers: list[int]) -> list[bytes]:
        """Read frames; raise :class:`OffsetTableMismatchError` if the table
        proves wrong for one of them."""
        spans = [self.span(n) for n in frame_numbers]
        data = read_spans(source, spans, frame_numbers)
        return [self.frame(d, n) for d, n in zip(data, frame_numbers, strict=True)]

    def frame(self, data: bytes, frame_number: int) -> bytes:
        """The frame in the bytes of its span, if they hold what it should."""
        if self._open_end and frame_number == len(self._starts):
            data = _up_to_delimiter(data)
        frame = _items_frame(data, frame_number, not isinstance(self._ends, int))
        if (self._start_marked and not starts_with_marker(frame)) or (
            self._end_marked and not ends_stream(frame)
        ):
            raise OffsetTableMismatchError(
                frame_number, "the fragments there are not a whole frame"
            )
        return frame


def _up_to_delimiter(data: bytes) -> bytes:
    """The items at the start of `data`, up to a sequence delimiter."""
    position = 0
    while position + 8 <= len(data):
        tag, length = struct.unpack_from("<II", data, position)
        if tag != ITEM:
            return data[:position] if tag == SEQUENCE_DELIMITER else data
        position += 8 + length
    return data


def _items_frame(data: bytes, frame_number: int, single_item: bool) -> bytes:
    """The frame held by the fragment items `data` (headers included); with
    `single_item`, `data` must be one item (but for a byte of padding)."""
    if single_item:
        tag, length = struct.unpack_from("<II", data) if len(data) >= 8 else (0, 0)
        if tag != ITEM or not 0 <= length - (len(data) - 8) <= 1:
            raise OffsetTableMismatchError(
                frame_number, "no fragment item of the frame's length there"
            )
        return data[8:]
    parts = split_items(data)
    if not parts:
        raise OffsetTableMismatchError(
            frame_number, "the bytes there are not whole fragment items"
        )
    return b"".join(parts)


def table_index(
    fp: Any,
    first: int,
    bot: np.ndarray,
    extended: tuple[np.ndarray, np.ndarray] | None,
    number_of_frames: int,
    file_size: int,
    check: bool = True,
) -> TableFrameIndex | str | None:
    """Index frames by the Extended or else the Basic Offset Table.

    Parameters
    ----------
    fp: file object
        The file, open for reading
    first: int
        File offset of the first fragment item (after the Basic Offset Table)
    bot: numpy.ndarray
        The Basic Offset Table (its uint32 values)
    extended: Union[Tuple[numpy.ndarray, numpy.ndarray], None]
        The Extended Offset Table and its lengths, if the file has them
    number_of_frames: int
        Number of frames
    file_size: int
        Size of the file in bytes
    check: bool, optional
        Whether to check at once where the last frame's items end and that
        the first frame is whole items (a few reads), or else only each frame
        as it is read

    Returns
    -------
    Union[TableFrameIndex, str, None]
        The index; or why the table fails the checks at opening (it does not
        start at the first item, does not increase, reaches past the end of
        the file or past the last item, or its first frame is not whole
        items); or None when the file has no table of one entry per frame.
        Without an index, the file's items are to be scanned. Extended Offset
        Table Lengths that reach into the next frame (a writer that counts the
        item header in) are left aside: the offsets are used as a Basic
        Offset Table's.

    """
    ends: np.ndarray | int
    open_end = False
    lengths: np.ndarray | None = None
    if extended is not None and len(extended[0]) == number_of_frames > 0:
        name = "Extended Offset Table"
        starts = np.add(extended[0], first, dtype=np.int64)
        lengths = extended[1].astype(np.int64)
        if (
            len(lengths) != number_of_frames
            or (starts[1:] < starts[:-1] + 8 + lengths[:-1]).any()
        ):
            # Lengths that reach into the next frame (some writers count the
            # item header in): the offsets are used alone, as a Basic Offset
            # Table's, and checked as frames are read.
            lengths = None
    elif len(bot) == number_of_frames > 0:
        name = "Basic Offset Table"
        starts = np.add(bot, first, dtype=np.int64)
    else:
        return None
    if lengths is not None:
        item_ends = starts + 8 + lengths
        ends, reach = item_ends, int(item_ends.max())
    else:
        if check:
            end = _end_of_items(fp, int(starts[-1]), file_size)
            if end is None:
                return f"the {name} does not lead to the last frame's items"
            ends = reach = end
        else:  # the last frame's items end where a read of it finds
            ends, reach, open_end = file_size, int(starts[-1]) + 8, True
    if starts[0] != first or not (starts[1:] > starts[:-1]).all():
        return f"the {name} does not start at the first item and increase"
    if reach > file_size:
        return f"the {name} reaches past the end of the file"
    index = TableFrameIndex(starts, ends, (False, False), open_end)
    if not check:
        return index
    begin, end = index.span(1)
    fp.seek(begin)
    try:
        frame = index.frame(fp.read(end - begin), 1)
    except OffsetTableMismatchError as mismatch:
        return f"the {name} is wrong for {mismatch}"
    return TableFrameIndex(
        starts, ends, (starts_with_marker(frame), ends_stream(frame)), open_end
    )


def _end_of_items(fp: Any, position: int, file_size: int) -> int | None:
    """Where the items from `position` up to the sequence delimiter end, or
    None if there is no item at `position` or the delimiter does not follow
    within :data:`_MAX_LAST_FRAGMENTS` items inside the file."""
    for count in range(_MAX_LAST_FRAGMENTS + 1):
        fp.seek(position)
        header = fp.read(8)
        if len(header) < 8:
            return None
        tag, length = struct.unpack("<II", header)
        if tag == SEQUENCE_DELIMITER and count:
            return position
        if tag != ITEM:
            return None
        position += 8 + length
        if position > file_size:
            return None
    return None
