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

An object without a usable offset table is indexed by scanning its fragments,
which fetches its pixel data: the read that caused the scan takes its frames
(and the neighbours it carries) from those bytes, so that it costs the scan's
requests and no more. It keeps at most :data:`SCAN_WINDOW` of those bytes
(the latest): the frames of a larger object that fell out of that window are
fetched again, so that a scan never holds a whole object in memory. The bytes
are dropped when that read ends (see :meth:`ObjectFrameSource.read_frames`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any, BinaryIO, cast

from pydicom.dataset import Dataset, FileDataset

from dicomslide.cache import DEFAULT_CACHE_SIZE
from dicomslide.codec import PixelDescription
from dicomslide.errors import DicomSlideError
from dicomslide.fileframes import (
    FileFrameSource,
)
from dicomslide.files import PIXEL_DATA_OFFSET, parse_part10_header
from dicomslide.objects import ObjectFile, RangeReader

#: Attribute of a header read from an object: its :class:`ObjectFile`
OBJECT_FILE = "_dicomslide_object_file"
#: Attribute of a header read from an object: the bytes read after it
#: (offset, bytes), which start the pixel data
_BYTES_AFTER = "_dicomslide_bytes_after_header"
#: Most bytes of pixel data that a scan of an object's fragments keeps for the
#: read that caused it: a quarter of the default frame cache (32 MiB)
SCAN_WINDOW = DEFAULT_CACHE_SIZE // 4


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
        # the reader that indexed the object, in the thread of the read that
        # caused the indexing, while that read runs
        self._indexing = threading.local()

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        del state["_indexing"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._pid = os.getpid()
        self._indexing = threading.local()

    #: Reads ask for the ring of neighbouring frames while they use it (as
    #: over DICOMweb), but only for the part of it a ranged GET of the read
    #: carries: the frames stored right before and after the read's runs
    #: (the tiles left and right of each row). The rows above and below would
    #: cost requests of their own.
    fetches_neighbours = True
    #: see :attr:`fetches_neighbours`
    carries_neighbours = True
    #: Every request costs a round trip: a scan's next regions are fetched
    #: further ahead (see :mod:`dicomslide.readahead`)
    remote = True

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
        """The object as a file; the bytes read with the header are kept.

        The bytes it fetches (a scan of the fragments: the pixel data, of
        which it keeps the latest :data:`SCAN_WINDOW`) serve the read in this
        thread that is indexing the object.
        """
        after = getattr(self._header, _BYTES_AFTER, None)
        reader = RangeReader(self.file, [after] if after else [], keep=SCAN_WINDOW)
        self._indexing.reader = reader
        return cast(BinaryIO, reader)

    def read_frames(self, frame_numbers: Sequence[int]) -> list[bytes]:
        """Read encoded frames (see :meth:`FileFrameSource.read_frames`).

        A read that indexes the object takes what it can from the bytes
        fetched to index it; they are dropped when it ends. They are not
        kept longer: they are encoded frames nobody asked for (all the pixel
        data, when fragments were scanned), which would compete with the
        decoded frames of the frame cache; the neighbours a read carries are
        decoded into that cache from them.
        """
        try:
            return super().read_frames(frame_numbers)
        finally:
            self._indexing.reader = None

    def file_size(self, fp: BinaryIO) -> int:
        """Size of the object (from its listing, else one request)."""
        return self.file.size

    # each check at opening would be a request: frames are checked as read
    checks_table_at_opening = False

    def read_runs(self, runs: Sequence[tuple[int, int, int]]) -> list[bytes]:
        """Read byte ranges (begin, end, frame number), one request each,
        concurrently; none for those the indexing of this read fetched."""
        reader: RangeReader | None = getattr(self._indexing, "reader", None)
        held = [reader.held(begin, end) if reader else None for begin, end, _ in runs]
        missing = [run for run, data in zip(runs, held, strict=True) if data is None]
        if not missing:
            return cast(list[bytes], held)
        try:
            fetched = iter(
                self.file.read_ranges([(begin, end) for begin, end, _ in missing])
            )
        except (OSError, DicomSlideError) as error:
            raise self.error(f"cannot read object: {error}", missing[0][2]) from error
        return [next(fetched) if data is None else data for data in held]

    def pread_available(self, length: int, offset: int, frame_number: int) -> bytes:
        """Read up to `length` bytes at an offset of the object."""
        return self.read_runs([(offset, offset + length, frame_number)])[0]
