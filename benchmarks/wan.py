"""DICOMweb at a real network's latency: dicomslide and wsidicom through a WAN proxy.

For every corpus variant an Orthanc server is started and the variant
uploaded (as in :mod:`benchmarks.web`); both readers then talk to it through
:class:`benchmarks.wanproxy.WanProxy`, which delays each direction by half the
round trip time (``--rtt``, ms, several allowed) and optionally caps the
bandwidth (``--mbit``). Cells, each from a fresh open (caches cleared):

``open``
    client creation → open → the first (a) read's pixels
``a``
    the other random unaligned 256×256 level-0 reads of workload (a)
``b``
    random unaligned 1024×1024 level-0 reads (workload (b))
``scan``
    a ``TotalPixelMatrixSampler`` over level 0 in 256×256 regions
    (wsidicom: ``read_region`` of the same regions, row-major)
``walk``
    a Deep Zoom style tile walk at level 0: 254-pixel tiles with a 1-pixel
    overlap, a 6×6 block of them around the centre, row by row

The report gives seconds, the ratio dicomslide ÷ wsidicom, the requests and
connections counted by the proxy and the most requests it saw in flight; the
pixels of every read are compared between the two readers.

Run from the repository root::

    .venv/bin/python -m benchmarks.wan --rtt 0,25,50 [--mbit 25] [--quick]
    .venv/bin/python -m benchmarks.web --rtt 50 ...     (the same)
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from benchmarks.environment import machine_info
from benchmarks.limit import scan_series
from benchmarks.wanproxy import WanProxy
from benchmarks.web import (
    REPO,
    OrthancServer,
    corpus_dir,
    dicom_files,
    select_variants,
    versions,
    wsidicom_unavailable,
)
from benchmarks.workloads import Level, Read, random_reads

logger = logging.getLogger(__name__)

CELLS = ["open", "a", "b", "scan", "walk"]
IMPLS = ["dicomslide", "wsidicom"]
DEFAULT_VARIANTS = "V13,V05"
DEFAULT_SEED = 20251121
PATCH = 256  # sampler regions
DZ_TILE, DZ_OVERLAP, DZ_BLOCK = 254, 1, 6


# --------------------------------------------------------------------------- reads


def scan_regions(level: Level) -> list[Read]:
    """The regions a 256×256 sampler visits over `level`, cut to the level."""
    return [
        Read(
            level.index, r, c, min(PATCH, level.rows - r), min(PATCH, level.columns - c)
        )
        for r in range(0, level.rows, PATCH)
        for c in range(0, level.columns, PATCH)
    ]


def deep_zoom_walk(level: Level) -> list[Read]:
    """A 6×6 block of Deep Zoom tiles (254 + 1-pixel overlap) around the centre."""
    grid_rows = -(-level.rows // DZ_TILE)
    grid_columns = -(-level.columns // DZ_TILE)
    top = max(0, grid_rows // 2 - DZ_BLOCK // 2)
    left = max(0, grid_columns // 2 - DZ_BLOCK // 2)
    reads = []
    for row in range(top, min(grid_rows, top + DZ_BLOCK)):
        for column in range(left, min(grid_columns, left + DZ_BLOCK)):
            r0 = max(0, row * DZ_TILE - DZ_OVERLAP)
            c0 = max(0, column * DZ_TILE - DZ_OVERLAP)
            r1 = min(level.rows, (row + 1) * DZ_TILE + DZ_OVERLAP)
            c1 = min(level.columns, (column + 1) * DZ_TILE + DZ_OVERLAP)
            reads.append(Read(level.index, r0, c0, r1 - r0, c1 - c0))
    return reads


def build_cells(levels: list[Level], seed: int, quick: bool) -> dict[str, list[Read]]:
    """The reads of every cell."""
    small, large = (20, 5) if quick else (100, 20)
    a = random_reads(levels[0], small, 256, seed, "a", unaligned=True)
    b = random_reads(levels[0], large, 1024, seed, "b", unaligned=True)
    return {
        "open": a[:1],
        "a": a[1:],
        "b": b,
        "scan": scan_regions(levels[0]),
        "walk": deep_zoom_walk(levels[0]),
    }


# --------------------------------------------------------------------------- readers


class Side:
    """One reader, opened afresh for every cell."""

    name = ""

    def __init__(self, url: str, study: str, series: str) -> None:
        self.url, self.study, self.series = url, study, series

    def open(self) -> None:
        """Create the client and open the slide."""
        raise NotImplementedError

    def read(self, read: Read) -> np.ndarray:
        """Pixels of one read, (h, w, samples)."""
        raise NotImplementedError

    def scan(self, reads: list[Read]) -> Iterator[np.ndarray]:
        """Pixels of the regions of a sampler scan, in order."""
        for read in reads:
            yield self.read(read)


class Dicomslide(Side):
    """``find_slides(url, correct_color=False)`` from the server root."""

    name = "dicomslide"

    def open(self) -> None:
        import dicomslide
        import dicomslide.cache

        dicomslide.cache.get_default_cache().clear()
        self.slide = dicomslide.find_slides(self.url, correct_color=False)[0]

    def read(self, read: Read) -> np.ndarray:
        return np.asarray(
            self.slide.get_image_region(
                offset=(read.row, read.column),
                level=read.level,
                size=(read.height, read.width),
            )
        )

    def scan(self, reads: list[Read]) -> Iterator[np.ndarray]:
        import dicomslide

        image = self.slide.get_image(reads[0].level)
        matrix = image.get_total_pixel_matrix(correct_color=False)
        sampler = dicomslide.TotalPixelMatrixSampler(matrix, (PATCH, PATCH))
        for read, region in zip(reads, sampler, strict=True):
            yield np.asarray(region)[: read.height, : read.width]


class Wsidicom(Side):
    """``WsiDicom.open_web`` (study and series given) + ``read_region``."""

    name = "wsidicom"

    def open(self) -> None:
        from wsidicom import WsiDicom
        from wsidicom.web import WsiDicomWebClient

        client = WsiDicomWebClient.create_client(self.url)
        self.slide = WsiDicom.open_web(client, self.study, self.series)
        self._levels: dict[tuple[int, int], int] = {
            (level.size.height, level.size.width): level.level
            for level in self.slide.levels
        }

    def level_of(self, shape: tuple[int, int]) -> int:
        """wsidicom's level number of the level of that (rows, columns)."""
        return self._levels[shape]

    def read(self, read: Read) -> np.ndarray:
        array = np.asarray(
            self.slide.read_region(
                (read.column, read.row),
                self.level_of(self.shapes[read.level]),
                (read.width, read.height),
                as_array=True,
            )
        )
        return array[..., :3] if array.ndim == 3 and array.shape[2] == 4 else array

    shapes: list[tuple[int, int]] = []


READERS: dict[str, type[Side]] = {"dicomslide": Dicomslide, "wsidicom": Wsidicom}


# --------------------------------------------------------------------------- cells


@dataclass
class Cell:
    """One cell: implementation × variant × network × workload."""

    variant: str
    rtt_ms: float
    mbit: float | None
    cell: str
    impl: str
    seconds: float | None = None
    reads: int = 0
    requests: int = 0
    connections: int = 0
    kib_down: float = 0.0
    max_in_flight: int = 0
    mismatches: int | None = None
    error: str | None = None


def run_cell(
    side: Side,
    proxy: WanProxy,
    cell: Cell,
    reads: list[Read],
    reference: list[np.ndarray] | None,
    keep: list[np.ndarray] | None,
) -> None:
    """Open afresh and make the cell's reads, timed (the open only for ``open``)."""
    try:
        if cell.cell != "open":
            side.open()
        proxy.reset()
        start = time.perf_counter()
        if cell.cell == "open":
            side.open()
        results = side.scan(reads) if cell.cell == "scan" else map(side.read, reads)
        arrays = []
        for pixels in results:
            arrays.append(pixels)
            cell.reads += 1
        cell.seconds = time.perf_counter() - start
    except Exception as error:
        cell.error = f"{type(error).__name__}: {error}"
        logger.warning("%s %s: %s", cell.impl, cell.cell, cell.error)
        return
    time.sleep(max(0.2, 4 * proxy.rtt))  # background requests finish
    counts = proxy.reset()
    cell.requests, cell.connections = counts.requests, counts.connections
    cell.kib_down = counts.bytes_down / 1024
    cell.max_in_flight = counts.max_in_flight
    if keep is not None:
        keep.extend(arrays)
    if reference is not None:
        cell.mismatches = sum(
            mine.shape != theirs.shape or not np.array_equal(mine, theirs)
            for mine, theirs in zip(arrays, reference, strict=True)
        )


def run_variant(
    folder: Path,
    rtts: list[float],
    mbit: float | None,
    impls: list[str],
    names: list[str],
    seed: int,
    quick: bool,
) -> list[Cell]:
    """Start Orthanc, upload the variant, and measure every cell at every RTT."""
    series_levels = scan_series(folder)
    levels = [series_level.level for series_level in series_levels]
    header = series_levels[0].headers[0]
    study, series = str(header.StudyInstanceUID), str(header.SeriesInstanceUID)
    reads = build_cells(levels, seed, quick)
    Wsidicom.shapes = [level.shape for level in levels]
    cells: list[Cell] = []
    with tempfile.TemporaryDirectory(prefix="dicomslide-wan-bench-") as tmp:
        server = OrthancServer(Path(tmp))
        server.start()
        try:
            server.upload(dicom_files(folder))
            target = urlsplit(server.base_url)
            for impl in impls:  # imports and first-use costs, outside the cells
                warm = READERS[impl](server.dicomweb_url, study, series)
                warm.open()
                warm.read(reads["open"][0])
            for rtt in rtts:
                proxy = WanProxy(
                    target.hostname or "127.0.0.1",
                    int(target.port or 80),
                    rtt / 1e3,
                    mbit,
                )
                url = proxy.url("/dicom-web")
                for name in names:
                    reference: list[np.ndarray] = []
                    for impl in impls:
                        cell = Cell(folder.name, rtt, mbit, name, impl)
                        cells.append(cell)
                        first = impl == impls[0]
                        run_cell(
                            READERS[impl](url, study, series),
                            proxy,
                            cell,
                            reads[name],
                            None if first else reference,
                            reference if first else None,
                        )
                        print(f"  {folder.name[:3]} {rtt:g} ms {name} {impl}: {cell}")
                proxy.close()
        finally:
            server.stop()
    return cells


# --------------------------------------------------------------------------- report


def markdown(report: dict[str, Any]) -> str:
    """The Markdown report."""
    m = report["machine"]
    lines = ["# DICOMweb at a network's latency: dicomslide ÷ wsidicom", ""]
    lines.append(f"- Generated {report['generated']}; run: `{report['command']}`")
    lines.append(
        f"- Machine: {m['cpu_model']}, {m['cpu_count']} cores, Python {m['python']}"
    )
    lines.append(
        "- Libraries: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items())
    )
    lines.append(
        "- Orthanc on 127.0.0.1 behind `benchmarks.wanproxy.WanProxy`: each "
        "direction delayed by RTT/2, a new connection's first bytes by one more "
        "RTT (the handshake)"
        + (f", {report['mbit']:g} Mbit/s each way" if report["mbit"] else "")
    )
    lines.append(
        "- Cells: open = client → first (a) read's pixels; a = the other 256² "
        "reads; b = 1024² reads; scan = 256² sampler over level 0; walk = 6×6 "
        "Deep Zoom tiles (254 + 1 overlap) at level 0. Requests, connections, "
        "KiB and the most requests in flight are counted by the proxy."
    )
    lines.append("")
    lines.append(
        "| variant | RTT ms | cell | reads | dicomslide s | wsidicom s | ratio "
        "| requests ds / ws | connections ds / ws | KiB ds / ws | in flight ds / ws "
        "| mismatches |"
    )
    lines.append("|" + "---|" * 12)
    by = {(c["variant"], c["rtt_ms"], c["cell"], c["impl"]): c for c in report["cells"]}
    for (variant, rtt, name, impl), d in by.items():
        if impl != "dicomslide":
            continue
        w = by.get((variant, rtt, name, "wsidicom"), {})

        def pair(
            key: str, spec: str, w: dict[str, Any] = w, d: dict[str, Any] = d
        ) -> str:
            theirs = w.get(key)
            return f"{d[key]:{spec}} / " + (
                "—" if theirs is None else f"{theirs:{spec}}"
            )

        ds, ws = d["seconds"], w.get("seconds")
        ratio = f"{ds / ws:.2f}" if ds is not None and ws else "—"
        lines.append(
            f"| {variant[:3]} | {rtt:g} | {name} | {d['reads']} "
            f"| {'—' if ds is None else f'{ds:.3f}'} "
            f"| {'—' if ws is None else f'{ws:.3f}'} | **{ratio}** "
            f"| {pair('requests', 'd')} | {pair('connections', 'd')} "
            f"| {pair('kib_down', '.0f')} | {pair('max_in_flight', 'd')} "
            f"| {w.get('mismatches', '—')} |"
        )
    lines.append("")
    base = {
        (c["variant"], c["cell"]): c["seconds"]
        for c in report["cells"]
        if c["impl"] == "dicomslide" and c["rtt_ms"] == 0 and c["seconds"]
    }
    scans = [
        f"{c['variant'][:3]} at {c['rtt_ms']:g} ms: "
        f"{c['seconds'] / base[(c['variant'], 'scan')]:.2f}×"
        for c in report["cells"]
        if c["impl"] == "dicomslide"
        and c["cell"] == "scan"
        and c["seconds"]
        and (c["variant"], "scan") in base
    ]
    if scans:
        lines.append("dicomslide's scan ÷ its own scan at 0 ms: " + "; ".join(scans))
    errors = [c for c in report["cells"] if c["error"]]
    for c in errors:
        lines.append(
            f"- {c['variant']} {c['rtt_ms']} {c['cell']} {c['impl']}: {c['error']}"
        )
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.wan", description=__doc__
    )
    parser.add_argument("--rtt", default="0,25,50", help="round trip times in ms")
    parser.add_argument("--mbit", type=float, help="bandwidth cap in Mbit/s")
    parser.add_argument("--quick", action="store_true", help="20 (a), 5 (b) reads")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS)
    parser.add_argument("--corpus", help="corpus folder")
    parser.add_argument("--impls", default=",".join(IMPLS))
    parser.add_argument("--cells", default=",".join(CELLS), help="subset of cells")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument("--name", help="output stem (default wan[-<mbit>mbit])")
    args = parser.parse_args(argv)

    corpus = corpus_dir(args.corpus)
    variants = select_variants(corpus, args.variants)
    impls = [i for i in IMPLS if i in args.impls.split(",")]
    if "wsidicom" in impls and (reason := wsidicom_unavailable()):
        print(f"wsidicom skipped: {reason}", file=sys.stderr)
        impls.remove("wsidicom")
    rtts = [float(v) for v in args.rtt.split(",") if v.strip()]
    cells_wanted = [c for c in CELLS if c in args.cells.split(",")]
    started = time.perf_counter()
    cells: list[Cell] = []
    for folder in variants:
        print(f"{folder.name}: starting Orthanc and uploading", flush=True)
        cells.extend(
            run_variant(
                folder, rtts, args.mbit, impls, cells_wanted, args.seed, args.quick
            )
        )
    report: dict[str, Any] = {
        "generated": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join(
            [
                "python",
                "-m",
                "benchmarks.wan",
                *(argv if argv is not None else sys.argv[1:]),
            ]
        ),
        "mbit": args.mbit,
        "machine": machine_info(),
        "versions": versions(),
        "cells": [asdict(c) for c in cells],
        "runtime_s": time.perf_counter() - started,
    }
    text = markdown(report)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = args.name or ("wan" + (f"-{args.mbit:g}mbit" if args.mbit else ""))
    (out / f"{stem}.md").write_text(text)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1, default=str))
    print(f"wrote {out / (stem + '.md')} and {stem}.json")
    return 1 if any(c.error or c.mismatches for c in cells) else 0


if __name__ == "__main__":
    sys.exit(main())
