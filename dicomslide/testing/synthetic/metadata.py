"""Data set items the writer shares: codes, specimens, optical paths, dimensions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.valuerep import DSfloat

from dicomslide.testing.synthetic.icc import icc_profile
from dicomslide.testing.synthetic.model import (
    SlideUIDs,
)
from dicomslide.testing.synthetic.syntaxes import (
    _FLUORESCENCE_WAVELENGTHS,
    _TAG_COLUMN_POSITION,
    _TAG_OPTICAL_PATH_ID,
    _TAG_OPTICAL_PATH_ID_SEQ,
    _TAG_PLANE_POSITION_SLIDE,
    _TAG_ROW_POSITION,
    _TAG_Z_OFFSET,
)


def _ds(value: float) -> DSfloat:
    return DSfloat(float(value), auto_format=True)


def _code_item(code: Any) -> Dataset:
    item = Dataset()
    item.CodeValue = code.value
    item.CodingSchemeDesignator = code.scheme_designator
    item.CodeMeaning = code.meaning
    return item


def _specimen_description(uids: SlideUIDs, stains: Sequence[Any]) -> Dataset:
    import highdicom as hd

    step = hd.SpecimenPreparationStep(
        uids.specimen_identifier,
        processing_procedure=hd.SpecimenStaining(substances=list(stains)),
    )
    desc = hd.SpecimenDescription(
        specimen_id=uids.specimen_identifier,
        specimen_uid=uids.specimen_uid,
        specimen_preparation_steps=[step],
        specimen_short_description="Synthetic specimen",
    )
    return Dataset(desc)


def _optical_path_items(
    paths: int, samples: int, icc: bytes | None
) -> tuple[list[Dataset], tuple[str, ...]]:
    items = []
    ids = []
    srgb = icc_profile("srgb")
    for o in range(paths):
        item = Dataset()
        item.OpticalPathIdentifier = str(o + 1)
        ids.append(item.OpticalPathIdentifier)
        if samples == 3 or paths == 1:
            item.OpticalPathDescription = "Brightfield, full spectrum"
            item.IlluminationTypeCodeSequence = [
                _code_item(codes.DCM.BrightfieldIllumination)
            ]
            item.IlluminationColorCodeSequence = [_code_item(codes.SCT.FullSpectrum)]
        else:
            wavelength = _FLUORESCENCE_WAVELENGTHS[o % len(_FLUORESCENCE_WAVELENGTHS)]
            item.OpticalPathDescription = f"Channel {o + 1} ({wavelength:.0f} nm)"
            item.IlluminationTypeCodeSequence = [
                _code_item(codes.DCM.EpifluorescenceIllumination)
            ]
            item.IlluminationWaveLength = wavelength
        item.ObjectiveLensPower = _ds(20)
        item.ObjectiveLensNumericalAperture = _ds(0.75)
        if samples == 3:
            item.ICCProfile = icc if icc is not None else srgb
            if item.ICCProfile == srgb:
                item.ColorSpace = "SRGB"
        items.append(item)
    return items, tuple(ids)


def _dimension_index(org_uid: str, planes: int, paths: int) -> list[Dataset]:
    entries = [
        (_TAG_COLUMN_POSITION, _TAG_PLANE_POSITION_SLIDE, "Column Position"),
        (_TAG_ROW_POSITION, _TAG_PLANE_POSITION_SLIDE, "Row Position"),
    ]
    if planes > 1:
        entries.append((_TAG_Z_OFFSET, _TAG_PLANE_POSITION_SLIDE, "Focal Plane"))
    if paths > 1:
        entries.append((_TAG_OPTICAL_PATH_ID, _TAG_OPTICAL_PATH_ID_SEQ, "Optical Path"))
    items = []
    for pointer, group, label in entries:
        item = Dataset()
        item.DimensionOrganizationUID = org_uid
        item.DimensionIndexPointer = pointer
        item.FunctionalGroupPointer = group
        item.DimensionDescriptionLabel = label
        items.append(item)
    return items
