"""Searches over file headers, with the semantics of DICOMweb's QIDO-RS.

:func:`search` answers a study, series or instance search over the headers of
a folder (:class:`dicomslide.folder.LocalFolderClient`) with DICOM JSON
results, as a DICOMweb server answers it (DICOM PS3.18 10.6): each result
holds the default attributes of its level (those of the levels above when the
search is not scoped to them), the attributes matched on, and those asked for
with `fields` (``includefield``; ``"all"`` for every attribute).

Matching follows the kinds of DICOM PS3.4 C.2.2.2 that QIDO-RS offers:
single value matching; a list of UIDs separated by backslashes; wildcards
``*`` and ``?`` in text values; ranges ``from-to`` of dates and times;
fuzzy matching of person names (case-insensitive, on any name component, if
asked for). An empty value matches everything. An entity matches when one of
its instances matches every filter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from dicomslide.elements import element_value

#: Levels of a search, from the top
LEVELS = ("studies", "series", "instances")

_STUDY = "StudyInstanceUID"
_SERIES = "SeriesInstanceUID"
_INSTANCE = "SOPInstanceUID"

# Attributes of each level that every result holds (empty when a file lacks
# them), and those it holds when the files have them
_REQUIRED = {
    "studies": [
        "StudyDate",
        "StudyTime",
        "AccessionNumber",
        "ReferringPhysicianName",
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        _STUDY,
        "StudyID",
    ],
    "series": ["Modality", "SeriesDescription", _SERIES, "SeriesNumber"],
    "instances": [
        "SOPClassUID",
        _INSTANCE,
        "InstanceNumber",
        "Rows",
        "Columns",
        "BitsAllocated",
        "NumberOfFrames",
    ],
}
_OPTIONAL = {
    "studies": ["TimezoneOffsetFromUTC"],
    "series": [
        "TimezoneOffsetFromUTC",
        "PerformedProcedureStepStartDate",
        "PerformedProcedureStepStartTime",
    ],
    # and the pixel description, which DICOMfileClient gives too
    "instances": [
        "TimezoneOffsetFromUTC",
        "BitsStored",
        "SamplesPerPixel",
        "PhotometricInterpretation",
        "PixelRepresentation",
        "PlanarConfiguration",
    ],
}
_TEXT_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})
_NUMBER_VRS = frozenset({"IS", "DS", "US", "UL", "SS", "SL", "FL", "FD", "UV", "SV"})
_RANGE_VRS = frozenset({"DA", "TM", "DT"})
_HEX_TAG = re.compile(r"[0-9A-Fa-f]{8}")

Matcher = Callable[[Dataset], bool]


def tag_of(key: Any) -> int:
    """The tag of an attribute named by keyword, tag, or 8 hex digits.

    Parameters
    ----------
    key: Union[str, int]
        Keyword (``"PatientID"``), tag as an int, or tag as hex digits
        (``"00100020"``)

    Returns
    -------
    int
        Tag

    Raises
    ------
    ValueError
        When the key names no attribute

    """
    if isinstance(key, int):
        return key
    text = str(key)
    tag = tag_for_keyword(text)
    if tag is None and _HEX_TAG.fullmatch(text):
        tag = int(text, 16)
    if tag is None:
        raise ValueError(f"not an attribute keyword or tag: {key!r}")
    return int(tag)


def _vr(tag: int) -> str:
    """The VR of a tag in the dictionary (the first of ``"US or SS"``)."""
    try:
        return str(dictionary_VR(tag)).split(" or ")[0]
    except KeyError:
        return "UN"


def _values(element: DataElement) -> list[Any]:
    value = element.value
    if value is None or value == "" or value == b"":
        return []
    if isinstance(value, (list, MultiValue)):
        return list(value)
    return [value]


def _wildcard(text: str, ignore_case: bool) -> re.Pattern[str]:
    pattern = "".join(
        ".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text
    )
    return re.compile(pattern, re.IGNORECASE if ignore_case else 0)


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def matcher(key: Any, expected: Any, fuzzymatching: bool = False) -> Matcher | None:
    """A test of headers for one search filter.

    Parameters
    ----------
    key: Union[str, int]
        Attribute (see :func:`tag_of`)
    expected: Any
        Value to match; a sequence of values matches any of them
    fuzzymatching: bool, optional
        Whether person names match case-insensitively, on any component

    Returns
    -------
    Union[Callable[[pydicom.Dataset], bool], None]
        The test, or None for an empty value (it matches everything)

    Raises
    ------
    ValueError
        When the key names no attribute, or a sequence

    """
    tag = tag_of(key)
    vr = _vr(tag)
    if vr == "SQ":
        raise ValueError(f"cannot match on a sequence: {key!r}")
    if isinstance(expected, (list, tuple, set)):
        wanted = [str(v) for v in expected if v is not None and str(v) != ""]
    elif expected is None or str(expected) == "":
        wanted = []
    else:
        wanted = [str(expected)] if vr != "UI" else str(expected).split("\\")
    if not wanted:
        return None
    tests = [_value_test(vr, text, fuzzymatching) for text in wanted]

    def match(header: Dataset) -> bool:
        if tag not in header:
            return False
        values = _values(header[tag])
        return any(test(value) for value in values for test in tests)

    return match


def _value_test(vr: str, text: str, fuzzy: bool) -> Callable[[Any], bool]:
    """A test of one value of an element against one value of a filter."""
    if vr in _RANGE_VRS and "-" in text:
        low, _, high = text.partition("-")

        def in_range(value: Any) -> bool:
            value = str(value)
            return (not low or value[: len(low)] >= low) and (
                not high or value[: len(high)] <= high
            )

        return in_range
    if vr in _NUMBER_VRS:
        number = _number(text)
        return lambda value: number is not None and _number(value) == number
    if vr in _TEXT_VRS and ("*" in text or "?" in text or (vr == "PN" and fuzzy)):
        pattern = _wildcard(text + ("*" if vr == "PN" and fuzzy else ""), fuzzy)
        if vr == "PN" and fuzzy:

            def name_matches(value: Any) -> bool:
                name = str(value)
                parts = [name, *re.split(r"[\^= ]", name)]
                return any(pattern.fullmatch(part) for part in parts)

            return name_matches
        return lambda value: pattern.fullmatch(str(value)) is not None
    return lambda value: str(value) == text


def search(
    headers: Sequence[Dataset],
    level: str,
    base_url: str,
    scope: dict[str, str] | None = None,
    fuzzymatching: bool | None = None,
    limit: int | None = None,
    offset: int | None = None,
    fields: Iterable[Any] | None = None,
    search_filters: dict[str, Any] | None = None,
) -> list[dict[str, dict[str, Any]]]:
    """Search headers for studies, series or instances.

    Parameters
    ----------
    headers: Sequence[pydicom.Dataset]
        Headers of the instances, in the order results are given
    level: str
        ``"studies"``, ``"series"`` or ``"instances"``
    base_url: str
        Base URL of the client, for the Retrieve URL of each result
    scope: Union[Dict[str, str], None], optional
        Study Instance UID (and Series Instance UID) the search is scoped to
    fuzzymatching: Union[bool, None], optional
        Whether person names match fuzzily
    limit: Union[int, None], optional
        Largest number of results
    offset: Union[int, None], optional
        Number of results skipped
    fields: Union[Iterable[Union[str, int]], None], optional
        Further attributes each result holds (``"all"``: every attribute of
        the result's first instance)
    search_filters: Union[Dict[str, Any], None], optional
        Attribute keywords or tags, and the values they must match

    Returns
    -------
    List[Dict[str, dict]]
        Results in DICOM JSON, in the order of their first instance

    Raises
    ------
    ValueError
        When a filter or field names no attribute, or `limit` or `offset` is
        negative

    """
    if (limit is not None and limit < 0) or (offset is not None and offset < 0):
        raise ValueError("limit and offset must not be negative")
    scope = scope or {}
    filters = dict(search_filters or {})
    tests = [
        test
        for key, value in filters.items()
        for test in [matcher(key, value, bool(fuzzymatching))]
        if test is not None
    ]
    scope_tests = [matcher(key, value) for key, value in scope.items()]
    depth = LEVELS.index(level)
    key_of = _key_function(depth)
    counts = _Counts(headers)
    first: dict[tuple[str, ...], Dataset] = {}
    for header in headers:
        if all(t(header) for t in scope_tests if t) and all(t(header) for t in tests):
            first.setdefault(key_of(header), header)
    representatives = list(first.values())[offset or 0 :]
    if limit:
        representatives = representatives[:limit]
    fields = list(fields or ())
    # the levels above are included unless the search is scoped to them
    top = 2 if _SERIES in scope and depth == 2 else 1 if _STUDY in scope else 0
    top = min(top, depth)
    include = _included_tags(top, depth, filters, fields)
    return [
        _result(header, top, depth, include, "all" in fields, counts, base_url)
        for header in representatives
    ]


def _key_function(depth: int) -> Callable[[Dataset], tuple[str, ...]]:
    keywords = (_STUDY, _SERIES, _INSTANCE)[: depth + 1]
    return lambda header: tuple(str(element_value(header, k, "")) for k in keywords)


def stored_syntax(header: Dataset) -> str | None:
    """The Transfer Syntax UID of a header's file meta information, if any.

    Parameters
    ----------
    header: pydicom.Dataset
        Header read from a file

    Returns
    -------
    Union[str, None]
        Transfer Syntax UID

    """
    file_meta = getattr(header, "file_meta", None)
    syntax = None if file_meta is None else file_meta.get("TransferSyntaxUID")
    return str(syntax) if syntax else None


def _included_tags(
    top: int, depth: int, filters: dict[str, Any], fields: list[Any]
) -> tuple[list[int], list[int]]:
    """Tags every result holds, and tags results hold when the file has them."""
    required: list[str] = []
    optional: list[str] = []
    for level in LEVELS[top : depth + 1]:
        required += _REQUIRED[level]
        optional += _OPTIONAL[level]
    tags = [tag_of(k) for k in required]
    extra = [tag_of(k) for k in [*optional, *filters]]
    extra += [tag_of(k) for k in fields if k != "all"]
    return tags, [t for t in dict.fromkeys(extra) if t not in tags]


class _Counts:
    """Numbers of related series and instances, and modalities in studies."""

    def __init__(self, headers: Sequence[Dataset]) -> None:
        self.series: dict[str, set[str]] = {}
        self.instances: dict[str, int] = {}
        self.modalities: dict[str, set[str]] = {}
        for header in headers:
            study = str(element_value(header, _STUDY, ""))
            series = str(element_value(header, _SERIES, ""))
            self.series.setdefault(study, set()).add(series)
            self.instances[study] = self.instances.get(study, 0) + 1
            self.instances[study + "/" + series] = (
                self.instances.get(study + "/" + series, 0) + 1
            )
            modality = element_value(header, "Modality")
            if modality:
                self.modalities.setdefault(study, set()).add(str(modality))


def _result(
    header: Dataset,
    top: int,
    depth: int,
    include: tuple[list[int], list[int]],
    all_fields: bool,
    counts: _Counts,
    base_url: str,
) -> dict[str, dict[str, Any]]:
    """One search result in DICOM JSON."""
    required, optional = include
    result = Dataset()
    if all_fields:
        for element in header:
            if element.tag.group != 0x7FE0:
                result.add(element)
    for tag in required:
        if tag in header:
            result.add(header[tag])
        elif tag not in result:
            result.add(DataElement(tag, _vr(tag), None))
    for tag in optional:
        if tag in header:
            result.add(header[tag])
    study = str(element_value(header, _STUDY, ""))
    series = str(element_value(header, _SERIES, ""))
    url = f"{base_url}/studies/{study}"
    if depth >= 1:
        url += f"/series/{series}"
    if depth == 2:
        url += f"/instances/{element_value(header, _INSTANCE, '')}"
    result.RetrieveURL = url
    result.InstanceAvailability = "ONLINE"
    if top == 0:
        result.NumberOfStudyRelatedSeries = len(counts.series.get(study, ()))
        result.NumberOfStudyRelatedInstances = counts.instances.get(study, 0)
        result.ModalitiesInStudy = sorted(counts.modalities.get(study, ()))
    if top <= 1 <= depth:
        result.NumberOfSeriesRelatedInstances = counts.instances.get(
            study + "/" + series, 0
        )
    if depth == 2:
        if not element_value(header, "NumberOfFrames"):
            result.NumberOfFrames = 1  # an image without it has one frame
        syntax = stored_syntax(header)
        if syntax:
            result.AvailableTransferSyntaxUID = syntax
    return result.to_json_dict()
