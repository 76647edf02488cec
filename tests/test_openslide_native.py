"""dicomslide.openslide against openslide-python, on the same files.

The oracle is openslide-python (a test-only dependency) on the same OpenSlide
library (openslide-bin's OpenSlide 4). Slides are its own fixtures, tiled TIFFs
written here with tifffile (generic TIFF and Aperio SVS, with several levels,
associated images and ICC profiles), and OpenSlide's synthetic slide. Debian's
OpenSlide 3.4.1 is loaded in a subprocess to check what needs OpenSlide 4.

The last section runs the facade over the DICOM backend
(:mod:`dicomslide.openslide.dicom`). No mocks.
"""

from __future__ import annotations

import ctypes
import json
import multiprocessing
import operator
import os
import pickle
import shutil
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dicomslide.testing import synthetic
from tests.openslide_files import (
    BOXES,
    BOXES_PNG,
    BOXES_PNG_NO_ICC,
    DICOM,
    DICOM_THUMBNAIL,
    FIXTURES,
    SMALL,
    UNICODE_PNG,
    UNICODE_SVS,
    UNOPENABLE,
    UNREADABLE,
    assert_same_image,
    pattern,
    write_aperio_svs,
    write_generic_tiff,
)
from tests.subprocesses import run_python

lowlevel = pytest.importorskip(
    "dicomslide.openslide.lowlevel",
    reason="no OpenSlide C library found (pip install openslide-bin)",
)

import dicomslide  # noqa: E402
import dicomslide.openslide as ours  # noqa: E402
from dicomslide.cache import FrameCache  # noqa: E402

if not (FIXTURES / "small.svs").is_file():
    pytest.skip(
        f"OpenSlide test fixtures not found in {FIXTURES} "
        "(set DICOMSLIDE_OPENSLIDE_FIXTURES)",
        allow_module_level=True,
    )

OPENSLIDE_3 = "libopenslide.so.0"

needs_version_4 = pytest.mark.skipif(
    not lowlevel.get_version().startswith("4."),
    reason=f"the default OpenSlide library is {lowlevel.get_version()}, not 4.x",
)


@pytest.fixture(scope="session")
def written(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("written-slides")
    return {
        "generic.tiff": write_generic_tiff(folder / "generic.tiff"),
        "aperio.svs": write_aperio_svs(folder / "aperio.svs"),
    }


SLIDE_NAMES = ["small.svs", "boxes.tiff", "\N{NEUTRAL FACE}.svs", "generic.tiff"]
SLIDE_NAMES += ["aperio.svs"]


@pytest.fixture(params=SLIDE_NAMES)
def slide_path(request, written) -> Path:
    return written.get(request.param, FIXTURES / request.param)


@pytest.fixture(scope="module")
def oracle():
    """openslide-python, on the library dicomslide uses."""
    module = pytest.importorskip(
        "openslide", reason="openslide-python (the test oracle) is not installed"
    )
    if module.__library_version__ != lowlevel.get_version():
        pytest.skip(
            f"openslide-python uses OpenSlide {module.__library_version__}, "
            f"dicomslide {lowlevel.get_version()}"
        )
    return module


@pytest.fixture
def pair(slide_path, oracle):
    """The same slide opened by dicomslide and by openslide-python."""
    with ours.OpenSlide(slide_path) as mine, oracle.OpenSlide(slide_path) as theirs:
        yield mine, theirs


def regions(slide) -> list[tuple[tuple[int, int], int, tuple[int, int]]]:
    """Regions of every level: whole, partly and wholly outside, odd offsets."""
    found = []
    for level, (width, height) in enumerate(slide.level_dimensions):
        factor = slide.level_downsamples[level]
        full = (int(width * factor), int(height * factor))
        found += [
            ((0, 0), level, (width, height)),
            ((-7, -3), level, (width // 2 + 5, height // 2 + 3)),
            ((full[0] // 3 + 1, full[1] // 4 + 3), level, (37, 29)),
            ((full[0] - 5, full[1] - 9), level, (40, 40)),
            ((full[0] + 100, -50), level, (10, 10)),
        ]
    return found


def read_in_spawned_process(slides: list, args: tuple) -> list[Image.Image]:
    """Pickle slides to a process started like a spawn DataLoader worker."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as executor:
        read = operator.methodcaller("read_region", *args)
        return list(executor.map(read, slides, timeout=120))


# -- the module -------------------------------------------------------------


def test_exports_what_openslide_python_exports(oracle):
    names = [
        "AbstractSlide",
        "ImageSlide",
        "OpenSlide",
        "OpenSlideCache",
        "OpenSlideError",
        "OpenSlideUnsupportedFormatError",
        "OpenSlideVersionError",
        "open_slide",
        "__version__",
        "__library_version__",
    ]
    constants = [
        name for name in dir(oracle) if name.isupper() and not name.startswith("_")
    ]
    assert any(name.startswith("PROPERTY_NAME_") for name in constants)
    for name in names + constants:
        assert hasattr(ours, name), name
    for name in constants:  # PROPERTY_NAME_* (and OPENSLIDE_* if it had any)
        assert getattr(ours, name) == getattr(oracle, name), name
    assert set(ours.__all__) >= set(names + constants)
    from dicomslide.openslide import deepzoom
    from dicomslide.openslide import lowlevel as exported_lowlevel

    assert exported_lowlevel is lowlevel
    assert deepzoom.DeepZoomGenerator.__module__ == "dicomslide.openslide.deepzoom"


def test_exceptions_are_lowlevels():
    assert ours.OpenSlideError is lowlevel.OpenSlideError
    assert (
        ours.OpenSlideUnsupportedFormatError is lowlevel.OpenSlideUnsupportedFormatError
    )
    assert ours.OpenSlideVersionError is lowlevel.OpenSlideVersionError
    assert issubclass(ours.OpenSlideUnsupportedFormatError, ours.OpenSlideError)
    assert issubclass(ours.OpenSlideVersionError, ours.OpenSlideError)


def test_versions(oracle):
    assert ours.__version__ == dicomslide.__version__
    assert ours.__library_version__ == lowlevel.get_version()
    assert ours.__library_version__ == oracle.__library_version__


# -- slides of the OpenSlide library ----------------------------------------


def test_metadata_matches(pair):
    mine, theirs = pair
    assert isinstance(mine, ours.OpenSlide)
    assert isinstance(mine, ours.AbstractSlide)
    assert repr(mine) == repr(theirs)
    assert mine.level_count == theirs.level_count
    assert mine.level_dimensions == theirs.level_dimensions
    assert mine.level_downsamples == theirs.level_downsamples
    assert mine.dimensions == theirs.dimensions
    assert dict(mine.properties) == dict(theirs.properties)
    assert repr(mine.properties) == repr(theirs.properties)
    assert len(mine.properties) == len(theirs.properties)
    assert "openslide.vendor" in mine.properties
    with pytest.raises(KeyError):
        mine.properties["no such property"]
    assert list(mine.associated_images) == list(theirs.associated_images)
    for downsample in (0.5, 1, 1.5, 2, 2.004, 3, 4.5, 5.1, 8, 1e6):
        assert mine.get_best_level_for_downsample(
            downsample
        ) == theirs.get_best_level_for_downsample(downsample)


def test_color_profile_matches(pair):
    mine, theirs = pair
    if theirs.color_profile is None:
        assert mine.color_profile is None
    else:
        assert mine.color_profile.tobytes() == theirs.color_profile.tobytes()


def test_associated_images_match(pair):
    mine, theirs = pair
    assert len(mine.associated_images) == len(theirs.associated_images)
    for name, image in theirs.associated_images.items():
        assert_same_image(mine.associated_images[name], image)
    with pytest.raises(KeyError):
        mine.associated_images["no such image"]


def test_read_region_matches(pair):
    mine, theirs = pair
    for args in regions(theirs):
        assert_same_image(mine.read_region(*args), theirs.read_region(*args))


@pytest.mark.parametrize("size", [(64, 64), (10, 30), (1000, 1000)])
def test_thumbnail_matches(pair, size):
    mine, theirs = pair
    assert_same_image(mine.get_thumbnail(size), theirs.get_thumbnail(size))


def test_written_slides_are_what_they_should_be(written, oracle):
    with ours.OpenSlide(written["generic.tiff"]) as slide:
        assert slide.properties["openslide.vendor"] == "generic-tiff"
        assert slide.level_count == 3
        assert slide.color_profile is not None
        region = np.asarray(slide.read_region((0, 0), 0, slide.dimensions))
        assert np.array_equal(region[..., :3], pattern(613, 457))
    with ours.OpenSlide(written["aperio.svs"]) as slide:
        assert slide.properties["openslide.vendor"] == "aperio"
        assert sorted(slide.associated_images) == ["label", "macro", "thumbnail"]
        label = np.asarray(slide.associated_images["label"])
        assert np.array_equal(label[..., :3], pattern(100, 80, seed=1))


def test_region_sizes(oracle):
    with ours.OpenSlide(BOXES) as mine, oracle.OpenSlide(BOXES) as theirs:
        for size in [(-1, 5), (5, -1)]:
            with pytest.raises(ours.OpenSlideError) as error:
                mine.read_region((0, 0), 0, size)
            with pytest.raises(oracle.OpenSlideError) as expected:
                theirs.read_region((0, 0), 0, size)
            assert str(error.value) == str(expected.value)
        for size in [(0, 0), (0, 7), (7, 0)]:
            assert_same_image(
                mine.read_region((3, 3), 1, size), theirs.read_region((3, 3), 1, size)
            )
        for level in (-1, 4, 100):  # levels that do not exist
            assert_same_image(
                mine.read_region((0, 0), level, (5, 4)),
                theirs.read_region((0, 0), level, (5, 4)),
            )
        # Not an error state: the slide still reads.
        assert_same_image(
            mine.read_region((0, 0), 0, (9, 9)), theirs.read_region((0, 0), 0, (9, 9))
        )


def test_detect_format(oracle, tmp_path):
    for path in [SMALL, BOXES, BOXES_PNG, UNOPENABLE, UNICODE_SVS, tmp_path / "nope"]:
        assert ours.OpenSlide.detect_format(path) == oracle.OpenSlide.detect_format(
            path
        )
        assert ours.OpenSlide.detect_format(str(path)) == ours.OpenSlide.detect_format(
            path
        )
    assert ours.OpenSlide.detect_format(SMALL) == "aperio"
    assert ours.OpenSlide.detect_format(DICOM) == "dicom"
    assert ours.OpenSlide.detect_format(os.fsencode(DICOM)) == "dicom"
    assert ours.OpenSlide.detect_format(tmp_path) is None  # no DICOM file in it
    nested = tmp_path / "series" / "a"
    nested.mkdir(parents=True)
    shutil.copy(DICOM, nested / "image")
    assert ours.OpenSlide.detect_format(tmp_path) == "dicom"
    assert ours.ImageSlide.detect_format(BOXES_PNG) == "PNG"
    assert ours.ImageSlide.detect_format(tmp_path / "nope") is None


def test_open_errors_match(oracle, tmp_path):
    cases = [
        (tmp_path / "missing.svs", ours.OpenSlideUnsupportedFormatError),
        (BOXES_PNG, ours.OpenSlideUnsupportedFormatError),
        (UNOPENABLE, ours.OpenSlideError),
    ]
    for path, error_type in cases:
        with pytest.raises(error_type) as error:
            ours.OpenSlide(path)
        with pytest.raises(oracle.OpenSlideError) as expected:
            oracle.OpenSlide(path)
        assert type(error.value).__name__ == type(expected.value).__name__
        assert str(error.value) == str(expected.value)
    assert "Unsupported TIFF compression" in str(error.value)
    for wrong in (5, None, 1.5):
        with pytest.raises(ctypes.ArgumentError):
            ours.OpenSlide(wrong)
        with pytest.raises(ctypes.ArgumentError):
            oracle.OpenSlide(wrong)


def test_errors_are_sticky(oracle):
    mine, theirs = ours.OpenSlide(UNREADABLE), oracle.OpenSlide(UNREADABLE)
    assert mine.dimensions == theirs.dimensions == (16, 16)
    for slide, error_type in [
        (mine, ours.OpenSlideError),
        (theirs, oracle.OpenSlideError),
    ]:
        with pytest.raises(error_type, match="Bogus marker length"):
            slide.read_region((0, 0), 0, (16, 16))
    messages = []
    for slide in (mine, theirs):
        for operation in [
            lambda s: s.level_dimensions,
            lambda s: dict(s.properties),
            lambda s: s.properties["openslide.vendor"],
            lambda s: list(s.associated_images),
            lambda s: s.read_region((0, 0), 0, (1, 1)),
            lambda s: s.get_thumbnail((8, 8)),
            lambda s: s.get_best_level_for_downsample(2),
        ]:
            with pytest.raises(Exception) as error:
                operation(slide)
            messages.append((type(error.value).__name__, str(error.value)))
    assert messages[:7] == messages[7:]
    assert all(name == "OpenSlideError" for name, _ in messages)
    mine.close()
    theirs.close()


def test_closed_slide_raises_argument_error(oracle):
    mine, theirs = ours.OpenSlide(SMALL), oracle.OpenSlide(SMALL)
    properties, images = mine.properties, mine.associated_images
    mine.close()
    theirs.close()
    operations = [
        lambda s: s.level_count,
        lambda s: s.level_dimensions,
        lambda s: s.level_downsamples,
        lambda s: s.dimensions,
        lambda s: dict(s.properties),
        lambda s: s.properties["openslide.vendor"],
        lambda s: list(s.associated_images),
        lambda s: s.associated_images["thumbnail"],
        lambda s: s.read_region((0, 0), 0, (4, 4)),
        lambda s: s.get_best_level_for_downsample(1.0),
        lambda s: s.get_thumbnail((4, 4)),
        lambda s: s.set_cache(ours.OpenSlideCache(1024)),
        lambda s: s.close(),
    ]
    for operation in operations:
        with pytest.raises(ctypes.ArgumentError) as error:
            operation(mine)
        if operation is not operations[-2]:  # the caches are not interchangeable
            with pytest.raises(ctypes.ArgumentError) as expected:
                operation(theirs)
            assert str(error.value) == str(expected.value)
        assert "closed slide" in str(error.value)
    for view in (lambda: dict(properties), lambda: len(images)):
        with pytest.raises(ctypes.ArgumentError):
            view()
    # What stays after close: the profile and the repr.
    assert mine.color_profile is None
    assert repr(mine) == repr(theirs)


def test_context_manager_closes():
    with ours.OpenSlide(BOXES) as slide:
        assert slide.dimensions == (300, 250)
        profile = slide.color_profile
    with pytest.raises(ctypes.ArgumentError):
        slide.read_region((0, 0), 0, (1, 1))
    assert slide.color_profile.tobytes() == profile.tobytes()


def test_unicode_and_path_types(oracle):
    with ours.OpenSlide(SMALL) as reference:
        expected = reference.read_region((0, 0), 0, (16, 16)).tobytes()
    for path in [UNICODE_SVS, str(UNICODE_SVS), os.fsencode(UNICODE_SVS)]:
        with ours.OpenSlide(path) as slide, oracle.OpenSlide(path) as theirs:
            assert repr(slide) == repr(theirs)
            assert slide.read_region((0, 0), 0, (16, 16)).tobytes() == expected
            assert slide.properties["openslide.vendor"] == "aperio"
    assert isinstance(ours.open_slide(UNICODE_SVS), ours.OpenSlide)
    assert isinstance(ours.open_slide(UNICODE_PNG), ours.ImageSlide)


@needs_version_4
def test_synthetic_slide_matches_openslide_python(oracle):
    # OpenSlide reads OPENSLIDE_DEBUG once, when it is loaded: use a new process.
    result = run_python(
        """
        import hashlib, json
        import openslide as oracle
        import dicomslide.openslide as ours

        def digest(image):
            return [image.mode, image.size, hashlib.sha256(image.tobytes()).hexdigest()]

        def info(module):
            slide = module.OpenSlide("")
            w, h = slide.dimensions
            return {
                "repr": repr(slide),
                "vendor": module.OpenSlide.detect_format(""),
                "levels": [slide.level_dimensions, slide.level_downsamples],
                "properties": dict(slide.properties),
                "associated": {
                    name: digest(image)
                    for name, image in slide.associated_images.items()
                },
                "icc": slide.color_profile is not None,
                "regions": [
                    digest(slide.read_region(*args))
                    for args in [((0, 0), 0, (w, h)), ((-5, -3), 0, (w + 10, h + 6)),
                                 ((17, 2), 0, (50, 9))]
                ],
                "thumbnail": digest(slide.get_thumbnail((40, 40))),
            }

        mine, theirs = info(ours), info(oracle)
        print(json.dumps({"same": mine == theirs, "ours": mine}))
        """,
        OPENSLIDE_DEBUG="synthetic",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["same"], report
    assert report["ours"]["vendor"] == "synthetic"
    assert report["ours"]["properties"]["openslide.vendor"] == "synthetic"


# -- caches -----------------------------------------------------------------


@needs_version_4
def test_cache_shared_between_slides(oracle, written):
    cache = ours.OpenSlideCache(8 << 20)
    assert (
        repr(cache) == repr(oracle.OpenSlideCache(8 << 20)) == "OpenSlideCache(8388608)"
    )
    assert isinstance(cache.frame_cache, FrameCache)
    assert cache.frame_cache.max_bytes == 8 << 20
    assert cache._native is None  # made when first set on a native slide
    path = written["generic.tiff"]
    first, second = ours.OpenSlide(path), ours.OpenSlide(BOXES)
    with oracle.OpenSlide(path) as theirs:
        first.set_cache(cache)
        native = cache._native
        second.set_cache(cache)
        assert native is not None and cache._native is native
        for _ in range(2):  # the second time from the cache
            for args in regions(theirs)[:6]:
                assert_same_image(first.read_region(*args), theirs.read_region(*args))
    assert second.read_region((0, 0), 0, (300, 250)).getextrema()[3] == (255, 255)
    first.close()
    # The cache outlives the slides that use it, and serves new ones.
    del cache
    second.read_region((10, 10), 1, (50, 50))
    second.close()


@needs_version_4
def test_tiny_cache_still_reads(oracle, written):
    path = written["generic.tiff"]
    with ours.OpenSlide(path) as mine, oracle.OpenSlide(path) as theirs:
        mine.set_cache(ours.OpenSlideCache(0))
        theirs.set_cache(oracle.OpenSlideCache(0))
        for args in regions(theirs)[:3]:
            assert_same_image(mine.read_region(*args), theirs.read_region(*args))


def test_cache_arguments_fail_like_openslide_python(oracle):
    for capacity in (-1, "x", 1.5, None):
        with pytest.raises(ctypes.ArgumentError) as error:
            ours.OpenSlideCache(capacity)
        with pytest.raises(ctypes.ArgumentError) as expected:
            oracle.OpenSlideCache(capacity)
        assert str(error.value) == str(expected.value)
    with ours.OpenSlide(SMALL) as slide:
        for wrong in (5, None, oracle.OpenSlideCache(1024)):
            with pytest.raises(TypeError, match="Not a cache object"):
                slide.set_cache(wrong)
    with ours.ImageSlide(BOXES_PNG) as image_slide:
        image_slide.set_cache(ours.OpenSlideCache(1024))  # does nothing


def test_cache_pickles_as_an_empty_cache():
    cache = ours.OpenSlideCache(1 << 20)
    copy = pickle.loads(pickle.dumps(cache))
    assert repr(copy) == repr(cache)
    assert copy.frame_cache is not cache.frame_cache
    assert copy.frame_cache.max_bytes == 1 << 20


def test_openslide_3_library():
    """With OpenSlide 3.4.1: no ICC profiles, caches only for DICOM slides."""
    try:
        ctypes.CDLL(OPENSLIDE_3)
    except OSError:
        pytest.skip(f"{OPENSLIDE_3} (OpenSlide 3.4.1) is not installed")
    result = run_python(
        f"""
        import json
        import dicomslide.openslide as openslide

        cache = openslide.OpenSlideCache(1 << 20)  # fine without the library's
        slide = openslide.OpenSlide({str(BOXES)!r})
        report = {{
            "version": openslide.__library_version__,
            "profile": slide.color_profile is None,
            "frame_cache": cache.frame_cache.max_bytes,
            "pixels": slide.read_region((0, 0), 0, (300, 250)).getextrema(),
        }}
        try:
            slide.set_cache(cache)
        except openslide.OpenSlideVersionError as error:
            report["set_cache"] = [type(error).__name__, error.minimum_version]
        print(json.dumps(report))
        """,
        DICOMSLIDE_OPENSLIDE_LIBRARY=OPENSLIDE_3,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["version"] == "3.4.1"
    assert report["profile"] is True
    assert report["frame_cache"] == 1 << 20
    assert report["set_cache"] == ["OpenSlideVersionError", "4.0.0"]


def test_imports_without_the_openslide_library(tmp_path):
    """DICOM slides and images need no OpenSlide library."""
    empty = tmp_path / "no-slide"
    empty.mkdir()
    result = run_python(
        f"""
        import json, sys
        sys.modules["dicomslide.openslide.lowlevel"] = None  # no library loads
        import dicomslide.openslide as openslide
        from dicomslide.openslide.deepzoom import DeepZoomGenerator

        report = {{
            "version": openslide.__library_version__,
            "lowlevel": openslide.lowlevel,
            "hierarchy": [
                issubclass(openslide.OpenSlideUnsupportedFormatError,
                           openslide.OpenSlideError),
                issubclass(openslide.OpenSlideVersionError, openslide.OpenSlideError),
            ],
            "detect": [openslide.OpenSlide.detect_format({str(SMALL)!r}),
                       openslide.OpenSlide.detect_format({str(DICOM)!r})],
            "cache": openslide.OpenSlideCache(1000).frame_cache.max_bytes,
        }}
        try:
            openslide.OpenSlide({str(SMALL)!r})
        except openslide.OpenSlideUnsupportedFormatError as error:
            report["open"] = str(error)
        try:  # the DICOM backend raises the package's exceptions too
            openslide.OpenSlide({str(empty)!r})
        except openslide.OpenSlideUnsupportedFormatError as error:
            report["open_dicom"] = str(error)
        slide = openslide.open_slide({str(BOXES_PNG)!r})
        report["fallback"] = [type(slide).__name__,
                              DeepZoomGenerator(slide).level_count]
        print(json.dumps(report))
        """
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["version"] is None and report["lowlevel"] is None
    assert report["hierarchy"] == [True, True]
    assert report["detect"] == [None, "dicom"]
    assert report["cache"] == 1000
    assert "no OpenSlide library" in report["open"]
    assert "no DICOM whole slide image" in report["open_dicom"]
    assert report["fallback"] == ["ImageSlide", 10]


# -- pickling and threads ---------------------------------------------------


def test_pickle_round_trip(written):
    path = written["aperio.svs"]
    with ours.OpenSlide(path) as slide:
        copy = pickle.loads(pickle.dumps(slide))
        assert isinstance(copy, ours.OpenSlide)
        assert repr(copy) == repr(slide)
        assert copy._backend is not slide._backend
        assert copy.level_dimensions == slide.level_dimensions
        assert dict(copy.properties) == dict(slide.properties)
        assert_same_image(
            copy.read_region((5, 7), 1, (100, 80)),
            slide.read_region((5, 7), 1, (100, 80)),
        )
    copy.read_region((0, 0), 0, (1, 1))  # independent of the original
    # A closed slide pickles too: as how to reopen it.
    copy.close()
    reopened = pickle.loads(pickle.dumps(copy))
    assert reopened.dimensions == (613, 457)
    reopened.close()


def test_image_slide_pickle_round_trip():
    image = Image.fromarray(pattern(40, 30))
    for source in (BOXES_PNG, image):
        slide = ours.ImageSlide(source)
        copy = pickle.loads(pickle.dumps(slide))
        assert type(copy) is ours.ImageSlide
        assert_same_image(
            copy.read_region((-3, 2), 0, (50, 20)),
            slide.read_region((-3, 2), 0, (50, 20)),
        )


def test_pickles_reopen_in_spawned_processes(written):
    """Slides go to DataLoader workers started with the spawn method."""
    args = ((3, 5), 0, (60, 40))
    slides = [
        ours.OpenSlide(written["generic.tiff"]),
        ours.open_slide(UNICODE_SVS),
        ours.ImageSlide(BOXES_PNG),
        ours.ImageSlide(Image.fromarray(pattern(70, 50))),
    ]
    results = read_in_spawned_process(slides, args)
    for slide, region in zip(slides, results, strict=True):
        assert_same_image(region, slide.read_region(*args))
        slide.close()


def test_close_while_other_threads_read(written):
    """Closing waits for the calls in progress: readers fail, nothing crashes."""
    path = written["generic.tiff"]
    for _ in range(8):
        slide = ours.OpenSlide(path)
        if ours.__library_version__.startswith("4."):
            slide.set_cache(ours.OpenSlideCache(0))  # every read decodes
        start = threading.Barrier(5)
        outcomes: list[str] = []

        def read(slide=slide, start=start, outcomes=outcomes) -> None:
            start.wait()
            try:
                for i in range(2000):
                    slide.read_region((i % 300, i % 200), 0, (256, 256))
                    assert dict(slide.properties)
                    assert slide.level_dimensions
                outcomes.append("finished")
            except ctypes.ArgumentError as error:
                outcomes.append(str(error))

        threads = [threading.Thread(target=read) for _ in range(4)]
        for thread in threads:
            thread.start()
        start.wait()
        time.sleep(0.005)
        slide.close()
        for thread in threads:
            thread.join(timeout=60)
        assert outcomes == ["argument 1: ValueError: Passing closed slide object"] * 4


# -- ImageSlide -------------------------------------------------------------


def image_sources():
    rgb = Image.fromarray(pattern(45, 33))
    return [
        BOXES_PNG,
        BOXES_PNG_NO_ICC,
        UNICODE_PNG,
        rgb,
        rgb.convert("P"),
        rgb.convert("LA"),
        Image.fromarray(
            np.dstack([pattern(20, 24), np.arange(480, dtype=np.uint8).reshape(24, 20)])
        ),
    ]


@pytest.mark.parametrize("index", range(7))
def test_image_slide_matches(oracle, index):
    source = image_sources()[index]
    mine, theirs = ours.ImageSlide(source), oracle.ImageSlide(source)
    assert repr(mine) == repr(theirs)
    assert isinstance(mine, ours.AbstractSlide)
    assert mine.level_count == theirs.level_count == 1
    assert mine.level_dimensions == theirs.level_dimensions
    assert mine.level_downsamples == theirs.level_downsamples
    assert mine.dimensions == theirs.dimensions
    assert dict(mine.properties) == dict(theirs.properties)
    assert dict(mine.associated_images) == dict(theirs.associated_images)
    assert mine.get_best_level_for_downsample(
        7
    ) == theirs.get_best_level_for_downsample(7)
    if theirs.color_profile is None:
        assert mine.color_profile is None
    else:
        assert mine.color_profile.tobytes() == theirs.color_profile.tobytes()
    width, height = theirs.dimensions
    boxes = [
        ((0, 0), (width, height)),
        ((-5, -7), (width + 10, height + 14)),
        ((3, 4), (5, 6)),
        ((width - 2, height - 3), (10, 10)),
        ((-20, 3), (10, 10)),
        ((width + 1, height + 1), (3, 3)),
        ((2, 2), (0, 0)),
        ((-1, -1), (1, 1)),
    ]
    for location, size in boxes:
        assert_same_image(
            mine.read_region(location, 0, size), theirs.read_region(location, 0, size)
        )
    for size in [(30, 30), (7, 100)]:
        assert_same_image(mine.get_thumbnail(size), theirs.get_thumbnail(size))
    for level, size in [(1, (1, 1)), (0, (-1, 2))]:
        with pytest.raises(ours.OpenSlideError) as error:
            mine.read_region((0, 0), level, size)
        with pytest.raises(oracle.OpenSlideError) as expected:
            theirs.read_region((0, 0), level, size)
        assert str(error.value) == str(expected.value)
    mine.close()
    theirs.close()
    for operation in [
        lambda s: s.read_region((0, 0), 0, (1, 1)),
        lambda s: s.dimensions,
        lambda s: s.get_thumbnail((5, 5)),
    ]:
        with pytest.raises(ValueError) as error:
            operation(mine)
        with pytest.raises(ValueError) as expected:
            operation(theirs)
        assert str(error.value) == str(expected.value)
    mine.close()  # closing twice is fine for ImageSlide
    assert mine.level_downsamples == (1.0,)


def test_image_slide_leaves_a_given_image_open():
    image = Image.open(BOXES_PNG)
    with ours.ImageSlide(image) as slide:
        assert slide.dimensions == (300, 250)
    image.load()  # still open
    with ours.ImageSlide(BOXES_PNG) as slide:
        file_image = slide._picture
    assert slide._picture is None and file_image.fp is None


def test_open_slide_falls_back_like_openslide_python(oracle, tmp_path):
    for path, kind in [
        (SMALL, "OpenSlide"),
        (BOXES, "OpenSlide"),
        (BOXES_PNG, "ImageSlide"),
    ]:
        with ours.open_slide(path) as mine, oracle.open_slide(path) as theirs:
            assert type(mine).__name__ == type(theirs).__name__ == kind
            assert repr(mine) == repr(theirs)
    with pytest.raises(FileNotFoundError):
        ours.open_slide(tmp_path / "missing")
    with pytest.raises(FileNotFoundError):
        oracle.open_slide(tmp_path / "missing")
    with pytest.raises(ours.OpenSlideError):
        ours.open_slide(UNOPENABLE)  # not UnsupportedFormat: no fallback


# -- the facade over the DICOM backend --------------------------------------
# These need dicomslide.openslide.dicom.DicomBackend.


@pytest.fixture
def dicom_folder(tmp_path) -> Path:
    folder = tmp_path / "boxes"
    folder.mkdir()
    shutil.copy(DICOM, folder / "boxes_0.dcm")
    shutil.copy(DICOM_THUMBNAIL, folder / "boxes_1.dcm")
    return folder


@pytest.fixture
def dicom_slide(tmp_path) -> dicomslide.Slide:
    """The slide of boxes_0.dcm (without boxes_1.dcm, whose THUMBNAIL image is
    as large as the VOLUME image, which a dicomslide pyramid does not allow)."""
    folder = tmp_path / "volume-only"
    folder.mkdir()
    shutil.copy(DICOM, folder / "boxes_0.dcm")
    [slide] = dicomslide.find_slides(folder, correct_color=False)
    return slide


def assert_close_pixels(mine: Image.Image, theirs: Image.Image) -> None:
    """Equal up to the rounding of different JPEG decoders."""
    assert (mine.mode, mine.size) == (theirs.mode, theirs.size)
    difference = np.abs(
        np.asarray(mine, dtype=np.int16) - np.asarray(theirs, dtype=np.int16)
    )
    assert difference.max() <= 8 and difference.mean() <= 1.5


def test_dicom_file_is_an_openslide(oracle, dicom_folder):
    path = dicom_folder / "boxes_0.dcm"
    slide = ours.OpenSlide(path)
    assert type(slide) is ours.OpenSlide
    assert type(slide._backend).__name__ == "DicomBackend"
    assert repr(slide) == f"OpenSlide({path!r})"
    assert slide.properties[ours.PROPERTY_NAME_VENDOR] == "dicom"
    if not oracle.__library_version__.startswith("4."):
        return
    with oracle.OpenSlide(path) as theirs:  # OpenSlide 4 reads DICOM too
        assert slide.level_dimensions == theirs.level_dimensions
        assert slide.level_downsamples == pytest.approx(theirs.level_downsamples)
        assert slide.color_profile.tobytes() == theirs.color_profile.tobytes()
        assert "thumbnail" in slide.associated_images
        for args in [
            ((0, 0), 0, (16, 16)),
            ((-3, -2), 0, (20, 21)),
            ((7, 9), 0, (5, 4)),
        ]:
            mine_region = slide.read_region(*args)
            their_region = theirs.read_region(*args)
            # the profile's bytes as stored (color_profile.tobytes() re-serialises)
            assert mine_region.info["icc_profile"] == their_region.info["icc_profile"]
            assert_close_pixels(mine_region, their_region)
        assert_close_pixels(
            slide.associated_images["thumbnail"], theirs.associated_images["thumbnail"]
        )
        assert_close_pixels(slide.get_thumbnail((8, 8)), theirs.get_thumbnail((8, 8)))
    slide.close()
    with pytest.raises(ctypes.ArgumentError):
        slide.read_region((0, 0), 0, (1, 1))


def test_dicom_file_the_dicom_backend_declines_goes_to_the_library(oracle, tmp_path):
    """A DICOM file that is no slide image: both readers decline it."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    dataset = Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.MediaStorageSOPClassUID = CTImageStorage
    dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.SOPClassUID = CTImageStorage
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID
    path = tmp_path / "ct.dcm"
    dataset.save_as(path, enforce_file_format=True)
    assert ours.OpenSlide.detect_format(path) == "dicom"
    with pytest.raises(ours.OpenSlideUnsupportedFormatError, match="Not a WSI DICOM"):
        ours.OpenSlide(path)  # the DICOM backend's reason, after the library's no
    with pytest.raises(oracle.OpenSlideUnsupportedFormatError):
        oracle.OpenSlide(path)


def test_dicom_folder_slide_and_open_slide(dicom_folder, dicom_slide):
    from_file = ours.OpenSlide(dicom_folder / "boxes_0.dcm")
    expected = from_file.read_region((0, 0), 0, (16, 16)).tobytes()
    from_folder = ours.OpenSlide(dicom_folder)
    assert repr(from_folder) == f"OpenSlide({dicom_folder!r})"
    from_slide = ours.OpenSlide(dicom_slide)
    assert repr(from_slide) == f"OpenSlide({dicom_slide!r})"
    opened = ours.open_slide(str(dicom_folder / "boxes_0.dcm"))
    for slide in (from_folder, from_slide, opened):
        assert isinstance(slide, ours.OpenSlide)
        assert slide.dimensions == from_file.dimensions
        assert slide.read_region((0, 0), 0, (16, 16)).tobytes() == expected
        slide.close()
    from_file.close()


def test_dicom_slides_share_an_openslide_cache(dicom_folder, written):
    cache = ours.OpenSlideCache(4 << 20)
    first = ours.OpenSlide(dicom_folder / "boxes_0.dcm")
    second = ours.OpenSlide(dicom_folder)
    for slide in (first, second):
        slide.set_cache(cache)
        slide.read_region((0, 0), 0, slide.dimensions)
    assert len(cache.frame_cache) >= 1  # the DICOM backend keeps frames there
    assert cache._native is None  # no OpenSlide cache was needed
    if ours.__library_version__.startswith("4."):
        with ours.OpenSlide(written["generic.tiff"]) as native:
            native.set_cache(cache)  # the same cache on a native slide
            native.read_region((0, 0), 0, (64, 64))
        assert cache._native is not None
    first.close()
    second.close()


def test_dicom_slides_pickle_and_reopen_in_spawned_processes(dicom_folder, dicom_slide):
    slides = [
        ours.OpenSlide(dicom_folder / "boxes_0.dcm"),
        ours.OpenSlide(dicom_folder),
        ours.OpenSlide(dicom_slide),
    ]
    args = ((-2, 1), 0, (12, 20))
    for slide in slides:
        copy = pickle.loads(pickle.dumps(slide))
        assert repr(copy) == repr(slide)
        assert_same_image(copy.read_region(*args), slide.read_region(*args))
    results = read_in_spawned_process(slides, args)
    for slide, region in zip(slides, results, strict=True):
        assert_same_image(region, slide.read_region(*args))
        slide.close()


def test_dicom_slides_do_not_load_the_library(tmp_path):
    """Importing the facade and reading a DICOM folder leave the OpenSlide C
    library unloaded; asking for its version loads it, and lowlevel raises
    the facade's own exception classes."""
    truth = synthetic.write_slide(tmp_path / "data", "no_organization")
    np.save(tmp_path / "expected.npy", truth.levels[0].pixels[0, 0, 10:74, 20:100])
    result = run_python(
        f"""
        import json, sys
        import numpy as np
        import dicomslide.openslide as openslide

        slide = openslide.OpenSlide({str(tmp_path / "data")!r})
        region = np.asarray(slide.read_region((20, 10), 0, (80, 64)))
        expected = np.load({str(tmp_path / "expected.npy")!r})
        report = {{
            "pixels": bool(np.array_equal(region[:, :, :3], expected)),
            "alpha": int(region[:, :, 3].min()),
            "detected": openslide.OpenSlide.detect_format({str(tmp_path / "data")!r}),
            "loaded": "dicomslide.openslide.lowlevel" in sys.modules,
        }}
        report["version"] = openslide.__library_version__
        from dicomslide.openslide import lowlevel
        report["loaded_after"] = "dicomslide.openslide.lowlevel" in sys.modules
        report["same_errors"] = lowlevel.OpenSlideError is openslide.OpenSlideError
        print(json.dumps(report))
        """
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report == {
        "pixels": True,
        "alpha": 255,
        "detected": "dicom",
        "loaded": False,
        "version": lowlevel.get_version(),
        "loaded_after": True,
        "same_errors": True,
    }
