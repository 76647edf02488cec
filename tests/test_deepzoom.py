"""dicomslide.openslide.deepzoom against openslide-python's deepzoom.

Levels, tile grids, the regions each tile is read from and the tile pixels are
compared with ``openslide.deepzoom.DeepZoomGenerator`` for several tile sizes
and overlaps, with and without ``limit_bounds``, on slides of the OpenSlide
library, on ImageSlides, on a slide class written here (levels with odd
downsamples, bounds, a background colour and transparency) and on a DICOM
slide. No mocks.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import dicomslide.openslide as ours
from dicomslide.openslide.deepzoom import DeepZoomGenerator
from tests.openslide_files import (
    BOXES,
    BOXES_PNG,
    BOXES_PNG_NO_ICC,
    DICOM,
    SMALL,
    assert_same_image,
    icc_profile,
    pattern,
    write_aperio_svs,
    write_generic_tiff,
)

CONFIGS = [(254, 1), (256, 0), (64, 2), (50, 7)]


@pytest.fixture(scope="module")
def oracle():
    module = pytest.importorskip(
        "openslide.deepzoom",
        reason="openslide-python (the test oracle) is not installed",
    )
    import openslide

    if openslide.__library_version__ != ours.__library_version__:
        pytest.skip("openslide-python uses another OpenSlide library")
    return module


class PyramidSlide(ours.AbstractSlide):
    """A slide of PIL images, one a level, with the given properties.

    It picks levels and reads regions the way OpenSlide does, so that Deep Zoom
    has non-power-of-two downsamples, bounds and transparency to deal with.
    """

    def __init__(self, levels: list[Image.Image], properties: dict[str, str]) -> None:
        self._levels = [image.convert("RGBA") for image in levels]
        self._properties = properties
        # the profile for this package's AbstractSlide, and for openslide-python's
        self._icc = self._profile = icc_profile()
        base = self._levels[0].size
        self._downsamples = tuple(
            (base[0] / image.size[0] + base[1] / image.size[1]) / 2
            for image in self._levels
        )

    def __repr__(self) -> str:
        return f"PyramidSlide({len(self._levels)} levels)"

    def _icc_profile(self) -> bytes:
        return self._icc

    @classmethod
    def detect_format(cls, filename):
        return None

    def close(self) -> None:
        pass

    @property
    def level_count(self) -> int:
        return len(self._levels)

    @property
    def level_dimensions(self):
        return tuple(image.size for image in self._levels)

    @property
    def level_downsamples(self):
        return self._downsamples

    @property
    def properties(self):
        return self._properties

    @property
    def associated_images(self):
        return {}

    def get_best_level_for_downsample(self, downsample: float) -> int:
        if downsample < self._downsamples[0]:
            return 0
        for level in range(1, len(self._downsamples)):
            if downsample < self._downsamples[level]:
                return level - 1
        return len(self._downsamples) - 1

    def read_region(self, location, level, size):
        if min(size) < 0:  # as OpenSlide
            raise ours.OpenSlideError(f"negative size {size} not allowed")
        image = self._levels[level]
        factor = self._downsamples[level]
        x, y = (math.floor(c / factor) for c in location)
        region = Image.new("RGBA", size)
        region.paste(image.crop((x, y, x + size[0], y + size[1])), (0, 0))
        region.info["icc_profile"] = self._profile
        return region


def pyramid_slide(
    width: int = 700,
    height: int = 530,
    factors: tuple[float, ...] = (3, 7.5),
    properties: dict[str, str] | None = None,
) -> PyramidSlide:
    """Levels shrunk by `factors` (rounded up), margins transparent."""
    base = np.dstack([pattern(width, height), np.full((height, width), 255, np.uint8)])
    base[: height // 13, :] = 0  # transparent margin: the background colour shows
    base[height * 2 // 5 : height // 2, width * 3 // 7 : width * 3 // 5, 3] = 128
    image = Image.fromarray(base)
    levels = [image] + [
        image.resize(
            (math.ceil(width / f), math.ceil(height / f)), Image.Resampling.BOX
        )
        for f in factors
    ]
    if properties is None:
        properties = {
            ours.PROPERTY_NAME_BACKGROUND_COLOR: "20A0F0",
            ours.PROPERTY_NAME_BOUNDS_X: "37",
            ours.PROPERTY_NAME_BOUNDS_Y: "51",
            ours.PROPERTY_NAME_BOUNDS_WIDTH: "601",
            ours.PROPERTY_NAME_BOUNDS_HEIGHT: "433",
        }
    return PyramidSlide(levels, properties)


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("deepzoom-slides")
    return {
        "generic.tiff": write_generic_tiff(folder / "generic.tiff", 613, 457),
        "aperio.svs": write_aperio_svs(folder / "aperio.svs", 333, 250),
    }


SLIDES = [
    "boxes.tiff",
    "small.svs",
    "generic.tiff",
    "aperio.svs",
    "image:boxes.png",
    "image:boxes-no-icc.png",
    "pyramid",
]


@pytest.fixture(params=SLIDES)
def slides(request, written, oracle):
    """The same slide for dicomslide's generator and for openslide-python's."""
    import openslide

    name = request.param
    if name == "pyramid":
        slide = pyramid_slide()
        yield slide, slide
        return
    if name.startswith("image:"):
        path = {"boxes.png": BOXES_PNG, "boxes-no-icc.png": BOXES_PNG_NO_ICC}[
            name.removeprefix("image:")
        ]
        pair = ours.ImageSlide(path), openslide.ImageSlide(path)
    else:
        path = {"boxes.tiff": BOXES, "small.svs": SMALL, **written}[name]
        pair = ours.OpenSlide(path), openslide.OpenSlide(path)
    yield pair
    for slide in pair:
        slide.close()


def addresses(columns: int, rows: int) -> list[tuple[int, int]]:
    """All tiles of small grids; corners, edges and some others of large ones."""
    if columns * rows <= 16:
        return [(c, r) for c in range(columns) for r in range(rows)]
    picks = {
        (0, 0),
        (columns - 1, 0),
        (0, rows - 1),
        (columns - 1, rows - 1),
        (columns // 2, 0),
        (0, rows // 2),
        (columns // 2, rows // 2),
        (columns - 1, rows // 2),
        (columns // 2, rows - 1),
        (1 % columns, 1 % rows),
    }
    return sorted(picks)


def assert_same_generators(mine: DeepZoomGenerator, theirs) -> None:
    assert repr(mine) == repr(theirs)
    assert mine.level_count == theirs.level_count
    assert mine.level_dimensions == theirs.level_dimensions
    assert mine.level_tiles == theirs.level_tiles
    assert mine.tile_count == theirs.tile_count
    for format in ("png", "jpeg"):
        assert mine.get_dzi(format) == theirs.get_dzi(format)
    for level, (columns, rows) in enumerate(theirs.level_tiles):
        for address in [(c, r) for c in range(columns) for r in range(rows)]:
            assert mine.get_tile_coordinates(
                level, address
            ) == theirs.get_tile_coordinates(level, address), (level, address)
            assert mine.get_tile_dimensions(
                level, address
            ) == theirs.get_tile_dimensions(level, address)
        for address in addresses(columns, rows):
            tile = outcome(mine.get_tile, level, address)
            expected = outcome(theirs.get_tile, level, address)
            if isinstance(expected, Image.Image):
                assert isinstance(tile, Image.Image), tile
                assert_same_image(tile, expected)
            else:  # a region past the level's edge, which the slide refuses
                assert tile == expected


def outcome(call, *args):
    """What a call gives: its result, or its exception's type name and text."""
    try:
        return call(*args)
    except Exception as error:
        return (type(error).__name__, str(error))


@pytest.mark.parametrize("limit_bounds", [False, True])
@pytest.mark.parametrize(("tile_size", "overlap"), CONFIGS)
def test_matches_openslide_python(slides, oracle, tile_size, overlap, limit_bounds):
    mine_slide, their_slide = slides
    mine = DeepZoomGenerator(mine_slide, tile_size, overlap, limit_bounds)
    theirs = oracle.DeepZoomGenerator(their_slide, tile_size, overlap, limit_bounds)
    assert_same_generators(mine, theirs)


def test_defaults_and_keywords(oracle):
    with ours.OpenSlide(str(BOXES)) as slide:
        generator = DeepZoomGenerator(slide)
        assert repr(generator) == (
            f"DeepZoomGenerator(OpenSlide({str(BOXES)!r}), "
            "tile_size=254, overlap=1, limit_bounds=False)"
        )
        same = DeepZoomGenerator(
            osr=slide, tile_size=254, overlap=1, limit_bounds=False
        )
        assert same.level_tiles == generator.level_tiles
        assert generator.level_count == 10
        assert generator.level_dimensions[-1] == (300, 250)
        assert generator.level_dimensions[0] == (1, 1)
        assert generator.get_dzi("jpeg") == (
            '<Image TileSize="254" Overlap="1" Format="jpeg" '
            'xmlns="http://schemas.microsoft.com/deepzoom/2008">'
            '<Size Width="300" Height="250" /></Image>'
        )
        tile = generator.get_tile(9, (1, 0))
        assert tile.mode == "RGB" and tile.size == (47, 250)
        stored = slide.read_region((0, 0), 0, (1, 1)).info["icc_profile"]
        assert tile.info["icc_profile"] == stored  # the profile's bytes as stored


def test_bounds_change_the_grid():
    slide = pyramid_slide()
    whole = DeepZoomGenerator(slide, 64, 1, limit_bounds=False)
    bounded = DeepZoomGenerator(slide, 64, 1, limit_bounds=True)
    assert whole.level_dimensions[-1] == (700, 530)
    assert bounded.level_dimensions[-1] == (601, 433)
    assert bounded.get_tile_coordinates(bounded.level_count - 1, (0, 0))[0] == (37, 51)
    # The background colour fills transparent pixels.
    corner = whole.get_tile(whole.level_count - 1, (0, 0))
    assert corner.getpixel((5, 5)) == (0x20, 0xA0, 0xF0)


def test_invalid_tiles_fail_like_openslide_python(oracle):
    import openslide

    with ours.OpenSlide(BOXES) as slide, openslide.OpenSlide(BOXES) as theirs_slide:
        mine = DeepZoomGenerator(slide, 128, 0)
        theirs = oracle.DeepZoomGenerator(theirs_slide, 128, 0)
        top = mine.level_count - 1
        for level, address in [
            (-1, (0, 0)),
            (mine.level_count, (0, 0)),
            (top, (3, 0)),
            (top, (0, -1)),
            (top, (0, 0, 0)),
        ]:
            for method in ("get_tile", "get_tile_coordinates", "get_tile_dimensions"):
                with pytest.raises(ValueError) as error:
                    getattr(mine, method)(level, address)
                with pytest.raises(ValueError) as expected:
                    getattr(theirs, method)(level, address)
                assert str(error.value) == str(expected.value)


def test_dicom_slide(oracle, tmp_path):
    """Deep Zoom of a DICOM slide (needs dicomslide.openslide.dicom)."""
    path = tmp_path / "boxes_0.dcm"
    shutil.copy(DICOM, path)
    with ours.OpenSlide(path) as slide:
        for tile_size, overlap in CONFIGS[:3]:
            for limit_bounds in (False, True):
                assert_same_generators(
                    DeepZoomGenerator(slide, tile_size, overlap, limit_bounds),
                    oracle.DeepZoomGenerator(slide, tile_size, overlap, limit_bounds),
                )
        tile = DeepZoomGenerator(slide, 8, 0).get_tile(4, (1, 1))
        assert tile.size == (8, 8)
        stored = slide.read_region((0, 0), 0, (1, 1)).info["icc_profile"]
        assert tile.info["icc_profile"] == stored  # the profile's bytes as stored


def bounds(x: int, y: int, width: int, height: int) -> dict[str, str]:
    return {
        ours.PROPERTY_NAME_BOUNDS_X: str(x),
        ours.PROPERTY_NAME_BOUNDS_Y: str(y),
        ours.PROPERTY_NAME_BOUNDS_WIDTH: str(width),
        ours.PROPERTY_NAME_BOUNDS_HEIGHT: str(height),
    }


#: Odd geometries: sizes that halve unevenly, levels that are no power of two
#: apart, a level one pixel high, bounds (all four, some, none) and a
#: background colour.
ODD_SLIDES = {
    "odd-sizes": lambda: pyramid_slide(333, 101, (2.2, 5), {}),
    "bounds": lambda: pyramid_slide(257, 129, (1.5, 4), bounds(3, 5, 250, 111)),
    "bounds-x-only": lambda: pyramid_slide(
        301, 77, (3,), {ours.PROPERTY_NAME_BOUNDS_X: "21"}
    ),
    "bounds-size-only": lambda: pyramid_slide(
        190,
        230,
        (2, 7.3),
        {
            ours.PROPERTY_NAME_BOUNDS_WIDTH: "121",
            ours.PROPERTY_NAME_BOUNDS_HEIGHT: "199",
            ours.PROPERTY_NAME_BACKGROUND_COLOR: "102030",
        },
    ),
    "thin": lambda: pyramid_slide(517, 3, (2, 4), {}),
    "single-level": lambda: pyramid_slide(65, 65, (), bounds(1, 2, 63, 61)),
}


@pytest.mark.parametrize("name", sorted(ODD_SLIDES))
@pytest.mark.parametrize("limit_bounds", [False, True])
@pytest.mark.parametrize(("tile_size", "overlap"), [(50, 0), (63, 1), (32, 8)])
def test_odd_geometries_match_openslide_python(
    oracle, name, tile_size, overlap, limit_bounds
):
    """Tile sizes that do not divide the levels, overlaps 0, 1 and 8, the 1 x 1
    levels at the top; every tile's region and size, and sampled tiles' pixels."""
    slide = ODD_SLIDES[name]()
    mine = DeepZoomGenerator(slide, tile_size, overlap, limit_bounds)
    theirs = oracle.DeepZoomGenerator(slide, tile_size, overlap, limit_bounds)
    assert mine.level_dimensions[0] == (1, 1)
    assert_same_generators(mine, theirs)


def test_random_pyramids_match_openslide_python(oracle):
    """Levels, grids and every tile's region and size of random pyramids.

    The slides only describe their levels (no pixels are read), so that many
    shapes can be compared: sizes, downsamples, bounds, tile sizes, overlaps.
    """

    class Shape(PyramidSlide):
        def __init__(self, sizes, properties):
            self._sizes = tuple(sizes)
            self._properties = properties
            base = sizes[0]
            self._downsamples = tuple(
                (base[0] / w + base[1] / h) / 2 for w, h in self._sizes
            )

        @property
        def level_dimensions(self):
            return self._sizes

        @property
        def level_count(self):
            return len(self._sizes)

    rng = np.random.default_rng(21)
    compared = 0
    for _ in range(60):
        width, height = (int(v) for v in rng.integers(1, 3000, 2))
        sizes = [(width, height)]
        for _ in range(int(rng.integers(0, 4))):
            factor = float(rng.choice([2, 2.5, 3, 4, 1.7]))
            sizes.append(
                (
                    max(1, math.ceil(sizes[-1][0] / factor)),
                    max(1, math.ceil(sizes[-1][1] / factor)),
                )
            )
        properties = {}
        if rng.random() < 0.7:
            x, y = (
                int(rng.integers(0, width // 2 + 1)),
                int(rng.integers(0, height // 2 + 1)),
            )
            properties = bounds(
                x,
                y,
                int(rng.integers(1, width - x + 1)),
                int(rng.integers(1, height - y + 1)),
            )
        slide = Shape(sizes, properties)
        if any(
            b < a for a, b in zip(slide.level_downsamples, slide.level_downsamples[1:])
        ):
            continue
        tile_size = int(rng.choice([7, 50, 127, 254, 256, 510]))
        overlap = int(rng.choice([0, 1, 2, 8]))
        limit_bounds = bool(rng.random() < 0.6)
        mine = DeepZoomGenerator(slide, tile_size, overlap, limit_bounds)
        theirs = oracle.DeepZoomGenerator(slide, tile_size, overlap, limit_bounds)
        assert mine.level_dimensions == theirs.level_dimensions
        assert mine.level_tiles == theirs.level_tiles
        assert mine.tile_count == theirs.tile_count
        assert mine.get_dzi("png") == theirs.get_dzi("png")
        for level, (columns, rows) in enumerate(theirs.level_tiles):
            for address in addresses(columns, rows):
                assert mine.get_tile_coordinates(
                    level, address
                ) == theirs.get_tile_coordinates(level, address)
                assert mine.get_tile_dimensions(
                    level, address
                ) == theirs.get_tile_dimensions(level, address)
                compared += 1
    assert compared > 1000


@pytest.mark.parametrize("name", sorted(ODD_SLIDES))
def test_thumbnails_of_odd_slides_match_openslide_python(oracle, name):
    """get_thumbnail: the level picked, the background colour, the shrinking."""
    import openslide

    slide = ODD_SLIDES[name]()
    width, height = slide.dimensions
    for size in [(1, 1), (16, 16), (width // 3 + 1, 10), (width, height), (999, 999)]:
        assert_same_image(
            slide.get_thumbnail(size),
            openslide.AbstractSlide.get_thumbnail(slide, size),
        )
