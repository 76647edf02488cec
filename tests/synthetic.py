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

Run ``python tests/synthetic.py --help`` for the command-line interface.

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

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import io
import math
import struct
import sys
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from PIL import Image, ImageCms, ImageDraw, ImageFont
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, encapsulate_extended, generate_frames
from pydicom.sr.codedict import codes
from pydicom.tag import Tag
from pydicom.uid import UID, generate_uid
from pydicom.valuerep import DSfloat

__all__ = [
    "PRESETS",
    "FrameInfo",
    "SlideUIDs",
    "SyntheticImage",
    "SyntheticSlide",
    "downsample_area",
    "encodable_transfer_syntaxes",
    "frame_byte_ranges",
    "icc_profile",
    "is_lossy",
    "make_label_image",
    "make_overview_image",
    "make_tissue_image",
    "read_frames",
    "relabel_transfer_syntax",
    "set_attribute",
    "write_slide",
    "write_wsi_image",
]

# --------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------

WSI_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.77.1.6"

IMPLICIT_VR_LE = "1.2.840.10008.1.2"
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
ENCAPSULATED_UNCOMPRESSED = "1.2.840.10008.1.2.1.98"
DEFLATED_EXPLICIT_VR_LE = "1.2.840.10008.1.2.1.99"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
JPEG_LS_NEAR_LOSSLESS = "1.2.840.10008.1.2.4.81"
JPEG_2000_LOSSLESS = "1.2.840.10008.1.2.4.90"
JPEG_2000 = "1.2.840.10008.1.2.4.91"
RLE_LOSSLESS = "1.2.840.10008.1.2.5"
JPEG_XL_LOSSLESS = "1.2.840.10008.1.2.4.110"
JPEG_XL_JPEG_RECOMPRESSION = "1.2.840.10008.1.2.4.111"
JPEG_XL = "1.2.840.10008.1.2.4.112"

_NATIVE = (IMPLICIT_VR_LE, EXPLICIT_VR_LE, DEFLATED_EXPLICIT_VR_LE)
_LOSSY = (
    JPEG_BASELINE,
    JPEG_LS_NEAR_LOSSLESS,
    JPEG_2000,
    JPEG_XL_JPEG_RECOMPRESSION,
    JPEG_XL,
)
_ENCODABLE = (
    IMPLICIT_VR_LE,
    EXPLICIT_VR_LE,
    ENCAPSULATED_UNCOMPRESSED,
    DEFLATED_EXPLICIT_VR_LE,
    JPEG_BASELINE,
    JPEG_LS_LOSSLESS,
    JPEG_LS_NEAR_LOSSLESS,
    JPEG_2000_LOSSLESS,
    JPEG_2000,
    RLE_LOSSLESS,
    JPEG_XL_LOSSLESS,
    JPEG_XL_JPEG_RECOMPRESSION,
    JPEG_XL,
)
_EIGHT_BIT_ONLY = (JPEG_BASELINE, JPEG_XL_JPEG_RECOMPRESSION)
_JPEG_XL = (JPEG_XL_LOSSLESS, JPEG_XL_JPEG_RECOMPRESSION, JPEG_XL)
_LOSSY_METHOD = {
    JPEG_BASELINE: "ISO_10918_1",
    JPEG_LS_NEAR_LOSSLESS: "ISO_14495_1",
    JPEG_2000: "ISO_15444_1",
    JPEG_XL_JPEG_RECOMPRESSION: "ISO_10918_1",
    JPEG_XL: "ISO_18181_1",
}
FLAVORS = ("VOLUME", "THUMBNAIL", "LABEL", "OVERVIEW")
ORGANIZATIONS = ("TILED_FULL", "TILED_SPARSE", None)
DEFAULT_ORIENTATION = (0.0, -1.0, 0.0, -1.0, 0.0, 0.0)
_FIXED_DATETIME = datetime.datetime(2024, 3, 14, 9, 26, 53)
_FLUORESCENCE_WAVELENGTHS = (405.0, 488.0, 561.0, 640.0, 730.0)

# Data element tags used as dimension index / functional group pointers.
_TAG_PLANE_POSITION_SLIDE = Tag(0x0048, 0x021A)
_TAG_COLUMN_POSITION = Tag(0x0048, 0x021E)
_TAG_ROW_POSITION = Tag(0x0048, 0x021F)
_TAG_Z_OFFSET = Tag(0x0040, 0x074A)
_TAG_OPTICAL_PATH_ID_SEQ = Tag(0x0048, 0x0207)
_TAG_OPTICAL_PATH_ID = Tag(0x0048, 0x0106)


def encodable_transfer_syntaxes() -> list[str]:
    """Return the transfer syntax UIDs :func:`write_wsi_image` can encode.

    Returns
    -------
    list[str]
        Transfer syntax UIDs, uncompressed ones first.
    """
    return list(_ENCODABLE)


def is_lossy(transfer_syntax: str) -> bool:
    """Tell whether frames written with `transfer_syntax` are lossy here.

    Parameters
    ----------
    transfer_syntax : str
        Transfer syntax UID.

    Returns
    -------
    bool
        ``True`` for JPEG Baseline, JPEG-LS near-lossless, JPEG 2000 (.91),
        JPEG XL (.112) and JPEG XL JPEG recompression (.111).
    """
    return transfer_syntax in _LOSSY


# --------------------------------------------------------------------------
# UIDs and result containers
# --------------------------------------------------------------------------


def _uid(*parts: object) -> str:
    """Return a deterministic UID derived from `parts`."""
    return str(generate_uid(entropy_srcs=[repr(p) for p in parts]))


@dataclass(frozen=True)
class SlideUIDs:
    """Identifiers shared by all images of one synthetic slide.

    Attributes
    ----------
    study_instance_uid, series_instance_uid, frame_of_reference_uid, \
pyramid_uid, specimen_uid : str
        UIDs written to every image.
    container_identifier : str
        ContainerIdentifier (the slide id).
    specimen_identifier : str
        SpecimenIdentifier of the single specimen on the slide.
    patient_id, patient_name, study_id, accession_number : str
        Patient / study identification.
    """

    study_instance_uid: str
    series_instance_uid: str
    frame_of_reference_uid: str
    pyramid_uid: str
    specimen_uid: str
    container_identifier: str = "SYNTH-001"
    specimen_identifier: str = "SYNTH-001-A"
    patient_id: str = "SYNTH-PATIENT-001"
    patient_name: str = "Synthetic^Slide"
    study_id: str = "S1"
    accession_number: str = "ACC-SYNTH-001"

    @classmethod
    def new(
        cls, container_identifier: str = "SYNTH-001", *, key: str | None = None
    ) -> SlideUIDs:
        """Create a new set of identifiers.

        Parameters
        ----------
        container_identifier : str, optional
            ContainerIdentifier of the slide.
        key : str or None, optional
            If given, the UIDs are derived deterministically from `key` and
            `container_identifier`; otherwise they are random.

        Returns
        -------
        SlideUIDs
            The identifiers.
        """

        def make(name: str) -> str:
            if key is None:
                return str(generate_uid())
            return _uid("SlideUIDs", key, container_identifier, name)

        return cls(
            study_instance_uid=make("study"),
            series_instance_uid=make("series"),
            frame_of_reference_uid=make("frame_of_reference"),
            pyramid_uid=make("pyramid"),
            specimen_uid=make("specimen"),
            container_identifier=container_identifier,
            specimen_identifier=f"{container_identifier}-A",
            accession_number=f"ACC-{container_identifier}",
        )


@dataclass(frozen=True)
class FrameInfo:
    """Where one stored frame lives and what it shows.

    Attributes
    ----------
    part : int
        0-based index of the file (concatenation part) holding the frame.
    frame_number : int
        1-based frame number inside that file.
    tile_row, tile_col : int
        0-based position of the tile in the tile grid.
    focal_plane, optical_path : int
        0-based focal plane and optical path index.
    """

    part: int
    frame_number: int
    tile_row: int
    tile_col: int
    focal_plane: int
    optical_path: int


@dataclass
class SyntheticImage:
    """Result of :func:`write_wsi_image`: the files and the truth about them.

    Attributes
    ----------
    files : list[pathlib.Path]
        Written files, in InConcatenationNumber order (one unless
        concatenated).
    sop_instance_uids : list[str]
        SOPInstanceUID of each file.
    pixels : numpy.ndarray
        Source values, shape ``(focal_planes, optical_paths, total_rows,
        total_cols, samples)``, uint8 or uint16; omitted tiles hold
        `fill_value`.
    decoded : numpy.ndarray
        Same shape; what a correct decoder returns.  For lossless syntaxes it
        *is* `pixels`; for lossy ones every stored frame was decoded from the
        written files (see :func:`read_frames`) and pasted at its position.
    present : numpy.ndarray
        bool, shape ``(grid_rows, grid_cols)``; ``False`` for omitted tiles.
    frames : list[FrameInfo]
        One entry per stored frame, in stored order across all parts.
    """

    files: list[Path]
    sop_instance_uids: list[str]
    pixels: np.ndarray
    decoded: np.ndarray
    present: np.ndarray
    frames: list[FrameInfo]
    transfer_syntax: str
    lossy: bool
    photometric_interpretation: str
    total_rows: int
    total_cols: int
    tile_rows: int
    tile_cols: int
    samples: int
    bits: int
    focal_planes: int
    optical_paths: int
    organization: str | None
    flavor: str
    pixel_spacing: tuple[float, float]
    origin: tuple[float, float]
    image_orientation: tuple[float, ...]
    z_offsets_um: tuple[float, ...]
    optical_path_identifiers: tuple[str, ...]
    icc_profile: bytes | None
    uids: SlideUIDs
    concatenation_uid: str | None
    fill_value: tuple[int, ...]
    pad_value: tuple[int, ...]
    instance_number: int
    image_type: tuple[str, ...]
    decoded_by: str = "source"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def grid_rows(self) -> int:
        """Number of tile rows."""
        return -(-self.total_rows // self.tile_rows)

    @property
    def grid_cols(self) -> int:
        """Number of tile columns."""
        return -(-self.total_cols // self.tile_cols)

    @property
    def number_of_frames(self) -> int:
        """Number of stored frames over all parts."""
        return len(self.frames)

    def tile(
        self,
        tile_row: int,
        tile_col: int,
        focal_plane: int = 0,
        optical_path: int = 0,
        *,
        decoded: bool = True,
    ) -> np.ndarray:
        """Return the expected (cropped) content of one tile.

        Parameters
        ----------
        tile_row, tile_col : int
            0-based tile position.
        focal_plane, optical_path : int, optional
            0-based plane / path index.
        decoded : bool, optional
            Use `decoded` (default) or the source `pixels`.

        Returns
        -------
        numpy.ndarray
            Array of shape ``(h, w, samples)``; edge tiles are cropped to the
            total pixel matrix.
        """
        src = self.decoded if decoded else self.pixels
        r0, c0 = tile_row * self.tile_rows, tile_col * self.tile_cols
        return src[
            focal_plane,
            optical_path,
            r0 : r0 + self.tile_rows,
            c0 : c0 + self.tile_cols,
        ]

    def frame_position(self, info: FrameInfo) -> tuple[float, float, float]:
        """Return the slide coordinates of a frame's top-left pixel.

        Parameters
        ----------
        info : FrameInfo
            The frame.

        Returns
        -------
        tuple[float, float, float]
            X and Y in mm, Z in µm.
        """
        x, y = _pixel_to_slide(
            info.tile_row * self.tile_rows,
            info.tile_col * self.tile_cols,
            self.origin,
            self.pixel_spacing,
            self.image_orientation,
        )
        return x, y, self.z_offsets_um[info.focal_plane]

    def redecode(self, plugin: str = "") -> np.ndarray:
        """Decode all stored frames again, optionally with another decoder.

        Parameters
        ----------
        plugin : str, optional
            pydicom decoding plugin name (``"pillow"``, ``"pylibjpeg"``,
            ``"pyjpegls"``...), ``""`` for pydicom's default, or
            ``"pillow-direct"`` to decode JPEG / JPEG 2000 / JPEG XL frames
            with ``PIL.Image.open`` (Pillow's own colour conversion).

        Returns
        -------
        numpy.ndarray
            Array shaped like `pixels`.
        """
        return _assemble(self, [read_frames(f, plugin=plugin) for f in self.files])


@dataclass
class SyntheticSlide:
    """Result of :func:`write_slide`.

    Attributes
    ----------
    folder : pathlib.Path
        Folder holding all files.
    preset : str
        Name of the preset used.
    uids : SlideUIDs
        Identifiers shared by all images.
    levels : list[SyntheticImage]
        VOLUME images, largest first.
    downsamples : list[int]
        Downsample factor of each level relative to level 0.
    thumbnail, label, overview : SyntheticImage or None
        Associated images, if written.
    """

    folder: Path
    preset: str
    uids: SlideUIDs
    levels: list[SyntheticImage]
    downsamples: list[int]
    thumbnail: SyntheticImage | None = None
    label: SyntheticImage | None = None
    overview: SyntheticImage | None = None

    @property
    def images(self) -> list[SyntheticImage]:
        """All images: levels, then thumbnail, label and overview."""
        extra = [self.thumbnail, self.label, self.overview]
        return self.levels + [im for im in extra if im is not None]

    @property
    def files(self) -> list[Path]:
        """All written files."""
        return [f for im in self.images for f in im.files]


# --------------------------------------------------------------------------
# ICC profiles
# --------------------------------------------------------------------------


def _s15f16(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz_tag(xyz: Sequence[float]) -> bytes:
    return b"XYZ " + b"\0" * 4 + b"".join(_s15f16(v) for v in xyz)


def _curve_tag(gamma: float) -> bytes:
    return b"curv" + b"\0" * 4 + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"


def _desc_tag(text: str) -> bytes:
    ascii_text = text.encode("ascii") + b"\0"
    return (
        b"desc"
        + b"\0" * 4
        + struct.pack(">I", len(ascii_text))
        + ascii_text
        + struct.pack(">II", 0, 0)
        + struct.pack(">HB", 0, 0)
        + b"\0" * 67
    )


def _text_tag(text: str) -> bytes:
    return b"text" + b"\0" * 4 + text.encode("ascii") + b"\0"


def _rgb_to_xyz_d50(
    primaries: Sequence[tuple[float, float]], white: tuple[float, float]
) -> np.ndarray:
    """RGB->XYZ matrix for given xy primaries, Bradford-adapted to D50."""

    def xyz(xy: tuple[float, float]) -> np.ndarray:
        x, y = xy
        return np.array([x / y, 1.0, (1 - x - y) / y])

    prim = np.stack([xyz(p) for p in primaries], axis=1)
    w = xyz(white)
    scale = np.linalg.solve(prim, w)
    m = prim * scale
    bradford = np.array(
        [
            [0.8951, 0.2664, -0.1614],
            [-0.7502, 1.7135, 0.0367],
            [0.0389, -0.0685, 1.0296],
        ]
    )
    d50 = np.array([0.9642, 1.0, 0.8249])
    cone_src = bradford @ w
    cone_dst = bradford @ d50
    adapt = np.linalg.inv(bradford) @ np.diag(cone_dst / cone_src) @ bradford
    return adapt @ m


def _matrix_trc_profile(
    description: str,
    primaries: Sequence[tuple[float, float]],
    white: tuple[float, float],
    gamma: float,
) -> bytes:
    """Build a minimal ICC v2.4 RGB display profile (matrix + gamma TRC)."""
    m = _rgb_to_xyz_d50(primaries, white)
    curve = _curve_tag(gamma)
    tags: list[tuple[bytes, bytes]] = [
        (b"desc", _desc_tag(description)),
        (b"cprt", _text_tag("No copyright, synthetic test profile")),
        (b"wtpt", _xyz_tag((0.9642, 1.0, 0.8249))),
        (b"rXYZ", _xyz_tag(m[:, 0].tolist())),
        (b"gXYZ", _xyz_tag(m[:, 1].tolist())),
        (b"bXYZ", _xyz_tag(m[:, 2].tolist())),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    table = struct.pack(">I", len(tags))
    body = b""
    offset = 128 + 4 + 12 * len(tags)
    for sig, data in tags:
        while len(data) % 4:
            data += b"\0"
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = 128 + len(table) + len(body)
    header = (
        struct.pack(">I", size)
        + b"lcms"
        + bytes([2, 0x40, 0, 0])
        + b"mntr"
        + b"RGB "
        + b"XYZ "
        + struct.pack(">6H", 2024, 1, 1, 0, 0, 0)
        + b"acsp"
        + b"APPL"
        + struct.pack(">I", 0)
        + b"none"
        + b"none"
        + b"\0" * 8
        + struct.pack(">I", 0)
        + _s15f16(0.9642)
        + _s15f16(1.0)
        + _s15f16(0.8249)
        + b"none"
        + b"\0" * 16
        + b"\0" * 28
    )
    assert len(header) == 128
    return _fix_icc_header(header + table + body)


def _fix_icc_header(data: bytes) -> bytes:
    """Set a fixed creation date and recompute the profile ID (MD5).

    LittleCMS stamps the current time into the header; a fixed date keeps the
    written files byte-for-byte reproducible.
    """
    buf = bytearray(data)
    buf[24:36] = struct.pack(">6H", 2024, 1, 1, 0, 0, 0)
    buf[84:100] = b"\0" * 16
    digest_input = bytearray(buf)
    digest_input[44:48] = b"\0" * 4
    digest_input[64:68] = b"\0" * 4
    if buf[8] >= 4:  # the profile ID exists from ICC v4 on (zero in v2)
        buf[84:100] = hashlib.md5(bytes(digest_input)).digest()
    return bytes(buf)


def icc_profile(kind: str = "srgb") -> bytes:
    """Return an ICC profile to embed in OpticalPathSequence.

    Parameters
    ----------
    kind : {"srgb", "wide"}
        ``"srgb"``: Pillow/LittleCMS built-in sRGB profile (colour correction
        to sRGB is then a near no-op).  ``"wide"``: a hand-built matrix/TRC
        profile with Adobe RGB (1998) primaries, D65 white and gamma 1.8, so
        converting to sRGB visibly changes pixel values (mid-grey brightens,
        saturated colours shift).

    Returns
    -------
    bytes
        The profile.
    """
    if kind == "srgb":
        data = bytes(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
        return _fix_icc_header(data)
    if kind == "wide":
        return _matrix_trc_profile(
            "Synthetic wide-gamut gamma 1.8 (test only)",
            primaries=[(0.64, 0.33), (0.21, 0.71), (0.15, 0.06)],
            white=(0.3127, 0.3290),
            gamma=1.8,
        )
    raise ValueError(f"unknown ICC profile kind {kind!r}; use 'srgb' or 'wide'")


# --------------------------------------------------------------------------
# Pixel content
# --------------------------------------------------------------------------


def _max_value(bits: int) -> int:
    return (1 << bits) - 1


def _tile_hash(*values: int) -> int:
    digest = hashlib.blake2b(repr(values).encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little")


def _random_pixels(shape: tuple[int, ...], bits: int, seed: int) -> np.ndarray:
    planes, paths = shape[:2]
    dtype = np.uint8 if bits <= 8 else np.uint16
    out = np.empty(shape, dtype=dtype)
    for p in range(planes):
        for o in range(paths):
            rng = np.random.default_rng([seed, p, o, 17])
            out[p, o] = rng.integers(
                0, _max_value(bits) + 1, size=shape[2:], dtype=dtype
            )
    return out


def _smooth_pixels(
    shape: tuple[int, ...], bits: int, seed: int, tile_rows: int, tile_cols: int
) -> np.ndarray:
    """JPEG-friendly content that differs per tile, plane, path and sample.

    A global gradient plus, inside each tile, two low-frequency sinusoids
    whose periods (16-64 px), directions and phases are drawn per (plane,
    path, sample, tile), a per-(plane, path) offset, plus low-amplitude
    noise.
    Two different tiles, or the same tile of two planes/paths, differ by
    about 10 units or more on average, far above JPEG errors.
    """
    planes, paths, rows, cols, samples = shape
    rr = np.arange(rows, dtype=np.float64)[:, None]
    cc = np.arange(cols, dtype=np.float64)[None, :]
    ramp = 0.5 * rr / max(rows - 1, 1) + 0.5 * cc / max(cols - 1, 1)
    grid_rows, grid_cols = -(-rows // tile_rows), -(-cols // tile_cols)
    out = np.empty(shape, dtype=np.float64)
    step = min(14.0, 60.0 / max(planes * paths - 1, 1))
    for p in range(planes):
        for o in range(paths):
            rng = np.random.default_rng([seed, p, o, 29])
            params = rng.random((samples, grid_rows, grid_cols, 2, 3))
            level = 40 + step * (p * paths + o)
            for s in range(samples):
                plane = level + 60 * ramp + rng.normal(0.0, 2.0, size=(rows, cols))
                for tr in range(grid_rows):
                    for tc in range(grid_cols):
                        r0, c0 = tr * tile_rows, tc * tile_cols
                        y = rr[r0 : r0 + tile_rows] - r0
                        x = cc[:, c0 : c0 + tile_cols] - c0
                        for period_u, angle_u, phase_u in params[s, tr, tc]:
                            period = 16 + 48 * period_u
                            angle = math.pi * angle_u
                            wave = np.sin(
                                2
                                * math.pi
                                * (x * math.cos(angle) + y * math.sin(angle))
                                / period
                                + 2 * math.pi * phase_u
                            )
                            plane[r0 : r0 + tile_rows, c0 : c0 + tile_cols] += 30 * (
                                0.5 + 0.5 * wave
                            )
                out[p, o, :, :, s] = plane
    if bits > 8:
        out = out * (_max_value(bits) / 255.0)
    out = np.clip(np.rint(out), 0, _max_value(bits))
    return out.astype(np.uint8 if bits <= 8 else np.uint16)


def _smooth_noise(
    rng: np.random.Generator, rows: int, cols: int, cell: float
) -> np.ndarray:
    """Smooth value noise in [0, 1] with feature size about `cell` pixels."""
    small_r = max(2, int(rows / cell) + 3)
    small_c = max(2, int(cols / cell) + 3)
    small = rng.random((small_r, small_c)).astype(np.float32)
    img = Image.fromarray(small, mode="F")
    big = img.resize(
        (int(small_c * cell), int(small_r * cell)), resample=Image.Resampling.BICUBIC
    )
    arr = np.asarray(big, dtype=np.float32)[:rows, :cols]
    lo, hi = float(arr.min()), float(arr.max())
    return (arr - lo) / max(hi - lo, 1e-6)


def _fractal_noise(
    rng: np.random.Generator, rows: int, cols: int, cell: float, octaves: int = 4
) -> np.ndarray:
    total = np.zeros((rows, cols), dtype=np.float32)
    amp, norm = 1.0, 0.0
    for _ in range(octaves):
        total += amp * _smooth_noise(rng, rows, cols, max(cell, 2.0))
        norm += amp
        amp *= 0.5
        cell /= 2.0
    return total / norm


def _box_blur_axis(arr: np.ndarray, radius: int, axis: int) -> np.ndarray:
    pad = [(0, 0)] * arr.ndim
    pad[axis] = (radius + 1, radius)
    padded = np.pad(arr, pad, mode="edge")
    csum = np.cumsum(padded, axis=axis, dtype=np.float64)
    n = arr.shape[axis]
    upper = np.take(csum, np.arange(2 * radius + 1, 2 * radius + 1 + n), axis=axis)
    lower = np.take(csum, np.arange(0, n), axis=axis)
    return ((upper - lower) / (2 * radius + 1)).astype(np.float32)


def _blur(arr: np.ndarray, sigma: float) -> np.ndarray:
    """Approximate Gaussian blur (three box passes per axis)."""
    radius = max(1, round(math.sqrt(12 * sigma * sigma / 3 + 1) / 2))
    out = arr.astype(np.float32)
    for _ in range(3):
        out = _box_blur_axis(out, radius, 0)
        out = _box_blur_axis(out, radius, 1)
    return out


def _streaks(
    rng: np.random.Generator,
    rows: int,
    cols: int,
    angle_deg: float,
    across: float,
    along: float,
) -> np.ndarray:
    """Anisotropic noise: thin streaks along `angle_deg`, values in [0, 1]."""
    diag = int(math.hypot(rows, cols)) + 4
    small = rng.random((int(diag / across) + 3, int(diag / along) + 3))
    img = Image.fromarray(small.astype(np.float32), mode="F")
    img = img.resize(
        (int(small.shape[1] * along), int(small.shape[0] * across)),
        resample=Image.Resampling.BICUBIC,
    )
    img = img.rotate(angle_deg, resample=Image.Resampling.BILINEAR)
    arr = np.asarray(img, dtype=np.float32)
    r0 = (arr.shape[0] - rows) // 2
    c0 = (arr.shape[1] - cols) // 2
    arr = arr[r0 : r0 + rows, c0 : c0 + cols]
    lo, hi = float(np.percentile(arr, 1)), float(np.percentile(arr, 99))
    return np.clip((arr - lo) / max(hi - lo, 1e-6), 0.0, 1.0)


def _ellipse_polygon(
    cx: float,
    cy: float,
    a: float,
    b: float,
    theta: float,
    n: int = 24,
    wobble: Sequence[float] = (),
) -> list[tuple[float, float]]:
    """Polygon of a rotated ellipse; `wobble` = (amplitude, k, phase)..."""
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    scale = np.ones_like(t)
    for i in range(0, len(wobble) - 2, 3):
        scale += wobble[i] * np.sin(wobble[i + 1] * t + wobble[i + 2])
    ex, ey = a * scale * np.cos(t), b * scale * np.sin(t)
    ct, st = math.cos(theta), math.sin(theta)
    return list(
        zip((cx + ex * ct - ey * st).tolist(), (cy + ex * st + ey * ct).tolist())
    )


def _warp(
    rng: np.random.Generator, arr: np.ndarray, amplitude: float, cell: float
) -> np.ndarray:
    """Displace `arr` by a smooth random field (nearest-neighbour sampling)."""
    rows, cols = arr.shape
    dy = (_smooth_noise(rng, rows, cols, cell) - 0.5) * 2 * amplitude
    dx = (_smooth_noise(rng, rows, cols, cell) - 0.5) * 2 * amplitude
    r = np.clip(np.arange(rows)[:, None] + dy.astype(np.int32), 0, rows - 1)
    c = np.clip(np.arange(cols)[None, :] + dx.astype(np.int32), 0, cols - 1)
    return arr[r, c]


def make_tissue_image(
    rows: int, cols: int, seed: int = 0, *, pixel_size_um: float = 1.0
) -> np.ndarray:
    """Render an H&E-stained tissue section on white glass.

    Procedural: fractal noise thresholded into a ragged tissue mask; pink
    eosin stroma with wavy collagen fibres and sparse elongated nuclei;
    glands (white lumen, purple-pink epithelium with a ring of nuclei);
    clusters of round dark nuclei (inflammatory cells); colours from a
    Beer-Lambert hematoxylin/eosin stain model.

    Parameters
    ----------
    rows, cols : int
        Image size in pixels.
    seed : int, optional
        Random seed (the result is deterministic).
    pixel_size_um : float, optional
        Pixel size in µm; structures have realistic physical sizes (nuclei
        about 7 µm across).

    Returns
    -------
    numpy.ndarray
        uint8 RGB array of shape ``(rows, cols, 3)``.
    """
    rng = np.random.default_rng([seed, 4242])
    um = 1.0 / pixel_size_um  # pixels per µm
    scale = max(rows, cols)
    yy = (np.arange(rows, dtype=np.float32)[:, None] - rows / 2) / (scale / 2)
    xx = (np.arange(cols, dtype=np.float32)[None, :] - cols / 2) / (scale / 2)

    # Tissue mask: two overlapping lobes distorted by noise.
    lobes = np.maximum(
        1.0 - ((xx + 0.18) / 0.62) ** 2 - ((yy + 0.02) / 0.50) ** 2,
        1.0 - ((xx - 0.35) / 0.42) ** 2 - ((yy - 0.12) / 0.42) ** 2,
    )
    shape_noise = _fractal_noise(rng, rows, cols, scale / 6, octaves=6)
    mask = np.clip((lobes + 0.9 * (shape_noise - 0.5) - 0.05) / 0.03, 0.0, 1.0)
    mask = _blur(mask, 1.5 * um)

    # Stroma: wavy collagen fibres in two slowly varying directions.
    region = _smooth_noise(rng, rows, cols, 500 * um)
    fib_a = _streaks(rng, rows, cols, 25.0, 7 * um, 70 * um)
    fib_b = _streaks(rng, rows, cols, -40.0, 7 * um, 70 * um)
    fibres = _warp(rng, fib_a * region + fib_b * (1.0 - region), 25 * um, 120 * um)
    density = _fractal_noise(rng, rows, cols, 150 * um, octaves=4)
    eosin = (0.16 + 0.22 * density + 0.30 * fibres**2).astype(np.float32)
    hema = np.full((rows, cols), 0.035, dtype=np.float32)
    # Loose areas / cracks.
    loose = np.clip(
        (_fractal_noise(rng, rows, cols, 80 * um, octaves=3) - 0.70) / 0.06, 0.0, 1.0
    )
    eosin *= 1.0 - 0.8 * loose

    nuc_img = Image.new("L", (cols, rows), 0)
    nuc_draw = ImageDraw.Draw(nuc_img)
    epi_img = Image.new("L", (cols, rows), 0)
    epi_draw = ImageDraw.Draw(epi_img)
    lumen_img = Image.new("L", (cols, rows), 0)
    lumen_draw = ImageDraw.Draw(lumen_img)

    def nucleus(
        cx: float, cy: float, a: float, b: float, theta: float, dark: float
    ) -> None:
        nuc_draw.polygon(
            _ellipse_polygon(cx, cy, a, b, theta, 12), fill=int(255 * dark)
        )

    # Glands.
    area_um2 = rows * cols / um**2
    n_glands = int(area_um2 / 60000)
    inside_r, inside_c = np.nonzero(mask[::8, ::8] > 0.99)
    glandular = _smooth_noise(rng, rows, cols, 700 * um)
    placed: list[tuple[float, float, float]] = []
    for _ in range(n_glands):
        if len(inside_r) == 0:
            break
        k = rng.integers(len(inside_r))
        cy, cx = inside_r[k] * 8.0, inside_c[k] * 8.0
        if glandular[int(cy), int(cx)] < 0.45:
            continue
        a = rng.uniform(18, 55) * um
        b = a * rng.uniform(0.45, 0.9)
        theta = rng.uniform(0, math.pi)
        wall = rng.uniform(12, 18) * um
        if any(
            math.hypot(cx - px, cy - py) < a + wall + pr + 10 * um
            for px, py, pr in placed
        ):
            continue
        placed.append((cx, cy, a + wall))
        wobble = [
            rng.uniform(0.03, 0.10),
            int(rng.integers(2, 5)),
            rng.uniform(0, 2 * math.pi),
            rng.uniform(0.02, 0.05),
            int(rng.integers(5, 8)),
            rng.uniform(0, 2 * math.pi),
        ]
        epi_draw.polygon(
            _ellipse_polygon(cx, cy, a + wall, b + wall, theta, 64, wobble), fill=255
        )
        lumen_draw.polygon(_ellipse_polygon(cx, cy, a, b, theta, 64, wobble), fill=255)
        perimeter = math.pi * (a + b + 2 * wall)
        n_nuc = int(perimeter / (6.5 * um))
        for i in range(n_nuc):
            phi = 2 * math.pi * (i + rng.uniform(-0.2, 0.2)) / n_nuc
            rad = rng.uniform(0.55, 0.85)
            w = 1.0 + sum(
                wobble[j] * math.sin(wobble[j + 1] * phi + wobble[j + 2])
                for j in (0, 3)
            )
            ex = (a * w + wall * rad) * math.cos(phi)
            ey = (b * w + wall * rad) * math.sin(phi)
            ct, st = math.cos(theta), math.sin(theta)
            px, py = cx + ex * ct - ey * st, cy + ex * st + ey * ct
            radial = math.atan2(py - cy, px - cx)
            nucleus(
                px,
                py,
                rng.uniform(4.0, 5.5) * um,
                rng.uniform(2.2, 3.0) * um,
                radial,
                rng.uniform(0.75, 1.0),
            )
    epithelium = np.asarray(epi_img, dtype=np.float32) / 255.0
    lumen = np.asarray(lumen_img, dtype=np.float32) / 255.0
    epithelium = np.clip(epithelium - lumen, 0.0, 1.0)

    # Stromal nuclei: sparse, elongated along the local fibre direction.
    stroma_ok = (mask > 0.5) & (np.asarray(epi_img) == 0)
    n_stromal = int(area_um2 / 900)
    ys = rng.random(n_stromal) * rows
    xs = rng.random(n_stromal) * cols
    for y, x in zip(ys, xs):
        yi, xi = int(y), int(x)
        if not stroma_ok[yi, xi]:
            continue
        angle = math.radians(-25.0) if region[yi, xi] > 0.5 else math.radians(40.0)
        nucleus(
            x,
            y,
            rng.uniform(5, 8) * um,
            rng.uniform(1.4, 2.2) * um,
            angle + rng.normal(0, 0.2),
            rng.uniform(0.6, 0.9),
        )

    # Inflammatory clusters: small round dark nuclei.
    infl = _fractal_noise(rng, rows, cols, 250 * um, octaves=3)
    n_infl = int(area_um2 / 120)
    ys = rng.random(n_infl) * rows
    xs = rng.random(n_infl) * cols
    for y, x in zip(ys, xs):
        yi, xi = int(y), int(x)
        p = max(0.0, (infl[yi, xi] - 0.58) / 0.2)
        if not stroma_ok[yi, xi] or rng.random() > p:
            continue
        r = rng.uniform(2.8, 3.8) * um
        nucleus(
            x,
            y,
            r,
            r * rng.uniform(0.85, 1.0),
            rng.uniform(0, math.pi),
            rng.uniform(0.9, 1.0),
        )

    nuclei = np.asarray(nuc_img, dtype=np.float32) / 255.0
    nuclei = _blur(nuclei, 0.6 * um)
    chromatin = _fractal_noise(rng, rows, cols, 3 * um, octaves=2)
    hema = (hema + 0.10 * epithelium + nuclei * (0.9 + 0.6 * chromatin)).astype(
        np.float32
    )
    eosin = eosin * (1.0 - lumen) * (1.0 - 0.6 * nuclei) + 0.22 * epithelium
    eosin = eosin + 0.05 * lumen * _smooth_noise(rng, rows, cols, 20 * um)

    # Beer-Lambert mixing with standard H&E optical density vectors.
    h_vec = np.array([0.65, 0.70, 0.29], dtype=np.float32)
    e_vec = np.array([0.09, 0.90, 0.36], dtype=np.float32)
    h_vec /= np.linalg.norm(h_vec)
    e_vec /= np.linalg.norm(e_vec)
    od = (mask * hema)[..., None] * h_vec + (mask * eosin)[..., None] * e_vec
    od += 0.02  # glass and mounting medium
    rgb = 248.0 * np.exp(-od)
    rgb += rng.normal(0.0, 1.5, size=(rows, cols, 1)).astype(np.float32)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def downsample_area(arr: np.ndarray, factor: int) -> np.ndarray:
    """Area-average downsample the two axes before the last of `arr`.

    Parameters
    ----------
    arr : numpy.ndarray
        Array ``(..., rows, cols, samples)``.
    factor : int
        Integer downsample factor; the output has ``ceil(rows / factor)``
        rows; partial blocks at the edges are averaged over their pixels.

    Returns
    -------
    numpy.ndarray
        Downsampled array with the input dtype (rounded).
    """
    if factor == 1:
        return arr.copy()
    rows, cols = arr.shape[-3], arr.shape[-2]
    out_r, out_c = -(-rows // factor), -(-cols // factor)
    pad_r, pad_c = out_r * factor - rows, out_c * factor - cols
    pad = [(0, 0)] * (arr.ndim - 3) + [(0, pad_r), (0, pad_c), (0, 0)]
    data = np.pad(arr.astype(np.float64), pad)
    count = np.pad(np.ones((rows, cols)), [(0, pad_r), (0, pad_c)])
    shape = arr.shape[:-3] + (out_r, factor, out_c, factor, arr.shape[-1])
    sums = data.reshape(shape).sum(axis=(-4, -2))
    counts = count.reshape(out_r, factor, out_c, factor).sum(axis=(1, 3))
    return np.rint(sums / counts[..., None]).astype(arr.dtype)


def make_label_image(
    rows: int, cols: int, lines: Sequence[str], barcode_value: str, seed: int = 0
) -> np.ndarray:
    """Render a slide label: text lines and a 2-D-barcode-like block.

    Parameters
    ----------
    rows, cols : int
        Image size.
    lines : sequence of str
        Text lines, drawn top to bottom in black.
    barcode_value : str
        Seeds the module pattern of the barcode block (Data-Matrix-like, with
        an L-shaped finder and a dotted timing border).
    seed : int, optional
        Extra seed for the paper texture.

    Returns
    -------
    numpy.ndarray
        uint8 RGB array ``(rows, cols, 3)``.
    """
    rng = np.random.default_rng([seed, _tile_hash(*barcode_value.encode())])
    paper = 246 + rng.normal(0, 1.5, size=(rows, cols, 1))
    base = np.clip(np.concatenate([paper, paper, paper - 6], axis=2), 0, 255)
    img = Image.fromarray(base.astype(np.uint8), mode="RGB")
    draw = ImageDraw.Draw(img)
    # Barcode block at the top.
    modules = 14
    side = min(rows // 2, cols) - 8
    module = max(2, side // modules)
    side = module * modules
    x0 = (cols - side) // 2
    y0 = 6
    bits = (
        np.random.default_rng(_tile_hash(*barcode_value.encode())).random(
            (modules, modules)
        )
        < 0.5
    )
    bits[:, 0] = True
    bits[-1, :] = True
    bits[0, :] = np.arange(modules) % 2 == 0
    bits[:, -1] = np.arange(modules) % 2 == 1
    for i in range(modules):
        for j in range(modules):
            if bits[i, j]:
                draw.rectangle(
                    [
                        x0 + j * module,
                        y0 + i * module,
                        x0 + (j + 1) * module - 1,
                        y0 + (i + 1) * module - 1,
                    ],
                    fill=(10, 10, 10),
                )
    # Text below.
    y = y0 + side + 6
    n = max(len(lines), 1)
    size = max(8, min(int((rows - y - 4) / n / 1.25), int(cols / 9)))
    font = ImageFont.load_default(size=size)
    for line in lines:
        width = draw.textlength(line, font=font)
        while width > cols - 8 and size > 8:
            size -= 1
            font = ImageFont.load_default(size=size)
            width = draw.textlength(line, font=font)
        draw.text(((cols - width) / 2, y), line, fill=(0, 0, 0), font=font)
        y += int(size * 1.25)
    return np.asarray(img)


def make_overview_image(
    rows: int,
    cols: int,
    *,
    content: np.ndarray | None,
    content_box: tuple[int, int, int, int] | None,
    label: np.ndarray | None,
    label_box: tuple[int, int, int, int] | None,
    seed: int = 0,
) -> np.ndarray:
    """Render a low-resolution photo of the whole glass slide.

    Parameters
    ----------
    rows, cols : int
        Image size (the slide fills the image).
    content : numpy.ndarray or None
        RGB picture of the scanned area, resized into `content_box`.
    content_box : tuple of int or None
        ``(row0, col0, row1, col1)`` where the scanned area lies.
    label : numpy.ndarray or None
        Label image, resized into `label_box` (rotated to fit if needed).
    label_box : tuple of int or None
        ``(row0, col0, row1, col1)`` of the label.
    seed : int, optional
        Seed for the glass texture.

    Returns
    -------
    numpy.ndarray
        uint8 RGB array ``(rows, cols, 3)``.
    """
    rng = np.random.default_rng([seed, 777])
    glass = 228 + 6 * _smooth_noise(rng, rows, cols, max(rows, cols) / 4)
    glass = glass + rng.normal(0, 1.0, size=(rows, cols))
    out = np.repeat(glass[..., None], 3, axis=2)
    out[..., 2] += 3
    out[:2] = out[-2:] = 160
    out[:, :2] = out[:, -2:] = 160
    img = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), mode="RGB")

    def paste(picture: np.ndarray, box: tuple[int, int, int, int]) -> None:
        r0, c0, r1, c1 = box
        h, w = max(r1 - r0, 1), max(c1 - c0, 1)
        pic = Image.fromarray(picture[..., :3].astype(np.uint8), mode="RGB")
        if (pic.width > pic.height) != (w > h):
            pic = pic.transpose(Image.Transpose.ROTATE_90)
        pic = pic.resize((w, h), resample=Image.Resampling.BOX)
        img.paste(pic, (c0, r0))

    if content is not None and content_box is not None:
        # Light passes the glass and then the specimen: multiply the glass by
        # the specimen's transmission, so white areas leave the glass as is.
        r0, c0, r1, c1 = content_box
        h, w = max(r1 - r0, 1), max(c1 - c0, 1)
        pic = Image.fromarray(content[..., :3].astype(np.uint8), mode="RGB")
        pic = pic.resize((w, h), resample=Image.Resampling.BOX)
        region = np.asarray(img.crop((c0, r0, c0 + w, r0 + h)), dtype=np.float32)
        transmission = np.asarray(pic, dtype=np.float32) / 248.0
        blended = np.clip(region * transmission, 0, 255).astype(np.uint8)
        img.paste(Image.fromarray(blended, mode="RGB"), (c0, r0))
    if label is not None and label_box is not None:
        paste(label, label_box)
    return np.asarray(img)


# --------------------------------------------------------------------------
# Encoding / decoding
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Codec:
    transfer_syntax: str
    samples: int
    bits: int
    bits_stored: int
    jpeg_quality: int
    jpeg_subsampling: str
    jpeg_rgb: bool
    j2k_mct: bool
    j2k_ratio: float
    jpegls_near: int
    jxl_quality: float
    jxl_effort: int

    @property
    def photometric(self) -> str:
        if self.samples == 1:
            return "MONOCHROME2"
        ts = self.transfer_syntax
        if ts in (JPEG_BASELINE, JPEG_XL_JPEG_RECOMPRESSION):
            if self.jpeg_rgb:
                return "RGB"
            return "YBR_FULL" if self.jpeg_subsampling == "4:4:4" else "YBR_FULL_422"
        if ts == JPEG_2000_LOSSLESS:
            return "YBR_RCT" if self.j2k_mct else "RGB"
        if ts == JPEG_2000:
            return "YBR_ICT" if self.j2k_mct else "RGB"
        return "RGB"

    def _jpeg(self, frame: np.ndarray) -> bytes:
        buf = io.BytesIO()
        if self.samples == 1:
            Image.fromarray(frame[..., 0], mode="L").save(
                buf, format="JPEG", quality=self.jpeg_quality
            )
        elif self.jpeg_rgb:
            Image.fromarray(frame, mode="RGB").save(
                buf,
                format="JPEG",
                quality=self.jpeg_quality,
                keep_rgb=True,
                subsampling=0,
            )
        else:
            sub = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}[self.jpeg_subsampling]
            Image.fromarray(frame, mode="RGB").save(
                buf, format="JPEG", quality=self.jpeg_quality, subsampling=sub
            )
        return buf.getvalue()

    def encode(self, frame: np.ndarray) -> bytes:
        """Encode one full-size frame ``(rows, cols, samples)``."""
        ts = self.transfer_syntax
        rows, cols, samples = frame.shape
        if ts in _NATIVE or ts == ENCAPSULATED_UNCOMPRESSED:
            return frame.astype("<u2" if self.bits > 8 else "u1").tobytes()
        if ts == JPEG_BASELINE:
            return self._jpeg(frame)
        if ts in (JPEG_LS_LOSSLESS, JPEG_LS_NEAR_LOSSLESS):
            import jpeg_ls

            near = self.jpegls_near if ts == JPEG_LS_NEAR_LOSSLESS else 0
            arr = frame[..., 0] if samples == 1 else np.ascontiguousarray(frame)
            return bytes(
                jpeg_ls.encode_array(
                    arr, lossy_error=near, interleave_mode=2 if samples == 3 else None
                )
            )
        if ts in (JPEG_2000_LOSSLESS, JPEG_2000):
            import openjpeg

            arr = frame[..., 0] if samples == 1 else np.ascontiguousarray(frame)
            kwargs: dict[str, Any] = {}
            if ts == JPEG_2000:
                kwargs["compression_ratios"] = [self.j2k_ratio]
            return bytes(
                openjpeg.encode(
                    arr,
                    bits_stored=self.bits_stored,
                    photometric_interpretation=1 if samples == 3 else 2,
                    use_mct=self.j2k_mct,
                    **kwargs,
                )
            )
        if ts == RLE_LOSSLESS:
            import rle

            return bytes(
                rle.encode_pixel_data(
                    frame.astype("<u2" if self.bits > 8 else "u1").tobytes(),
                    rows=rows,
                    columns=cols,
                    samples_per_pixel=samples,
                    bits_allocated=self.bits,
                    byteorder="<",
                )
            )
        if ts in _JPEG_XL:
            import pillow_jxl  # noqa: F401  (registers the JXL plugin)
            from pillow_jxl import Encoder

            mode = "RGB" if samples == 3 else ("I;16" if self.bits > 8 else "L")
            if ts == JPEG_XL_JPEG_RECOMPRESSION:
                jpeg = self._jpeg(frame)
                # pillow_jxl's bundled stub is older than its Encoder.
                enc = Encoder(
                    mode=mode,
                    lossless=True,
                    quality=100,  # type: ignore[call-arg]
                    decoding_speed=0,
                    effort=self.jxl_effort,
                    use_container=False,
                    use_original_profile=False,
                    num_threads=1,
                )
                return bytes(enc(jpeg, cols, rows, jpeg_encode=True))
            arr = frame[..., 0] if samples == 1 else frame
            if mode == "I;16":
                img = Image.frombytes("I;16", (cols, rows), arr.astype("<u2").tobytes())
            else:
                img = Image.fromarray(np.ascontiguousarray(arr), mode=mode)
            buf = io.BytesIO()
            try:
                if ts == JPEG_XL_LOSSLESS:
                    img.save(
                        buf,
                        format="JXL",
                        lossless=True,
                        effort=self.jxl_effort,
                        num_threads=1,
                    )
                else:
                    img.save(
                        buf,
                        format="JXL",
                        quality=self.jxl_quality,
                        effort=self.jxl_effort,
                        num_threads=1,
                    )
            except NotImplementedError:
                # pillow-jxl-plugin before 1.3.8 writes no 16-bit images
                # (it reads them): libjxl through imagecodecs does
                import imagecodecs

                return bytes(
                    imagecodecs.jpegxl_encode(
                        np.ascontiguousarray(arr.astype("<u2")),
                        lossless=ts == JPEG_XL_LOSSLESS or None,
                        level=None if ts == JPEG_XL_LOSSLESS else self.jxl_quality,
                        effort=self.jxl_effort,
                        numthreads=1,
                    )
                )
            return buf.getvalue()
        raise ValueError(f"transfer syntax {ts} is not encodable here")


def _decode_with_pillow(
    data: bytes, rows: int, cols: int, samples: int, bits: int
) -> np.ndarray:
    if data[:2] == b"\xff\x0a" or data[:12] == b"\0\0\0\x0cJXL \r\n\x87\n":
        import pillow_jxl  # noqa: F401  (registers the JXL plugin)
    img: Image.Image = Image.open(io.BytesIO(data))
    if samples == 3 and img.mode != "RGB":
        img = img.convert("RGB")
    if img.mode in ("I;16", "I;16L", "I;16B", "I"):
        arr = np.asarray(img).astype(np.uint16)
    else:
        arr = np.asarray(img)
    arr = arr.reshape(rows, cols, samples)
    return arr.astype(np.uint16 if bits > 8 else np.uint8)


def read_frames(path: str | Path, plugin: str = "") -> list[np.ndarray]:
    """Decode every frame of a written file, without ``dicomslide``.

    Parameters
    ----------
    path : str or pathlib.Path
        A file written by this module.
    plugin : str, optional
        pydicom decoding plugin (``""`` = pydicom's default) or
        ``"pillow-direct"`` to decode compressed frames with
        ``PIL.Image.open``.  JPEG XL and Encapsulated Uncompressed frames,
        which pydicom 3.0 cannot decode, always use Pillow / raw bytes.

    Returns
    -------
    list[numpy.ndarray]
        Frames in stored order, each ``(Rows, Columns, SamplesPerPixel)`` in
        RGB (YBR photometric interpretations converted) or monochrome.
    """
    ds = pydicom.dcmread(path)
    ts = str(ds.file_meta.TransferSyntaxUID)
    rows, cols = int(ds.Rows), int(ds.Columns)
    samples, bits = int(ds.SamplesPerPixel), int(ds.BitsAllocated)
    n = int(getattr(ds, "NumberOfFrames", 1))
    dtype = np.uint16 if bits > 8 else np.uint8
    if ts == ENCAPSULATED_UNCOMPRESSED:
        return [
            np.frombuffer(f, dtype="<u2" if bits > 8 else "u1")[: rows * cols * samples]
            .reshape(rows, cols, samples)
            .astype(dtype)
            for f in generate_frames(ds.PixelData, number_of_frames=n)
        ]
    if ts in _JPEG_XL or (
        plugin == "pillow-direct"
        and ts in (JPEG_BASELINE, JPEG_2000_LOSSLESS, JPEG_2000)
    ):
        extended = None
        if "ExtendedOffsetTable" in ds:
            extended = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
        return [
            _decode_with_pillow(f, rows, cols, samples, bits)
            for f in generate_frames(
                ds.PixelData, number_of_frames=n, extended_offsets=extended
            )
        ]
    frames = []
    use = "" if plugin == "pillow-direct" else plugin
    for arr in pydicom.pixels.iter_pixels(ds, decoding_plugin=use):
        frames.append(np.asarray(arr).reshape(rows, cols, samples).astype(dtype))
    return frames


def _assemble(
    image: SyntheticImage, frames_per_file: list[list[np.ndarray]]
) -> np.ndarray:
    out = np.empty_like(image.pixels)
    out[...] = np.asarray(image.fill_value, dtype=out.dtype)
    for info in image.frames:
        frame = frames_per_file[info.part][info.frame_number - 1]
        r0, c0 = info.tile_row * image.tile_rows, info.tile_col * image.tile_cols
        h = min(image.tile_rows, image.total_rows - r0)
        w = min(image.tile_cols, image.total_cols - c0)
        out[info.focal_plane, info.optical_path, r0 : r0 + h, c0 : c0 + w] = frame[
            :h, :w
        ]
    return out


# --------------------------------------------------------------------------
# Metadata helpers
# --------------------------------------------------------------------------


_JPEG_XL_NAMES = {
    JPEG_XL_LOSSLESS: ("JPEG XL Lossless", "JPEGXLLossless"),
    JPEG_XL_JPEG_RECOMPRESSION: (
        "JPEG XL JPEG Recompression",
        "JPEGXLJPEGRecompression",
    ),
    JPEG_XL: ("JPEG XL", "JPEGXL"),
}


@contextlib.contextmanager
def _known_transfer_syntax(transfer_syntax: str) -> Iterator[None]:
    """Let pydicom 3.0 (which predates JPEG XL in DICOM) write `transfer_syntax`.

    The UID is added to pydicom's UID dictionary only while writing and
    removed afterwards, so readers under test see an unpatched pydicom.
    """
    from pydicom import _uid_dict

    added = False
    if (
        transfer_syntax in _JPEG_XL_NAMES
        and transfer_syntax not in _uid_dict.UID_dictionary
    ):
        title, keyword = _JPEG_XL_NAMES[transfer_syntax]
        _uid_dict.UID_dictionary[transfer_syntax] = (
            title,
            "Transfer Syntax",
            "",
            "",
            keyword,
        )
        added = True
    try:
        yield
    finally:
        if added:
            del _uid_dict.UID_dictionary[transfer_syntax]


def _ds(value: float) -> DSfloat:
    return DSfloat(float(value), auto_format=True)


def _code_item(code: Any) -> Dataset:
    item = Dataset()
    item.CodeValue = code.value
    item.CodingSchemeDesignator = code.scheme_designator
    item.CodeMeaning = code.meaning
    return item


def _pixel_to_slide(
    row: float,
    col: float,
    origin: Sequence[float],
    spacing: Sequence[float],
    orientation: Sequence[float],
) -> tuple[float, float]:
    dc, dr = col * spacing[1], row * spacing[0]
    x = origin[0] + dc * orientation[0] + dr * orientation[3]
    y = origin[1] + dc * orientation[1] + dr * orientation[4]
    return float(x), float(y)


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


# --------------------------------------------------------------------------
# The writer
# --------------------------------------------------------------------------


def _normalise_pixels(
    pixels: np.ndarray,
    planes: int,
    paths: int,
    rows: int,
    cols: int,
    samples: int,
    bits: int,
) -> np.ndarray:
    arr = np.asarray(pixels)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim == 3:
        arr = arr[None, None]
    expected = (planes, paths, rows, cols, samples)
    if arr.shape != expected:
        raise ValueError(f"pixels has shape {arr.shape}, expected {expected}")
    dtype = np.uint8 if bits <= 8 else np.uint16
    if arr.dtype != dtype:
        if arr.min() < 0 or arr.max() > _max_value(bits):
            raise ValueError("pixels out of range for the requested bits")
        arr = arr.astype(dtype)
    return np.array(arr, copy=True)


def write_wsi_image(
    folder: Path,
    *,
    total_rows: int,
    total_cols: int,
    tile_rows: int,
    tile_cols: int,
    samples: int = 3,
    bits: int = 8,
    transfer_syntax: str = EXPLICIT_VR_LE,
    organization: str | None = "TILED_FULL",
    focal_planes: int = 1,
    optical_paths: int = 1,
    omitted_tiles: Collection[tuple[int, int]] = (),
    concatenation_parts: int = 1,
    flavor: str = "VOLUME",
    pixel_spacing: tuple[float, float] = (0.0005, 0.0005),
    origin: tuple[float, float] = (20.0, 40.0),
    icc_profile: bytes | None = None,
    uids: SlideUIDs | None = None,
    seed: int = 0,
    pattern: str = "auto",
    z_offsets_um: Sequence[float] | None = None,
    pixels: np.ndarray | None = None,
    name: str | None = None,
    instance_number: int = 1,
    image_orientation: Sequence[float] = DEFAULT_ORIENTATION,
    derived: bool | None = None,
    bits_stored: int | None = None,
    pad_value: Sequence[int] | int | None = None,
    shuffle_frames: bool | None = None,
    offset_table: str = "basic",
    fragments_per_frame: int = 1,
    jpeg_quality: int = 90,
    jpeg_subsampling: str = "4:2:0",
    jpeg_rgb: bool = False,
    j2k_mct: bool = True,
    j2k_ratio: float = 10.0,
    jpegls_near: int = 2,
    jxl_quality: float = 90.0,
    jxl_effort: int = 3,
    slice_thickness_mm: float = 0.004,
    stains: Sequence[Any] | None = None,
    label_text: str | None = None,
    barcode_value: str | None = None,
    acquisition_datetime: datetime.datetime = _FIXED_DATETIME,
    decode_plugin: str = "",
) -> SyntheticImage:
    """Write one synthetic VL Whole Slide Microscopy image.

    Parameters
    ----------
    folder : pathlib.Path
        Output folder (created if missing).
    total_rows, total_cols : int
        Size of the total pixel matrix.
    tile_rows, tile_cols : int
        Rows and Columns of a frame.
    samples : int, optional
        3 (RGB) or 1 (MONOCHROME2).
    bits : int, optional
        BitsAllocated: 8, or 16 (monochrome only).
    transfer_syntax : str, optional
        One of :func:`encodable_transfer_syntaxes`.
    organization : {"TILED_FULL", "TILED_SPARSE", None}, optional
        DimensionOrganizationType; ``None`` leaves it out (per-frame
        positions are written).
    focal_planes, optical_paths : int, optional
        Number of focal planes and optical paths.
    omitted_tiles : collection of (int, int), optional
        0-based ``(tile_row, tile_col)`` positions not stored (all planes and
        paths).  Not allowed with TILED_FULL.
    concatenation_parts : int, optional
        Split the frames over this many SOP instances of one concatenation.
    flavor : {"VOLUME", "THUMBNAIL", "LABEL", "OVERVIEW"}, optional
        ImageType value 3.
    pixel_spacing : tuple of float, optional
        (row spacing, column spacing) in mm.
    origin : tuple of float, optional
        X/Y offset (mm) of the total pixel matrix's top-left pixel.
    icc_profile : bytes or None, optional
        ICC profile for RGB images (default: the sRGB profile).
    uids : SlideUIDs or None, optional
        Shared identifiers; new random ones if ``None``.
    seed : int, optional
        Seed of the pixel content.
    pattern : {"auto", "random", "smooth", "tissue"}, optional
        Content: ``"random"`` uniform noise, ``"smooth"`` gradients + per
        tile offsets + small noise, ``"tissue"`` H&E-like (RGB, one plane and
        path); ``"auto"`` is ``"smooth"`` for lossy syntaxes and ``"random"``
        otherwise.  Ignored if `pixels` is given.
    z_offsets_um : sequence of float or None, optional
        Z offset (µm) of each focal plane; default ``0, 2, 4, ...``.  Must be
        ``0, d, 2d, ...`` for TILED_FULL.
    pixels : numpy.ndarray or None, optional
        Explicit content, shape ``(planes, paths, rows, cols, samples)`` or
        ``(rows, cols[, samples])`` for one plane/path.
    name : str or None, optional
        File stem; default ``"<flavor>-<instance_number>"``.  Concatenation
        parts get ``_part<k>``.
    instance_number : int, optional
        InstanceNumber (also makes SOP instance UIDs unique).
    image_orientation : sequence of float, optional
        ImageOrientationSlide.
    derived : bool or None, optional
        ImageType ``DERIVED\\...\\RESAMPLED`` instead of ``ORIGINAL\\...\\NONE``;
        default: True for THUMBNAIL only.
    bits_stored : int or None, optional
        BitsStored (default `bits`); content is kept below ``2**bits_stored``.
    pad_value : int or sequence of int or None, optional
        Value outside the total pixel matrix in edge frames.
    shuffle_frames : bool or None, optional
        Permute stored frames (not allowed for TILED_FULL); default True for
        TILED_SPARSE.
    offset_table : {"basic", "extended", "empty"}, optional
        Offset table for encapsulated syntaxes.
    fragments_per_frame : int, optional
        Split each encapsulated frame into this many fragments (pydicom's
        ``encapsulate``; not with ``offset_table="extended"``).
    jpeg_quality, jpeg_subsampling, jpeg_rgb : optional
        JPEG Baseline settings; `jpeg_subsampling` is ``"4:2:0"``,
        ``"4:2:2"`` or ``"4:4:4"``; `jpeg_rgb` stores RGB components without
        YCbCr transform (PhotometricInterpretation RGB).
    j2k_mct, j2k_ratio : optional
        JPEG 2000 colour transform and lossy compression ratio.
    jpegls_near : int, optional
        NEAR parameter of JPEG-LS near-lossless.
    jxl_quality, jxl_effort : optional
        JPEG XL settings.
    slice_thickness_mm : float, optional
        SliceThickness in PixelMeasuresSequence.
    stains : sequence or None, optional
        Staining substances (codes or strings); default hematoxylin + eosin.
    label_text, barcode_value : str or None, optional
        LabelText / BarcodeValue (Slide Label module) for LABEL images.
    acquisition_datetime : datetime.datetime, optional
        AcquisitionDateTime / ContentDate / ContentTime.
    decode_plugin : str, optional
        How `decoded` is computed for lossy syntaxes: a pydicom decoding
        plugin name, ``""`` for pydicom's default (in this environment
        pylibjpeg-libjpeg for JPEG Baseline), or ``"pillow-direct"``.
        Decoders differ by a few units for JPEG (libjpeg vs libjpeg-turbo
        IDCT and colour conversion); see :meth:`SyntheticImage.redecode`.

    Returns
    -------
    SyntheticImage
        The written files plus the expected pixel data.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    flavor = flavor.upper()
    if flavor not in FLAVORS:
        raise ValueError(f"flavor must be one of {FLAVORS}")
    if organization not in ORGANIZATIONS:
        raise ValueError(f"organization must be one of {ORGANIZATIONS}")
    if transfer_syntax not in _ENCODABLE:
        raise ValueError(
            f"transfer syntax {transfer_syntax} is not encodable here; "
            f"see encodable_transfer_syntaxes()"
        )
    if samples not in (1, 3):
        raise ValueError("samples must be 1 or 3")
    if bits not in (8, 16):
        raise ValueError("bits must be 8 or 16")
    if samples == 3 and bits != 8:
        raise ValueError("RGB images must have 8 bits")
    if bits != 8 and transfer_syntax in _EIGHT_BIT_ONLY:
        raise ValueError(f"{transfer_syntax} supports 8 bits only")
    bits_stored = bits if bits_stored is None else bits_stored
    if not 1 <= bits_stored <= bits:
        raise ValueError("bits_stored must be within 1..bits")
    if min(total_rows, total_cols, tile_rows, tile_cols) < 1:
        raise ValueError("sizes must be positive")
    if focal_planes < 1 or optical_paths < 1 or concatenation_parts < 1:
        raise ValueError("focal_planes, optical_paths, concatenation_parts >= 1")
    if jpeg_subsampling not in ("4:2:0", "4:2:2", "4:4:4"):
        raise ValueError("jpeg_subsampling must be 4:2:0, 4:2:2 or 4:4:4")
    if offset_table not in ("basic", "extended", "empty"):
        raise ValueError("offset_table must be basic, extended or empty")
    if fragments_per_frame < 1 or (
        fragments_per_frame > 1 and offset_table == "extended"
    ):
        raise ValueError("fragments_per_frame must be >= 1 (1 with extended)")
    uids = uids if uids is not None else SlideUIDs.new()
    grid_rows = -(-total_rows // tile_rows)
    grid_cols = -(-total_cols // tile_cols)
    planes, paths = focal_planes, optical_paths

    # Z offsets.
    if z_offsets_um is None:
        z_offsets = tuple(2.0 * k for k in range(planes))
    else:
        z_offsets = tuple(float(z) for z in z_offsets_um)
        if len(z_offsets) != planes:
            raise ValueError("z_offsets_um needs one value per focal plane")
    spacing_between_mm: float | None = None
    if planes > 1:
        step = z_offsets[1] - z_offsets[0]
        uniform = all(
            abs(z_offsets[k] - k * step - z_offsets[0]) < 1e-9 for k in range(planes)
        )
        if organization == "TILED_FULL" and (
            not uniform or z_offsets[0] != 0.0 or step <= 0
        ):
            raise ValueError("TILED_FULL needs z_offsets_um = 0, d, 2d, ... (d>0)")
        if uniform and step > 0:
            spacing_between_mm = step / 1000.0

    # Tiles present.
    present = np.ones((grid_rows, grid_cols), dtype=bool)
    for tr, tc in omitted_tiles:
        if not (0 <= tr < grid_rows and 0 <= tc < grid_cols):
            raise ValueError(f"omitted tile {(tr, tc)} outside the tile grid")
        present[tr, tc] = False
    if organization == "TILED_FULL" and not present.all():
        raise ValueError("TILED_FULL cannot omit tiles")
    if shuffle_frames is None:
        shuffle_frames = organization == "TILED_SPARSE"
    if shuffle_frames and organization == "TILED_FULL":
        raise ValueError("TILED_FULL frames cannot be shuffled")

    # Content.
    fill: tuple[int, ...] = (255, 255, 255) if samples == 3 else (0,)
    pad: tuple[int, ...]
    if pad_value is None:
        pad = (255, 0, 255) if samples == 3 else (_max_value(bits_stored),)
    elif isinstance(pad_value, int):
        pad = (pad_value,) * samples
    else:
        pad = tuple(int(v) for v in pad_value)
    lossy = transfer_syntax in _LOSSY
    shape = (planes, paths, total_rows, total_cols, samples)
    if pixels is not None:
        source = _normalise_pixels(
            pixels, planes, paths, total_rows, total_cols, samples, bits
        )
        pattern_used = "explicit"
    else:
        pattern_used = pattern
        if pattern == "auto":
            pattern_used = "smooth" if lossy else "random"
        if pattern_used == "random":
            source = _random_pixels(shape, bits_stored, seed)
        elif pattern_used == "smooth":
            source = _smooth_pixels(shape, bits_stored, seed, tile_rows, tile_cols)
        elif pattern_used == "tissue":
            if samples != 3 or planes != 1 or paths != 1:
                raise ValueError("pattern 'tissue' needs RGB, 1 plane, 1 path")
            source = make_tissue_image(total_rows, total_cols, seed)[None, None]
        else:
            raise ValueError(f"unknown pattern {pattern!r}")
    if source.max(initial=0) > _max_value(bits_stored):
        raise ValueError("pixel values exceed bits_stored")
    for tr, tc in zip(*np.nonzero(~present)):
        source[
            :,
            :,
            tr * tile_rows : (tr + 1) * tile_rows,
            tc * tile_cols : (tc + 1) * tile_cols,
        ] = np.asarray(fill, source.dtype)

    # Frame list in stored order.
    order: list[tuple[int, int, int, int]] = [
        (o, p, tr, tc)
        for o in range(paths)
        for p in range(planes)
        for tr in range(grid_rows)
        for tc in range(grid_cols)
        if present[tr, tc]
    ]
    if shuffle_frames:
        perm = np.random.default_rng([seed, 99]).permutation(len(order))
        order = [order[i] for i in perm]
    if concatenation_parts > len(order):
        raise ValueError("more concatenation parts than frames")
    chunks = np.array_split(np.arange(len(order)), concatenation_parts)

    codec = _Codec(
        transfer_syntax=transfer_syntax,
        samples=samples,
        bits=bits,
        bits_stored=bits_stored,
        jpeg_quality=jpeg_quality,
        jpeg_subsampling=jpeg_subsampling,
        jpeg_rgb=jpeg_rgb,
        j2k_mct=j2k_mct,
        j2k_ratio=j2k_ratio,
        jpegls_near=jpegls_near,
        jxl_quality=jxl_quality,
        jxl_effort=jxl_effort,
    )
    photometric = codec.photometric
    dtype = source.dtype
    pad_arr = np.asarray(pad, dtype=dtype)

    def frame_array(o: int, p: int, tr: int, tc: int) -> np.ndarray:
        frame = np.empty((tile_rows, tile_cols, samples), dtype=dtype)
        frame[...] = pad_arr
        r0, c0 = tr * tile_rows, tc * tile_cols
        h = min(tile_rows, total_rows - r0)
        w = min(tile_cols, total_cols - c0)
        frame[:h, :w] = source[p, o, r0 : r0 + h, c0 : c0 + w]
        return frame

    encoded = [codec.encode(frame_array(*key)) for key in order]

    # Shared metadata.
    if derived is None:
        derived = flavor == "THUMBNAIL"
    image_type = (
        "DERIVED" if derived else "ORIGINAL",
        "PRIMARY",
        flavor,
        "RESAMPLED" if derived else "NONE",
    )
    stem = name if name is not None else f"{flavor.lower()}-{instance_number}"
    key = (
        uids.series_instance_uid,
        stem,
        instance_number,
        flavor,
        total_rows,
        total_cols,
        tile_rows,
        tile_cols,
        transfer_syntax,
        organization,
        seed,
    )
    concatenation_uid = _uid("concatenation", *key) if concatenation_parts > 1 else None
    source_uid = _uid("concatenation-source", *key)
    sop_uids = (
        [_uid("sop", part, *key) for part in range(concatenation_parts)]
        if concatenation_parts > 1
        else [source_uid]
    )
    org_uid = _uid("dimension-organization", *key)
    optical_items, optical_ids = _optical_path_items(paths, samples, icc_profile)
    uncompressed_bytes = tile_rows * tile_cols * samples * (bits // 8)
    compressed_bytes = sum(len(e) for e in encoded)
    ts_uid = UID(transfer_syntax)
    stains = (
        stains
        if stains is not None
        else [codes.SCT.HematoxylinStain, codes.SCT.WaterSolubleEosinStain]
    )
    date = acquisition_datetime.strftime("%Y%m%d")
    time = acquisition_datetime.strftime("%H%M%S")

    def base_dataset() -> Dataset:
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.ImageType = list(image_type)
        ds.SOPClassUID = WSI_SOP_CLASS_UID
        ds.StudyDate = date
        ds.SeriesDate = date
        ds.ContentDate = date
        ds.AcquisitionDateTime = acquisition_datetime.strftime("%Y%m%d%H%M%S")
        ds.StudyTime = time
        ds.SeriesTime = time
        ds.ContentTime = time
        ds.AccessionNumber = uids.accession_number
        ds.Modality = "SM"
        ds.Manufacturer = "dicomslide test suite"
        ds.ReferringPhysicianName = ""
        ds.StudyDescription = "Synthetic whole slide image"
        ds.SeriesDescription = f"Synthetic slide {uids.container_identifier}"
        ds.ManufacturerModelName = "tests/synthetic.py"
        ds.VolumetricProperties = "VOLUME"
        ds.PatientName = uids.patient_name
        ds.PatientID = uids.patient_id
        ds.PatientBirthDate = ""
        ds.PatientSex = "O"
        ds.DeviceSerialNumber = "SYN-0001"
        ds.SoftwareVersions = "1.0"
        ds.StudyInstanceUID = uids.study_instance_uid
        ds.SeriesInstanceUID = uids.series_instance_uid
        ds.StudyID = uids.study_id
        ds.SeriesNumber = 1
        ds.InstanceNumber = instance_number
        ds.FrameOfReferenceUID = uids.frame_of_reference_uid
        ds.PositionReferenceIndicator = "SLIDE_CORNER"
        ds.DimensionOrganizationSequence = [Dataset()]
        ds.DimensionOrganizationSequence[0].DimensionOrganizationUID = org_uid
        ds.DimensionIndexSequence = _dimension_index(org_uid, planes, paths)
        if organization is not None:
            ds.DimensionOrganizationType = organization
        ds.SamplesPerPixel = samples
        ds.PhotometricInterpretation = photometric
        if samples == 3:
            ds.PlanarConfiguration = 0
        ds.Rows = tile_rows
        ds.Columns = tile_cols
        ds.BitsAllocated = bits
        ds.BitsStored = bits_stored
        ds.HighBit = bits_stored - 1
        ds.PixelRepresentation = 0
        ds.BurnedInAnnotation = "YES" if flavor in ("LABEL", "OVERVIEW") else "NO"
        ds.LossyImageCompression = "01" if lossy else "00"
        if lossy:
            ds.LossyImageCompressionRatio = [
                _ds(round(uncompressed_bytes * len(encoded) / compressed_bytes, 2))
            ]
            ds.LossyImageCompressionMethod = [_LOSSY_METHOD[transfer_syntax]]
        if samples == 1:
            ds.PresentationLUTShape = "IDENTITY"
        ds.AcquisitionContextSequence = []
        ds.ContainerIdentifier = uids.container_identifier
        ds.IssuerOfTheContainerIdentifierSequence = []
        ds.ContainerTypeCodeSequence = [_code_item(codes.SCT.MicroscopeSlide)]
        ds.SpecimenDescriptionSequence = [_specimen_description(uids, stains)]
        ds.ImagedVolumeWidth = float(total_cols * pixel_spacing[1])
        ds.ImagedVolumeHeight = float(total_rows * pixel_spacing[0])
        ds.ImagedVolumeDepth = float(
            (max(z_offsets) - min(z_offsets)) + slice_thickness_mm * 1000.0
        )
        ds.TotalPixelMatrixColumns = total_cols
        ds.TotalPixelMatrixRows = total_rows
        origin_item = Dataset()
        origin_item.XOffsetInSlideCoordinateSystem = _ds(origin[0])
        origin_item.YOffsetInSlideCoordinateSystem = _ds(origin[1])
        ds.TotalPixelMatrixOriginSequence = [origin_item]
        ds.SpecimenLabelInImage = "YES" if flavor in ("LABEL", "OVERVIEW") else "NO"
        ds.FocusMethod = "AUTO"
        ds.ExtendedDepthOfField = "NO"
        ds.ImageOrientationSlide = [_ds(v) for v in image_orientation]
        ds.OpticalPathSequence = optical_items
        ds.NumberOfOpticalPaths = paths
        ds.TotalPixelMatrixFocalPlanes = planes
        ds.PyramidUID = uids.pyramid_uid
        ds.PyramidLabel = uids.container_identifier
        if flavor == "LABEL":
            ds.LabelText = (
                label_text if label_text is not None else uids.container_identifier
            )
            ds.BarcodeValue = (
                barcode_value
                if barcode_value is not None
                else uids.container_identifier
            )
        shared = Dataset()
        measures = Dataset()
        measures.PixelSpacing = [_ds(pixel_spacing[0]), _ds(pixel_spacing[1])]
        measures.SliceThickness = _ds(slice_thickness_mm)
        if spacing_between_mm is not None:
            measures.SpacingBetweenSlices = _ds(spacing_between_mm)
        shared.PixelMeasuresSequence = [measures]
        frame_type = Dataset()
        frame_type.FrameType = list(image_type)
        shared.WholeSlideMicroscopyImageFrameTypeSequence = [frame_type]
        if paths == 1 and organization == "TILED_FULL":
            opi = Dataset()
            opi.OpticalPathIdentifier = optical_ids[0]
            shared.OpticalPathIdentificationSequence = [opi]
        ds.SharedFunctionalGroupsSequence = [shared]
        return ds

    # Per-frame dimension index values (1-based ranks of each dimension).
    col_rank = {tc: tc + 1 for tc in range(grid_cols)}
    row_rank = {tr: tr + 1 for tr in range(grid_rows)}
    z_rank = {p: int(np.argsort(np.argsort(z_offsets))[p]) + 1 for p in range(planes)}

    def per_frame_item(o: int, p: int, tr: int, tc: int) -> Dataset:
        item = Dataset()
        content = Dataset()
        dims = [col_rank[tc], row_rank[tr]]
        if planes > 1:
            dims.append(z_rank[p])
        if paths > 1:
            dims.append(o + 1)
        content.DimensionIndexValues = dims
        item.FrameContentSequence = [content]
        pos = Dataset()
        x, y = _pixel_to_slide(
            tr * tile_rows, tc * tile_cols, origin, pixel_spacing, image_orientation
        )
        pos.XOffsetInSlideCoordinateSystem = _ds(x)
        pos.YOffsetInSlideCoordinateSystem = _ds(y)
        pos.ZOffsetInSlideCoordinateSystem = _ds(z_offsets[p])
        pos.ColumnPositionInTotalImagePixelMatrix = tc * tile_cols + 1
        pos.RowPositionInTotalImagePixelMatrix = tr * tile_rows + 1
        item.PlanePositionSlideSequence = [pos]
        opi = Dataset()
        opi.OpticalPathIdentifier = optical_ids[o]
        item.OpticalPathIdentificationSequence = [opi]
        return item

    files: list[Path] = []
    frames: list[FrameInfo] = []
    for part, chunk in enumerate(chunks):
        ds = base_dataset()
        ds.SOPInstanceUID = sop_uids[part]
        ds.NumberOfFrames = len(chunk)
        if concatenation_parts > 1:
            ds.ConcatenationUID = concatenation_uid
            ds.SOPInstanceUIDOfConcatenationSource = source_uid
            ds.InConcatenationNumber = part + 1
            ds.InConcatenationTotalNumber = concatenation_parts
            ds.ConcatenationFrameOffsetNumber = int(chunk[0])
        keys = [order[i] for i in chunk]
        if organization != "TILED_FULL":
            ds.PerFrameFunctionalGroupsSequence = [per_frame_item(*k) for k in keys]
        part_frames = [encoded[i] for i in chunk]
        if transfer_syntax in _NATIVE:
            data = b"".join(part_frames)
            if len(data) % 2:
                data += b"\0"
            ds.PixelData = data
            ds["PixelData"].VR = "OW" if bits > 8 else "OB"
        elif offset_table == "extended":
            data, eot, eot_lengths = encapsulate_extended(part_frames)
            ds.PixelData = data
            ds["PixelData"].VR = "OB"
            ds.ExtendedOffsetTable = eot
            ds.ExtendedOffsetTableLengths = eot_lengths
        else:
            ds.PixelData = encapsulate(
                part_frames,
                fragments_per_frame=fragments_per_frame,
                has_bot=offset_table == "basic",
            )
            ds["PixelData"].VR = "OB"
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = UID(WSI_SOP_CLASS_UID)
        meta.MediaStorageSOPInstanceUID = UID(ds.SOPInstanceUID)
        meta.TransferSyntaxUID = ts_uid
        meta.ImplementationClassUID = UID("1.2.826.0.1.3680043.8.498.1")
        meta.ImplementationVersionName = "SYNTH_WSI_1"
        ds.file_meta = meta
        suffix = f"_part{part + 1}" if concatenation_parts > 1 else ""
        path = folder / f"{stem}{suffix}.dcm"
        with _known_transfer_syntax(transfer_syntax):
            pydicom.dcmwrite(path, ds, enforce_file_format=True)
        files.append(path)
        for k, (o, p, tr, tc) in enumerate(keys):
            frames.append(
                FrameInfo(
                    part=part,
                    frame_number=k + 1,
                    tile_row=tr,
                    tile_col=tc,
                    focal_plane=p,
                    optical_path=o,
                )
            )

    image = SyntheticImage(
        files=files,
        sop_instance_uids=sop_uids,
        pixels=source,
        decoded=source,
        present=present,
        frames=frames,
        transfer_syntax=transfer_syntax,
        lossy=lossy,
        photometric_interpretation=photometric,
        total_rows=total_rows,
        total_cols=total_cols,
        tile_rows=tile_rows,
        tile_cols=tile_cols,
        samples=samples,
        bits=bits,
        focal_planes=planes,
        optical_paths=paths,
        organization=organization,
        flavor=flavor,
        pixel_spacing=(float(pixel_spacing[0]), float(pixel_spacing[1])),
        origin=(float(origin[0]), float(origin[1])),
        image_orientation=tuple(float(v) for v in image_orientation),
        z_offsets_um=z_offsets,
        optical_path_identifiers=optical_ids,
        icc_profile=(icc_profile if icc_profile is not None else icc_profile_srgb())
        if samples == 3
        else None,
        uids=uids,
        concatenation_uid=concatenation_uid,
        fill_value=fill,
        pad_value=pad,
        instance_number=instance_number,
        image_type=image_type,
        extra={
            "pattern": pattern_used,
            "seed": seed,
            "bits_stored": bits_stored,
            "offset_table": offset_table,
            "fragments_per_frame": fragments_per_frame,
            "jpeg_subsampling": jpeg_subsampling,
            "jpeg_rgb": jpeg_rgb,
            "shuffled": bool(shuffle_frames),
            "sop_instance_uid_of_concatenation_source": source_uid,
            "spacing_between_slices_mm": spacing_between_mm,
            "slice_thickness_mm": slice_thickness_mm,
        },
    )
    if lossy:
        image.decoded = _assemble(
            image, [read_frames(f, plugin=decode_plugin) for f in files]
        )
        if transfer_syntax in _JPEG_XL:
            image.decoded_by = "Pillow + pillow_jxl"
        elif decode_plugin == "pillow-direct":
            image.decoded_by = "Pillow (PIL.Image.open)"
        else:
            image.decoded_by = f"pydicom ({decode_plugin or 'default plugin'})"
    return image


def icc_profile_srgb() -> bytes:
    """Return the sRGB ICC profile (shortcut for ``icc_profile("srgb")``).

    Returns
    -------
    bytes
        The profile.
    """
    return icc_profile("srgb")


# --------------------------------------------------------------------------
# Pyramids / presets
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Level:
    downsample: int
    tile_rows: int
    tile_cols: int
    omitted: tuple[tuple[int, int], ...] = ()
    concatenation_parts: int = 1


@dataclass(frozen=True)
class _Preset:
    description: str
    total_rows: int
    total_cols: int
    levels: tuple[_Level, ...]
    transfer_syntax: str = JPEG_BASELINE
    samples: int = 3
    bits: int = 8
    organization: str | None = "TILED_FULL"
    focal_planes: int = 1
    optical_paths: int = 1
    pattern: str = "auto"
    thumbnail: bool = False
    label: bool = False
    overview: bool = False
    icc: str | None = "srgb"
    pixel_spacing: float = 0.0005
    container_identifier: str = "SYNTH-001"
    label_lines: tuple[str, ...] = ("SYNTH-001", "H&E", "2024-03-14")
    jpeg_quality: int = 90
    pad_value: tuple[int, ...] | None = None


_PYRAMID = (_Level(1, 64, 96), _Level(2, 64, 64), _Level(6, 32, 48))

PRESETS: dict[str, _Preset] = {
    "rgb_full": _Preset(
        "TILED_FULL RGB JPEG baseline (YBR_FULL_422) pyramid x1/x2/x6 with "
        "thumbnail, label, overview and sRGB ICC profile",
        300,
        470,
        _PYRAMID,
        thumbnail=True,
        label=True,
        overview=True,
    ),
    "sparse": _Preset(
        "TILED_SPARSE RGB Explicit VR LE, omitted tiles, shuffled frames",
        300,
        470,
        (
            _Level(1, 64, 96, omitted=((0, 0), (2, 3), (4, 4))),
            _Level(2, 64, 64, omitted=((1, 1),)),
            _Level(6, 32, 48),
        ),
        transfer_syntax=EXPLICIT_VR_LE,
        organization="TILED_SPARSE",
        thumbnail=True,
    ),
    "no_organization": _Preset(
        "DimensionOrganizationType absent, per-frame positions, RGB Explicit VR",
        300,
        470,
        _PYRAMID,
        transfer_syntax=EXPLICIT_VR_LE,
        organization=None,
    ),
    "multi_z_channel_full": _Preset(
        "TILED_FULL MONOCHROME2, 3 focal planes x 2 optical paths",
        300,
        470,
        _PYRAMID[:2],
        transfer_syntax=EXPLICIT_VR_LE,
        samples=1,
        focal_planes=3,
        optical_paths=2,
        icc=None,
    ),
    "multi_z_channel_sparse": _Preset(
        "TILED_SPARSE MONOCHROME2, 3 focal planes x 2 optical paths, omitted "
        "tiles, shuffled frames",
        300,
        470,
        (_Level(1, 64, 96, omitted=((1, 2), (4, 0))), _Level(2, 64, 64)),
        transfer_syntax=EXPLICIT_VR_LE,
        samples=1,
        organization="TILED_SPARSE",
        focal_planes=3,
        optical_paths=2,
        icc=None,
    ),
    "concatenation": _Preset(
        "TILED_FULL RGB JPEG 2000 lossless, level 0 split into 3 instances",
        300,
        470,
        (
            _Level(1, 64, 96, concatenation_parts=3),
            _Level(2, 64, 64),
            _Level(6, 32, 48),
        ),
        transfer_syntax=JPEG_2000_LOSSLESS,
    ),
    "mono16": _Preset(
        "TILED_FULL MONOCHROME2 16 bit Explicit VR LE",
        300,
        470,
        _PYRAMID,
        transfer_syntax=EXPLICIT_VR_LE,
        samples=1,
        bits=16,
        icc=None,
    ),
    "demo": _Preset(
        "Realistic H&E demo slide (JPEG, 256x256 tiles, ~4000x3000 px)",
        2950,
        4070,
        (
            _Level(1, 256, 256),
            _Level(2, 256, 256),
            _Level(4, 256, 256),
            _Level(12, 256, 256),
        ),
        pattern="tissue",
        thumbnail=True,
        label=True,
        overview=True,
        pixel_spacing=0.001,
        container_identifier="DEMO-001",
        label_lines=("DEMO-001", "H&E", "2024-03-14"),
        jpeg_quality=85,
        pad_value=(255, 255, 255),
    ),
}


def _base_content(preset: _Preset, seed: int) -> np.ndarray:
    shape = (
        preset.focal_planes,
        preset.optical_paths,
        preset.total_rows,
        preset.total_cols,
        preset.samples,
    )
    lossy = preset.transfer_syntax in _LOSSY
    pattern = preset.pattern
    if pattern == "auto":
        pattern = "smooth" if lossy else "random"
    if pattern == "tissue":
        return make_tissue_image(
            preset.total_rows,
            preset.total_cols,
            seed,
            pixel_size_um=preset.pixel_spacing * 1000,
        )[None, None]
    if pattern == "smooth":
        tr, tc = preset.levels[0].tile_rows, preset.levels[0].tile_cols
        return _smooth_pixels(shape, preset.bits, seed, tr, tc)
    return _random_pixels(shape, preset.bits, seed)


def _level_content(
    base: np.ndarray, downsample: int, preset: _Preset, seed: int
) -> np.ndarray:
    """Content of one level: area-downsampled base plus a small per-tile
    texture, so every tile of every level stays distinct and non-constant."""
    arr = downsample_area(base, downsample)
    if preset.pattern == "tissue" or downsample == 1:
        return arr
    rng = np.random.default_rng([seed, downsample, 5])
    maxv = _max_value(preset.bits)
    amp = 6 if preset.transfer_syntax in _LOSSY else 24
    if preset.bits > 8:
        amp *= 257
    noise = rng.integers(-amp, amp + 1, size=arr.shape)
    return np.clip(arr.astype(np.int64) + noise, 0, maxv).astype(arr.dtype)


def write_slide(
    folder: Path,
    preset: str,
    *,
    seed: int = 0,
    uids: SlideUIDs | None = None,
    transfer_syntax: str | None = None,
    icc: str | bytes | None = "preset",
    file_names: str = "flavor",
    **image_kwargs: Any,
) -> SyntheticSlide:
    """Write a whole synthetic slide (pyramid + associated images).

    Parameters
    ----------
    folder : pathlib.Path
        Output folder.
    preset : str
        Name in :data:`PRESETS`: ``"rgb_full"``, ``"sparse"``,
        ``"no_organization"``, ``"multi_z_channel_full"``,
        ``"multi_z_channel_sparse"``, ``"concatenation"``, ``"mono16"`` or
        ``"demo"``.
    seed : int, optional
        Content seed.
    uids : SlideUIDs or None, optional
        Shared identifiers; default: deterministic from preset and seed.
    transfer_syntax : str or None, optional
        Override the preset's transfer syntax for the VOLUME levels.
    icc : str or bytes or None, optional
        ``"srgb"``, ``"wide"``, profile bytes, or ``"preset"`` (default: the
        preset's choice).
    file_names : {"flavor", "uid"}, optional
        ``"flavor"`` names files ``level0.dcm``, ``level1.dcm``, ...,
        ``thumbnail.dcm``, ``label.dcm``, ``overview.dcm``; ``"uid"`` uses
        the SOP Instance UID.
    **image_kwargs
        Passed to every :func:`write_wsi_image` call for VOLUME levels (e.g.
        ``offset_table``, ``jpeg_rgb``).

    Returns
    -------
    SyntheticSlide
        Levels (largest first) and associated images.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    cfg = PRESETS[preset]
    folder = Path(folder)
    if uids is None:
        uids = SlideUIDs.new(cfg.container_identifier, key=f"{preset}-{seed}")
    ts = transfer_syntax if transfer_syntax is not None else cfg.transfer_syntax
    if isinstance(icc, bytes):
        icc_bytes: bytes | None = icc
    else:
        kind = cfg.icc if icc == "preset" else icc
        icc_bytes = (
            icc_profile(kind) if (kind is not None and cfg.samples == 3) else None
        )
    if cfg.samples == 1:
        icc_bytes = None
    base = _base_content(cfg, seed)
    spacing = cfg.pixel_spacing
    origin = (20.0, 40.0)
    instance = 0

    def next_name(default: str) -> tuple[str | None, int]:
        nonlocal instance
        instance += 1
        return (default if file_names == "flavor" else None), instance

    levels: list[SyntheticImage] = []
    for index, level in enumerate(cfg.levels):
        content = _level_content(base, level.downsample, cfg, seed)
        stem, number = next_name(f"level{index}")
        kwargs: dict[str, Any] = {
            "jpeg_quality": cfg.jpeg_quality,
            "pad_value": cfg.pad_value,
        }
        kwargs.update(image_kwargs)
        image = write_wsi_image(
            folder,
            total_rows=content.shape[2],
            total_cols=content.shape[3],
            tile_rows=level.tile_rows,
            tile_cols=level.tile_cols,
            samples=cfg.samples,
            bits=cfg.bits,
            transfer_syntax=ts,
            organization=cfg.organization,
            focal_planes=cfg.focal_planes,
            optical_paths=cfg.optical_paths,
            omitted_tiles=level.omitted,
            concatenation_parts=level.concatenation_parts,
            flavor="VOLUME",
            pixel_spacing=(spacing * level.downsample, spacing * level.downsample),
            origin=origin,
            icc_profile=icc_bytes,
            uids=uids,
            seed=seed + index,
            pixels=content,
            name=stem,
            instance_number=number,
            derived=index > 0,
            **kwargs,
        )
        if file_names != "flavor":
            image = _rename_to_uid(image)
        levels.append(image)

    slide = SyntheticSlide(
        folder=folder,
        preset=preset,
        uids=uids,
        levels=levels,
        downsamples=[lv.downsample for lv in cfg.levels],
    )
    rgb_base = base[0, 0]
    if cfg.samples == 1:
        rgb_base = np.repeat((base[0, 0] >> (cfg.bits - 8)).astype(np.uint8), 3, axis=2)
    assoc_ts = JPEG_BASELINE if cfg.samples == 3 and ts in _LOSSY else EXPLICIT_VR_LE
    if cfg.thumbnail:
        factor = (
            max(1, math.ceil(max(cfg.total_rows, cfg.total_cols) / 256))
            if preset == "demo"
            else 4
        )
        content = _level_content(base, factor, cfg, seed + 50)
        stem, number = next_name("thumbnail")
        thumb_ts = (
            ts if cfg.samples == 3 or ts not in _EIGHT_BIT_ONLY else EXPLICIT_VR_LE
        )
        slide.thumbnail = write_wsi_image(
            folder,
            total_rows=content.shape[2],
            total_cols=content.shape[3],
            tile_rows=content.shape[2],
            tile_cols=content.shape[3],
            samples=cfg.samples,
            bits=cfg.bits,
            transfer_syntax=thumb_ts,
            organization="TILED_FULL",
            focal_planes=cfg.focal_planes,
            optical_paths=cfg.optical_paths,
            flavor="THUMBNAIL",
            pixel_spacing=(spacing * factor, spacing * factor),
            origin=origin,
            icc_profile=icc_bytes,
            uids=uids,
            pixels=content,
            name=stem,
            instance_number=number,
            jpeg_quality=cfg.jpeg_quality,
        )
    label_rgb = None
    label_text = " / ".join(cfg.label_lines)
    if cfg.label or cfg.overview:
        label_rgb = make_label_image(
            240 if preset == "demo" else 96,
            240 if preset == "demo" else 96,
            cfg.label_lines,
            cfg.container_identifier,
            seed,
        )
    if cfg.label and label_rgb is not None:
        stem, number = next_name("label")
        slide.label = write_wsi_image(
            folder,
            total_rows=label_rgb.shape[0],
            total_cols=label_rgb.shape[1],
            tile_rows=label_rgb.shape[0],
            tile_cols=label_rgb.shape[1],
            samples=3,
            transfer_syntax=assoc_ts,
            flavor="LABEL",
            pixel_spacing=(0.1, 0.1),
            origin=(25.0, 24.0),
            icc_profile=icc_bytes,
            uids=uids,
            pixels=label_rgb,
            name=stem,
            instance_number=number,
            label_text=label_text,
            barcode_value=cfg.container_identifier,
        )
    if cfg.overview:
        # Slide 25 mm x 75 mm; columns run along -Y, rows along -X (default
        # orientation), top-left corner at (X, Y) = (25, 75).
        ov_spacing = 0.1 if preset == "demo" else 0.25
        ov_rows, ov_cols = round(25 / ov_spacing), round(75 / ov_spacing)
        lvl0 = levels[0]
        r0 = round((25.0 - origin[0]) / ov_spacing)
        c0 = round((75.0 - origin[1]) / ov_spacing)
        r1 = r0 + max(1, round(lvl0.total_rows * spacing / ov_spacing))
        c1 = c0 + max(1, round(lvl0.total_cols * spacing / ov_spacing))
        lab_c0 = round((75.0 - 24.0) / ov_spacing)
        overview = make_overview_image(
            ov_rows,
            ov_cols,
            content=rgb_base,
            content_box=(r0, c0, r1, c1),
            label=label_rgb,
            label_box=(
                round(1 / ov_spacing),
                lab_c0,
                ov_rows - round(1 / ov_spacing),
                ov_cols - round(1 / ov_spacing),
            ),
            seed=seed,
        )
        stem, number = next_name("overview")
        slide.overview = write_wsi_image(
            folder,
            total_rows=ov_rows,
            total_cols=ov_cols,
            tile_rows=ov_rows,
            tile_cols=ov_cols,
            samples=3,
            transfer_syntax=assoc_ts,
            flavor="OVERVIEW",
            pixel_spacing=(ov_spacing, ov_spacing),
            origin=(25.0, 75.0),
            icc_profile=icc_bytes,
            uids=uids,
            pixels=overview,
            name=stem,
            instance_number=number,
        )
    if file_names != "flavor":
        for attr in ("thumbnail", "label", "overview"):
            im = getattr(slide, attr)
            if im is not None:
                setattr(slide, attr, _rename_to_uid(im))
    return slide


def _rename_to_uid(image: SyntheticImage) -> SyntheticImage:
    new_files = []
    for path, uid in zip(image.files, image.sop_instance_uids):
        target = path.with_name(f"{uid}.dcm")
        path.replace(target)
        new_files.append(target)
    image.files = new_files
    return image


# --------------------------------------------------------------------------
# Damaged files
# --------------------------------------------------------------------------


def set_attribute(path: str | Path, keyword: str, value: Any) -> None:
    """Rewrite a written file with one attribute changed, e.g. Rows of 0.

    Parameters
    ----------
    path : str or pathlib.Path
        A file written by this module.
    keyword : str
        Keyword of a top-level attribute.
    value : Any
        Its new value; ``None`` deletes the attribute.  The pixel data are
        kept byte for byte.
    """
    ds = pydicom.dcmread(path)
    if value is None:
        if keyword in ds:
            delattr(ds, keyword)
    else:
        setattr(ds, keyword, value)
    with _known_transfer_syntax(str(ds.file_meta.TransferSyntaxUID)):
        ds.save_as(path, enforce_file_format=True)


def relabel_transfer_syntax(path: str | Path, transfer_syntax_uid: str) -> None:
    """Put another Transfer Syntax UID into a file's meta information.

    The data set's bytes are left as they are, so the file claims a syntax
    its data are not encoded in: e.g. an unknown (private) UID on native
    pixel data, or a native syntax on encapsulated pixel data.

    Parameters
    ----------
    path : str or pathlib.Path
        A Part 10 file.
    transfer_syntax_uid : str
        The UID to claim.
    """
    from pydicom.filebase import DicomBytesIO
    from pydicom.filereader import read_file_meta_info
    from pydicom.filewriter import write_file_meta_info

    data = Path(path).read_bytes()
    # (0002,0000) File Meta Information Group Length comes first, explicit VR
    group_length = struct.unpack_from("<I", data, 132 + 8)[0]
    dataset_start = 132 + 12 + group_length
    meta = read_file_meta_info(path)
    meta.TransferSyntaxUID = UID(transfer_syntax_uid)
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, False
    write_file_meta_info(out, meta, enforce_standard=True)
    Path(path).write_bytes(data[:128] + b"DICM" + out.getvalue() + data[dataset_start:])


def frame_byte_ranges(path: str | Path) -> list[tuple[int, int]]:
    """Where each frame's stored data lie in a written file.

    Read from the file's bytes, independently of any reader: for native
    pixel data the frame's pixels; for encapsulated pixel data the frame's
    fragment items, headers included (fragments are split evenly over the
    frames, as :func:`write_wsi_image` writes them).  A file cut at or after
    the end of a frame's range holds the frame whole.

    Parameters
    ----------
    path : str or pathlib.Path
        A file written by this module (not deflated).

    Returns
    -------
    list[tuple[int, int]]
        Byte range ``[start, end)`` of each frame, in stored order.
    """
    with open(path, "rb") as fp:
        ds = pydicom.dcmread(fp, stop_before_pixels=True)
        element = fp.tell()
        data = Path(path).read_bytes()
    ts = str(ds.file_meta.TransferSyntaxUID)
    frames = int(ds.get("NumberOfFrames", 1))
    implicit = ts == IMPLICIT_VR_LE
    start = element + (8 if implicit else 12)
    length = struct.unpack_from("<I", data, start - 4)[0]
    if length != 0xFFFFFFFF:  # native
        size = (
            int(ds.Rows)
            * int(ds.Columns)
            * int(ds.SamplesPerPixel)
            * int(ds.BitsAllocated)
            // 8
        )
        return [(start + k * size, start + (k + 1) * size) for k in range(frames)]
    items = []
    position = start + 8 + struct.unpack_from("<I", data, start + 4)[0]  # BOT
    while position + 8 <= len(data):
        tag, size = struct.unpack_from("<II", data, position)
        if tag != 0xE000FFFE:  # (FFFE,E000) Item
            break
        items.append((position, position + 8 + size))
        position += 8 + size
    per_frame = len(items) // frames
    return [
        (items[k * per_frame][0], items[(k + 1) * per_frame - 1][1])
        for k in range(frames)
    ]


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def iter_preset_descriptions() -> Iterator[tuple[str, str]]:
    """Yield ``(name, description)`` of every preset.

    Yields
    ------
    tuple[str, str]
        Preset name and description.
    """
    for key, preset in PRESETS.items():
        yield key, preset.description


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: write a preset slide to a folder.

    Parameters
    ----------
    argv : sequence of str or None
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status.
    """
    parser = argparse.ArgumentParser(
        prog="synthetic.py",
        description="Write a synthetic DICOM VL Whole Slide Microscopy slide.",
        epilog="Presets: "
        + "; ".join(f"{k}: {d}" for k, d in iter_preset_descriptions()),
    )
    parser.add_argument(
        "preset", nargs="?", choices=sorted(PRESETS), help="preset to write"
    )
    parser.add_argument("folder", nargs="?", type=Path, help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="content seed")
    parser.add_argument(
        "--transfer-syntax",
        default=None,
        help="override the VOLUME transfer syntax UID",
    )
    parser.add_argument(
        "--icc",
        choices=["srgb", "wide"],
        default=None,
        help="ICC profile for RGB images",
    )
    parser.add_argument(
        "--uid-names", action="store_true", help="name files by SOP Instance UID"
    )
    parser.add_argument(
        "--list",
        action="store_true",
        help="list presets and encodable transfer syntaxes",
    )
    args = parser.parse_args(argv)
    if args.list:
        for key, desc in iter_preset_descriptions():
            print(f"{key:24s} {desc}")
        print("\nencodable transfer syntaxes:")
        for ts in encodable_transfer_syntaxes():
            title = _JPEG_XL_NAMES[ts][0] if ts in _JPEG_XL_NAMES else UID(ts).name
            print(f"  {ts:26s} {title}")
        return 0
    if args.preset is None or args.folder is None:
        parser.error("preset and folder are required (or use --list)")
    slide = write_slide(
        args.folder,
        args.preset,
        seed=args.seed,
        transfer_syntax=args.transfer_syntax,
        icc=args.icc if args.icc is not None else "preset",
        file_names="uid" if args.uid_names else "flavor",
    )
    for f in slide.files:
        print(f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
