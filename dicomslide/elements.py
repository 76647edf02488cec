"""Values of header elements, read through pydicom's public API, fast.

pydicom keeps the elements it reads as raw bytes and converts one on its first
access. That access passes through ``Dataset.__getattr__``, the character set
lookup and the conversion hooks, which together cost more than the conversion
itself, and opening a slide reads some thirty elements of every instance,
several of them many times. :func:`element_value` and :func:`has_element`
answer what ``dataset.get(keyword)`` and ``keyword in dataset`` answer at a
fraction of the cost: they look elements up with ``Dataset.get_item(tag,
keep_deferred=True)`` and ``Dataset.__contains__``, and convert a raw element
with pydicom's own value converter of its VR (:data:`pydicom.values.converters`)
into the data element that pydicom's first access would have stored
(``Dataset.__setitem__``). :func:`convert_elements` converts a tree of
elements ahead, sequences and their items included.

Left to pydicom, which converts them on access as usual: elements of VRs
other than numbers, codes, UIDs and short text; empty, deferred or
ambiguous-VR elements; text of datasets without a known character set; and any
element whose conversion fails (pydicom then raises or warns on access).
Nothing is converted here while pydicom's conversion hooks
(:data:`pydicom.hooks.hooks`) are customized; pydicom's deprecated callback
in ``pydicom.config`` (removed in pydicom 4) is not consulted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from pydicom import hooks
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.values import converters

#: pydicom's value converter of each VR
_CONVERTERS = cast(Mapping[str, Any], converters)

#: Elements to convert, by tag; a sequence maps to the elements of its items
ElementTree = Mapping[int, "ElementTree | None"]

#: VRs whose converters take (bytes, is_little_endian, struct format)
_NUMBERS_AND_CODES = frozenset(
    ["US", "UL", "SS", "SL", "FL", "FD", "UI", "CS", "IS", "DS"]
)
#: VRs whose converters take (bytes, encodings, VR)
_TEXT = frozenset(["SH", "LO"])

#: Tags of the keywords looked up so far (None: not a keyword)
_TAGS: dict[str, BaseTag | None] = {}


def _tag(keyword: str) -> BaseTag | None:
    tag = _TAGS.get(keyword)
    if tag is None and keyword not in _TAGS:
        number = tag_for_keyword(keyword)
        tag = _TAGS[keyword] = None if number is None else BaseTag(number)
    return tag


def _tree(spec: Mapping[str, object]) -> ElementTree:
    """Tags of a tree of keywords (a keyword maps to None or a subtree)."""
    tree: dict[int, ElementTree | None] = {}
    for keyword, sub in spec.items():
        tag = _tag(keyword)
        if tag is None:
            raise ValueError(f"unknown keyword {keyword}")
        tree[tag] = None if sub is None else _tree(sub)  # type: ignore[arg-type]
    return tree


_UIDS = dict.fromkeys(
    [
        "SOPClassUID",
        "SOPInstanceUID",
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "FrameOfReferenceUID",
        "PyramidUID",
    ]
)

#: What finding slides reads of every instance in a folder
DISCOVERY_ELEMENTS: ElementTree = _tree(
    {
        **_UIDS,
        "ImageType": None,
        "SeriesNumber": None,
        "ContainerIdentifier": None,
        "Rows": None,
        "Columns": None,
        "SamplesPerPixel": None,
        "TotalPixelMatrixRows": None,
        "TotalPixelMatrixColumns": None,
        "TotalPixelMatrixFocalPlanes": None,
        "NumberOfFrames": None,
        "DimensionOrganizationType": None,
    }
)

_POSITION = dict.fromkeys(
    [
        "XOffsetInSlideCoordinateSystem",
        "YOffsetInSlideCoordinateSystem",
        "ZOffsetInSlideCoordinateSystem",
    ]
)

#: What opening an image reads of each of its instances
IMAGE_ELEMENTS: ElementTree = _tree(
    {
        "SamplesPerPixel": None,
        "PhotometricInterpretation": None,
        "PlanarConfiguration": None,
        "BitsAllocated": None,
        "BitsStored": None,
        "PixelRepresentation": None,
        "ImageOrientationSlide": None,
        "DimensionOrganizationType": None,
        "TotalPixelMatrixFocalPlanes": None,
        "TotalPixelMatrixOriginSequence": _POSITION,
        "SharedFunctionalGroupsSequence": {
            "PixelMeasuresSequence": dict.fromkeys(
                ["PixelSpacing", "SpacingBetweenSlices"]
            ),
            "PlanePositionSlideSequence": _POSITION,
        },
        "OpticalPathSequence": {"OpticalPathIdentifier": None},
    }
)


def element_value(dataset: Dataset, keyword: str, default: Any = None) -> Any:
    """Get the value of an element: ``dataset.get(keyword, default)``, faster.

    pydicom's attribute access takes 2 to 4 microseconds, and its first
    access of a raw element several more; this takes a fraction of that.

    Parameters
    ----------
    dataset: pydicom.dataset.Dataset
        Dataset
    keyword: str
        Keyword of a standard element
    default: Any, optional
        Returned when the dataset lacks the element

    Returns
    -------
    Any
        Value of the element, or `default`

    """
    tag = _tag(keyword)
    if tag is None:
        return default
    element = dataset.get_item(tag, keep_deferred=True)
    if element is None:
        return default
    if type(element) is not DataElement:
        element = _converted(dataset, tag, element)
    return element.value


def has_element(dataset: Dataset, keyword: str) -> bool:
    """Whether a dataset has an element: ``keyword in dataset``, faster.

    Parameters
    ----------
    dataset: pydicom.dataset.Dataset
        Dataset
    keyword: str
        Keyword of a standard element

    Returns
    -------
    bool
        Whether the dataset has the element (empty or not)

    """
    tag = _tag(keyword)
    return tag is not None and tag in dataset


def convert_elements(dataset: Dataset, elements: ElementTree) -> None:
    """Convert raw elements of a dataset now, as their first access would.

    Parameters
    ----------
    dataset: pydicom.dataset.Dataset
        Dataset read by pydicom
    elements: Mapping[int, Union[Mapping, None]]
        Tags of the elements to convert (absent ones are skipped); a
        sequence's tag maps to the elements to convert in each of its items

    """
    if _customized():
        return
    for tag, items in elements.items():
        element = dataset.get_item(tag, keep_deferred=True)
        if element is None:
            continue
        if items is None:
            if type(element) is not DataElement:
                _convert(dataset, element)
            continue
        try:
            sequence = dataset[tag].value  # pydicom converts sequences
        except Exception:  # noqa: BLE001 - raised again on access
            continue
        for item in sequence if isinstance(sequence, Sequence) else ():
            if isinstance(item, Dataset):
                convert_elements(item, items)


def _customized() -> bool:
    """Whether pydicom's conversion of raw elements is customized."""
    current = hooks.hooks
    return bool(
        current.raw_element_kwargs
        or current.raw_element_vr is not hooks.raw_element_vr
        or current.raw_element_value is not hooks.raw_element_value
    )


def _converted(dataset: Dataset, tag: BaseTag, raw: Any) -> DataElement:
    """The data element of a raw one, as pydicom's first access gives it."""
    if not _customized():
        element = _convert(dataset, raw)
        if element is not None:
            return element
    return dataset[tag]  # pydicom converts it (or raises)


def _convert(dataset: Dataset, raw: Any) -> DataElement | None:
    """Convert a raw element with pydicom's converter of its VR and store it
    in the dataset; None where that is left to pydicom."""
    if type(raw) is not RawDataElement or raw.value is None or not raw.length:
        return None
    vr = raw.VR
    if vr is None:
        try:
            vr = dictionary_VR(raw.tag)
        except KeyError:
            return None
    try:
        if vr in _NUMBERS_AND_CODES:
            converter = _CONVERTERS[vr]
            if isinstance(converter, tuple):
                convert, number_format = converter
                value = convert(raw.value, raw.is_little_endian, number_format)
            else:
                value = converter(raw.value, raw.is_little_endian, None)
        elif vr in _TEXT:
            encodings = dataset.original_character_set
            if not encodings:
                return None
            if isinstance(encodings, str):
                encodings = [encodings]
            value = _CONVERTERS[vr](raw.value, encodings, vr)
        else:
            return None
    except Exception:  # noqa: BLE001 - pydicom converts it on access
        return None
    element = DataElement(
        raw.tag,
        vr,
        value,
        raw.value_tell,
        raw.length == 0xFFFFFFFF,
        already_converted=True,
    )
    dataset[element.tag] = element
    return element
