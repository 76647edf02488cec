"""Workload "open-large": opening slides of real size, to the first pixel.

On the synthetic TILED_FULL JPEG slides of :mod:`benchmarks.largeslides`
(40 000 × 30 000 and 100 000 × 80 000 px with the Basic Offset Table filled,
and the larger one with it empty), every implementation opens the folder and
reads one 256×256 region at the centre of level 0, in a fresh process
(:mod:`benchmarks.child`, as workload e). Measured per implementation:

* **path → pixel**: open + first read (imports excluded), median of the warm
  runs (the file in the OS page cache, as in workload e);
* **peak RSS** of the child (``VmHWM``), median of the warm runs;
* **bytes read before the first pixel**, from ``/proc/self/io`` between the
  start of opening and the end of the first read: ``read_bytes``, what the
  process made the kernel fetch from storage, in one cold run whose child
  first drops the slide's file from the page cache
  (``posix_fadvise(POSIX_FADV_DONTNEED)``, after ``fsync``; no root, no
  ``drop_caches``); and ``rchar``, what it read by system calls (mapped
  pages are not counted there), in the warm runs. Storage reads include the
  kernel's read-ahead around what was asked.

The report gives the ratios the issue sets targets for: dicomslide (and the
OpenSlide facade) ÷ OpenSlide 4 for the time, ÷ wsidicom for the storage
bytes and the RSS, and with the empty Basic Offset Table ÷ wsidicom for the
time. Writes ``benchmarks/results/large.{md,json}``.

Run from the repository root::

    .venv/bin/python -m benchmarks.large [--quick] [--slides large-40k]
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.cells import Cell, Runner, run_open
from benchmarks.environment import REPO, git_info, machine_info, package_versions
from benchmarks.largeslides import SPECS, LargeSlide, ensure_large_slide
from benchmarks.largeslides import expected_region as large_expected_region
from benchmarks.report import cell_records
from benchmarks.run import available_impls, compile_sources, select
from benchmarks.workloads import Read, Workload

IMPLS_DEFAULT = ["dicomslide", "dicomslide-openslide", "openslide", "wsidicom"]
KEY = "open-large"
COLD = "open-large-cold"
#: (what, slides, numerator, denominator, metric, target)
TARGETS = [
    ("open + first read", "bot", "dicomslide", "openslide", "path_to_pixel_s", 2.0),
    (
        "open + first read",
        "bot",
        "dicomslide-openslide",
        "openslide",
        "path_to_pixel_s",
        2.0,
    ),
    ("storage bytes to pixel", "bot", "dicomslide", "wsidicom", "read_bytes", 2.0),
    ("peak RSS", "bot", "dicomslide", "wsidicom", "rss_peak_mib", 1.5),
    ("open + first read", "nobot", "dicomslide", "wsidicom", "path_to_pixel_s", 1.0),
    ("storage bytes to pixel", "nobot", "dicomslide", "wsidicom", "read_bytes", 1.0),
    ("peak RSS", "nobot", "dicomslide", "wsidicom", "rss_peak_mib", 1.5),
]


def _read(slide: LargeSlide) -> Read:
    spec = slide.spec
    return Read(0, spec.rows // 2 + 37, spec.columns // 2 + 91, 256, 256)


def _metrics(warm: Cell | None, cold: Cell | None) -> dict[str, Any]:
    out: dict[str, Any] = dict(warm.metrics()) if warm else {}
    runs = warm.ok_runs if warm else []
    if runs:
        out["rchar"] = statistics.median(
            r.get("io_to_first_pixel", {}).get("rchar", 0) for r in runs
        )
    if cold and cold.ok_runs:
        run = cold.ok_runs[0]
        out["read_bytes"] = run.get("io_to_first_pixel", {}).get("read_bytes")
        out["cold_path_to_pixel_s"] = run["open_and_prepare_s"] + run["times"][0]
    return out


def _mib(value: float | None) -> str:
    return "—" if value is None else f"{value / 2**20:.1f}"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{1000 * value:.1f}"


def render(report: dict[str, Any]) -> str:
    """The Markdown report."""
    lines = [
        "# Opening large slides (workload open-large)",
        "",
        f"Generated {report['generated']}, `{report['command']}`, "
        f"{report['runtime_s']:.0f} s; git {report['git'].get('commit', '?')}"
        f"{' (dirty)' if report['git'].get('dirty') else ''}.",
        "",
        "path → pixel = open + one 256×256 read at the centre of level 0 in a fresh "
        "process (imports excluded), median of the warm runs; storage = "
        "`read_bytes` of `/proc/self/io` from opening to the first pixel in a "
        "run with the file dropped from the page cache first; rchar = bytes "
        "read by system calls (warm runs; mapped pages not counted).",
        "",
    ]
    for name, slide in report["slides"].items():
        lines += [
            f"## {name}: {slide['columns']} × {slide['rows']} px, "
            f"{slide['frames']} frames, {slide['size_mib']:.0f} MiB, Basic Offset "
            f"Table {'filled' if slide['bot'] else 'empty'}",
            "",
            "| implementation | path → pixel ms | open ms | first read ms | "
            "peak RSS MiB | storage MiB (cold) | cold path → pixel ms | "
            "rchar MiB | pixels |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for impl, m in slide["impls"].items():
            if m.get("error"):
                lines.append(f"| {impl} | {m['error'][:120]} |||||||")
                continue
            lines.append(
                f"| {impl} | {_ms(m.get('path_to_pixel_s'))} | "
                f"{_ms(m.get('open_s'))} | {m.get('first_read_ms', 0):.1f} | "
                f"{m.get('rss_peak_mib', 0):.0f} | {_mib(m.get('read_bytes'))} | "
                f"{_ms(m.get('cold_path_to_pixel_s'))} | {_mib(m.get('rchar'))} | "
                f"{m.get('check', '—')} |"
            )
        lines.append("")
    lines += ["## Targets", "", "| slide | what | ratio | value | target | met |"]
    lines.append("|---|---|---|---|---|---|")
    for row in report["targets"]:
        value = row["value"]
        shown = "—" if value is None else f"{value:.2f}"
        met = "—" if value is None else ("yes" if value <= row["target"] else "**no**")
        lines.append(
            f"| {row['slide']} | {row['what']} | {row['ratio']} | {shown} | "
            f"≤ {row['target']} | {met} |"
        )
    return "\n".join(lines)


def _targets(slides: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, slide in slides.items():
        kind = "bot" if slide["bot"] else "nobot"
        for what, on, numerator, denominator, metric, target in TARGETS:
            if on != kind:
                continue
            top = slide["impls"].get(numerator, {}).get(metric)
            bottom = slide["impls"].get(denominator, {}).get(metric)
            value = top / bottom if top is not None and bottom else None
            rows.append(
                {
                    "slide": name,
                    "what": what,
                    "ratio": f"{numerator} ÷ {denominator}",
                    "value": value,
                    "target": target,
                }
            )
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.large", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="1 warm run, 40k only")
    parser.add_argument("--slides", help=f"subset of {','.join(SPECS)}")
    parser.add_argument("--impls", help=f"subset of {','.join(IMPLS_DEFAULT)}")
    parser.add_argument("--repeats", type=int, help="warm runs (default 5, quick 1)")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--slow-cutoff", type=float, default=20.0)
    parser.add_argument("--cache", default=str(REPO / "benchmarks" / ".cache"))
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument("--name", help="output stem (default large, large-quick)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the workload; returns the exit status (1 when dicomslide failed)."""
    args = parse_args(argv)
    compile_sources()
    started = time.perf_counter()
    names = select(
        list(SPECS), args.slides or ("large-40k" if args.quick else None), "slides"
    )
    impls, skipped = available_impls(select(IMPLS_DEFAULT, args.impls, "impls"))
    repeats = args.repeats or (1 if args.quick else 5)
    report: dict[str, Any] = {
        "generated": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join(
            ["python", "-m", "benchmarks.large", *(argv or sys.argv[1:])]
        ),
        "machine": machine_info(),
        "versions": package_versions(),
        "git": git_info(),
        "skipped": skipped,
        "slides": {},
    }
    cells: list[Cell] = []
    with tempfile.TemporaryDirectory(prefix="dicomslide-large-") as scratch:
        runner = Runner(args, Path(scratch))
        for name in names:
            print(f"preparing {name} …", file=sys.stderr, flush=True)
            slide = ensure_large_slide(Path(args.cache), name)
            spec = slide.spec
            read = _read(slide)
            workload = Workload(
                KEY, "open + first read, large slide", "open", [read], [0]
            )
            refs = {0: large_expected_region(spec, read.row, read.column, 256, 256)}
            levels = [(spec.rows, spec.columns)]
            run_open(runner, name, slide.folder, levels, workload, impls, refs, repeats)
            runner.evict = [str(slide.path)]
            cold_cells = {}
            for impl in impls:
                cell = Cell(name, COLD, impl, "open", workload.pixels)
                runner.record(
                    cell, runner.child(impl, slide.folder, levels, workload, False)
                )
                runner.cells.append(cell)
                cold_cells[impl] = cell
            runner.evict = []
            warm = {
                c.impl: c
                for c in runner.cells
                if c.variant == name and c.workload == KEY
            }
            described = {}
            for impl in impls:
                m = _metrics(warm.get(impl), cold_cells.get(impl))
                if warm.get(impl) is None or warm[impl].status != "ok":
                    m["error"] = (warm[impl].error if impl in warm else "not run") or ""
                check = (warm[impl].check or {}) if impl in warm else {}
                m["check"] = check.get("verdict", "—")
                described[impl] = m
            report["slides"][name] = {
                "rows": spec.rows,
                "columns": spec.columns,
                "frames": spec.number_of_frames,
                "bot": spec.basic_offset_table,
                "size_mib": slide.path.stat().st_size / 2**20,
                "written_s": slide.write_seconds,
                "impls": described,
            }
        cells = runner.cells
    report["targets"] = _targets(report["slides"])
    report["runtime_s"] = time.perf_counter() - started
    report["cells"] = cell_records(cells)
    markdown = render(report)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = args.name or ("large-quick" if args.quick else "large")
    (out / f"{stem}.md").write_text(markdown + "\n")
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(markdown)
    failed = [
        c
        for c in cells
        if c.impl.startswith("dicomslide")
        and (c.status != "ok" or (c.check or {}).get("verdict") == "MISMATCH")
    ]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
