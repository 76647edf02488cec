"""A whole-level scan keeps memory within the cache budget (issue 6 §4)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SCAN = """
import json, sys
import dicomslide
from dicomslide.cache import get_default_cache
slide = dicomslide.find_slides(sys.argv[1], correct_color=False)[0]
matrix = slide.get_volume_images()[0].get_total_pixel_matrix()
sampler = dicomslide.TotalPixelMatrixSampler(matrix, (512, 512), padding=16)
count = sum(1 for _ in sampler)
rows, columns, samples = sampler.padded_region_shape
print(json.dumps({
    "regions": count,
    # VmHWM, not ru_maxrss: the latter keeps the forking parent's peak
    "peak_mib": int(next(line.split()[1] for line in open("/proc/self/status")
                         if line.startswith("VmHWM"))) / 1024,
    "cache_mib": get_default_cache().max_bytes / 2**20,
    "region_mib": rows * columns * samples / 2**20,
}))
"""


@pytest.mark.slow
def test_whole_level_scan_stays_within_the_budget(corpus):
    folder = corpus / "V13-wsidicomizer-jpeg422"
    result = subprocess.run(
        [sys.executable, "-c", SCAN, str(folder)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    facts = json.loads(result.stdout)
    assert facts["regions"] == 12 * 16  # 6000 x 8000 in 512 x 512 regions
    budget = facts["cache_mib"] + 2 * facts["region_mib"] + 150
    assert facts["peak_mib"] < budget, facts
