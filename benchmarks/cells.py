"""The cells of a run and the child processes that measure them.

A :class:`Cell` keeps the runs of one implementation on one workload of one
variant and sums them up (:meth:`Cell.metrics`). The :class:`Runner` starts one
child process (:mod:`benchmarks.child`) per run, enforces its time limit,
measures the other load on the machine meanwhile and keeps the cells. The
reads workloads (a–d) are planned once (:func:`plan_reads`) and run round by
round (:func:`run_round`); the open workloads run round-robin in fresh
processes (:func:`run_open`). The first run of a cell is cross-checked with
the reference pixels (:func:`references`, :func:`compare`).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.environment import REPO, busy_cpu_seconds, own_cpu_seconds
from benchmarks.impls import IMPLS
from benchmarks.limit import LimitReader
from benchmarks.workloads import Level, Workload


@dataclass
class Cell:
    """The measurements of one implementation on one workload of one variant."""

    variant: str
    workload: str
    impl: str
    kind: str
    pixels: int
    runs: list[dict[str, Any]] = field(default_factory=list)
    check: dict[str, Any] | None = None
    skipped: str | None = None

    @property
    def ok_runs(self) -> list[dict[str, Any]]:
        """Runs that finished."""
        return [r for r in self.runs if r.get("status") == "ok"]

    @property
    def status(self) -> str:
        """ "ok", "skipped" or the first failure."""
        if self.skipped:
            return "skipped"
        for run in self.runs:
            if run.get("status") != "ok":
                return str(run.get("status"))
        return "ok" if self.runs else "not run"

    @property
    def error(self) -> str | None:
        """The first failure message (or why the cell was skipped)."""
        if self.skipped:
            return self.skipped
        for run in self.runs:
            if run.get("status") != "ok":
                return str(run.get("error", run.get("status")))
        return None

    def metrics(self) -> dict[str, Any]:
        """Summary numbers (empty when no run finished)."""
        runs = self.ok_runs
        if not runs:
            return {}
        mib = 1024.0
        if self.kind == "reads":
            # One run per round: the round with the median total represents the
            # cell; the median per read pools the reads of all rounds.
            totals = [float(sum(r["times"])) for r in runs]
            run = sorted(runs, key=lambda r: float(sum(r["times"])))[
                (len(runs) - 1) // 2
            ]
            total = float(sum(run["times"]))
            return {
                "reads": len(run["times"]),
                "rounds": len(runs),
                "median_ms": 1000
                * statistics.median(t for r in runs for t in r["times"]),
                "total_s": total,
                "total_all_rounds_s": totals,
                "mp_per_s": self.pixels / total / 1e6 if total > 0 else None,
                "rss_peak_mib": run["rss_peak_kib"] / mib,
                "rss_after_open_mib": run["rss_after_open_kib"] / mib,
                "cpu_reads_s": run["cpu_reads_s"],
                "cpu_child_s": run["cpu_child_s"],
                "import_s": run["import_s"],
                "open_s": run["open_and_prepare_s"],
                "background_cores": run.get("background_cores"),
            }
        to_pixel = [r["open_and_prepare_s"] + r["times"][0] for r in runs]
        return {
            "runs": len(runs),
            "path_to_pixel_s": statistics.median(to_pixel),
            "path_to_pixel_all_s": to_pixel,
            "import_s": statistics.median(r["import_s"] for r in runs),
            "open_s": statistics.median(r["open_and_prepare_s"] for r in runs),
            "first_read_ms": 1000 * statistics.median(r["times"][0] for r in runs),
            # runs in which a full garbage collection fell between the start of
            # the open and the first pixel (None: not recorded)
            "full_gc_runs": (
                sum(1 for r in runs if r["gc_to_first_pixel"]["full"])
                if all("gc_to_first_pixel" in r for r in runs)
                else None
            ),
            "process_wall_s": statistics.median(r["process_wall_s"] for r in runs),
            "rss_peak_mib": statistics.median(r["rss_peak_kib"] for r in runs) / mib,
            "cpu_child_s": statistics.median(r["cpu_child_s"] for r in runs),
            "background_cores": max(
                (r.get("background_cores") or 0.0 for r in runs), default=None
            ),
        }

    def headline(self) -> float | None:
        """The number ratios compare: total read wall, or median path to pixel."""
        m = self.metrics()
        return m.get("total_s") if self.kind == "reads" else m.get("path_to_pixel_s")


class Runner:
    """Runs children and keeps the cells."""

    def __init__(self, args: argparse.Namespace, scratch: Path) -> None:
        self.args = args
        self.scratch = scratch
        self.cells: list[Cell] = []
        self.counter = 0
        self.timeout = float(args.timeout)
        """Per-child limit now in force (corpus or synthetic slide)."""
        self.timed_out: dict[str, str] = {}
        """Implementations that hung once -> where; their later cells are skipped."""
        self.evict: list[str] = []
        """Files a child drops from the page cache before it opens the slide."""

    def should_skip(self, cell: Cell) -> bool:
        """Mark and report a cell of an implementation that hung before."""
        where = self.timed_out.get(cell.impl)
        if where is None:
            return False
        cell.skipped = f"not run: timed out earlier on {where}"
        return True

    def record(self, cell: Cell, run: dict[str, Any]) -> None:
        """Keep a run (numbered in the order the children ran); remember a
        timeout."""
        run["child"] = self.counter
        cell.runs.append(run)
        if run.get("status") == "timeout":
            self.timed_out.setdefault(cell.impl, f"{cell.variant} ({cell.workload})")
        self.progress(cell, run)

    def child(
        self,
        impl: str,
        folder: Path,
        levels: list[Level] | list[tuple[int, int]],
        workload: Workload,
        keep: bool,
    ) -> dict[str, Any]:
        """Run one child process and return its result record."""
        self.counter += 1
        stem = self.scratch / f"job{self.counter:04d}"
        shapes = [lv.shape if isinstance(lv, Level) else tuple(lv) for lv in levels]
        job = {
            "impl": impl,
            "folder": str(folder),
            "levels": shapes,
            "reads": [r.as_list() for r in workload.reads],
            "check": workload.check if keep else [],
            # reads workloads time the reads alone; open workloads time the
            # path to the first pixel as a user meets it, collections included
            "collect_garbage": workload.kind == "reads",
            "samples_path": str(stem) + ".npz" if keep else None,
            "result_path": str(stem) + ".result.json",
            "timeout": self.timeout,
            "evict": self.evict,
        }
        Path(str(stem) + ".job.json").write_text(json.dumps(job))
        busy, own = busy_cpu_seconds(), own_cpu_seconds()
        start = time.perf_counter()
        try:
            done = subprocess.run(
                [sys.executable, "-m", "benchmarks.child", str(stem) + ".job.json"],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as expired:
            stderr = expired.stderr or ""
            if isinstance(stderr, bytes):
                stderr = stderr.decode(errors="replace")
            return {
                "status": "timeout",
                "error": f"no result within {self.timeout:.0f} s",
                "stderr": stderr[-6000:],
            }
        wall = time.perf_counter() - start
        result_path = Path(job["result_path"])
        if done.returncode != 0 or not result_path.exists():
            stderr = done.stderr or ""
            if "Timeout (" in stderr:  # the child's faulthandler watchdog fired
                return {
                    "status": "timeout",
                    "error": f"no result after {max(1.0, self.timeout - 5):.0f} s "
                    "(stacks dumped); innermost frames: "
                    + " | ".join(_innermost_frames(stderr)),
                    "stderr": stderr[-6000:],
                    "process_wall_s": wall,
                }
            tail = stderr.strip().splitlines()[-3:]
            return {
                "status": "crashed",
                "error": f"exit code {done.returncode}: {' | '.join(tail)}",
                "stderr": stderr[-6000:],
                "process_wall_s": wall,
            }
        result = json.loads(result_path.read_text())
        result["process_wall_s"] = wall
        if busy is not None and wall > 0:
            # CPU the machine spent on anything but this child (reaped, so its
            # interpreter teardown counts) and this process while it ran.
            mine = own_cpu_seconds() - own
            other = (busy_cpu_seconds() or busy) - busy - mine
            result["background_cores"] = max(0.0, other / wall)
        result["samples_path"] = job["samples_path"] if keep else None
        return result

    def progress(self, cell: Cell, run: dict[str, Any]) -> None:
        """One line per child on stderr."""
        if run.get("status") != "ok":
            text = f"{run.get('status')}: {run.get('error', '')[:150]}"
        elif cell.kind == "reads":
            text = f"{sum(run['times']):.3f} s for {len(run['times'])} reads"
        else:
            text = f"path→pixel {run['open_and_prepare_s'] + run['times'][0]:.3f} s"
        print(
            f"[{self.counter:3d}] {cell.variant[:24]:24s} {cell.workload:11s} "
            f"{cell.impl:20s} {text}",
            file=sys.stderr,
            flush=True,
        )


def _innermost_frames(dump: str, count: int = 3) -> list[str]:
    """The innermost frames of the main thread in a faulthandler dump."""
    blocks = dump.split("\n\n")
    main = next((b for b in blocks if "most recent call first" in b), dump)
    frames = [
        line.strip() for line in main.splitlines() if line.strip().startswith("File")
    ]
    return frames[:count]


def rotated(items: list[str], by: int) -> list[str]:
    """`items` rotated left by `by` (interleaving order)."""
    if not items:
        return items
    by %= len(items)
    return items[by:] + items[:by]


def family(impl: str) -> str:
    """Tolerance family of an implementation."""
    return IMPLS[impl].family


def compare(
    samples_path: str | None, refs: dict[int, np.ndarray], impl: str
) -> dict[str, Any]:
    """Compare a child's kept pixels with the reference ones."""
    if not samples_path or not Path(samples_path).exists():
        return {"verdict": "no samples"}
    with np.load(samples_path) as kept:
        worst, mean_worst, count, problems = 0, 0.0, 0, []
        for index, ref in refs.items():
            key = f"r{index}"
            if key not in kept:
                problems.append(f"read {index} missing")
                continue
            got = kept[key]
            if got.shape != ref.shape:
                problems.append(f"read {index} shape {got.shape} != {ref.shape}")
                continue
            diff = np.abs(got.astype(np.int16) - ref.astype(np.int16))
            worst = max(worst, int(diff.max()) if diff.size else 0)
            mean_worst = max(mean_worst, float(diff.mean()) if diff.size else 0.0)
            count += 1
    exact = family(impl) in ("dicomslide", "limit")
    if problems:
        verdict = "MISMATCH"
    elif worst == 0:
        verdict = "equal"
    elif exact or (family(impl) == "colour" and worst > 1):
        verdict = "MISMATCH"
    elif mean_worst > 1.0:
        verdict = "suspect"
    else:
        verdict = "close"
    return {
        "verdict": verdict,
        "max_abs": worst,
        "mean_abs_max": mean_worst,
        "reads_checked": count,
        "problems": problems,
    }


def references(reader: LimitReader, workload: Workload) -> dict[int, np.ndarray]:
    """Reference pixels of the checked reads (decode limit, in this process)."""
    out = {}
    for index in workload.check:
        r = workload.reads[index]
        out[index] = reader.read(r.level, r.row, r.column, r.height, r.width)
    return out


def icc_profile(reader: LimitReader, level: int) -> bytes | None:
    """The ICC profile of a level, read with pydicom (None if it has none)."""
    header = reader.levels[level].headers[0]
    for item in header.get("OpticalPathSequence", []):
        if item.get("ICCProfile"):
            return bytes(item.ICCProfile)
    profile = header.get("ICCProfile")
    return bytes(profile) if profile else None


def colour_references(
    reader: LimitReader, workload: Workload, refs: dict[int, np.ndarray]
) -> dict[int, np.ndarray]:
    """Reference pixels of colour-managed reads: LittleCMS (PIL.ImageCms) applied
    to the whole raw reference region, perceptual intent, to sRGB."""
    from PIL import Image, ImageCms

    out = {}
    for index, raw in refs.items():
        profile = icc_profile(reader, workload.reads[index].level)
        if profile is None or raw.ndim != 3 or raw.shape[2] != 3:
            out[index] = raw
            continue
        transform = ImageCms.buildTransform(
            ImageCms.ImageCmsProfile(io.BytesIO(profile)),
            ImageCms.createProfile("sRGB"),
            "RGB",
            "RGB",
            renderingIntent=ImageCms.Intent.PERCEPTUAL,
        )
        image = ImageCms.applyTransform(Image.fromarray(raw), transform)
        out[index] = np.asarray(image)
    return out


@dataclass
class ReadsPlan:
    """The cells of one reads workload (a–d) of one variant, run round by round."""

    folder: Path
    levels: list[Level]
    workload: Workload
    refs: dict[int, np.ndarray]
    cells: dict[str, Cell]
    offset: int
    """Where the rotation of implementations starts."""
    colour_refs: dict[int, np.ndarray] = field(default_factory=dict)
    """Reference pixels of the colour-managed reads (:func:`colour_references`)."""


def plan_reads(
    runner: Runner,
    variant: str,
    folder: Path,
    levels: list[Level],
    workload: Workload,
    impls: list[str],
    refs: dict[int, np.ndarray],
    colour_refs: dict[int, np.ndarray] | None = None,
) -> ReadsPlan:
    """Register the cells of a reads workload; :func:`run_round` runs them."""
    cells = {i: Cell(variant, workload.key, i, "reads", workload.pixels) for i in impls}
    plan = ReadsPlan(
        folder, levels, workload, refs, cells, len(runner.cells), colour_refs or {}
    )
    runner.cells.extend(cells.values())
    return plan


def run_round(runner: Runner, plan: ReadsPlan, round_: int) -> None:
    """One child per implementation of a planned reads workload, in rotated
    order.

    The rounds of a cell are spread over the whole run (round 1 of every cell,
    then round 2, ...), so that a slow minute of the machine touches one round
    of a cell rather than all of them.
    """
    for impl in rotated(list(plan.cells), plan.offset + round_):
        cell = plan.cells[impl]
        if cell.runs and (
            cell.runs[-1].get("status") != "ok" or impl in runner.timed_out
        ):
            continue  # do not repeat a failure, nor an implementation that hung
        if not cell.runs and runner.should_skip(cell):
            continue
        first = not cell.runs
        run = runner.child(impl, plan.folder, plan.levels, plan.workload, keep=first)
        runner.record(cell, run)
        if run.get("status") == "ok" and first:
            refs = plan.colour_refs if family(impl) == "colour" else plan.refs
            cell.check = compare(run.get("samples_path"), refs, impl)


def run_open(
    runner: Runner,
    variant: str,
    folder: Path,
    levels: list[Level] | list[tuple[int, int]],
    workload: Workload,
    impls: list[str],
    refs: dict[int, np.ndarray],
    repeats: int,
) -> None:
    """Repeated fresh-process runs, round-robin over implementations.

    An implementation whose run takes longer than ``--slow-cutoff`` seconds is
    not repeated.
    """
    cells = {
        impl: Cell(variant, workload.key, impl, "open", workload.pixels)
        for impl in impls
    }
    slow: set[str] = set()
    for repeat in range(repeats):
        for impl in rotated(impls, repeat + len(runner.cells)):
            if impl in slow:
                continue
            cell = cells[impl]
            if not cell.runs and runner.should_skip(cell):
                slow.add(impl)
                continue
            run = runner.child(impl, folder, levels, workload, keep=repeat == 0)
            runner.record(cell, run)
            if run.get("status") != "ok":
                slow.add(impl)  # do not repeat failures either
                continue
            if repeat == 0:
                cell.check = compare(run.get("samples_path"), refs, impl)
            if run["process_wall_s"] > runner.args.slow_cutoff:
                slow.add(impl)
    runner.cells.extend(cells.values())
