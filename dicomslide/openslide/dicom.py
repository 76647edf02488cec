"""OpenSlide 4.0.1's DICOM driver, in pure Python over :mod:`dicomslide`.

:class:`DicomBackend` implements :class:`dicomslide.openslide._backend.SlideBackend`
for DICOM VL Whole Slide Microscopy images, found in local files or over DICOMweb.
On every slide OpenSlide 4.0.1 opens it reports what OpenSlide reports and returns
the pixels OpenSlide returns; it also opens slides OpenSlide refuses.

What OpenSlide does, and how it is reproduced here
--------------------------------------------------
Levels
    The VOLUME images of the first optical path and the lowest focal plane, largest
    first. A level's downsample is ``(h0 / h + w0 / w) / 2`` (level 0: 1).
    THUMBNAIL, LABEL and OVERVIEW images are the associated images ``thumbnail``,
    ``label`` and ``macro``.
``openslide.*`` properties
    Vendor ``dicom``; level count and geometry; ``mpp-y`` / ``mpp-x`` from
    PixelSpacing[0] / [1] of the shared functional groups times 1000;
    ``objective-power`` from OpticalPathSequence[0].ObjectiveLensPower;
    ``barcode`` from BarcodeValue; ICC profile sizes; associated image sizes.
    Numbers are written as C's ``%.17g`` (GLib's ``g_ascii_dtostr``).
    ``quickhash-1`` is the SHA-256 of the level-0 Series Instance UID followed by
    its terminating NUL byte: OpenSlide hashes nothing but the series UID, so the
    hash is stable and equal to OpenSlide's.
``dicom.*`` properties
    The file meta information and the "metadata subset" of the level-0 file as
    libdicom 1.3 reads them, flattened: ``dicom.Keyword``, ``Keyword[i]`` for the
    values of a multi-valued element, ``Sequence[i].Keyword`` for items. The
    subset stops at the first of ReferencedImageNavigationSequence,
    PerFrameFunctionalGroupsSequence, ExtendedOffsetTable or pixel data: what
    follows in the file is not reported. Values are formatted by value class:
    strings as stored (libdicom drops one trailing white-space character, except
    for UI; AE, CS, DS, DT, PN, SH, TM, UI and UC are split at backslashes, the
    other string VRs are not), binary integers in decimal (AT as two 16-bit
    numbers), FL/FD as ``%.17g``; binary data, private tags, group lengths,
    repeating groups and tags newer than libdicom's dictionary are left out (the
    dictionary is pydicom's less the tags listed in ``_UNKNOWN_TO_LIBDICOM``,
    found by reading every tag of pydicom's dictionary with OpenSlide 4.0.1).
    Of a level-0 concatenation the first instance is reported, whichever file was
    opened, as OpenSlide does. Local files are re-read for this, so that the
    bytes are libdicom's; over DICOMweb there are no file bytes, see below.
Pixels
    OpenSlide paints the tiles of a level with cairo: tile by tile from the last
    (bottom right) to the first, with the SATURATE operator, each translated by
    its position minus ``location / downsample``. Where that translation is a
    whole number of pixels the tiles are copied. Where it is not, pixman samples
    every tile with its bilinear filter in single-precision floats (SATURATE
    needs pixman's float pipeline) and rounds down on the way back to 8 bits;
    tile edges and the image edge (tiles are cleared past the image) come out
    partly transparent. :func:`_paint_area` reproduces this arithmetic exactly,
    including the 4096-pixel areas a large read is split into and the whole-pixel
    shift OpenSlide applies to negative locations. The result is premultiplied
    ARGB, which is un-premultiplied as openslide-python does.

Where this backend differs (on purpose)
---------------------------------------
* It opens what OpenSlide refuses: any transfer syntax dicomslide decodes
  (implicit VR, HTJ2K, JPEG-LS, JPEG XL, ...), concatenations, sparse tiling,
  files without DimensionOrganizationType, several focal planes (the lowest is
  shown) and several optical paths (the first RGB one is shown). 8-bit
  MONOCHROME2 images are shown as grey. Images that cannot be shown as 8-bit RGBA
  (more than 8 bits per sample, several monochrome channels) raise
  :class:`OpenSlideUnsupportedFormatError` naming the reason.
* Associated images are read whole (OpenSlide decodes frame 1 only and fails on
  tiled associated images) and are not filtered by the first and fourth values
  of ImageType. The first LABEL / OVERVIEW / THUMBNAIL image of the slide is
  used where OpenSlide would fail on duplicates.
* A slide is what :func:`dicomslide.find_slides` groups (container and frame of
  reference), not a Series Instance UID in one directory; the folder of a file
  is searched recursively.
* Over DICOMweb, the ``dicom.*`` values are rebuilt from the metadata: DS and IS
  values are the numbers' text (no stored padding), and of the file meta
  information only MediaStorageSOPClassUID, MediaStorageSOPInstanceUID and (when
  the server says) TransferSyntaxUID are known. Attributes that only a DICOMweb
  server adds (AvailableTransferSyntaxUID, RetrieveURL, ...) are left out.
* A folder holding several slides is refused (their container identifiers are
  named); a file names its slide.
* As in OpenSlide, a file whose image cannot be laid out (Rows, Columns or the
  total pixel matrix size out of range, or frames that do not fill a TILED_FULL
  matrix) is left out of its slide with a warning, and opening that file
  itself raises :class:`OpenSlideError`. A file whose transfer syntax is
  unknown opens (OpenSlide refuses it); reading its level raises
  :class:`OpenSlideError` naming the syntax.

``get_best_level_for_downsample`` compares exactly as OpenSlide 4.0.1 does (it has
no tolerance): a downsample below a level's, by any amount, selects the level
before it.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import math
import os
import re
import struct
import sys
import threading
import types
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import pydicom
from PIL import Image
from pydicom.datadict import DicomDictionary, dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.filereader import read_partial
from pydicom.multival import MultiValue

from dicomslide.cache import FrameCache
from dicomslide.client import LocalFolderClient
from dicomslide.discovery import series_metadata
from dicomslide.enum import ChannelTypes
from dicomslide.errors import DicomSlideError, MetadataError
from dicomslide.image import TiledImage

# the package's exceptions, defined whether or not the OpenSlide library loads
from dicomslide.openslide import OpenSlideError, OpenSlideUnsupportedFormatError
from dicomslide.slide import Slide, find_slides
from dicomslide.store import FrameStore
from dicomslide.tile import check_image_geometry
from dicomslide.utils import is_volume_image

__all__ = ["DicomBackend"]

logger = logging.getLogger(__name__)

_VL_WSI_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.77.1.6"
_VENDOR = "dicom"
#: OpenSlide splits reads into areas of at most this many pixels on a side.
_AREA = 4096

_F32 = np.float32
#: pixman's 1 / 255 in single precision (8-bit channel to float)
_INV255 = _F32(1.0) / _F32(255.0)


# -- Number formatting -------------------------------------------------------


def _format_double(value: float) -> str:
    """Format a double as OpenSlide does (``g_ascii_dtostr``: ``%.17g``)."""
    return f"{value:.17g}"


_C_DOUBLE = re.compile(
    r"[ \t\n\v\f\r]*[+-]?"
    r"((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|inf(inity)?|nan(\([0-9A-Za-z_]*\))?)",
    re.IGNORECASE,
)


def _parse_double(text: str) -> float | None:
    """Parse a property as ``_openslide_parse_double`` does; None where it fails.

    The whole text must be a C floating-point number (leading white space is
    allowed, a comma is taken for a decimal point); overflow fails too.
    """
    canonical = text.replace(",", ".")
    if not _C_DOUBLE.fullmatch(canonical):
        return None
    value = float(canonical.strip())
    if math.isinf(value) and "inf" not in canonical.lower():
        return None  # overflow: ERANGE
    if abs(value) < sys.float_info.min and re.search(
        r"[1-9]", re.split("[eE]", canonical)[0]
    ):
        return None  # underflow (to zero or a subnormal): ERANGE
    return None if math.isnan(value) else value


# -- dicom.* properties: libdicom's view of the level-0 file -----------------

#: libdicom 1.3's value class of every VR (dicom-dict-tables.c)
_STRING_MULTI = frozenset({"AE", "CS", "DS", "DT", "PN", "SH", "TM", "UI", "UC"})
_STRING_SINGLE = frozenset({"AS", "DA", "IS", "LO", "LT", "ST", "UT", "UR"})
_DECIMAL = {"FL": "f", "FD": "d"}
_INTEGER = {"AT": "H", "SS": "h", "US": "H", "SL": "i", "UL": "I", "SV": "q", "UV": "Q"}

#: Top-level tags at which libdicom stops reading the metadata subset
_STOP_TAGS = frozenset(
    {
        0x00480200,  # ReferencedImageNavigationSequence
        0x52009230,  # PerFrameFunctionalGroupsSequence
        0x7FE00001,  # ExtendedOffsetTable
        0x7FE00008,  # FloatPixelData
        0x7FE00009,  # DoubleFloatPixelData
        0x7FE00010,  # PixelData
        0xFFFCFFFC,  # DataSetTrailingPadding
    }
)

#: Attributes a DICOMweb server adds to metadata that are not in the stored file
_WEB_ONLY_TAGS = frozenset(
    {
        0x00080054,  # RetrieveAETitle
        0x00080056,  # InstanceAvailability
        0x00081190,  # RetrieveURL
        0x00083002,  # AvailableTransferSyntaxUID
    }
)


#: Tags of pydicom's dictionary that libdicom 1.3 does not know (newer than its
#: dictionary): OpenSlide leaves them out. Found by writing every tag of
#: pydicom's dictionary into a file and reading it with OpenSlide 4.0.1.
_UNKNOWN_TO_LIBDICOM = frozenset(
    {
        0x0008001C,
        0x00080400,
        0x00080401,
        0x00080402,
        0x00080403,
        0x00080404,
        0x00080405,
        0x00080406,
        0x00080407,
        0x00080408,
        0x00080409,
        0x0008040A,
        0x0008040B,
        0x0008040C,
        0x0008040D,
        0x0008040E,
        0x0008040F,
        0x00080410,
        0x00080411,
        0x00080412,
        0x00080413,
        0x00080414,
        0x00080415,
        0x00080416,
        0x00080417,
        0x00080418,
        0x00080419,
        0x0008041A,
        0x0008041D,
        0x0008041E,
        0x0008041F,
        0x00080420,
        0x00080421,
        0x00080422,
        0x00080423,
        0x00080424,
        0x00080425,
        0x00080426,
        0x00080427,
        0x00080428,
        0x00080429,
        0x00081088,
        0x00081112,
        0x0008119B,
        0x00102161,
        0x00120022,
        0x00120023,
        0x00120032,
        0x00120041,
        0x00120043,
        0x00120054,
        0x00120055,
        0x00120073,
        0x00140200,
        0x00140201,
        0x00140202,
        0x00140203,
        0x00140204,
        0x00140205,
        0x00140206,
        0x00140207,
        0x00181203,
        0x00181204,
        0x00181205,
        0x00189821,
        0x00189822,
        0x00189823,
        0x00189824,
        0x00189825,
        0x00189826,
        0x00189828,
        0x00189829,
        0x0018982A,
        0x0018982B,
        0x0018982C,
        0x0018982D,
        0x0018982E,
        0x0018982F,
        0x00189830,
        0x00189831,
        0x00189832,
        0x00189833,
        0x00189834,
        0x00189835,
        0x00189836,
        0x00200027,
        0x0022000F,
        0x00283001,
        0x00321065,
        0x003A0317,
        0x003A0318,
        0x003A0319,
        0x003A0320,
        0x003A0321,
        0x003A0322,
        0x003A0323,
        0x003A0324,
        0x003A0325,
        0x003A0326,
        0x003A0327,
        0x003A0328,
        0x003A0329,
        0x003A032A,
        0x003A032B,
        0x003A032C,
        0x003A032D,
        0x0040A803,
        0x00480114,
        0x00480115,
        0x00480116,
        0x00480117,
        0x00700315,
        0x30020100,
        0x30020101,
        0x30020102,
        0x30020103,
        0x30020104,
        0x30020105,
        0x30020106,
        0x30020107,
        0x30020108,
        0x30020109,
        0x3002010A,
        0x3002010B,
        0x3002010C,
        0x3002010D,
        0x3002010E,
        0x3002010F,
        0x30020110,
        0x30020111,
        0x30020112,
        0x30020113,
        0x30020114,
        0x30020115,
        0x30020116,
        0x30020117,
        0x30020118,
        0x30020119,
        0x3002011A,
        0x3002011B,
        0x3002011C,
        0x3002011D,
        0x3002011E,
        0x3002011F,
        0x30020120,
        0x30020121,
        0x30020122,
        0x30020123,
        0x30020124,
        0x30020125,
        0x30020126,
        0x30020127,
        0x30020128,
        0x30020129,
        0x3002012A,
        0x3002012B,
        0x3002012C,
        0x3002012D,
        0x3002012E,
        0x3002012F,
        0x30020130,
        0x30020131,
        0x30020132,
        0x30020133,
        0x30020134,
        0x30020135,
        0x3006002D,
        0x3006002E,
        0x3006004B,
        0x3006004C,
        0x3006004D,
        0x3006004E,
        0x3006004F,
        0x300800A1,
        0x300800A2,
        0x300800A3,
        0x300800A4,
        0x300800D1,
        0x300A0054,
        0x300A068B,
        0x300A0788,
        0x300A079F,
        0x300A07A0,
        0x300A07A1,
        0x300C0114,
        0x300C0115,
        0x300C0116,
        0x300C0117,
        0x300C0118,
        0x300C0119,
        0x300C0120,
        0x300C0121,
        0x300C0122,
        0x300C0123,
        0x300C0124,
        0x300C0125,
        0x300C0126,
        0x300C0127,
        0x300C0128,
        0x300C0129,
        0x301000A0,
        0x7FE00003,
    }
)
#: Keywords libdicom spells differently from the standard
_LIBDICOM_KEYWORDS = {
    0x0040A803: "NumbeOfTableColumns",
    0x300A0788: "ReasonforOmissionCodeSequence",
}


def _keyword(tag: int) -> str | None:
    """Keyword of a tag in libdicom's dictionary; None where libdicom has none.

    Private tags, group lengths and repeating groups (overlays, curves) are not
    in it.
    """
    if tag in _LIBDICOM_KEYWORDS:
        return _LIBDICOM_KEYWORDS[tag]
    if tag & 0x00010000 or tag & 0xFFFF == 0 or tag in _UNKNOWN_TO_LIBDICOM:
        return None
    entry = DicomDictionary.get(tag)
    return entry[4] or None if entry else None


def _vr_of(tag: int, vr: str | None) -> str:
    if vr:
        return vr
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return "UN"
    return vr[:2]


def _split_string(raw: bytes, vr: str) -> list[str]:
    """Values of a string element from its stored bytes, as libdicom gives them."""
    if raw and vr != "UI" and raw[-1:] in (b" ", b"\t", b"\n", b"\r", b"\f", b"\v"):
        raw = raw[:-1]
    raw = raw.split(b"\0", 1)[0]  # libdicom hands out C strings
    text = raw.decode("utf-8", "replace")
    if vr in _STRING_MULTI:
        return text.split("\\")
    return [text]


def _numbers(raw: bytes, vr: str, little_endian: bool) -> list[str]:
    if vr in _DECIMAL:
        code = _DECIMAL[vr]
        size = struct.calcsize(code)
        count = len(raw) // size
        values = struct.unpack(("<" if little_endian else ">") + code * count, raw)
        return [_format_double(float(v)) for v in values]
    code = _INTEGER[vr]
    size = struct.calcsize(code)
    count = len(raw) // size
    values = struct.unpack(("<" if little_endian else ">") + code * count, raw)
    return [str(int(v)) for v in values]


def _text_of(value: Any) -> str:
    """The stored text of one converted (non-raw) value."""
    original = getattr(value, "original_string", None)
    if isinstance(original, str):
        return original
    return str(value)


def _as_list(value: Any) -> list[Any]:
    """The values of a converted element (a single value or a MultiValue)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple, MultiValue)):
        return list(value)
    return [value]


def _converted_values(element: DataElement, vr: str) -> list[str] | None:
    """Values of an element pydicom has converted (DICOMweb metadata)."""
    values = _as_list(element.value)
    if vr in _STRING_MULTI or vr in _STRING_SINGLE:
        text = "\\".join(_text_of(v) for v in values)
        text = text.split("\0", 1)[0]
        return text.split("\\") if vr in _STRING_MULTI else [text]
    if vr in _DECIMAL or vr in _INTEGER:
        values = [v for v in values if v != ""]
        if vr == "FL":
            return [_format_double(float(_F32(v))) for v in values]
        if vr == "FD":
            return [_format_double(float(v)) for v in values]
        if vr == "AT":  # libdicom reads AT as pairs of 16-bit numbers
            return [
                str(part) for v in values for part in (int(v) >> 16, int(v) & 0xFFFF)
            ]
        return [str(int(v)) for v in values]
    return None


def _flatten(
    dataset: Dataset,
    prefix: str,
    properties: dict[str, str],
    top_level: bool,
) -> None:
    """Add the elements of one data set as ``prefix.Keyword`` properties."""
    # keys(), not the data set itself: iterating converts every element
    for tag in sorted(int(t) for t in dataset.keys()):  # noqa: SIM118
        if top_level and tag in _STOP_TAGS:
            break
        element = dataset.get_item(tag)
        if element is None:
            continue
        keyword = _keyword(tag)
        if keyword is None:
            continue
        vr = _vr_of(tag, element.VR)
        if vr == "SQ":
            try:
                items = dataset[tag].value or []
            except Exception as error:  # a broken sequence: OpenSlide fails too
                raise OpenSlideError(f"cannot read {keyword}: {error}") from error
            for index, item in enumerate(items):
                _flatten(item, f"{prefix}.{keyword}[{index}]", properties, False)
            continue
        values: list[str] | None
        if isinstance(element, RawDataElement):
            raw = element.value if element.value is not None else b""
            if vr in _STRING_MULTI or vr in _STRING_SINGLE:
                values = _split_string(bytes(raw), vr)
            elif vr in _DECIMAL or vr in _INTEGER:
                values = _numbers(bytes(raw), vr, element.is_little_endian)
            else:
                values = None
        else:
            values = _converted_values(element, vr)
        if not values:
            continue
        if len(values) == 1:
            properties[f"{prefix}.{keyword}"] = values[0]
        else:
            for index, value in enumerate(values):
                properties[f"{prefix}.{keyword}[{index}]"] = value


#: VRs whose explicit-VR header has a 4-byte length
_LONG_VRS = frozenset(
    {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
)


def _read_file_meta(path: str) -> Dataset:
    """The file meta information of a Part 10 file, as raw elements.

    Group 2 is always explicit VR little endian. libdicom consumes the group
    length element itself, so it is not in the result.
    """
    meta = Dataset()
    with open(path, "rb") as fp:
        fp.seek(128)
        if fp.read(4) != b"DICM":
            raise OpenSlideUnsupportedFormatError(f"not a DICOM file: {path}")
        offset = 132
        while True:
            header = fp.read(8)
            if len(header) < 8:
                break
            group, element_number = struct.unpack("<HH", header[:4])
            if group != 0x0002:
                break
            vr = header[4:6].decode("ascii", "replace")
            if vr in _LONG_VRS:
                length = struct.unpack("<I", fp.read(4))[0]
                start = offset + 12
            else:
                length = struct.unpack("<H", header[6:8])[0]
                start = offset + 8
            if length == 0xFFFFFFFF:
                break  # not in a file meta group
            value = fp.read(length)
            tag = (group << 16) | element_number
            if element_number != 0:
                meta[tag] = RawDataElement(
                    pydicom.tag.Tag(tag),
                    vr,
                    length,
                    value,
                    start,
                    False,
                    True,
                )
            offset = start + length
    return meta


def _dicom_properties(metadata: Dataset, client_is_local: bool) -> dict[str, str]:
    """The ``dicom.*`` properties of the level-0 image.

    Parameters
    ----------
    metadata: pydicom.Dataset
        Metadata of (the first instance of) the level-0 image
    client_is_local: bool
        Whether the image is read from local files (which are then re-read)

    Returns
    -------
    Dict[str, str]
        Properties

    """
    properties: dict[str, str] = {}
    path = getattr(metadata, "filename", None)
    if client_is_local and isinstance(path, str) and os.path.isfile(path):
        try:
            file_meta = _read_file_meta(path)
            with open(path, "rb") as fp:
                # libdicom's metadata subset ends at the first stop tag; reading
                # no further also spares parsing per-frame functional groups
                dataset = read_partial(
                    fp, stop_when=lambda tag, vr, length: int(tag) in _STOP_TAGS
                )
        except OpenSlideError:
            raise
        except Exception as error:
            raise OpenSlideError(f"cannot read {path}: {error}") from error
        _flatten(file_meta, "dicom", properties, True)
        _flatten(dataset, "dicom", properties, True)
        return properties
    # Metadata from a server: no file bytes, rebuild what can be known.
    file_meta = Dataset()
    if "SOPClassUID" in metadata:
        file_meta.MediaStorageSOPClassUID = metadata.SOPClassUID
    if "SOPInstanceUID" in metadata:
        file_meta.MediaStorageSOPInstanceUID = metadata.SOPInstanceUID
    stored = getattr(metadata, "file_meta", None)
    syntax = None
    if stored is not None and "TransferSyntaxUID" in stored:
        syntax = stored.TransferSyntaxUID
    elif metadata.get("AvailableTransferSyntaxUID"):
        syntax = metadata.AvailableTransferSyntaxUID
    if syntax:
        file_meta.TransferSyntaxUID = str(syntax)
    _flatten(file_meta, "dicom", properties, True)
    reduced = Dataset()
    for tag in metadata.keys():  # noqa: SIM118
        if int(tag) not in _WEB_ONLY_TAGS:
            reduced.add(metadata.get_item(tag))
    _flatten(reduced, "dicom", properties, True)
    return properties


# -- Pixels: cairo + pixman as OpenSlide drives them ---------------------------


def _to_float(pixels: np.ndarray) -> np.ndarray:
    """8-bit channels to pixman's floats (``unorm_to_float``)."""
    return pixels.astype(_F32) * _INV255


def _saturate(dest: np.ndarray, source: np.ndarray) -> np.ndarray:
    """pixman's float SATURATE of premultiplied RGBA, back to 8 bits.

    Parameters
    ----------
    dest: numpy.ndarray
        Destination, uint8 (..., 4) premultiplied RGBA
    source: numpy.ndarray
        Source, float32 (..., 4) premultiplied RGBA in [0, 1]

    Returns
    -------
    numpy.ndarray
        New destination, uint8

    """
    d = _to_float(dest)
    sa = source[..., 3:4]
    da = d[..., 3:4]
    tiny = np.finfo(np.float32).tiny
    zero = (sa > -tiny) & (sa < tiny)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = (_F32(1.0) - da) / np.where(zero, _F32(1.0), sa)
    factor = np.where(factor < 0, _F32(0.0), np.where(factor > 1, _F32(1.0), factor))
    factor = np.where(zero, _F32(1.0), factor).astype(_F32)
    value = np.minimum(_F32(1.0), source * factor + d)
    value = np.clip(value, _F32(0.0), _F32(1.0))
    units = (value * _F32(256.0)).astype(np.uint32)  # float_to_unorm
    units -= units >> 8
    return units.astype(np.uint8)


def _bilinear(
    tile: np.ndarray,
    first: tuple[int, int],
    count: tuple[int, int],
    fixed: tuple[int, int],
) -> np.ndarray:
    """Sample a tile as pixman's float bilinear fetcher does.

    Parameters
    ----------
    tile: numpy.ndarray
        Tile, uint8 (rows, columns, 4) premultiplied RGBA; outside it is transparent
    first: Tuple[int, int]
        First destination (row, column) to compute
    count: Tuple[int, int]
        Number of destination rows and columns
    fixed: Tuple[int, int]
        (y, x) translation from destination to tile coordinates in 16.16 fixed point

    Returns
    -------
    numpy.ndarray
        float32 (rows, columns, 4)

    """
    rows, columns = tile.shape[:2]

    def axis(start: int, n: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
        # pixel centre, translated, minus half a pixel: left tap and weight
        position = (np.arange(start, start + n, dtype=np.int64) << 16) + offset
        return position >> 16, (position & 0xFFFF).astype(_F32) / _F32(65536.0)

    y1, dy = axis(first[0], count[0], fixed[0])
    x1, dx = axis(first[1], count[1], fixed[1])
    padded = np.zeros((rows + 4, columns + 4, 4), dtype=_F32)
    padded[2:-2, 2:-2] = _to_float(tile)
    yi = np.clip(y1 + 2, 0, rows + 2)[:, None]
    xi = np.clip(x1 + 2, 0, columns + 2)[None, :]
    one = _F32(1.0)
    dxx = dx[None, :]
    dyy = dy[:, None]
    w_xy = (dxx * dyy)[..., None]
    w_xiy = (dxx * (one - dyy))[..., None]
    w_ixy = ((one - dxx) * dyy)[..., None]
    w_ixiy = ((one - dxx) * (one - dyy))[..., None]
    # bilinear_interpolation_float, summed in its order
    result = padded[yi, xi] * w_ixiy + padded[yi, xi + 1] * w_xiy
    result = result + padded[yi + 1, xi] * w_ixy
    result = result + padded[yi + 1, xi + 1] * w_xy
    return result.astype(_F32)


@dataclass(frozen=True)
class _Level:
    """One pyramid level as OpenSlide sees it, read through dicomslide.

    `store` holds the level's frames as opaque RGBA; read with a fill of 0,
    absent tiles and pixels past the level's edge are transparent, as OpenSlide
    paints them.
    """

    image: TiledImage
    store: FrameStore
    width: int
    height: int
    tile_width: int
    tile_height: int
    downsample: float
    channel: int = 0
    plane: int = 0

    @property
    def tiles_across(self) -> int:
        return -(-self.width // self.tile_width)

    @property
    def tiles_down(self) -> int:
        return -(-self.height // self.tile_height)

    def with_cache(self, cache: FrameCache) -> _Level:
        image = TiledImage(
            self.image.client,
            _parts(self.image),
            correct_color=False,
            cache=cache,
        )
        return replace(self, image=image, store=image._store.as_rgba())

    def read_whole(self, x: int, y: int, w: int, h: int) -> np.ndarray | None:
        """RGBA of a read on whole level pixels; None for other locations.

        Such a read paints the level's pixels themselves: alpha is 255 where
        a tile is and 0 elsewhere, so the premultiplied pixels are also the
        straight ones.
        """
        lx, ly = x / self.downsample, y / self.downsample
        if lx != math.floor(lx) or ly != math.floor(ly):
            return None
        top, left = int(ly), int(lx)
        return self.read((top, top + h), (left, left + w))

    def read(self, rows: tuple[int, int], columns: tuple[int, int]) -> np.ndarray:
        """Premultiplied RGBA of level pixels; transparent where no tile is."""
        return self.store.read_region(self.channel, self.plane, rows, columns, 0)


def _channel_and_plane(
    image: TiledImage, identifier: str, focus: float
) -> tuple[int, int]:
    """Indices, in an image, of the slide's first channel and lowest plane."""
    try:
        channel = image.get_channel_index(identifier)
    except ValueError:
        channel = 0
    offsets = [image.get_focal_plane_offset(i) for i in range(image.num_focal_planes)]
    plane = offsets.index(focus) if focus in offsets else 0
    return channel, plane


def _parts(image: TiledImage) -> list[Dataset]:
    return list(image.instance_metadata)


def _paint_area(level: _Level, x: int, y: int, out: np.ndarray) -> None:
    """Paint one area of a read as OpenSlide's ``read_region`` does.

    Parameters
    ----------
    level: _Level
        Level to read
    x, y: int
        Level-0 location of the area
    out: numpy.ndarray
        Transparent uint8 (h, w, 4) premultiplied RGBA to paint into

    """
    h, w = out.shape[:2]
    ds = level.downsample
    tx = ty = 0
    if x < 0:  # OpenSlide starts at 0 and shifts by whole level pixels
        tx = int(float(-x) / ds)
        x = 0
        w -= tx
    if y < 0:
        ty = int(float(-y) / ds)
        y = 0
        h -= ty
    if w <= 0 or h <= 0:
        return
    lx = x / ds
    ly = y / ds
    advance_x = float(level.tile_width)
    advance_y = float(level.tile_height)
    start_x = int(lx / advance_x)
    start_y = int(ly / advance_y)
    if start_x > level.tiles_across - 1 or start_y > level.tiles_down - 1:
        return
    end_x = min(math.ceil((lx + w) / advance_x), level.tiles_across)
    end_y = min(math.ceil((ly + h) / advance_y), level.tiles_down)
    offset_x = lx - start_x * advance_x
    offset_y = ly - start_y * advance_y
    tw, th = level.tile_width, level.tile_height
    if lx == math.floor(lx) and ly == math.floor(ly):
        # Whole-pixel translation: cairo copies the tiles side by side, which
        # gives the level's pixels of the window itself (transparent past
        # its edge): read just the window.
        top, left = int(ly), int(lx)
        out[ty : ty + h, tx : tx + w] = level.read((top, top + h), (left, left + w))
        return
    block = level.read((start_y * th, end_y * th), (start_x * tw, end_x * tw))
    height, width = out.shape[:2]

    for tile_y in range(end_y - 1, start_y - 1, -1):
        translate_y = ((tile_y - start_y) * advance_y) - offset_y
        fixed_y = _fixed(translate_y + ty)
        for tile_x in range(end_x - 1, start_x - 1, -1):
            translate_x = ((tile_x - start_x) * advance_x) - offset_x
            fixed_x = _fixed(translate_x + tx)
            r = (tile_y - start_y) * th
            c = (tile_x - start_x) * tw
            tile = block[r : r + th, c : c + tw]
            # destination pixels whose samples can touch the tile
            y0 = max((fixed_y >> 16) - 1, 0)
            y1 = min((fixed_y >> 16) + th + 2, height)
            x0 = max((fixed_x >> 16) - 1, 0)
            x1 = min((fixed_x >> 16) + tw + 2, width)
            if y1 <= y0 or x1 <= x0:
                continue
            # destination pixel centre i + 1/2 samples the tile at
            # i + 1/2 - translate; _bilinear subtracts the half pixel again
            source = _bilinear(tile, (y0, x0), (y1 - y0, x1 - x0), (-fixed_y, -fixed_x))
            out[y0:y1, x0:x1] = _saturate(out[y0:y1, x0:x1], source)


def _fixed(translation: float) -> int:
    """cairo's 16.16 fixed-point value of a (negated) translation.

    cairo rounds the pattern offset ``-translation`` to nearest, ties to even.
    """
    return -round(-translation * 65536.0)


class _ArrayImage(Image.Image):
    """A PIL image over the pixels of a NumPy array.

    ``numpy.asarray(image)`` returns a read-only view of the array instead of
    a copy through :meth:`PIL.Image.Image.tobytes` (about 1.4 ms per
    megapixel). Pillow copies the pixels before anything writes to the image,
    and from then on the image converts as any other.
    """

    _pixels: np.ndarray | None = None

    @property
    def __array_interface__(self) -> dict[str, Any]:
        pixels = self._pixels
        if pixels is None or not self.readonly:  # closed, or Pillow's copy
            return super().__array_interface__
        interface = dict(pixels.__array_interface__)
        interface["data"] = (interface["data"][0], True)  # read-only
        return interface

    def close(self) -> None:
        self._pixels = None
        super().close()


def _rgba_image(rgba: np.ndarray) -> Image.Image:
    """An RGBA image sharing the memory of an (h, w, 4) uint8 array.

    Pillow copies the pixels before anything writes to such an image, so the
    array stays as it is.
    """
    height, width = rgba.shape[:2]
    data = np.ascontiguousarray(rgba)
    image = Image.frombuffer("RGBA", (width, height), data, "raw", "RGBA", 0, 1)
    image.__class__ = _ArrayImage  # the same object, with a zero-copy view
    cast(_ArrayImage, image)._pixels = data
    return image


def _premultiplied_to_image(pixels: np.ndarray) -> Image.Image:
    """Premultiplied RGBA to a straight-alpha RGBA image, as openslide-python."""
    if pixels.size == 0 or bool(np.all(pixels[..., 3] == 255)):
        return _rgba_image(pixels)
    height, width = pixels.shape[:2]
    data = np.ascontiguousarray(pixels)
    return Image.frombuffer("RGBA", (width, height), data, "raw", "RGBa", 0, 1)


# -- The backend -----------------------------------------------------------------


def _flavor(image: TiledImage) -> str:
    image_type = image.metadata.get("ImageType") or []
    return str(image_type[2]).upper() if len(image_type) >= 3 else ""


def _displayable(image: TiledImage, what: str) -> bool:
    """Whether an image's pixels can be shown as 8-bit RGBA (raise if not)."""
    matrix = image.get_total_pixel_matrix(0, 0, correct_color=False)
    samples = matrix.tile_shape[2]
    if matrix.dtype != np.uint8:
        bits = image.metadata.get("BitsAllocated", "?")
        photometric = image.metadata.get("PhotometricInterpretation", "")
        raise OpenSlideUnsupportedFormatError(
            f"{what} {image.metadata.SOPInstanceUID} has {bits}-bit {photometric} "
            "pixels, which cannot be shown as 8-bit RGBA"
        )
    if samples not in (1, 3):
        raise OpenSlideUnsupportedFormatError(
            f"{what} {image.metadata.SOPInstanceUID} has {samples} samples per "
            "pixel, which cannot be shown as RGBA"
        )
    return samples == 1


def _thumbnail_images(slide: Slide, level0: TiledImage) -> list[TiledImage]:
    """THUMBNAIL images of a slide, also one a pyramid left out.

    A dicomslide pyramid keeps one image per size: a THUMBNAIL as large as a
    VOLUME level is not in it (and a slide does not list its thumbnails apart),
    yet OpenSlide shows it as the associated image ``thumbnail``. When the pyramid
    has none, the series of level 0 is asked for one (one metadata request).
    """
    listed = getattr(slide, "thumbnail_images", None)
    if listed is not None:
        return list(listed)
    found = [
        image
        for image in slide.get_volume_images(0, 0)
        if _flavor(image) == "THUMBNAIL"
    ]
    if found:
        return found
    metadata = level0.metadata
    try:
        path = getattr(metadata, "filename", None)
        if _is_local(slide.client) and isinstance(path, str):
            # the files next to level 0, as OpenSlide looks for a series
            candidates: list[Dataset] = []
            for candidate in sorted(Path(path).parent.iterdir()):
                if candidate.is_file() and _is_part10(candidate):
                    candidates.append(
                        pydicom.dcmread(candidate, stop_before_pixels=True)
                    )
        else:
            candidates = series_metadata(
                slide.client,
                str(metadata.StudyInstanceUID),
                str(metadata.SeriesInstanceUID),
                {_VL_WSI_SOP_CLASS_UID},
            )
        for dataset in candidates:
            image_type = dataset.get("ImageType") or []
            if (
                dataset.get("SOPClassUID") == _VL_WSI_SOP_CLASS_UID
                and len(image_type) > 2
                and str(image_type[2]).upper() == "THUMBNAIL"
                and dataset.get("SeriesInstanceUID") == metadata.SeriesInstanceUID
                and dataset.get("ContainerIdentifier")
                == metadata.get("ContainerIdentifier")
                and dataset.get("FrameOfReferenceUID")
                == metadata.get("FrameOfReferenceUID")
            ):
                found.append(TiledImage(slide.client, dataset, correct_color=False))
    except Exception as error:  # the thumbnail is optional
        logger.debug("no thumbnail found for the slide: %s", error)
        return []
    return found


def _is_part10(path: Path) -> bool:
    try:
        with open(path, "rb") as fp:
            fp.seek(128)
            return fp.read(4) == b"DICM"
    except OSError:
        return False


def _is_local(client: Any) -> bool:
    from dicomweb_client import DICOMfileClient

    return isinstance(client, DICOMfileClient)


class _OpenSlideFolder(LocalFolderClient):
    """The files of a folder as OpenSlide reads them.

    A VL Whole Slide Microscopy file whose frames cannot be laid out (e.g.
    Rows of 0, see :func:`dicomslide.tile.check_image_geometry`) is left out
    with a warning, as OpenSlide leaves out a file that libdicom refuses; the
    other images of its slide open without it.
    """

    @property
    def left_out(self) -> dict[str, MetadataError]:
        """Dict[str, MetadataError]: why images were left out, by SOP
        Instance UID"""
        self.headers()
        return self.__dict__["_left_out"]

    def headers(self) -> list[Dataset]:
        kept = self.__dict__.get("_kept")
        if kept is None:
            left_out: dict[str, MetadataError] = {}
            kept = []
            for header in super().headers():
                try:
                    if header.get("SOPClassUID") == _VL_WSI_SOP_CLASS_UID:
                        # (LABEL and OVERVIEW frames are counted on first use)
                        check_image_geometry(
                            header, frame_count=is_volume_image(header)
                        )
                except MetadataError as error:
                    logger.warning("leaving out %s: %s", header.filename, error)
                    left_out[str(header.get("SOPInstanceUID"))] = error
                    continue
                kept.append(header)
            self.__dict__.update(_kept=kept, _left_out=left_out)
        return kept


class DicomBackend:
    """OpenSlide's view of a DICOM whole slide image.

    Use :meth:`open`. Every method may be called from several threads at once.
    After :meth:`close` every method raises :class:`ctypes.ArgumentError`, as
    openslide-python does for a closed handle. After a read failed every method
    raises :class:`OpenSlideError` with that failure's message (OpenSlide's
    errors are sticky).

    Parameters
    ----------
    slide: dicomslide.Slide
        Slide to show
    origin: Any, optional
        What the backend was opened from (a path or the slide), for pickling

    Raises
    ------
    OpenSlideUnsupportedFormatError
        When the slide cannot be shown as RGBA
    OpenSlideError
        When its metadata are broken

    """

    def __init__(self, slide: Slide, origin: Any = None) -> None:
        self._origin = slide if origin is None else origin
        self._lock = threading.Lock()
        self._closed = False
        self._error: str | None = None
        self._slide: Slide | None = slide
        try:
            self._setup(slide)
        except (OpenSlideError, KeyError):
            raise
        except (DicomSlideError, ValueError, AttributeError, TypeError) as error:
            raise OpenSlideError(f"cannot open DICOM slide: {error}") from error

    # -- opening ---------------------------------------------------------------

    @classmethod
    def open(cls, source: Any) -> DicomBackend:
        """Open a DICOM slide.

        Parameters
        ----------
        source: Union[dicomslide.Slide, str, os.PathLike]
            A slide (found in local files or over DICOMweb); a folder that holds
            one slide; or one file of a slide, whose folder (and its subfolders)
            is searched for the other images of the slide, as OpenSlide opens a
            series from one of its files

        Returns
        -------
        DicomBackend
            The open slide

        Raises
        ------
        OpenSlideUnsupportedFormatError
            When `source` is not a DICOM whole slide image, when a folder holds
            several slides (their container identifiers are listed; open one of
            their files instead), or when the slide cannot be shown as RGBA
        OpenSlideError
            When the files are DICOM whole slide images but broken

        """
        if isinstance(source, Slide):
            return cls(source, origin=source)
        try:
            path = Path(os.fsdecode(os.fspath(source)))
        except TypeError:
            raise TypeError(
                f"expected a dicomslide.Slide or a path, got {type(source).__name__}"
            ) from None
        if path.is_dir():
            return cls(cls._only_slide(path), origin=str(path))
        if not path.is_file():
            raise OpenSlideUnsupportedFormatError(
                f"Unsupported or missing image file: {path}"
            )
        sop_instance_uid = cls._wsi_instance(path)
        folder = _OpenSlideFolder(path.parent)
        slides = cls._find(folder)
        if sop_instance_uid in folder.left_out:  # libdicom refuses it
            raise OpenSlideError(
                f"cannot read {path}: {folder.left_out[sop_instance_uid]}"
            )
        for slide in slides:
            if sop_instance_uid in slide.sop_instance_uids:
                return cls(slide, origin=str(path))
        raise OpenSlideUnsupportedFormatError(
            f"{path}: instance {sop_instance_uid} belongs to no slide that can be "
            "shown (no VOLUME image found with it)"
        )

    @staticmethod
    def _wsi_instance(path: Path) -> str:
        """SOP Instance UID of a VL WSI file (raise if it is not one)."""
        try:
            with open(path, "rb") as fp:
                fp.seek(128)
                magic = fp.read(4)
        except OSError as error:
            raise OpenSlideUnsupportedFormatError(f"{path}: {error}") from error
        if magic != b"DICM":
            raise OpenSlideUnsupportedFormatError(f"not a DICOM file: {path}")
        try:
            dataset = pydicom.dcmread(
                path,
                stop_before_pixels=True,
                specific_tags=["SOPClassUID", "SOPInstanceUID"],
            )
            sop_class = str(
                dataset.file_meta.get("MediaStorageSOPClassUID")
                or dataset.get("SOPClassUID", "")
            )
            sop_instance = str(dataset.get("SOPInstanceUID") or "")
        except Exception as error:
            raise OpenSlideError(f"cannot read {path}: {error}") from error
        if sop_class != _VL_WSI_SOP_CLASS_UID:
            raise OpenSlideUnsupportedFormatError(
                f"Not a WSI DICOM: class UID {sop_class} ({path})"
            )
        if not sop_instance:
            raise OpenSlideError(f"{path}: SOPInstanceUID not found")
        return sop_instance

    @staticmethod
    def _find(folder: _OpenSlideFolder) -> list[Slide]:
        try:
            return find_slides(folder, include_derived=False, correct_color=False)
        except (DicomSlideError, ValueError) as error:
            raise OpenSlideError(
                f"cannot read the slides in {folder.folder}: {error}"
            ) from error

    @classmethod
    def _only_slide(cls, folder: Path) -> Slide:
        slides = cls._find(_OpenSlideFolder(folder))
        if not slides:
            raise OpenSlideUnsupportedFormatError(
                f"no DICOM whole slide image found in {folder}"
            )
        if len(slides) > 1:
            names = ", ".join(repr(slide.container_id) for slide in slides)
            raise OpenSlideUnsupportedFormatError(
                f"{folder} holds {len(slides)} slides ({names}); open a file of the "
                "one you want"
            )
        return slides[0]

    # -- set-up ----------------------------------------------------------------

    def _setup(self, slide: Slide) -> None:
        paths = sum(
            1
            for channel in range(slide.num_channels)
            if slide.get_channel_type(channel) == ChannelTypes.OPTICAL_PATH
        )
        images = [
            image
            for image in slide.get_volume_images(0, 0)
            if _flavor(image) == "VOLUME"
        ]
        if not images:
            raise OpenSlideError("No pyramid levels found")
        grey = _displayable(images[0], "image")
        if grey and paths > 1:
            raise OpenSlideUnsupportedFormatError(
                f"the slide has {paths} monochrome optical paths (channels), which "
                "cannot be shown as one RGBA image"
            )
        images.sort(key=lambda image: image.size[1], reverse=True)  # by width
        identifier = slide.get_channel_identifier(0)
        focus = slide.get_focal_plane_offset(0)
        height0, width0 = images[0].size
        levels: list[_Level] = []
        for index, image in enumerate(images):
            _displayable(image, "image")
            height, width = image.size
            channel, plane = _channel_and_plane(image, identifier, focus)
            rows, columns, _ = image.get_total_pixel_matrix(
                channel, plane, correct_color=False
            ).tile_shape
            if index == 0:
                downsample = 1.0
            else:
                downsample = ((height0 / height) + (width0 / width)) / 2.0
            if levels and downsample < levels[-1].downsample:
                raise OpenSlideUnsupportedFormatError(
                    f"Downsampled images not correctly ordered: {downsample} < "
                    f"{levels[-1].downsample}"
                )
            levels.append(
                _Level(
                    image=image,
                    store=image._store.as_rgba(),
                    width=width,
                    height=height,
                    tile_width=columns,
                    tile_height=rows,
                    downsample=downsample,
                    channel=channel,
                    plane=plane,
                )
            )
        self._levels: tuple[_Level, ...] = tuple(levels)
        self._base_levels = self._levels
        self._cached_levels: weakref.WeakKeyDictionary[FrameCache, tuple[_Level, ...]]
        self._cached_levels = weakref.WeakKeyDictionary()

        # associated images
        associated: dict[str, TiledImage] = {}
        thumbnails = _thumbnail_images(slide, images[0])
        for name, candidates in (
            ("label", slide.label_images),
            ("macro", slide.overview_images),
            ("thumbnail", thumbnails),
        ):
            for image in candidates:
                try:
                    _displayable(image, name)
                except OpenSlideUnsupportedFormatError as error:
                    logger.info("associated image %s left out: %s", name, error)
                    continue
                associated[name] = image
                break
        self._associated = associated

        # ICC profiles: one bytes object per distinct profile
        profiles: dict[bytes, bytes] = {}

        def intern(profile: bytes | None) -> bytes | None:
            if not profile:
                return None
            return profiles.setdefault(bytes(profile), bytes(profile))

        self._icc = intern(images[0].icc_profile)
        self._associated_icc = {
            name: intern(image.icc_profile) for name, image in associated.items()
        }

        # built on first use: flattening the metadata into ``dicom.*``
        # properties parses every sequence of the header
        self._properties: Mapping[str, str] | None = None

    def _build_properties(self) -> dict[str, str]:
        level0 = self._levels[0].image
        metadata = level0.metadata
        # the first instance of a level-0 concatenation, whichever file was
        # opened, as OpenSlide 4.0.1 does
        properties = _dicom_properties(metadata, _is_local(level0.client))
        self._duplicate_double(
            properties,
            "dicom.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]."
            "PixelSpacing[0]",
            "openslide.mpp-y",
            1000.0,
        )
        self._duplicate_double(
            properties,
            "dicom.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]."
            "PixelSpacing[1]",
            "openslide.mpp-x",
            1000.0,
        )
        self._duplicate_double(
            properties,
            "dicom.OpticalPathSequence[0].ObjectiveLensPower",
            "openslide.objective-power",
        )
        if "dicom.BarcodeValue" in properties:
            properties["openslide.barcode"] = properties["dicom.BarcodeValue"]
        series = str(metadata.get("SeriesInstanceUID", ""))
        properties["openslide.quickhash-1"] = hashlib.sha256(
            series.encode() + b"\0"
        ).hexdigest()
        properties["openslide.vendor"] = _VENDOR
        properties["openslide.level-count"] = str(len(self._levels))
        for index, level in enumerate(self._levels):
            prefix = f"openslide.level[{index}]"
            properties[f"{prefix}.width"] = str(level.width)
            properties[f"{prefix}.height"] = str(level.height)
            properties[f"{prefix}.downsample"] = _format_double(level.downsample)
            properties[f"{prefix}.tile-width"] = str(level.tile_width)
            properties[f"{prefix}.tile-height"] = str(level.tile_height)
        if self._icc:
            properties["openslide.icc-size"] = str(len(self._icc))
        for name, image in self._associated.items():
            rows, columns = image.size
            prefix = f"openslide.associated.{name}"
            properties[f"{prefix}.width"] = str(columns)
            properties[f"{prefix}.height"] = str(rows)
            profile = self._associated_icc.get(name)
            if profile:
                properties[f"{prefix}.icc-size"] = str(len(profile))
        return dict(sorted(properties.items()))

    @staticmethod
    def _duplicate_double(
        properties: dict[str, str], source: str, target: str, scale: float = 1.0
    ) -> None:
        text = properties.get(source)
        if text is None:
            return
        value = _parse_double(text)
        if value is not None:
            properties[target] = _format_double(value * scale)

    # -- state -----------------------------------------------------------------

    def _check(self) -> None:
        if self._closed:
            # what openslide-python raises for a closed handle
            raise ctypes.ArgumentError(
                "argument 1: ValueError: Passing closed slide object"
            )
        if self._error is not None:
            raise OpenSlideError(self._error)

    def _fail(self, error: BaseException) -> OpenSlideError:
        message = str(error) or type(error).__name__
        with self._lock:
            if self._error is None:
                self._error = message
        return OpenSlideError(message)

    # -- SlideBackend ----------------------------------------------------------

    @property
    def level_dimensions(self) -> tuple[tuple[int, int], ...]:
        """Tuple[Tuple[int, int], ...]: (width, height) of every level"""
        self._check()
        return tuple((level.width, level.height) for level in self._base_levels)

    @property
    def level_downsamples(self) -> tuple[float, ...]:
        """Tuple[float, ...]: downsample of every level relative to level 0"""
        self._check()
        return tuple(level.downsample for level in self._base_levels)

    @property
    def properties(self) -> Mapping[str, str]:
        """Mapping[str, str]: OpenSlide properties (``openslide.*``, ``dicom.*``)"""
        self._check()
        if self._properties is None:
            self._properties = types.MappingProxyType(self._build_properties())
        return self._properties

    @property
    def associated_image_names(self) -> tuple[str, ...]:
        """Tuple[str, ...]: names of the associated images, sorted"""
        self._check()
        return tuple(sorted(self._associated))

    def read_associated_image(self, name: str) -> Image.Image:
        """Read an associated image.

        Parameters
        ----------
        name: str
            ``label``, ``macro`` or ``thumbnail``

        Returns
        -------
        PIL.Image.Image
            Opaque RGBA image

        Raises
        ------
        KeyError
            When the slide has no such associated image
        OpenSlideError
            When reading fails

        """
        self._check()
        image = self._associated.get(name)
        if image is None:
            raise KeyError(name)
        try:
            grey = _displayable(image, name)
            matrix = image.get_total_pixel_matrix(0, 0, correct_color=False)
            rows, columns = image.size
            pixels = matrix.read_region((0, 0), (rows, columns))
        except OpenSlideError:
            raise
        except Exception as error:
            raise self._fail(error) from error
        rgba = np.empty((rows, columns, 4), dtype=np.uint8)
        rgba[..., :3] = pixels[..., :1] if grey else pixels[..., :3]
        rgba[..., 3] = 255
        return _rgba_image(rgba)

    def associated_image_icc_profile(self, name: str) -> bytes | None:
        """ICC profile of an associated image, if it has one.

        Parameters
        ----------
        name: str
            Name of the associated image

        Returns
        -------
        Union[bytes, None]
            The profile (the same object for equal profiles of one slide)

        """
        self._check()
        if name not in self._associated:
            raise KeyError(name)
        return self._associated_icc.get(name)

    @property
    def icc_profile(self) -> bytes | None:
        """Union[bytes, None]: ICC profile of level 0, if it has one"""
        self._check()
        return self._icc

    def get_best_level_for_downsample(self, downsample: float) -> int:
        """The level OpenSlide 4.0.1 picks for a downsample.

        The last level whose downsample is not above `downsample` (level 0 when
        `downsample` is below 1), compared exactly, as OpenSlide does.

        Parameters
        ----------
        downsample: float
            Wanted downsample

        Returns
        -------
        int
            Level

        """
        self._check()
        downsamples = [level.downsample for level in self._base_levels]
        if downsample < downsamples[0]:
            return 0
        for index in range(1, len(downsamples)):
            if downsample < downsamples[index]:
                return index - 1
        return len(downsamples) - 1

    def read_region(
        self, location: tuple[int, int], level: int, size: tuple[int, int]
    ) -> Image.Image:
        """Read a region as OpenSlide does.

        Parameters
        ----------
        location: Tuple[int, int]
            (x, y) of the top left pixel in level-0 coordinates
        level: int
            Level (an unknown level reads as transparent, as in OpenSlide)
        size: Tuple[int, int]
            (width, height) in pixels of `level`

        Returns
        -------
        PIL.Image.Image
            Straight-alpha RGBA; transparent where the slide has no pixels

        Raises
        ------
        OpenSlideError
            When `size` is negative or reading fails

        """
        self._check()
        x, y = (int(v) for v in location)
        w, h = (int(v) for v in size)
        if w < 0 or h < 0:
            raise OpenSlideError(
                f"negative width ({w}) or negative height ({h}) not allowed"
            )
        if w == 0 or h == 0:
            return Image.new("RGBA", (w, h))
        levels = self._levels
        if 0 <= level < len(levels) and max(w, h) <= _AREA and min(x, y) >= 0:
            try:
                pixels = levels[level].read_whole(x, y, w, h)
            except Exception as error:
                raise self._fail(error) from error
            if pixels is not None:
                return _rgba_image(pixels)
        out = np.zeros((h, w, 4), dtype=np.uint8)
        if 0 <= level < len(levels):
            chosen = levels[level]
            ds = chosen.downsample
            try:
                for row in range((h + _AREA - 1) // _AREA):
                    for column in range((w + _AREA - 1) // _AREA):
                        # C: int64 = int64 + int64 * double, truncated
                        sx = int(x + column * _AREA * ds)
                        sy = int(y + row * _AREA * ds)
                        _paint_area(
                            chosen,
                            sx,
                            sy,
                            out[
                                row * _AREA : (row + 1) * _AREA,
                                column * _AREA : (column + 1) * _AREA,
                            ],
                        )
            except Exception as error:
                raise self._fail(error) from error
        return _premultiplied_to_image(out)

    def set_cache(self, cache: Any) -> None:
        """Read through another frame cache.

        Parameters
        ----------
        cache: Any
            A :class:`dicomslide.openslide.OpenSlideCache` (its ``frame_cache``
            is used) or a :class:`dicomslide.cache.FrameCache`

        """
        self._check()
        frame_cache = getattr(cache, "frame_cache", cache)
        if not isinstance(frame_cache, FrameCache):
            raise TypeError(f"not a cache: {cache!r}")
        with self._lock:
            levels = self._cached_levels.get(frame_cache)
            if levels is None:
                levels = tuple(
                    level.with_cache(frame_cache) for level in self._base_levels
                )
                self._cached_levels[frame_cache] = levels
            self._levels = levels

    def close(self) -> None:
        """Release the slide; later calls raise :class:`ctypes.ArgumentError`.

        Reads under way in other threads finish (or fail cleanly).
        """
        with self._lock:
            self._closed = True
            # Reads under way keep the objects they hold; nothing is torn down.
            self._slide = None
            self._cached_levels = weakref.WeakKeyDictionary()

    @property
    def slide(self) -> Slide:
        """dicomslide.Slide: the slide shown"""
        self._check()
        assert self._slide is not None
        return self._slide

    def __reduce__(self) -> tuple[Any, ...]:
        return (DicomBackend.open, (self._origin,))

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"levels={len(self._base_levels)}"
        return f"<DicomBackend {self._origin!r} {state}>"
