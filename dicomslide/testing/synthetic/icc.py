"""ICC profiles: LittleCMS's sRGB and a hand-built wide-gamut matrix/TRC profile."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence

import numpy as np
from PIL import ImageCms


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
    return np.asarray(adapt @ m)


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


def icc_profile_srgb() -> bytes:
    """Return the sRGB ICC profile (shortcut for ``icc_profile("srgb")``).

    Returns
    -------
    bytes
        The profile.
    """
    return icc_profile("srgb")
