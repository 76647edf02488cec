"""Graphic annotations on a slide: the area an annotation covers.

Annotations are highdicom's ``Scoord3DContentItem`` (SR spatial coordinates in
the slide coordinate system, mm). Only their values and graphic type are
read, so highdicom need not be imported to use them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Graphic types given by the endpoints of their axes
_ELLIPTIC = frozenset({"ELLIPSE", "ELLIPSOID"})


def annotation_bounds(annotation: Any) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest (x, y) of the area an annotation covers.

    Parameters
    ----------
    annotation: highdicom.sr.Scoord3DContentItem
        Graphic annotation: POINT, MULTIPOINT, POLYLINE, POLYGON, ELLIPSE or
        ELLIPSOID

    Returns
    -------
    Tuple[numpy.ndarray, numpy.ndarray]
        (x, y) of the lower and of the upper corner of the bounding box in
        millimeter

    """
    points = np.asarray(annotation.value, dtype=np.float64).reshape(-1, 3)[:, :2]
    graphic_type = annotation.graphic_type
    if str(getattr(graphic_type, "value", graphic_type)) in _ELLIPTIC:
        # endpoints of the major axis, then of the minor axis (and, for an
        # ellipsoid, of a third axis that is ignored in the slide plane)
        center = (points[0] + points[1]) / 2.0
        major = (points[1] - points[0]) / 2.0
        minor = (points[3] - points[2]) / 2.0
        half = np.sqrt(major**2 + minor**2)
        return center - half, center + half
    return points.min(axis=0), points.max(axis=0)
