"""The names of OpenSlide's standard properties.

``PROPERTY_NAME_*`` are openslide-python's names; ``OPENSLIDE_*`` are the names
dicomslide 0.7 gave the same properties. Every backend reports these keys in
:attr:`dicomslide.openslide.OpenSlide.properties`.
"""

from __future__ import annotations

PROPERTY_NAME_BACKGROUND_COLOR = "openslide.background-color"
PROPERTY_NAME_BARCODE = "openslide.barcode"
PROPERTY_NAME_BOUNDS_HEIGHT = "openslide.bounds-height"
PROPERTY_NAME_BOUNDS_WIDTH = "openslide.bounds-width"
PROPERTY_NAME_BOUNDS_X = "openslide.bounds-x"
PROPERTY_NAME_BOUNDS_Y = "openslide.bounds-y"
PROPERTY_NAME_COMMENT = "openslide.comment"
PROPERTY_NAME_MPP_X = "openslide.mpp-x"
PROPERTY_NAME_MPP_Y = "openslide.mpp-y"
PROPERTY_NAME_OBJECTIVE_POWER = "openslide.objective-power"
PROPERTY_NAME_QUICKHASH1 = "openslide.quickhash-1"
PROPERTY_NAME_VENDOR = "openslide.vendor"

OPENSLIDE_BACKGROUND_COLOR = PROPERTY_NAME_BACKGROUND_COLOR
OPENSLIDE_BOUNDS_HEIGHT = PROPERTY_NAME_BOUNDS_HEIGHT
OPENSLIDE_BOUNDS_WIDTH = PROPERTY_NAME_BOUNDS_WIDTH
OPENSLIDE_BOUNDS_X = PROPERTY_NAME_BOUNDS_X
OPENSLIDE_BOUNDS_Y = PROPERTY_NAME_BOUNDS_Y
OPENSLIDE_COMMENT = PROPERTY_NAME_COMMENT
OPENSLIDE_MPP_X = PROPERTY_NAME_MPP_X
OPENSLIDE_MPP_Y = PROPERTY_NAME_MPP_Y
OPENSLIDE_OBJECTIVE_POWER = PROPERTY_NAME_OBJECTIVE_POWER
OPENSLIDE_QUICKHASH1 = PROPERTY_NAME_QUICKHASH1
OPENSLIDE_VENDOR = PROPERTY_NAME_VENDOR

#: Vendor of DICOM slides: the name OpenSlide 4 gives its DICOM format.
DICOM_VENDOR = "dicom"
