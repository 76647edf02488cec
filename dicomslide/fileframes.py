"""Frames of a Part 10 file, read from the file itself.

:class:`FileFrameSource` serves the frames of one instance stored in a file:
it indexes once where each frame lies (from the Extended or Basic Offset
Table without reading the fragments, see :mod:`dicomslide.offsettables`;
else from a scan of the fragments, or the fixed size of native frames), then
reads runs of adjacent frames with one positioned read. A table that proves
wrong when a frame is read gives way to a scan. Files cut short lose only the
frames past the cut; damaged pixel data raise
:class:`dicomslide.errors.FrameRetrievalError` naming the instance and frame.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import struct
import threading
from array import array
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import UID

from dicomslide import uids
from dicomslide.codec import (
    NATIVE_TRANSFER_SYNTAXES,
    PixelDescription,
    require_known_transfer_syntax,
)
from dicomslide.errors import FrameError, FrameRetrievalError
from dicomslide.fetch import checked_frame_numbers, split_frames
from dicomslide.files import PIXEL_DATA_OFFSET, advise_access, read_part10_header
from dicomslide.offsettables import (
    ITEM,
    SEQUENCE_DELIMITER,
    OffsetTableMismatchError,
    TableFrameIndex,
    join_fragments,
    read_spans,
    starts_with_marker,
    table_index,
)

logger = logging.getLogger(__name__)

_PIXEL_DATA_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)
_UNDEFINED_LENGTH = 0xFFFFFFFF
#: VRs of a Pixel Data element with an explicit VR
_PIXEL_DATA_VRS = (b"OB", b"OW", b"OF", b"OD", b"UN")
_BIG_ENDIAN = uids.ExplicitVRBigEndian
_DEFLATED = uids.DeflatedExplicitVRLittleEndian
# Bytes of a file mapped at a time when scanning its fragment items
_SCAN_WINDOW = 16 * 1024 * 1024
_ITEM_HEADER = struct.Struct("<II")


class FileFrameSource:
    """Reads the encoded frames of one instance from its Part 10 file.

    Parameters
    ----------
    path: Union[str, os.PathLike]
        Path of the file
    sop_instance_uid: str
        SOP Instance UID of the instance stored in the file
    desc: dicomslide.codec.PixelDescription
        Layout of a frame's pixels (used for native pixel data)
    number_of_frames: int
        Number of frames of the instance
    header: Union[pydicom.Dataset, None], optional
        The file's metadata read with :func:`dicomslide.files.read_part10_header`
        (which knows where the pixel data start), to spare a second reading

    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        sop_instance_uid: str,
        desc: PixelDescription,
        number_of_frames: int,
        header: Dataset | None = None,
    ) -> None:
        self.path = Path(path)
        self._header = header
        self.sop_instance_uid = sop_instance_uid
        self._desc = desc
        self._number_of_frames = number_of_frames
        self._lock = threading.Lock()
        self._lock_pid = os.getpid()
        self._index: _FrameIndex | None = None
        self._transfer_syntax_uid: str | None = None
        self._fd: int | None = None
        self._pid = -1

    @property
    def transfer_syntax_uid(self) -> str:
        """str: transfer syntax of the file (from its file meta information)"""
        self._get_index()
        return str(self._transfer_syntax_uid)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_lock=None, _lock_pid=-1, _fd=None, _pid=-1, _header=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._lock_pid = os.getpid()

    def __del__(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            with contextlib.suppress(OSError):
                os.close(self._fd)

    def error(
        self, message: str, frame_number: int | None = None
    ) -> FrameRetrievalError:
        """The error to raise about this instance's file (or one of its frames).

        Parameters
        ----------
        message: str
            What is wrong
        frame_number: Union[int, None], optional
            One-based number of the frame being read

        Returns
        -------
        dicomslide.errors.FrameRetrievalError
            The error, naming the instance, the frame and the file

        """
        return FrameRetrievalError(
            f"{message} (file {self.location})", self.sop_instance_uid, frame_number
        )

    @property
    def location(self) -> str:
        """str: where the file is, as messages name it"""
        return str(self.path)

    # -- how the file is reached: what a source of remote files replaces ------

    def read_header(self) -> Dataset:
        """Read the file's header (see :func:`dicomslide.files.read_part10_header`)."""
        return read_part10_header(self.path)

    def open_file(self) -> BinaryIO:
        """Open the file for reading (to index it)."""
        return open(self.path, "rb")

    def file_size(self, fp: BinaryIO) -> int:
        """Size of the file opened as `fp`."""
        return os.fstat(fp.fileno()).st_size

    #: Whether an offset table is checked when the file is indexed (where the
    #: last frame's items end, the first frame's items and markers), or only
    #: frame by frame as frames are read: a source of remote files saves the
    #: requests
    checks_table_at_opening = True

    def read_runs(self, runs: Sequence[tuple[int, int, int]]) -> list[bytes]:
        """Read byte ranges (begin, end, frame number) of the file.

        Returns what the file holds of each range: less at its end.
        """
        return [self.pread_available(end - begin, begin, n) for begin, end, n in runs]

    def _file_descriptor(self, frame_number: int) -> int:
        if self._fd is None or self._pid != os.getpid():
            # after fork() the child opens its own descriptor
            try:
                self._fd = os.open(self.path, os.O_RDONLY)
            except OSError as error:
                raise self.error(f"cannot open file: {error}", frame_number) from error
            # frames are read in runs that the loader chooses
            advise_access(self._fd, sequential=False)
            self._pid = os.getpid()
        return self._fd

    def _process_lock(self) -> threading.Lock:
        """The lock of the index, new in a process forked from this one (where
        the lock could be held by a thread that was not forked)."""
        if self._lock_pid != os.getpid():
            self._lock = threading.Lock()
            self._lock_pid = os.getpid()
        return self._lock

    def _rescanned(
        self, index: _FrameIndex, mismatch: OffsetTableMismatchError
    ) -> _FrameIndex:
        """The index by a scan of the file, built once after `index` (from an
        offset table) proved wrong. A scan that fails is not tried again: the
        frames the table places right are still read (see
        :class:`_UnscannedIndex`)."""
        with self._process_lock():
            if self._index is index:
                self._warn_table(f"the offset table is wrong for {mismatch}")
                try:
                    self._index = self._build_index(
                        mismatch.frame_number, use_tables=False
                    )
                except FrameRetrievalError as failure:
                    self._index = _UnscannedIndex(index, str(failure))
                    raise
            return self._index or index

    def _get_index(self, frame_number: int | None = None) -> _FrameIndex:
        """The file's frame index, built on first use (a read of `frame_number`)."""
        if self._index is None:
            with self._process_lock():
                if self._index is None:
                    self._index = self._build_index(frame_number)
        return self._index

    def _build_index(
        self, frame_number: int | None, use_tables: bool = True
    ) -> _FrameIndex:
        """Index the file's frames; errors name the frame being read. Without
        `use_tables`, encapsulated frames are found by scanning the file's
        items whatever its offset tables say."""

        def error(message: str) -> FrameRetrievalError:
            return self.error(message, frame_number)

        try:
            dataset = self._header
            offset = getattr(dataset, PIXEL_DATA_OFFSET, None)
            if dataset is None or offset is None:
                dataset = self.read_header()
                offset = getattr(dataset, PIXEL_DATA_OFFSET)
            with self.open_file() as fp:
                fp.seek(offset)
                transfer_syntax_uid = str(
                    dataset.file_meta.get("TransferSyntaxUID", "")
                )
                self._transfer_syntax_uid = transfer_syntax_uid
                if transfer_syntax_uid == _DEFLATED:
                    return self._deflated_index(transfer_syntax_uid)
                element = _pixel_data_element(fp, transfer_syntax_uid)
                if element is None:
                    raise error("file has no pixel data")
                start, length = element
                self._check_encapsulation(
                    transfer_syntax_uid, length == _UNDEFINED_LENGTH, frame_number
                )
                file_size = self.file_size(fp)
                rejected: list[str] = []
                if transfer_syntax_uid in NATIVE_TRANSFER_SYNTAXES:
                    self._check_native_length(length, frame_number)
                    bits = _native_frame_size_bits(self._desc)
                    self._warn_if_cut((max(file_size - start, 0) * 8) // bits + 1)
                    return _NativeFrameIndex(start, self._desc)
                extended = None
                if (
                    "ExtendedOffsetTable" in dataset
                    and "ExtendedOffsetTableLengths" in dataset
                ):
                    extended = (
                        np.frombuffer(dataset.ExtendedOffsetTable, "<u8"),
                        np.frombuffer(dataset.ExtendedOffsetTableLengths, "<u8"),
                    )
                index = _encapsulated_index(
                    fp,
                    start,
                    self._number_of_frames,
                    extended,
                    file_size,
                    error,
                    use_tables and self.checks_table_at_opening,
                    use_tables,
                    rejected.append,
                )
                if isinstance(index, _EncapsulatedFrameIndex):
                    self._warn_if_cut(index.first_lost)
                    if rejected and index.first_lost is None:
                        self._warn_table(rejected[0])
                return index
        except FrameError:
            raise
        except Exception as cause:
            raise error(f"cannot read file: {cause}") from cause

    def _warn_table(self, reason: str) -> None:
        logger.warning(
            "instance %s: %s in file %s; its frames are located by scanning "
            "the pixel data instead",
            self.sop_instance_uid,
            reason,
            self.path,
        )

    def _warn_if_cut(self, first_lost: int | None) -> None:
        """Say once that the file ends inside the data of frame `first_lost`
        (nothing if it is None or past the last frame)."""
        if first_lost is not None and first_lost <= self._number_of_frames:
            logger.warning(
                "instance %s: file %s ends inside its pixel data: frames %d to %d "
                "are lost",
                self.sop_instance_uid,
                self.location,
                first_lost,
                self._number_of_frames,
            )

    def _check_native_length(self, length: int, frame_number: int | None) -> None:
        """Check that native Pixel Data hold the frames the metadata describe
        (else every frame would be read from the wrong bytes)."""
        needed = -(-self._number_of_frames * _native_frame_size_bits(self._desc) // 8)
        if not needed <= length <= needed + 1:  # a value may be padded to even
            desc = self._desc
            raise self.error(
                f"the Pixel Data hold {length} bytes, but {self._number_of_frames} "
                f"frames of {desc.rows} x {desc.columns} pixels x "
                f"{desc.samples_per_pixel} samples x {desc.bits_allocated} bits "
                f"make {needed}",
                frame_number,
            )

    def _check_encapsulation(
        self, transfer_syntax_uid: str, encapsulated: bool, frame_number: int | None
    ) -> None:
        """Check that the Pixel Data are stored as the transfer syntax says:
        native with a defined length, or encapsulated; the syntax is never
        guessed from the layout."""
        if transfer_syntax_uid in NATIVE_TRANSFER_SYNTAXES:
            if encapsulated:
                raise self.error(
                    f"the Pixel Data are encapsulated, but transfer syntax "
                    f"{transfer_syntax_uid} stores them native",
                    frame_number,
                )
            return
        if encapsulated:
            return  # a syntax not known here is reported by the decoder
        if not transfer_syntax_uid:
            raise self.error(
                "the file meta information lack the Transfer Syntax UID that "
                "says how the native Pixel Data are encoded",
                frame_number,
            )
        require_known_transfer_syntax(
            transfer_syntax_uid,
            self.sop_instance_uid,
            frame_number,
            ": how it encodes the native (not encapsulated) Pixel Data is "
            "not known, and they are not read as another syntax "
            f"(file {self.location})",
        )
        raise self.error(
            f"transfer syntax {transfer_syntax_uid} stores Pixel Data "
            "encapsulated, but the file's have a defined length",
            frame_number,
        )

    def _deflated_index(self, transfer_syntax_uid: str) -> _FrameIndex:
        # A deflated data set can't be addressed in the file: keep the
        # inflated pixel data in memory.
        with self.open_file() as fp:
            dataset = pydicom.dcmread(fp)
        return _MemoryFrameIndex(
            bytes(dataset.PixelData),
            transfer_syntax_uid,
            self._desc,
            self._number_of_frames,
        )

    def read_frames(self, frame_numbers: Sequence[int]) -> list[bytes]:
        """Read encoded frames.

        Parameters
        ----------
        frame_numbers: Sequence[int]
            One-based frame numbers within the instance

        Returns
        -------
        List[bytes]
            Encoded frames in the order of `frame_numbers`

        Raises
        ------
        dicomslide.errors.FrameRetrievalError
            When a frame number is out of range, or the file is unreadable or
            truncated

        """
        numbers = checked_frame_numbers(
            frame_numbers, self._number_of_frames, self.sop_instance_uid
        )
        index = self._get_index(numbers[0])
        try:
            return index.read(self, numbers)
        except OffsetTableMismatchError as mismatch:
            return self._rescanned(index, mismatch).read(self, numbers)

    def pread(self, length: int, offset: int, frame_number: int) -> bytes:
        """Read bytes at an offset of the file; fail if the file ends early."""
        data = self.pread_available(length, offset, frame_number)
        if len(data) < length:
            raise self.truncation_error(
                offset + length, offset + len(data), frame_number
            )
        return data

    def pread_available(self, length: int, offset: int, frame_number: int) -> bytes:
        """Read up to `length` bytes at an offset of the file."""
        try:
            return os.pread(self._file_descriptor(frame_number), length, offset)
        except OSError as error:
            raise self.error(f"cannot read file: {error}", frame_number) from error

    def truncation_error(
        self, needed: int, available: int, frame_number: int
    ) -> FrameRetrievalError:
        """The error for a frame that ends past the end of the file."""
        return self.error(
            f"file is truncated: it ends at byte {available}, but the frame's "
            f"data reach at least byte {needed}",
            frame_number,
        )


def _pixel_data_element(fp: Any, transfer_syntax_uid: str) -> tuple[int, int] | None:
    """Read the Pixel Data element header at the file position.

    Returns where its value starts and its length (:data:`_UNDEFINED_LENGTH`
    for encapsulated pixel data), or None if the element there is not Pixel
    Data. For a transfer syntax not known here, whether the element has an
    explicit VR is read from the element itself.
    """
    position = fp.tell()
    header = fp.read(12)
    if len(header) < 8:
        return None
    byte_order = ">" if transfer_syntax_uid == _BIG_ENDIAN else "<"
    group, element = struct.unpack(f"{byte_order}HH", header[:4])
    if (group << 16 | element) not in _PIXEL_DATA_TAGS:
        return None
    uid = UID(transfer_syntax_uid)
    if uid.is_transfer_syntax:
        implicit = uid.is_implicit_VR
    else:
        implicit = header[4:6] not in _PIXEL_DATA_VRS or header[6:8] != b"\0\0"
    if implicit:
        return position + 8, struct.unpack(f"{byte_order}I", header[4:8])[0]
    if len(header) < 12:
        return None
    return position + 12, struct.unpack(f"{byte_order}I", header[8:12])[0]


class _FrameIndex(Protocol):
    def read(
        self, source: FileFrameSource, frame_numbers: list[int]
    ) -> list[bytes]: ...


class _UnscannedIndex:
    """An offset table's index after the scan that was to replace it failed:
    frames the table places right are read; the others fail, saying why."""

    def __init__(self, table: _FrameIndex, failure: str) -> None:
        self._table = table
        self._failure = failure

    def read(self, source: FileFrameSource, frame_numbers: list[int]) -> list[bytes]:
        try:
            return self._table.read(source, frame_numbers)
        except OffsetTableMismatchError as mismatch:
            raise source.error(
                f"the offset table is wrong for {mismatch}, and the pixel data "
                f"cannot be scanned ({self._failure})",
                mismatch.frame_number,
            ) from None


class _MemoryFrameIndex:
    """Frames of pixel data held in memory."""

    def __init__(
        self,
        pixel_data: bytes,
        transfer_syntax_uid: str,
        desc: PixelDescription,
        number_of_frames: int,
    ) -> None:
        self._frames = split_frames(
            pixel_data, transfer_syntax_uid, desc, number_of_frames
        )

    def read(self, source: FileFrameSource, frame_numbers: list[int]) -> list[bytes]:
        return [self._frames[n - 1] for n in frame_numbers]


def _native_frame_size_bits(desc: PixelDescription) -> int:
    return desc.rows * desc.columns * desc.samples_per_pixel * desc.bits_allocated


class _NativeFrameIndex:
    """Frames of native (uncompressed) pixel data: fixed size, back to back."""

    def __init__(self, start: int, desc: PixelDescription) -> None:
        self._start = start
        self._bits = _native_frame_size_bits(desc)

    def read(self, source: FileFrameSource, frame_numbers: list[int]) -> list[bytes]:
        if self._bits % 8 == 0:
            size = self._bits // 8
            spans = [
                (self._start + (n - 1) * size, self._start + n * size)
                for n in frame_numbers
            ]
            return read_spans(source, spans, frame_numbers)
        # Bit-packed frames (1 bit per pixel) that don't end on a byte boundary
        frames = []
        for n in frame_numbers:
            first_bit = (n - 1) * self._bits
            begin = self._start + first_bit // 8
            end = self._start + -(-(first_bit + self._bits) // 8)
            data = source.pread(end - begin, begin, n)
            bits = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little")
            shift = first_bit % 8
            frames.append(
                np.packbits(
                    bits[shift : shift + self._bits], bitorder="little"
                ).tobytes()
            )
        return frames


class _EncapsulatedFrameIndex:
    """Frames of encapsulated pixel data.

    ``spans[i]`` is the byte range of frame i+1 in the file. A frame of a single
    fragment has its data range; a frame of several fragments has the range of
    its items (headers included), which are taken apart after reading.
    """

    def __init__(
        self, spans: np.ndarray, fragmented: np.ndarray, file_size: int | None = None
    ) -> None:
        self._spans = spans
        self._fragmented = fragmented
        #: number of the first frame that ends past the end of the file (of
        #: `file_size` bytes); None if none does or the size is not given.
        #: Reading such a frame reports the truncation.
        self.first_lost: int | None = None
        if file_size is not None:
            lost = np.flatnonzero(spans[:, 1] > file_size)
            self.first_lost = int(lost[0]) + 1 if len(lost) else None

    def read(self, source: FileFrameSource, frame_numbers: list[int]) -> list[bytes]:
        spans = [tuple(int(v) for v in self._spans[n - 1]) for n in frame_numbers]
        frames = read_spans(source, spans, frame_numbers)
        for i, n in enumerate(frame_numbers):
            if self._fragmented[n - 1]:
                frames[i] = join_fragments(frames[i], source, n)
        return frames


def _encapsulated_index(
    fp: Any,
    start: int,
    number_of_frames: int,
    extended: tuple[np.ndarray, np.ndarray] | None,
    file_size: int,
    error: Any,
    check_table: bool,
    use_tables: bool,
    rejected: Callable[[str], None],
) -> _FrameIndex:
    """Index encapsulated pixel data: by their offset table if it has one
    entry per frame and passes the checks of
    :func:`dicomslide.offsettables.table_index` (and `use_tables`), else by
    scanning their items; a table that fails them is passed to `rejected`
    with the reason."""
    fp.seek(start)
    header = fp.read(8)
    if len(header) < 8:
        raise error("file is truncated inside the pixel data")
    tag, length = struct.unpack("<II", header)
    if tag != ITEM:
        raise error("encapsulated pixel data do not start with an item")
    table = fp.read(length)
    if len(table) < length:
        raise error("file is truncated inside the Basic Offset Table")
    bot = np.frombuffer(table, "<u4")
    first = start + 8 + length  # first fragment item
    if use_tables:
        advise_access(fp, sequential=False)
        index = table_index(
            fp, first, bot, extended, number_of_frames, file_size, check_table
        )
        if isinstance(index, TableFrameIndex):
            return index
        if index is not None:
            rejected(index)
    bot = bot.astype(np.int64) if use_tables else bot[:0].astype(np.int64)
    advise_access(fp, sequential=True)
    items, closed = _scan_items(fp, first, file_size, error)
    if not closed:
        return _cut_index(fp, items, first, bot, number_of_frames, file_size, error)
    fragmented = np.zeros(number_of_frames, dtype=bool)
    offsets = items[:, 0]
    if len(items) == number_of_frames:
        spans = np.stack([offsets + 8, offsets + 8 + items[:, 1]], axis=1)
        return _EncapsulatedFrameIndex(spans, fragmented)
    if (
        len(bot) == number_of_frames
        and len(items) > number_of_frames
        and _offsets_agree(first + bot, offsets)
    ):
        frame_of_item = np.searchsorted(first + bot, offsets, side="right") - 1
    else:
        frame_of_item = _group_by_start_marker(fp, items)
    if frame_of_item[-1] + 1 != number_of_frames:
        raise error(
            f"pixel data hold {len(items)} fragments that make "
            f"{frame_of_item[-1] + 1} frames, but Number of Frames is "
            f"{number_of_frames}"
        )
    spans = _group_spans(items, frame_of_item, number_of_frames)
    fragmented[:] = True
    return _EncapsulatedFrameIndex(spans, fragmented)


def _group_spans(
    items: np.ndarray, frame_of_item: np.ndarray, number_of_frames: int
) -> np.ndarray:
    """Byte ranges of frames of several fragments (item headers included);
    frames without fragments get (0, 0). `frame_of_item` does not decrease."""
    spans = np.zeros((number_of_frames, 2), dtype=np.int64)
    frames, first = np.unique(frame_of_item, return_index=True)
    last = np.append(first[1:], len(items)) - 1
    spans[frames, 0] = items[first, 0]
    spans[frames, 1] = items[last, 0] + 8 + items[last, 1]
    return spans


def _cut_index(
    fp: Any,
    items: np.ndarray,
    first: int,
    bot: np.ndarray,
    number_of_frames: int,
    file_size: int,
    error: Any,
) -> _EncapsulatedFrameIndex:
    """Index encapsulated pixel data that end before their sequence delimiter:
    a file cut short.

    Frames wholly before the cut keep their place. Every other frame gets a
    byte range that ends past the end of the file, so that reading it reports
    the truncation with its frame number. Where frames start is taken from
    the Basic Offset Table when it agrees with the fragments found, else
    from the fragments (one per frame, or grouped by the markers that start a
    frame's stream). The last frame found, if it has several fragments, is
    whole only if its last fragment ends its stream (see :func:`_ends_stream`):
    the cut may have taken its other fragments.
    """
    past_end = (file_size, file_size + 1)
    offsets = items[:, 0]
    starts = first + bot
    if len(bot) == number_of_frames and _offsets_agree(starts, offsets):
        # a frame ends where the next one starts
        spans = np.empty((number_of_frames, 2), dtype=np.int64)
        spans[:, 0] = starts
        spans[:-1, 1] = starts[1:]
        offset, n = _item(items, -1)
        one_each = len(items) == number_of_frames and offset == starts[-1]
        whole = offset >= starts[-1] and (
            one_each or _ends_stream(fp, (offset, n), file_size)
        )
        spans[-1] = (starts[-1], offset + 8 + n) if whole else past_end
    else:
        if _starts_with_marker(fp, _item(items, 0)):
            frame_of_item = _group_by_start_marker(fp, items)
        else:
            frame_of_item = np.arange(len(items))
        frames = int(frame_of_item[-1]) + 1
        if frames > number_of_frames:
            raise error(
                f"pixel data hold {len(items)} fragments that make at least "
                f"{frames} frames, but Number of Frames is {number_of_frames}"
            )
        spans = _group_spans(items, frame_of_item, number_of_frames)
        spans[frames:] = past_end
        if frames < len(items) and not _ends_stream(fp, _item(items, -1), file_size):
            # frames of several fragments: the last one found may lack some
            spans[frames - 1, 1] = max(int(spans[frames - 1, 1]), file_size + 1)
    return _EncapsulatedFrameIndex(
        spans, np.ones(number_of_frames, dtype=bool), file_size
    )


def _ends_stream(fp: Any, item: tuple[int, int], file_size: int) -> bool:
    """Whether a fragment lies whole in the file and ends with the marker
    that ends a JPEG, JPEG-LS or JPEG 2000 stream (FFD9, which no other place
    in those streams holds), possibly padded to an even length."""
    offset, length = item
    end = offset + 8 + length
    if length < 3 or end > file_size:
        return False
    fp.seek(end - 3)
    tail: bytes = fp.read(3)
    return tail[1:] == b"\xff\xd9" or tail == b"\xff\xd9\x00"


def _offsets_agree(starts: np.ndarray, offsets: np.ndarray) -> bool:
    """Whether frame starts from an offset table are fragments found (as far
    as fragments were found) and increase."""
    if len(starts) == 0 or starts[0] != offsets[0] or np.any(np.diff(starts) <= 0):
        return False
    reached = starts[starts <= offsets[-1]]
    return bool(np.isin(reached, offsets).all())


def _starts_with_marker(fp: Any, item: tuple[int, int]) -> bool:
    fp.seek(item[0] + 8)
    return starts_with_marker(fp.read(12))


def _item(items: np.ndarray, i: int) -> tuple[int, int]:
    """(offset, length) of item `i` of an array of them."""
    return int(items[i, 0]), int(items[i, 1])


def _scan_items(
    fp: Any, position: int, file_size: int, error: Any
) -> tuple[np.ndarray, bool]:
    """The (offset, length) of each fragment item up to the sequence
    delimiter (an array of shape (items, 2)), and whether the delimiter closed
    them (else the file ended first; the last item may then reach past the
    end). The item headers are read through maps of successive windows of the
    file (:data:`_SCAN_WINDOW` bytes), so that the scan neither copies the
    file nor keeps more of it mapped than a window."""
    found = array("q")
    append = found.append
    unpack = _ITEM_HEADER.unpack_from
    window: Any = b""
    start = 0
    try:
        while True:
            limit = start + len(window) - 8  # the last header the window holds
            while position <= limit:
                tag, length = unpack(window, position - start)
                if tag != ITEM:
                    break
                append(position)
                append(length)
                position += 8 + length
            else:
                if position > file_size:
                    # The frames before are readable; reading this one
                    # reports the truncation with its frame number.
                    return _pairs(found), False
                if isinstance(window, mmap.mmap):
                    window.close()
                window, start = _window(fp, position, file_size)
                if position - start + 8 > len(window):
                    if not found:
                        raise error("file is truncated inside the pixel data")
                    return _pairs(found), False
                continue
            if tag != SEQUENCE_DELIMITER:
                raise error(f"unexpected tag {tag:#010x} inside the pixel data")
            if not found:
                raise error("encapsulated pixel data hold no fragments")
            return _pairs(found), True
    finally:
        if isinstance(window, mmap.mmap):
            window.close()


def _pairs(found: array[int]) -> np.ndarray:
    return np.frombuffer(found, dtype=np.int64).reshape(-1, 2).copy()


def _window(fp: Any, position: int, file_size: int) -> tuple[Any, int]:
    """The bytes of the file from about `position` (a map where the file can
    be mapped), and the offset they start at."""
    start = position - position % mmap.ALLOCATIONGRANULARITY
    size = min(_SCAN_WINDOW, file_size - start)
    if size <= 0:
        return b"", position
    try:
        window = mmap.mmap(fp.fileno(), size, access=mmap.ACCESS_READ, offset=start)
    except (AttributeError, OSError, ValueError):  # not a file: read from
        # `position`, not again the bytes before it (a remote file's header)
        fp.seek(position)
        return fp.read(min(_SCAN_WINDOW, file_size - position)), position
    if hasattr(window, "madvise"):
        window.madvise(mmap.MADV_SEQUENTIAL)
    return window, start


def _group_by_start_marker(fp: Any, items: np.ndarray) -> np.ndarray:
    frame_of_item = np.zeros(len(items), dtype=np.int64)
    frame = -1
    for i, offset in enumerate(items[:, 0].tolist()):
        fp.seek(offset + 8)
        head = fp.read(12)
        if frame < 0 or starts_with_marker(head):
            frame += 1
        frame_of_item[i] = frame
    return frame_of_item
