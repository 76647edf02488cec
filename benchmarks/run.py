"""Cross-library benchmark: dicomslide vs OpenSlide vs wsidicom vs the decode limit.

This module owns the command line and the order of a run: which variants,
workloads and implementations, the workloads built from the corpus and the
synthetic slide, the rounds, and the report files and exit status. The cells
and their child processes are :mod:`benchmarks.cells`, the report's ratios,
tables and notes :mod:`benchmarks.report`, the description of the machine and
of the tree :mod:`benchmarks.environment`.

Usage (from the repository root)::

    .venv/bin/python -m benchmarks.run                 # default run (~7 min here)
    .venv/bin/python -m benchmarks.run --quick --workloads a --variants V13

Every (variant, workload, implementation) cell runs in a subprocess of its own
(:mod:`benchmarks.child`), implementations interleaved (the order rotates from
one cell to the next; the repeated runs of the open workloads go round-robin).
Workload (e) of every variant runs first; then the reads workloads (a–d) run
round by round (round 1 of every cell, then round 2, and so on); open-sparse
runs last.
The results go to ``benchmarks/results/latest.md`` and ``latest.json``
(``latest-quick.*`` with ``--quick``), the Markdown table is also printed.

Exit status: 0, or 1 when a dicomslide or decode-limit cell failed or its
pixels differ from the decode limit's (see ``--no-fail``), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import compileall
import datetime
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks import sparse
from benchmarks.cells import (
    ReadsPlan,
    Runner,
    colour_references,
    family,
    plan_reads,
    references,
    run_open,
    run_round,
)
from benchmarks.environment import (
    REPO,
    busy_cpu_seconds,
    git_info,
    machine_info,
    own_cpu_seconds,
    package_versions,
)
from benchmarks.impls import IMPLS
from benchmarks.limit import LimitReader
from benchmarks.report import (
    cell_records,
    colour_ratio_rows,
    ratio_rows,
    render_markdown,
    standard_notes,
)
from benchmarks.workloads import (
    DEFAULT_WORKLOADS,
    SPECS,
    Sizes,
    build,
    build_sparse_workload,
)

BENCH = REPO / "benchmarks"
DEFAULT_VARIANTS = [
    "V13-wsidicomizer-jpeg422",
    "V05-wsidicomizer-svs",
    "V15-wsidicom-j2k-ict",
]
#: Implementations of the open workloads: the three limits are the same
#: for a single read, so only limit-1t runs (and stands in for the others).
OPEN_IMPLS = [
    "dicomslide",
    "dicomslide-matrix",
    "dicomslide-openslide",
    "openslide",
    "wsidicom",
    "limit-1t",
]
#: dicomslide-matrix opens exactly like dicomslide: not repeated on the sparse file.
SPARSE_IMPLS = [
    "dicomslide",
    "dicomslide-openslide",
    "openslide",
    "wsidicom",
    "limit-1t",
]


def corpus_dir(argument: str | None) -> Path:
    """The corpus folder: --corpus, $DICOMSLIDE_CORPUS or ../shared/data/wsi-corpus."""
    if argument:
        return Path(argument)
    if os.environ.get("DICOMSLIDE_CORPUS"):
        return Path(os.environ["DICOMSLIDE_CORPUS"])
    return REPO.parent / "shared" / "data" / "wsi-corpus"


def select(names: list[str], wanted: str | None, what: str) -> list[str]:
    """Filter `names` by a comma-separated list of names or substrings.

    Raises
    ------
    SystemExit
        When a pattern matches nothing

    """
    if not wanted:
        return names
    chosen: list[str] = []
    for pattern in (p.strip() for p in wanted.split(",") if p.strip()):
        exact = [n for n in names if n.lower() == pattern.lower()]
        matches = exact or [n for n in names if pattern.lower() in n.lower()]
        if not matches:
            raise SystemExit(
                f"--{what}: {pattern!r} matches none of {', '.join(names)}"
            )
        chosen.extend(m for m in matches if m not in chosen)
    return [n for n in names if n in chosen]


def available_impls(names: list[str]) -> tuple[list[str], dict[str, str]]:
    """Split implementation names into runnable ones and skipped ones (with reasons)."""
    runnable, skipped = [], {}
    for name in names:
        reason = IMPLS[name].unavailable()
        if reason:
            skipped[name] = reason
        else:
            runnable.append(name)
    return runnable, skipped


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Compare dicomslide with OpenSlide, wsidicom and the decode limit.",
    )
    parser.add_argument("--quick", action="store_true", help="fewer reads (smoke test)")
    parser.add_argument(
        "--variants",
        help="comma-separated corpus variants (names or substrings, e.g. V13,V05); "
        f"default {','.join(v.split('-')[0] for v in DEFAULT_VARIANTS)}",
    )
    parser.add_argument(
        "--workloads",
        help=f"comma-separated workloads from {','.join(SPECS)}; "
        f"default {','.join(DEFAULT_WORKLOADS)}",
    )
    parser.add_argument(
        "--impls",
        help="comma-separated implementations (names or substrings) from "
        f"{','.join(IMPLS)}; default all",
    )
    parser.add_argument(
        "--corpus",
        help="corpus folder (default $DICOMSLIDE_CORPUS or ../shared/data/wsi-corpus)",
    )
    parser.add_argument("--seed", type=int, default=20251121, help="workload RNG seed")
    parser.add_argument(
        "--rounds",
        type=int,
        help="runs of every reads cell (a-d), interleaved and spread over the run "
        "(round 1 of every cell, then round 2, ...); the median total is "
        "reported (default 3, quick 1)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        help="runs per implementation of (e) (default 5, quick 2)",
    )
    parser.add_argument(
        "--sparse-repeats",
        type=int,
        help="runs per implementation of open-sparse (default 3, quick 1)",
    )
    parser.add_argument(
        "--slow-cutoff",
        type=float,
        default=20.0,
        help="an open-workload run slower than this (s) is not repeated (default 20)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        help="per child process on the corpus, s (default 60, quick 20); a child "
        "that hangs dumps its threads' stacks (faulthandler) shortly before, and "
        "the implementation is not run again",
    )
    parser.add_argument(
        "--sparse-timeout",
        type=float,
        default=300.0,
        help="per child process on the synthetic slide, s (default 300)",
    )
    parser.add_argument(
        "--out",
        default=str(BENCH / "results"),
        help="output folder (default benchmarks/results)",
    )
    parser.add_argument(
        "--name", help="output file stem (default latest, or latest-quick with --quick)"
    )
    parser.add_argument(
        "--cache",
        default=str(BENCH / ".cache"),
        help="cache folder for the synthetic slide",
    )
    parser.add_argument(
        "--no-fail",
        action="store_true",
        help="exit 0 even when dicomslide fails or differs",
    )
    return parser.parse_args(argv)


def compile_sources() -> None:
    """Byte-compile dicomslide and the benchmark code, as an install would.

    The libraries in site-packages were byte-compiled when pip installed them;
    dicomslide runs from the source tree. Without its bytecode every child
    would compile the dicomslide modules it imports (and with
    ``PYTHONDONTWRITEBYTECODE`` set, again in every child), charging
    compilation to dicomslide's import, open and first read alone.
    """
    for package in ("dicomslide", "benchmarks"):
        compileall.compile_dir(REPO / package, quiet=1)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit status."""
    args = parse_args(argv)
    compile_sources()
    started = time.perf_counter()
    busy_start, own_start = busy_cpu_seconds(), own_cpu_seconds()
    loadavg_start = [round(v, 2) for v in os.getloadavg()]
    sizes = Sizes.quick() if args.quick else Sizes()
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.timeout is None:
        args.timeout = 20.0 if args.quick else 60.0
    if args.repeats:
        sizes = replace(sizes, open_repeats=args.repeats)
    if args.sparse_repeats:
        sizes = replace(sizes, sparse_repeats=args.sparse_repeats)
    workload_keys = (
        select(list(SPECS), args.workloads, "workloads")
        if args.workloads
        else DEFAULT_WORKLOADS
    )
    impl_names, skipped_impls = available_impls(
        select(list(IMPLS), args.impls, "impls")
    )
    notes: list[str] = []
    for name, reason in skipped_impls.items():
        print(f"skipping {name}: {reason}", file=sys.stderr)
        notes.append(f"`{name}` skipped: {reason}")
    corpus_workloads = [k for k in workload_keys if k in {"a", "b", "c", "d", "e"}]
    corpus = corpus_dir(args.corpus)
    variants: list[Path] = []
    if corpus_workloads:
        if not corpus.is_dir():
            print(
                f"corpus folder {corpus} not found (set DICOMSLIDE_CORPUS)",
                file=sys.stderr,
            )
            return 2
        present = sorted(p.name for p in corpus.iterdir() if p.is_dir())
        default = [v for v in DEFAULT_VARIANTS if v in present]
        names = select(present, args.variants, "variants") if args.variants else default
        variants = [corpus / n for n in names]

    report: dict[str, Any] = {
        "generated": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join(
            [
                Path(sys.executable).name,
                "-m",
                "benchmarks.run",
                *(argv if argv is not None else sys.argv[1:]),
            ]
        ),
        "quick": args.quick,
        "seed": args.seed,
        "rounds": args.rounds,
        "sizes": sizes.__dict__,
        "machine": machine_info(),
        "versions": package_versions(),
        "git": git_info(),
        "corpus": str(corpus),
        "implementations": {
            name: {
                "description": cls.description,
                "available": name not in skipped_impls,
                "reason": skipped_impls.get(name),
            }
            for name, cls in IMPLS.items()
            if name in impl_names or name in skipped_impls
        },
        "variants": {},
        "workloads": {},
    }

    with tempfile.TemporaryDirectory(prefix="dicomslide-bench-") as scratch:
        runner = Runner(args, Path(scratch))
        plans: list[ReadsPlan] = []
        for folder in variants:
            try:
                reader = LimitReader(cache=True)
                reader.open(folder)
            except Exception as error:
                notes.append(
                    f"{folder.name}: cannot build workloads ({error}); variant skipped"
                )
                continue
            levels = [s.level for s in reader.levels]
            report["variants"][folder.name] = {
                "folder": str(folder),
                "transfer_syntax": reader.levels[0].transfer_syntax_uid,
                "levels": [lv.__dict__ for lv in levels],
            }
            described = report["workloads"].setdefault(folder.name, {})
            for key in corpus_workloads:
                workload = build(key, levels, args.seed, sizes)
                described[key] = {
                    "title": workload.title,
                    "reads": len(workload.reads),
                    "pixels": workload.pixels,
                    "notes": workload.notes,
                }
                refs = references(reader, workload)
                if workload.kind == "reads":
                    colour = (
                        colour_references(reader, workload, refs)
                        if any(family(i) == "colour" for i in impl_names)
                        else None
                    )
                    plans.append(
                        plan_reads(
                            runner,
                            folder.name,
                            folder,
                            levels,
                            workload,
                            impl_names,
                            refs,
                            colour,
                        )
                    )
                else:
                    chosen = [i for i in impl_names if i in OPEN_IMPLS]
                    run_open(
                        runner,
                        folder.name,
                        folder,
                        levels,
                        workload,
                        chosen,
                        refs,
                        sizes.open_repeats,
                    )
            reader.close()
        for round_ in range(args.rounds):
            for plan in plans:
                run_round(runner, plan, round_)

        if "open-sparse" in workload_keys:
            print(
                "preparing the synthetic TILED_SPARSE slide …",
                file=sys.stderr,
                flush=True,
            )
            slide = sparse.ensure_sparse_slide(Path(args.cache))
            workload = build_sparse_workload(
                slide.rows, slide.columns, sizes.sparse_repeats
            )
            name = "synthetic-sparse"
            written = (
                f"written in {slide.write_seconds:.0f} s"
                if slide.write_seconds
                else "from the cache"
            )
            workload.notes.append(
                f"{slide.number_of_frames} frames of {slide.tile}×{slide.tile} native "
                f"RGB (Explicit VR LE) out of {slide.grid_positions} grid positions, "
                f"matrix {slide.columns}×{slide.rows}, one Per-Frame Functional Groups "
                "item per frame (Plane Position (Slide) + Frame Content); "
                f"{slide.path.stat().st_size / 2**20:.0f} MiB, {written} "
                f"(`{_display(slide.path)}`)"
            )
            workload.notes.append(
                "limit-1t here = pydicom: header read, one attribute walk over the "
                "per-frame items for the frame positions, pixel data read, one frame "
                "decoded (not a decode limit)"
            )
            report["variants"][name] = {
                "folder": str(slide.folder),
                "frames": slide.number_of_frames,
            }
            report["workloads"][name] = {
                "open-sparse": {
                    "title": workload.title,
                    "reads": 1,
                    "pixels": workload.pixels,
                    "notes": workload.notes,
                }
            }
            r = workload.reads[0]
            refs = {0: sparse.expected_region(r.row, r.column, r.height, r.width)}
            chosen = [i for i in impl_names if i in SPARSE_IMPLS]
            runner.timeout = float(args.sparse_timeout)
            run_open(
                runner,
                name,
                slide.folder,
                [(slide.rows, slide.columns)],
                workload,
                chosen,
                refs,
                sizes.sparse_repeats,
            )

        if "f" in workload_keys:
            notes.append(
                "workload f (DICOMweb against Orthanc) has its own runner: "
                "`python -m benchmarks.web`"
            )
            print("workload f runs in python -m benchmarks.web", file=sys.stderr)
        cells = runner.cells
        children = runner.counter
        for impl, where in runner.timed_out.items():
            notes.append(
                f"`{impl}` hung on {where} (stacks in the JSON, `runs[].stderr`); "
                "its later cells were not run"
            )

    for cell in cells:
        for run in cell.runs:
            if run.get("status") == "ok" and run.get("extra", {}).get(
                "openslide_library"
            ):
                report["openslide_library"] = run["extra"]["openslide_library"]
    report["ratios"] = ratio_rows(cells)
    report["colour_ratios"] = colour_ratio_rows(cells)
    report["notes"] = notes + standard_notes()
    report["runtime_s"] = time.perf_counter() - started
    busy_end = busy_cpu_seconds()
    if busy_start is not None and busy_end is not None:
        other = max(0.0, busy_end - busy_start - (own_cpu_seconds() - own_start))
        report["background"] = {
            "cpu_s": other,
            "cores": other / report["runtime_s"],
            "loadavg_start": loadavg_start,
            "loadavg_end": [round(v, 2) for v in os.getloadavg()],
        }
    report["children"] = children
    report["cells"] = cell_records(cells)
    markdown = render_markdown(report, cells)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = args.name or ("latest-quick" if args.quick else "latest")
    (out / f"{stem}.md").write_text(markdown + "\n")
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(markdown)
    print(
        f"\nwrote {out / (stem + '.md')} and {out / (stem + '.json')} "
        f"in {report['runtime_s']:.0f} s",
        file=sys.stderr,
    )
    failed = [
        c
        for c in cells
        if family(c.impl) in ("dicomslide", "colour", "limit")
        and (
            c.status not in ("ok", "skipped")
            or (c.check or {}).get("verdict") == "MISMATCH"
        )
    ]
    return 1 if failed and not args.no_fail else 0


def _display(path: Path) -> Path:
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


if __name__ == "__main__":
    sys.exit(main())
