"""Decoding: colour follows the JPEG stream, not only the stored labels."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import synthetic

import dicomslide
from dicomslide import codec
from dicomslide.cache import FrameCache

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
