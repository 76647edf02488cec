"""Large synthetic TILED_FULL JPEG slides, for the "open-large" workload.

Real slides are 100 000 px wide with 100 000+ frames per level. What such a
slide costs to open is what a reader does with its pixel data before the
first pixel: a reader that walks every fragment item reads the whole level
file, one that takes the Basic Offset Table reads a few KiB. The slides here
have one level of 256×256 JPEG Baseline (YCbCr 4:2:0) frames:

=================  ===============  ========  =====================
name               matrix (w × h)   frames    Basic Offset Table
=================  ===============  ========  =====================
``large-40k``      40 000 × 30 000  18 526    filled
``large-100k``     100 000 × 80 000 122 383   filled
``large-100k-nobot`` 100 000 × 80 000 122 383   empty
=================  ===============  ========  =====================

Writing one takes seconds, not the minutes of encoding 122 383 tiles: a set
of :data:`DISTINCT_TILES` tiles is encoded once (deterministic content,
simplejpeg), and frame n is tile ``choice[n]`` of a seeded generator, so every
frame's pixels are known (:func:`expected_region`). The header is written by
pydicom; the encapsulated pixel data are written directly. The files are
cached in ``benchmarks/.cache/`` under a name that encodes the parameters and
:data:`FORMAT_VERSION`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

#: Bump when the written files change, so stale caches are not reused.
FORMAT_VERSION = 1
TILE = 256
DISTINCT_TILES = 48
SEED = 20261207
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
UID_ROOT = "1.2.826.0.1.3680043.8.498.78"

_ITEM = b"\xfe\xff\x00\xe0"
_SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
_PIXEL_DATA_OB = b"\xe0\x7f\x10\x00OB\x00\x00\xff\xff\xff\xff"


@dataclass(frozen=True)
class LargeSlideSpec:
    """What a large slide is."""

    name: str
    rows: int
    columns: int
    basic_offset_table: bool

    @property
    def grid(self) -> tuple[int, int]:
        """Tile rows and columns."""
        return -(-self.rows // TILE), -(-self.columns // TILE)

    @property
    def number_of_frames(self) -> int:
        """Frames of the level."""
        return self.grid[0] * self.grid[1]


SPECS = {
    spec.name: spec
    for spec in (
        LargeSlideSpec("large-40k", 30_000, 40_000, True),
        LargeSlideSpec("large-100k", 80_000, 100_000, True),
        LargeSlideSpec("large-100k-nobot", 80_000, 100_000, False),
    )
}


@dataclass(frozen=True)
class LargeSlide:
    """A written large slide."""

    spec: LargeSlideSpec
    folder: Path
    path: Path
    write_seconds: float | None
    """Seconds it took to write, or None when it came from the cache."""


@cache
def encoded_tiles() -> tuple[bytes, ...]:
    """The distinct JPEG tiles the frames are made of (deterministic)."""
    import simplejpeg

    rng = np.random.default_rng(SEED)
    y, x = np.mgrid[0:TILE, 0:TILE] / TILE
    tiles = []
    for _ in range(DISTINCT_TILES):
        # stained tissue: pink and purple blobs over a pale background, grain
        fx, fy, phase = rng.uniform(1, 4), rng.uniform(1, 4), rng.uniform(0, 6.3)
        blobs = np.sin(2 * np.pi * fx * x + phase) * np.cos(2 * np.pi * fy * y)
        tissue = 0.5 + 0.5 * np.tanh(4 * (blobs - rng.uniform(-0.6, 0.4)))
        base = np.array([235.0, 225.0, 235.0])
        stain = rng.uniform([150, 60, 130], [220, 140, 200])
        pixels = base + tissue[..., None] * (stain - base)
        pixels += rng.normal(0, 2.5, pixels.shape)
        array = np.clip(pixels, 0, 255).astype(np.uint8)
        tiles.append(
            simplejpeg.encode_jpeg(
                array, quality=80, colorspace="RGB", colorsubsampling="420"
            )
        )
    return tuple(tiles)


@cache
def decoded_tiles() -> tuple[np.ndarray, ...]:
    """The distinct tiles decoded (simplejpeg, as dicomslide decodes them)."""
    import simplejpeg

    return tuple(
        simplejpeg.decode_jpeg(data, colorspace="RGB") for data in encoded_tiles()
    )


def tile_choice(spec: LargeSlideSpec) -> np.ndarray:
    """Which distinct tile each frame holds (row-major frame order)."""
    rng = np.random.default_rng([SEED, spec.number_of_frames])
    return rng.integers(0, DISTINCT_TILES, spec.number_of_frames)


def expected_region(
    spec: LargeSlideSpec, row: int, column: int, height: int, width: int
) -> np.ndarray:
    """The pixels a reader returns for a region inside the matrix."""
    choice = tile_choice(spec)
    tiles = decoded_tiles()
    out = np.empty((height, width, 3), np.uint8)
    for grid_row in range(row // TILE, (row + height - 1) // TILE + 1):
        for grid_column in range(column // TILE, (column + width - 1) // TILE + 1):
            tile = tiles[choice[grid_row * spec.grid[1] + grid_column]]
            top, left = grid_row * TILE, grid_column * TILE
            r0, c0 = max(row, top), max(column, left)
            r1 = min(row + height, top + TILE)
            c1 = min(column + width, left + TILE)
            out[r0 - row : r1 - row, c0 - column : c1 - column] = tile[
                r0 - top : r1 - top, c0 - left : c1 - left
            ]
    return out


def _header(spec: LargeSlideSpec) -> object:
    """The data set without pixel data (the sparse slide's, made TILED_FULL JPEG)."""
    from pydicom.uid import UID

    from benchmarks.sparse import _dataset

    ds = _dataset(spec.number_of_frames)
    key = list(SPECS).index(spec.name) + 1
    for keyword, part in [
        ("StudyInstanceUID", 1),
        ("SeriesInstanceUID", 2),
        ("SOPInstanceUID", 3),
        ("FrameOfReferenceUID", 4),
        ("PyramidUID", 7),
    ]:
        setattr(ds, keyword, f"{UID_ROOT}.{key}.{part}")
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = UID(JPEG_BASELINE)
    ds.PatientID = ds.ContainerIdentifier = f"BENCH-{spec.name.upper()}"
    ds.PatientName = "Bench^Large"
    ds.ManufacturerModelName = "benchmarks/largeslides.py"
    ds.DimensionOrganizationType = "TILED_FULL"
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.Rows = ds.Columns = TILE
    ds.TotalPixelMatrixRows, ds.TotalPixelMatrixColumns = spec.rows, spec.columns
    spacing = ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    millimetres = float(spacing.PixelSpacing[0])
    ds.ImagedVolumeWidth = spec.columns * millimetres
    ds.ImagedVolumeHeight = spec.rows * millimetres
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionMethod = "ISO_10918_1"
    ds.LossyImageCompressionRatio = 12
    return ds


def _write(spec: LargeSlideSpec, path: Path) -> None:
    tiles = [data + b"\0" * (len(data) % 2) for data in encoded_tiles()]
    choice = tile_choice(spec)
    partial = path.with_suffix(".partial")
    _header(spec).save_as(partial, enforce_file_format=True)  # type: ignore[attr-defined]
    sizes = np.array([8 + len(t) for t in tiles], np.int64)[choice]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    if offsets[-1] >= 2**32:
        raise ValueError("pixel data too large for a Basic Offset Table")
    items = [_ITEM + len(t).to_bytes(4, "little") + t for t in tiles]
    with open(partial, "ab") as out:
        out.write(_PIXEL_DATA_OB)
        table = offsets.astype("<u4").tobytes() if spec.basic_offset_table else b""
        out.write(_ITEM + len(table).to_bytes(4, "little") + table)
        for start in range(0, len(choice), 4096):
            out.write(b"".join(items[i] for i in choice[start : start + 4096]))
        out.write(_SEQUENCE_DELIMITER)
    partial.replace(path)


def ensure_large_slide(cache_dir: Path, name: str) -> LargeSlide:
    """Return a cached large slide, writing it first when missing.

    Parameters
    ----------
    cache_dir: pathlib.Path
        Folder for cached benchmark data (``benchmarks/.cache``)
    name: str
        A key of :data:`SPECS`

    Returns
    -------
    LargeSlide
        The slide; its folder holds exactly one DICOM file

    """
    spec = SPECS[name]
    folder = cache_dir / f"{name}-v{FORMAT_VERSION}-{spec.columns}x{spec.rows}"
    path = folder / "level0.dcm"
    cache_dir.mkdir(parents=True, exist_ok=True)
    ignore = cache_dir / ".gitignore"
    if not ignore.exists():  # keeps the cache out of git even without a rule
        ignore.write_text("# written by the benchmarks\n*\n")
    if path.exists():
        return LargeSlide(spec, folder, path, None)
    start = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    _write(spec, path)
    return LargeSlide(spec, folder, path, time.perf_counter() - start)


if __name__ == "__main__":  # pragma: no cover - manual use
    import sys

    for slide_name in sys.argv[2:] or list(SPECS):
        print(ensure_large_slide(Path(sys.argv[1]), slide_name))
