"""The ``dicom.*`` properties: a DICOM header as libdicom 1.3 shows it to OpenSlide.

OpenSlide 4.0.1 reports the file meta information and the "metadata subset" of
the level-0 file, flattened: ``dicom.Keyword``, ``Keyword[i]`` for the values
of a multi-valued element, ``Sequence[i].Keyword`` for items. The subset stops
at the first of ReferencedImageNavigationSequence,
PerFrameFunctionalGroupsSequence, ExtendedOffsetTable or pixel data. Values are
formatted by libdicom's value class of their VR: strings as stored (one
trailing white-space character dropped, except for UI; AE, CS, DS, DT, PN, SH,
TM, UI and UC split at backslashes), binary integers in decimal (AT as two
16-bit numbers), FL/FD as ``%.17g``. Binary data, private tags, group lengths,
repeating groups and tags newer than libdicom's dictionary are left out.

:func:`dicom_properties` re-reads a local file for this, so that the values
are the stored bytes; metadata from a DICOMweb server are rebuilt as far as
they can be (see :mod:`dicomslide.openslide.dicom`).
"""

from __future__ import annotations

import os
import struct
from typing import Any

import numpy as np
import pydicom
from pydicom.datadict import dictionary_has_tag, dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.filereader import read_partial
from pydicom.multival import MultiValue

from dicomslide.files import starts_like_part10
from dicomslide.openslide.library import (
    OpenSlideError,
    OpenSlideUnsupportedFormatError,
)

__all__ = ["dicom_properties", "format_double"]

#: single precision, as libdicom reads FL values
_F32 = np.float32


def format_double(value: float) -> str:
    """Format a double as OpenSlide does (GLib's ``g_ascii_dtostr``: ``%.17g``)."""
    return f"{value:.17g}"


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
    int(tag, 16)
    for tag in """
    0008001C 00080400 00080401 00080402 00080403 00080404 00080405 00080406
    00080407 00080408 00080409 0008040A 0008040B 0008040C 0008040D 0008040E
    0008040F 00080410 00080411 00080412 00080413 00080414 00080415 00080416
    00080417 00080418 00080419 0008041A 0008041D 0008041E 0008041F 00080420
    00080421 00080422 00080423 00080424 00080425 00080426 00080427 00080428
    00080429 00081088 00081112 0008119B 00102161 00120022 00120023 00120032
    00120041 00120043 00120054 00120055 00120073 00140200 00140201 00140202
    00140203 00140204 00140205 00140206 00140207 00181203 00181204 00181205
    00189821 00189822 00189823 00189824 00189825 00189826 00189828 00189829
    0018982A 0018982B 0018982C 0018982D 0018982E 0018982F 00189830 00189831
    00189832 00189833 00189834 00189835 00189836 00200027 0022000F 00283001
    00321065 003A0317 003A0318 003A0319 003A0320 003A0321 003A0322 003A0323
    003A0324 003A0325 003A0326 003A0327 003A0328 003A0329 003A032A 003A032B
    003A032C 003A032D 0040A803 00480114 00480115 00480116 00480117 00700315
    30020100 30020101 30020102 30020103 30020104 30020105 30020106 30020107
    30020108 30020109 3002010A 3002010B 3002010C 3002010D 3002010E 3002010F
    30020110 30020111 30020112 30020113 30020114 30020115 30020116 30020117
    30020118 30020119 3002011A 3002011B 3002011C 3002011D 3002011E 3002011F
    30020120 30020121 30020122 30020123 30020124 30020125 30020126 30020127
    30020128 30020129 3002012A 3002012B 3002012C 3002012D 3002012E 3002012F
    30020130 30020131 30020132 30020133 30020134 30020135 3006002D 3006002E
    3006004B 3006004C 3006004D 3006004E 3006004F 300800A1 300800A2 300800A3
    300800A4 300800D1 300A0054 300A068B 300A0788 300A079F 300A07A0 300A07A1
    300C0114 300C0115 300C0116 300C0117 300C0118 300C0119 300C0120 300C0121
    300C0122 300C0123 300C0124 300C0125 300C0126 300C0127 300C0128 300C0129
    301000A0 7FE00003
    """.split()  # noqa: SIM905 - 202 tags, eight a line
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
    if not dictionary_has_tag(tag):  # (repeating groups are not in it)
        return None
    return keyword_for_tag(tag) or None


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
        return [format_double(float(v)) for v in values]
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
            return [format_double(float(_F32(v))) for v in values]
        if vr == "FD":
            return [format_double(float(v)) for v in values]
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
        if not starts_like_part10(fp.read(132)):
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


def dicom_properties(metadata: Dataset) -> dict[str, str]:
    """The ``dicom.*`` properties of the level-0 image.

    Metadata read from a local file (they carry its ``filename``) are read
    again from the file, as libdicom reads it; others (from a DICOMweb server)
    are rebuilt as far as they can be.

    Parameters
    ----------
    metadata: pydicom.Dataset
        Metadata of (the first instance of) the level-0 image

    Returns
    -------
    Dict[str, str]
        Properties

    Raises
    ------
    OpenSlideError
        When the file cannot be read

    """
    properties: dict[str, str] = {}
    path = getattr(metadata, "filename", None)
    if isinstance(path, str) and os.path.isfile(path):
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
