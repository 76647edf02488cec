"""OpenSlide's test slides and the slides these tests write with tifffile.

Shared by the facade's tests (``test_openslide_native``, ``test_deepzoom``):
where OpenSlide's fixtures are, pixel patterns where every pixel counts, tiled
TIFF and Aperio SVS writers, and the comparison of two PIL images.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(
    os.environ.get(
        "DICOMSLIDE_OPENSLIDE_FIXTURES",
        ROOT.parent / "shared" / "data" / "openslide-fixtures",
    )
)
SMALL = FIXTURES / "small.svs"
BOXES = FIXTURES / "boxes.tiff"
BOXES_PNG = FIXTURES / "boxes.png"
BOXES_PNG_NO_ICC = FIXTURES / "boxes-no-icc.png"
DICOM = FIXTURES / "boxes_0.dcm"
DICOM_THUMBNAIL = FIXTURES / "boxes_1.dcm"
UNREADABLE = FIXTURES / "unreadable.svs"
UNOPENABLE = FIXTURES / "unopenable.tiff"
UNICODE_SVS = FIXTURES / "\N{NEUTRAL FACE}.svs"
UNICODE_PNG = FIXTURES / "\N{NEUTRAL FACE}.png"


def pattern(width: int, height: int, seed: int = 0) -> np.ndarray:
    """RGB gradients, a checkerboard and speckles: every pixel counts."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack(
        [
            x * 255 // max(width - 1, 1),
            y * 255 // max(height - 1, 1),
            ((x // 16 + y // 16) % 2) * 200 + seed,
        ],
        axis=-1,
    ).astype(np.uint8)
    speckles = rng.random((height, width)) < 0.05
    image[speckles] = rng.integers(0, 256, (int(speckles.sum()), 3), dtype=np.uint8)
    return image


def pyramid(width: int, height: int, factors: tuple[int, ...]) -> list[np.ndarray]:
    base = pattern(width, height)
    image = Image.fromarray(base)
    return [base] + [
        np.asarray(image.resize((width // f, height // f), Image.Resampling.BOX))
        for f in factors
    ]


def icc_profile() -> bytes:
    with Image.open(BOXES_PNG) as image:
        return image.info["icc_profile"]


def write_generic_tiff(path: Path, width: int = 613, height: int = 457) -> Path:
    """A generic tiled TIFF: three levels with odd downsamples, an ICC profile."""
    import tifffile

    with tifffile.TiffWriter(path) as writer:
        for index, level in enumerate(pyramid(width, height, (2, 5))):
            writer.write(
                level,
                tile=(64, 64),
                compression="zlib",
                photometric="rgb",
                iccprofile=icc_profile() if index == 0 else None,
                resolution=(40000, 40000),
                resolutionunit="CENTIMETER",
                subfiletype=0 if index == 0 else 1,
            )
    return path


def write_aperio_svs(path: Path, width: int = 613, height: int = 457) -> Path:
    """An Aperio SVS: two levels, thumbnail, label and macro images."""
    import tifffile

    header = "Aperio Image Library v10.0.0\r\n"
    base, half = pyramid(width, height, (2,))
    thumbnail = np.asarray(Image.fromarray(base).resize((120, 90)))
    pages = [
        (base, True, f"{width}x{height} (64x64) RGB|AppMag = 20|MPP = 0.25", 0),
        (thumbnail, False, f"{width}x{height} -> 120x90", 0),
        (half, True, f"{width}x{height} -> {half.shape[1]}x{half.shape[0]}", 0),
        (pattern(100, 80, seed=1), False, "label 100x80", 1),
        (pattern(200, 90, seed=2), False, "macro 200x90", 9),
    ]
    with tifffile.TiffWriter(path) as writer:
        for image, tiled, description, subfiletype in pages:
            writer.write(
                image,
                compression="zlib",
                photometric="rgb",
                description=header + description,
                metadata=None,
                subfiletype=subfiletype,
                **({"tile": (64, 64)} if tiled else {"rowsperstrip": 16}),
            )
    return path


def assert_same_image(mine: Image.Image, theirs: Image.Image) -> None:
    assert (mine.mode, mine.size) == (theirs.mode, theirs.size)
    assert mine.tobytes() == theirs.tobytes()
    assert mine.info == theirs.info
