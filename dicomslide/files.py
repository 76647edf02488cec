"""DICOM Part 10 files: telling them apart, listing a folder, reading headers.

The one place where dicomslide recognises a Part 10 file (the ``DICM`` prefix
after the 128-byte preamble, :func:`is_part10`) and the one way it parses a
file's header (:func:`read_part10_header`): pydicom's ``dcmread`` up to the
pixel data, from the file's first 64 KiB when the header ends within them,
else from the file. The header knows its file (``filename``) and where its
Pixel Data element starts (:data:`PIXEL_DATA_OFFSET`), which spares reading the
header again when frames are read (:mod:`dicomslide.fileframes`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from pydicom import dcmread
from pydicom.dataset import Dataset, FileDataset

from dicomslide.elements import (
    DISCOVERY_ELEMENTS,
    convert_elements,
    element_value,
    has_element,
)
from dicomslide.errors import MetadataError
from dicomslide.utils import (
    PARAMETRIC_MAP_SOP_CLASS_UID,
    SEGMENTATION_SOP_CLASS_UIDS,
    VL_WSI_SOP_CLASS_UID,
)

logger = logging.getLogger(__name__)

#: Attribute of a header dataset: file offset of its Pixel Data element
PIXEL_DATA_OFFSET = "_dicomslide_pixel_data_offset"

#: Size of the preamble of a Part 10 file, before the ``DICM`` prefix
PREAMBLE_SIZE = 128
_PREFIX = b"DICM"

#: Bytes read at the start of a file: most headers end within them
_HEAD_BYTES = 64 * 1024

# (7FE0,0010) Pixel Data, (7FE0,0008) Float and (7FE0,0009) Double Float
# Pixel Data, little endian
_PIXEL_DATA_TAGS = (b"\xe0\x7f\x10\x00", b"\xe0\x7f\x08\x00", b"\xe0\x7f\x09\x00")

#: SOP classes of the images slides are made of
_SLIDE_IMAGE_CLASSES = SEGMENTATION_SOP_CLASS_UIDS | {
    VL_WSI_SOP_CLASS_UID,
    PARAMETRIC_MAP_SOP_CLASS_UID,
}


class NotPart10Error(MetadataError):
    """A file is not a DICOM Part 10 file (no ``DICM`` after its preamble)."""


def starts_like_part10(head: bytes) -> bool:
    """Whether bytes begin like a DICOM Part 10 file.

    Parameters
    ----------
    head: bytes
        The first bytes of a file (at least 132 for a Part 10 file)

    Returns
    -------
    bool
        Whether ``DICM`` follows the 128-byte preamble

    """
    return head[PREAMBLE_SIZE : PREAMBLE_SIZE + len(_PREFIX)] == _PREFIX


def is_part10(path: str | bytes | os.PathLike[Any]) -> bool:
    """Whether a path names a regular file that begins like a Part 10 file.

    Parameters
    ----------
    path: Union[str, bytes, os.PathLike]
        Path

    Returns
    -------
    bool
        Whether the file has ``DICM`` after its 128-byte preamble; False for
        folders, special files (which are not opened: a FIFO would block)
        and unreadable files

    """
    if not os.path.isfile(path):
        return False
    try:
        with open(path, "rb") as fp:
            return starts_like_part10(fp.read(PREAMBLE_SIZE + len(_PREFIX)))
    except OSError:
        return False


def files_under(folder: Path) -> list[Path]:
    """List the files in a folder and its subfolders, sorted.

    Like ``sorted(p for p in folder.rglob("*") if p.is_file())`` (symbolic
    links to folders are not followed), in a tenth of the time.

    Parameters
    ----------
    folder: pathlib.Path
        Folder

    Returns
    -------
    List[pathlib.Path]
        Files, in path order

    """
    files: list[Path] = []
    folders = [str(folder)]
    while folders:
        try:
            with os.scandir(folders.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        folders.append(entry.path)
                    elif entry.is_file():
                        files.append(Path(entry.path))
        except OSError as error:  # an unreadable subfolder is left out
            logger.debug("cannot list %s: %s", error.filename, error)
    return sorted(files)


def advise_access(file: int | BinaryIO, sequential: bool) -> None:
    """Tell the OS how a file will be read, where it can be told.

    Random access turns the kernel's read-ahead off for the descriptor: a
    read fetches from storage what it asks for, not megabytes around it
    (which, for the header, the offset table and a few frames of a slide
    file of a gigabyte, would be most of what opening reads).

    Parameters
    ----------
    file: Union[int, BinaryIO]
        File descriptor, or file object (one that is not a file of the OS,
        such as an object in object storage, is left alone)
    sequential: bool
        Whether it will be read from start to end (else at random places)

    """
    if isinstance(file, int):
        fd = file
    else:
        try:
            fd = file.fileno()
        except (AttributeError, OSError, ValueError):  # not a file of the OS
            return
    if hasattr(os, "posix_fadvise"):
        advice = os.POSIX_FADV_SEQUENTIAL if sequential else os.POSIX_FADV_RANDOM
        with contextlib.suppress(OSError):  # e.g. a pipe
            os.posix_fadvise(fd, 0, 0, advice)


def read_part10_header(path: str | os.PathLike[str]) -> FileDataset:
    """Read the header of a Part 10 file: its data set up to the pixel data.

    Parameters
    ----------
    path: Union[str, os.PathLike]
        File

    Returns
    -------
    pydicom.dataset.FileDataset
        What ``pydicom.dcmread(path, stop_before_pixels=True)`` reads; its
        ``filename`` is the path, and the attribute named by
        :data:`PIXEL_DATA_OFFSET` gives the file offset of the Pixel Data
        element (the end of the file when there is none). The elements that
        finding slides reads are converted ahead
        (:data:`dicomslide.elements.DISCOVERY_ELEMENTS`).

    Raises
    ------
    OSError
        When the file cannot be read
    NotPart10Error
        When it is not a Part 10 file (no ``DICM`` prefix)
    dicomslide.errors.MetadataError
        When pydicom cannot parse its header (the message says why)

    """
    with open(path, "rb") as fp:
        advise_access(fp, sequential=False)
        return parse_part10_header(fp, os.fspath(path))


def parse_part10_header(fp: BinaryIO, name: str) -> FileDataset:
    """Read the header of a Part 10 file from a file object at its start.

    Parameters
    ----------
    fp: BinaryIO
        Readable, seekable binary file object (a local file, or an object in
        object storage read with ranged requests)
    name: str
        Path or URL of the file: the header's ``filename``, and what errors name

    Returns
    -------
    pydicom.dataset.FileDataset
        The header (see :func:`read_part10_header`)

    Raises
    ------
    OSError
        When the file cannot be read
    NotPart10Error
        When it is not a Part 10 file (no ``DICM`` prefix)
    dicomslide.errors.MetadataError
        When pydicom cannot parse its header (the message says why)

    """
    head = fp.read(_HEAD_BYTES)
    if not starts_like_part10(head):
        raise NotPart10Error(f"not a DICOM Part 10 file: {name}")
    parsed = _header_in(head)
    if parsed is None:  # the header goes on past the first bytes
        fp.seek(0)
        try:
            header = dcmread(fp, stop_before_pixels=True)
        except Exception as error:  # whatever pydicom raises for bad input
            raise MetadataError(f"cannot parse {name}: {error}") from error
        offset = fp.tell()  # pydicom stops in front of the pixel data
    else:
        header, offset = parsed
    convert_elements(header, DISCOVERY_ELEMENTS)
    header.filename = name
    setattr(header, PIXEL_DATA_OFFSET, offset)
    return header


def read_header(path: Path) -> Dataset | None:
    """Read the header of a Part 10 image file, if it is one.

    Parameters
    ----------
    path: pathlib.Path
        File

    Returns
    -------
    Union[pydicom.Dataset, None]
        The header (see :func:`read_part10_header`), or None for files that
        are not DICOM images; a file that cannot be read or parsed is logged
        as a warning and gives None as well

    """
    return image_header(lambda: read_part10_header(path), str(path))


def image_header(read: Callable[[], FileDataset], name: str) -> Dataset | None:
    """Read the header of a Part 10 file with `read`, if it is an image's.

    Parameters
    ----------
    read: Callable[[], pydicom.dataset.FileDataset]
        Reads the header (:func:`read_part10_header` or
        :func:`parse_part10_header` on some file)
    name: str
        Path or URL of the file, for the log

    Returns
    -------
    Union[pydicom.Dataset, None]
        What :func:`read_header` returns

    """
    try:
        header = read()
    except NotPart10Error:
        return None
    except (OSError, MetadataError) as error:  # a broken file must not stop discovery
        logger.warning("cannot read %s: %s", name, error.__cause__ or error)
        return None
    if not has_element(header, "SOPClassUID"):
        return None
    if (
        not has_element(header, "Rows")
        and element_value(header, "SOPClassUID") not in _SLIDE_IMAGE_CLASSES
    ):
        return None  # not an image (an image that lacks Rows is kept: broken)
    return header


def _header_in(head: bytes) -> tuple[FileDataset, int] | None:
    """Parse a header from a file's first bytes, if it ends within them.

    Returns the header and the offset of the pixel data, or None when the
    bytes hold only part of the header (or pydicom fails on them).
    """
    buffer = io.BytesIO(head)
    try:
        header = dcmread(buffer, stop_before_pixels=True)
    except Exception:  # noqa: BLE001 - read again from the file
        return None
    offset = buffer.tell()
    whole_file = len(head) < _HEAD_BYTES
    if not whole_file and head[offset : offset + 4] not in _PIXEL_DATA_TAGS:
        return None
    header.buffer = None  # the bytes are not needed again
    return header, offset
