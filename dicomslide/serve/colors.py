"""Colours of overlays: segments in their recommended colour, maps through a colour map.

A segment is painted in its Recommended Display CIELab Value (a colour of a
fixed palette by segment number when it has none), its mask (or fractional
value) being the alpha. A parametric map is painted through a perceptually
uniform blue-green-yellow colour map spanning its finite values; values that
are not finite are transparent.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pydicom.dataset import Dataset

from dicomslide.channels import channel_item
from dicomslide.enum import ChannelTypes

__all__ = [
    "COLOR_MAP",
    "lab_to_rgb",
    "parameter_painter",
    "segment_color",
    "segment_painter",
]

#: Anchors of the parametric map colour map (dark blue to yellow), evenly spaced
COLOR_MAP = np.array(
    [
        (68, 1, 84),
        (72, 40, 120),
        (62, 74, 137),
        (49, 104, 142),
        (38, 130, 142),
        (31, 158, 137),
        (53, 183, 121),
        (110, 206, 88),
        (181, 222, 43),
        (253, 231, 37),
    ],
    dtype=np.float64,
)

#: Colours of segments that recommend none, by segment number
_PALETTE = (
    (230, 25, 75),
    (60, 180, 75),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
)


def lab_to_rgb(lab: tuple[int, int, int]) -> tuple[int, int, int]:
    """A DICOM CIELab value (three 16-bit numbers) as 8-bit sRGB.

    Parameters
    ----------
    lab: Tuple[int, int, int]
        Recommended Display CIELab Value: L*, a*, b* scaled to 0-65535

    Returns
    -------
    Tuple[int, int, int]
        Red, green, blue

    """
    lightness = lab[0] / 65535.0 * 100.0
    a = lab[1] / 65535.0 * 255.0 - 128.0
    b = lab[2] / 65535.0 * 255.0 - 128.0
    fy = (lightness + 16.0) / 116.0
    fx, fz = fy + a / 500.0, fy - b / 200.0

    def inverse(f: float) -> float:
        return f**3 if f > 6.0 / 29.0 else 3.0 * (6.0 / 29.0) ** 2 * (f - 4.0 / 29.0)

    # D50 white, as DICOM's CIELab values are
    x, y, z = 0.9642 * inverse(fx), inverse(fy), 0.8249 * inverse(fz)
    # Bradford-adapted XYZ (D50) to linear sRGB
    linear = (
        3.1339 * x - 1.6169 * y - 0.4906 * z,
        -0.9788 * x + 1.9161 * y + 0.0335 * z,
        0.0719 * x - 0.2290 * y + 1.4052 * z,
    )

    def encode(value: float) -> int:
        value = min(max(value, 0.0), 1.0)
        srgb = (
            12.92 * value if value <= 0.0031308 else 1.055 * value ** (1 / 2.4) - 0.055
        )
        return round(srgb * 255.0)

    red, green, blue = (encode(v) for v in linear)
    return red, green, blue


def segment_color(metadata: Dataset, identifier: str) -> tuple[int, int, int]:
    """The colour a segment is shown in.

    Parameters
    ----------
    metadata: pydicom.Dataset
        Metadata of the segmentation
    identifier: str
        Segment Number

    Returns
    -------
    Tuple[int, int, int]
        Red, green, blue

    """
    item = channel_item(metadata, ChannelTypes.SEGMENT, identifier)
    lab = item.get("RecommendedDisplayCIELabValue") if item is not None else None
    if lab is not None and len(lab) == 3:
        return lab_to_rgb((int(lab[0]), int(lab[1]), int(lab[2])))
    number = int(identifier) if identifier.isdigit() else 1
    return _PALETTE[(number - 1) % len(_PALETTE)]


def segment_label(metadata: Dataset, identifier: str) -> str:
    """The label of a segment (its Segment Label, else its number).

    Parameters
    ----------
    metadata: pydicom.Dataset
        Metadata of the segmentation
    identifier: str
        Segment Number

    Returns
    -------
    str
        Label

    """
    item = channel_item(metadata, ChannelTypes.SEGMENT, identifier)
    label = str(item.get("SegmentLabel", "")) if item is not None else ""
    return label or f"segment {identifier}"


def segment_painter(
    metadata: Dataset, identifier: str
) -> Callable[[np.ndarray], np.ndarray]:
    """A function that paints a segment's mask as RGBA.

    Parameters
    ----------
    metadata: pydicom.Dataset
        Metadata of the segmentation
    identifier: str
        Segment Number

    Returns
    -------
    Callable[[numpy.ndarray], numpy.ndarray]
        Takes mask values (rows, columns, 1), returns RGBA (rows, columns, 4)

    """
    color = segment_color(metadata, identifier)
    maximum = 1
    if str(metadata.get("SegmentationType", "")) == "FRACTIONAL":
        maximum = int(metadata.get("MaximumFractionalValue", 255))

    def paint(mask: np.ndarray) -> np.ndarray:
        values = mask[..., 0].astype(np.float64)
        rgba = np.empty(values.shape + (4,), dtype=np.uint8)
        alpha = np.round(np.clip(values / maximum, 0.0, 1.0) * 255.0)
        rgba[..., :3] = color
        rgba[..., :3][alpha == 0] = 0  # transparent is (0, 0, 0, 0)
        rgba[..., 3] = alpha
        return rgba

    return paint


class _ParameterPainter:
    """Paints parametric values through :data:`COLOR_MAP`."""

    def __init__(self, low: float, high: float) -> None:
        self.value_range = (low, high)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        plane = values[..., 0].astype(np.float64)
        finite = np.isfinite(plane)
        low, high = self.value_range
        scaled = np.clip(
            (np.where(finite, plane, low) - low) / (high - low or 1.0), 0, 1
        )
        position = scaled * (len(COLOR_MAP) - 1)
        below = np.minimum(position.astype(np.int64), len(COLOR_MAP) - 2)
        weight = (position - below)[..., None]
        colors = COLOR_MAP[below] * (1.0 - weight) + COLOR_MAP[below + 1] * weight
        rgba = np.empty(plane.shape + (4,), dtype=np.uint8)
        rgba[..., :3] = np.round(colors)
        rgba[..., 3] = np.where(finite, 255, 0)
        rgba[..., :3][~finite] = 0
        return rgba


def parameter_painter(sample: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A function that paints parametric values through the colour map.

    Parameters
    ----------
    sample: numpy.ndarray
        Values that give the range the colour map spans (e.g. the smallest
        level of the map)

    Returns
    -------
    Callable[[numpy.ndarray], numpy.ndarray]
        Takes values (rows, columns, 1), returns RGBA (rows, columns, 4); its
        ``value_range`` attribute is the (low, high) the colour map spans

    """
    values = sample[np.isfinite(sample)] if sample.dtype.kind == "f" else sample
    low = float(values.min()) if values.size else 0.0
    high = float(values.max()) if values.size else 1.0
    return _ParameterPainter(low, high)
