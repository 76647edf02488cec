"""Conformance with the third-party corpus: facts and reference pixels.

Reference regions were decoded by wsidicom and re-checked with pydicom +
Pillow / pylibjpeg-openjpeg. We decode JPEG with Pillow (libjpeg-turbo) and
JPEG 2000 with pylibjpeg-openjpeg, the same libraries, so every region must
match exactly (tolerance 0), lossy syntaxes included.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicomweb_client import DICOMfileClient

import dicomslide
from tests.conftest import corpus_path

CORPUS = corpus_path()
SLIDE_VARIANTS = (
    sorted(
        p.name
        for p in CORPUS.glob("V*")
        if json.loads((p / "expected" / "facts.json").read_text())["kind"] == "slide"
    )
    if CORPUS
    else ["corpus-missing"]
)


def _facts(folder: Path) -> dict:
    return json.loads((folder / "expected" / "facts.json").read_text())


SOURCES = ["files", "dicomweb"]


@pytest.fixture(scope="session")
def web_corpus(corpus, orthanc):
    """A DICOMweb client for the corpus stored in the test Orthanc server."""
    from dicomweb_client import DICOMwebClient

    from tests.orthanc import dicom_files

    orthanc.upload(dicom_files(corpus))
    return DICOMwebClient(orthanc.dicomweb_url)


@pytest.fixture(scope="session")
def file_corpus(corpus):
    """The embedded file client for the corpus folder (indexed once)."""
    from dicomslide.client import LocalFolderClient

    return LocalFolderClient(corpus)


@pytest.fixture(params=SOURCES)
def source(request):
    """The corpus as a local folder or over DICOMweb (Orthanc)."""
    if request.param == "files":
        return request.getfixturevalue("file_corpus")
    return request.getfixturevalue("web_corpus")


_SLIDES: dict[int, list[dicomslide.Slide]] = {}


def _all_slides(source) -> list[dicomslide.Slide]:
    """Every slide of a source, found once per test session."""
    if id(source) not in _SLIDES:
        _SLIDES[id(source)] = dicomslide.find_slides(source, correct_color=False)
    return _SLIDES[id(source)]


def _level_images(source, facts: dict) -> list[dicomslide.TiledImage]:
    """The image of each level in facts.json."""
    images = [
        image
        for slide in _all_slides(source)
        if slide.container_id == facts["ContainerIdentifier"]
        for image in slide.get_volume_images()
    ]
    by_size = {image.size: image for image in images}
    return [
        by_size[(level["TotalPixelMatrixRows"], level["TotalPixelMatrixColumns"])]
        for level in facts["levels"]
    ]


@pytest.fixture(scope="module")
def file_clients(corpus, tmp_path_factory):
    """A plain DICOMfileClient per variant, as a user would build it."""
    clients = {}

    def get(name: str) -> DICOMfileClient:
        if name not in clients:
            clients[name] = DICOMfileClient(
                url=(corpus / name).as_uri(),
                db_dir=tmp_path_factory.mktemp(name),
                readonly=True,
            )
        return clients[name]

    return get


def _level_image(folder: Path, level: dict, client) -> dicomslide.TiledImage:
    parts = [
        pydicom.dcmread(folder / name, stop_before_pixels=True)
        for name in level["files"]
    ]
    return dicomslide.TiledImage(client, parts, correct_color=False)


@pytest.mark.parametrize("variant", SLIDE_VARIANTS)
def test_levels_match_facts(corpus, source, variant):
    folder = corpus / variant
    facts = _facts(folder)
    for level, image in zip(facts["levels"], _level_images(source, facts), strict=True):
        assert image.size == (
            level["TotalPixelMatrixRows"],
            level["TotalPixelMatrixColumns"],
        )
        matrix = image.get_total_pixel_matrix()
        assert matrix.tile_shape[:2] == (level["Rows"], level["Columns"])
        assert matrix.tile_grid_shape == tuple(level["tile_grid_rows_cols"])
        assert matrix.shape[2] == level["SamplesPerPixel"]
        assert dicomslide.get_image_pixel_spacing(image.metadata) == pytest.approx(
            level["PixelSpacing_mm"]
        )
        assert image.num_channels == level["optical_paths"]["count"]
        assert [
            image.get_channel_identifier(i) for i in range(image.num_channels)
        ] == level["optical_paths"]["identifiers"]
        assert image.num_focal_planes == level["focal_planes"]["count"]
        assert image._store.number_of_frames == level["NumberOfFrames"]
        icc = image.icc_profile
        if level.get("icc_profile_length"):
            assert icc is not None and len(icc) == level["icc_profile_length"]
            assert hashlib.sha256(icc).hexdigest() == level["icc_profile_sha256"]
        else:
            assert icc is None


def _check_regions(folder: Path, images: list[dicomslide.TiledImage]) -> None:
    records = json.loads((folder / "expected" / "regions.json").read_text())["regions"]
    reference = np.load(folder / "expected" / "regions.npz")
    checked = 0
    for record in records:
        if record.get("skipped"):
            continue
        matrix = images[record["level"]].get_total_pixel_matrix(
            record["optical_path_index"],
            record["focal_plane_index"],
            correct_color=False,
        )
        (r0, c0), (h, w) = record["offset_rc"], record["size_rc"]
        got = matrix[r0 : r0 + h, c0 : c0 + w]
        expected = reference[record["key"]]
        if expected.ndim == 2:
            got = got[:, :, 0]
        assert got.shape == expected.shape, record["key"]
        assert got.dtype == expected.dtype, record["key"]
        np.testing.assert_array_equal(got, expected, err_msg=record["key"])
        checked += 1
    assert checked > 0


@pytest.mark.parametrize("variant", SLIDE_VARIANTS)
def test_regions_through_a_plain_file_client(corpus, file_clients, variant):
    folder = corpus / variant
    facts = _facts(folder)
    client = file_clients(variant)
    images = [_level_image(folder, level, client) for level in facts["levels"]]
    _check_regions(folder, images)


@pytest.mark.parametrize("variant", SLIDE_VARIANTS)
def test_regions_match_reference_pixels(corpus, source, variant):
    folder = corpus / variant
    _check_regions(folder, _level_images(source, _facts(folder)))


@pytest.mark.parametrize("variant", SLIDE_VARIANTS)
def test_find_slides_reports_facts(corpus, source, variant):
    folder = corpus / variant
    facts = _facts(folder)
    slides = dicomslide.find_slides(source, container_id=facts["ContainerIdentifier"])
    assert len(slides) == 1
    slide = slides[0]
    assert slide.container_id == facts["ContainerIdentifier"]
    assert slide.frame_of_reference_uid == (facts["FrameOfReferenceUID"] or "")
    volume_sizes = [
        (level["TotalPixelMatrixRows"], level["TotalPixelMatrixColumns"])
        for level in facts["levels"]
    ]
    # THUMBNAIL images are pyramid levels in the dicomslide API (decisions §4)
    associated = facts.get("associated") or {}
    thumbnails = [
        (a["TotalPixelMatrixRows"], a["TotalPixelMatrixColumns"])
        for a in associated.get("THUMBNAIL", [])
    ]
    expected_sizes = sorted(volume_sizes + thumbnails, key=lambda s: -s[0] * s[1])
    assert list(slide.total_pixel_matrix_dimensions) == expected_sizes
    assert len(slide.label_images) == len(associated.get("LABEL", []))
    assert len(slide.overview_images) == len(associated.get("OVERVIEW", []))
    for image, fact in zip(slide.label_images, associated.get("LABEL", [])):
        assert image.size == (
            fact["TotalPixelMatrixRows"],
            fact["TotalPixelMatrixColumns"],
        )
        assert len(image.icc_profile or b"") == (fact.get("icc_profile_length") or 0)
    base = facts["levels"][0]
    assert slide.pixel_spacings[0] == pytest.approx(base["PixelSpacing_mm"][::-1])


DERIVED_VARIANTS = (
    sorted(
        p.name
        for p in CORPUS.glob("V*")
        if json.loads((p / "expected" / "facts.json").read_text())["kind"] == "derived"
    )
    if CORPUS
    else ["corpus-missing"]
)


@pytest.mark.parametrize("variant", DERIVED_VARIANTS)
def test_derived_regions_match_highdicom(corpus, variant):
    """Segment channels combined into segment numbers equal highdicom's reads."""
    folder = corpus / variant
    facts = _facts(folder)
    records = json.loads((folder / "expected" / "regions.json").read_text())["regions"]
    reference = np.load(folder / "expected" / "regions.npz")
    images = [
        dicomslide.TiledImage(
            folder, pydicom.dcmread(folder / instance["file"], stop_before_pixels=True)
        )
        for instance in facts["instances"]
    ]
    for image, instance in zip(images, facts["instances"], strict=True):
        assert image.channel_type == dicomslide.ChannelTypes.SEGMENT
        assert [
            int(image.get_channel_identifier(i)) for i in range(image.num_channels)
        ] == [segment["number"] for segment in instance["segments"]]
    checked = 0
    for record in records:
        if record.get("skipped"):
            continue
        image = images[record["instance"]]
        (r0, c0), (h, w) = record["offset_rc"], record["size_rc"]
        combined = np.zeros((h, w), dtype=np.uint8)
        for channel in range(image.num_channels):
            mask = image.get_image_region((r0, c0), (h, w), channel)[:, :, 0]
            assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
            combined += mask * np.uint8(image.get_channel_identifier(channel))
        np.testing.assert_array_equal(combined, reference[record["key"]], record["key"])
        checked += 1
    assert checked > 0


def test_whole_corpus_as_one_source(corpus, source):
    # the test server also holds other tests' slides: keep the corpus studies
    studies = {_facts(corpus / v)["StudyInstanceUID"] for v in SLIDE_VARIANTS}
    slides = [
        slide
        for slide in dicomslide.find_slides(source)
        if slide.get_volume_images()[0].metadata.StudyInstanceUID in studies
    ]
    by_container = {slide.container_id: slide for slide in slides}
    expected = {_facts(corpus / v)["ContainerIdentifier"] for v in SLIDE_VARIANTS}
    assert len(slides) == len(SLIDE_VARIANTS)
    assert set(by_container) == expected
    v05 = by_container[_facts(corpus / "V05-wsidicomizer-svs")["ContainerIdentifier"]]
    types = [v05.get_channel_type(i) for i in range(v05.num_channels)]
    assert types[0] == dicomslide.ChannelTypes.OPTICAL_PATH
    segments = [i for i, t in enumerate(types) if t == dicomslide.ChannelTypes.SEGMENT]
    # V10: segments 1, 2 (a pyramid); V11: label map segments 0, 1, 2
    assert len(segments) == 5
    dab = v05.find_segments(label="DAB positive")
    assert len(dab) == 2 and all(v05.get_channel_identifier(i) == "2" for i in dab)
    assert len(v05.find_segments(number=0)) == 1  # the label map's background
    for variant in SLIDE_VARIANTS:
        facts = _facts(corpus / variant)
        slide = by_container[facts["ContainerIdentifier"]]
        assert slide.total_pixel_matrix_dimensions[0] == (
            facts["levels"][0]["TotalPixelMatrixRows"],
            facts["levels"][0]["TotalPixelMatrixColumns"],
        )
    # the V10 pyramid joins the slide's levels 0, 1 and 2 (not the thumbnail)
    v10_series = _facts(corpus / "V10-highdicom-seg")["SeriesInstanceUID"]
    tissue = next(
        i
        for i in v05.find_segments(label="Tissue")
        if v05.get_volume_images(i)[0].metadata.SeriesInstanceUID == v10_series
    )
    assert len(v05.get_volume_images(tissue)) == 3
    region = v05.get_image_region((2467 * 4, 2185 * 4), 1, (50, 50), tissue)
    assert region.dtype == np.uint8 and region.shape == (50, 50, 1)
