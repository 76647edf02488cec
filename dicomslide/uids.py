"""The UIDs dicomslide names: pydicom's names, and the few pydicom 3.0 lacks.

Transfer syntaxes and SOP classes are imported from :mod:`pydicom.uid`. Those
that DICOM defined after pydicom 3.0.1 (the lowest version dicomslide
supports) are spelled here once, under the name pydicom gives them later.
"""

from __future__ import annotations

from pydicom.uid import (
    HTJ2K,
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    ParametricMapStorage,
    RLELossless,
    SegmentationStorage,
    VLWholeSlideMicroscopyImageStorage,
)

__all__ = [
    "HTJ2K",
    "JPEG2000",
    "JPEGXL",
    "DeflatedExplicitVRLittleEndian",
    "DeflatedImageFrameCompression",
    "EncapsulatedUncompressedExplicitVRLittleEndian",
    "ExplicitVRBigEndian",
    "ExplicitVRLittleEndian",
    "HTJ2KLossless",
    "HTJ2KLosslessRPCL",
    "ImplicitVRLittleEndian",
    "JPEG2000Lossless",
    "JPEGBaseline8Bit",
    "JPEGExtended12Bit",
    "JPEGLSLossless",
    "JPEGLSNearLossless",
    "JPEGLossless",
    "JPEGLosslessSV1",
    "JPEGXLJPEGRecompression",
    "JPEGXLLossless",
    "LabelMapSegmentationStorage",
    "ParametricMapStorage",
    "RLELossless",
    "SegmentationStorage",
    "VLWholeSlideMicroscopyImageStorage",
]

EncapsulatedUncompressedExplicitVRLittleEndian = UID("1.2.840.10008.1.2.1.98")
DeflatedImageFrameCompression = UID("1.2.840.10008.1.2.8.1")
JPEGXLLossless = UID("1.2.840.10008.1.2.4.110")
JPEGXLJPEGRecompression = UID("1.2.840.10008.1.2.4.111")
JPEGXL = UID("1.2.840.10008.1.2.4.112")
LabelMapSegmentationStorage = UID("1.2.840.10008.5.1.4.1.1.66.7")
