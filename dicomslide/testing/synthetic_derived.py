"""Synthetic DICOM Segmentation and Parametric Map instances for WSI slides.

This module derives small, fully known DICOM Segmentation (SEG, and the
Label Map Segmentation SOP class) and Parametric Map instances from the
synthetic VL Whole Slide Microscopy images written by :mod:`synthetic`.  The
instances are built with highdicom (0.28.x), so they are what a real
highdicom-based pipeline writes; the returned dataclasses hold the expected
("truth") arrays.  Everything is deterministic given the arguments: UIDs are
derived from the source SOP Instance UIDs and the arguments, and dates/times
are copied from the source (ContentDate/ContentTime).

Main entry points
-----------------
* :func:`write_segmentation` -- one SEG instance of a source image, or a
  pyramid of SEG instances (one per source level, sharing a PyramidUID).
* :func:`write_parametric_map` -- one Parametric Map instance of a source
  image, float32 (Float Pixel Data) or uint16 with a linear Real World Value
  Mapping.
* :func:`make_segment_masks` / :func:`make_fractional_values` /
  :func:`make_parametric_values` -- the content generators.

Content of segmentations
------------------------
Masks are drawn on the total pixel matrix of the largest source level
(``R`` rows x ``C`` columns) and never overlap:

* segment 1: a rotated ellipse centred near the bottom-right corner of the
  total pixel matrix, clipped to rows >= 0.6 R and columns >= 0.65 C.  It
  reaches the last row and column, hence lies in partial edge tiles whenever
  the tile size does not divide the matrix.
* segment 2: a union of three or four random disks in the upper-left area
  (rows < 0.55 R, columns < 0.45 C).
* segments 3, 4, ...: wavy diagonal stripes, each in its own vertical strip
  of the upper-right area (rows < 0.55 R, columns 0.5 C to 0.97 C).

The area rows >= 0.6 R, columns < 0.6 C is always empty, so with the tile
sizes of the synthetic presets every level has whole tiles without any
segment (TILED_SPARSE with ``omit_empty_frames`` then stores fewer frames
than the full grid).  Lower pyramid levels are *nearest-neighbour*
subsamples of level 0 by geometry: level pixel ``(i, j)`` takes level-0
pixel ``(floor(i * s_r), floor(j * s_c))``, ``s`` being the ratio of the
pixel spacings; for integer downsample factors this is ``mask0[::f, ::f]``.

What highdicom 0.28.2 writes (mostly asserted in test_synthetic_derived.py)
----------------------------------------------------------------------------
* BINARY and FRACTIONAL: SOP Class Segmentation Storage
  (``1.2.840.10008.5.1.4.1.1.66.4``); SegmentSequence holds segments
  ``1..n`` only (no background item); BINARY has BitsAllocated 1;
  FRACTIONAL BitsAllocated 8, SegmentationFractionalType PROBABILITY and
  MaximumFractionalValue 255 (:data:`MAX_FRACTIONAL_VALUE`).  Every frame
  holds one segment (SegmentIdentificationSequence / ReferencedSegmentNumber
  per frame; TILED_FULL: segment is the slowest-varying dimension).
* FRACTIONAL scaling: highdicom stores ``round(value * 255)`` of float input
  in [0, 1].  This module draws the *stored* values (uint8, 0..255, 0 outside
  the segment and 1..255 inside) and passes ``stored / 255.0``, so
  ``SyntheticSegmentation.masks`` holds exactly the stored values;
  ``segread(...).get_total_pixel_matrix(rescale_fractional=False)`` returns
  them, the default ``rescale_fractional=True`` returns ``stored / 255``.
* LABELMAP: SOP Class Label Map Segmentation Storage
  (``1.2.840.10008.5.1.4.1.1.66.7``), MONOCHROME2, BitsAllocated 8 (16 for
  more than 255 segments), PixelPaddingValue 0.  highdicom *does* add a
  background item: SegmentSequence is ``[0 "Background" (DCM Background), 1,
  ..., n]``; segment number 0 is reserved and cannot be described by the
  caller.  Stored pixel values are the segment numbers (0 = background).
  Frames have no segment dimension (one frame per tile).
* Dimensions: TILED_SPARSE SEG frames are indexed by (ReferencedSegmentNumber,
  RowPosition..., ColumnPosition...) -- LABELMAP and PM by (Row..., Column...)
  only; note rows before columns.  TILED_FULL instances have a
  DimensionOrganizationSequence but no DimensionIndexSequence and no
  PerFrameFunctionalGroupsSequence.
* Source references: ReferencedSeriesSequence (the source series with all its
  SOP instances -- every part of a concatenation, which this module passes as
  ``further_source_images``) and a top-level SourceImageSequence with the
  same instances (ReferencedSOPClassUID/InstanceUID only, no purpose code).
  TILED_SPARSE per-frame items carry an *empty* DerivationImageSequence; the
  shared functional group holds only PixelMeasuresSequence (SEG).
  StudyInstanceUID, FrameOfReferenceUID, PositionReferenceIndicator,
  patient/study attributes, ContainerIdentifier, the specimen description,
  TotalPixelMatrixOriginSequence and ImageOrientationSlide are copied from
  the source; SeriesInstanceUID is new.  LossyImageCompression "01" and the
  compression ratio/method are propagated from a lossy (JPEG) source.
* Parametric Map (``1.2.840.10008.5.1.4.1.1.30``, Modality OT): ``float32`` is
  written as Float Pixel Data (7FE0,0008), BitsAllocated 32, no
  BitsStored/PixelRepresentation, with an identity mapping (slope 1,
  intercept 0, FD value range); ``uint16`` as Pixel Data, BitsStored 16,
  PixelRepresentation 0, with slope :data:`PM_UINT16_SLOPE` and intercept
  :data:`PM_UINT16_INTERCEPT` (US first/last value mapped 0/65535).  The
  RealWorldValueMappingSequence is in the *shared* functional group (single
  channel), with FrameVOILUTSequence, ParametricMapFrameTypeSequence and a
  PixelValueTransformationSequence (Rescale slope 1, intercept 0, type US).
  PM frames are never omitted (highdicom forces ``omit_empty_frames=False``);
  TILED_FULL is the default.

highdicom 0.28.2 quirks worked around here
------------------------------------------
* A FRACTIONAL segmentation given a *uint8 binary* stacked array multiplies
  the caller's array in place by MaximumFractionalValue
  (``segment_array *= 255`` on a view); this module only passes fresh float
  arrays.
* ``create_segmentation_pyramid`` reads ``series_date``/``series_time`` from
  its ``**kwargs`` and passes them to ``Segmentation`` explicitly *and* via
  ``**kwargs``: giving them raises ``TypeError: got multiple values``.  Only
  ``content_date``/``content_time`` are passed (SeriesDate/Time follow them).
* InstanceCreationDate/Time, highdicom's ContributionDateTime and the
  DimensionOrganizationUID come from the clock / a random UID; they are
  overwritten after construction so files are byte-for-byte reproducible.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from dicomslide.testing import synthetic

__all__ = [
    "MAX_FRACTIONAL_VALUE",
    "PM_UINT16_INTERCEPT",
    "PM_UINT16_SLOPE",
    "SEGMENTATION_TYPES",
    "SyntheticParametricMap",
    "SyntheticSegmentation",
    "level_indices",
    "make_fractional_values",
    "make_parametric_values",
    "make_segment_masks",
    "write_parametric_map",
    "write_segmentation",
]

SEGMENTATION_TYPES = ("BINARY", "FRACTIONAL", "LABELMAP")
SEG_ORGANIZATIONS = ("TILED_SPARSE", "TILED_FULL")
MAX_FRACTIONAL_VALUE = 255
PM_DTYPES = ("float32", "uint16")
PM_UINT16_SLOPE = 0.0005
PM_UINT16_INTERCEPT = -5.0
PM_VALUE_RANGE = (-4.0, 24.0)
"""Real-world value range of the parametric map content (both dtypes)."""

_MANUFACTURER = "dicomslide test suite"
_MODEL = "tests/synthetic_derived.py"
_SOFTWARE = "1.0"
_DEVICE_SERIAL = "SYN-DERIVED-0001"
_SEGMENT_KINDS = (
    ("Tumor", codes.SCT.Neoplasm),
    ("Necrosis", codes.SCT.Necrosis),
    ("Vessel", codes.SCT.BloodVessel),
    ("Nucleus", codes.SCT.Nucleus),
    ("Cell", codes.SCT.Cell),
)


def _uid(*parts: object) -> str:
    """Return a deterministic UID derived from `parts`."""
    return str(generate_uid(entropy_srcs=[repr(p) for p in parts]))


# --------------------------------------------------------------------------
# Result containers
# --------------------------------------------------------------------------


@dataclass
class SyntheticSegmentation:
    """Result of :func:`write_segmentation`: the files and their truth.

    Attributes
    ----------
    files : list[pathlib.Path]
        Written SEG files, largest level first (one unless `pyramid`).
    sop_instance_uids : list[str]
        SOPInstanceUID of each file.
    segment_numbers : list[int]
        Described segment numbers, ``[1, ..., segments]`` (the LABELMAP
        background item 0 written by highdicom is not included).
    segment_labels : list[str]
        SegmentLabel of each described segment.
    segmentation_type : str
        ``"BINARY"``, ``"FRACTIONAL"`` or ``"LABELMAP"``.
    masks : list[numpy.ndarray]
        Per file, uint8 array ``(segments, rows, cols)``: 0/1 for BINARY and
        LABELMAP (``labels == number``), the *stored* values
        ``0..MaximumFractionalValue`` for FRACTIONAL.
    labels : list[numpy.ndarray]
        Per file, array ``(rows, cols)`` of segment numbers (0 = no segment):
        the stored values for LABELMAP, the (well defined, segments do not
        overlap) combination of the masks otherwise.  uint8, or uint16 when
        there are more than 255 segments.
    expected_number_of_frames : list[int]
        NumberOfFrames each file must have (frames that are empty for every
        segment of a tile, resp. for that segment, omitted with
        TILED_SPARSE + `omit_empty_frames`).
    tile_sizes : list[tuple[int, int]]
        (Rows, Columns) of the frames of each file.
    """

    files: list[Path]
    sop_instance_uids: list[str]
    segment_numbers: list[int]
    segment_labels: list[str]
    segmentation_type: str
    masks: list[np.ndarray]
    labels: list[np.ndarray]
    expected_number_of_frames: list[int]
    tile_sizes: list[tuple[int, int]]
    series_instance_uid: str
    pyramid_uid: str | None
    organization: str
    omit_empty_frames: bool
    max_fractional_value: int | None
    sources: list[synthetic.SyntheticImage]
    extra: dict[str, object] = field(default_factory=dict)


@dataclass
class SyntheticParametricMap:
    """Result of :func:`write_parametric_map`: the file and its truth.

    Attributes
    ----------
    files : list[pathlib.Path]
        The written file (one).
    sop_instance_uids : list[str]
        Its SOPInstanceUID.
    values : numpy.ndarray
        float64, shape ``(rows, cols)``: real-world values,
        ``stored * slope + intercept`` computed in float64.
    stored : numpy.ndarray
        The stored total pixel matrix (float32 or uint16).
    dtype : str
        ``"float32"`` or ``"uint16"``.
    slope, intercept : float
        RealWorldValueSlope / RealWorldValueIntercept (1 and 0 for float32).
    """

    files: list[Path]
    sop_instance_uids: list[str]
    values: np.ndarray
    stored: np.ndarray
    dtype: str
    slope: float
    intercept: float
    series_instance_uid: str
    organization: str
    tile_size: tuple[int, int]
    lut_label: str
    source: synthetic.SyntheticImage


# --------------------------------------------------------------------------
# Content
# --------------------------------------------------------------------------


def _grid(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    rr = np.arange(rows, dtype=np.float64)[:, None]
    cc = np.arange(cols, dtype=np.float64)[None, :]
    return rr, cc


def _corner_ellipse(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    rr, cc = _grid(rows, cols)
    cy = rows * rng.uniform(0.88, 0.96)
    cx = cols * rng.uniform(0.88, 0.96)
    a = cols * rng.uniform(0.22, 0.3)
    b = rows * rng.uniform(0.25, 0.35)
    theta = rng.uniform(0.0, math.pi)
    dx, dy = cc - cx, rr - cy
    u = dx * math.cos(theta) + dy * math.sin(theta)
    v = -dx * math.sin(theta) + dy * math.cos(theta)
    inside = (u / a) ** 2 + (v / b) ** 2 <= 1.0
    # Make sure the bottom-right corner pixel itself is covered.
    inside |= ((rr - (rows - 1)) / (0.12 * rows)) ** 2 + (
        (cc - (cols - 1)) / (0.1 * cols)
    ) ** 2 <= 1.0
    return inside & (rr >= 0.6 * rows) & (cc >= 0.65 * cols)


def _disk_union(
    rng: np.random.Generator,
    rows: int,
    cols: int,
    box: tuple[float, float, float, float],
) -> np.ndarray:
    """Union of 3-4 random disks inside `box` = (r0, r1, c0, c1) fractions."""
    rr, cc = _grid(rows, cols)
    r0, r1, c0, c1 = box[0] * rows, box[1] * rows, box[2] * cols, box[3] * cols
    size = min(r1 - r0, c1 - c0)
    out = np.zeros((rows, cols), dtype=bool)
    for _ in range(int(rng.integers(3, 5))):
        radius = size * rng.uniform(0.14, 0.3)
        cy = rng.uniform(r0 + radius, max(r0 + radius, r1 - radius))
        cx = rng.uniform(c0 + radius, max(c0 + radius, c1 - radius))
        out |= (rr - cy) ** 2 + (cc - cx) ** 2 <= radius**2
    return out & (rr >= r0) & (rr < r1) & (cc >= c0) & (cc < c1)


def _wavy_stripe(
    rng: np.random.Generator,
    rows: int,
    cols: int,
    box: tuple[float, float, float, float],
) -> np.ndarray:
    """A wavy diagonal band clipped to `box` = (r0, r1, c0, c1) fractions."""
    rr, cc = _grid(rows, cols)
    r0, r1, c0, c1 = box[0] * rows, box[1] * rows, box[2] * cols, box[3] * cols
    angle = rng.uniform(0.2, 1.2) * (1 if rng.random() < 0.5 else -1)
    cy, cx = (r0 + r1) / 2, (c0 + c1) / 2
    along = (cc - cx) * math.cos(angle) + (rr - cy) * math.sin(angle)
    across = -(cc - cx) * math.sin(angle) + (rr - cy) * math.cos(angle)
    width = max(3.0, min(r1 - r0, c1 - c0) * rng.uniform(0.12, 0.22))
    period = max(r1 - r0, c1 - c0) * rng.uniform(0.4, 0.8)
    wave = 0.6 * width * np.sin(2 * math.pi * along / period + rng.uniform(0, 6.3))
    band = np.abs(across - wave) <= width / 2
    return band & (rr >= r0) & (rr < r1) & (cc >= c0) & (cc < c1)


def make_segment_masks(
    rows: int, cols: int, segments: int, seed: int = 0
) -> np.ndarray:
    """Draw non-overlapping segment masks on a total pixel matrix.

    Parameters
    ----------
    rows, cols : int
        Size of the total pixel matrix.
    segments : int
        Number of segments (>= 1).
    seed : int, optional
        RNG seed.

    Returns
    -------
    numpy.ndarray
        bool, shape ``(segments, rows, cols)``; see the module docstring for
        the layout.  Every segment is non-empty and not constant.
    """
    if segments < 1:
        raise ValueError("segments must be >= 1")
    rng = np.random.default_rng([seed, rows, cols, 1234])
    masks = np.zeros((segments, rows, cols), dtype=bool)
    masks[0] = _corner_ellipse(rng, rows, cols)
    if segments > 1:
        masks[1] = _disk_union(rng, rows, cols, (0.04, 0.55, 0.03, 0.45))
    extra = segments - 2
    for k in range(max(extra, 0)):
        left = 0.5 + 0.47 * k / extra
        right = 0.5 + 0.47 * (k + 1) / extra
        masks[2 + k] = _wavy_stripe(rng, rows, cols, (0.03, 0.55, left, right))
    for k in range(segments):
        if not masks[k].any():
            raise ValueError(
                f"matrix {rows}x{cols} too small for {segments} "
                f"segments (segment {k + 1} is empty)"
            )
    return masks


def make_fractional_values(
    masks: np.ndarray, seed: int = 0, max_value: int = MAX_FRACTIONAL_VALUE
) -> np.ndarray:
    """Return stored FRACTIONAL values for `masks`.

    Parameters
    ----------
    masks : numpy.ndarray
        bool, ``(segments, rows, cols)``.
    seed : int, optional
        RNG seed.
    max_value : int, optional
        MaximumFractionalValue.

    Returns
    -------
    numpy.ndarray
        uint8 array shaped like `masks`: 0 outside a segment, a smooth field
        of values in ``1..max_value`` (reaching ``max_value``) inside.
    """
    segments, rows, cols = masks.shape
    rr, cc = _grid(rows, cols)
    out = np.zeros(masks.shape, dtype=np.uint8)
    for k in range(segments):
        rng = np.random.default_rng([seed, k, 77])
        period = max(rows, cols) * rng.uniform(0.15, 0.35)
        angle = rng.uniform(0, math.pi)
        phase = rng.uniform(0, 2 * math.pi)
        wave = 0.5 + 0.5 * np.sin(
            2 * math.pi * (cc * math.cos(angle) + rr * math.sin(angle)) / period + phase
        )
        values = np.clip(np.rint(max_value * (0.15 + 0.85 * wave)), 1, max_value)
        inside = masks[k]
        if inside.any():
            # Put the maximum (probability 1) somewhere inside the segment.
            first = tuple(np.argwhere(inside)[0])
            values[first] = max_value
        out[k] = np.where(inside, values, 0).astype(np.uint8)
    return out


def make_parametric_values(
    rows: int,
    cols: int,
    seed: int = 0,
    value_range: tuple[float, float] = PM_VALUE_RANGE,
) -> np.ndarray:
    """Return a smooth, non-constant real-valued map.

    Parameters
    ----------
    rows, cols : int
        Size of the total pixel matrix.
    seed : int, optional
        RNG seed.
    value_range : tuple of float, optional
        (min, max); the result spans exactly this range.

    Returns
    -------
    numpy.ndarray
        float64, shape ``(rows, cols)``: a gradient plus two sinusoids plus a
        per-pixel ripple, scaled to `value_range`.
    """
    rng = np.random.default_rng([seed, rows, cols, 4321])
    rr, cc = _grid(rows, cols)
    field_ = 0.8 * rr / max(rows - 1, 1) + 0.5 * cc / max(cols - 1, 1)
    for _ in range(2):
        period = max(rows, cols) * rng.uniform(0.1, 0.4)
        angle = rng.uniform(0, math.pi)
        field_ = field_ + 0.4 * np.sin(
            2 * math.pi * (cc * math.cos(angle) + rr * math.sin(angle)) / period
            + rng.uniform(0, 2 * math.pi)
        )
    field_ = field_ + 0.05 * rng.standard_normal((rows, cols))
    lo, hi = float(field_.min()), float(field_.max())
    unit = (field_ - lo) / (hi - lo)
    return value_range[0] + (value_range[1] - value_range[0]) * unit


def level_indices(
    level: synthetic.SyntheticImage, base: synthetic.SyntheticImage
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-neighbour index arrays mapping `level` pixels to `base` pixels.

    Parameters
    ----------
    level, base : synthetic.SyntheticImage
        A pyramid level and the largest level (sharing origin and
        orientation).

    Returns
    -------
    tuple[numpy.ndarray, numpy.ndarray]
        Row and column indices into `base`: level pixel ``(i, j)`` is base
        pixel ``(rows[i], cols[j])``.
    """
    scale_r = level.pixel_spacing[0] / base.pixel_spacing[0]
    scale_c = level.pixel_spacing[1] / base.pixel_spacing[1]
    rows = np.floor(np.arange(level.total_rows) * scale_r + 1e-9).astype(np.intp)
    cols = np.floor(np.arange(level.total_cols) * scale_c + 1e-9).astype(np.intp)
    return (
        np.clip(rows, 0, base.total_rows - 1),
        np.clip(cols, 0, base.total_cols - 1),
    )


def _count_frames(stored: np.ndarray, tile: tuple[int, int], omit: bool) -> int:
    """Frames of `stored` ``(channels, rows, cols)`` that highdicom keeps."""
    channels, rows, cols = stored.shape
    grid_r, grid_c = -(-rows // tile[0]), -(-cols // tile[1])
    if not omit:
        return int(channels * grid_r * grid_c)
    count = 0
    for ch in range(channels):
        for tr in range(grid_r):
            for tc in range(grid_c):
                block = stored[
                    ch,
                    tr * tile[0] : (tr + 1) * tile[0],
                    tc * tile[1] : (tc + 1) * tile[1],
                ]
                count += bool(block.any())
    return count


# --------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------


def _read_source(image: synthetic.SyntheticImage) -> Dataset:
    """Read the metadata of the first file of `image` (no pixel data)."""
    return pydicom.dcmread(image.files[0], stop_before_pixels=True)


def _content_datetime(ds: Dataset) -> tuple[datetime.date, datetime.time]:
    date = datetime.datetime.strptime(str(ds.ContentDate), "%Y%m%d").date()
    text = str(ds.ContentTime).split(".")[0].ljust(6, "0")
    time = datetime.datetime.strptime(text, "%H%M%S").time()
    return date, time


def _make_reproducible(ds: Dataset, date: datetime.date, time: datetime.time) -> None:
    """Replace what highdicom takes from the clock or a random UID.

    InstanceCreationDate/Time and the ContributionDateTime of highdicom's own
    ContributingEquipmentSequence item are set to the source's content
    date/time, and the (random) DimensionOrganizationUID is replaced by one
    derived from the SOPInstanceUID, so that written files are byte-for-byte
    reproducible.
    """
    org_uid = _uid("dimension-organization", ds.SOPInstanceUID)
    for item in ds.get("DimensionOrganizationSequence", []):
        item.DimensionOrganizationUID = org_uid
    for item in ds.get("DimensionIndexSequence", []):
        if "DimensionOrganizationUID" in item:
            item.DimensionOrganizationUID = org_uid
    ds.InstanceCreationDate = date.strftime("%Y%m%d")
    ds.InstanceCreationTime = time.strftime("%H%M%S")
    stamp = datetime.datetime.combine(date, time).strftime("%Y%m%d%H%M%S")
    for item in ds.get("ContributingEquipmentSequence", []):
        if "ContributionDateTime" in item:
            item.ContributionDateTime = stamp


def _segment_descriptions(
    segments: int,
) -> tuple[list[hd.seg.SegmentDescription], list[str]]:
    descriptions, labels = [], []
    algorithm = hd.AlgorithmIdentificationSequence(
        name="synthetic_derived",
        version=_SOFTWARE,
        family=codes.DCM.ArtificialIntelligence,
    )
    for k in range(segments):
        name, code = _SEGMENT_KINDS[k % len(_SEGMENT_KINDS)]
        label = name if k < len(_SEGMENT_KINDS) else f"{name} {k + 1}"
        labels.append(label)
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=k + 1,
                segment_label=label,
                segmented_property_category=codes.SCT.Tissue,
                segmented_property_type=code,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                algorithm_identification=algorithm,
                tracking_uid=_uid("tracking", k, segments),
                tracking_id=f"synthetic segment {k + 1}",
            )
        )
    return descriptions, labels


def write_segmentation(
    folder: Path,
    source: synthetic.SyntheticImage | list[synthetic.SyntheticImage],
    *,
    segmentation_type: str = "BINARY",
    segments: int = 2,
    organization: str = "TILED_SPARSE",
    omit_empty_frames: bool = True,
    tile_size: tuple[int, int] | None = None,
    pyramid: bool = False,
    seed: int = 0,
    name: str | None = None,
    series_number: int = 100,
) -> SyntheticSegmentation:
    """Write a synthetic DICOM Segmentation of a synthetic WSI image.

    Parameters
    ----------
    folder : pathlib.Path
        Output folder (created if missing).
    source : synthetic.SyntheticImage or list of synthetic.SyntheticImage
        Source image, or the pyramid levels (largest first) when `pyramid` is
        true.  Only the first file of a concatenation is used as the source
        dataset; further parts are referenced as further source images.
    segmentation_type : {"BINARY", "FRACTIONAL", "LABELMAP"}, optional
        SegmentationType.  LABELMAP uses the Label Map Segmentation SOP class.
    segments : int, optional
        Number of segments (>= 1).
    organization : {"TILED_SPARSE", "TILED_FULL"}, optional
        DimensionOrganizationType.
    omit_empty_frames : bool, optional
        Omit frames without any non-zero pixel (TILED_SPARSE only; ignored for
        TILED_FULL, which needs every frame).
    tile_size : tuple of int or None, optional
        (rows, columns) of the SEG frames; default: each source's tile size.
    pyramid : bool, optional
        Write one SEG instance per source level, sharing a PyramidUID, with
        :func:`highdicom.seg.create_segmentation_pyramid` (explicit per-level
        arrays, nearest-neighbour subsamples of level 0) -- or with one
        :class:`highdicom.seg.Segmentation` per level (same PyramidUID and
        label) when a level is concatenated, so that each level references
        only its own concatenation parts.
    seed : int, optional
        Content seed.
    name : str or None, optional
        File stem; default ``"seg_<type>"``.  Files are ``<name>.dcm``, or
        ``<name>_level<k>.dcm`` for a pyramid.
    series_number : int, optional
        SeriesNumber.

    Returns
    -------
    SyntheticSegmentation
        The written files and the truth arrays.
    """
    segmentation_type = segmentation_type.upper()
    if segmentation_type not in SEGMENTATION_TYPES:
        raise ValueError(f"segmentation_type must be one of {SEGMENTATION_TYPES}")
    if organization not in SEG_ORGANIZATIONS:
        raise ValueError(f"organization must be one of {SEG_ORGANIZATIONS}")
    if segments < 1:
        raise ValueError("segments must be >= 1")
    levels = list(source) if isinstance(source, (list, tuple)) else [source]
    if not levels:
        raise ValueError("no source image")
    if not pyramid and len(levels) != 1:
        raise ValueError("several source images need pyramid=True")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    omit = bool(omit_empty_frames) and organization == "TILED_SPARSE"
    stem = name if name is not None else f"seg_{segmentation_type.lower()}"

    datasets = [_read_source(level) for level in levels]
    # Further concatenation parts of each level (referenced, not used for
    # geometry).
    further = [
        [pydicom.dcmread(f, stop_before_pixels=True) for f in level.files[1:]]
        for level in levels
    ]
    base = levels[0]
    masks0 = make_segment_masks(base.total_rows, base.total_cols, segments, seed)
    stored0 = (
        make_fractional_values(masks0, seed)
        if segmentation_type == "FRACTIONAL"
        else masks0.astype(np.uint8)
    )
    label_dtype = np.uint8 if segments < 256 else np.uint16
    numbers = np.arange(1, segments + 1, dtype=label_dtype)

    masks: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    arrays: list[np.ndarray] = []
    tiles: list[tuple[int, int]] = []
    frame_counts: list[int] = []
    for level in levels:
        ri, ci = level_indices(level, base)
        stored = np.ascontiguousarray(stored0[:, ri][:, :, ci])
        binary = stored > 0
        label = (binary * numbers[:, None, None]).sum(axis=0, dtype=label_dtype)
        tile = (
            tuple(tile_size)
            if tile_size is not None
            else (level.tile_rows, level.tile_cols)
        )
        tiles.append((int(tile[0]), int(tile[1])))
        if segmentation_type == "LABELMAP":
            arrays.append(label[None].copy())
            masks.append(binary.astype(np.uint8))
            frame_counts.append(_count_frames(label[None], tiles[-1], omit))
        elif segmentation_type == "FRACTIONAL":
            arrays.append(
                np.moveaxis(stored, 0, -1)[None].astype(np.float64)
                / MAX_FRACTIONAL_VALUE
            )
            masks.append(stored)
            frame_counts.append(_count_frames(stored, tiles[-1], omit))
        else:
            arrays.append(np.moveaxis(binary, 0, -1)[None].astype(np.uint8))
            masks.append(binary.astype(np.uint8))
            frame_counts.append(_count_frames(binary, tiles[-1], omit))
        labels.append(label)

    key = (
        tuple(im.sop_instance_uids[0] for im in levels),
        segmentation_type,
        segments,
        organization,
        omit,
        tile_size,
        pyramid,
        seed,
        stem,
    )
    series_uid = _uid("seg-series", *key)
    sop_uids = [_uid("seg-sop", k, *key) for k in range(len(levels))]
    pyramid_uid = _uid("seg-pyramid", *key) if pyramid else None
    date, time = _content_datetime(datasets[0])
    descriptions, segment_labels = _segment_descriptions(segments)
    common: dict[str, Any] = {
        "segmentation_type": segmentation_type,
        "segment_descriptions": descriptions,
        "series_instance_uid": series_uid,
        "series_number": series_number,
        "manufacturer": _MANUFACTURER,
        "manufacturer_model_name": _MODEL,
        "software_versions": _SOFTWARE,
        "device_serial_number": _DEVICE_SERIAL,
        "omit_empty_frames": omit,
        "dimension_organization_type": organization,
        "tile_size": tile_size,
        "content_label": "SYNTH_SEG",
        "content_description": f"Synthetic {segmentation_type} segmentation",
        "content_date": date,
        "content_time": time,
        "series_date": date,
        "series_time": time,
    }
    if segmentation_type == "FRACTIONAL":
        common["fractional_type"] = "PROBABILITY"
        common["max_fractional_value"] = MAX_FRACTIONAL_VALUE
    pyramid_label = f"{datasets[0].get('ContainerIdentifier', '')} {stem}"

    if pyramid and not any(further):
        # create_segmentation_pyramid derives SeriesDate/Time from
        # content_date/time itself and passes them on explicitly: giving
        # series_date/series_time as well raises "got multiple values".
        del common["series_date"], common["series_time"]
        instances = hd.seg.create_segmentation_pyramid(
            source_images=datasets,
            pixel_arrays=arrays,
            sop_instance_uids=sop_uids,
            pyramid_uid=pyramid_uid,
            pyramid_label=pyramid_label,
            **common,
        )
    else:
        # One Segmentation per level; also used for pyramids with
        # concatenated levels, whose further parts must be referenced by their
        # own level only (create_segmentation_pyramid shares its kwargs).
        instances = []
        for k, (ds, arr) in enumerate(zip(datasets, arrays)):
            extra: dict[str, Any] = {}
            if pyramid:
                extra = {"pyramid_uid": pyramid_uid, "pyramid_label": pyramid_label}
            if further[k]:
                extra["further_source_images"] = further[k]
            instances.append(
                hd.seg.Segmentation(
                    source_images=[ds],
                    pixel_array=arr,
                    sop_instance_uid=sop_uids[k],
                    instance_number=k + 1,
                    tile_pixel_array=True,
                    **common,
                    **extra,
                )
            )

    files = []
    for k, seg in enumerate(instances):
        _make_reproducible(seg, date, time)
        path = folder / (f"{stem}_level{k}.dcm" if pyramid else f"{stem}.dcm")
        seg.save_as(path, enforce_file_format=True)
        files.append(path)
    return SyntheticSegmentation(
        files=files,
        sop_instance_uids=sop_uids,
        segment_numbers=[int(n) for n in numbers],
        segment_labels=segment_labels,
        segmentation_type=segmentation_type,
        masks=masks,
        labels=labels,
        expected_number_of_frames=frame_counts,
        tile_sizes=tiles,
        series_instance_uid=series_uid,
        pyramid_uid=pyramid_uid,
        organization=organization,
        omit_empty_frames=omit,
        max_fractional_value=MAX_FRACTIONAL_VALUE
        if segmentation_type == "FRACTIONAL"
        else None,
        sources=levels,
        extra={"seed": seed},
    )


def write_parametric_map(
    folder: Path,
    source: synthetic.SyntheticImage,
    *,
    dtype: str = "float32",
    organization: str = "TILED_FULL",
    tile_size: tuple[int, int] | None = None,
    seed: int = 0,
    name: str | None = None,
    series_number: int = 200,
) -> SyntheticParametricMap:
    """Write a synthetic DICOM Parametric Map of a synthetic WSI image.

    Parameters
    ----------
    folder : pathlib.Path
        Output folder (created if missing).
    source : synthetic.SyntheticImage
        Source image (its first file is the source dataset).
    dtype : {"float32", "uint16"}, optional
        ``"float32"``: Float Pixel Data with an identity Real World Value
        Mapping; ``"uint16"``: Pixel Data with slope
        :data:`PM_UINT16_SLOPE` and intercept :data:`PM_UINT16_INTERCEPT`
        (stored values span about 2000..58000, beyond the int16 range).
    organization : {"TILED_FULL", "TILED_SPARSE"}, optional
        DimensionOrganizationType (no frame is ever omitted).
    tile_size : tuple of int or None, optional
        (rows, columns) of the frames; default: the source's tile size.
    seed : int, optional
        Content seed.
    name : str or None, optional
        File stem; default ``"pm_<dtype>"``.
    series_number : int, optional
        SeriesNumber.

    Returns
    -------
    SyntheticParametricMap
        The written file and the truth arrays.
    """
    if dtype not in PM_DTYPES:
        raise ValueError(f"dtype must be one of {PM_DTYPES}")
    if organization not in SEG_ORGANIZATIONS:
        raise ValueError(f"organization must be one of {SEG_ORGANIZATIONS}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = name if name is not None else f"pm_{dtype}"
    ds = _read_source(source)
    further = [pydicom.dcmread(f, stop_before_pixels=True) for f in source.files[1:]]
    wanted = make_parametric_values(source.total_rows, source.total_cols, seed)
    if dtype == "float32":
        slope, intercept = 1.0, 0.0
        stored = wanted.astype(np.float32)
        values = stored.astype(np.float64)
        lo, hi = float(stored.min()), float(stored.max())
        mapping = hd.pm.RealWorldValueMapping(
            lut_label="SYNTH_F32",
            lut_explanation="Synthetic float map",
            unit=codes.UCUM.NoUnits,
            value_range=(lo, hi),
            slope=slope,
            intercept=intercept,
        )
        voi = hd.VOILUTTransformation(window_center=(lo + hi) / 2, window_width=hi - lo)
    else:
        slope, intercept = PM_UINT16_SLOPE, PM_UINT16_INTERCEPT
        stored = np.clip(np.rint((wanted - intercept) / slope), 0, 65535).astype(
            np.uint16
        )
        values = stored.astype(np.float64) * slope + intercept
        mapping = hd.pm.RealWorldValueMapping(
            lut_label="SYNTH_U16",
            lut_explanation="Synthetic integer map",
            unit=codes.UCUM.NoUnits,
            value_range=(0, 65535),
            slope=slope,
            intercept=intercept,
        )
        lo, hi = int(stored.min()), int(stored.max())
        voi = hd.VOILUTTransformation(window_center=(lo + hi) / 2, window_width=hi - lo)
    key = (source.sop_instance_uids[0], dtype, organization, tile_size, seed, stem)
    series_uid = _uid("pm-series", *key)
    sop_uid = _uid("pm-sop", *key)
    date, time = _content_datetime(ds)
    kwargs: dict[str, Any] = {}
    if further:
        kwargs["further_source_images"] = further
    pmap = hd.pm.ParametricMap(
        source_images=[ds],
        pixel_array=stored[None].copy(),
        series_instance_uid=series_uid,
        series_number=series_number,
        sop_instance_uid=sop_uid,
        instance_number=1,
        manufacturer=_MANUFACTURER,
        manufacturer_model_name=_MODEL,
        software_versions=_SOFTWARE,
        device_serial_number=_DEVICE_SERIAL,
        contains_recognizable_visual_features=False,
        real_world_value_mappings=[mapping],
        voi_lut_transformations=[voi],
        content_label="SYNTH_MAP",
        content_description=f"Synthetic {dtype} parametric map",
        dimension_organization_type=organization,
        tile_pixel_array=True,
        tile_size=tile_size,
        content_date=date,
        content_time=time,
        series_date=date,
        series_time=time,
        **kwargs,
    )
    _make_reproducible(pmap, date, time)
    path = folder / f"{stem}.dcm"
    pmap.save_as(path, enforce_file_format=True)
    tile = (
        tuple(tile_size)
        if tile_size is not None
        else (source.tile_rows, source.tile_cols)
    )
    return SyntheticParametricMap(
        files=[path],
        sop_instance_uids=[sop_uid],
        values=values,
        stored=stored,
        dtype=dtype,
        slope=slope,
        intercept=intercept,
        series_instance_uid=series_uid,
        organization=organization,
        tile_size=(int(tile[0]), int(tile[1])),
        lut_label=str(mapping.LUTLabel),
        source=source,
    )
