"""Synthetic DICOM VL Whole Slide Microscopy Image (WSI) test slides.

This module writes small, fully known WSI files with pydicom so that a reader
(``dicomslide``) can be tested against exact expected pixel values.  It does
not import ``dicomslide``.  Everything is deterministic given the arguments
(including the UIDs when a :class:`SlideUIDs` made with a ``key`` is passed).

Main entry points
-----------------
* :func:`write_wsi_image` -- one image (one SOP instance, or several forming a
  concatenation) of any flavor, organization and transfer syntax.
* :func:`write_slide` -- a whole pyramid (several VOLUME levels plus optional
  THUMBNAIL, LABEL and OVERVIEW) sharing study/series/frame-of-reference/
  pyramid UIDs and the container identifier, built from a named preset
  (see :data:`PRESETS`).
* :func:`encodable_transfer_syntaxes` -- transfer syntaxes that
  :func:`write_wsi_image` can encode here.
* :func:`icc_profile` -- ``"srgb"`` (Pillow/LittleCMS sRGB) or ``"wide"``
  (a hand-built matrix/TRC profile with Adobe-RGB-like primaries and gamma
  1.8, so that colour management visibly changes pixel values).
* :func:`read_frames` -- decode the frames of a written file independently of
  ``dicomslide`` (pydicom, or Pillow for what pydicom cannot decode).
* Damaged files: :func:`set_attribute` (e.g. Rows of 0),
  :func:`relabel_transfer_syntax` (a syntax the data are not encoded in, e.g.
  an unknown UID on native pixel data) and :func:`frame_byte_ranges` (where
  each frame lies, to cut a file inside its pixel data at a chosen byte).

Run ``python -m dicomslide.testing.synthetic --help`` for the command-line interface.

Encodable transfer syntaxes
---------------------------
Each frame is encoded separately; encapsulated syntaxes hold one fragment per
frame and a Basic Offset Table (or, with ``offset_table="extended"``, an empty
BOT plus an Extended Offset Table; ``"empty"`` gives an empty BOT only).

=========================  ==========================  =======================
UID                        Name                        Photometric (RGB / mono)
=========================  ==========================  =======================
1.2.840.10008.1.2          Implicit VR Little Endian   RGB / MONOCHROME2
1.2.840.10008.1.2.1        Explicit VR Little Endian   RGB / MONOCHROME2
1.2.840.10008.1.2.1.98     Encapsulated Uncompressed   RGB / MONOCHROME2
1.2.840.10008.1.2.1.99     Deflated Explicit VR LE     RGB / MONOCHROME2
1.2.840.10008.1.2.4.50     JPEG Baseline (Pillow)      YBR_FULL_422 (4:2:0 or
                                                       4:2:2), YBR_FULL (4:4:4)
                                                       or RGB (``jpeg_rgb``:
                                                       Adobe marker, no YCbCr
                                                       transform) / MONOCHROME2
1.2.840.10008.1.2.4.80     JPEG-LS Lossless (pyjpegls) RGB / MONOCHROME2
1.2.840.10008.1.2.4.81     JPEG-LS Near-Lossless       RGB / MONOCHROME2
1.2.840.10008.1.2.4.90     JPEG 2000 Lossless          YBR_RCT (or RGB with
                           (openjpeg)                  ``j2k_mct=False``) /
                                                       MONOCHROME2
1.2.840.10008.1.2.4.91     JPEG 2000 (lossy,           YBR_ICT (or RGB) /
                           openjpeg)                   MONOCHROME2
1.2.840.10008.1.2.5        RLE Lossless (pylibjpeg-rle) RGB / MONOCHROME2
1.2.840.10008.1.2.4.110    JPEG XL Lossless            RGB / MONOCHROME2
                           (pillow-jxl-plugin)
1.2.840.10008.1.2.4.111    JPEG XL JPEG Recompression  same as the recompressed
                           (libjxl transcoding of the  JPEG: YBR_FULL_422 etc.
                           JPEG Baseline stream)       (8 bit only)
1.2.840.10008.1.2.4.112    JPEG XL (lossy)             RGB / MONOCHROME2
=========================  ==========================  =======================

Bits: 8 for RGB; 8 or 16 for MONOCHROME2 except JPEG Baseline and JPEG XL JPEG
Recompression (8 only).  pydicom 3.0 decodes all of the above except
``.1.2.1.98`` and the JPEG XL syntaxes, which :func:`read_frames` decodes
itself (raw bytes, resp. Pillow with ``pillow_jxl``).

Not encodable here
------------------
* JPEG Extended 12 bit (``.4.51``): Pillow writes only 8-bit JPEG.
* JPEG Lossless Process 14 (``.4.57``, ``.4.70`` SV1): no installed package
  has a lossless-JPEG encoder (Pillow cannot write it, pylibjpeg-libjpeg only
  decodes).
* High-Throughput JPEG 2000 (``.4.201``/``.202``/``.203``): OpenJPEG (as
  packaged by pylibjpeg-openjpeg 2.6) decodes HTJ2K but cannot encode it.
* JPEG 2000 Part 2 multi-component (``.4.92``/``.93``), MPEG/HEVC video
  syntaxes, Explicit VR Big Endian (retired): no encoder / out of scope.

Facts a reader must know (all written here, all standard-conforming)
---------------------------------------------------------------------
* Partial edge tiles are stored full size (Rows x Columns); the part outside
  the total pixel matrix holds ``pad_value`` -- by default magenta
  ``(255, 0, 255)`` for RGB and the maximum value (255 / 65535) for
  monochrome.  Omitted tiles (TILED_SPARSE / no organization) appear in
  ``SyntheticImage.pixels`` with ``fill_value`` (255 white for RGB, 0 for
  monochrome).
* TILED_FULL frame order: tile column fastest, then tile row, then focal plane
  (increasing Z), then optical path (order of OpticalPathSequence).  There is
  no PerFrameFunctionalGroupsSequence.  Focal plane ``k`` (0-based) of a
  TILED_FULL image lies at Z = ``k * SpacingBetweenSlices`` (mm, shared
  PixelMeasuresSequence); ``z_offsets_um`` must therefore be
  ``[0, d, 2d, ...]`` µm for TILED_FULL.  OpticalPathIdentificationSequence is
  in the shared group only when there is a single optical path.
* TILED_SPARSE and absent DimensionOrganizationType: every frame has
  PlanePositionSlideSequence (1-based Column/RowPositionInTotalImagePixelMatrix
  of the frame's top-left pixel, X/YOffsetInSlideCoordinateSystem in mm,
  ZOffsetInSlideCoordinateSystem in µm), OpticalPathIdentificationSequence and
  FrameContentSequence (DimensionIndexValues).  TILED_SPARSE frames are
  shuffled deterministically by default (``shuffle_frames``); with no
  organization they are in TILED_FULL-like order unless asked otherwise.
* X/Y offsets: pixel (row r, column c), 0-based, of the total pixel matrix is
  at ``origin + c * PixelSpacing[1] * ImageOrientationSlide[0:3] +
  r * PixelSpacing[0] * ImageOrientationSlide[3:6]`` (same mapping as
  highdicom); ``origin`` is TotalPixelMatrixOriginSequence.
* Concatenations: frames are split in stored order over the parts; each part
  carries ConcatenationFrameOffsetNumber (0-based) and its own
  NumberOfFrames / PerFrameFunctionalGroupsSequence.
* Lossy ``decoded`` arrays come from pydicom's default decoder (in this
  environment pylibjpeg-libjpeg for JPEG Baseline, openjpeg for JPEG 2000,
  pyjpegls/pylibjpeg for JPEG-LS), or Pillow for JPEG XL.  JPEG decoders
  disagree by a few units (Pillow/libjpeg-turbo vs pylibjpeg-libjpeg: up to 3
  for YBR_FULL_422, 1 for RGB/monochrome); compare exactly only against the
  same decoder -- :meth:`SyntheticImage.redecode` gives the others.
* TILED_FULL images written by this module with one optical path carry
  OpticalPathIdentificationSequence in the shared functional group; sparse /
  unorganized ones carry it per frame only (never both).
* The ``demo`` preset (``data/sample``) pads edge frames with white like a
  scanner would; all other presets use the magenta pad.
"""

from dicomslide.testing.synthetic.codecs import (
    read_frames,
)
from dicomslide.testing.synthetic.content import (
    downsample_area,
    make_label_image,
    make_overview_image,
    make_tissue_image,
)
from dicomslide.testing.synthetic.damage import (
    frame_byte_ranges,
    relabel_transfer_syntax,
    set_attribute,
)
from dicomslide.testing.synthetic.icc import (
    icc_profile,
    icc_profile_srgb,
)
from dicomslide.testing.synthetic.model import (
    FrameInfo,
    SlideUIDs,
    SyntheticImage,
    SyntheticSlide,
)
from dicomslide.testing.synthetic.presets import (
    PRESETS,
    write_slide,
)
from dicomslide.testing.synthetic.syntaxes import (
    DEFAULT_ORIENTATION,
    DEFLATED_EXPLICIT_VR_LE,
    ENCAPSULATED_UNCOMPRESSED,
    EXPLICIT_VR_LE,
    FLAVORS,
    IMPLICIT_VR_LE,
    JPEG_2000,
    JPEG_2000_LOSSLESS,
    JPEG_BASELINE,
    JPEG_LS_LOSSLESS,
    JPEG_LS_NEAR_LOSSLESS,
    JPEG_XL,
    JPEG_XL_JPEG_RECOMPRESSION,
    JPEG_XL_LOSSLESS,
    ORGANIZATIONS,
    RLE_LOSSLESS,
    WSI_SOP_CLASS_UID,
    encodable_transfer_syntaxes,
    is_lossy,
    write_part10,
)
from dicomslide.testing.synthetic.writer import (
    write_wsi_image,
)

__all__ = [
    "DEFAULT_ORIENTATION",
    "DEFLATED_EXPLICIT_VR_LE",
    "ENCAPSULATED_UNCOMPRESSED",
    "EXPLICIT_VR_LE",
    "FLAVORS",
    "FrameInfo",
    "IMPLICIT_VR_LE",
    "JPEG_2000",
    "JPEG_2000_LOSSLESS",
    "JPEG_BASELINE",
    "JPEG_LS_LOSSLESS",
    "JPEG_LS_NEAR_LOSSLESS",
    "JPEG_XL",
    "JPEG_XL_JPEG_RECOMPRESSION",
    "JPEG_XL_LOSSLESS",
    "ORGANIZATIONS",
    "PRESETS",
    "RLE_LOSSLESS",
    "SlideUIDs",
    "SyntheticImage",
    "SyntheticSlide",
    "WSI_SOP_CLASS_UID",
    "downsample_area",
    "encodable_transfer_syntaxes",
    "frame_byte_ranges",
    "icc_profile",
    "icc_profile_srgb",
    "is_lossy",
    "make_label_image",
    "make_overview_image",
    "make_tissue_image",
    "read_frames",
    "relabel_transfer_syntax",
    "set_attribute",
    "write_part10",
    "write_slide",
    "write_wsi_image",
]
