"""The benchmark suite runs (a smoke test; speed is measured, never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT


def run_benchmark(*options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_quick_benchmark_runs_and_cross_checks_pixels(corpus, tmp_path):
    result = run_benchmark(
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
    )
    assert result.returncode == 0, result.stderr[-2000:]
    table = (tmp_path / "smoke.md").read_text()
    assert "| dicomslide |" in table and "limit-cache" in table
    report = json.loads((tmp_path / "smoke.json").read_text())
    assert report  # results were written


def test_rounds_of_reads_cells_are_spread_over_the_run(corpus, tmp_path):
    result = run_benchmark(
        "--rounds",
        "2",
        "--workloads",
        "a,c",
        "--variants",
        "V13,V05",
        "--impls",
        "limit-1t,limit-cache",
        "--corpus",
        str(corpus),
        "--out",
        str(tmp_path),
        "--name",
        "rounds",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    cells = json.loads((tmp_path / "rounds.json").read_text())["cells"]
    assert len(cells) == 8
    for cell in cells:
        assert len(cell["runs"]) == 2
        assert cell["check"]["verdict"] == "equal"  # from its first round
    first = [cell["runs"][0]["child"] for cell in cells]
    second = [cell["runs"][1]["child"] for cell in cells]
    # round 1 of every cell, then round 2: 8 children each
    assert sorted(first) == list(range(1, 9))
    assert sorted(second) == list(range(9, 17))


def test_colour_managed_reads_are_checked_and_divided_by_raw(corpus, tmp_path):
    result = run_benchmark(
        "--workloads",
        "a",
        "--variants",
        "V05",
        "--impls",
        "dicomslide,dicomslide-colour",
        "--corpus",
        str(corpus),
        "--out",
        str(tmp_path),
        "--name",
        "colour",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "colour.json").read_text())
    (row,) = report["colour_ratios"]
    assert row["variant"].startswith("V05") and row["workload"] == "a"
    assert row["ratio"] == row["colour_s"] / row["raw_s"] > 0
    cells = {cell["impl"]: cell for cell in report["cells"]}
    # checked against LittleCMS on the raw region: V05's Adobe RGB profile
    # changes the pixels, so an uncorrected read would be a mismatch
    assert cells["dicomslide-colour"]["check"]["verdict"] in ("equal", "close")
    assert "Colour-managed ÷ raw reads" in (tmp_path / "colour.md").read_text()


def test_wan_proxy_relays_and_counts_requests(orthanc):
    from urllib.parse import urlsplit

    import requests

    from benchmarks.wanproxy import WanProxy

    target = urlsplit(orthanc.base_url)
    with WanProxy(str(target.hostname), int(target.port or 80), 0.01, 100) as proxy:
        url = proxy.url("/dicom-web/studies")
        direct = requests.get(
            f"{orthanc.dicomweb_url}/studies", headers={"Accept": "application/json"}
        )
        with requests.Session() as session:
            answers = [
                session.get(url, headers={"Accept": "application/json"})
                for _ in range(3)
            ]
        assert [a.status_code for a in answers] == [200] * 3

        def studies(answer: requests.Response) -> list[str]:
            # Orthanc lists the studies in no fixed order
            return sorted(item["0020000D"]["Value"][0] for item in answer.json())

        assert all(studies(a) == studies(direct) for a in answers)
        counts = proxy.reset()
        assert (counts.requests, counts.connections) == (3, 1)  # kept alive
        # the bytes on the wire (Orthanc may compress), headers on top
        bodies = sum(int(a.headers["Content-Length"]) for a in answers)
        assert counts.bytes_down > bodies > 0
        assert counts.max_in_flight == 1
