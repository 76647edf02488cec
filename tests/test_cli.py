"""The dicomslide command line."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import synthetic
from PIL import Image

import dicomslide
from dicomslide.cli import main


@pytest.fixture(scope="module")
def truth(tmp_path_factory) -> synthetic.SyntheticSlide:
    folder = tmp_path_factory.mktemp("cli")
    return synthetic.write_slide(
        folder, "rgb_full", uids=synthetic.SlideUIDs.new("CLI-1")
    )


def test_ls_lists_the_slides(truth, capsys):
    assert main(["ls", str(truth.folder)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[0] == "CONTAINER"
    assert lines[1].split()[:4] == ["CLI-1", "4", "470", "x"]


def test_info_describes_one_slide(truth, capsys):
    assert main(["info", str(truth.folder), "--container", "CLI-1"]) == 0
    out = capsys.readouterr().out
    assert "container:          CLI-1" in out
    assert "470 x 300" in out and "label image:" in out and "ICC profile:" in out


def test_region_thumbnail_and_label_pictures(truth, tmp_path, capsys):
    region_path = tmp_path / "region.png"
    assert (
        main(
            [
                "region",
                str(truth.folder),
                "--container",
                "CLI-1",
                "--level",
                "1",
                "--offset",
                "20",
                "40",
                "--size",
                "60",
                "80",
                "--raw-colors",
                "-o",
                str(region_path),
            ]
        )
        == 0
    )
    slide = dicomslide.find_slides(truth.folder, correct_color=False)[0]
    expected = slide.get_image_region((20, 40), 1, (60, 80))
    np.testing.assert_array_equal(np.asarray(Image.open(region_path)), expected)
    thumbnail_path = tmp_path / "thumb.png"
    assert (
        main(
            ["thumbnail", str(truth.folder), "--size", "100", "-o", str(thumbnail_path)]
        )
        == 0
    )
    assert max(Image.open(thumbnail_path).size) == 100
    label_path = tmp_path / "label.png"
    assert main(["label", str(truth.folder), "-o", str(label_path)]) == 0
    assert Image.open(label_path).size == (
        truth.label.total_cols,
        truth.label.total_rows,
    )
    assert "wrote" in capsys.readouterr().out


def test_errors_are_one_line_with_exit_codes(truth, tmp_path, capsys):
    assert main(["ls", str(tmp_path / "missing")]) == 3
    assert capsys.readouterr().err.strip() == (
        f"dicomslide: error: no such file or folder: {tmp_path / 'missing'}"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["ls", str(empty)]) == 3
    assert main(["info", str(truth.folder), "--container", "NOPE"]) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 2
    with pytest.raises(SystemExit) as info:
        main(["region", str(truth.folder)])  # --size and -o are required
    assert info.value.code == 2


def test_console_script_and_module(truth):
    result = subprocess.run(
        [sys.executable, "-m", "dicomslide", "ls", str(truth.folder)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "CLI-1" in result.stdout
    assert result.stderr == ""  # no progress bar when not on a terminal


def test_dicomweb_source_with_authentication(orthanc_available, tmp_path, capsys):
    from orthanc import OrthancServer

    server = OrthancServer(tmp_path / "server", credentials=("viewer", "pw-123"))
    server.start()
    try:
        truth = synthetic.write_slide(
            tmp_path / "slide", "sparse", uids=synthetic.SlideUIDs.new("CLI-WEB")
        )
        server.upload(truth.files)
        url = server.dicomweb_url
        assert main(["ls", url, "--user", "viewer", "--password", "pw-123"]) == 0
        assert "CLI-WEB" in capsys.readouterr().out
        assert main(["ls", url]) == 1
        err = capsys.readouterr().err
        assert "authentication failed" in err and "pw-123" not in err
        # credentials in the URL: into the session, out of the URL
        in_url = url.replace("http://", "http://viewer:pw-123@")
        assert main(["ls", in_url]) == 0
        shown = capsys.readouterr()
        assert "CLI-WEB" in shown.out and "pw-123" not in shown.out + shown.err
    finally:
        server.stop()
