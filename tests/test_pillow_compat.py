"""dicomslide._compat: the Pillow view fast path and its public-API fallback.

Both paths must give the same images; the fast path must also let NumPy view
the array without a copy, read-only, and must stop doing so once Pillow writes
to the image. Run on the lowest and the newest Pillow that setup.cfg allows.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import dicomslide.openslide as openslide
from dicomslide import _compat

PATHS = {
    "fast": _compat._viewable_rgba_image,
    "public": _compat._public_rgba_image,
}


def rgba(height: int = 5, width: int = 7) -> np.ndarray:
    rng = np.random.default_rng(height * width)
    return rng.integers(0, 256, (height, width, 4), dtype=np.uint8)


def test_the_fast_path_works_with_this_pillow():
    """The facade's reads rely on it for speed (numpy.asarray without a copy)."""
    assert _compat._view_is_safe()
    assert _compat.VIEW_FAST_PATH
    array = rgba()
    assert np.shares_memory(np.asarray(_compat.rgba_image(array)), array)


@pytest.mark.parametrize("path", sorted(PATHS))
def test_images_hold_the_pixels(path):
    array = rgba()
    image = PATHS[path](array)
    assert (image.mode, image.size) == ("RGBA", (7, 5))
    np.testing.assert_array_equal(np.asarray(image), array)
    np.testing.assert_array_equal(np.asarray(image.convert("RGB")), array[..., :3])
    assert image.getpixel((6, 4)) == tuple(array[4, 6])


@pytest.mark.parametrize("path", sorted(PATHS))
def test_writing_to_an_image_leaves_the_array_alone(path):
    array = rgba()
    before = array.copy()
    image = PATHS[path](array)
    image.paste((1, 2, 3, 4), (0, 0, 3, 2))
    np.testing.assert_array_equal(array, before)
    pixels = np.asarray(image)
    assert pixels[0, 0].tolist() == [1, 2, 3, 4]
    np.testing.assert_array_equal(pixels[2:], before[2:])
    assert not np.shares_memory(pixels, array)


def test_views_are_read_only_and_copies_are_not_views():
    array = rgba()
    image = _compat._viewable_rgba_image(array)
    view = np.asarray(image)
    assert np.shares_memory(view, array) and not view.flags.writeable
    with pytest.raises(ValueError):
        view[0, 0, 0] = 1
    copy = image.copy()
    assert not np.shares_memory(np.asarray(copy), array)
    np.testing.assert_array_equal(np.asarray(copy), array)


def test_the_public_path_copies():
    array = rgba()
    assert not np.shares_memory(np.asarray(_compat._public_rgba_image(array)), array)


def test_a_closed_image_drops_the_array():
    image = _compat._viewable_rgba_image(rgba())
    image.close()
    assert image._array is None


def test_non_contiguous_arrays():
    array = rgba(6, 8)[::2, 1:]
    for make in PATHS.values():
        np.testing.assert_array_equal(np.asarray(make(array)), array)


def test_facade_regions_are_viewed_without_a_copy(corpus):
    """A read on whole level pixels hands NumPy the pixels read, not a copy."""
    with openslide.OpenSlide(corpus / "V13-wsidicomizer-jpeg422") as slide:
        region = slide.read_region((512, 512), 0, (300, 200))
        first, second = np.asarray(region), np.asarray(region)
        assert np.shares_memory(first, second)
        assert first.shape == (200, 300, 4) and not first.flags.writeable
        assert isinstance(region, Image.Image)
