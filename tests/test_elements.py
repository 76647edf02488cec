"""Header elements converted ahead of use equal pydicom's own conversion."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.hooks import (
    hooks,
    raw_element_value,
    raw_element_value_fix_separator,
)
from pydicom.multival import MultiValue

from dicomslide.elements import (
    DISCOVERY_ELEMENTS,
    IMAGE_ELEMENTS,
    ElementTree,
    convert_elements,
    element_value,
    has_element,
)
from dicomslide.testing import synthetic

_TREES = (DISCOVERY_ELEMENTS, IMAGE_ELEMENTS)


def _read(path: Path) -> Dataset:
    return pydicom.dcmread(path, stop_before_pixels=True)


def _assert_converted_as_pydicom(
    ours: Dataset, theirs: Dataset, elements: ElementTree
) -> int:
    """Compare the elements of a tree; return how many were converted ahead."""
    ahead = 0
    for tag, items in elements.items():
        if tag not in theirs:
            assert tag not in ours
            continue
        if items is not None:
            for mine, other in zip(ours[tag].value, theirs[tag].value, strict=True):
                ahead += _assert_converted_as_pydicom(mine, other, items)
            continue
        ahead += isinstance(ours.get_item(tag, keep_deferred=True), DataElement)
        mine, other = ours[tag], theirs[tag]  # pydicom converts theirs now
        assert (mine.VR, mine.file_tell, mine.is_undefined_length) == (
            other.VR,
            other.file_tell,
            other.is_undefined_length,
        )
        assert type(mine.value) is type(other.value)
        assert mine.value == other.value
        assert repr(mine) == repr(other)
        if isinstance(other.value, MultiValue):
            assert [type(v) for v in mine.value] == [type(v) for v in other.value]
    return ahead


def _corpus_files(corpus: Path) -> list[Path]:
    return sorted(corpus.glob("*/*.dcm"))


def test_corpus_headers_are_converted_as_pydicom_converts_them(corpus):
    files = _corpus_files(corpus)
    assert len(files) >= 20
    for path in files:
        ours, theirs = _read(path), _read(path)
        for tree in _TREES:
            convert_elements(ours, tree)
        ahead = sum(_assert_converted_as_pydicom(ours, theirs, t) for t in _TREES)
        assert ahead >= 10, path  # UIDs, sizes, pixel layout at least
        assert ours == theirs


@pytest.mark.parametrize(
    "transfer_syntax", [synthetic.IMPLICIT_VR_LE, synthetic.EXPLICIT_VR_LE]
)
def test_implicit_vr_and_utf8_text_convert_as_in_pydicom(tmp_path, transfer_syntax):
    image = synthetic.write_wsi_image(
        tmp_path,
        total_rows=100,
        total_cols=120,
        tile_rows=32,
        tile_cols=48,
        transfer_syntax=transfer_syntax,
    )
    path = image.files[0]
    dataset = _read(path)
    assert dataset.SpecificCharacterSet == "ISO_IR 192"  # UTF-8
    dataset.ContainerIdentifier = "Präparat 7"
    dataset.OpticalPathSequence[0].OpticalPathIdentifier = "Kanal ß"
    dataset.save_as(path, enforce_file_format=True)
    ours, theirs = _read(path), _read(path)
    assert isinstance(
        ours.get_item("ContainerIdentifier", keep_deferred=True), RawDataElement
    )
    for tree in _TREES:
        convert_elements(ours, tree)
    ahead = sum(_assert_converted_as_pydicom(ours, theirs, t) for t in _TREES)
    assert ahead >= 20
    assert ours.ContainerIdentifier == "Präparat 7"
    assert ours.OpticalPathSequence[0].OpticalPathIdentifier == "Kanal ß"
    assert isinstance(
        ours.get_item("ContainerIdentifier", keep_deferred=True), DataElement
    )


def _with_rows(value: bytes) -> Dataset:
    """A dataset read from bytes whose Rows is encoded as `value`."""
    dataset = Dataset()
    dataset.SOPInstanceUID = "1.2.3"
    dataset.Rows = 0
    dataset.ImageType = ["DERIVED", "PRIMARY", "VOLUME"]
    buffer = io.BytesIO()
    dataset.save_as(buffer, implicit_vr=False, little_endian=True)
    encoded = buffer.getvalue()
    head = b"\x28\x00\x10\x00US"  # (0028,0010) Rows, explicit VR
    start = encoded.index(head)
    encoded = (
        encoded[:start]
        + head
        + len(value).to_bytes(2, "little")
        + value
        + encoded[start + 10 :]
    )
    return pydicom.dcmread(io.BytesIO(encoded), force=True)


def test_elements_pydicom_cannot_convert_are_left_to_pydicom():
    dataset = _with_rows(b"\x01\x02\x03")  # three bytes: no US value
    convert_elements(dataset, DISCOVERY_ELEMENTS)
    assert isinstance(dataset.get_item("Rows", keep_deferred=True), RawDataElement)
    assert isinstance(dataset.get_item("ImageType", keep_deferred=True), DataElement)
    with pytest.raises(Exception, match="Expected total bytes to be an even"):
        dataset.Rows  # noqa: B018 - pydicom's own error, on access


def test_empty_elements_are_left_to_pydicom():
    dataset = _with_rows(b"")
    convert_elements(dataset, DISCOVERY_ELEMENTS)
    assert isinstance(dataset.get_item("Rows", keep_deferred=True), RawDataElement)
    assert dataset.Rows is None


def test_nothing_is_converted_ahead_while_conversion_is_customized(monkeypatch):
    monkeypatch.setattr(hooks, "raw_element_value", raw_element_value_fix_separator)
    dataset = _with_rows(b"\x00\x02")
    convert_elements(dataset, DISCOVERY_ELEMENTS)
    assert isinstance(dataset.get_item("ImageType", keep_deferred=True), RawDataElement)
    monkeypatch.undo()
    monkeypatch.setattr(hooks, "raw_element_kwargs", {"target_VRs": ("US",)})
    convert_elements(dataset, DISCOVERY_ELEMENTS)
    assert isinstance(dataset.get_item("ImageType", keep_deferred=True), RawDataElement)
    monkeypatch.undo()
    convert_elements(dataset, DISCOVERY_ELEMENTS)
    assert isinstance(dataset.get_item("ImageType", keep_deferred=True), DataElement)
    assert dataset.Rows == 512


def test_element_values_follow_customized_conversion(monkeypatch):
    def one_more_row(raw, data, **kwargs):
        raw_element_value(raw, data, **kwargs)
        if raw.tag == 0x00280010:
            data["value"] += 1

    monkeypatch.setattr(hooks, "raw_element_value", one_more_row)
    ours, theirs = _with_rows(b"\x00\x02"), _with_rows(b"\x00\x02")
    assert theirs.Rows == 513  # pydicom's customized conversion
    assert element_value(ours, "Rows") == 513
    assert element_value(ours, "ImageType") == theirs.ImageType


def test_element_value_converts_a_raw_element_as_pydicom_would(tmp_path):
    image = synthetic.write_wsi_image(
        tmp_path, total_rows=100, total_cols=120, tile_rows=32, tile_cols=48
    )
    ours, theirs = _read(image.files[0]), _read(image.files[0])
    for keyword in ("Rows", "ImageType", "SOPInstanceUID", "ContainerIdentifier"):
        assert isinstance(ours.get_item(keyword, keep_deferred=True), RawDataElement)
        value = element_value(ours, keyword)
        assert type(value) is type(theirs.get(keyword))
        assert value == theirs.get(keyword)
        # stored as pydicom's first access stores it
        element = ours.get_item(keyword, keep_deferred=True)
        assert isinstance(element, DataElement)
        assert repr(element) == repr(theirs[keyword])
    assert ours == theirs


@pytest.mark.parametrize(
    "keyword",
    [
        "Rows",  # converted ahead
        "ImageType",  # converted ahead, multi-valued
        "StudyDate",  # raw until accessed
        "OpticalPathSequence",  # a raw sequence
        "ConcatenationUID",  # absent
        "PatientName",  # empty
    ],
)
def test_element_value_and_has_element_answer_as_pydicom(tmp_path, keyword):
    image = synthetic.write_wsi_image(
        tmp_path, total_rows=100, total_cols=120, tile_rows=32, tile_cols=48
    )
    theirs = _read(image.files[0])
    ours = _read(image.files[0])
    ours.PatientName = ""
    theirs.PatientName = ""
    convert_elements(ours, DISCOVERY_ELEMENTS)
    assert has_element(ours, keyword) == (keyword in theirs)
    assert element_value(ours, keyword, "default") == theirs.get(keyword, "default")
    if keyword in theirs:
        assert type(element_value(ours, keyword)) is type(theirs.get(keyword))
        assert isinstance(ours.get_item(keyword, keep_deferred=True), DataElement)
