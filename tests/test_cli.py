"""The dicomslide command line."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import dicomslide
from dicomslide.cli import main
from dicomslide.testing import synthetic


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
    assert lines[0].split()[:5] == ["CONTAINER", "LEVELS", "SIZE", "(W", "x"]
    assert lines[1].split()[:5] == ["CLI-1", "4", "470", "x", "300"]


def test_info_describes_one_slide(truth, capsys):
    assert main(["info", str(truth.folder), "--container", "CLI-1"]) == 0
    out = capsys.readouterr().out
    assert "container:          CLI-1" in out
    assert "470 x 300" in out and "label image:" in out and "ICC profile:" in out
    assert "SIZE (W x H px)" in out and "µm/px (x, y)" in out


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
                "40",
                "20",
                "--size",
                "80",
                "60",
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
    from tests.orthanc import OrthancServer

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


def _run(*args: object) -> subprocess.CompletedProcess[str]:
    """The command in a process of its own, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "dicomslide", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_line_error(done: subprocess.CompletedProcess[str], code: int) -> str:
    assert done.returncode == code, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dicomslide: error: "), lines
    return lines[0]


def test_thumbnail_as_large_as_asked_or_as_the_slide(truth, tmp_path):
    out = tmp_path / "large.png"
    done = _run("thumbnail", truth.folder, "--size", 5000, "-o", out)
    assert done.returncode == 0, done.stderr
    # level 0 is 470 x 300: the largest thumbnail the slide allows
    assert Image.open(out).size == (470, 300)
    done = _run("thumbnail", truth.folder, "--size", 200, "-o", out)
    assert Image.open(out).size == (200, 128)
    slide = dicomslide.find_slides(truth.folder)[0]
    expected = np.asarray(slide.get_thumbnail(200))
    assert np.array_equal(np.asarray(Image.open(out)), expected)


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (("thumbnail", "--size", "0"), "argument --size"),
        (("thumbnail", "--size", "-3"), "argument --size"),
        (("thumbnail", "--size", "big"), "argument --size"),
        (("region", "--size", "0", "10"), "argument --size"),
        (("region", "--size", "-5", "10"), "argument --size"),
        (("region", "--size", "10", "10", "--level", "9"), "--level 9"),
        (("region", "--size", "10", "10", "--channel", "4"), "--channel 4"),
        (("region", "--size", "10", "10", "--focal-plane", "2"), "--focal-plane 2"),
        (("region", "--level", "1"), "--size"),
    ],
)
def test_bad_arguments_exit_2_with_one_line_naming_them(truth, arguments, named):
    command, *rest = arguments
    line = _one_line_error(_run(command, truth.folder, *rest), 2)
    assert named in line and "Traceback" not in line
    if "--level" in named:
        assert "the slide has 4 levels" in line


def test_verbose_after_the_command_and_help(truth):
    done = _run("ls", truth.folder, "-v")
    assert done.returncode == 0 and "DEBUG" in done.stderr
    done = _run("region", "--help")
    assert done.returncode == 0
    for text in (
        "--level",
        "pyramid level",
        "--channel",
        "channel index",
        "--focal-plane",
        "focal plane index",
        "default: 0",
        "example:",
        "X Y",
        "WIDTH HEIGHT",
    ):
        assert text in done.stdout, text
    assert "examples:" in _run("--help").stdout


def test_overview_and_default_file_names(truth, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "dicomslide", "overview", str(truth.folder)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    written = tmp_path / "CLI-1-overview.png"
    assert Image.open(written).size == (
        truth.overview.total_cols,
        truth.overview.total_rows,
    )
    done = subprocess.run(
        [sys.executable, "-m", "dicomslide", "thumbnail", str(truth.folder)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0 and (tmp_path / "CLI-1-thumbnail.png").exists()


@pytest.fixture(scope="module")
def segmented(tmp_path_factory) -> tuple[synthetic.SyntheticSlide, object]:
    from dicomslide.testing import synthetic_derived

    folder = tmp_path_factory.mktemp("cli-seg")
    source = synthetic.write_slide(
        folder, "rgb_full", uids=synthetic.SlideUIDs.new("CLI-SEG")
    )
    seg = synthetic_derived.write_segmentation(
        folder / "seg", source.levels[0], segments=2
    )
    return source, seg


def test_derived_channels_in_ls_and_info(segmented):
    source, seg = segmented
    listing = _run("ls", source.folder)
    header, row = listing.stdout.splitlines()
    assert "OPTICAL PATHS" in header and "DERIVED CHANNELS" in header
    assert row.split()[-3:] == ["1", "1", "2"]
    info = _run("info", source.folder).stdout
    derived = info.split("derived channels:")[1]
    for number, label in zip(seg.segment_numbers, seg.segment_labels, strict=True):
        assert f"SEGMENT {number} {label!r}" in derived
    assert seg.series_instance_uid in derived and "levels 0" in derived
    assert "binary 0-1" in derived


def test_masks_are_written_visible(segmented, tmp_path):
    source, seg = segmented
    out = tmp_path / "mask.png"
    rows, columns = seg.masks[0].shape[1:]
    done = _run(
        "region", source.folder, "--channel", 1, "--size", columns, rows, "-o", out
    )
    assert done.returncode == 0, done.stderr
    assert "written as 0-255" in done.stdout
    written = np.asarray(Image.open(out))
    assert set(np.unique(written)) <= {0, 255}
    assert np.array_equal(written, seg.masks[0][0] * 255)


def test_a_channel_without_the_level_lists_its_levels(tmp_path):
    from dicomslide.testing import synthetic_derived

    source = synthetic.write_slide(
        tmp_path, "rgb_full", uids=synthetic.SlideUIDs.new("LV")
    )
    synthetic_derived.write_segmentation(tmp_path / "seg", source.levels[0])
    line = _one_line_error(
        _run("region", tmp_path, "--channel", 1, "--level", 2, "--size", 5, 5), 2
    )
    assert "channel 1 has no image at level 2; its levels are 0" in line


def test_an_unreachable_server_fails_fast_naming_host_port_and_cause():
    import socket
    import time

    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.monotonic()
    done = _run("ls", f"http://127.0.0.1:{port}/dicom-web")
    line = _one_line_error(done, 1)
    assert time.monotonic() - start < 20
    assert f"127.0.0.1:{port}" in line and "connection refused" in line
    verbose = _run("ls", f"http://127.0.0.1:{port}/dicom-web", "-v")
    attempts = verbose.stderr.count(f"GET: http://127.0.0.1:{port}/dicom-web/series")
    assert attempts >= 2  # the retries are visible with -v


def test_a_wrong_root_hints_at_the_root(tmp_path):
    import http.server
    import threading

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/not-dicomweb"
        line = _one_line_error(_run("ls", url), 1)
        assert "HTTP 404" in line and "is the DICOMweb root right?" in line
        assert url in line
    finally:
        server.shutdown()
        server.server_close()
