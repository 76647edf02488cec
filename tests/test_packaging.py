"""What `make dist` builds is this project, installable with its extras."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_wheel_holds_the_package_its_command_and_extras(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("dicomslide-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        text = archive.read(metadata).decode()
        entry_points = archive.read(
            metadata.replace("METADATA", "entry_points.txt")
        ).decode()
    for module in ("cli.py", "slide.py", "openslide/__init__.py", "py.typed"):
        assert f"dicomslide/{module}" in names
    assert "Provides-Extra: dask" in text
    assert "dicomslide = dicomslide.cli:main" in entry_points


def test_the_dask_hint_names_something_that_installs():
    code = (
        "import sys; sys.modules['dask'] = None; sys.modules['dask.array'] = None\n"
        "import dicomslide\n"
        "try:\n"
        "    dicomslide.open_slide('data/sample').to_dask()\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=True,
    )
    assert "pip install 'dask[array]'" in done.stdout
    assert "dicomslide[dask]" not in done.stdout  # PyPI's dicomslide is 0.7.2
