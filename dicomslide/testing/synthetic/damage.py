"""Damaging written files on purpose: attributes, relabelled syntaxes, frames."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pydicom
from pydicom.uid import UID

from dicomslide.testing.synthetic.syntaxes import IMPLICIT_VR_LE, write_part10


def set_attribute(path: str | Path, keyword: str, value: Any) -> None:
    """Rewrite a written file with one attribute changed, e.g. Rows of 0.

    Parameters
    ----------
    path : str or pathlib.Path
        A file written by this module.
    keyword : str
        Keyword of a top-level attribute.
    value : Any
        Its new value; ``None`` deletes the attribute.  The pixel data are
        kept byte for byte.
    """
    ds = pydicom.dcmread(path)
    if value is None:
        if keyword in ds:
            delattr(ds, keyword)
    else:
        setattr(ds, keyword, value)
    write_part10(path, ds)


def relabel_transfer_syntax(path: str | Path, transfer_syntax_uid: str) -> None:
    """Put another Transfer Syntax UID into a file's meta information.

    The data set's bytes are left as they are, so the file claims a syntax
    its data are not encoded in: e.g. an unknown (private) UID on native
    pixel data, or a native syntax on encapsulated pixel data.

    Parameters
    ----------
    path : str or pathlib.Path
        A Part 10 file.
    transfer_syntax_uid : str
        The UID to claim.
    """
    from pydicom.filebase import DicomBytesIO
    from pydicom.filereader import read_file_meta_info
    from pydicom.filewriter import write_file_meta_info

    data = Path(path).read_bytes()
    # (0002,0000) File Meta Information Group Length comes first, explicit VR
    group_length = struct.unpack_from("<I", data, 132 + 8)[0]
    dataset_start = 132 + 12 + group_length
    meta = read_file_meta_info(path)
    meta.TransferSyntaxUID = UID(transfer_syntax_uid)
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, False
    write_file_meta_info(out, meta, enforce_standard=True)
    Path(path).write_bytes(data[:128] + b"DICM" + out.getvalue() + data[dataset_start:])


def frame_byte_ranges(path: str | Path) -> list[tuple[int, int]]:
    """Where each frame's stored data lie in a written file.

    Read from the file's bytes, independently of any reader: for native
    pixel data the frame's pixels; for encapsulated pixel data the frame's
    fragment items, headers included (fragments are split evenly over the
    frames, as :func:`write_wsi_image` writes them).  A file cut at or after
    the end of a frame's range holds the frame whole.

    Parameters
    ----------
    path : str or pathlib.Path
        A file written by this module (not deflated).

    Returns
    -------
    list[tuple[int, int]]
        Byte range ``[start, end)`` of each frame, in stored order.
    """
    with open(path, "rb") as fp:
        ds = pydicom.dcmread(fp, stop_before_pixels=True)
        element = fp.tell()
        data = Path(path).read_bytes()
    ts = str(ds.file_meta.TransferSyntaxUID)
    frames = int(ds.get("NumberOfFrames", 1))
    implicit = ts == IMPLICIT_VR_LE
    start = element + (8 if implicit else 12)
    length = struct.unpack_from("<I", data, start - 4)[0]
    if length != 0xFFFFFFFF:  # native
        size = (
            int(ds.Rows)
            * int(ds.Columns)
            * int(ds.SamplesPerPixel)
            * int(ds.BitsAllocated)
            // 8
        )
        return [(start + k * size, start + (k + 1) * size) for k in range(frames)]
    items = []
    position = start + 8 + struct.unpack_from("<I", data, start + 4)[0]  # BOT
    while position + 8 <= len(data):
        tag, size = struct.unpack_from("<II", data, position)
        if tag != 0xE000FFFE:  # (FFFE,E000) Item
            break
        items.append((position, position + 8 + size))
        position += 8 + size
    per_frame = len(items) // frames
    return [
        (items[k * per_frame][0], items[(k + 1) * per_frame - 1][1])
        for k in range(frames)
    ]
