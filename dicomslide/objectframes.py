"""Frames of Part 10 files in object storage, read with ranged requests.

:class:`ObjectFrameSource` is the frame source of local files
(:class:`dicomslide.fileframes.FileFrameSource`) with the file reached
through :class:`dicomslide.objects.ObjectFile`: the same header reader and
frame index, on a :class:`dicomslide.objects.RangeReader`. The bytes read with
the header (:func:`read_object_header`) hold the start of the pixel data, so
that an Extended Offset Table (in the header) or a Basic Offset Table (right
after it) indexes the frames without another request, or with one when the
table goes on past them. A read fetches each run of frames that lie close
together with one ranged request, and the runs of a read concurrently.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from typing import Any, BinaryIO, cast

import numpy as np
from pydicom.dataset import Dataset, FileDataset

from dicomslide.codec import PixelDescription
from dicomslide.errors import DicomSlideError
from dicomslide.fileframes import (
    _ITEM,
    FileFrameSource,
    _EncapsulatedFrameIndex,
)
from dicomslide.files import PIXEL_DATA_OFFSET, parse_part10_header
from dicomslide.objects import ObjectFile, RangeReader

#: Attribute of a header read from an object: its :class:`ObjectFile`
OBJECT_FILE = "_dicomslide_object_file"
#: Attribute of a header read from an object: the bytes read after it
#: (offset, bytes), which start the pixel data
_BYTES_AFTER = "_dicomslide_bytes_after_header"


def read_object_header(file: ObjectFile) -> FileDataset:
    """Read the header of a Part 10 file in object storage.

    One request when the header ends within the first
    :data:`dicomslide.objects.FIRST_READ` bytes, a few more for long headers.

    Parameters
    ----------
    file: dicomslide.objects.ObjectFile
        The object

    Returns
    -------
    pydicom.dataset.FileDataset
        What :func:`dicomslide.files.parse_part10_header` reads; it knows its
        object (:data:`OBJECT_FILE`) and the bytes read past it

    Raises
    ------
    OSError
        When the object cannot be read (a missing one:
        :class:`dicomslide.errors.ObjectNotFoundError`)
    dicomslide.errors.MetadataError
        When it is not a Part 10 file or its header cannot be parsed

    """
    reader = RangeReader(file)
    header = parse_part10_header(cast(BinaryIO, reader), file.url)
    offset = int(getattr(header, PIXEL_DATA_OFFSET))
    for begin, data in reader.chunks:
        if begin <= offset < begin + len(data):
            setattr(header, _BYTES_AFTER, (offset, data[offset - begin :]))
    setattr(header, OBJECT_FILE, file)
    return header


class ObjectFrameSource(FileFrameSource):
    """Reads the encoded frames of one instance from its object.

    Pickles with its object's URL and storage options (not a connection):
    another process reads with its own.

    Parameters
    ----------
    file: dicomslide.objects.ObjectFile
        The object
    sop_instance_uid: str
        SOP Instance UID of the instance stored in it
    desc: dicomslide.codec.PixelDescription
        Layout of a frame's pixels (used for native pixel data)
    number_of_frames: int
        Number of frames of the instance
    header: Union[pydicom.Dataset, None], optional
        Its header read with :func:`read_object_header` (else read when
        first needed)

    """

    def __init__(
        self,
        file: ObjectFile,
        sop_instance_uid: str,
        desc: PixelDescription,
        number_of_frames: int,
        header: Dataset | None = None,
    ) -> None:
        super().__init__(file.url, sop_instance_uid, desc, number_of_frames, header)
        self.file = file
        self._pid = os.getpid()

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._pid = os.getpid()

    #: Reads do not ask for the ring of neighbouring frames: unlike a
    #: DICOMweb request, a ranged GET carries only the frames between its
    #: ends, so the rows above and below would cost requests of their own
    fetches_neighbours = False

    @property
    def location(self) -> str:
        """str: URL of the object (without credentials)"""
        return self.file.url

    def read_header(self) -> Dataset:
        """Read the object's header (see :func:`read_object_header`)."""
        header = read_object_header(self.file)
        self._header = header
        return header

    def open_file(self) -> BinaryIO:
        """The object as a file; the bytes read with the header are kept."""
        after = getattr(self._header, _BYTES_AFTER, None)
        return cast(BinaryIO, RangeReader(self.file, [after] if after else []))

    def file_size(self, fp: BinaryIO) -> int:
        """Size of the object (from its listing, else one request)."""
        return self.file.size

    def index_encapsulated(
        self,
        fp: BinaryIO,
        start: int,
        extended: tuple[np.ndarray, np.ndarray] | None,
        file_size: int,
        error: Any,
    ) -> _EncapsulatedFrameIndex:
        """Index encapsulated pixel data; with a Basic Offset Table of every
        frame (or one frame alone), from the table without walking the
        fragments: a frame's bytes reach to where the next frame starts, and
        its fragments are taken apart when it is read."""
        if extended is None:
            spans = _spans_from_basic_table(fp, start, self._number_of_frames)
            if spans is not None:
                # up to the end of the pixel data; past the end of an object
                # cut before the last frame's first fragment
                spans[-1, 1] = max(file_size, spans[-1, 0] + 9)
                fragmented = np.ones(self._number_of_frames, dtype=bool)
                return _EncapsulatedFrameIndex(spans, fragmented, file_size)
        return super().index_encapsulated(fp, start, extended, file_size, error)

    def read_runs(self, runs: Sequence[tuple[int, int, int]]) -> list[bytes]:
        """Read byte ranges (begin, end, frame number), one request each,
        concurrently."""
        try:
            return self.file.read_ranges([(begin, end) for begin, end, _ in runs])
        except (OSError, DicomSlideError) as error:
            raise self._error(f"cannot read object: {error}", runs[0][2]) from error

    def pread_available(self, length: int, offset: int, frame_number: int) -> bytes:
        """Read up to `length` bytes at an offset of the object."""
        return self.read_runs([(offset, offset + length, frame_number)])[0]


def _spans_from_basic_table(
    fp: BinaryIO, start: int, number_of_frames: int
) -> np.ndarray | None:
    """Where frames start, from a Basic Offset Table that has an entry for
    each frame (or is empty for a single frame), as (start, next start) with
    the last end left for the caller; None without such a table."""
    fp.seek(start)
    item = fp.read(8)
    if len(item) < 8:
        return None
    tag, length = struct.unpack("<II", item)
    if tag != _ITEM:
        return None
    first = start + 8 + length  # the first fragment's item
    if length == 0 and number_of_frames == 1:
        starts = np.array([first], dtype=np.int64)
    elif length == 4 * number_of_frames and number_of_frames > 0:
        table = fp.read(length)
        if len(table) < length:
            return None
        starts = first + np.frombuffer(table, "<u4").astype(np.int64)
        if starts[0] != first or np.any(np.diff(starts) <= 0):
            return None  # not a table to trust: walk the fragments
    else:
        return None
    spans = np.empty((number_of_frames, 2), dtype=np.int64)
    spans[:, 0] = starts
    spans[:-1, 1] = starts[1:]
    return spans
