"""Where the frames of an image instance lie, read from its metadata.

A :class:`FrameTable` gives the position, channel and focal plane of every
frame of one instance: computed from the TILED_FULL order, from the Per-Frame
Functional Groups Sequence (its raw bytes where possible: turning 100 000
items into pydicom datasets takes seconds), or from DICOM JSON. Before that,
:func:`check_image_geometry` checks the attributes that size the frames and
the total pixel matrix, so that a damaged header fails with the attribute's
name instead of placing frames wrongly. The parts of a concatenation are
ordered here too (:func:`sort_concatenation_parts`).
"""

from __future__ import annotations

import logging
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

from dicomslide.elements import element_value, has_element
from dicomslide.errors import MetadataError
from dicomslide.utils import SEGMENTATION_SOP_CLASS_UIDS, VL_WSI_SOP_CLASS_UID

logger = logging.getLogger(__name__)


def get_channel_identifiers(image: Dataset) -> list[str]:
    """Get the identifiers of an image's channels in their stored order.

    Channels are optical paths of VL Whole Slide Microscopy images (identified
    by Optical Path Identifier) and segments of Segmentations, label maps
    included (identified by Segment Number); other images have a single
    channel ``"1"``.

    Parameters
    ----------
    image: pydicom.Dataset
        Metadata of a tiled image

    Returns
    -------
    List[str]
        Channel identifiers

    """
    sop_class_uid = element_value(image, "SOPClassUID")
    if sop_class_uid == VL_WSI_SOP_CLASS_UID:
        paths = element_value(image, "OpticalPathSequence") or []
        identifiers = [_identifier(image, i, "OpticalPathIdentifier") for i in paths]
        return identifiers or ["1"]
    if sop_class_uid in SEGMENTATION_SOP_CLASS_UIDS:
        # the segments of a label map share frames; each is a channel too
        segments = element_value(image, "SegmentSequence") or []
        return [_identifier(image, item, "SegmentNumber") for item in segments]
    return ["1"]


def _identifier(image: Dataset, item: Dataset, keyword: str) -> str:
    value = element_value(item, keyword)
    if value is None:
        raise MetadataError(
            f"an item of the channels' sequence has no {keyword}",
            str(element_value(image, "SOPInstanceUID")),
        )
    return str(value)


#: Attributes that size an image's frames and total pixel matrix: keyword,
#: largest value its VR holds, and whether the attribute is required
_GEOMETRY = (
    ("Rows", 0xFFFF, True),
    ("Columns", 0xFFFF, True),
    ("SamplesPerPixel", 0xFFFF, True),
    ("TotalPixelMatrixRows", 0xFFFFFFFF, True),
    ("TotalPixelMatrixColumns", 0xFFFFFFFF, True),
    ("NumberOfFrames", 2**31 - 1, False),
    ("TotalPixelMatrixFocalPlanes", 0xFFFFFFFF, False),
)


_MISSING = object()


def check_image_geometry(image: Dataset, frame_count: bool = True) -> None:
    """Check the attributes that size the frames and total pixel matrix of an
    image.

    Rows, Columns, Samples per Pixel, Total Pixel Matrix Rows and Total Pixel
    Matrix Columns must be present; they and, where present, Number of Frames
    and Total Pixel Matrix Focal Planes must be whole numbers from 1 to the
    largest their value representation holds. An instance whose frames are
    placed in TILED_FULL order must hold as many frames as its tiles, focal
    planes and channels make (a part of a concatenation at most as many):
    otherwise frames would land on the wrong tiles, or tiles would read as
    absent.

    Parameters
    ----------
    image: pydicom.Dataset
        Metadata of a tiled image (one instance)
    frame_count: bool, optional
        Whether to check the number of frames of a TILED_FULL instance (which
        reads the optical paths or segments)

    Raises
    ------
    dicomslide.errors.MetadataError
        Naming the instance and the first attribute that is missing, empty,
        not a whole number, or out of range (e.g. Rows of 0), or the numbers
        that disagree

    """
    uid = element_value(image, "SOPInstanceUID")
    uid = None if uid is None else str(uid)
    numbers = {}
    for keyword, largest, required in _GEOMETRY:
        value = element_value(image, keyword, _MISSING)
        if value is _MISSING or value is None or value == "":
            if required:
                state = "missing" if value is _MISSING else "empty"
                raise MetadataError(f"required attribute {keyword} is {state}", uid)
            continue
        try:
            number = int(value)
            whole = number == value
        except (TypeError, ValueError):
            whole = False
        if not whole:
            raise MetadataError(f"{keyword} is {value!r}, not a whole number", uid)
        if not 1 <= number <= largest:
            raise MetadataError(
                f"{keyword} is {number}: it must lie in [1, {largest}]", uid
            )
        numbers[keyword] = number
    if frame_count and _in_tiled_full_order(image):
        _check_tiled_full_frames(image, numbers, uid)


def _in_tiled_full_order(image: Dataset) -> bool:
    """Whether frames are placed in TILED_FULL order (see
    :func:`compute_frame_table`)."""
    return _organization(image) == "TILED_FULL" or not has_element(
        image, "PerFrameFunctionalGroupsSequence"
    )


def _check_tiled_full_frames(
    image: Dataset, numbers: dict[str, int], uid: str | None
) -> None:
    rows, columns = numbers["Rows"], numbers["Columns"]
    total_rows = numbers["TotalPixelMatrixRows"]
    total_columns = numbers["TotalPixelMatrixColumns"]
    tiles = -(-total_rows // rows) * -(-total_columns // columns)
    planes = numbers.get("TotalPixelMatrixFocalPlanes", 1)
    channels = 1 if _is_label_map(image) else len(get_channel_identifiers(image))
    capacity = tiles * planes * max(channels, 1)
    frames = numbers.get("NumberOfFrames", 1)
    offset = int(element_value(image, "ConcatenationFrameOffsetNumber") or 0)
    concatenated = has_element(image, "ConcatenationUID")
    if offset + frames > capacity or (not concatenated and frames < capacity):
        raise MetadataError(
            f"Number of Frames is {frames}"
            + (f" from frame offset {offset}" if offset else "")
            + f", but a TILED_FULL image of {tiles} tiles (Rows {rows}, Columns "
            f"{columns}, TotalPixelMatrixRows {total_rows}, "
            f"TotalPixelMatrixColumns {total_columns}), {planes} focal plane(s) "
            f"and {channels} channel(s) holds {capacity}",
            uid,
        )


def _is_label_map(image: Dataset) -> bool:
    return bool(element_value(image, "SegmentationType") == "LABELMAP")


def _organization(image: Dataset) -> str | None:
    value = element_value(image, "DimensionOrganizationType")
    return str(value) if value else None


def _shared_item(image: Dataset, keyword: str) -> Dataset | None:
    groups = element_value(image, "SharedFunctionalGroupsSequence")
    items = element_value(groups[0], keyword) if groups else None
    return items[0] if items else None


@dataclass
class FrameTable:
    """Per-frame facts of one image instance.

    Parameters
    ----------
    positions: numpy.ndarray
        Zero-based (row, column) offset of each frame in the total pixel matrix
    channel_indices: numpy.ndarray
        Zero-based channel index of each frame
    z_offsets: numpy.ndarray
        Z offset of each frame's focal plane in micrometers

    """

    positions: np.ndarray
    channel_indices: np.ndarray
    z_offsets: np.ndarray


def compute_frame_table(image: Dataset) -> FrameTable:
    """Compute the position, channel and z offset of every frame of an instance.

    Parameters
    ----------
    image: pydicom.Dataset
        Metadata of a tiled image (one instance; for a part of a
        concatenation, the frames of that part)

    Returns
    -------
    dicomslide.tile.FrameTable
        Per-frame facts

    Raises
    ------
    dicomslide.errors.MetadataError
        When the metadata do not say where frames are, an attribute that
        sizes the image is missing or out of range
        (:func:`check_image_geometry`), or a TILED_FULL instance holds another
        number of frames than its tiles, focal planes and channels make

    """
    uid = element_value(image, "SOPInstanceUID")
    check_image_geometry(image)
    number_of_frames = int(element_value(image, "NumberOfFrames") or 1)
    rows = int(element_value(image, "Rows"))
    columns = int(element_value(image, "Columns"))
    total_rows = int(element_value(image, "TotalPixelMatrixRows"))
    total_columns = int(element_value(image, "TotalPixelMatrixColumns"))
    organization = _organization(image)
    precomputed = getattr(image, FRAME_TABLE_ATTRIBUTE, None)
    if precomputed is not None and organization != "TILED_FULL":
        return cast("FrameTable", precomputed)
    if _in_tiled_full_order(image):
        if organization != "TILED_FULL" and number_of_frames > 1:
            logger.debug(
                "instance %s: no per-frame positions, reading as TILED_FULL", uid
            )
        return _tiled_full_table(
            image, number_of_frames, rows, columns, total_rows, total_columns
        )
    fast = _table_from_raw_per_frame(image, number_of_frames)
    if fast is not None:
        return fast
    per_frame = image.PerFrameFunctionalGroupsSequence
    if len(per_frame) != number_of_frames:
        raise MetadataError(
            f"Per-Frame Functional Groups Sequence has {len(per_frame)} items "
            f"but Number of Frames is {number_of_frames}",
            uid,
        )
    return _per_frame_table(image, per_frame)


#: Attribute of a metadata dataset holding a :class:`FrameTable` computed
#: when the metadata were loaded (e.g. from DICOM JSON)
FRAME_TABLE_ATTRIBUTE = "_dicomslide_frame_table"

_PER_FRAME_TAG = 0x52009230


def _element_pattern(group: int, element: int, vr: bytes, implicit: bool) -> bytes:
    tag = struct.pack("<HH", group, element)
    return re.escape(tag if implicit else tag + vr)


def _raw_values(
    raw: bytes, group: int, element: int, vr: bytes, implicit: bool
) -> list[bytes]:
    """Values of every occurrence of an element in raw little-endian bytes."""
    head = _element_pattern(group, element, vr, implicit)
    length = rb"(.{4})" if implicit else rb"(.{2})"
    values = []
    for match in re.finditer(head + length, raw, re.DOTALL):
        size = int.from_bytes(match.group(1), "little")
        start = match.end()
        values.append(raw[start : start + size])
    return values


def _table_from_raw_per_frame(
    image: Dataset, number_of_frames: int
) -> FrameTable | None:
    """Read frame positions straight from the undecoded per-frame sequence.

    Decoding a Per-Frame Functional Groups Sequence of 100 000 items into
    pydicom datasets takes seconds; the few values needed are found in its
    raw bytes instead. Returns None (use the slow path) whenever the bytes
    don't give exactly one value of each kind per frame.
    """
    element = image.get_item(_PER_FRAME_TAG)
    if not isinstance(element, RawDataElement) or not element.is_little_endian:
        return None
    raw = element.value
    if not isinstance(raw, bytes):
        return None
    implicit = bool(element.is_implicit_VR)
    columns = _raw_values(raw, 0x0048, 0x021E, b"SL", implicit)
    rows = _raw_values(raw, 0x0048, 0x021F, b"SL", implicit)
    if len(columns) != number_of_frames or len(rows) != number_of_frames:
        return None
    if any(len(v) != 4 for v in columns) or any(len(v) != 4 for v in rows):
        return None
    positions = np.stack(
        [
            np.frombuffer(b"".join(rows), "<i4").astype(np.int64) - 1,
            np.frombuffer(b"".join(columns), "<i4").astype(np.int64) - 1,
        ],
        axis=1,
    )
    z_values = _raw_values(raw, 0x0040, 0x074A, b"DS", implicit)
    if len(z_values) == number_of_frames:
        z_offsets = np.array([float(v.strip(b" \x00") or 0) for v in z_values])
    elif not z_values:
        z_offsets = np.zeros(number_of_frames)
    else:
        return None
    channels = np.zeros(number_of_frames, dtype=np.int64)
    identifiers = get_channel_identifiers(image)
    if len(identifiers) > 1:
        if image.get("SOPClassUID") in SEGMENTATION_SOP_CLASS_UIDS:
            found = _raw_values(raw, 0x0062, 0x000B, b"US", implicit)
            names = [str(int.from_bytes(v, "little")) for v in found]
        else:
            found = _raw_values(raw, 0x0048, 0x0106, b"SH", implicit)
            names = [v.strip(b" \x00").decode("ascii", "replace") for v in found]
        if len(names) != number_of_frames:
            return None
        lookup = {identifier: i for i, identifier in enumerate(identifiers)}
        if any(name not in lookup for name in names):
            return None
        channels = np.array([lookup[name] for name in names], dtype=np.int64)
    return FrameTable(positions, channels, z_offsets)


def _json_value(item: dict[str, Any], tag: str) -> Any:
    values = item.get(tag, {}).get("Value")
    return values[0] if values else None


def frame_table_from_json(metadata: dict[str, Any]) -> FrameTable | None:
    """Compute the frame table of an instance from its DICOM JSON metadata.

    Turning a large Per-Frame Functional Groups Sequence into pydicom
    datasets is slow; this reads the few values needed from the JSON.

    Parameters
    ----------
    metadata: Dict[str, Any]
        Metadata of one instance in DICOM JSON

    Returns
    -------
    Union[dicomslide.tile.FrameTable, None]
        Frame table, or None where the JSON lacks positions

    """
    items = metadata.get("52009230", {}).get("Value") or []
    if not items:
        return None
    segmentation = _json_value(metadata, "00080016") in SEGMENTATION_SOP_CLASS_UIDS
    if segmentation:
        identifiers = [
            str(_json_value(item, "00620004"))
            for item in metadata.get("00620002", {}).get("Value", [])
        ]
        channel_path = ("0062000A", "0062000B")
    else:
        identifiers = [
            str(_json_value(item, "00480106"))
            for item in metadata.get("00480105", {}).get("Value", [])
        ]
        channel_path = ("00480207", "00480106")
    lookup = {identifier: i for i, identifier in enumerate(identifiers)}
    n = len(items)
    positions = np.empty((n, 2), dtype=np.int64)
    z_offsets = np.zeros(n, dtype=np.float64)
    channels = np.zeros(n, dtype=np.int64)
    for i, item in enumerate(items):
        position = _json_value(item, "0048021A")
        if position is None:
            return None
        row = _json_value(position, "0048021F")
        column = _json_value(position, "0048021E")
        if row is None or column is None:
            return None
        positions[i] = (int(row) - 1, int(column) - 1)
        z = _json_value(position, "0040074A")
        if z is not None:
            z_offsets[i] = float(z)
        if len(identifiers) > 1:
            channel_item = _json_value(item, channel_path[0])
            name = (
                None
                if channel_item is None
                else _json_value(channel_item, channel_path[1])
            )
            if str(name) not in lookup:
                return None
            channels[i] = lookup[str(name)]
    return FrameTable(positions, channels, z_offsets)


def _tiled_full_table(
    image: Dataset,
    number_of_frames: int,
    rows: int,
    columns: int,
    total_rows: int,
    total_columns: int,
) -> FrameTable:
    grid_rows = -(-total_rows // rows)
    grid_columns = -(-total_columns // columns)
    planes = int(element_value(image, "TotalPixelMatrixFocalPlanes") or 1)
    offset = int(element_value(image, "ConcatenationFrameOffsetNumber") or 0)
    # Frame k of the image is frame offset + k of the whole series of tile
    # grids (one per focal plane, channel by channel). The grid's positions
    # are laid out once and repeated, without a division per frame: opening a
    # slide of 100 000 frames should not cost a pass of integer arithmetic
    # over each of them.
    per_grid = grid_rows * grid_columns
    grid = np.empty((grid_rows, grid_columns, 2), dtype=np.int64)
    grid[..., 0] = (np.arange(grid_rows, dtype=np.int64) * rows)[:, None]
    grid[..., 1] = (np.arange(grid_columns, dtype=np.int64) * columns)[None, :]
    start = offset % per_grid
    repeats = -(-(start + number_of_frames) // per_grid)
    if repeats > 1:
        grid = np.tile(grid.reshape(-1, 2), (repeats, 1))
    positions = grid.reshape(-1, 2)[start : start + number_of_frames]
    first_grid = offset // per_grid
    grid_of_frame = np.repeat(
        np.arange(first_grid, first_grid + repeats, dtype=np.int64), per_grid
    )[start : start + number_of_frames]
    z0 = 0.0
    spacing_um = 0.0
    plane_position = _shared_item(image, "PlanePositionSlideSequence")
    if plane_position is not None:
        z = element_value(plane_position, "ZOffsetInSlideCoordinateSystem")
        z0 = 0.0 if z is None else float(z)
    measures = _shared_item(image, "PixelMeasuresSequence")
    if measures is not None:
        spacing = element_value(measures, "SpacingBetweenSlices")
        spacing_um = 0.0 if spacing is None else float(spacing) * 1000.0
    if planes == 1:
        return FrameTable(positions, grid_of_frame, np.full(number_of_frames, z0))
    plane = grid_of_frame % planes
    z_offsets = z0 + plane.astype(np.float64) * (spacing_um if spacing_um else 1.0)
    return FrameTable(positions, grid_of_frame // planes, z_offsets)


def _per_frame_table(image: Dataset, per_frame: Sequence[Dataset]) -> FrameTable:
    uid = image.get("SOPInstanceUID")
    n = len(per_frame)
    positions = np.empty((n, 2), dtype=np.int64)
    z_offsets = np.zeros(n, dtype=np.float64)
    channels = np.zeros(n, dtype=np.int64)
    identifiers = get_channel_identifiers(image)
    channel_lookup = {identifier: i for i, identifier in enumerate(identifiers)}
    sop_class_uid = image.get("SOPClassUID")
    channel_keyword, channel_attribute = (
        ("SegmentIdentificationSequence", "ReferencedSegmentNumber")
        if sop_class_uid in SEGMENTATION_SOP_CLASS_UIDS and not _is_label_map(image)
        else ("OpticalPathIdentificationSequence", "OpticalPathIdentifier")
    )
    shared_channel = _shared_item(image, channel_keyword)
    shared_position = _shared_item(image, "PlanePositionSlideSequence")
    for i, item in enumerate(per_frame):
        plane = item.get("PlanePositionSlideSequence")
        position = plane[0] if plane else shared_position
        if position is None:
            raise MetadataError(
                f"frame {i + 1} has no Plane Position (Slide) Sequence", uid
            )
        try:
            positions[i, 0] = int(position.RowPositionInTotalImagePixelMatrix) - 1
            positions[i, 1] = int(position.ColumnPositionInTotalImagePixelMatrix) - 1
        except AttributeError:
            raise MetadataError(
                f"frame {i + 1} has no Row/Column Position In Total Image Pixel Matrix",
                uid,
            ) from None
        z = position.get("ZOffsetInSlideCoordinateSystem")
        z_offsets[i] = float(z) if z is not None else 0.0
        channel_items = item.get(channel_keyword)
        channel_item = channel_items[0] if channel_items else shared_channel
        if channel_item is not None and len(identifiers) > 1:
            identifier = str(channel_item.get(channel_attribute))
            if identifier not in channel_lookup:
                raise MetadataError(
                    f"frame {i + 1} refers to unknown channel {identifier!r}", uid
                )
            channels[i] = channel_lookup[identifier]
    return FrameTable(positions, channels, z_offsets)


def rank_focal_planes(z_offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index focal planes by increasing z offset.

    Parameters
    ----------
    z_offsets: numpy.ndarray
        Z offset of each frame in micrometers

    Returns
    -------
    planes: numpy.ndarray
        Distinct z offsets in increasing order
    indices: numpy.ndarray
        Zero-based focal plane index of each frame

    """
    rounded = np.round(z_offsets, 6)
    if rounded.size and (rounded == rounded[0]).all():  # one plane: no sort
        return rounded[:1].copy(), np.zeros(rounded.size, dtype=np.intp)
    planes, indices = np.unique(rounded, return_inverse=True)
    return planes, indices.reshape(-1)


def sort_concatenation_parts(parts: Sequence[Dataset]) -> list[Dataset]:
    """Order the instances of a concatenation and check they belong together.

    Parameters
    ----------
    parts: Sequence[pydicom.Dataset]
        Metadata of one instance, or of the instances of one concatenation

    Returns
    -------
    List[pydicom.Dataset]
        Instances in In-concatenation Number order

    Raises
    ------
    dicomslide.errors.MetadataError
        When the instances are not parts of one concatenation

    """
    parts = list(parts)
    if not parts:
        raise MetadataError("no image metadata given")
    if len(parts) == 1:
        return parts
    uids = {str(part.get("ConcatenationUID", "")) for part in parts}
    if len(uids) != 1 or "" in uids:
        raise MetadataError(
            "several instances given for one image, but they are not parts of "
            f"one concatenation (Concatenation UIDs: {sorted(uids)})",
            str(parts[0].get("SOPInstanceUID")),
        )
    ordered = sorted(parts, key=lambda part: int(part.get("InConcatenationNumber", 0)))
    numbers = [int(part.get("InConcatenationNumber", 0)) for part in ordered]
    if len(set(numbers)) != len(numbers):
        raise MetadataError(
            f"concatenation has duplicate In-concatenation Numbers {numbers}",
            str(parts[0].get("SOPInstanceUID")),
        )
    return ordered
