"""Object storage benchmark: reading slides from an S3-compatible server.

Runs moto's S3 server on 127.0.0.1 with a counting proxy in front (the test
suite's, :mod:`tests.objectservers`), which also emulates the round trip of a
wide area network (each request waits that long before it is passed on).
The corpus variants are uploaded once; then, for each round trip and each
implementation, a fresh process-local open and the same deterministic list of
level-0 reads, with requests and bytes counted by the proxy:

- ``dicomslide``: ``find_slides("s3://...", storage_options=...)``;
- ``wsidicom``: ``WsiDicom.open("s3://...", file_options=...)`` (its fsspec
  route);
- ``download``: every object of the slide downloaded first (fsspec ``get``),
  then read locally by dicomslide (the download counts as the open);
- ``limit``: the frames each read needs, one ranged GET per run of adjacent
  frames (concurrently), decoded one after the other; no cache, no read-ahead.

Besides the corpus variants, a slide of the size of real ones
(``--large``, default ``large-40k``: one level of 40 000 x 30 000 px, 18 526
frames, 111 MiB; the deterministic slide of :mod:`benchmarks.largeslides`)
shows what each route does where an object is far larger than fsspec's
blocks. moto copies a whole object for every ranged GET (about 90 ms for this
one), so that slide is served by nginx instead, behind the same counting
proxy, and opened from its file URL over fsspec's HTTP filesystem
(``download``: fsspec ``get`` of the URL; no ``limit`` row).

Run from the repository root: ``python -m benchmarks.objects`` (``--quick``
for a smoke run); writes ``benchmarks/results/objects.md``.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import dicomslide
from benchmarks.largeslides import SPECS, ensure_large_slide
from dicomslide.cache import FrameCache
from dicomslide.codec import decode_frame
from dicomslide.fetch import describe_pixels
from dicomslide.objectframes import ObjectFrameSource
from dicomslide.objects import ObjectFile, ObjectStore
from dicomslide.query import stored_syntax
from tests.objectservers import CountingProxy, MotoServer, Nginx

BUCKET = "bench"
RESULTS = Path(__file__).resolve().parent / "results"
CACHE = Path(__file__).resolve().parent / ".cache"


def _upload(folders: dict[str, Path], server: MotoServer) -> None:
    """Upload the DICOM files of each folder under its name (a prefix)."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=server.url,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=BUCKET)
    for name, folder in folders.items():
        for path in sorted(folder.glob("*.dcm")):
            client.upload_file(str(path), BUCKET, f"{name}/{path.name}")


#: Workloads: name, side of the square reads, and whether they scan
#: (a, b: random unaligned reads, as in the DICOMweb benchmark; scan: windows
#: side by side, row after row, from the top left, as a tiler reads)
WORKLOADS = (("a", 256, False), ("b", 1024, False), ("scan", 512, True))


def _reads(
    size: tuple[int, int], count: int, seed: int, side: int = 512, scan: bool = False
) -> list[tuple[int, int]]:
    """Top left corners (row, column) of `side` x `side` reads within level 0."""
    rows, columns = size
    if scan:
        across = max(columns // side, 1)
        return [
            ((n // across) * side, (n % across) * side)
            for n in range(count)
            if (n // across + 1) * side <= rows
        ]
    rng = np.random.default_rng(seed)
    return [
        (
            int(rng.integers(0, max(rows - side, 1))),
            int(rng.integers(0, max(columns - side, 1))),
        )
        for _ in range(count)
    ]


class _Limit:
    """One ranged GET per run of the frames a read needs, then decode."""

    def __init__(self, slide: dicomslide.Slide, store: ObjectStore, prefix: str):
        image = slide.get_volume_images()[0]
        self.meta = image.metadata
        header = self.meta
        self.tile = (int(header.Rows), int(header.Columns))
        self.grid = (
            -(-int(header.TotalPixelMatrixRows) // self.tile[0]),
            -(-int(header.TotalPixelMatrixColumns) // self.tile[1]),
        )
        self.desc = describe_pixels(header, stored_syntax(header) or "")
        files = store.list(prefix)
        index = slide.client.find_header(str(header.SOPInstanceUID))
        path = index.filename.split("://", 1)[1]
        self.source = ObjectFrameSource(
            ObjectFile(store, path, files[path]),
            str(header.SOPInstanceUID),
            self.desc,
            int(header.get("NumberOfFrames", 1)),
        )
        self.source.read_frames([1])  # index it: the open

    def read(self, offset: tuple[int, int], size: tuple[int, int]) -> None:
        (r0, c0), (h, w) = offset, size
        numbers = [
            row * self.grid[1] + column + 1
            for row in range(r0 // self.tile[0], (r0 + h - 1) // self.tile[0] + 1)
            for column in range(c0 // self.tile[1], (c0 + w - 1) // self.tile[1] + 1)
        ]
        for number, data in zip(numbers, self.source.read_frames(numbers), strict=True):
            decode_frame(data, self.desc, self.source.sop_instance_uid, number)


def _impls(source: str | list[str], options: dict[str, Any]) -> dict[str, Any]:
    """Each implementation's open, which returns its read(offset, size): of a
    bucket's prefix (`source` a URL) or of file URLs (a list)."""
    by_url = isinstance(source, list)

    def ours() -> Any:
        slide = dicomslide.find_slides(
            source,
            storage_options=options or None,
            correct_color=False,
            cache=FrameCache(2**28),
        )[0]
        return lambda offset, size: slide.get_image_region(offset, 0, size)

    def wsidicom() -> Any:
        from wsidicom import WsiDicom

        wsi = WsiDicom.open(source, file_options=options or None)
        return lambda offset, size: wsi.read_region(
            (offset[1], offset[0]), 0, (size[1], size[0])
        )

    def wsidicom_small_blocks() -> Any:
        # s3fs reads ahead whole 50 MiB blocks by default: on the small corpus
        # objects that is every byte; this route reads 256 KiB blocks instead
        from wsidicom import WsiDicom

        small = {**options, "default_block_size": 256 * 1024}
        wsi = WsiDicom.open(source, file_options=small)
        return lambda offset, size: wsi.read_region(
            (offset[1], offset[0]), 0, (size[1], size[0])
        )

    def download() -> Any:
        folder = Path(tempfile.mkdtemp(prefix="dicomslide-bench-"))
        if by_url:
            import fsspec

            fsspec.filesystem("http").get(source, str(folder) + "/")
        else:
            store = ObjectStore(source, options)
            store.fs.get(store.locate(source)[1], str(folder), recursive=True)
        slide = dicomslide.find_slides(folder, correct_color=False)[0]
        return lambda offset, size: slide.get_image_region(offset, 0, size)

    def limit() -> Any:
        assert isinstance(source, str)
        store = ObjectStore(source, options)
        slide = dicomslide.find_slides(
            source, storage_options=options, correct_color=False
        )[0]
        bench = _Limit(slide, store, store.locate(source)[1].rstrip("/"))
        return bench.read

    impls = {"dicomslide": ours, "wsidicom": wsidicom, "download": download}
    if not by_url:
        impls.update({"wsidicom-256k": wsidicom_small_blocks, "limit": limit})
    return impls


def _measure(
    proxy: CountingProxy, action: Callable[[], Any]
) -> tuple[Any, dict[str, float]]:
    time.sleep(0.05)  # read-ahead of the read before settles
    proxy.clear()
    start = time.perf_counter()
    result = action()
    wall = time.perf_counter() - start
    seen = proxy.requests()
    return result, {
        "requests": len(seen),
        "bytes": sum(s.nbytes for s in seen),
        "wall": wall,
    }


def _workload(
    proxy: CountingProxy,
    read: Callable[[tuple[int, int], tuple[int, int]], Any],
    corners: list[tuple[int, int]],
    side: int,
) -> tuple[list[float], list[Any]]:
    """Wall time of each read, and every request from the first read's start
    to a moment after the last one (those of read-ahead in the background
    included)."""
    time.sleep(0.05)
    proxy.clear()
    walls = []
    for corner in corners:
        start = time.perf_counter()
        read(corner, (side, side))
        walls.append(time.perf_counter() - start)
        time.sleep(0.05)  # a viewer's or a tiler's pause between reads
    time.sleep(0.2)  # requests still running are counted
    return walls, proxy.requests()


def _cells(
    args: argparse.Namespace,
    proxy: CountingProxy,
    variant: str,
    source: str | list[str],
    options: dict[str, Any],
    size: tuple[int, int],
) -> list[str]:
    """The report's rows of one slide: every round trip, workload and
    implementation."""
    lines = []
    for rtt, (workload, side, scan) in itertools.product(
        args.rtt, [w for w in WORKLOADS if w[0] in args.workloads]
    ):
        proxy.delay = rtt / 1000
        reads = _reads(size, args.reads, args.seed, side, scan)
        for name, opener in _impls(source, options).items():
            if args.impls and not any(s in name for s in args.impls):
                continue
            cell = f"| {variant} | {rtt} | {workload} | {name} |"
            try:
                read, opened = _measure(proxy, opener)
                walls, seen = _workload(proxy, read, reads, side)
            except Exception as error:  # noqa: BLE001 - a result, reported
                logging.warning("%s on %s failed: %s", name, variant, error)
                lines.append(f"{cell} failed: {type(error).__name__} | | | | | |")
                continue
            lines.append(
                f"{cell} {opened['requests']:.0f} | "
                f"{opened['bytes'] / 2**20:.1f} | {opened['wall']:.2f} | "
                f"{len(seen) / len(reads):.2f} | "
                f"{sum(s.nbytes for s in seen) / len(reads) / 1024:.0f} | "
                f"{1000 * statistics.median(walls):.1f} |"
            )
            print(lines[-1], flush=True)
    return lines


def _size(folder: Path) -> tuple[int, int]:
    return dicomslide.find_slides(folder)[0].total_pixel_matrix_dimensions[0]


def run(args: argparse.Namespace) -> str:
    corpus = Path(args.corpus)
    variants = [
        v
        for v in sorted(p.name for p in corpus.glob("V*"))
        if any(s in v for s in args.variants)
    ]
    lines = [
        "# Object storage: reads from an S3-compatible server",
        "",
        f"{args.reads} reads of level 0 per cell, after a fresh open: (a) "
        "random 256 x 256, (b) random 1024 x 1024, (scan) 512 x 512 windows "
        "side by side from the top left, 50 ms apart; per read: median wall "
        "time, and the requests and KiB the proxy saw during the workload "
        "(read-ahead in the background included) divided by the reads; open: "
        "requests, MiB and wall of opening. The corpus variants are read from "
        "moto's S3 server; the large slides (40 000 px wide, one object of "
        "111 MiB) from nginx by their file URLs over HTTP ranges, since moto "
        "copies a whole object for each ranged GET.",
        "",
        "| variant | RTT ms | reads | impl | open req | open MiB | open s "
        "| req/read | KiB/read | ms/read |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    if variants:
        server = MotoServer()
        proxy = CountingProxy(server.url)
        try:
            _upload({v: corpus / v for v in variants}, server)
            options = {
                "key": "bench",
                "secret": "bench",
                "endpoint_url": proxy.url,
                "client_kwargs": {"region_name": "us-east-1"},
            }
            for variant in variants:
                url = f"s3://{BUCKET}/{variant}/"
                ObjectStore(url, options).fs.ls(f"{BUCKET}/{variant}")  # connected
                size = _size(corpus / variant)
                lines += _cells(args, proxy, variant, url, options, size)
        finally:
            proxy.close()
            server.close()
    if args.large:
        slides = [ensure_large_slide(Path(args.cache), name) for name in args.large]
        web = Nginx(Path(args.cache).resolve())
        proxy = CountingProxy(web.url)
        try:
            for slide in slides:
                urls = [f"{proxy.url}/{slide.folder.name}/{slide.path.name}"]
                size = (slide.spec.rows, slide.spec.columns)
                lines += _cells(args, proxy, slide.spec.name, urls, {}, size)
        finally:
            proxy.close()
            web.close()
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus",
        default=os.environ.get("DICOMSLIDE_CORPUS", "../shared/data/wsi-corpus"),
    )
    parser.add_argument(
        "--variants", default="V13,V05,V15", type=lambda t: t.split(",")
    )
    parser.add_argument(
        "--impls", default="", type=lambda t: [s for s in t.split(",") if s]
    )
    parser.add_argument(
        "--rtt", default="0,25,50", type=lambda t: [int(v) for v in t.split(",")]
    )
    parser.add_argument(
        "--large",
        default="large-40k",
        type=lambda t: [s for s in t.split(",") if s],
        help=f"large slides to add, of {', '.join(SPECS)} ('' for none)",
    )
    parser.add_argument("--cache", default=str(CACHE))
    parser.add_argument("--reads", default=20, type=int)
    parser.add_argument(
        "--workloads",
        default="a,b,scan",
        type=lambda t: t.split(","),
        help="of a (random 256²), b (random 1024²), scan (512² windows in a row)",
    )
    parser.add_argument("--seed", default=20261207, type=int)
    parser.add_argument(
        "--quick", action="store_true", help="5 reads, no WAN emulation"
    )
    parser.add_argument("--out", default=str(RESULTS / "objects.md"))
    args = parser.parse_args()
    if args.quick:
        args.reads, args.rtt, args.large = 5, [0], []
    report = run(args)
    Path(args.out).write_text(report)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
