"""Measure one implementation on one workload, in a process of its own.

Run by :mod:`benchmarks.run` as ``python -m benchmarks.child JOB.json``.  The
job names the implementation, the folder, the canonical level shapes, the
reads, which reads to keep for the pixel cross-check, whether to collect
garbage before the timed reads, and where to write the result (JSON) and the
kept pixels (``.npz``).  Running each implementation in
its own process makes peak RSS and CPU time (user + system, all threads)
attributable to it.  Peak RSS is ``VmHWM`` on Linux (see :func:`_maxrss_kib`
for why not ``ru_maxrss``, which is reported alongside).
"""

from __future__ import annotations

import faulthandler
import gc
import json
import os
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _ru_maxrss_kib() -> int:
    # Linux reports KiB.
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _maxrss_kib() -> int:
    """Peak resident set of this process's own address space, in KiB.

    On Linux, ``ru_maxrss`` survives ``execve``: a child forked from a large
    parent starts with the parent's high-water mark, so small children would
    all report the parent's size.  ``VmHWM`` (``/proc/self/status``) is the
    same peak for the current address space only, i.e. for this child alone.
    Elsewhere ``ru_maxrss`` is used.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return _ru_maxrss_kib()


def _io_counters() -> dict[str, int]:
    """Bytes this process has read: ``rchar`` (by read system calls, page
    cache hits included) and ``read_bytes`` (what it made the kernel fetch
    from storage, mapped pages included), from ``/proc/self/io``; empty where
    there is no such file."""
    try:
        with open("/proc/self/io") as io:
            fields = dict(line.split(":") for line in io)
    except OSError:
        return {}
    return {key: int(fields[key]) for key in ("rchar", "read_bytes")}


def _evict(paths: list[str]) -> None:
    """Drop files from the OS page cache (clean pages; written data are
    flushed first), so that reading them again fetches them from storage."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


class _Collections:
    """The garbage collector's runs while it is on: how many of each
    generation, and the time they took (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.counts = [0, 0, 0]
        self.seconds = 0.0
        self._start = 0.0
        self.on = False

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if not self.on:
            return
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.counts[info["generation"]] += 1
            self.seconds += time.perf_counter() - self._start


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Execute a job and return its result record (never raises)."""
    from benchmarks.impls import create

    result: dict[str, Any] = {"status": "ok", "phase": "import"}
    reads = [tuple(r) for r in job["reads"]]
    check = set(job.get("check", []))
    samples: dict[str, np.ndarray] = {}
    times: list[float] = []
    adapter = create(job["impl"])
    collections = _Collections()
    gc.callbacks.append(collections)
    try:
        start = time.perf_counter()
        adapter.load()
        result["import_s"] = time.perf_counter() - start
        result["rss_after_import_kib"] = _maxrss_kib()
        _evict(job.get("evict", []))
        io_start = _io_counters()
        result["phase"] = "open"
        cpu_open = _cpu()
        collections.on = True
        start = time.perf_counter()
        adapter.open(Path(job["folder"]))
        adapter.bind([tuple(s) for s in job["levels"]])
        result["open_s"] = time.perf_counter() - start
        adapter.prepare(sorted({r[0] for r in reads}))
        result["open_and_prepare_s"] = time.perf_counter() - start
        result["rss_after_open_kib"] = _maxrss_kib()
        result["phase"] = "read"
        if job.get("collect_garbage"):
            # Settle the garbage collector's debt from import and open, so
            # that a full collection of the import's objects (10-30 ms,
            # depending on the libraries imported) does not land in one
            # implementation's timed reads and not in another's.
            gc.collect()
        cpu_reads = _cpu()
        result["cpu_open_s"] = cpu_reads - cpu_open
        for index, (level, row, col, h, w) in enumerate(reads):
            start = time.perf_counter()
            array = adapter.read(level, row, col, h, w)
            times.append(time.perf_counter() - start)
            if index == 0:
                # Collections from the start of the open to the first pixel
                # (a full one walks every object the imports made)
                collections.on = False
                result["gc_to_first_pixel"] = {
                    "full": collections.counts[2],
                    "young": collections.counts[0] + collections.counts[1],
                    "seconds": collections.seconds,
                }
                result["io_to_first_pixel"] = {
                    key: value - io_start[key] for key, value in _io_counters().items()
                }
            if index in check:
                if hasattr(adapter, "inspect_last"):
                    adapter.inspect_last()
                samples[f"r{index}"] = np.array(array, copy=True)
            if index == 0 or index in check:
                shape = tuple(np.shape(array))
                dtype = str(np.asarray(array).dtype)
                if shape != (h, w, 3) or dtype != "uint8":
                    raise ValueError(
                        f"read {index} gave {shape} {dtype}, not {(h, w, 3)} uint8"
                    )
        result["cpu_reads_s"] = _cpu() - cpu_reads
        result["phase"] = "done"
        adapter.close()
    except Exception as error:
        result["status"] = f"{result['phase']}-failed"
        result["error"] = f"{type(error).__name__}: {error}"
        result["traceback"] = traceback.format_exc(limit=8)
    result["times"] = times
    result["extra"] = adapter.extra
    result["rss_peak_kib"] = _maxrss_kib()
    result["ru_maxrss_kib"] = _ru_maxrss_kib()
    result["cpu_child_s"] = _cpu()
    if samples and job.get("samples_path"):
        np.savez(job["samples_path"], **samples)
    return result


def main(argv: list[str]) -> int:
    """Entry point: ``python -m benchmarks.child JOB.json``."""
    job = json.loads(Path(argv[1]).read_text())
    timeout = job.get("timeout")
    if timeout:
        # A hung child dumps every thread's stack to stderr and exits, shortly
        # before the parent would kill it, so a timeout says where it hung.
        faulthandler.dump_traceback_later(max(1.0, float(timeout) - 5.0), exit=True)
    result = run_job(job)
    faulthandler.cancel_dump_traceback_later()
    Path(job["result_path"]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
