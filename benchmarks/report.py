"""The report of a run: ratios, the cells in JSON, Markdown and standard notes.

:func:`ratio_rows` divides every dicomslide cell's headline number by those of
the other implementations on the same variant and workload;
:func:`cell_records` lists the cells for the JSON report
(``benchmarks/results/latest.json``); :func:`render_markdown` writes the whole
report as Markdown (``latest.md``) from the JSON report and the cells;
:func:`standard_notes` are the notes on method every report carries.
"""

from __future__ import annotations

from typing import Any

from benchmarks.cells import Cell, family
from benchmarks.impls import IMPLS

DICOMSLIDE_IMPLS = [
    "dicomslide",
    "dicomslide-colour",
    "dicomslide-matrix",
    "dicomslide-openslide",
]
#: The colour-managed reads and the raw reads they are compared with.
COLOUR, RAW = "dicomslide-colour", "dicomslide"
#: Target of colour-managed ÷ raw reads (issue 23).
COLOUR_TARGET = 1.25
#: Denominators of the ratio table, in column order.
RATIO_BASES = ["openslide", "wsidicom", "limit-cache", "limit-Nt"]


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


def colour_ratio_rows(cells: list[Cell]) -> list[dict[str, Any]]:
    """Colour-managed ÷ raw reads (dicomslide-colour ÷ dicomslide), per variant
    and reads workload."""
    by_key: dict[tuple[str, str], dict[str, Cell]] = {}
    for cell in cells:
        if cell.kind == "reads" and cell.impl in (COLOUR, RAW):
            by_key.setdefault((cell.variant, cell.workload), {})[cell.impl] = cell
    rows = []
    for (variant, workload), group in by_key.items():
        colour, raw = group.get(COLOUR), group.get(RAW)
        if colour is None or raw is None:
            continue
        bad = any(
            c.check is not None and c.check.get("verdict") == "MISMATCH"
            for c in (colour, raw)
        )
        value = None
        if not bad and colour.status == "ok" and raw.status == "ok":
            a, b = colour.headline(), raw.headline()
            value = a / b if a is not None and b else None
        rows.append(
            {
                "variant": variant,
                "workload": workload,
                "colour_s": colour.headline(),
                "raw_s": raw.headline(),
                "ratio": value,
                "noisy": _noisy(colour) or _noisy(raw),
                "max_abs_vs_littlecms": (colour.check or {}).get("max_abs"),
                "pixels_differ": bad,
            }
        )
    return rows


def cell_records(cells: list[Cell]) -> list[dict[str, Any]]:
    """The cells as the JSON report lists them: summary and every run."""
    return [
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


def _gc_text(metrics: dict[str, Any]) -> str:
    """The "full GC in open" column: runs whose open or first read held a full
    (generation 2) garbage collection, of all runs."""
    full = metrics.get("full_gc_runs")
    return "—" if full is None else f"{full}/{metrics['runs']}"


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
        exact = [c for c in checks if family(c.impl) in ("dicomslide", "limit")]
        lines.append(
            f"- All {len(exact)} checked cells of dicomslide and the limits are exact."
            if exact
            else "- No dicomslide or limit cell was checked."
        )
        colour = [c for c in checks if family(c.impl) == "colour"]
        if colour:
            worst = max(int((c.check or {}).get("max_abs") or 0) for c in colour)
            lines.append(
                f"- All {len(colour)} checked colour-managed cells are within "
                f"{worst} of LittleCMS applied to the raw region."
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

    if report.get("colour_ratios"):
        lines.append("## Colour-managed ÷ raw reads")
        lines.append("")
        lines.append(
            f"`{COLOUR}` (the default `correct_color=True`) ÷ `{RAW}` "
            "(`correct_color=False`): total wall of all reads, same run; target "
            f"≤ {COLOUR_TARGET}. `vs LittleCMS`: max abs diff of the checked reads "
            "from PIL.ImageCms applied to the whole raw region (±1 allowed)."
        )
        lines.append("")
        lines.append(
            "| variant | workload | colour-managed s | raw s | ratio | vs LittleCMS |"
        )
        lines.append("|---|---|---|---|---|---|")
        for row in report["colour_ratios"]:
            ratio = row["ratio"]
            text = "✗ pixels" if row["pixels_differ"] else f"{_fmt(ratio)}×"
            if ratio is not None and ratio > COLOUR_TARGET:
                text += " (above target)"
            if row["noisy"]:
                text += " ⚠bg"
            diff = row["max_abs_vs_littlecms"]
            lines.append(
                f"| {_short(row['variant'])} | {row['workload']} "
                f"| {_fmt(row['colour_s'])} | {_fmt(row['raw_s'])} | {text} "
                f"| {'—' if diff is None else ('= 0' if diff == 0 else f'≤ {diff}')} |"
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
        "encoded frames, for the limits). `full GC in open` = runs in which a "
        "full (generation 2) garbage collection, which walks every object the "
        "imports made, fell between the start of the open and the first pixel."
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
                "| first read ms | full GC in open | process wall s | peak RSS MiB "
                "| CPU child s | pixels vs limit | other load |"
            )
            lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
            for cell in group:
                mt = cell.metrics()
                if not mt:
                    lines.append(
                        f"| {cell.impl} | {cell.status}: {_clip(cell.error)} "
                        "|||||||||||"
                    )
                    continue
                lines.append(
                    f"| {cell.impl} | {mt['runs']} "
                    f"| {_fmt(mt['path_to_pixel_s'])} | "
                    f"{_fmt(mt['import_s'])} | {_fmt(mt['open_s'])} | "
                    f"{_fmt(mt['first_read_ms'])} | {_gc_text(mt)} | "
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


def standard_notes() -> list[str]:
    """The notes on method that every report carries."""
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


def _count(metrics: dict[str, Any]) -> str:
    rounds = metrics.get("rounds", 1)
    return f"{metrics['reads']}" + (f" ×{rounds} rounds" if rounds > 1 else "")


def _short(variant: str) -> str:
    return variant.split("-", 1)[0] if variant.startswith("V") else variant


def _clip(text: str | None, length: int = 120) -> str:
    text = (text or "").replace("|", "/").replace("\n", " ")
    return text if len(text) <= length else text[: length - 1] + "…"
