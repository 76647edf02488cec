"""The machine and the tree a benchmark run measures.

Owns what the report says about the run's surroundings: the CPU, cores,
memory, OS and Python (:func:`machine_info`), the versions of the packages
compared (:func:`package_versions`) and the git commit of the tree
(:func:`git_info`); and the CPU counters that tell how busy the rest of the
machine was while a child ran (:func:`busy_cpu_seconds`,
:func:`own_cpu_seconds`). Standard library only, so that :mod:`benchmarks.web`
shares it at no cost.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
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
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total
