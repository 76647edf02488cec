"""Workload definitions: deterministic lists of reads, the same for every reader.

A workload is built once per variant, in the parent process, from the level
geometry that :mod:`benchmarks.limit` reads with pydicom (the VOLUME levels of
the series, largest first: the *canonical* levels).  Every implementation gets
the very same list of :class:`Read` objects; the adapters translate the
canonical level index into their own (dicomslide, for instance, also counts a
THUMBNAIL image as a level, wsidicom numbers levels by their power of two).

Keys
----
a
    random unaligned 256×256 reads at level 0
b
    random 1024×1024 reads at level 0
c
    one whole level, the one whose width is closest to 1000 px
d
    row-major scan of 512×512 patches over a 4096×4096 window at level 0
    (centred; clamped to the level size when the level is smaller)
e
    folder path to first pixel: open + one 256×256 read, each run in a fresh
    subprocess
open-sparse
    the same as (e) on the synthetic TILED_SPARSE slide (:mod:`benchmarks.sparse`)
f
    DICOMweb against Orthanc: measured by its own runner, :mod:`benchmarks.web`
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Kind = Literal["reads", "open", "dicomweb"]


@dataclass(frozen=True)
class Level:
    """Geometry of one canonical pyramid level."""

    index: int
    rows: int
    columns: int
    tile_rows: int
    tile_columns: int
    downsample: float
    """Level-0 columns divided by this level's columns."""

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of the total pixel matrix."""
        return (self.rows, self.columns)


@dataclass(frozen=True)
class Read:
    """One region read: level index and offset in that level's pixels."""

    level: int
    row: int
    column: int
    height: int
    width: int

    @property
    def pixels(self) -> int:
        """Number of pixels the read returns."""
        return self.height * self.width

    def as_list(self) -> list[int]:
        """JSON-friendly form."""
        return [self.level, self.row, self.column, self.height, self.width]


@dataclass
class Workload:
    """A built workload for one variant."""

    key: str
    title: str
    kind: Kind
    reads: list[Read]
    check: list[int]
    """Indices into `reads` whose pixels are cross-checked."""
    notes: list[str] = field(default_factory=list)

    @property
    def pixels(self) -> int:
        """Pixels returned by all reads together."""
        return sum(read.pixels for read in self.reads)


@dataclass(frozen=True)
class Sizes:
    """How many reads each workload makes (default vs ``--quick``)."""

    small_reads: int = 200
    large_reads: int = 50
    scan_window: int = 4096
    scan_patch: int = 512
    open_repeats: int = 5
    sparse_repeats: int = 3

    @classmethod
    def quick(cls) -> Sizes:
        """Fewer reads, for a smoke test."""
        return cls(
            small_reads=20,
            large_reads=5,
            scan_window=1024,
            scan_patch=512,
            open_repeats=2,
            sparse_repeats=1,
        )


def _rng(seed: int, key: str) -> np.random.Generator:
    return np.random.default_rng([seed, *key.encode()])


def _unaligned(value: int, tile: int, limit: int) -> int:
    """Move an offset that falls on a tile boundary by one pixel."""
    if value % tile == 0:
        value = value + 1 if value + 1 <= limit else value - 1
    return max(0, value)


def random_reads(
    level: Level, count: int, size: int, seed: int, key: str, unaligned: bool
) -> list[Read]:
    """Uniformly random reads of `size`×`size` pixels inside `level`.

    Parameters
    ----------
    level: Level
        Level to read from
    count: int
        Number of reads
    size: int
        Edge length of the square reads (clamped to the level size)
    seed: int
        Base seed; combined with `key`
    key: str
        Workload key, so two workloads get different positions
    unaligned: bool
        Whether offsets on a tile boundary are moved by one pixel

    Returns
    -------
    list[Read]
        The reads, in order

    """
    rng = _rng(seed, key)
    height, width = min(size, level.rows), min(size, level.columns)
    rows = rng.integers(0, level.rows - height + 1, size=count)
    columns = rng.integers(0, level.columns - width + 1, size=count)
    reads = []
    for row, column in zip(rows.tolist(), columns.tolist()):
        if unaligned:
            row = _unaligned(row, level.tile_rows, level.rows - height)
            column = _unaligned(column, level.tile_columns, level.columns - width)
        reads.append(Read(level.index, row, column, height, width))
    return reads


def closest_level(levels: list[Level], width: int) -> Level:
    """The level whose width is closest to `width` (the larger one on a tie)."""
    return min(levels, key=lambda level: (abs(level.columns - width), -level.columns))


def scan_reads(level: Level, window: int, patch: int) -> tuple[list[Read], list[str]]:
    """Row-major patches over a centred window (every pixel once).

    The window is clamped to the level size; patches at its right and bottom
    edge are cut to the window when it is not a multiple of `patch`.

    Returns
    -------
    tuple[list[Read], list[str]]
        The reads and notes about clamping

    """
    notes = []
    height, width = min(window, level.rows), min(window, level.columns)
    if (height, width) != (window, window):
        notes.append(
            f"{window}×{window} window clamped to {height}×{width} (rows×columns) "
            f"= the level-0 size {level.rows}×{level.columns}"
            if (height, width) == level.shape
            else f"{window}×{window} window clamped to {height}×{width} (rows×columns)"
        )
    top, left = (level.rows - height) // 2, (level.columns - width) // 2
    reads = []
    for row in range(top, top + height, patch):
        for column in range(left, left + width, patch):
            reads.append(
                Read(
                    level.index,
                    row,
                    column,
                    min(patch, top + height - row),
                    min(patch, left + width - column),
                )
            )
    notes.append(
        f"window origin (row, column) = ({top}, {left}), "
        f"{len(reads)} patches of ≤{patch}×{patch}"
    )
    return reads, notes


def _spread(count: int, wanted: int = 3) -> list[int]:
    """A few indices spread over range(count): first, middle, last."""
    return sorted({0, count // 2, count - 1})[:wanted] if count else []


@dataclass(frozen=True)
class WorkloadSpec:
    """A registered workload."""

    key: str
    title: str
    kind: Kind
    implemented: bool
    build: Callable[[list[Level], int, Sizes], Workload] | None
    """Builder from the canonical levels, the seed and the sizes."""


def _build_a(levels: list[Level], seed: int, sizes: Sizes) -> Workload:
    reads = random_reads(levels[0], sizes.small_reads, 256, seed, "a", unaligned=True)
    return Workload("a", SPECS["a"].title, "reads", reads, _spread(len(reads)))


def _build_b(levels: list[Level], seed: int, sizes: Sizes) -> Workload:
    reads = random_reads(levels[0], sizes.large_reads, 1024, seed, "b", unaligned=True)
    notes = []
    if reads and (reads[0].height, reads[0].width) != (1024, 1024):
        notes.append(f"read size clamped to {reads[0].height}×{reads[0].width}")
    return Workload("b", SPECS["b"].title, "reads", reads, _spread(len(reads)), notes)


def _build_c(levels: list[Level], seed: int, sizes: Sizes) -> Workload:
    level = closest_level(levels, 1000)
    read = Read(level.index, 0, 0, level.rows, level.columns)
    note = (
        f"level {level.index} of the VOLUME levels: {level.columns}×{level.rows} "
        f"(width×height), downsample {level.downsample:g}"
    )
    return Workload("c", SPECS["c"].title, "reads", [read], [0], [note])


def _build_d(levels: list[Level], seed: int, sizes: Sizes) -> Workload:
    reads, notes = scan_reads(levels[0], sizes.scan_window, sizes.scan_patch)
    return Workload("d", SPECS["d"].title, "reads", reads, _spread(len(reads)), notes)


def _build_e(levels: list[Level], seed: int, sizes: Sizes) -> Workload:
    read = random_reads(levels[0], 1, 256, seed, "a", unaligned=True)[0]
    note = (
        f"fresh subprocess per run, {sizes.open_repeats} runs per implementation, "
        "interleaved; time = open + first read (imports reported separately); the "
        "OS page cache is warm"
    )
    return Workload("e", SPECS["e"].title, "open", [read], [0], [note])


def build_sparse_workload(rows: int, columns: int, repeats: int) -> Workload:
    """Workload "open-sparse" for the synthetic slide.

    The read lies in the first tile rows, which hold no omitted tile.
    """
    read = Read(0, 8, 8, min(256, rows - 8), min(256, columns - 8))
    note = (
        f"fresh subprocess per run, up to {repeats} runs per implementation "
        "(a single run when one takes longer than the slow-run cutoff)"
    )
    return Workload(
        "open-sparse", SPECS["open-sparse"].title, "open", [read], [0], [note]
    )


SPECS: dict[str, WorkloadSpec] = {
    "a": WorkloadSpec(
        "a", "random unaligned 256×256 reads, level 0", "reads", True, _build_a
    ),
    "b": WorkloadSpec("b", "random 1024×1024 reads, level 0", "reads", True, _build_b),
    "c": WorkloadSpec("c", "one whole level ≈1000 px wide", "reads", True, _build_c),
    "d": WorkloadSpec(
        "d",
        "row-major 512×512 scan of a 4096×4096 window, level 0",
        "reads",
        True,
        _build_d,
    ),
    "e": WorkloadSpec(
        "e", "folder path to first pixel (open + 256×256)", "open", True, _build_e
    ),
    "open-sparse": WorkloadSpec(
        "open-sparse",
        "synthetic TILED_SPARSE (≥100 000 frames): path to first pixel",
        "open",
        True,
        None,
    ),
    # The DICOMweb workload has its own runner, benchmarks.web.
    "f": WorkloadSpec(
        "f",
        "DICOMweb against Orthanc (python -m benchmarks.web)",
        "dicomweb",
        False,
        None,
    ),
}

#: Workloads a default run executes (f runs in benchmarks.web).
DEFAULT_WORKLOADS = ["a", "b", "c", "d", "e", "open-sparse"]


def build(key: str, levels: list[Level], seed: int, sizes: Sizes) -> Workload:
    """Build a corpus workload (a–e) for a variant.

    Raises
    ------
    NotImplementedError
        For workloads without a builder (f, and open-sparse which has its own)

    """
    spec = SPECS[key]
    if spec.build is None:
        raise NotImplementedError(f"workload {key!r} has no corpus builder")
    return spec.build(levels, seed, sizes)
