"""The benchmark suite runs (a smoke test; speed is measured, never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT


def test_quick_benchmark_runs_and_cross_checks_pixels(corpus, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.run",
            "--quick",
            "--workloads",
            "a",
            "--variants",
            "V13",
            "--impls",
            "dicomslide,limit",
            "--corpus",
            str(corpus),
            "--out",
            str(tmp_path),
            "--name",
            "smoke",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    table = (tmp_path / "smoke.md").read_text()
    assert "| dicomslide |" in table and "limit-cache" in table
    report = json.loads((tmp_path / "smoke.json").read_text())
    assert report  # results were written
