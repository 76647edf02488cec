"""Opaque RGBA reads (what the OpenSlide facade shows), on both paste paths.

RGB frames are pasted into RGBA arrays by Pillow's unpacker where the
installed Pillow behaves as :mod:`dicomslide._compat` needs, by NumPy
otherwise: every pixel test here runs on both paths.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pydicom
import pytest
from dicomweb_client import DICOMwebClient
from PIL import Image

import dicomslide
from dicomslide import _compat, web
from dicomslide.cache import FrameCache
from dicomslide.image import rgba_frame_store
from dicomslide.rgba import OpaqueRGBA
from dicomslide.testing import synthetic
from tests.faultproxy import FaultProxy

JPEG_BASELINE = "1.2.840.10008.1.2.4.50"


@pytest.fixture(autouse=True, params=["pillow", "numpy"])
def paste_path(request, monkeypatch) -> str:
    """Run a test with Pillow's fast paste, then with the NumPy fallback."""
    if request.param == "pillow":
        assert _compat.PILLOW_RGB_PASTE, "the installed Pillow lost the fast path"
        monkeypatch.setattr(_compat, "_paster", _compat._pillow_paster)
    else:
        monkeypatch.setattr(_compat, "_paster", _compat._numpy_paster)
    return str(request.param)


def _tiled(
    image: synthetic.SyntheticImage, cache: FrameCache | None = None
) -> dicomslide.TiledImage:
    metadata = pydicom.dcmread(image.files[0], stop_before_pixels=True)
    return dicomslide.TiledImage(
        image.files[0].parent,
        metadata,
        correct_color=False,
        cache=FrameCache(1 << 26) if cache is None else cache,
    )


def _jpeg(tmp_path, **kwargs) -> synthetic.SyntheticImage:
    return synthetic.write_wsi_image(
        tmp_path,
        total_rows=130,
        total_cols=200,
        tile_rows=64,
        tile_cols=64,
        transfer_syntax=JPEG_BASELINE,
        jpeg_quality=95,
        seed=11,
        **kwargs,
    )


@pytest.mark.parametrize(
    ("transfer_syntax", "samples", "options"),
    [
        (JPEG_BASELINE, 3, {"jpeg_subsampling": "4:2:2"}),
        (JPEG_BASELINE, 3, {"jpeg_rgb": True, "jpeg_subsampling": "4:4:4"}),
        (JPEG_BASELINE, 1, {}),
        ("1.2.840.10008.1.2.4.90", 3, {}),
        ("1.2.840.10008.1.2.1", 3, {}),
        ("1.2.840.10008.1.2.1", 1, {}),
    ],
)
def test_rgba_store_adds_opaque_alpha(tmp_path, transfer_syntax, samples, options):
    image = synthetic.write_wsi_image(
        tmp_path,
        total_rows=130,
        total_cols=200,
        tile_rows=64,
        tile_cols=64,
        samples=samples,
        transfer_syntax=transfer_syntax,
        organization="TILED_SPARSE",
        omitted_tiles=[(0, 1)],
        seed=5,
        **options,
    )
    cache = FrameCache(1 << 26)
    tiled = _tiled(image, cache)
    store, rgba_store = tiled._store, rgba_frame_store(tiled)
    rows, columns = (-3, 140), (10, 205)  # past the edges, over the omitted tile
    rgb = store.read_region(0, 0, rows, columns, fill=0)
    rgba = rgba_store.read_region(0, 0, rows, columns, fill=0)
    assert rgba.shape == (143, 195, 4) and rgba.dtype == np.uint8
    assert rgba_store.samples_per_pixel == 4
    # the colours are the plain read's, a grey sample in all three bands
    np.testing.assert_array_equal(rgba[..., :3], np.broadcast_to(rgb, (143, 195, 3)))
    # alpha: 255 on stored pixels, 0 past the edges and on the omitted tile
    inside = np.zeros((143, 195), dtype=bool)
    inside[3:133, :190] = True
    inside[3:67, 54:118] = False  # tile (0, 1): columns 64-127, rows 0-63
    np.testing.assert_array_equal(rgba[..., 3], np.where(inside, 255, 0))
    assert not rgba[~inside].any()
    assert rgb[inside].std() > 10  # content, not a constant


def test_rgba_reads_share_the_plain_frames(tmp_path):
    image = _jpeg(tmp_path, jpeg_subsampling="4:2:2")
    cache = FrameCache(1 << 26)
    tiled = _tiled(image, cache)
    store, rgba_store = tiled._store, rgba_frame_store(tiled)
    rgb = store.read_region(0, 0, (0, 64), (0, 64), fill=0)
    assert len(cache) == 1
    rgba = rgba_store.read_region(0, 0, (0, 64), (0, 64), fill=0)
    assert len(cache) == 1 and cache.nbytes == 64 * 64 * 3  # one RGB frame
    assert store.metrics.as_dict()["frames_fetched"] == 1
    assert store.metrics.as_dict()["cache_hits"] == 1
    np.testing.assert_array_equal(rgba[..., :3], rgb)
    assert (rgba[..., 3] == 255).all() and rgb.std() > 10
    # and the other way round: an RGBA read's frames serve plain reads
    rgba_store.read_region(0, 0, (64, 128), (64, 128), fill=0)
    store.read_region(0, 0, (64, 128), (64, 128), fill=0)
    assert store.metrics.as_dict()["frames_fetched"] == 2
    assert store.metrics.as_dict()["cache_hits"] == 2
    with pytest.raises(ValueError, match="no transform"):
        rgba_store.read_region(0, 0, (0, 8), (0, 8), fill=0, transform=np.negative)


@pytest.mark.parametrize("samples", [1, 3])
@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize(
    ("rows", "columns"),
    [
        ((0, 7), (0, 9)),  # the whole frame
        ((2, 7), (3, 9)),  # ends at the frame's last byte
        ((0, 3), (1, 4)),  # inside: rows that do not follow on in memory
        ((6, 7), (0, 9)),  # a single row
    ],
)
def test_opaque_rgba_pastes_any_part_of_a_frame(samples, contiguous, rows, columns):
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (7, 9, samples), dtype=np.uint8)
    frame.flags.writeable = False  # as cached
    out = rng.integers(0, 256, (9, 12, 4), dtype=np.uint8)
    target = out if contiguous else np.zeros((9, 12, 8), dtype=np.uint8)[..., ::2]
    target[...] = out
    before = out.copy()
    OpaqueRGBA(target).paste(frame, rows, columns, (1, 2))
    height, width = rows[1] - rows[0], columns[1] - columns[0]
    expected = before.copy()
    inside = expected[1 : 1 + height, 2 : 2 + width]
    inside[..., :3] = frame[rows[0] : rows[1], columns[0] : columns[1]]
    inside[..., 3] = 255
    np.testing.assert_array_equal(target, expected)


def test_rgba_needs_eight_bit_grey_or_rgb(tmp_path):
    image = synthetic.write_wsi_image(
        tmp_path,
        total_rows=40,
        total_cols=40,
        tile_rows=32,
        tile_cols=32,
        samples=1,
        bits=16,
    )
    with pytest.raises(ValueError, match="8-bit grey or RGB"):
        rgba_frame_store(_tiled(image, FrameCache(1 << 20)))


def test_the_fast_paste_writes_as_numpy_does(paste_path):
    rng = np.random.default_rng(4)
    frame = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    fast = rng.integers(0, 256, (60, 70, 4), dtype=np.uint8)
    public = fast.copy()
    pillow, numpy = _compat._pillow_paster(fast), _compat._numpy_paster(public)
    # the whole frame, a part ending at the array's last row and column, a row
    for rows, columns, origin in [
        ((0, 40), (0, 50), (0, 0)),
        ((13, 40), (7, 50), (33, 27)),
        ((39, 40), (0, 50), (59, 20)),
    ]:
        pillow(frame, rows, columns, origin)
        numpy(frame, rows, columns, origin)
    np.testing.assert_array_equal(fast, public)
    assert (fast[33:, 27:, 3] == 255).all() and fast[:, :, :3].std() > 10


def _copying_map_buffer(out, size, *args):
    """A map_buffer that hands out an image of its own: writes miss `out`."""
    return Image.core.fill("RGBX", size, (0, 0, 0, 0))


@pytest.mark.parametrize(
    ("name", "replacement"),
    [
        ("raw_decoder", None),  # gone
        ("map_buffer", _copying_map_buffer),  # no longer maps the array
    ],
)
def test_a_pillow_that_behaves_otherwise_gets_the_numpy_paste(
    monkeypatch, paste_path, name, replacement
):
    if replacement is None:
        monkeypatch.delattr(Image.core, name)
    else:
        monkeypatch.setattr(Image.core, name, replacement)
    assert not _compat._pillow_paster_works()


def test_plain_and_rgba_reads_of_one_image_fetch_each_frame_once(
    orthanc, tmp_path, monkeypatch, paste_path
):
    # each read asks for its own frames only
    monkeypatch.setattr(web.settings, "neighbours", False)
    truth = synthetic.write_wsi_image(
        tmp_path,
        total_rows=150,
        total_cols=230,
        tile_rows=64,
        tile_cols=96,
        transfer_syntax=JPEG_BASELINE,
        uids=synthetic.SlideUIDs.new(f"RGBA1-{paste_path}"),
        seed=8,
    )
    orthanc.upload(truth.files)
    with FaultProxy(orthanc.base_url) as proxy:
        client = DICOMwebClient(proxy.dicomweb_url)
        slide = dicomslide.find_slides(
            client,
            study_instance_uid=truth.uids.study_instance_uid,
            correct_color=False,
            cache=FrameCache(1 << 26),
        )[0]
        image = slide.get_volume_images()[0]
        plain = image.get_total_pixel_matrix()
        rgba = rgba_frame_store(image)
        # the plain read's request is slow: the RGBA read starts meanwhile
        proxy.add("/frames/", delay=0.5)
        reads: dict[str, np.ndarray] = {}

        def read_plain() -> None:
            reads["plain"] = plain.read_region((0, 0), (150, 230))

        thread = threading.Thread(target=read_plain)
        thread.start()
        deadline = time.monotonic() + 10
        while not proxy.requests_to("/frames/") and time.monotonic() < deadline:
            time.sleep(0.005)
        assert proxy.requests_to("/frames/")[0].status == 0  # still loading
        reads["rgba"] = rgba.read_region(0, 0, (0, 150), (0, 230), 0)
        thread.join()
        assert len(proxy.requests_to("/frames/")) == 1
        # one after the other: the other view's frames serve
        again = rgba.read_region(0, 0, (10, 140), (20, 200), 0)
        plain.read_region((5, 5), (100, 100))
        assert len(proxy.requests_to("/frames/")) == 1
    np.testing.assert_array_equal(reads["rgba"][..., :3], reads["plain"])
    assert (reads["rgba"][..., 3] == 255).all()
    np.testing.assert_array_equal(again, reads["rgba"][10:140, 20:200])
    assert reads["plain"].std() > 10
    assert image.metrics["frames_fetched"] == 9  # 3 x 3 tiles
