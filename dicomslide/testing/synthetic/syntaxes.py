"""Transfer syntaxes, flavors and the other constants of the writer."""

from __future__ import annotations

import datetime
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.tag import Tag
from pydicom.uid import UID

WSI_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.77.1.6"

IMPLICIT_VR_LE = "1.2.840.10008.1.2"
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
ENCAPSULATED_UNCOMPRESSED = "1.2.840.10008.1.2.1.98"
DEFLATED_EXPLICIT_VR_LE = "1.2.840.10008.1.2.1.99"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
JPEG_LS_NEAR_LOSSLESS = "1.2.840.10008.1.2.4.81"
JPEG_2000_LOSSLESS = "1.2.840.10008.1.2.4.90"
JPEG_2000 = "1.2.840.10008.1.2.4.91"
RLE_LOSSLESS = "1.2.840.10008.1.2.5"
JPEG_XL_LOSSLESS = "1.2.840.10008.1.2.4.110"
JPEG_XL_JPEG_RECOMPRESSION = "1.2.840.10008.1.2.4.111"
JPEG_XL = "1.2.840.10008.1.2.4.112"

_NATIVE = (IMPLICIT_VR_LE, EXPLICIT_VR_LE, DEFLATED_EXPLICIT_VR_LE)
_LOSSY = (
    JPEG_BASELINE,
    JPEG_LS_NEAR_LOSSLESS,
    JPEG_2000,
    JPEG_XL_JPEG_RECOMPRESSION,
    JPEG_XL,
)
_ENCODABLE = (
    IMPLICIT_VR_LE,
    EXPLICIT_VR_LE,
    ENCAPSULATED_UNCOMPRESSED,
    DEFLATED_EXPLICIT_VR_LE,
    JPEG_BASELINE,
    JPEG_LS_LOSSLESS,
    JPEG_LS_NEAR_LOSSLESS,
    JPEG_2000_LOSSLESS,
    JPEG_2000,
    RLE_LOSSLESS,
    JPEG_XL_LOSSLESS,
    JPEG_XL_JPEG_RECOMPRESSION,
    JPEG_XL,
)
_EIGHT_BIT_ONLY = (JPEG_BASELINE, JPEG_XL_JPEG_RECOMPRESSION)
_JPEG_XL = (JPEG_XL_LOSSLESS, JPEG_XL_JPEG_RECOMPRESSION, JPEG_XL)
_LOSSY_METHOD = {
    JPEG_BASELINE: "ISO_10918_1",
    JPEG_LS_NEAR_LOSSLESS: "ISO_14495_1",
    JPEG_2000: "ISO_15444_1",
    JPEG_XL_JPEG_RECOMPRESSION: "ISO_10918_1",
    JPEG_XL: "ISO_18181_1",
}
FLAVORS = ("VOLUME", "THUMBNAIL", "LABEL", "OVERVIEW")
ORGANIZATIONS = ("TILED_FULL", "TILED_SPARSE", None)
DEFAULT_ORIENTATION = (0.0, -1.0, 0.0, -1.0, 0.0, 0.0)
_FIXED_DATETIME = datetime.datetime(2024, 3, 14, 9, 26, 53)
_FLUORESCENCE_WAVELENGTHS = (405.0, 488.0, 561.0, 640.0, 730.0)

# Data element tags used as dimension index / functional group pointers.
_TAG_PLANE_POSITION_SLIDE = Tag(0x0048, 0x021A)
_TAG_COLUMN_POSITION = Tag(0x0048, 0x021E)
_TAG_ROW_POSITION = Tag(0x0048, 0x021F)
_TAG_Z_OFFSET = Tag(0x0040, 0x074A)
_TAG_OPTICAL_PATH_ID_SEQ = Tag(0x0048, 0x0207)
_TAG_OPTICAL_PATH_ID = Tag(0x0048, 0x0106)


def encodable_transfer_syntaxes() -> list[str]:
    """Return the transfer syntax UIDs :func:`write_wsi_image` can encode.

    Returns
    -------
    list[str]
        Transfer syntax UIDs, uncompressed ones first.
    """
    return list(_ENCODABLE)


def is_lossy(transfer_syntax: str) -> bool:
    """Tell whether frames written with `transfer_syntax` are lossy here.

    Parameters
    ----------
    transfer_syntax : str
        Transfer syntax UID.

    Returns
    -------
    bool
        ``True`` for JPEG Baseline, JPEG-LS near-lossless, JPEG 2000 (.91),
        JPEG XL (.112) and JPEG XL JPEG recompression (.111).
    """
    return transfer_syntax in _LOSSY


_JPEG_XL_NAMES = {
    JPEG_XL_LOSSLESS: ("JPEG XL Lossless", "JPEGXLLossless"),
    JPEG_XL_JPEG_RECOMPRESSION: (
        "JPEG XL JPEG Recompression",
        "JPEGXLJPEGRecompression",
    ),
    JPEG_XL: ("JPEG XL", "JPEGXL"),
}


def write_part10(path: str | Path, ds: Dataset) -> None:
    """Write `ds` with its file meta as a Part 10 file, in any syntax here.

    pydicom 3.0 predates JPEG XL in DICOM and refuses to write a transfer
    syntax it does not know; every syntax written here is explicit VR little
    endian, so such files are written with pydicom's public encoders of the
    file meta and of the data set.

    Parameters
    ----------
    path : str or pathlib.Path
        The file to write.
    ds : pydicom.dataset.Dataset
        The data set, with ``file_meta`` set.
    """
    if UID(ds.file_meta.TransferSyntaxUID).is_transfer_syntax:
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
        return
    if "PixelData" in ds and ds["PixelData"].VR == "OB":
        ds["PixelData"].is_undefined_length = True
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    fp.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(fp, ds.file_meta, enforce_standard=True)
    write_dataset(fp, ds)
    Path(path).write_bytes(fp.getvalue())
