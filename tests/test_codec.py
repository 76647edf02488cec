"""Decoding: colour follows the JPEG stream, not only the stored labels."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import synthetic

import dicomslide
from dicomslide import codec
from dicomslide.cache import FrameCache
from dicomslide.rgba import OpaqueRGBA

JPEG_BASELINE = "1.2.840.10008.1.2.4.50"


def _tiled(
    image: synthetic.SyntheticImage,
    cache: FrameCache | None = None,
    photometric: str | None = None,
) -> dicomslide.TiledImage:
    metadata = pydicom.dcmread(image.files[0], stop_before_pixels=True)
    if photometric is not None:
        metadata.PhotometricInterpretation = photometric
    return dicomslide.TiledImage(
        image.files[0].parent,
        metadata,
        correct_color=False,
        cache=FrameCache(1 << 26) if cache is None else cache,
    )


def _read(
    image: synthetic.SyntheticImage, photometric: str | None = None
) -> np.ndarray:
    return _tiled(image, photometric=photometric).get_total_pixel_matrix()[:, :]


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


@pytest.mark.parametrize("label", [None, "YBR_FULL_422", "YBR_FULL"])
def test_rgb_component_jpeg_is_not_colour_converted(tmp_path, label):
    image = _jpeg(tmp_path, jpeg_rgb=True, jpeg_subsampling="4:4:4")
    assert image.photometric_interpretation == "RGB"
    got = _read(image, label)
    np.testing.assert_array_equal(got, image.redecode("pillow-direct")[0, 0])
    # close to the source: no YCbCr -> RGB transform was applied on RGB data
    assert np.abs(got.astype(int) - image.pixels[0, 0].astype(int)).mean() < 3


@pytest.mark.parametrize("subsampling", ["4:4:4", "4:2:2", "4:2:0"])
@pytest.mark.parametrize("label", [None, "RGB", "YBR_FULL_422"])
def test_ycbcr_jpeg_is_converted_whatever_the_label(tmp_path, subsampling, label):
    image = _jpeg(tmp_path, jpeg_subsampling=subsampling)
    got = _read(image, label)
    np.testing.assert_array_equal(got, image.redecode("pillow-direct")[0, 0])
    assert np.abs(got.astype(int) - image.pixels[0, 0].astype(int)).mean() < 3


def test_sixteen_bit_monochrome(tmp_path):
    image = synthetic.write_wsi_image(
        tmp_path,
        total_rows=100,
        total_cols=90,
        tile_rows=32,
        tile_cols=32,
        samples=1,
        bits=16,
        transfer_syntax="1.2.840.10008.1.2.4.90",
    )
    got = _read(image)
    assert got.dtype == np.uint16
    assert got.max() > 255
    np.testing.assert_array_equal(got, image.pixels[0, 0])


def test_supported_transfer_syntaxes():
    for uid in synthetic.encodable_transfer_syntaxes():
        assert codec.is_supported_transfer_syntax(uid), uid
    for uid in (
        "1.2.840.10008.1.2.2",
        "1.2.840.10008.1.2.4.51",
        "1.2.840.10008.1.2.4.57",
        "1.2.840.10008.1.2.4.70",
        "1.2.840.10008.1.2.4.201",
        "1.2.840.10008.1.2.4.202",
        "1.2.840.10008.1.2.4.203",
        "1.2.840.10008.1.2.8.1",
    ):
        assert codec.is_supported_transfer_syntax(uid), uid
    assert not codec.is_supported_transfer_syntax("1.2.840.10008.1.2.4.100")


def test_big_endian_native_frame():
    pixels = np.arange(12, dtype=np.uint16).reshape(2, 2, 3) * 1000
    desc = codec.PixelDescription(2, 2, 3, 16, 16, 0, "RGB", 0, "1.2.840.10008.1.2.2")
    decoded = codec.decode_frame(pixels.astype(">u2").tobytes(), desc, "1.2.3", 1)
    np.testing.assert_array_equal(decoded, pixels)
    assert decoded.dtype == np.uint16


def test_planar_configuration():
    pixels = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    desc = codec.PixelDescription(2, 4, 3, 8, 8, 0, "RGB", 1, "1.2.840.10008.1.2.1")
    planar = pixels.transpose(2, 0, 1).tobytes()
    np.testing.assert_array_equal(codec.decode_frame(planar, desc, "1.2.3", 1), pixels)


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
    store = _tiled(image, cache)._store
    rgba_store = store.as_rgba()
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
    store = _tiled(image, cache)._store
    rgba_store = store.as_rgba()
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
        _tiled(image, FrameCache(1 << 20))._store.as_rgba()
