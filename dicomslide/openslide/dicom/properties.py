"""The properties of a DICOM slide, as OpenSlide 4.0.1 reports them.

The ``dicom.*`` properties of the level-0 image (:mod:`.libdicom`), and the
``openslide.*`` ones: vendor ``dicom``; level count and geometry; ``mpp-y`` /
``mpp-x`` from PixelSpacing[0] / [1] of the shared functional groups times
1000; ``objective-power`` from OpticalPathSequence[0].ObjectiveLensPower;
``barcode`` from BarcodeValue; ICC profile sizes; associated image sizes.
``quickhash-1`` is the SHA-256 of the level-0 Series Instance UID followed by
its terminating NUL byte (OpenSlide hashes nothing else), so it equals
OpenSlide's. Numbers are written as C's ``%.17g``.
"""

from __future__ import annotations

import hashlib
import math
import re
import sys
from collections.abc import Mapping, Sequence

from dicomslide.image import TiledImage
from dicomslide.openslide.dicom.levels import Level
from dicomslide.openslide.dicom.libdicom import dicom_properties, format_double
from dicomslide.openslide.properties import DICOM_VENDOR

__all__ = ["slide_properties"]

_C_DOUBLE = re.compile(
    r"[ \t\n\v\f\r]*[+-]?"
    r"((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|inf(inity)?|nan(\([0-9A-Za-z_]*\))?)",
    re.IGNORECASE,
)

_PIXEL_SPACING = (
    "dicom.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing"
)
_OBJECTIVE_POWER = "dicom.OpticalPathSequence[0].ObjectiveLensPower"

#: ``openslide.*`` properties copied from ``dicom.*`` ones: (target, source,
#: factor); mm to µm for the spacing
_FROM_DICOM = (
    ("openslide.mpp-y", f"{_PIXEL_SPACING}[0]", 1000.0),
    ("openslide.mpp-x", f"{_PIXEL_SPACING}[1]", 1000.0),
    ("openslide.objective-power", _OBJECTIVE_POWER, 1.0),
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


def slide_properties(
    levels: Sequence[Level],
    associated: Mapping[str, TiledImage],
    icc_profile: bytes | None,
    associated_icc_profiles: Mapping[str, bytes | None],
) -> dict[str, str]:
    """All properties of a slide, sorted by name.

    Parameters
    ----------
    levels: Sequence[Level]
        Levels, largest first
    associated: Mapping[str, dicomslide.TiledImage]
        Associated images by name
    icc_profile: Union[bytes, None]
        ICC profile of the levels
    associated_icc_profiles: Mapping[str, Union[bytes, None]]
        ICC profiles of the associated images by name

    Returns
    -------
    Dict[str, str]
        Properties

    Raises
    ------
    OpenSlideError
        When the level-0 file cannot be read

    """
    # the first instance of a level-0 concatenation, whichever file was opened,
    # as OpenSlide 4.0.1 does
    metadata = levels[0].image.metadata
    properties = dicom_properties(metadata)
    for target, source, factor in _FROM_DICOM:
        text = properties.get(source)
        value = None if text is None else _parse_double(text)
        if value is not None:
            properties[target] = format_double(value * factor)
    if "dicom.BarcodeValue" in properties:
        properties["openslide.barcode"] = properties["dicom.BarcodeValue"]
    series = str(metadata.get("SeriesInstanceUID", ""))
    properties["openslide.quickhash-1"] = hashlib.sha256(
        series.encode() + b"\0"
    ).hexdigest()
    properties["openslide.vendor"] = DICOM_VENDOR
    properties["openslide.level-count"] = str(len(levels))
    for index, level in enumerate(levels):
        prefix = f"openslide.level[{index}]"
        properties[f"{prefix}.width"] = str(level.width)
        properties[f"{prefix}.height"] = str(level.height)
        properties[f"{prefix}.downsample"] = format_double(level.downsample)
        properties[f"{prefix}.tile-width"] = str(level.tile_width)
        properties[f"{prefix}.tile-height"] = str(level.tile_height)
    if icc_profile:
        properties["openslide.icc-size"] = str(len(icc_profile))
    for name, image in associated.items():
        rows, columns = image.size
        prefix = f"openslide.associated.{name}"
        properties[f"{prefix}.width"] = str(columns)
        properties[f"{prefix}.height"] = str(rows)
        profile = associated_icc_profiles.get(name)
        if profile:
            properties[f"{prefix}.icc-size"] = str(len(profile))
    return dict(sorted(properties.items()))
