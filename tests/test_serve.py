"""`dicomslide serve` over HTTP: the real server on 127.0.0.1 against real slides.

Tiles are compared with DeepZoomGenerator's for the options the DZI declares;
native tiles with the frames as stored in the files (read with pydicom).
"""

from __future__ import annotations

import concurrent.futures
import io
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.encaps import generate_fragmented_frames

from dicomslide.openslide import OpenSlide
from dicomslide.openslide.deepzoom import DeepZoomGenerator
from dicomslide.testing import synthetic, synthetic_derived
from tests.viewer_server import ROOT, get, slides, viewer_server

SAMPLE = ROOT / "data" / "sample"


@pytest.fixture(scope="module")
def sample_server():
    with viewer_server(SAMPLE) as base:
        yield base


@pytest.fixture(scope="module")
def derived_slide(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("viewer")
    source = synthetic.write_slide(
        folder / "slide", "rgb_full", uids=synthetic.SlideUIDs.new("VIEWER")
    )
    seg = synthetic_derived.write_segmentation(
        folder / "seg", source.levels[0], segments=2, organization="TILED_FULL"
    )
    pmap = synthetic_derived.write_parametric_map(folder / "pm", source.levels[0])
    return {"folder": folder, "source": source, "seg": seg, "pmap": pmap}


@pytest.fixture(scope="module")
def derived_server(derived_slide):
    with viewer_server(derived_slide["folder"]) as base:
        yield base


def _dzi(base: str, slide_id: str, layer: str = "") -> ElementTree.Element:
    path = (
        f"/slides/{slide_id}/layers/{layer}.dzi" if layer else f"/slides/{slide_id}.dzi"
    )
    status, headers, body = get(base, path)
    assert status == 200
    return ElementTree.fromstring(body)


def _options(dzi: ElementTree.Element) -> tuple[int, int, str]:
    return int(dzi.get("TileSize")), int(dzi.get("Overlap")), str(dzi.get("Format"))


def _tile(base: str, prefix: str, level: int, column: int, row: int, fmt: str) -> bytes:
    status, headers, body = get(base, f"{prefix}_files/{level}/{column}_{row}.{fmt}")
    assert status == 200, body
    assert headers["content-type"] == f"image/{fmt}"
    return body


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def _stored_frames(path: Path) -> list[bytes]:
    dataset = pydicom.dcmread(path)
    frames = generate_fragmented_frames(
        dataset.PixelData, number_of_frames=int(dataset.NumberOfFrames)
    )
    return [b"".join(fragments) for fragments in frames]


def test_the_index_lists_the_slide_with_its_stable_id(sample_server):
    (summary,) = slides(sample_server)
    assert re.fullmatch(r"[0-9a-f]{16}", summary["id"])
    status, headers, page = get(sample_server, "/")
    assert status == 200
    text = page.decode()
    assert summary["id"] in text and "DEMO-001" in text
    assert f'href="/slides/{summary["id"]}"' in text
    assert summary["study"] in text
    # another server on the same files gives the slide the same id
    with viewer_server(SAMPLE / "level0.dcm") as other:
        assert slides(other)[0]["id"] == summary["id"]
    status, headers, thumbnail = get(
        sample_server, f"/slides/{summary['id']}/thumbnail.png"
    )
    picture = _pixels(thumbnail)
    assert max(picture.shape[:2]) == 256 and picture.std() > 10


def test_dzi_and_tiles_equal_deepzoomgenerator(sample_server):
    (summary,) = slides(sample_server)
    slide_id = summary["id"]
    tile_size, overlap, fmt = _options(_dzi(sample_server, slide_id))
    assert (tile_size, overlap, fmt) == (256, 0, "jpeg")
    generator = DeepZoomGenerator(
        OpenSlide(SAMPLE), tile_size=tile_size, overlap=overlap
    )
    status, _, dzi = get(sample_server, f"/slides/{slide_id}.dzi")
    assert dzi.decode() == generator.get_dzi("jpeg")
    top = generator.level_count - 1
    prefix = f"/slides/{slide_id}"
    # whole, edge and corner tiles of stored levels, and of levels between them
    for level, address in [
        (top, (3, 2)),
        (top, (15, 11)),
        (top - 1, (7, 5)),
        (top - 2, (1, 1)),
        (top - 2, (3, 2)),
        (top - 4, (0, 0)),
        (3, (0, 0)),
    ]:
        expected = np.asarray(generator.get_tile(level, address))
        png = _pixels(_tile(sample_server, prefix, level, *address, "png"))
        np.testing.assert_array_equal(png, expected)
        jpeg = _pixels(_tile(sample_server, prefix, level, *address, "jpeg"))
        assert jpeg.shape == expected.shape
        difference = np.abs(jpeg.astype(np.int16) - expected.astype(np.int16))
        # JPEG's loss: small on a tile, larger on a few pixels
        limit = 3.0 if min(expected.shape[:2]) >= 64 else 12.0
        assert difference.mean() < limit, (level, address)


def test_native_tiles_are_the_stored_frames(sample_server):
    (summary,) = slides(sample_server)
    prefix = f"/slides/{summary['id']}"
    generator = DeepZoomGenerator(OpenSlide(SAMPLE), tile_size=256, overlap=0)
    top = generator.level_count - 1
    before = slides(sample_server)[0]["metrics"]
    for level, name, address in [(top, "level0", (3, 2)), (top - 1, "level1", (6, 4))]:
        frames = _stored_frames(SAMPLE / f"{name}.dcm")
        columns = -(
            -pydicom.dcmread(SAMPLE / f"{name}.dcm").TotalPixelMatrixColumns // 256
        )
        stored = frames[address[1] * columns + address[0]]
        assert _tile(sample_server, prefix, level, *address, "jpeg") == stored
    # an edge tile, and a level that is not a stored one, are rendered
    frames = _stored_frames(SAMPLE / "level0.dcm")
    edge = _tile(sample_server, prefix, top, 15, 11, "jpeg")
    assert edge not in frames
    assert _tile(sample_server, prefix, top - 2, 1, 1, "jpeg") not in frames
    after = slides(sample_server)[0]["metrics"]
    assert after["tiles_native"] - before.get("tiles_native", 0) == 2
    assert after["tiles_rendered"] - before.get("tiles_rendered", 0) == 2


def test_native_tiles_can_be_turned_off():
    with viewer_server(SAMPLE, "--no-native") as base:
        (summary,) = slides(base)
        frames = _stored_frames(SAMPLE / "level0.dcm")
        top = len(_pyramid_levels(base, summary["id"])) - 1
        tile = _tile(base, f"/slides/{summary['id']}", top, 3, 2, "jpeg")
        assert tile not in frames
        assert slides(base)[0]["metrics"]["tiles_rendered"] == 1


def _pyramid_levels(base: str, slide_id: str) -> list[int]:
    dzi = _dzi(base, slide_id)
    size = dzi.find("{http://schemas.microsoft.com/deepzoom/2008}Size")
    width, height = int(size.get("Width")), int(size.get("Height"))
    return list(range(int(np.ceil(np.log2(max(width, height)))) + 1))


def test_etag_and_conditional_get(sample_server):
    (summary,) = slides(sample_server)
    path = f"/slides/{summary['id']}_files/11/2_2.jpeg"
    status, headers, body = get(sample_server, path)
    assert status == 200 and body
    etag = headers["etag"]
    assert etag.startswith('"') and "max-age" in headers["cache-control"]
    status, headers, body = get(sample_server, path, {"If-None-Match": etag})
    assert status == 304 and body == b"" and headers["etag"] == etag
    status, _, body = get(sample_server, path, {"If-None-Match": '"other"'})
    assert status == 200 and body
    other = get(sample_server, f"/slides/{summary['id']}_files/11/2_3.jpeg")[1]["etag"]
    assert other != etag


def test_tiles_are_served_in_parallel(sample_server):
    (summary,) = slides(sample_server)
    paths = [
        f"/slides/{summary['id']}_files/10/{column}_{row}.png"
        for column in range(4)
        for row in range(3)
    ]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda p: get(sample_server, p), paths))
    assert [status for status, _, _ in results] == [200] * len(paths)
    assert len({body for _, _, body in results}) == len(paths)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/slides/0123456789abcdef", 404),
        ("/slides/0123456789abcdef.dzi", 404),
        ("/slides/{id}_files/99/0_0.jpeg", 404),
        ("/slides/{id}_files/12/99_0.jpeg", 404),
        ("/slides/{id}_files/12/0_0.gif", 400),
        ("/slides/{id}_files/x/0_0.jpeg", 400),
        ("/slides/{id}_files/12/zero.jpeg", 400),
        ("/slides/{id}/layers/c5z0.dzi", 404),
        ("/slides/{id}/label.png", 200),
        ("/slides/{id}/overview.png", 404),
        ("/nothing", 404),
    ],
)
def test_errors_are_short(sample_server, path, status):
    (summary,) = slides(sample_server)
    got, headers, body = get(sample_server, path.format(id=summary["id"]))
    assert got == status, body
    if status != 200:
        assert len(body) < 200 and b"Traceback" not in body
        html = get(
            sample_server, path.format(id=summary["id"]), {"Accept": "text/html"}
        )
        assert html[0] == status and b"<h1>" in html[2] and b"Traceback" not in html[2]


@pytest.mark.parametrize(
    "path",
    [
        "/static/../../cli.py",
        "/static/../__init__.py",
        "/static/%2e%2e/%2e%2e/cli.py",
        "/static/..%2f..%2fcli.py",
        "/openseadragon/../../../cli.py",
        "/openseadragon/%2e%2e/%2e%2e/%2e%2e/cli.py",
        "/slides/../data/sample/level0.dcm",
        "/slides/%2e%2e/data/sample/level0.dcm",
        "/slides/{id}_files/../../level0.dcm",
        "/slides/{id}_files/12/..%2f..%2flevel0.dcm",
        "/slides/{id}/..%2f..%2flevel0.dcm",
        "/data/sample/level0.dcm",
        "//etc/passwd",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
    ],
)
def test_nothing_outside_is_readable(sample_server, path):
    (summary,) = slides(sample_server)
    status, _, body = get(sample_server, path.format(id=summary["id"]))
    assert status in (400, 404), (path, status)
    assert b"DICM" not in body and b"import" not in body and b"root:" not in body


def test_overlays_show_segments_in_their_colour(derived_slide, derived_server):
    (summary,) = [s for s in slides(derived_server) if s["container"] == "VIEWER"]
    segments = [layer for layer in summary["layers"] if layer["kind"] == "SEGMENT"]
    parameters = [layer for layer in summary["layers"] if layer["kind"] == "PARAMETER"]
    seg = derived_slide["seg"]
    assert [s["label"] for s in segments] == seg.segment_labels
    assert len(parameters) == 1
    masks = seg.masks[0]  # (segments, rows, columns) at level 0
    for index, layer in enumerate(segments):
        dzi = _dzi(derived_server, summary["id"], layer["name"])
        tile_size, overlap, fmt = _options(dzi)
        assert fmt == "png"
        size = dzi.find("{http://schemas.microsoft.com/deepzoom/2008}Size")
        top = int(
            np.ceil(np.log2(max(int(size.get("Width")), int(size.get("Height")))))
        )
        prefix = f"/slides/{summary['id']}/layers/{layer['name']}"
        colour = tuple(int(layer["color"][i : i + 2], 16) for i in (1, 3, 5))
        height, width = masks.shape[1:]
        shown = 0
        for row in range(-(-height // tile_size)):
            for column in range(-(-width // tile_size)):
                tile = _pixels(_tile(derived_server, prefix, top, column, row, "png"))
                top_row = row * tile_size - (overlap if row else 0)
                left = column * tile_size - (overlap if column else 0)
                rows, columns = tile.shape[:2]
                expected = masks[index, top_row : top_row + rows, left : left + columns]
                np.testing.assert_array_equal(
                    tile[..., 3], expected.astype(np.uint8) * 255
                )
                assert (tile[expected > 0][:, :3] == colour).all()
                shown += int(expected.sum())
        assert shown >= int(masks[index].sum()) > 0  # (overlaps count twice)
    low, high = summary_range = _range(
        derived_server, summary["id"], parameters[0]["name"]
    )
    values = derived_slide["pmap"].values
    assert low == pytest.approx(float(np.nanmin(values)), rel=0.05, abs=0.05)
    assert high == pytest.approx(float(np.nanmax(values)), rel=0.05, abs=0.05)
    assert summary_range[0] < summary_range[1]


def _range(base: str, slide_id: str, layer: str) -> tuple[float, float]:
    status, _, page = get(base, f"/slides/{slide_id}")
    assert status == 200
    config = re.search(rb'id="slide-config">(.*?)</script>', page, re.S)
    import json

    described = json.loads(config.group(1))
    (found,) = [item for item in described["layers"] if item["name"] == layer]
    return tuple(found["range"])


def test_counters_count_each_path_in_the_process():
    import dicomslide
    from dicomslide.serve.catalog import SlideEntry

    slide = dicomslide.open_slide(SAMPLE, correct_color=False)
    entry = SlideEntry(slide)
    layer = entry.layer("c0z0")
    top = layer.generator.level_count - 1
    layer.tile(top, 3, 2, "jpeg")
    layer.tile(top, 15, 11, "jpeg")
    layer.tile(top, 3, 2, "png")
    assert slide.metrics["tiles_native"] == 1
    assert slide.metrics["tiles_rendered"] == 2


def test_the_command_names_the_extra_when_it_is_missing():
    from tests.subprocesses import run_python

    done = run_python(
        """
        import sys
        sys.modules['uvicorn'] = None
        from dicomslide.cli import main
        sys.exit(main(['serve', 'data/sample']))
        """
    )
    assert done.returncode == 1
    assert "pip install starlette uvicorn" in done.stderr
    assert "'serve' extra" in done.stderr


def test_focal_planes_and_optical_paths_are_layers(tmp_path):
    import dicomslide

    source = synthetic.write_slide(
        tmp_path / "slide", "multi_z_channel_full", uids=synthetic.SlideUIDs.new("ZC")
    )
    slide = dicomslide.open_slide(source.folder, correct_color=False)
    with viewer_server(source.folder) as base:
        (summary,) = slides(base)
        views = [layer["name"] for layer in summary["layers"]]
        assert views == [f"c{c}z{z}" for c in range(2) for z in range(3)]
        assert [layer["focus"] for layer in summary["layers"][:3]] == [
            slide.get_focal_plane_offset(z) for z in range(3)
        ]
        pictures = []
        for channel, plane in [(0, 0), (1, 2), (0, 1)]:
            name = f"c{channel}z{plane}"
            dzi = _dzi(base, summary["id"], "" if name == "c0z0" else name)
            tile_size, overlap, fmt = _options(dzi)
            assert (tile_size, overlap, fmt) == (254, 1, "jpeg")
            prefix = f"/slides/{summary['id']}" + (
                "" if name == "c0z0" else f"/layers/{name}"
            )
            top = int(np.ceil(np.log2(max(slide.size))))
            tile = _pixels(_tile(base, prefix, top, 0, 0, "png"))
            expected = slide.get_image_region((0, 0), 0, tile.shape[:2], channel, plane)
            np.testing.assert_array_equal(tile, np.repeat(expected, 3, axis=2))
            pictures.append(tile)
        assert not np.array_equal(pictures[0], pictures[1])
        assert not np.array_equal(pictures[0], pictures[2])


def test_a_dicomweb_source_shows_the_same_slide(orthanc, sample_server):
    orthanc.upload(sorted(SAMPLE.glob("*.dcm")))
    (local,) = slides(sample_server)
    with viewer_server(orthanc.dicomweb_url) as base:
        (remote,) = [s for s in slides(base) if s["container"] == "DEMO-001"]
        assert remote["id"] == local["id"]  # stable across sources
        prefix = f"/slides/{remote['id']}"
        assert get(base, prefix + ".dzi")[2] == get(sample_server, prefix + ".dzi")[2]
        generator = DeepZoomGenerator(OpenSlide(SAMPLE), tile_size=256, overlap=0)
        top = generator.level_count - 1
        png = _pixels(_tile(base, prefix, top - 2, 1, 1, "png"))
        np.testing.assert_array_equal(
            png, np.asarray(generator.get_tile(top - 2, (1, 1)))
        )
        frames = _stored_frames(SAMPLE / "level0.dcm")
        assert _tile(base, prefix, top, 3, 2, "jpeg") == frames[2 * 16 + 3]


def test_native_tiles_over_dicomweb_fetch_a_block_in_one_request(orthanc):
    from tests.faultproxy import FaultProxy

    orthanc.upload(sorted(SAMPLE.glob("*.dcm")))
    level0 = pydicom.dcmread(SAMPLE / "level0.dcm", stop_before_pixels=True)
    frames = _stored_frames(SAMPLE / "level0.dcm")
    with (
        FaultProxy(orthanc.base_url) as proxy,
        viewer_server(proxy.dicomweb_url) as base,
    ):
        (summary,) = [s for s in slides(base) if s["container"] == "DEMO-001"]
        prefix = f"/slides/{summary['id']}"
        top = len(_pyramid_levels(base, summary["id"])) - 1
        block = [(column, row) for row in range(4) for column in range(4)]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            tiles = list(
                pool.map(lambda a: _tile(base, prefix, top, *a, "jpeg"), block)
            )
        for (column, row), tile in zip(block, tiles, strict=True):
            assert tile == frames[row * 16 + column]
        fetches = proxy.requests_to(f"{level0.SOPInstanceUID}/frames/")
        asked = [
            f.path.split("/frames/")[1].split("?")[0].replace("%2C", ",").split(",")
            for f in fetches
        ]
        # the 16 tiles of an aligned 4 x 4 block: one request for 16 frames
        # (the first; blocks beside it may be fetched ahead after it)
        assert sorted(int(n) for n in asked[0]) == [
            row * 16 + column + 1 for row in range(4) for column in range(4)
        ]
        assert all("1" not in numbers for numbers in asked[1:])
