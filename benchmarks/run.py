"""Cross-library benchmark: dicomslide vs OpenSlide vs wsidicom vs the decode limit.

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
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import sparse
from benchmarks.impls import IMPLS
from benchmarks.limit import LimitReader
from benchmarks.workloads import (
    DEFAULT_WORKLOADS,
    SPECS,
    Level,
    Sizes,
    Workload,
    build,
    build_sparse_workload,
)

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "benchmarks"
DEFAULT_VARIANTS = [
    "V13-wsidicomizer-jpeg422",
    "V05-wsidicomizer-svs",
    "V15-wsidicom-j2k-ict",
]
DICOMSLIDE_IMPLS = ["dicomslide", "dicomslide-matrix", "dicomslide-openslide"]
#: Denominators of the ratio table, in column order.
RATIO_BASES = ["openslide", "wsidicom", "limit-cache", "limit-Nt"]
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
PACKAGES = [
    "dicomslide",
    "openslide-python",
    "openslide-bin",
    "wsidicom",
    "pydicom",
    "simplejpeg",
    "imagecodecs",
    "pillow",
    "numpy",
    "highdicom",
]


# --------------------------------------------------------------------------- setup


def corpus_dir(argument: str | None) -> Path:
    """The corpus folder: --corpus, $DICOMSLIDE_CORPUS or ../shared/data/wsi-corpus."""
    if argument:
        return Path(argument)
    if os.environ.get("DICOMSLIDE_CORPUS"):
        return Path(os.environ["DICOMSLIDE_CORPUS"])
    return REPO.parent / "shared" / "data" / "wsi-corpus"


def machine_info() -> dict[str, Any]:
    """CPU model, cores, memory, OS and Python."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count()
    return {
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "memory_gib": memory,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
    }


def package_versions() -> dict[str, str]:
    """Installed versions of the packages the suite compares or uses."""
    out = {}
    for package in PACKAGES:
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    return out


def git_info() -> dict[str, Any]:
    """Commit and dirtiness of the working tree (read-only git commands).

    ``--no-optional-locks`` keeps ``git status`` from refreshing the index.
    """

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "--no-optional-locks", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        return done.stdout.strip()

    status = git("status", "--porcelain", "--untracked-files=no", "--", "dicomslide")
    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "dicomslide_dirty": bool(status),
    }


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


# --------------------------------------------------------------------------- cells


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


def busy_cpu_seconds() -> float | None:
    """Machine-wide busy CPU time (all cores, incl. steal) from /proc/stat."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal ...
    busy = sum(fields[:3]) + sum(fields[5:8])
    return busy / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU of this process and its finished children."""
    import resource

    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


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
    elif exact:
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


def plan_reads(
    runner: Runner,
    variant: str,
    folder: Path,
    levels: list[Level],
    workload: Workload,
    impls: list[str],
    refs: dict[int, np.ndarray],
) -> ReadsPlan:
    """Register the cells of a reads workload; :func:`run_round` runs them."""
    cells = {i: Cell(variant, workload.key, i, "reads", workload.pixels) for i in impls}
    plan = ReadsPlan(folder, levels, workload, refs, cells, len(runner.cells))
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
            cell.check = compare(run.get("samples_path"), plan.refs, impl)


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


# --------------------------------------------------------------------------- report


def ratio_rows(cells: list[Cell]) -> list[dict[str, Any]]:
    """dicomslide-family headline / other headline, per variant and workload."""
    by_key: dict[tuple[str, str], dict[str, Cell]] = {}
    for cell in cells:
        by_key.setdefault((cell.variant, cell.workload), {})[cell.impl] = cell
    rows = []
    for (variant, workload), group in by_key.items():
        for ds in DICOMSLIDE_IMPLS:
            mine = group.get(ds)
            if mine is None or mine.status != "ok":
                continue
            row: dict[str, Any] = {"variant": variant, "workload": workload, "impl": ds}
            bad = mine.check is not None and mine.check.get("verdict") == "MISMATCH"
            for base in RATIO_BASES:
                other = group.get(base)
                if other is None and base.startswith("limit"):
                    other = group.get("limit-1t")  # open workloads
                value = None
                if not bad and other is not None and other.status == "ok":
                    a, b = mine.headline(), other.headline()
                    if a is not None and b:
                        value = a / b
                row[base] = value
                row[f"{base}_noisy"] = value is not None and (
                    _noisy(mine) or (other is not None and _noisy(other))
                )
            row["pixels_differ"] = bad
            rows.append(row)
    return rows


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "—"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.{digits}f}"


#: Other processes using more cores than this while a child ran mark its cell.
NOISY_CORES = 0.3


def _noisy(cell: Cell) -> bool:
    return (cell.metrics().get("background_cores") or 0.0) > NOISY_CORES


def _load_text(metrics: dict[str, Any]) -> str:
    """The "other load" column: cores busy elsewhere, when above the limit."""
    cores = metrics.get("background_cores") or 0.0
    return f"⚠bg {cores:.1f}" if cores > NOISY_CORES else ""


def _check_text(cell: Cell) -> str:
    check = cell.check
    if not check:
        return "—"
    verdict = check["verdict"]
    if verdict == "no samples":
        return "—"
    text = {
        "equal": "= 0",
        "close": f"≤ {check['max_abs']}",
        "suspect": f"⚠ {check['max_abs']}",
    }.get(verdict, f"✗ {check.get('max_abs')}")
    if check.get("problems"):
        text = "✗ " + "; ".join(check["problems"])[:60]
    alpha = cell.ok_runs[0].get("extra", {}).get("alpha_min") if cell.ok_runs else None
    if alpha is not None and alpha < 255:
        text += f" (alpha min {alpha})"
    return text


def render_markdown(report: dict[str, Any], cells: list[Cell]) -> str:
    """The whole report as Markdown."""
    lines: list[str] = []
    m, v = report["machine"], report["versions"]
    lines.append(f"# dicomslide benchmark — {report['generated']}")
    lines.append("")
    lines.append(
        f"- Machine: {m['cpu_model']}, {m['cpu_count']} cores "
        f"({m['cpus_usable']} usable), {m['memory_gib']} GiB, {m['platform']}"
    )
    lines.append(f"- Python {m['python']} ({m['python_implementation']})")
    libs = ", ".join(f"{k} {val}" for k, val in v.items())
    if report.get("openslide_library"):
        libs += f"; OpenSlide library {report['openslide_library']}"
    lines.append(f"- Libraries: {libs}")
    git = report["git"]
    lines.append(
        f"- dicomslide tree: commit {git['commit']}"
        + (" + uncommitted changes in dicomslide/" if git["dicomslide_dirty"] else "")
    )
    lines.append(
        f"- Run: `{report['command']}` — "
        f"{'quick' if report['quick'] else 'default'} sizes, seed {report['seed']}, "
        f"{report['rounds']} round(s) of a–d, "
        f"{report['runtime_s']:.0f} s total, {report['children']} child processes"
    )
    background = report.get("background")
    if background:
        lines.append(
            f"- Other processes on the machine during the run: "
            f"{background['cpu_s']:.0f} CPU s = {background['cores']:.2f} cores on "
            f"average (load average at start {background['loadavg_start']}, at end "
            f"{background['loadavg_end']}); `other load` = cores busy elsewhere while "
            f"a cell ran, shown as ⚠bg when above {NOISY_CORES}"
        )
    lines.append("")
    lines.append("## Implementations")
    lines.append("")
    for name, info in report["implementations"].items():
        state = "" if info["available"] else f" — **skipped: {info['reason']}**"
        lines.append(f"- `{name}`: {info['description']}{state}")
    lines.append("")

    checks = [
        c
        for c in cells
        if c.check and c.check.get("verdict") not in (None, "no samples")
    ]
    bad = [c for c in checks if c.check and c.check["verdict"] == "MISMATCH"]
    lines.append("## Pixel cross-check")
    lines.append("")
    lines.append(
        "A few reads of every workload (first, middle, last) compared with the "
        "decode limit's pixels (synthetic slide: with the known pixel values). "
        "dicomslide and the limits must be equal (same codecs); OpenSlide and "
        "wsidicom are reported as max abs diff (`= 0` equal, `≤ n` close, `⚠` mean "
        "abs diff > 1, `✗` mismatch)."
    )
    lines.append("")
    if bad:
        for cell in bad:
            check = cell.check or {}
            detail = "; ".join(check.get("problems", [])) or (
                f"max abs diff {check.get('max_abs')}, mean abs diff up to "
                f"{check.get('mean_abs_max', 0):.2f} over {check.get('reads_checked')} "
                "reads"
            )
            lines.append(
                f"- **MISMATCH** {cell.impl} on {cell.variant} ({cell.workload}): "
                f"{detail}"
            )
    else:
        exact = [c for c in checks if family(c.impl) != "other"]
        lines.append(
            f"- All {len(exact)} checked cells of dicomslide and the limits are exact."
            if exact
            else "- No dicomslide or limit cell was checked."
        )
    others = {}
    for cell in checks:
        if family(cell.impl) == "other":
            key = (cell.impl, cell.variant)
            others[key] = max(
                others.get(key, 0), int(cell.check.get("max_abs", 0) or 0)
            )
    for (impl, variant), worst in sorted(others.items()):
        lines.append(f"- {impl} on {variant}: max abs diff {worst}")
    lines.append("")

    lines.append("## Ratios (dicomslide ÷ other; below 1 means dicomslide is faster)")
    lines.append("")
    lines.append(
        "Reads workloads (a–d): total wall of all reads; open workloads (e, "
        "open-sparse): median path-to-first-pixel. For the open workloads the "
        "`limit` columns use limit-1t (the three limits are the same for one "
        "read). `⚠bg`: one of the two cells ran while other processes kept the "
        "machine busy."
    )
    lines.append("")
    lines.append(
        "| variant | workload | dicomslide API | ÷ OpenSlide | ÷ wsidicom "
        "| ÷ limit-cache | ÷ limit-Nt |"
    )
    lines.append("|---|---|---|---|---|---|---|")
    for row in report["ratios"]:
        values = []
        for base in RATIO_BASES:
            value = row[base]
            text = f"{value:.2f}×" if value else "—"
            if row.get(f"{base}_noisy"):
                text += " ⚠bg"
            values.append("✗ pixels" if row["pixels_differ"] else text)
        lines.append(
            f"| {_short(row['variant'])} | {row['workload']} | {row['impl']} | "
            + " | ".join(values)
            + " |"
        )
    lines.append("")

    lines.append("## Results")
    lines.append("")
    lines.append(
        "Per read: wall of `read()` alone (open excluded). `total` = sum over the "
        "reads; `MP/s` = megapixels returned ÷ total. `RSS` = peak resident set of "
        "the child (`VmHWM`, imports included); `CPU reads` = user+sys of all "
        "threads during the reads, `CPU child` = user+sys of the whole child "
        "process (interpreter, imports, open, reads). `open` = open (+ loading the "
        "encoded frames, for the limits)."
    )
    lines.append("")
    order: list[tuple[str, str]] = []
    for cell in cells:
        if (cell.variant, cell.workload) not in order:
            order.append((cell.variant, cell.workload))
    impl_order = list(IMPLS)
    for variant, workload in order:
        group = sorted(
            (c for c in cells if c.variant == variant and c.workload == workload),
            key=lambda c: impl_order.index(c.impl),
        )
        info = report["workloads"].get(variant, {}).get(workload, {})
        lines.append(f"### {variant} — ({workload}) {info.get('title', '')}")
        lines.append("")
        for note in info.get("notes", []):
            lines.append(f"- {note}")
        if info.get("notes"):
            lines.append("")
        if group and group[0].kind == "reads":
            lines.append(
                "| impl | reads | median ms/read | total s | MP/s | peak RSS MiB "
                "| CPU reads s | CPU child s | open s | pixels vs limit | other load |"
            )
            lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
            for cell in group:
                mt = cell.metrics()
                if not mt:
                    lines.append(
                        f"| {cell.impl} | {cell.status}: {_clip(cell.error)} ||||||||||"
                    )
                    continue
                lines.append(
                    f"| {cell.impl} | {_count(mt)} "
                    f"| {_fmt(mt['median_ms'])} "
                    f"| {_fmt(mt['total_s'])} | {_fmt(mt['mp_per_s'])} "
                    f"| {mt['rss_peak_mib']:.0f} | {_fmt(mt['cpu_reads_s'])} "
                    f"| {_fmt(mt['cpu_child_s'])} | {_fmt(mt['open_s'])} "
                    f"| {_check_text(cell)} | {_load_text(mt)} |"
                )
        else:
            lines.append(
                "| impl | runs | path→pixel s (median) | import s | open s "
                "| first read ms | process wall s | peak RSS MiB | CPU child s "
                "| pixels vs limit | other load |"
            )
            lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
            for cell in group:
                mt = cell.metrics()
                if not mt:
                    lines.append(
                        f"| {cell.impl} | {cell.status}: {_clip(cell.error)} ||||||||||"
                    )
                    continue
                lines.append(
                    f"| {cell.impl} | {mt['runs']} "
                    f"| {_fmt(mt['path_to_pixel_s'])} | "
                    f"{_fmt(mt['import_s'])} | {_fmt(mt['open_s'])} | "
                    f"{_fmt(mt['first_read_ms'])} | "
                    f"{_fmt(mt['process_wall_s'])} | {mt['rss_peak_mib']:.0f} | "
                    f"{_fmt(mt['cpu_child_s'])} | {_check_text(cell)} "
                    f"| {_load_text(mt)} |"
                )
        lines.append("")

    if report["notes"]:
        lines.append("## Notes")
        lines.append("")
        for note in report["notes"]:
            lines.append(f"- {note}")
        lines.append("")
    failures = [c for c in cells if c.status not in ("ok", "skipped")]
    if failures:
        lines.append("## Failures")
        lines.append("")
        for cell in failures:
            lines.append(
                f"- {cell.impl} on {cell.variant} ({cell.workload}): "
                f"{cell.status} — {cell.error}"
            )
        lines.append("")
    return "\n".join(lines)


def _count(metrics: dict[str, Any]) -> str:
    rounds = metrics.get("rounds", 1)
    return f"{metrics['reads']}" + (f" ×{rounds} rounds" if rounds > 1 else "")


def _display(path: Path) -> Path:
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


def _short(variant: str) -> str:
    return variant.split("-", 1)[0] if variant.startswith("V") else variant


def _clip(text: str | None, length: int = 120) -> str:
    text = (text or "").replace("|", "/").replace("\n", " ")
    return text if len(text) <= length else text[: length - 1] + "…"


# --------------------------------------------------------------------------- main


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
    import compileall

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
        sizes = _replace(sizes, open_repeats=args.repeats)
    if args.sparse_repeats:
        sizes = _replace(sizes, sparse_repeats=args.sparse_repeats)
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
                    plans.append(
                        plan_reads(
                            runner,
                            folder.name,
                            folder,
                            levels,
                            workload,
                            impl_names,
                            refs,
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
    report["notes"] = notes + _standard_notes(cells)
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
    report["cells"] = [
        {
            "variant": c.variant,
            "workload": c.workload,
            "impl": c.impl,
            "kind": c.kind,
            "status": c.status,
            "error": c.error,
            "pixels": c.pixels,
            "metrics": c.metrics(),
            "check": c.check,
            "runs": [
                {k: val for k, val in run.items() if k != "samples_path"}
                for run in c.runs
            ],
        }
        for c in cells
    ]
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
        if family(c.impl) in ("dicomslide", "limit")
        and (
            c.status not in ("ok", "skipped")
            or (c.check or {}).get("verdict") == "MISMATCH"
        )
    ]
    return 1 if failed and not args.no_fail else 0


def _standard_notes(cells: list[Cell]) -> list[str]:
    notes = [
        "Levels are the VOLUME levels of the series, largest first, found with "
        "pydicom; each implementation's own levels are matched to them by exact size "
        "(dicomslide also lists THUMBNAIL images as levels, wsidicom numbers levels "
        "by powers of two).",
        "Defaults of every library are kept: dicomslide's frame cache (128 MiB, "
        "decode pool of os.cpu_count() threads), OpenSlide's tile cache, wsidicom's "
        "frame caches and single-threaded read_region. Nothing is warmed up: the "
        "first read of a child includes any lazy initialisation (the median per read "
        "is robust to that, the total is not).",
        "OpenSlide returns straight RGBA; the alpha channel is dropped after "
        "checking it on the checked reads. wsidicom is read with as_array=True "
        "when available.",
        "The open workloads run a fresh interpreter per run, so nothing in-process is "
        "warm; the OS page cache is (the files were read before).",
    ]
    return notes


def _replace(sizes: Sizes, **changes: int) -> Sizes:
    from dataclasses import replace

    return replace(sizes, **changes)


if __name__ == "__main__":
    sys.exit(main())
