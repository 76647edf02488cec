"""DicomBackend: OpenSlide 4.0.1's DICOM driver, in pure Python.

Three references:

* the oracles of the corpus (``expected/openslide.json`` / ``openslide.npz``,
  written with OpenSlide 4.0.1 and openslide-python 1.4.7) for V05, V13, V14, V15;
* the real library, driven through ``dicomslide.openslide.lowlevel``, on the
  corpus, on synthetic slides and on files with crafted metadata;
* the dicomslide API, for the files OpenSlide refuses.

Intentional differences from OpenSlide, each tested here:

* files OpenSlide refuses are opened (Orthanc files, implicit VR, HTJ2K, several
  focal planes), 8-bit monochrome is shown as grey, and what cannot be shown as
  RGBA raises OpenSlideUnsupportedFormatError with the reason;
* over DICOMweb the file meta information is partly unknown
  (ImplementationClassUID, ImplementationVersionName and, unless the server says,
  TransferSyntaxUID are missing) and DS / IS values are the server's rendering of
  the numbers, not the stored bytes; every other property is the same.

On the files OpenSlide opens there is no intentional difference: every property
key and value, every pixel.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import pickle
import random
import shutil
import struct
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom import dcmread
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag

import dicomslide
import dicomslide.openslide
from dicomslide.cache import FrameCache
from dicomslide.openslide import OpenSlideError, OpenSlideUnsupportedFormatError
from dicomslide.openslide.dicom import DicomBackend
from dicomslide.testing import synthetic

try:
    from dicomslide.openslide import lowlevel
except ImportError:  # pragma: no cover - libopenslide missing
    lowlevel = None  # type: ignore[assignment]

needs_openslide = pytest.mark.skipif(lowlevel is None, reason="libopenslide missing")

ORACLE_VARIANTS = [
    "V05-wsidicomizer-svs",
    "V13-wsidicomizer-jpeg422",
    "V14-wsidicom-native-explicit",
    "V15-wsidicom-j2k-ict",
]


# -- helpers -----------------------------------------------------------------


def _oracle(corpus: Path, variant: str) -> tuple[Path, dict, np.lib.npyio.NpzFile]:
    folder = corpus / variant
    expected = json.loads((folder / "expected" / "openslide.json").read_text())
    arrays = np.load(folder / "expected" / "openslide.npz")
    return folder / expected["opened_file"], expected, arrays


def _thumbnail(backend: DicomBackend, size: tuple[int, int]) -> Image.Image:
    """A thumbnail made the way openslide-python 1.4 makes one over OpenSlide.

    The downsample that fits `size`, the level OpenSlide picks for it, that level
    read whole, composited on the background colour, then shrunk with Pillow's
    LANCZOS filter.
    """
    width, height = backend.level_dimensions[0]
    downsample = max(width / size[0], height / size[1])
    level = backend.get_best_level_for_downsample(downsample)
    region = backend.read_region((0, 0), level, backend.level_dimensions[level])
    colour = "#" + backend.properties.get("openslide.background-color", "ffffff")
    thumb = Image.new("RGB", region.size, colour)
    thumb.paste(region, None, region)
    thumb.thumbnail(size, Image.Resampling.LANCZOS)
    return thumb


def _library_properties(handle: object) -> dict[str, str]:
    return {
        name: lowlevel.get_property_value(handle, name)
        for name in lowlevel.get_property_names(handle)
    }


def _random_reads(
    dimensions: tuple[tuple[int, int], ...], count: int, seed: int
) -> list[tuple[int, int, int, int, int]]:
    """(x, y, level, w, h) reads: inside, across edges, past edges, negative."""
    rng = random.Random(seed)
    width, height = dimensions[0]
    reads = []
    for _ in range(count):
        level = rng.randrange(len(dimensions))
        reads.append(
            (
                rng.randint(-width // 8, width + 50),
                rng.randint(-height // 8, height + 50),
                level,
                rng.randint(1, 180),
                rng.randint(1, 180),
            )
        )
    return reads


def _assert_library_parity(path: Path, reads: int = 24, seed: int = 0) -> None:
    """Properties, levels, associated images, ICC and reads equal libopenslide's."""
    handle = lowlevel.open(path)
    backend = DicomBackend.open(path)
    try:
        assert dict(backend.properties) == _library_properties(handle)
        count = lowlevel.get_level_count(handle)
        assert len(backend.level_dimensions) == count
        assert backend.level_dimensions == tuple(
            lowlevel.get_level_dimensions(handle, i) for i in range(count)
        )
        assert backend.level_downsamples == tuple(
            lowlevel.get_level_downsample(handle, i) for i in range(count)
        )
        for downsample in (0.5, 1, 1.5, 2, 3.9999, 4, 7, 16.5, 33, 1000):
            assert backend.get_best_level_for_downsample(
                downsample
            ) == lowlevel.get_best_level_for_downsample(handle, downsample)
        assert backend.icc_profile == lowlevel.read_icc_profile(handle)
        names = lowlevel.get_associated_image_names(handle)
        assert list(backend.associated_image_names) == names
        for name in names:
            assert np.array_equal(
                np.asarray(backend.read_associated_image(name)),
                np.asarray(lowlevel.read_associated_image(handle, name)),
            )
            assert backend.associated_image_icc_profile(
                name
            ) == lowlevel.read_associated_image_icc_profile(handle, name)
        for x, y, level, w, h in _random_reads(backend.level_dimensions, reads, seed):
            expected = np.asarray(lowlevel.read_region(handle, x, y, level, w, h))
            got = np.asarray(backend.read_region((x, y), level, (w, h)))
            assert np.array_equal(got, expected), (x, y, level, w, h)
    finally:
        lowlevel.close(handle)
        backend.close()


@pytest.fixture(scope="module")
def synthetic_slides(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Synthetic slides OpenSlide opens and ones it refuses, one folder each."""
    root = tmp_path_factory.mktemp("openslide-dicom")
    folders: dict[str, Path] = {}

    def folder(name: str) -> Path:
        folders[name] = root / name
        return folders[name]

    for preset in ("rgb_full", "sparse", "no_organization", "concatenation"):
        synthetic.write_slide(folder(preset), preset)
    synthetic.write_slide(
        folder("implicit"), "no_organization", transfer_syntax=synthetic.IMPLICIT_VR_LE
    )
    synthetic.write_slide(folder("mono16"), "mono16")
    synthetic.write_slide(folder("fluorescence"), "multi_z_channel_full")
    common = dict(
        total_rows=300,
        total_cols=470,
        tile_rows=64,
        tile_cols=96,
        transfer_syntax=synthetic.EXPLICIT_VR_LE,
    )
    synthetic.write_wsi_image(folder("multi_z"), samples=3, focal_planes=3, **common)
    synthetic.write_wsi_image(folder("grey"), samples=1, **common)
    # random content and a level with a fractional downsample (1000 / 333):
    # every read at that level goes through cairo's bilinear sampling
    uids = synthetic.SlideUIDs.new("FRACTIONAL", key="fractional")
    rng = np.random.default_rng(7)
    for number, (size, tile) in enumerate(((1000, 128), (333, 64)), start=1):
        synthetic.write_wsi_image(
            folder("fractional"),
            total_rows=size,
            total_cols=size,
            tile_rows=tile,
            tile_cols=tile,
            pixels=rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
            uids=uids,
            instance_number=number,
            transfer_syntax=synthetic.EXPLICIT_VR_LE,
            pixel_spacing=(0.0005 * 1000 / size,) * 2,
            derived=number > 1,
        )
    return folders


def _first_file(folder: Path) -> Path:
    return sorted(folder.glob("*.dcm"))[0]


# -- the oracles of the corpus -----------------------------------------------


@pytest.mark.parametrize("variant", ORACLE_VARIANTS)
def test_levels_and_properties_equal_the_oracle(corpus, variant):
    path, expected, _ = _oracle(corpus, variant)
    backend = DicomBackend.open(path)
    assert len(backend.level_dimensions) == expected["level_count"]
    assert backend.level_dimensions == tuple(map(tuple, expected["level_dimensions"]))
    # exact, including V13's last level: (6000 / 187 + 8000 / 250) / 2
    assert backend.level_downsamples == tuple(expected["level_downsamples"])
    # every key and every value, dicom.* and openslide.* alike
    assert dict(backend.properties) == expected["properties"]
    assert list(backend.properties) == sorted(expected["properties"])


@pytest.mark.parametrize("variant", ORACLE_VARIANTS)
def test_quickhash_is_the_series_uid_hash(corpus, variant):
    path, expected, _ = _oracle(corpus, variant)
    series = dcmread(path, stop_before_pixels=True).SeriesInstanceUID
    digest = hashlib.sha256(str(series).encode() + b"\0").hexdigest()
    assert expected["properties"]["openslide.quickhash-1"] == digest
    # stable: opening the folder, or another file of the slide, gives the same
    assert DicomBackend.open(path.parent).properties["openslide.quickhash-1"] == digest
    other = next(p for p in sorted(path.parent.glob("*.dcm")) if p != path)
    assert DicomBackend.open(other).properties["openslide.quickhash-1"] == digest


@pytest.mark.parametrize("variant", ORACLE_VARIANTS)
def test_icc_profiles_equal_the_oracle(corpus, variant):
    path, expected, _ = _oracle(corpus, variant)
    backend = DicomBackend.open(path)
    profile = backend.icc_profile
    assert profile is not None
    assert len(profile) == expected["icc_profile_length"]
    assert hashlib.sha256(profile).hexdigest() == expected["icc_profile_sha256"]
    for name, facts in expected["associated_images"].items():
        associated = backend.associated_image_icc_profile(name)
        assert associated is not None
        assert len(associated) == facts["icc_profile_length"]
        assert hashlib.sha256(associated).hexdigest() == facts["icc_profile_sha256"]
    # equal profiles are one object: V05's label and macro share one, and its
    # thumbnail has the slide's
    profiles = [profile] + [
        backend.associated_image_icc_profile(n) for n in backend.associated_image_names
    ]
    for a in profiles:
        for b in profiles:
            assert (a == b) == (a is b)
    if variant.startswith("V05"):
        assert backend.associated_image_icc_profile("thumbnail") is profile
        assert backend.associated_image_icc_profile(
            "label"
        ) is backend.associated_image_icc_profile("macro")


@pytest.mark.parametrize("variant", ORACLE_VARIANTS)
def test_pixels_equal_the_oracle(corpus, variant):
    path, expected, arrays = _oracle(corpus, variant)
    backend = DicomBackend.open(path)
    for record in expected["arrays"]:
        reference = arrays[record["key"]]
        if record["call"] == "read_region":
            image = backend.read_region(
                tuple(record["location"]), record["level"], tuple(record["size"])
            )
            got = np.asarray(image)
            assert image.mode == "RGBA"
            assert np.array_equal(got, reference), record["key"]
            assert int(np.sum(got[..., 3] == 0)) == record["transparent_pixels"]
        elif record["call"] == "get_thumbnail":
            thumb = np.asarray(_thumbnail(backend, tuple(record["size"])))
            assert np.array_equal(thumb, reference), record["key"]
    assert backend.associated_image_names == tuple(
        sorted(expected["associated_images"])
    )
    for name, facts in expected["associated_images"].items():
        image = backend.read_associated_image(name)
        assert image.mode == "RGBA"
        assert image.size == tuple(facts["size_wh"])
        assert np.array_equal(np.asarray(image), arrays[facts["key"]]), name


def test_fractional_downsample_reads_are_resampled_like_openslide(corpus):
    # V13's last level has downsample 32.04...: location / downsample is not a
    # whole pixel, and OpenSlide's cairo samples the tiles bilinearly
    path, expected, arrays = _oracle(corpus, "V13-wsidicomizer-jpeg422")
    backend = DicomBackend.open(path)
    got = np.asarray(backend.read_region((4806, 4069), 5, (160, 120)))
    assert np.array_equal(got, arrays["region_last_level_past_edge"])
    alpha = got[..., 3]
    # the image edge is partly transparent, past it fully
    assert 0 < alpha[0, 100] < 255 and alpha[0, 101] == 0
    assert np.all(alpha[:60, :100] == 255)


# -- the real library --------------------------------------------------------


@needs_openslide
def test_exceptions_are_lowlevels(tmp_path):
    """The DICOM backend raises the library's exceptions when it loads."""
    assert OpenSlideError is lowlevel.OpenSlideError
    not_dicom = tmp_path / "notes.dcm"
    not_dicom.write_text("hello")
    with pytest.raises(lowlevel.OpenSlideUnsupportedFormatError):
        DicomBackend.open(not_dicom)


@needs_openslide
@pytest.mark.parametrize("variant", ORACLE_VARIANTS)
def test_corpus_parity_with_the_library(corpus, variant):
    path, _, _ = _oracle(corpus, variant)
    # the last level of V13 has a fractional downsample: more reads there
    _assert_library_parity(path, reads=30 if variant.startswith("V13") else 12)


@needs_openslide
@pytest.mark.parametrize(
    "name", ["rgb_full", "sparse", "no_organization", "concatenation", "fractional"]
)
def test_synthetic_parity_with_the_library(synthetic_slides, name):
    # JPEG with label / overview / thumbnail; TILED_SPARSE with omitted tiles
    # (transparent); per-frame positions; a level split over three instances;
    # random pixels at a fractional downsample (every bit of the resampling)
    _assert_library_parity(_first_file(synthetic_slides[name]), reads=24, seed=3)
    if name == "concatenation":
        # opened from another part, OpenSlide still reports the first part
        _assert_library_parity(synthetic_slides[name] / "level0_part3.dcm", reads=2)


def _openslide_fixtures() -> Path | None:
    configured = os.environ.get("DICOMSLIDE_OPENSLIDE_FIXTURES")
    folder = (
        Path(configured)
        if configured
        else Path(__file__).resolve().parents[2]
        / "shared"
        / "data"
        / "openslide-fixtures"
    )
    return folder if (folder / "boxes_0.dcm").is_file() else None


@needs_openslide
@pytest.mark.skipif(_openslide_fixtures() is None, reason="OpenSlide fixtures missing")
def test_openslide_test_slide_parity(tmp_path):
    # OpenSlide's own DICOM test slide: a THUMBNAIL as large as the only level,
    # which a dicomslide pyramid leaves out but OpenSlide shows
    fixtures = _openslide_fixtures()
    assert fixtures is not None
    for name in ("boxes_0.dcm", "boxes_1.dcm"):
        shutil.copy(fixtures / name, tmp_path / name)
    _assert_library_parity(tmp_path / "boxes_0.dcm", reads=12)
    assert DicomBackend.open(tmp_path / "boxes_0.dcm").associated_image_names == (
        "thumbnail",
    )


@needs_openslide
def test_large_and_negative_reads_equal_the_library(corpus):
    # reads larger than 4096 pixels are split into areas as OpenSlide splits
    # them; negative locations shift by whole level pixels
    path, _, _ = _oracle(corpus, "V13-wsidicomizer-jpeg422")
    handle = lowlevel.open(path)
    backend = DicomBackend.open(path)
    try:
        for x, y, level, w, h in [
            (-37, 11, 0, 4500, 200),
            (1001, 999, 1, 4200, 90),
            (-1001, -37, 5, 300, 260),
            (-5, -5, 1, 3, 3),
        ]:
            expected = np.asarray(lowlevel.read_region(handle, x, y, level, w, h))
            got = np.asarray(backend.read_region((x, y), level, (w, h)))
            assert np.array_equal(got, expected), (x, y, level, w, h)
    finally:
        lowlevel.close(handle)


def _raw(dataset: Dataset, keyword: str, vr: str, value: bytes) -> None:
    tag = tag_for_keyword(keyword)
    dataset[tag] = RawDataElement(Tag(tag), vr, len(value), value, 0, False, True)


@needs_openslide
def test_crafted_metadata_parity_with_the_library(corpus, tmp_path):
    """libdicom's value classes, padding, sequences and stop tag, checked live."""
    path, _, _ = _oracle(corpus, "V14-wsidicom-native-explicit")
    dataset = dcmread(path)
    # string classes: some VRs are split at backslashes, others are not; one
    # trailing white-space character is dropped, NUL ends a value
    _raw(dataset, "ProtocolName", "LO", b"a\\b\\c ")
    _raw(dataset, "AcquisitionNumber", "IS", b"1\\2 ")
    _raw(dataset, "AcquisitionDate", "DA", b"20200101\\20200102")
    _raw(dataset, "AcquisitionTime", "TM", b"101010\\121212")
    _raw(dataset, "InstitutionalDepartmentName", "LO", b"  lead  ")
    _raw(dataset, "StationName", "SH", b"tab\t")
    _raw(dataset, "StudyDescription", "LO", b"StudyDesc\x00")
    _raw(dataset, "BodyPartExamined", "CS", b"")
    _raw(dataset, "WindowCenter", "DS", b" 40\\-3.5e2 ")
    _raw(dataset, "DetectorManufacturerName", "LO", b"\xe9t\xe9")
    _raw(dataset, "SelectorPNValue", "PN", b"A^B=C^D\\E^F")
    _raw(dataset, "SelectorLTValue", "LT", b"line1\\line2 ")
    _raw(dataset, "SelectorUCValue", "UC", b"uc1\\uc2")
    # binary numbers: every integer VR, AT as two 16-bit numbers, FL / FD as %.17g
    _raw(dataset, "SelectorSVValue", "SV", struct.pack("<2q", -9000000000, 5))
    _raw(dataset, "SelectorUVValue", "UV", struct.pack("<Q", 18000000000000000000))
    _raw(dataset, "SelectorFLValue", "FL", struct.pack("<2f", 0.1, 3.0))
    _raw(dataset, "SelectorFDValue", "FD", struct.pack("<d", 1e300))
    _raw(dataset, "SelectorATValue", "AT", struct.pack("<HH", 0x0048, 0x021E))
    _raw(dataset, "SelectorSSValue", "SS", struct.pack("<h", -1))
    _raw(dataset, "SelectorULValue", "UL", struct.pack("<I", 4294967295))
    _raw(dataset, "SmallestImagePixelValue", "US", b"")  # no value: no property
    _raw(dataset, "SelectorOBValue", "OB", b"\x01\x02")  # binary: no property
    # a private element and an attribute newer than libdicom's dictionary
    dataset[0x00110010] = RawDataElement(
        Tag(0x00110010), "LO", 4, b"PRIV", 0, False, True
    )
    dataset[0x00111001] = RawDataElement(
        Tag(0x00111001), "LO", 4, b"priv", 0, False, True
    )
    _raw(dataset, "PyramidDescription", "LO", b"new")
    # an objective power with a decimal comma, an empty barcode
    optical_path = dataset.OpticalPathSequence[0]
    optical_path[0x00480112] = RawDataElement(
        Tag(0x00480112), "DS", 4, b"20,5", 0, False, True
    )
    _raw(dataset, "BarcodeValue", "LT", b"")
    # nested sequences with several items
    items = []
    for number in (1, 2):
        item = Dataset()
        item.CodeValue = str(number)
        item.CodeMeaning = f"item {number}"
        items.append(item)
    dataset.AnatomicRegionSequence = Sequence(items)
    folder = tmp_path / "crafted"
    folder.mkdir()
    dataset.save_as(folder / "level0.dcm", enforce_file_format=True)
    _assert_library_parity(folder / "level0.dcm", reads=2)
    properties = DicomBackend.open(folder / "level0.dcm").properties
    assert properties["dicom.ProtocolName"] == "a\\b\\c"
    assert properties["dicom.WindowCenter[0]"] == " 40"
    assert properties["dicom.SelectorFLValue[0]"] == "0.10000000149011612"
    assert properties["openslide.objective-power"] == "20.5"
    assert properties["openslide.barcode"] == ""
    assert "dicom.PyramidDescription" not in properties

    # the metadata subset stops at ReferencedImageNavigationSequence
    dataset.ReferencedImageNavigationSequence = Sequence([Dataset()])
    (folder / "level0.dcm").unlink()
    dataset.save_as(folder / "level0.dcm", enforce_file_format=True)
    _assert_library_parity(folder / "level0.dcm", reads=1)
    properties = DicomBackend.open(folder / "level0.dcm").properties
    assert "dicom.NumberOfOpticalPaths" not in properties
    assert "dicom.BarcodeValue" not in properties
    assert "openslide.mpp-x" not in properties  # the shared groups come later


# -- files OpenSlide refuses -------------------------------------------------


def _level_image(backend: DicomBackend, level: int, plane: int = 0):
    images = [
        image
        for image in backend.slide.get_volume_images(0, plane)
        if image.metadata.ImageType[2] == "VOLUME"
    ]
    return images[level].get_total_pixel_matrix(0, 0, correct_color=False)


def _assert_api_pixels(backend: DicomBackend, plane: int = 0) -> None:
    """Whole-pixel reads equal the dicomslide API's raw pixels."""
    for level, (width, height) in enumerate(backend.level_dimensions):
        ds = backend.level_downsamples[level]
        matrix = _level_image(backend, level, plane)
        for column, row in ((0, 0), (width // 3, height // 2)):
            x, y = int(column * ds), int(row * ds)
            if x / ds != column or y / ds != row:
                continue  # not a whole level pixel: OpenSlide resamples
            w, h = min(150, width - column), min(120, height - row)
            got = np.asarray(backend.read_region((x, y), level, (w, h)))
            expected = matrix.read_region((row, column), (h, w))
            if expected.shape[2] == 1:
                expected = np.repeat(expected, 3, axis=2)
            assert np.all(got[..., 3] == 255)
            assert np.array_equal(got[..., :3], expected), (level, x, y)


@pytest.mark.parametrize(
    "variant",
    ["V01-orthanc-jpeg", "V04-orthanc-raw-icc", "V06-wsidicomizer-htj2k"],
)
def test_corpus_files_openslide_refuses_open(corpus, variant):
    folder = corpus / variant
    path = _first_file(folder)
    if lowlevel is not None:
        with pytest.raises(lowlevel.OpenSlideError):
            lowlevel.open(path)  # concatenation quirk, implicit VR, HTJ2K
    backend = DicomBackend.open(path)
    facts = json.loads((folder / "expected" / "facts.json").read_text())
    assert len(backend.level_dimensions) == len(facts["levels"])
    _assert_api_pixels(backend)
    meta = json.loads((folder / "expected" / "regions.json").read_text())
    reference = np.load(folder / "expected" / "regions.npz")
    for record in meta["regions"]:
        if record.get("skipped"):
            continue
        (row, column), (h, w) = record["offset_rc"], record["size_rc"]
        ds = backend.level_downsamples[record["level"]]
        if ds != int(ds):
            continue
        got = np.asarray(
            backend.read_region(
                (int(column * ds), int(row * ds)), record["level"], (w, h)
            )
        )
        assert np.array_equal(got[..., :3], reference[record["key"]]), record["key"]
    assert backend.properties["openslide.vendor"] == "dicom"
    level0 = facts["levels"][0]
    assert len(backend.icc_profile or b"") == level0["icc_profile_length"]
    if backend.icc_profile:
        digest = hashlib.sha256(backend.icc_profile).hexdigest()
        assert digest == level0["icc_profile_sha256"]


@pytest.mark.parametrize("name", ["implicit", "multi_z", "grey", "concatenation"])
def test_synthetic_slides_openslide_refuses_open(synthetic_slides, name):
    backend = DicomBackend.open(_first_file(synthetic_slides[name]))
    _assert_api_pixels(backend)
    if name == "multi_z":
        assert backend.slide.num_focal_planes == 3
    if name == "grey":
        grey = np.asarray(backend.read_region((0, 0), 0, (20, 10)))
        assert np.array_equal(grey[..., 0], grey[..., 1])
        assert np.array_equal(grey[..., 0], grey[..., 2])


@pytest.mark.parametrize(
    ("name", "reason"),
    [("mono16", "16-bit MONOCHROME2"), ("fluorescence", "2 monochrome optical paths")],
)
def test_slides_that_cannot_be_rgba_raise(synthetic_slides, name, reason):
    with pytest.raises(OpenSlideUnsupportedFormatError, match=reason):
        DicomBackend.open(_first_file(synthetic_slides[name]))


def test_sparse_tiles_are_transparent(synthetic_slides):
    # tile (0, 0) of level 0 is omitted from the sparse preset
    backend = DicomBackend.open(_first_file(synthetic_slides["sparse"]))
    region = np.asarray(backend.read_region((0, 0), 0, (100, 70)))
    assert np.all(region[:64, :96] == 0)
    assert np.all(region[64:, :, 3] == 255)


def test_numpy_reads_a_region_without_a_copy(corpus):
    backend = DicomBackend.open(corpus / "V13-wsidicomizer-jpeg422")
    image = backend.read_region((1000, 700), 0, (300, 200))
    view = np.asarray(image)
    assert view.shape == (200, 300, 4) and not view.flags.writeable
    assert (
        np.asarray(image).__array_interface__["data"][0]
        == (view.__array_interface__["data"][0])
    )  # the same memory, no copy per call
    np.testing.assert_array_equal(
        view, np.frombuffer(image.tobytes(), np.uint8).reshape(view.shape)
    )
    before = view.copy()
    image.paste((1, 2, 3, 4), (0, 0, 10, 10))  # Pillow copies, then writes
    assert np.array_equal(view, before)
    after = np.asarray(image)
    assert tuple(after[5, 5]) == (1, 2, 3, 4)
    assert np.array_equal(after[10:], before[10:])
    copy = pickle.loads(pickle.dumps(image))
    assert np.array_equal(np.asarray(copy), after)
    image.close()
    with pytest.raises(ValueError, match="closed"):
        np.asarray(image)


# -- opening -----------------------------------------------------------------


def test_open_sources(corpus, tmp_path):
    folder = corpus / "V14-wsidicom-native-explicit"
    by_folder = DicomBackend.open(folder)
    by_file = DicomBackend.open(_first_file(folder))
    by_slide = DicomBackend.open(dicomslide.find_slides(folder)[0])
    assert dict(by_folder.properties) == dict(by_file.properties)
    assert dict(by_slide.properties) == dict(by_file.properties)
    # a slide found with colour correction still reads raw pixels
    assert np.array_equal(
        np.asarray(by_slide.read_region((0, 0), 0, (64, 64))),
        np.asarray(by_file.read_region((0, 0), 0, (64, 64))),
    )


def test_open_rejects_what_is_not_a_dicom_slide(corpus, tmp_path):
    not_dicom = tmp_path / "notes.txt"
    not_dicom.write_text("hello")
    with pytest.raises(OpenSlideUnsupportedFormatError, match="not a DICOM file"):
        DicomBackend.open(not_dicom)
    with pytest.raises(OpenSlideUnsupportedFormatError, match="missing"):
        DicomBackend.open(tmp_path / "nothing.dcm")
    with pytest.raises(OpenSlideUnsupportedFormatError, match="Not a WSI DICOM"):
        DicomBackend.open(corpus / "V10-highdicom-seg" / "seg-0.dcm")
    with pytest.raises(OpenSlideUnsupportedFormatError, match="no DICOM"):
        DicomBackend.open(tmp_path)
    with pytest.raises(TypeError):
        DicomBackend.open(42)


def test_folder_with_several_slides(tmp_path):
    first = synthetic.write_slide(
        tmp_path, "no_organization", uids=synthetic.SlideUIDs.new("SLIDE-A", key="a")
    )
    second = synthetic.write_slide(
        tmp_path / "b",
        "no_organization",
        uids=synthetic.SlideUIDs.new("SLIDE-B", key="b"),
        seed=1,
    )
    with pytest.raises(OpenSlideUnsupportedFormatError, match="'SLIDE-A', 'SLIDE-B'"):
        DicomBackend.open(tmp_path)
    # a file names its slide
    for written, container in ((first, "SLIDE-A"), (second, "SLIDE-B")):
        backend = DicomBackend.open(written.files[0])
        assert backend.properties["dicom.ContainerIdentifier"] == container


# -- behaviour ---------------------------------------------------------------


def test_read_region_edge_cases(corpus):
    backend = DicomBackend.open(corpus / "V14-wsidicom-native-explicit")
    assert backend.read_region((0, 0), 0, (0, 5)).size == (0, 5)
    assert backend.read_region((0, 0), 0, (5, 0)).size == (5, 0)
    with pytest.raises(OpenSlideError, match="negative width"):
        backend.read_region((0, 0), 0, (-1, 5))
    # an unknown level reads as transparent, as in OpenSlide
    for level in (-1, 99):
        assert not np.asarray(backend.read_region((0, 0), level, (4, 4))).any()
    # far outside: transparent
    assert not np.asarray(backend.read_region((10**7, 10**7), 0, (4, 4))).any()
    with pytest.raises(KeyError):
        backend.read_associated_image("label")
    with pytest.raises(KeyError):
        backend.associated_image_icc_profile("label")
    # negative sizes are not sticky (lowlevel raises before calling the library)
    assert backend.properties["openslide.vendor"] == "dicom"


def test_best_level_for_downsample(corpus):
    path, _, _ = _oracle(corpus, "V13-wsidicomizer-jpeg422")
    backend = DicomBackend.open(path)
    # no tolerance in OpenSlide 4.0.1: anything below a level's downsample
    # selects the level before it
    assert backend.get_best_level_for_downsample(0.1) == 0
    assert backend.get_best_level_for_downsample(np.nextafter(2.0, 0)) == 0
    assert backend.get_best_level_for_downsample(2.0) == 1
    assert backend.get_best_level_for_downsample(32.04278) == 4
    assert backend.get_best_level_for_downsample(32.042780748663105) == 5
    assert backend.get_best_level_for_downsample(1e9) == 5


def test_close(corpus):
    backend = DicomBackend.open(corpus / "V14-wsidicom-native-explicit")
    backend.close()
    backend.close()  # twice is fine
    calls = [
        lambda: backend.level_dimensions,
        lambda: backend.level_downsamples,
        lambda: backend.properties,
        lambda: backend.associated_image_names,
        lambda: backend.icc_profile,
        lambda: backend.read_region((0, 0), 0, (4, 4)),
        lambda: backend.read_associated_image("label"),
        lambda: backend.associated_image_icc_profile("label"),
        lambda: backend.get_best_level_for_downsample(2),
        lambda: backend.set_cache(FrameCache(1 << 20)),
        lambda: backend.slide,
    ]
    for call in calls:
        # what openslide-python raises for a closed slide
        with pytest.raises(ctypes.ArgumentError, match="closed"):
            call()


def test_errors_are_sticky(synthetic_slides, tmp_path):
    folder = tmp_path / "broken"
    shutil.copytree(synthetic_slides["rgb_full"], folder)
    level0 = folder / "level0.dcm"
    data = bytearray(level0.read_bytes())
    data[-4000:] = b"\xff" * 4000  # ruin the last frames
    level0.write_bytes(bytes(data))
    backend = DicomBackend.open(level0)
    dimensions = backend.level_dimensions[0]
    with pytest.raises(OpenSlideError) as failure:
        backend.read_region((0, 0), 0, dimensions)
    # like OpenSlide: every later call fails with the same error
    with pytest.raises(OpenSlideError) as again:
        _ = backend.properties
    assert str(again.value) == str(failure.value)
    with pytest.raises(OpenSlideError):
        backend.read_region((0, 0), 0, (1, 1))


def test_set_cache(corpus):
    path = corpus / "V14-wsidicom-native-explicit"
    backend = DicomBackend.open(path)
    before = np.asarray(backend.read_region((100, 100), 0, (300, 300)))
    shared = dicomslide.openslide.OpenSlideCache(64 << 20)
    backend.set_cache(shared)
    cache = shared.frame_cache
    assert np.array_equal(
        np.asarray(backend.read_region((100, 100), 0, (300, 300))), before
    )
    assert len(cache) > 0 and cache.misses > 0
    hits = cache.hits
    backend.read_region((100, 100), 0, (300, 300))
    assert cache.hits > hits
    other = FrameCache(64 << 20)
    backend.set_cache(other)  # a plain FrameCache is accepted too
    backend.read_region((0, 0), 1, (50, 50))
    assert len(other) > 0
    with pytest.raises(TypeError):
        backend.set_cache(object())


def test_concurrent_reads_equal_serial_reads(corpus):
    path, _, _ = _oracle(corpus, "V13-wsidicomizer-jpeg422")
    backend = DicomBackend.open(path)
    backend.set_cache(FrameCache(1 << 20))  # small: frames are evicted meanwhile
    reads = _random_reads(backend.level_dimensions, 24, seed=11)
    serial = [
        np.asarray(backend.read_region((x, y), lv, (w, h))) for x, y, lv, w, h in reads
    ]
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for k in range(len(reads)):
                index = (k + offset) % len(reads)
                x, y, lv, w, h = reads[index]
                image = np.asarray(backend.read_region((x, y), lv, (w, h)))
                if not np.array_equal(image, serial[index]):
                    raise AssertionError(f"read {index} differs")
                results[index] = image
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i * 3,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert len(results) == len(reads)


def test_close_during_reads_does_not_crash(corpus):
    path, _, _ = _oracle(corpus, "V13-wsidicomizer-jpeg422")
    backend = DicomBackend.open(path)
    started = threading.Barrier(5)
    outcomes: list[str] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        started.wait()
        for _ in range(50):
            try:
                backend.read_region(
                    (rng.randint(0, 7000), rng.randint(0, 5000)), 1, (200, 200)
                )
                outcomes.append("read")
            except ctypes.ArgumentError as error:
                assert "closed" in str(error)
                outcomes.append("closed")
                return
            except BaseException as error:  # noqa: BLE001 - the test fails on it
                outcomes.append(f"{type(error).__name__}: {error}")
                return

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    started.wait()
    backend.close()
    for thread in threads:
        thread.join()
    assert set(outcomes) <= {"read", "closed"}, outcomes
    assert "closed" in outcomes


def test_pickle(corpus):
    path, _, _ = _oracle(corpus, "V15-wsidicom-j2k-ict")
    for source in (path, dicomslide.find_slides(path.parent, correct_color=False)[0]):
        backend = DicomBackend.open(source)
        copy = pickle.loads(pickle.dumps(backend))
        assert copy is not backend
        assert dict(copy.properties) == dict(backend.properties)
        assert np.array_equal(
            np.asarray(copy.read_region((10, 20), 1, (40, 30))),
            np.asarray(backend.read_region((10, 20), 1, (40, 30))),
        )
        # pickled as how it was opened (the path or the slide), not as state
        reopen, arguments = backend.__reduce__()
        assert reopen == DicomBackend.open
        assert arguments == ((str(source),) if isinstance(source, Path) else (source,))


# -- DICOMweb ----------------------------------------------------------------

#: file meta information a DICOMweb server does not give
_FILE_ONLY = {
    "dicom.ImplementationClassUID",
    "dicom.ImplementationVersionName",
    "dicom.TransferSyntaxUID",
}


def _is_number_string(key: str) -> bool:
    keyword = key.rsplit(".", 1)[-1].split("[", 1)[0]
    tag = tag_for_keyword(keyword)
    return tag is not None and dictionary_VR(tag) in ("DS", "IS")


def test_dicomweb_slide_equals_the_file_slide(orthanc, corpus):
    from dicomweb_client import DICOMwebClient

    path, _, _ = _oracle(corpus, "V05-wsidicomizer-svs")
    orthanc.upload(sorted(path.parent.glob("*.dcm")))
    local = DicomBackend.open(path)
    slides = dicomslide.find_slides(
        DICOMwebClient(orthanc.dicomweb_url),
        container_id=local.slide.container_id,
        correct_color=False,
    )
    assert len(slides) == 1
    web = DicomBackend.open(slides[0])
    file_properties = dict(local.properties)
    web_properties = dict(web.properties)
    assert set(file_properties) - set(web_properties) <= _FILE_ONLY
    assert set(web_properties) <= set(file_properties)
    for key, value in web_properties.items():
        if _is_number_string(key):
            assert float(value) == float(file_properties[key]), key
        else:
            assert value == file_properties[key], key
    assert web.level_dimensions == local.level_dimensions
    assert web.level_downsamples == local.level_downsamples
    assert web.icc_profile == local.icc_profile
    assert web.associated_image_names == local.associated_image_names
    for name in local.associated_image_names:
        assert np.array_equal(
            np.asarray(web.read_associated_image(name)),
            np.asarray(local.read_associated_image(name)),
        )
        assert web.associated_image_icc_profile(
            name
        ) == local.associated_image_icc_profile(name)
    for x, y, level, w, h in _random_reads(local.level_dimensions, 6, seed=5):
        assert np.array_equal(
            np.asarray(web.read_region((x, y), level, (w, h))),
            np.asarray(local.read_region((x, y), level, (w, h))),
        )
    copy = pickle.loads(pickle.dumps(web))
    assert dict(copy.properties) == web_properties
