"""Deep Zoom serving: ``dicomslide serve`` against openslide-python's generator.

One fixed zoom-and-pan walk (a list of tile requests a viewer makes: from the
level where the slide fits a 4 x 3 tile viewport up to full resolution, the
viewport panned across each level in a snake, every tile asked for once) is
sent by 8 concurrent clients (threads with a keep-alive connection each,
taking the next request of the list) to a freshly started server, and the
report gives tiles per second and the p50 / p95 latency. Servers:

``dicomslide-native``
    ``dicomslide serve`` (stored JPEG frames sent as they are where they are
    the tiles)
``dicomslide-rendered``
    ``dicomslide serve --no-native`` (every tile decoded and encoded)
``openslide``
    openslide-python's ``DeepZoomGenerator`` on OpenSlide 4 behind the same
    stack (:mod:`benchmarks.openslide_server`), opening the largest file of
    the series; for a folder only (OpenSlide does not read DICOMweb)

Sources: the corpus variant's folder, and the same files in Orthanc
(DICOMweb on loopback). Every server declares the same tile size and overlap
(those ``dicomslide serve`` chooses). Every response is checked (200, JPEG).
Each cell runs ``--rounds`` times (3), each on a fresh server (cold caches);
the round of median throughput is reported.

Run from the repository root::

    .venv/bin/python -m benchmarks.serve [--quick] [--variant V13-wsidicomizer-jpeg422]

Results: ``benchmarks/results/serve.md`` and ``serve.json`` (``serve-quick.*``
with ``--quick``).
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.environment import machine_info
from tests.orthanc import OrthancServer, dicom_files

REPO = Path(__file__).resolve().parent.parent

CLIENTS = 8
VIEWPORT = (4, 3)  # tiles across and down
DEFAULT_VARIANT = "V13-wsidicomizer-jpeg422"
_NS = "{http://schemas.microsoft.com/deepzoom/2008}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(port: int, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@contextmanager
def _server(command: list[str], port: int) -> Iterator[None]:
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO}{os.pathsep}" + os.environ.get("PYTHONPATH", ""),
    }
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"server exited: {process.stderr.read().decode()[-2000:]}"
                )  # type: ignore[union-attr]
            try:
                if _get(port, "/slides.json")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start in 120 s")
            time.sleep(0.2)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def walk(
    width: int, height: int, tile_size: int, limit: int
) -> list[tuple[int, int, int]]:
    """The zoom-and-pan walk: (level, column, row) of every tile request."""
    levels = math.ceil(math.log2(max(width, height))) + 1
    grids = []
    for level in range(levels):
        scale = 2 ** (levels - 1 - level)
        columns = math.ceil(math.ceil(width / scale) / tile_size)
        rows = math.ceil(math.ceil(height / scale) / tile_size)
        grids.append((level, columns, rows))
    # from the level before the first that fills the viewport, up to the top
    fills = [g[0] for g in grids if g[1] >= VIEWPORT[0] or g[2] >= VIEWPORT[1]]
    first = max(0, (fills[0] if fills else levels - 1) - 1)
    requests: list[tuple[int, int, int]] = []
    seen: set[tuple[int, int, int]] = set()
    for level, columns, rows in grids[first:]:
        across = range(0, max(1, columns - VIEWPORT[0] + 1), 2)
        for band, top in enumerate(range(0, max(1, rows - VIEWPORT[1] + 1), 2)):
            for left in across if band % 2 == 0 else reversed(across):
                for row in range(top, min(rows, top + VIEWPORT[1])):
                    for column in range(left, min(columns, left + VIEWPORT[0])):
                        key = (level, column, row)
                        if key not in seen:
                            seen.add(key)
                            requests.append(key)
    return requests[:limit]


def _run_walk(
    port: int, slide_id: str, tiles: list[tuple[int, int, int]]
) -> dict[str, Any]:
    latencies: list[float] = [0.0] * len(tiles)
    errors: list[str] = []
    sizes = [0] * len(tiles)
    next_index = iter(range(len(tiles)))
    lock = threading.Lock()

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            while True:
                with lock:
                    index = next(next_index, None)
                if index is None:
                    return
                level, column, row = tiles[index]
                start = time.perf_counter()
                connection.request(
                    "GET", f"/slides/{slide_id}_files/{level}/{column}_{row}.jpeg"
                )
                response = connection.getresponse()
                body = response.read()
                latencies[index] = time.perf_counter() - start
                sizes[index] = len(body)
                if response.status != 200 or not body.startswith(b"\xff\xd8"):
                    errors.append(f"{tiles[index]}: {response.status}")
        finally:
            connection.close()

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, e.g. {errors[:3]}")
    ordered = sorted(latencies)
    return {
        "tiles": len(tiles),
        "seconds": seconds,
        "tiles_per_second": len(tiles) / seconds,
        "p50_ms": 1000 * statistics.median(ordered),
        "p95_ms": 1000
        * ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)],
        "megabytes": sum(sizes) / 1e6,
    }


def _dicomslide_cell(source: str, native: bool, limit: int) -> dict[str, Any]:
    port = _free_port()
    command = [sys.executable, "-m", "dicomslide", "serve", source, "--port", str(port)]
    if not native:
        command.append("--no-native")
    with _server(command, port):
        (summary,) = json.loads(_get(port, "/slides.json")[1])
        dzi = ElementTree.fromstring(_get(port, f"/slides/{summary['id']}.dzi")[1])
        size = dzi.find(f"{_NS}Size")
        assert size is not None
        width, height = int(size.get("Width", 0)), int(size.get("Height", 0))
        tile_size, overlap = int(dzi.get("TileSize", 0)), int(dzi.get("Overlap", 0))
        tiles = walk(width, height, tile_size, limit)
        result = _run_walk(port, summary["id"], tiles)
        metrics = json.loads(_get(port, "/slides.json")[1])[0]["metrics"]
    result["native_tiles"] = metrics.get("tiles_native", 0)
    result["options"] = {
        "width": width,
        "height": height,
        "tile_size": tile_size,
        "overlap": overlap,
    }
    return result


def _openslide_cell(
    folder: Path, options: dict[str, int], limit: int
) -> dict[str, Any]:
    largest = max(dicom_files(folder), key=lambda p: p.stat().st_size)
    port = _free_port()
    command = [
        sys.executable, "-m", "benchmarks.openslide_server", str(largest),
        "--id", "0" * 16, "--port", str(port),
        "--tile-size", str(options["tile_size"]),
        "--overlap", str(options["overlap"]),
    ]  # fmt: skip
    with _server(command, port):
        tiles = walk(options["width"], options["height"], options["tile_size"], limit)
        return _run_walk(port, "0" * 16, tiles)


def _markdown(results: list[dict[str, Any]], header: str) -> str:
    lines = [
        header,
        "",
        "| source | server | tiles | tiles/s | p50 ms | p95 ms | native tiles | MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "error" in r:
            lines.append(
                f"| {r['source']} | {r['server']} | - | - | - | - | - | {r['error']} |"
            )
            continue
        lines.append(
            f"| {r['source']} | {r['server']} | {r['tiles']} | "
            f"{r['tiles_per_second']:.1f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | "
            f"{r.get('native_tiles', '-')} | "
            f"{r['megabytes']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the report."""
    parser = argparse.ArgumentParser(description="Deep Zoom serving benchmark")
    parser.add_argument("--quick", action="store_true", help="60 tiles instead of 300")
    parser.add_argument("--variant", default=DEFAULT_VARIANT)
    parser.add_argument(
        "--corpus",
        default=os.environ.get(
            "DICOMSLIDE_CORPUS", str(REPO.parent / "shared/data/wsi-corpus")
        ),
    )
    parser.add_argument("--no-orthanc", action="store_true", help="the folder only")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="fresh servers per cell; the round of median throughput is reported",
    )
    args = parser.parse_args(argv)
    limit = 60 if args.quick else 300
    if args.quick:
        args.rounds = 1
    folder = Path(args.corpus) / args.variant
    results: list[dict[str, Any]] = []

    def cell(source: str, server: str, run: Any) -> None:
        try:
            rounds = sorted(
                (run() for _ in range(args.rounds)),
                key=lambda r: float(r["tiles_per_second"]),
            )
            result = {**rounds[len(rounds) // 2], "rounds": len(rounds)}
        except Exception as error:  # a failed cell is reported, the run goes on
            result = {"error": f"{type(error).__name__}: {error}"[:200]}
        results.append({"source": source, "server": server, **result})
        print(_markdown(results[-1:], "").strip().splitlines()[-1], flush=True)

    cell(
        "folder",
        "dicomslide-native",
        lambda: _dicomslide_cell(str(folder), True, limit),
    )
    cell(
        "folder",
        "dicomslide-rendered",
        lambda: _dicomslide_cell(str(folder), False, limit),
    )
    options = results[0].get("options")
    if options:
        cell("folder", "openslide", lambda: _openslide_cell(folder, options, limit))
    if not args.no_orthanc:
        with tempfile.TemporaryDirectory() as work:
            orthanc = OrthancServer(Path(work))
            orthanc.start()
            try:
                orthanc.upload(dicom_files(folder))
                url = orthanc.dicomweb_url
                cell(
                    "orthanc",
                    "dicomslide-native",
                    lambda: _dicomslide_cell(url, True, limit),
                )
                cell(
                    "orthanc",
                    "dicomslide-rendered",
                    lambda: _dicomslide_cell(url, False, limit),
                )
                unreadable = "OpenSlide does not read DICOMweb"
                results.append(
                    {"source": "orthanc", "server": "openslide", "error": unreadable}
                )
            finally:
                orthanc.stop()
    header = (
        f"# Deep Zoom serving ({args.variant}, a walk of at most {limit} tiles, "
        f"{CLIENTS} clients)\n\n"
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC"
    )
    name = "serve-quick" if args.quick else "serve"
    out = REPO / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.md").write_text(_markdown(results, header))
    (out / f"{name}.json").write_text(
        json.dumps(
            {"machine": machine_info(), "results": results}, indent=1, default=str
        )
    )
    print(_markdown(results, header))
    return 1 if any("error" in r and r["server"] != "openslide" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
