"""dicomslide.openslide.lowlevel against the real OpenSlide libraries.

The oracle is openslide-python's ``openslide.lowlevel`` (a test-only dependency)
on the same library file, openslide-bin's OpenSlide 4. Debian's libopenslide0
(OpenSlide 3.4.1) is loaded beside it to check the version stubs. No mocks.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.subprocesses import run_python

lowlevel = pytest.importorskip(
    "dicomslide.openslide.lowlevel",
    reason="no OpenSlide C library found (pip install openslide-bin)",
)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(
    os.environ.get(
        "DICOMSLIDE_OPENSLIDE_FIXTURES",
        ROOT.parent / "shared" / "data" / "openslide-fixtures",
    )
)
if not (FIXTURES / "small.svs").is_file():
    pytest.skip(
        f"OpenSlide test fixtures not found in {FIXTURES} "
        "(set DICOMSLIDE_OPENSLIDE_FIXTURES)",
        allow_module_level=True,
    )

SMALL = FIXTURES / "small.svs"
BOXES = FIXTURES / "boxes.tiff"
DICOM = FIXTURES / "boxes_0.dcm"
UNREADABLE = FIXTURES / "unreadable.svs"
UNOPENABLE = FIXTURES / "unopenable.tiff"
UNICODE = FIXTURES / "\N{NEUTRAL FACE}.svs"

SPEC_FUNCTIONS = [
    "cache_create",
    "cache_release",
    "close",
    "detect_vendor",
    "get_associated_image_dimensions",
    "get_associated_image_icc_profile_size",
    "get_associated_image_names",
    "get_best_level_for_downsample",
    "get_error",
    "get_icc_profile_size",
    "get_level_count",
    "get_level_dimensions",
    "get_level_downsample",
    "get_property_names",
    "get_property_value",
    "get_version",
    "open",
    "read_associated_image",
    "read_associated_image_icc_profile",
    "read_icc_profile",
    "read_region",
    "set_cache",
]
VERSION_4_FUNCTIONS = [
    "cache_create",
    "cache_release",
    "get_associated_image_icc_profile_size",
    "get_icc_profile_size",
    "read_associated_image_icc_profile",
    "read_icc_profile",
    "set_cache",
]
OPENSLIDE_3 = "libopenslide.so.0"

needs_version_4 = pytest.mark.skipif(
    not lowlevel.get_version().startswith("4."),
    reason=f"the default OpenSlide library is {lowlevel.get_version()}, not 4.x",
)
# OpenSlide reads DICOM from 4.0 on.
DICOM_PARAM = pytest.param("boxes_0.dcm", marks=needs_version_4)


def skip_unless_available(name: str) -> None:
    if not getattr(lowlevel, name).available:
        pytest.skip(f"{name} needs OpenSlide 4, not {lowlevel.get_version()}")


# -- fixtures ---------------------------------------------------------------


@pytest.fixture(scope="module")
def oracle():
    """openslide-python's lowlevel module, on the library we use by default."""
    module = pytest.importorskip(
        "openslide.lowlevel",
        reason="openslide-python (the test oracle) is not installed",
    )
    if module.get_version() != lowlevel.get_version():
        pytest.skip(
            f"openslide-python uses OpenSlide {module.get_version()}, "
            f"dicomslide {lowlevel.get_version()}"
        )
    return module


@pytest.fixture(scope="module")
def lib3():
    """A second binding, to Debian's OpenSlide 3.4.1."""
    try:
        api = lowlevel._load(OPENSLIDE_3)
    except OSError as exc:
        pytest.skip(
            f"{OPENSLIDE_3} (OpenSlide 3.4.1) not loadable: {exc}; "
            "install it with `apt-get install libopenslide0`"
        )
    if not api.get_version().startswith("3."):
        pytest.skip(f"{OPENSLIDE_3} is OpenSlide {api.get_version()}")
    return api


@pytest.fixture(scope="module")
def pyramid_tiff(tmp_path_factory) -> Path:
    """A generic tiled TIFF of random RGB pixels with three levels."""
    tifffile = pytest.importorskip("tifffile")
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (384, 512, 3), dtype=np.uint8)
    path = tmp_path_factory.mktemp("tiff") / "pyramid.tiff"
    with tifffile.TiffWriter(path) as tiff:
        for level in range(3):
            tiff.write(
                image[:: 2**level, :: 2**level],
                tile=(128, 128),
                photometric="rgb",
                compression="zlib",
                subfiletype=0 if level == 0 else 1,
            )
    return path


@pytest.fixture(scope="module", params=["assocalpha", "unassalpha"])
def alpha_tiff(request, tmp_path_factory) -> Path:
    """A generic tiled TIFF of random RGBA pixels: translucent output."""
    tifffile = pytest.importorskip("tifffile")
    rng = np.random.default_rng(11)
    image = rng.integers(0, 256, (200, 260, 4), dtype=np.uint8)
    if request.param == "assocalpha":
        image[..., :3] = np.minimum(image[..., :3], image[..., 3:])
    path = tmp_path_factory.mktemp("tiff") / f"{request.param}.tiff"
    tifffile.imwrite(
        path,
        image,
        tile=(64, 64),
        photometric="rgb",
        extrasamples=[request.param],
        compression="zlib",
    )
    return path


@pytest.fixture
def slide():
    handle = lowlevel.open(BOXES)
    yield handle
    if handle._valid:
        lowlevel.close(handle)


def outcome(func, *args):
    """What a call gives: its result, or its exception's type name and text."""
    try:
        return ("returned", func(*args))
    except Exception as exc:
        return (type(exc).__name__, str(exc))


def pixels(image) -> np.ndarray:
    assert image.mode == "RGBA"
    return np.asarray(image)


# -- the module's surface ---------------------------------------------------


def test_public_lowercase_names_are_the_spec_functions():
    names = [n for n in dir(lowlevel) if not n.startswith("_") and n[0].islower()]
    assert sorted(names) == SPEC_FUNCTIONS
    assert sorted(n for n in lowlevel.__all__ if n[0].islower()) == SPEC_FUNCTIONS


def test_public_functions_match_openslide_python(oracle):
    theirs = sorted(
        n
        for n in dir(oracle)
        if not n.startswith("_")
        and "available" in getattr(getattr(oracle, n), "__dict__", {})
    )
    assert theirs == SPEC_FUNCTIONS


@needs_version_4
def test_every_function_is_available_on_openslide_4():
    for name in SPEC_FUNCTIONS:
        function = getattr(lowlevel, name)
        assert function.available is True, name
        assert function.__name__ == name
        assert function.__doc__


def test_exception_hierarchy():
    assert issubclass(lowlevel.OpenSlideVersionError, lowlevel.OpenSlideError)
    assert issubclass(lowlevel.OpenSlideUnsupportedFormatError, lowlevel.OpenSlideError)
    assert issubclass(lowlevel.OpenSlideError, Exception)
    error = lowlevel.OpenSlideVersionError("4.0.0")
    assert error.minimum_version == "4.0.0"
    assert str(error) == "OpenSlide >= 4.0.0 required"


def test_version(oracle):
    assert lowlevel.get_version() == oracle.get_version()
    assert isinstance(lowlevel.get_version(), str)


# -- metadata against openslide-python --------------------------------------


def describe(api, path):
    """Everything the metadata functions say about a slide."""
    slide = api.open(path)
    try:
        count = api.get_level_count(slide)
        associated = api.get_associated_image_names(slide)
        names = api.get_property_names(slide)
        info = {
            "vendor": api.detect_vendor(path),
            "levels": [
                (api.get_level_dimensions(slide, i), api.get_level_downsample(slide, i))
                for i in range(-1, count + 1)
            ],
            "best": [
                api.get_best_level_for_downsample(slide, d)
                for d in (0.5, 1, 1.5, 2, 3.9, 4, 8, 1000)
            ],
            "properties": {n: api.get_property_value(slide, n) for n in names},
            "property_names": names,
            "missing_property": api.get_property_value(slide, "no.such.property"),
            "bytes_property": api.get_property_value(slide, b"openslide.vendor"),
            "associated": {
                n: api.get_associated_image_dimensions(slide, n) for n in associated
            },
            "missing_associated": api.get_associated_image_dimensions(slide, "nope"),
            "error": api.get_error(slide),
        }
        if api.get_icc_profile_size.available:
            info["icc"] = (api.get_icc_profile_size(slide), api.read_icc_profile(slide))
            info["associated_icc"] = {
                n: (
                    api.get_associated_image_icc_profile_size(slide, n),
                    api.read_associated_image_icc_profile(slide, n),
                )
                for n in associated
            }
        return info
    finally:
        api.close(slide)


@pytest.mark.parametrize("name", ["small.svs", "boxes.tiff", DICOM_PARAM])
def test_metadata_matches_openslide_python(oracle, name):
    ours = describe(lowlevel, FIXTURES / name)
    assert ours == describe(oracle, FIXTURES / name)
    assert ours["properties"]["openslide.vendor"] == ours["vendor"]
    assert ours["missing_property"] is None
    assert ours["missing_associated"] == (-1, -1)
    assert ours["error"] is None


def test_metadata_of_generated_tiff(oracle, pyramid_tiff):
    ours = describe(lowlevel, pyramid_tiff)
    assert ours == describe(oracle, pyramid_tiff)
    assert ours["vendor"] == "generic-tiff"
    assert [dims for dims, _ in ours["levels"]] == [
        (-1, -1),
        (512, 384),
        (256, 192),
        (128, 96),
        (-1, -1),
    ]


@needs_version_4
def test_icc_profiles():
    slide = lowlevel.open(BOXES)
    profile = lowlevel.read_icc_profile(slide)
    assert lowlevel.get_icc_profile_size(slide) == len(profile) == 588
    assert profile[36:40] == b"acsp"  # ICC signature
    lowlevel.close(slide)
    slide = lowlevel.open(SMALL)
    assert lowlevel.get_icc_profile_size(slide) == 0
    assert lowlevel.read_icc_profile(slide) is None
    assert lowlevel.read_associated_image_icc_profile(slide, "thumbnail") is None
    lowlevel.close(slide)
    slide = lowlevel.open(DICOM)
    assert len(lowlevel.read_icc_profile(slide)) == 456
    icc = lowlevel.read_associated_image_icc_profile(slide, b"thumbnail")
    assert lowlevel.get_associated_image_icc_profile_size(slide, "thumbnail") == len(
        icc
    )
    lowlevel.close(slide)


def test_property_names_are_str(slide):
    names = lowlevel.get_property_names(slide)
    assert names and all(isinstance(n, str) for n in names)
    assert lowlevel.get_property_value(slide, "openslide.vendor") == "generic-tiff"


# -- pixels against openslide-python ----------------------------------------

REGIONS = [
    (0, 0, 0, 300, 250),
    (-10, -20, 0, 64, 64),
    (250, 200, 1, 60, 60),
    (-1, -1, 1, 40, 40),
    (-3, -5, 2, 30, 30),
    (7, 3, 3, 37, 31),
    (1000, 1000, 0, 5, 5),
]


@pytest.mark.parametrize("region", REGIONS)
def test_read_region_matches_openslide_python(oracle, region):
    ours, theirs = lowlevel.open(BOXES), oracle.open(BOXES)
    image = lowlevel.read_region(ours, *region)
    assert image.size == tuple(region[3:])
    np.testing.assert_array_equal(
        pixels(image), pixels(oracle.read_region(theirs, *region))
    )


@pytest.mark.parametrize("name", ["small.svs", DICOM_PARAM, "\N{NEUTRAL FACE}.svs"])
def test_read_region_of_jpeg_slides_matches_openslide_python(oracle, name):
    ours, theirs = lowlevel.open(FIXTURES / name), oracle.open(FIXTURES / name)
    for region in [(0, 0, 0, 16, 16), (-4, 3, 0, 20, 9)]:
        np.testing.assert_array_equal(
            pixels(lowlevel.read_region(ours, *region)),
            pixels(oracle.read_region(theirs, *region)),
        )


def test_read_region_of_generated_tiff_matches_openslide_python(oracle, pyramid_tiff):
    ours, theirs = lowlevel.open(pyramid_tiff), oracle.open(pyramid_tiff)
    for region in [(0, 0, 0, 512, 384), (-33, 17, 1, 300, 200), (101, 55, 2, 90, 90)]:
        np.testing.assert_array_equal(
            pixels(lowlevel.read_region(ours, *region)),
            pixels(oracle.read_region(theirs, *region)),
        )


def test_translucent_pixels_match_openslide_python(oracle, alpha_tiff):
    ours, theirs = lowlevel.open(alpha_tiff), oracle.open(alpha_tiff)
    image = pixels(lowlevel.read_region(ours, -6, -6, 0, 272, 212))
    assert len(np.unique(image[..., 3])) == 256  # translucent, opaque and empty
    np.testing.assert_array_equal(
        image, pixels(oracle.read_region(theirs, -6, -6, 0, 272, 212))
    )


def test_read_associated_image_matches_openslide_python(oracle):
    paths = [SMALL, DICOM] if lowlevel.get_version().startswith("4.") else [SMALL]
    for path in paths:
        ours, theirs = lowlevel.open(path), oracle.open(path)
        for name in lowlevel.get_associated_image_names(ours):
            image = lowlevel.read_associated_image(ours, name)
            assert image.size == lowlevel.get_associated_image_dimensions(ours, name)
            np.testing.assert_array_equal(
                pixels(image), pixels(oracle.read_associated_image(theirs, name))
            )


def test_unknown_associated_image_raises_key_error():
    slide = lowlevel.open(SMALL)
    for read in (
        lowlevel.read_associated_image,
        lowlevel.read_associated_image_icc_profile,
    ):
        if not read.available:
            continue
        with pytest.raises(KeyError) as info:
            read(slide, "no-such-image")
        assert isinstance(info.value, ValueError)  # what openslide-python raises
        assert "no-such-image" in str(info.value)


def premultiplied_words() -> np.ndarray:
    """Every valid premultiplied ARGB word per (alpha, colour) pair."""
    alpha, colour = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    keep = colour <= alpha
    alpha, colour = alpha[keep].astype(np.uint32), colour[keep].astype(np.uint32)
    green = colour // 2
    blue = alpha - colour
    return (alpha << 24) | (colour << 16) | (green << 8) | blue


def test_unpremultiply_is_bit_identical_to_openslide_python():
    convert = pytest.importorskip(
        "openslide._convert", reason="openslide-python (the test oracle) not installed"
    )
    words = premultiplied_words()
    buf = (ctypes.c_uint32 * words.size)(*words.tolist())
    ours = pixels(lowlevel._argb_to_image(buf, (words.size, 1)))
    convert.argb2rgba(buf)
    theirs = np.frombuffer(bytes(buf), dtype=np.uint8).reshape(1, -1, 4)
    np.testing.assert_array_equal(ours, theirs)


def test_opaque_fast_path_and_byte_order():
    rng = np.random.default_rng(3)
    words = rng.integers(0, 2**24, 1000, dtype=np.uint32) | np.uint32(0xFF000000)
    opaque = pixels(lowlevel._argb_to_image(words.copy(), (100, 10)))
    expected = np.stack(
        [(words >> 16) & 255, (words >> 8) & 255, words & 255, words >> 24], axis=-1
    ).astype(np.uint8)
    np.testing.assert_array_equal(opaque, expected.reshape(10, 100, 4))
    # The same words stored big-endian, as on a big-endian machine.
    big = pixels(lowlevel._argb_to_image(words.astype(">u4"), (100, 10), "big"))
    np.testing.assert_array_equal(big, opaque)
    translucent = premultiplied_words()
    np.testing.assert_array_equal(
        pixels(
            lowlevel._argb_to_image(
                translucent.astype(">u4"), (translucent.size, 1), "big"
            )
        ),
        pixels(lowlevel._argb_to_image(translucent.copy(), (translucent.size, 1))),
    )


# -- sizes ------------------------------------------------------------------


@pytest.mark.parametrize("size", [(0, 10), (10, 0), (0, 0)])
def test_zero_size_gives_empty_image(oracle, slide, size):
    image = lowlevel.read_region(slide, 0, 0, 0, *size)
    assert image.mode == "RGBA" and image.size == size
    theirs = oracle.read_region(oracle.open(BOXES), 0, 0, 0, *size)
    assert (theirs.mode, theirs.size) == (image.mode, image.size)


@pytest.mark.parametrize("size", [(-1, 10), (10, -1), (-1, -1), (-1, 2**40)])
def test_negative_size_raises_before_allocating(oracle, slide, size):
    with pytest.raises(lowlevel.OpenSlideError) as info:
        lowlevel.read_region(slide, 0, 0, 0, *size)
    theirs = outcome(oracle.read_region, oracle.open(BOXES), 0, 0, 0, *size)
    assert theirs == ("OpenSlideError", str(info.value))


def test_size_checks_come_before_handle_checks(oracle, slide):
    lowlevel.close(slide)
    with pytest.raises(lowlevel.OpenSlideError):
        lowlevel.read_region(slide, 0, 0, 0, -1, 1)
    assert lowlevel.read_region(slide, 0, 0, 0, 0, 1).size == (0, 1)
    theirs = oracle.open(BOXES)
    oracle.close(theirs)
    assert oracle.read_region(theirs, 0, 0, 0, 0, 1).size == (0, 1)


# -- errors -----------------------------------------------------------------


def test_missing_and_unsupported_files(oracle, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a slide")
    for path in (tmp_path / "missing.svs", text, FIXTURES / "boxes.png"):
        assert lowlevel.detect_vendor(path) is None
        with pytest.raises(lowlevel.OpenSlideUnsupportedFormatError) as info:
            lowlevel.open(path)
        assert outcome(oracle.open, path) == (
            "OpenSlideUnsupportedFormatError",
            str(info.value),
        )


def test_unopenable_file_raises_openslide_error(oracle):
    assert lowlevel.detect_vendor(UNOPENABLE) == "generic-tiff"
    with pytest.raises(lowlevel.OpenSlideError) as info:
        lowlevel.open(UNOPENABLE)
    assert type(info.value) is lowlevel.OpenSlideError
    assert str(info.value) == "Unsupported TIFF compression: 52479"
    assert outcome(oracle.open, UNOPENABLE) == ("OpenSlideError", str(info.value))


def sticky_error_trace(api):
    slide = api.open(UNREADABLE)
    trace = [api.get_error(slide), api.get_level_count(slide)]
    for _ in range(2):
        trace.append(outcome(api.read_region, slide, 0, 0, 0, 16, 16))
    trace.append(api.get_error(slide))
    for call in (
        lambda: api.get_level_count(slide),
        lambda: api.get_level_dimensions(slide, 0),
        lambda: api.get_property_names(slide),
        lambda: api.get_property_value(slide, "openslide.vendor"),
        lambda: api.get_associated_image_names(slide),
        lambda: api.read_associated_image(slide, "thumbnail"),
        lambda: api.read_region(slide, 0, 0, 0, 1, 1),
    ):
        trace.append(outcome(call))
    trace.append(api.read_region(slide, 0, 0, 0, 0, 4).size)  # no library call
    api.close(slide)
    return trace


def test_errors_are_sticky(oracle):
    trace = sticky_error_trace(lowlevel)
    assert trace[:2] == [None, 1]
    assert trace[2] == ("OpenSlideError", "Bogus marker length")
    assert trace[4] == "Bogus marker length"
    assert all(step == trace[2] for step in trace[3:4] + trace[5:-1])
    assert trace == sticky_error_trace(oracle)


def test_errors_are_sticky_on_openslide_3(lib3):
    trace = sticky_error_trace(lib3)
    assert trace[2][0] == "OpenSlideError" and trace[4] == trace[2][1]
    assert all(step == trace[2] for step in trace[3:4] + trace[5:-1])


def test_unreadable_thumbnail_raises(oracle):
    slide = lowlevel.open(UNREADABLE)
    with pytest.raises(lowlevel.OpenSlideError) as info:
        lowlevel.read_associated_image(slide, "thumbnail")
    if lowlevel.get_version().startswith("4."):
        assert "Bogus marker length" in str(info.value)
    with pytest.raises(lowlevel.OpenSlideError) as again:
        lowlevel.get_level_count(slide)
    assert str(again.value) == str(info.value)
    theirs = oracle.open(UNREADABLE)
    assert outcome(oracle.read_associated_image, theirs, "thumbnail") == (
        "OpenSlideError",
        str(info.value),
    )


SLIDE_CALLS = [
    ("close", ()),
    ("get_error", ()),
    ("get_level_count", ()),
    ("get_level_dimensions", (0,)),
    ("get_level_downsample", (0,)),
    ("get_best_level_for_downsample", (2.0,)),
    ("read_region", (0, 0, 0, 4, 4)),
    ("get_property_names", ()),
    ("get_property_value", ("openslide.vendor",)),
    ("get_associated_image_names", ()),
    ("get_associated_image_dimensions", ("thumbnail",)),
    ("read_associated_image", ("thumbnail",)),
    ("get_icc_profile_size", ()),
    ("read_icc_profile", ()),
    ("get_associated_image_icc_profile_size", ("thumbnail",)),
    ("read_associated_image_icc_profile", ("thumbnail",)),
]


@pytest.mark.parametrize(("name", "args"), SLIDE_CALLS)
def test_closed_handle_raises_argument_error(oracle, name, args):
    skip_unless_available(name)
    ours = lowlevel.open(SMALL)
    lowlevel.close(ours)
    with pytest.raises(ctypes.ArgumentError, match="Passing closed slide object"):
        getattr(lowlevel, name)(ours, *args)
    theirs = oracle.open(SMALL)
    oracle.close(theirs)
    assert outcome(getattr(oracle, name), theirs, *args) == outcome(
        getattr(lowlevel, name), ours, *args
    )


@pytest.mark.parametrize(("name", "args"), SLIDE_CALLS)
def test_foreign_handles_raise_argument_error(oracle, lib3, name, args):
    skip_unless_available(name)
    for wrong in (None, 3, "slide", oracle.open(SMALL), lib3.open(SMALL)):
        with pytest.raises(ctypes.ArgumentError):
            getattr(lowlevel, name)(wrong, *args)


def test_foreign_handle_messages(oracle, lib3):
    for wrong in (None, 3):
        assert outcome(lowlevel.get_level_count, wrong) == outcome(
            oracle.get_level_count, wrong
        )
    # Each refuses the other's handles alike.
    assert outcome(lowlevel.get_level_count, oracle.open(SMALL)) == outcome(
        oracle.get_level_count, lowlevel.open(SMALL)
    )
    with pytest.raises(ctypes.ArgumentError, match="another OpenSlide library"):
        lowlevel.get_level_count(lib3.open(SMALL))
    with pytest.raises(ctypes.ArgumentError, match="another OpenSlide library"):
        lib3.get_level_count(lowlevel.open(SMALL))


WRONG_ARGUMENTS = [
    ("open", (5,)),
    ("open", (None,)),
    ("open", (1.5,)),
    ("detect_vendor", (5,)),
    ("detect_vendor", ([b"x"],)),
    ("get_level_dimensions", ("SLIDE", 1.5)),
    ("get_level_dimensions", ("SLIDE", "0")),
    ("get_level_downsample", ("SLIDE", None)),
    ("get_best_level_for_downsample", ("SLIDE", "2")),
    ("read_region", ("SLIDE", 0.5, 0, 0, 4, 4)),
    ("read_region", ("SLIDE", 0, 0, "0", 4, 4)),
    ("get_property_value", ("SLIDE", 5)),
    ("get_property_value", ("SLIDE", None)),
    ("get_property_value", ("SLIDE", bytearray(b"openslide.vendor"))),
    ("get_property_value", ("SLIDE", "\udc80")),
    ("get_associated_image_dimensions", ("SLIDE", None)),
    ("read_associated_image", ("SLIDE", 3)),
    ("get_associated_image_icc_profile_size", ("SLIDE", 3)),
    ("cache_create", (-1,)),
    ("cache_create", (1.5,)),
    ("cache_create", ("1024",)),
    ("set_cache", ("SLIDE", None)),
    ("set_cache", ("SLIDE", "SLIDE")),
    ("cache_release", (None,)),
]


@pytest.mark.parametrize(("name", "args"), WRONG_ARGUMENTS)
def test_wrong_argument_types_raise_argument_error(oracle, name, args):
    skip_unless_available(name)
    ours, theirs = lowlevel.open(SMALL), oracle.open(SMALL)
    our_args = [ours if a == "SLIDE" else a for a in args]
    their_args = [theirs if a == "SLIDE" else a for a in args]
    with pytest.raises(ctypes.ArgumentError):
        getattr(lowlevel, name)(*our_args)
    assert outcome(getattr(lowlevel, name), *our_args) == outcome(
        getattr(oracle, name), *their_args
    )


def test_open_error_state_handle_is_closed():
    with pytest.raises(lowlevel.OpenSlideError):
        lowlevel.open(UNOPENABLE)
    gc.collect()  # an exception in a destructor would fail this test


def test_handles_are_closed_when_collected():
    for _ in range(20):
        lowlevel.open(BOXES)
    slide = lowlevel.open(BOXES)
    lowlevel.close(slide)
    del slide
    gc.collect()


# -- filenames --------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    [str, os.fsencode, Path, lambda p: Path(os.path.relpath(p))],
    ids=["str", "bytes", "Path", "relative"],
)
def test_unicode_filenames(oracle, lib3, spelling):
    path = spelling(UNICODE)
    for api in (lowlevel, lib3):
        assert api.detect_vendor(path) == "aperio"
        slide = api.open(path)
        assert api.get_level_dimensions(slide, 0) == (16, 16)
        api.close(slide)
    ours, theirs = lowlevel.open(path), oracle.open(path)
    np.testing.assert_array_equal(
        pixels(lowlevel.read_region(ours, 0, 0, 0, 16, 16)),
        pixels(oracle.read_region(theirs, 0, 0, 0, 16, 16)),
    )
    assert lowlevel.get_property_value(ours, "aperio.Filename") == (
        oracle.get_property_value(theirs, "aperio.Filename")
    )


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX byte filenames")
def test_undecodable_filename(tmp_path):
    path = os.path.join(os.fsencode(tmp_path), b"slide-\xff.svs")
    shutil.copyfile(SMALL, path)
    for spelling in (path, os.fsdecode(path)):  # str with surrogate escapes
        slide = lowlevel.open(spelling)
        assert lowlevel.get_level_count(slide) == 1
        lowlevel.close(slide)


# -- caches -----------------------------------------------------------------


@needs_version_4
def test_cache_create_set_release(oracle):
    cache = lowlevel.cache_create(16 * 1024 * 1024)
    first, second = lowlevel.open(BOXES), lowlevel.open(SMALL)
    lowlevel.set_cache(first, cache)
    lowlevel.set_cache(second, cache)
    before = pixels(lowlevel.read_region(first, 0, 0, 0, 300, 250))
    lowlevel.read_region(second, 0, 0, 0, 16, 16)
    lowlevel.cache_release(cache)  # the slides keep their reference
    np.testing.assert_array_equal(
        pixels(lowlevel.read_region(first, 0, 0, 0, 300, 250)), before
    )
    expected = pixels(oracle.read_region(oracle.open(BOXES), 0, 0, 0, 300, 250))
    np.testing.assert_array_equal(before, expected)
    with pytest.raises(ctypes.ArgumentError, match="released cache"):
        lowlevel.cache_release(cache)
    with pytest.raises(ctypes.ArgumentError, match="released cache"):
        lowlevel.set_cache(first, cache)
    lowlevel.close(first)
    lowlevel.close(second)
    empty = lowlevel.cache_create(0)
    slide = lowlevel.open(BOXES)
    lowlevel.set_cache(slide, empty)
    np.testing.assert_array_equal(
        pixels(lowlevel.read_region(slide, 0, 0, 0, 300, 250)), before
    )
    del empty, slide, cache
    gc.collect()


@needs_version_4
def test_set_cache_on_closed_slide_or_foreign_cache(lib3):
    cache = lowlevel.cache_create(1024)
    slide = lowlevel.open(SMALL)
    lowlevel.close(slide)
    with pytest.raises(ctypes.ArgumentError, match="closed slide"):
        lowlevel.set_cache(slide, cache)
    with pytest.raises(ctypes.ArgumentError, match="Not an OpenSlide cache"):
        lowlevel.set_cache(lowlevel.open(SMALL), lowlevel.open(SMALL))


# -- OpenSlide 3.4.1 beside 4 ------------------------------------------------


def test_version_stubs_on_openslide_3(lib3):
    assert lib3.get_version() == "3.4.1"
    slide = lib3.open(BOXES)
    for name in SPEC_FUNCTIONS:
        function = getattr(lib3, name)
        assert function.available is (name not in VERSION_4_FUNCTIONS), name
    calls = {
        "cache_create": (1024,),
        "cache_release": (None,),
        "set_cache": (slide, None),
        "get_icc_profile_size": (slide,),
        "read_icc_profile": (slide,),
        "get_associated_image_icc_profile_size": (slide, "thumbnail"),
        "read_associated_image_icc_profile": (slide, "thumbnail"),
    }
    assert sorted(calls) == VERSION_4_FUNCTIONS
    for name, args in calls.items():
        with pytest.raises(lowlevel.OpenSlideVersionError) as info:
            getattr(lib3, name)(*args)
        assert info.value.minimum_version == "4.0.0"
        assert isinstance(info.value, lowlevel.OpenSlideError)
        assert str(info.value) == "OpenSlide >= 4.0.0 required"
    lib3.close(slide)


def test_openslide_3_reads_like_openslide_4(lib3, pyramid_tiff):
    for path in (BOXES, pyramid_tiff):
        old, new = lib3.open(path), lowlevel.open(path)
        count = lib3.get_level_count(old)
        assert count == lowlevel.get_level_count(new)
        for level in range(count):
            dims = lib3.get_level_dimensions(old, level)
            assert dims == lowlevel.get_level_dimensions(new, level)
            assert lib3.get_level_downsample(old, level) == pytest.approx(
                lowlevel.get_level_downsample(new, level)
            )
            np.testing.assert_array_equal(
                pixels(lib3.read_region(old, 0, 0, level, *dims)),
                pixels(lowlevel.read_region(new, 0, 0, level, *dims)),
            )
        old_names = set(lib3.get_property_names(old))
        assert old_names <= set(lowlevel.get_property_names(new))
        for name in old_names - {"openslide.vendor"}:
            if name.startswith("tiff."):
                assert lib3.get_property_value(
                    old, name
                ) == lowlevel.get_property_value(new, name)


def test_openslide_3_does_not_read_dicom(lib3):
    assert lib3.detect_vendor(DICOM) is None
    with pytest.raises(lowlevel.OpenSlideUnsupportedFormatError):
        lib3.open(DICOM)
    slide = lib3.open(SMALL)
    assert lib3.get_associated_image_names(slide) == ["thumbnail"]
    assert lib3.read_associated_image(slide, "thumbnail").size == (16, 16)


# -- finding the library ----------------------------------------------------


def test_search_error_names_every_attempt(caplog):
    override = "/nonexistent/dicomslide-test/libopenslide.so"
    names = (
        "libopenslide-dicomslide-test-a.so.1",
        "libopenslide-dicomslide-test-b.so.0",
    )
    with pytest.raises(ImportError) as info:
        lowlevel._search(
            environ={"DICOMSLIDE_OPENSLIDE_LIBRARY": override},
            package="dicomslide_test_no_such_package",
            names=names,
        )
    message = str(info.value)
    lines = message.splitlines()
    assert len([line for line in lines if line.startswith("  ")]) == 4
    assert f"$DICOMSLIDE_OPENSLIDE_LIBRARY ({override}): OSError" in message
    assert (
        "package dicomslide_test_no_such_package: ModuleNotFoundError: "
        "No module named 'dicomslide_test_no_such_package'"
    ) in message
    for name in names:
        assert f"  {name}: OSError: " in message
    assert "pip install openslide-bin" in message
    assert override in caplog.text  # the failed override is logged as a warning


def test_search_rejects_libraries_without_openslide():
    with pytest.raises(
        ImportError, match=r"libc\.so\.6: OpenSlideVersionError: .*3\.4\.0"
    ):
        lowlevel._search(environ={}, package=None, names=["libc.so.6"])


def test_search_order(lib3):
    env = "DICOMSLIDE_OPENSLIDE_LIBRARY"
    assert lowlevel._search(environ={env: OPENSLIDE_3}).get_version() == "3.4.1"
    try:
        from_package = lowlevel._search(environ={})
    except ImportError:
        pytest.skip("openslide-bin is not installed")
    assert from_package.get_version() == lowlevel.get_version()
    failed_override = lowlevel._search(environ={env: "/nonexistent/lib.so"})
    assert failed_override.get_version() == lowlevel.get_version()
    api = lowlevel._search(environ={}, package=None, names=["nope.so", OPENSLIDE_3])
    assert api.get_version() == "3.4.1"


def test_environment_override_when_imported(lib3):
    result = run_python(
        """
        import dicomslide.openslide.lowlevel as lowlevel
        print(lowlevel.get_version(), lowlevel.read_icc_profile.available)
        """,
        DICOMSLIDE_OPENSLIDE_LIBRARY=OPENSLIDE_3,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3.4.1", "False"]


@needs_version_4
def test_synthetic_slide_matches_openslide_python(oracle):
    # OpenSlide reads OPENSLIDE_DEBUG once, when it is loaded: use a new process.
    result = run_python(
        """
        import json
        import numpy as np
        import openslide.lowlevel as oracle
        import dicomslide.openslide.lowlevel as lowlevel

        def info(api):
            slide = api.open("")
            w, h = api.get_level_dimensions(slide, 0)
            names = api.get_property_names(slide)
            image = np.asarray(api.read_region(slide, -5, -3, 0, w + 10, h + 6))
            return {
                "vendor": api.detect_vendor(""),
                "levels": api.get_level_count(slide),
                "size": [w, h],
                "properties": {n: api.get_property_value(slide, n) for n in names},
                "associated": api.get_associated_image_names(slide),
                "icc": api.read_icc_profile(slide),
                "pixels": image.tobytes().hex(),
                "alpha": sorted(set(image[..., 3].ravel().tolist())),
            }

        ours, theirs = info(lowlevel), info(oracle)
        print(json.dumps({"same": ours == theirs, "ours": {
            k: v for k, v in ours.items() if k != "pixels"}}))
        """,
        OPENSLIDE_DEBUG="synthetic",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["same"], report
    assert report["ours"]["vendor"] == "synthetic"
    assert report["ours"]["alpha"] == [0, 255]
