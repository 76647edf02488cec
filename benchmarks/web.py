"""Workload (f): reads over DICOMweb against Orthanc on loopback.

For every corpus variant an Orthanc server (with its DICOMweb plugin) is
started in a temporary folder on 127.0.0.1 and the variant's files are
uploaded. The reads are the very lists :mod:`benchmarks.workloads` builds for
workloads (a) and (b) — random unaligned 256×256 and random 1024×1024 reads at
level 0 — and every implementation runs them in a fresh state:

``dicomslide``
    ``find_slides(DICOMwebClient(url, session=counting), correct_color=False)``
    then ``slide.get_image_region(offset, 0, size)``; the default frame cache is
    cleared first.
``web-limit``
    per read, exactly the frames it needs (tile grid arithmetic on the
    dicomslide matrix geometry), fetched with ONE ``GET .../frames/n1,n2,...``
    (``transfer-syntax=*``), split with :func:`dicomslide.web.parse_multipart`,
    decoded with :func:`dicomslide.codec.decode_frame` and pasted into a
    preallocated array; one thread, no cache.
``wsidicom``
    ``WsiDicom.open_web`` over the same kind of counting session (given the
    study and series UIDs), ``read_region``; skipped with the reason when it
    cannot open or read.

Every HTTP request goes through :class:`CountingSession`, which records the
URL, status and ``len(response.content)`` of each answer, so the report gives
requests per read, bytes per read and the requests needed to open a slide.

Run from the repository root::

    .venv/bin/python -m benchmarks.web [--quick] [--variants V13,V05,V15]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import requests

from benchmarks.environment import machine_info
from benchmarks.limit import scan_series
from benchmarks.workloads import Read, Sizes, Workload, build
from tests.orthanc import OrthancServer, dicom_files

REPO = Path(__file__).resolve().parent.parent

DEFAULT_VARIANTS = [
    "V13-wsidicomizer-jpeg422",
    "V05-wsidicomizer-svs",
    "V15-wsidicom-j2k-ict",
]
WORKLOADS = ["a", "b"]
IMPLS = ["web-limit", "dicomslide", "wsidicom"]
DEFAULT_SEED = 20251121
FRAMES_ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
#: A cell (implementation × variant × workload) stops after this many seconds.
CELL_CAP_S = 60.0


# --------------------------------------------------------------------------- HTTP


@dataclass
class RequestRecord:
    """One HTTP request as seen by :class:`CountingSession`."""

    method: str
    url: str
    status: int
    nbytes: int
    seconds: float

    @property
    def is_frames(self) -> bool:
        """Whether it is a frames retrieval (``.../frames/...``)."""
        return "/frames/" in self.url

    @property
    def frames(self) -> int:
        """Number of frames asked for (0 for other requests)."""
        if not self.is_frames:
            return 0
        numbers = self.url.split("/frames/", 1)[1].split("?", 1)[0]
        return len(numbers.replace("%2C", ",").replace("%2c", ",").split(","))


class CountingSession(requests.Session):
    """A :class:`requests.Session` that records every request it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[RequestRecord] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> Any:
        """Send `request` and record its URL, status and body size."""
        start = time.perf_counter()
        response = super().send(request, **kwargs)
        nbytes = len(response.content)  # reads a streamed body; requests caches it
        self.records.append(
            RequestRecord(
                method=str(request.method),
                url=str(request.url),
                status=response.status_code,
                nbytes=nbytes,
                seconds=time.perf_counter() - start,
            )
        )
        return response


# --------------------------------------------------------------------------- readers


@dataclass
class Geometry:
    """What the web-limit needs to know about level 0 (taken from dicomslide)."""

    study: str
    series: str
    sop: str
    rows: int
    columns: int
    tile_rows: int
    tile_columns: int
    grid_columns: int
    metadata: Any
    dtype: Any
    samples: int


def _dicomslide_level0(slide: Any, levels_shape: tuple[int, int]) -> Any:
    """The level-0 VOLUME image of a dicomslide slide, checked against pydicom's."""
    image = slide.get_volume_images()[0]
    if tuple(slide.total_pixel_matrix_dimensions[0]) != levels_shape:
        raise RuntimeError(
            f"dicomslide level 0 is {slide.total_pixel_matrix_dimensions[0]}, "
            f"pydicom's is {levels_shape}"
        )
    return image


def geometry_of(url: str, level0_shape: tuple[int, int]) -> Geometry:
    """Level-0 geometry from dicomslide (outside every measurement)."""
    from dicomweb_client.api import DICOMwebClient

    import dicomslide

    client = DICOMwebClient(url)
    slide = dicomslide.find_slides(client, correct_color=False)[0]
    image = _dicomslide_level0(slide, level0_shape)
    if len(image.sop_instance_uids) != 1:
        raise RuntimeError("web-limit reads single-instance levels only")
    matrix = image.get_total_pixel_matrix(correct_color=False)
    metadata = image.metadata
    organization = str(metadata.get("DimensionOrganizationType", "TILED_FULL"))
    if organization != "TILED_FULL":
        raise RuntimeError(f"web-limit reads TILED_FULL only, not {organization}")
    tile_rows, tile_columns, samples = matrix.tile_shape
    return Geometry(
        study=str(metadata.StudyInstanceUID),
        series=str(metadata.SeriesInstanceUID),
        sop=str(image.sop_instance_uids[0]),
        rows=int(matrix.shape[0]),
        columns=int(matrix.shape[1]),
        tile_rows=int(tile_rows),
        tile_columns=int(tile_columns),
        grid_columns=int(matrix.tile_grid_shape[1]),
        metadata=metadata,
        dtype=matrix.dtype,
        samples=int(samples),
    )


class Reader:
    """One implementation in a fresh state: ``open()`` then ``read(read)``."""

    name = ""
    description = ""

    def __init__(self, url: str, geometry: Geometry) -> None:
        self.url = url
        self.geometry = geometry
        self.session = CountingSession()

    def open(self) -> None:
        """Create the client and open the slide."""

    def read(self, read: Read) -> np.ndarray:
        """Pixels of one level-0 read, (h, w, samples)."""
        raise NotImplementedError


class WebLimit(Reader):
    """Exactly the needed frames, one raw request per read, 1 thread, no cache."""

    name = "web-limit"
    description = (
        "the frames a read needs, ONE GET .../frames/n1,n2,... "
        "(transfer-syntax=*), parse_multipart, codec.decode_frame, paste; "
        "1 thread, no cache"
    )

    def open(self) -> None:
        g = self.geometry
        self._frames_url = (
            f"{self.url}/studies/{g.study}/series/{g.series}/instances/{g.sop}/frames/"
        )
        self._descriptions: dict[str, Any] = {}

    def read(self, read: Read) -> np.ndarray:
        from dicomslide.codec import decode_frame
        from dicomslide.fetch import describe_pixels
        from dicomslide.web import parse_multipart, transfer_syntax_of

        g = self.geometry
        top, left = read.row, read.column
        bottom, right = top + read.height, left + read.width
        grid_rows = range(top // g.tile_rows, (bottom - 1) // g.tile_rows + 1)
        grid_columns = range(left // g.tile_columns, (right - 1) // g.tile_columns + 1)
        tiles = [(r, c) for r in grid_rows for c in grid_columns]
        numbers = [r * g.grid_columns + c + 1 for r, c in tiles]
        response = self.session.get(
            self._frames_url + ",".join(map(str, numbers)),
            headers={"Accept": FRAMES_ACCEPT},
        )
        response.raise_for_status()
        parts = parse_multipart(response.headers["Content-Type"], response.content)
        if len(parts) != len(numbers):
            raise RuntimeError(f"asked for {len(numbers)} frames, got {len(parts)}")
        out = np.empty((read.height, read.width, g.samples), dtype=g.dtype)
        for (grid_row, grid_column), number, (part_type, payload) in zip(
            tiles, numbers, parts
        ):
            syntax = transfer_syntax_of(part_type)
            if syntax is None:
                raise RuntimeError(f"no transfer syntax in part type {part_type!r}")
            desc = self._descriptions.get(syntax)
            if desc is None:
                desc = self._descriptions[syntax] = describe_pixels(g.metadata, syntax)
            tile = decode_frame(payload, desc, g.sop, number)
            tile_top, tile_left = grid_row * g.tile_rows, grid_column * g.tile_columns
            r0, r1 = max(top, tile_top), min(bottom, tile_top + g.tile_rows)
            c0, c1 = max(left, tile_left), min(right, tile_left + g.tile_columns)
            out[r0 - top : r1 - top, c0 - left : c1 - left] = tile[
                r0 - tile_top : r1 - tile_top, c0 - tile_left : c1 - tile_left
            ]
        return out


class Dicomslide(Reader):
    """dicomslide over DICOMweb: ``find_slides`` + ``get_image_region``."""

    name = "dicomslide"
    description = (
        "dicomslide.find_slides(DICOMwebClient(url, session=counting), "
        "correct_color=False)[0].get_image_region(offset, 0, size); "
        "default cache cleared first"
    )

    def open(self) -> None:
        from dicomweb_client.api import DICOMwebClient

        import dicomslide
        import dicomslide.cache

        dicomslide.cache.get_default_cache().clear()
        client = DICOMwebClient(self.url, session=self.session)
        self.slide = dicomslide.find_slides(client, correct_color=False)[0]
        _dicomslide_level0(self.slide, (self.geometry.rows, self.geometry.columns))

    def read(self, read: Read) -> np.ndarray:
        return self.slide.get_image_region(
            offset=(read.row, read.column), level=0, size=(read.height, read.width)
        )


class Wsidicom(Reader):
    """wsidicom over DICOMweb: ``WsiDicom.open_web`` + ``read_region``."""

    name = "wsidicom"
    description = (
        "WsiDicom.open_web(WsiDicomWebClient.create_client(url, auth=counting), "
        "study, series).read_region((x, y), 0, (w, h)) — study/series UIDs given"
    )

    def open(self) -> None:
        from wsidicom import WsiDicom
        from wsidicom.web import WsiDicomWebClient

        client = WsiDicomWebClient.create_client(self.url, auth=self.session)
        self.slide = WsiDicom.open_web(
            client, self.geometry.study, self.geometry.series
        )
        base = self.slide.levels.base_level
        if (base.size.height, base.size.width) != (
            self.geometry.rows,
            self.geometry.columns,
        ):
            raise RuntimeError(f"wsidicom base level is {base.size}")

    def read(self, read: Read) -> np.ndarray:
        image = self.slide.read_region(
            (read.column, read.row), 0, (read.width, read.height)
        )
        return np.asarray(image.convert("RGB"))


READERS: dict[str, type[Reader]] = {
    "web-limit": WebLimit,
    "dicomslide": Dicomslide,
    "wsidicom": Wsidicom,
}


# --------------------------------------------------------------------------- cells


@dataclass
class Cell:
    """Measurements of one implementation on one workload of one variant."""

    variant: str
    workload: str
    impl: str
    status: str = "ok"
    error: str | None = None
    reads_done: int = 0
    pixels: int = 0
    open_s: float | None = None
    """Client creation to open slide (without the first read)."""
    first_pixel_s: float | None = None
    """Client creation to the first read's pixels."""
    open_requests: int | None = None
    """Requests from client creation to the first read's pixels."""
    open_bytes: int | None = None
    open_urls: list[str] = field(default_factory=list)
    """Method, status and URL (server root stripped) of the open's requests."""
    read_s: list[float] = field(default_factory=list)
    read_requests: list[int] = field(default_factory=list)
    read_frame_requests: list[int] = field(default_factory=list)
    read_bytes: list[int] = field(default_factory=list)
    read_frames: list[int] = field(default_factory=list)
    """Frames asked for (over all frames requests) per read."""
    total_requests: int = 0
    total_bytes: int = 0
    failed_requests: int = 0
    mismatches: int | None = None
    max_abs_diff: int | None = None
    checked: int = 0

    @property
    def total_s(self) -> float:
        """Wall of all reads."""
        return sum(self.read_s)

    def summary(self) -> dict[str, Any]:
        """Headline numbers."""
        n = len(self.read_s)
        return {
            "median_ms": statistics.median(self.read_s) * 1e3 if n else None,
            "total_s": self.total_s if n else None,
            "mp_per_s": self.pixels / 1e6 / self.total_s
            if n and self.total_s
            else None,
            "frame_requests_mean": (
                statistics.fmean(self.read_frame_requests) if n else None
            ),
            "frame_requests_max": max(self.read_frame_requests) if n else None,
            "requests_per_read_mean": statistics.fmean(self.read_requests)
            if n
            else None,
            "requests_per_read_max": max(self.read_requests) if n else None,
            "kib_per_read": statistics.fmean(self.read_bytes) / 1024 if n else None,
            "frames_per_read": statistics.fmean(self.read_frames) if n else None,
        }


def run_cell(
    reader: Reader,
    cell: Cell,
    reads: list[Read],
    reference: list[np.ndarray] | None,
    keep: list[np.ndarray] | None,
) -> None:
    """Open `reader`, make every read and fill `cell`.

    The open counts from client creation; the first read's wall and requests
    are in the per-read lists too, and also in ``first_pixel_s`` /
    ``open_requests``. Reads are compared with `reference` (the web-limit's
    pixels) when given; `keep` collects this reader's own pixels.
    """
    records = reader.session.records
    start = time.perf_counter()
    try:
        reader.open()
    except Exception as error:
        cell.status, cell.error = "failed", f"open: {type(error).__name__}: {error}"
        return
    cell.open_s = time.perf_counter() - start
    if reference is not None:
        cell.mismatches, cell.max_abs_diff = 0, 0
    for index, read in enumerate(reads):
        before = len(records)
        t0 = time.perf_counter()
        try:
            pixels = reader.read(read)
        except Exception as error:
            cell.status = "failed"
            cell.error = f"read {index}: {type(error).__name__}: {error}"
            break
        elapsed = time.perf_counter() - t0
        mine = records[before:]
        cell.read_s.append(elapsed)
        cell.read_requests.append(len(mine))
        cell.read_frame_requests.append(sum(r.is_frames for r in mine))
        cell.read_bytes.append(sum(r.nbytes for r in mine))
        cell.read_frames.append(sum(r.frames for r in mine))
        cell.pixels += read.pixels
        cell.reads_done += 1
        if index == 0:
            cell.first_pixel_s = time.perf_counter() - start
            cell.open_requests = len(records)
            cell.open_bytes = sum(r.nbytes for r in records)
            cell.open_urls = [
                f"{r.method} {r.status} {r.url.replace(reader.url, '')}"
                for r in records
            ]
        if keep is not None:
            keep.append(pixels)
        if reference is not None:
            cell.checked += 1
            ref = reference[index]
            if pixels.shape != ref.shape:
                cell.mismatches = (cell.mismatches or 0) + 1
                cell.max_abs_diff = None
            elif not np.array_equal(pixels, ref):
                cell.mismatches = (cell.mismatches or 0) + 1
                if cell.max_abs_diff is not None:
                    diff = np.abs(pixels.astype(np.int32) - ref.astype(np.int32))
                    cell.max_abs_diff = max(cell.max_abs_diff, int(diff.max()))
        if time.perf_counter() - start > CELL_CAP_S:
            cell.status = "capped"
            cell.error = f"stopped after {index + 1} reads ({CELL_CAP_S:.0f} s cap)"
            break
    cell.total_requests = len(records)
    cell.total_bytes = sum(r.nbytes for r in records)
    cell.failed_requests = sum(r.status >= 400 for r in records)


def wsidicom_unavailable() -> str | None:
    """Why wsidicom cannot run over DICOMweb, or None."""
    try:
        from wsidicom import WsiDicom
        from wsidicom.web import WsiDicomWebClient  # noqa: F401
    except ImportError as error:
        return f"wsidicom (with its web source) is not installed: {error}"
    if not hasattr(WsiDicom, "open_web"):
        return "this wsidicom has no WsiDicom.open_web"
    return None


def run_variant(
    folder: Path, impls: list[str], seed: int, sizes: Sizes, skipped: dict[str, str]
) -> tuple[list[Cell], dict[str, Any]]:
    """Start Orthanc, upload the variant and measure every cell."""
    variant = folder.name
    levels = [series_level.level for series_level in scan_series(folder)]
    workloads: list[Workload] = [build(key, levels, seed, sizes) for key in WORKLOADS]
    info: dict[str, Any] = {
        "variant": variant,
        "level0": {
            "rows": levels[0].rows,
            "columns": levels[0].columns,
            "tile_rows": levels[0].tile_rows,
            "tile_columns": levels[0].tile_columns,
        },
        "workloads": {
            w.key: {"notes": w.notes, "reads": len(w.reads)} for w in workloads
        },
    }
    cells: list[Cell] = []
    with tempfile.TemporaryDirectory(prefix="dicomslide-web-bench-") as tmp:
        server = OrthancServer(Path(tmp))
        server.start()
        try:
            t0 = time.perf_counter()
            info["uploaded"] = server.upload(dicom_files(folder))
            info["upload_s"] = round(time.perf_counter() - t0, 2)
            url = server.dicomweb_url
            geometry = geometry_of(url, levels[0].shape)
            for workload in workloads:
                reference: list[np.ndarray] = []
                for impl in impls:
                    cell = Cell(variant, workload.key, impl)
                    cells.append(cell)
                    if impl in skipped:
                        cell.status, cell.error = "skipped", skipped[impl]
                        continue
                    reader = READERS[impl](url, geometry)
                    is_limit = impl == "web-limit"
                    run_cell(
                        reader,
                        cell,
                        workload.reads,
                        None if is_limit else reference,
                        reference if is_limit else None,
                    )
                    reader.session.close()
                    print(f"  {variant} {workload.key} {impl}: {_progress(cell)}")
        finally:
            server.stop()
    return cells, info


def _progress(cell: Cell) -> str:
    s = cell.summary()
    if not cell.read_s:
        return f"{cell.status} {cell.error or ''}"
    return (
        f"{cell.reads_done} reads, median {s['median_ms']:.1f} ms, "
        f"total {s['total_s']:.2f} s, {cell.total_requests} requests"
        + (f", {cell.mismatches} mismatches" if cell.mismatches is not None else "")
        + (f" [{cell.status}: {cell.error}]" if cell.status != "ok" else "")
    )


# --------------------------------------------------------------------------- report


def versions() -> dict[str, str]:
    """Versions of the packages involved, and Orthanc's."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in [
        "dicomslide",
        "dicomweb-client",
        "requests",
        "wsidicom",
        "pillow",
        "pylibjpeg-openjpeg",
        "numpy",
    ]:
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    return out


def _fmt(value: float | int | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _ratio(a: float | None, b: float | None) -> str:
    return "—" if a is None or not b else f"{a / b:.2f}"


def _miss_ratio(mine: dict[str, Any], limit: dict[str, Any]) -> str:
    """Median wall of the reads dicomslide had to fetch, ÷ web-limit's (same reads).

    dicomslide's frame cache serves many random reads without a request; this
    compares only the reads where it made one, i.e. per-fetch efficiency.
    """
    misses = [
        i
        for i, n in enumerate(mine["read_frame_requests"])
        if n and i < len(limit["read_s"])
    ]
    if not misses:
        return "—"
    a = statistics.median(mine["read_s"][i] for i in misses)
    b = statistics.median(limit["read_s"][i] for i in misses)
    return f"{a / b:.2f} ({len(misses)} reads)"


def markdown(report: dict[str, Any]) -> str:
    """The Markdown report."""
    m = report["machine"]
    lines = ["# DICOMweb benchmark (workload f): Orthanc on loopback", ""]
    lines.append(f"- Generated {report['generated']}")
    lines.append(
        f"- Machine: {m['cpu_model']}, {m['cpu_count']} cores "
        f"({m['cpus_usable']} usable), {m['memory_gib']} GiB, {m['platform']}"
    )
    lines.append(f"- Python {m['python']} ({m['python_implementation']})")
    lines.append(
        "- Libraries: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items())
    )
    lines.append(
        f"- Run: `{report['command']}` — {'quick' if report['quick'] else 'default'} "
        f"sizes, seed {report['seed']}, {report['runtime_s']:.0f} s total"
    )
    lines.append(
        "- Orthanc (DICOMweb plugin) on 127.0.0.1, one server per variant, files "
        "uploaded with POST /instances; one keep-alive session per implementation"
    )
    lines.append("")
    lines.append("## Implementations")
    lines.append("")
    for name, info in report["implementations"].items():
        state = f" — **skipped: {info['reason']}**" if info.get("reason") else ""
        lines.append(f"- `{name}`: {info['description']}{state}")
    lines.append("")
    lines.append("## Results")
    lines.append("")
    lines.append(
        "Frames req/read: requests to `.../frames/` per read (mean / max); all "
        "req/read: every request during a read (mean / max); KiB/read: response "
        "bytes per read; open: client creation → first read's pixels (time, "
        "requests, KiB); total req: all requests of the cell, open included; "
        "frames/read: frames asked for per read; mismatch: reads whose pixels "
        "differ from web-limit's (of checked)."
    )
    lines.append("")
    lines.append(
        "| variant | wl | impl | reads | median ms | total s | MP/s | frames req/read "
        "| all req/read | frames/read | KiB/read | open ms | open req | open KiB "
        "| total req | mismatch |"
    )
    lines.append("|" + "---|" * 16)
    for c in report["cells"]:
        s = c["summary"]
        variant = c["variant"].split("-")[0]
        if c["status"] in ("skipped", "failed") and not c["reads_done"]:
            error = c["error"] or ""
            error = error if len(error) < 100 else error[:97] + "…"
            lines.append(
                f"| {variant} | {c['workload']} | {c['impl']} | — | "
                f"{c['status']}: {error} |" + " |" * 11
            )
            continue
        mismatch = "—"
        if c["mismatches"] is not None:
            mismatch = f"{c['mismatches']}/{c['checked']}"
            if c["mismatches"] and c["max_abs_diff"] is not None:
                mismatch += f" (max {c['max_abs_diff']})"
        lines.append(
            f"| {variant} | {c['workload']} | {c['impl']} | {c['reads_done']}"
            + ("" if c["status"] == "ok" else f" ({c['status']})")
            + f" | {_fmt(s['median_ms'], '.1f')} | {_fmt(s['total_s'], '.2f')} "
            f"| {_fmt(s['mp_per_s'], '.1f')} "
            f"| {_fmt(s['frame_requests_mean'], '.2f')} / {s['frame_requests_max']} "
            f"| {_fmt(s['requests_per_read_mean'], '.2f')} / "
            f"{s['requests_per_read_max']} "
            f"| {_fmt(s['frames_per_read'], '.2f')} "
            f"| {_fmt(s['kib_per_read'], '.0f')} "
            f"| {_fmt(c['first_pixel_s'] and c['first_pixel_s'] * 1e3, '.0f')} "
            f"| {_fmt(c['open_requests'], 'd')} "
            f"| {_fmt(c['open_bytes'] and c['open_bytes'] / 1024, '.0f')} "
            f"| {c['total_requests']} | {mismatch} |"
        )
    lines.append("")
    lines.append("## Ratios dicomslide ÷ web-limit")
    lines.append("")
    lines.append(
        "Below 1 means dicomslide is faster / leaner. Blank when pixels mismatch."
    )
    lines.append("")
    lines.append(
        "| variant | wl | total wall | median/read | frames req/read | frames/read "
        "| KiB/read | total req | median/read, dicomslide misses only |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|")
    by = {(c["variant"], c["workload"], c["impl"]): c for c in report["cells"]}
    for variant, workload, impl in by:
        if impl != "dicomslide":
            continue
        d, w = by[(variant, workload, impl)], by.get((variant, workload, "web-limit"))
        if w is None or not d["reads_done"] or d["mismatches"] or not w["reads_done"]:
            lines.append(f"| {variant.split('-')[0]} | {workload} |" + " — |" * 7)
            continue
        ds, ws = d["summary"], w["summary"]
        lines.append(
            f"| {variant.split('-')[0]} | {workload} "
            f"| {_ratio(ds['total_s'], ws['total_s'])} "
            f"| {_ratio(ds['median_ms'], ws['median_ms'])} "
            f"| {_ratio(ds['frame_requests_mean'], ws['frame_requests_mean'])} "
            f"| {_ratio(ds['frames_per_read'], ws['frames_per_read'])} "
            f"| {_ratio(ds['kib_per_read'], ws['kib_per_read'])} "
            f"| {_ratio(d['total_requests'], w['total_requests'])} "
            f"| {_miss_ratio(d, w)} |"
        )
    lines.append("")
    lines.append("## Notes")
    lines.append("")
    for v in report["variants"]:
        g = v["level0"]
        lines.append(
            f"- {v['variant']}: level 0 {g['columns']}×{g['rows']} (w×h), tiles "
            f"{g['tile_columns']}×{g['tile_rows']}; {v.get('uploaded')} files "
            f"uploaded in {v.get('upload_s')} s"
            + "".join(
                f"; ({k}) {'; '.join(n['notes'])}"
                for k, n in v["workloads"].items()
                if n["notes"]
            )
        )
    lines.append(
        "- web-limit's open is not measured: its geometry (UIDs, tile grid, "
        "metadata) comes from a separate dicomslide session outside the timings; "
        "its 'open' columns are its first read only."
    )
    lines.append(
        "- The web-limit has no cache (as specified); dicomslide (128 MiB frame "
        "cache) and wsidicom (own caches) reuse frames between the random reads "
        "of a cell, so part of their advantage is cache hits — most of it on V15, "
        "whose level 0 has only 48 tiles. The last ratio column compares only the "
        "reads where dicomslide made a frames request."
    )
    lines.append(
        "- wsidicom is given the study and series UIDs (no QIDO search); "
        "dicomslide discovers the slide from the server root."
    )
    for c in report["cells"]:
        if c["error"] and c["reads_done"]:
            lines.append(f"- {c['variant']} {c['workload']} {c['impl']}: {c['error']}")
        if c["failed_requests"]:
            lines.append(
                f"- {c['variant']} {c['workload']} {c['impl']}: "
                f"{c['failed_requests']} request(s) answered ≥ 400 (e.g. media-type "
                "negotiation)"
            )
    lines.append("")
    return "\n".join(lines)


def _cell_json(cell: Cell) -> dict[str, Any]:
    data = dict(cell.__dict__)
    data["summary"] = cell.summary()
    return data


# --------------------------------------------------------------------------- main


def corpus_dir(argument: str | None) -> Path:
    """--corpus, $DICOMSLIDE_CORPUS or ../shared/data/wsi-corpus."""
    if argument:
        return Path(argument)
    if os.environ.get("DICOMSLIDE_CORPUS"):
        return Path(os.environ["DICOMSLIDE_CORPUS"])
    return REPO.parent / "shared" / "data" / "wsi-corpus"


def select_variants(corpus: Path, wanted: str | None) -> list[Path]:
    """Variant folders by name or substring (default: the suite's three)."""
    present = sorted(p.name for p in corpus.iterdir() if p.is_dir())
    if not wanted:
        return [corpus / v for v in DEFAULT_VARIANTS if v in present]
    chosen = []
    for pattern in (p.strip().lower() for p in wanted.split(",") if p.strip()):
        matches = [n for n in present if pattern in n.lower()]
        if not matches:
            raise SystemExit(f"--variants: {pattern!r} matches none of {present}")
        chosen.extend(m for m in matches if m not in chosen)
    return [corpus / n for n in chosen]


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (with ``--rtt``: :mod:`benchmarks.wan`'s)."""
    arguments = sys.argv[1:] if argv is None else argv
    if any(a == "--rtt" or a.startswith("--rtt=") for a in arguments):
        from benchmarks.wan import main as wan_main

        return wan_main(arguments)
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.web", description=__doc__
    )
    parser.add_argument("--quick", action="store_true", help="20 (a) and 5 (b) reads")
    parser.add_argument("--variants", help="comma-separated names or substrings")
    parser.add_argument("--corpus", help="corpus folder")
    parser.add_argument("--impls", help=f"subset of {','.join(IMPLS)}")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument("--name", help="output stem (default web, web-quick)")
    args = parser.parse_args(argv)

    corpus = corpus_dir(args.corpus)
    if not corpus.is_dir():
        print(
            f"corpus folder {corpus} not found (set DICOMSLIDE_CORPUS)", file=sys.stderr
        )
        return 2
    variants = select_variants(corpus, args.variants)
    impls = IMPLS
    if args.impls:
        impls = [i for i in IMPLS if any(p in i for p in args.impls.split(","))]
    if "web-limit" not in impls:
        impls = ["web-limit", *impls]  # the pixel reference
    sizes = Sizes.quick() if args.quick else Sizes()
    skipped: dict[str, str] = {}
    reason = wsidicom_unavailable()
    if reason and "wsidicom" in impls:
        skipped["wsidicom"] = reason

    started = time.perf_counter()
    cells: list[Cell] = []
    variant_info = []
    for folder in variants:
        print(f"{folder.name}: starting Orthanc and uploading", flush=True)
        variant_cells, info = run_variant(folder, impls, args.seed, sizes, skipped)
        cells.extend(variant_cells)
        variant_info.append(info)
    report: dict[str, Any] = {
        "generated": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join(
            [
                Path(sys.executable).name,
                "-m",
                "benchmarks.web",
                *(argv if argv is not None else sys.argv[1:]),
            ]
        ),
        "quick": args.quick,
        "seed": args.seed,
        "sizes": sizes.__dict__,
        "machine": machine_info(),
        "versions": versions(),
        "corpus": str(corpus),
        "implementations": {
            name: {
                "description": READERS[name].description,
                "reason": skipped.get(name),
            }
            for name in impls
        },
        "variants": variant_info,
        "cells": [_cell_json(c) for c in cells],
        "runtime_s": time.perf_counter() - started,
    }
    text = markdown(report)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = args.name or ("web-quick" if args.quick else "web")
    (out / f"{stem}.md").write_text(text)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1, default=str))
    print(f"wrote {out / (stem + '.md')} and {stem}.json")
    bad = any(
        c.impl in ("dicomslide", "web-limit") and (c.status == "failed" or c.mismatches)
        for c in cells
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
