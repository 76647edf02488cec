"""Decoding: colour follows the JPEG stream, not only the stored labels."""

from __future__ import annotations

import sys
from dataclasses import replace

import imagecodecs
import numpy as np
import pydicom
import pytest

import dicomslide
from dicomslide import codec
from dicomslide.cache import FrameCache
from dicomslide.errors import UnsupportedTransferSyntaxError
from dicomslide.testing import synthetic

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


JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.57"


def _twelve_bit(
    transfer_syntax: str,
) -> tuple[bytes, np.ndarray, codec.PixelDescription]:
    """A 12-bit grey frame, encoded as JPEG by libjpeg-turbo (imagecodecs)."""
    rows, columns = np.mgrid[0:48, 0:40]
    pixels = ((rows * 83 + columns * 29) % 4096).astype(np.uint16)
    data = imagecodecs.jpeg8_encode(
        pixels,
        level=95,
        lossless=transfer_syntax == JPEG_LOSSLESS,
        bitspersample=12,
    )
    desc = codec.PixelDescription(48, 40, 1, 16, 12, 0, "MONOCHROME2", 0, "")
    return bytes(data), pixels, replace(desc, transfer_syntax_uid=transfer_syntax)


@pytest.mark.parametrize("transfer_syntax", [JPEG_EXTENDED, JPEG_LOSSLESS])
def test_twelve_bit_jpeg_is_decoded(transfer_syntax):
    data, pixels, desc = _twelve_bit(transfer_syntax)
    got = codec.decode_frame(data, desc, "1.2.3", 1)
    assert got.shape == (48, 40, 1) and got.dtype == np.uint16
    error = np.abs(got[..., 0].astype(int) - pixels)
    assert error.max() <= (0 if transfer_syntax == JPEG_LOSSLESS else 40)
    assert got.max() > 4000  # twelve bits, not eight


@pytest.fixture
def without_libjpeg(monkeypatch):
    """pylibjpeg-libjpeg not installed: importing it fails."""
    monkeypatch.setitem(sys.modules, "libjpeg", None)
    codec._decoder_available.cache_clear()
    yield
    codec._decoder_available.cache_clear()


@pytest.mark.parametrize("transfer_syntax", [JPEG_EXTENDED, JPEG_LOSSLESS])
def test_a_missing_twelve_bit_jpeg_decoder_names_its_package(
    without_libjpeg, transfer_syntax
):
    data, _, desc = _twelve_bit(transfer_syntax)
    with pytest.raises(UnsupportedTransferSyntaxError) as info:
        codec.decode_frame(data, desc, "1.2.3.4", 7)
    assert "pylibjpeg-libjpeg" in str(info.value)
    assert info.value.frame_number == 7 and "1.2.3.4" in str(info.value)
    assert not codec.is_supported_transfer_syntax(transfer_syntax)
    # 8-bit frames of JPEG Baseline and Extended need only simplejpeg
    assert codec.is_supported_transfer_syntax(JPEG_BASELINE)
    eight_bit = replace(desc, bits_allocated=8, bits_stored=8)
    assert codec.decodes_into(replace(eight_bit, transfer_syntax_uid=JPEG_EXTENDED))
