"""Colour-managed reads: LittleCMS's pixels, corrected frames cached apart.

Reads with ``correct_color=True`` must give what PIL.ImageCms (LittleCMS)
gives for the whole raw region, within ±1, whichever way dicomslide gets
there (its region or its frames corrected, an identity skipped).
"""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from PIL import Image, ImageCms

import dicomslide
from dicomslide.cache import FrameCache
from dicomslide.client import LocalFolderClient
from dicomslide.color import ColorTransform
from dicomslide.testing import synthetic
from dicomslide.testing.synthetic.icc import _matrix_trc_profile


def littlecms(raw: np.ndarray, profile: bytes) -> np.ndarray:
    """The reference: LittleCMS applied to a whole raw region, as 0.7 did."""
    transform = ImageCms.buildTransform(
        ImageCms.ImageCmsProfile(io.BytesIO(profile)),
        ImageCms.createProfile("sRGB"),
        "RGB",
        "RGB",
        renderingIntent=ImageCms.Intent.PERCEPTUAL,
    )
    return np.asarray(ImageCms.applyTransform(Image.fromarray(raw), transform))


def assert_within_one(got: np.ndarray, expected: np.ndarray) -> None:
    assert got.shape == expected.shape and got.dtype == np.uint8
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


def near_srgb_profile() -> bytes:
    """sRGB primaries and white with a pure gamma 2.2 curve: close to sRGB,
    not the same (darks differ by a few levels)."""
    return _matrix_trc_profile(
        "near sRGB, gamma 2.2 (test only)",
        primaries=[(0.64, 0.33), (0.30, 0.60), (0.15, 0.06)],
        white=(0.3127, 0.3290),
        gamma=2.2,
    )


def _every_colour() -> np.ndarray:
    values = np.arange(256, dtype=np.uint8)
    cube = np.stack(np.meshgrid(values, values, values, indexing="ij"), axis=-1)
    return cube.reshape(4096, 4096, 3)


def test_identity_only_where_every_colour_stays():
    cube = _every_colour()
    srgb = synthetic.icc_profile("srgb")
    assert ColorTransform(srgb).is_identity
    np.testing.assert_array_equal(littlecms(cube, srgb), cube)  # truly identity
    for profile in (near_srgb_profile(), synthetic.icc_profile("wide")):
        assert not ColorTransform(profile).is_identity
        assert not np.array_equal(littlecms(cube, profile), cube)


# Reads that take either path: a small read of large frames has its region
# corrected, a large one its frames; some reach past the matrix (fill).
REGIONS = [
    ((1, 3), (37, 45)),  # small: region corrected
    ((30, 50), (120, 140)),  # large, across edge tiles
    ((-20, 100), (90, 80)),  # past the top and the right edge: the fill
]


def _open(image: synthetic.SyntheticImage, cache: FrameCache) -> dicomslide.TiledImage:
    parts = [pydicom.dcmread(path, stop_before_pixels=True) for path in image.files]
    client = LocalFolderClient(image.files[0].parent)
    return dicomslide.TiledImage(client, parts, cache=cache)


@pytest.fixture(scope="module", params=["wide", "near-srgb", "srgb"])
def profiled(request, tmp_path_factory) -> tuple[synthetic.SyntheticImage, bytes]:
    profile = (
        near_srgb_profile()
        if request.param == "near-srgb"
        else synthetic.icc_profile(request.param)
    )
    image = synthetic.write_wsi_image(
        tmp_path_factory.mktemp(request.param),
        total_rows=100,
        total_cols=140,
        tile_rows=48,
        tile_cols=64,
        icc_profile=profile,
        seed=5,
    )
    return image, profile


def _padded_truth(image: synthetic.SyntheticImage, offset, size) -> np.ndarray:
    """The raw region: stored pixels, 255 (white glass) outside the matrix."""
    (row, column), (rows, columns) = offset, size
    truth = image.pixels[0, 0]
    region = np.full((rows, columns, 3), 255, np.uint8)
    r0, c0 = max(row, 0), max(column, 0)
    r1 = min(row + rows, truth.shape[0])
    c1 = min(column + columns, truth.shape[1])
    region[r0 - row : r1 - row, c0 - column : c1 - column] = truth[r0:r1, c0:c1]
    return region


@pytest.mark.parametrize(
    "raw_first", [False, True], ids=["corrected-first", "raw-first"]
)
def test_reads_match_littlecms_and_raw_stays_raw(profiled, raw_first):
    image, profile = profiled
    # one image, one cache: raw and corrected reads of the same frames
    tiled = _open(image, FrameCache(64 << 20))
    corrected = tiled.get_total_pixel_matrix(correct_color=True)
    raw = tiled.get_total_pixel_matrix(correct_color=False)
    order = [raw, corrected] if raw_first else [corrected, raw]
    for _ in range(2):  # the second time from the cache
        for matrix in order:
            for offset, size in REGIONS:
                got = matrix.read_region(offset, size)
                expected = _padded_truth(image, offset, size)
                if matrix is corrected:
                    assert_within_one(got, littlecms(expected, profile))
                else:
                    np.testing.assert_array_equal(got, expected)
            tiles = matrix[[0, 2, 5]]  # whole tiles, the last an edge tile
            for tile, index in zip(tiles, [0, 2, 5], strict=True):
                (row, column), _ = matrix.get_tile_bounding_box(index)
                expected = _padded_truth(image, (row, column), (48, 64))
                if matrix is corrected:
                    expected = littlecms(expected, profile)
                    assert_within_one(tile, expected)
                else:
                    np.testing.assert_array_equal(tile, expected)
    if profile != synthetic.icc_profile("srgb"):
        whole = corrected[:, :, :]
        assert np.abs(whole.astype(int) - image.pixels[0, 0]).max() > 1


@pytest.mark.parametrize(
    "variant", ["V05-wsidicomizer-svs", "V13-wsidicomizer-jpeg422"]
)
def test_corpus_colour_managed_reads_match_littlecms(corpus, variant):
    folder = corpus / variant
    cache = FrameCache(64 << 20)
    managed = dicomslide.find_slides(folder, cache=cache)[0]
    raw = dicomslide.find_slides(folder, correct_color=False, cache=cache)[0]
    profile = raw.get_volume_images()[0].icc_profile
    assert profile is not None
    rows, columns = raw.total_pixel_matrix_dimensions[0]
    reads = [
        ((1001, 2003), (256, 256)),
        ((3000, 4100), (1024, 1024)),
        ((rows - 300, columns - 200), (512, 512)),  # past the corner
        ((1001, 2003), (256, 256)),  # again, frames cached
    ]
    changed = 0
    for offset, size in reads:
        got = managed.get_image_region(offset, 0, size)
        plain = raw.get_image_region(offset, 0, size)
        expected = littlecms(plain, profile)
        assert_within_one(got, expected)
        changed = max(changed, int(np.abs(expected.astype(int) - plain).max()))
    # V05's profile is Adobe RGB: corrected; V13's is sRGB: an identity
    assert (changed > 1) == variant.startswith("V05")
