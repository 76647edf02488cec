"""One pipeline written for openslide-python runs over native, DICOM and DICOMweb."""

from __future__ import annotations

import numpy as np
import pytest
from dicomweb_client import DICOMwebClient

import dicomslide
import dicomslide.openslide as openslide
from dicomslide.openslide.deepzoom import DeepZoomGenerator
from tests.conftest import ROOT
from tests.orthanc import dicom_files

FIXTURES = ROOT.parent / "shared" / "data" / "openslide-fixtures"


def pipeline(osr: openslide.AbstractSlide) -> dict:
    """What a typical openslide-python pipeline does with a slide."""
    properties = dict(osr.properties)
    width, height = osr.dimensions
    level = osr.get_best_level_for_downsample(4.0)
    region = osr.read_region((width // 4, height // 4), level, (64, 48))
    thumbnail = osr.get_thumbnail((128, 128))
    zoom = DeepZoomGenerator(osr, tile_size=254, overlap=1, limit_bounds=False)
    tile = zoom.get_tile(zoom.level_count - 1, (0, 0))
    return {
        "vendor": properties[openslide.PROPERTY_NAME_VENDOR],
        "levels": osr.level_dimensions,
        "region": np.asarray(region),
        "thumbnail": np.asarray(thumbnail),
        "tile": np.asarray(tile),
        "associated": sorted(osr.associated_images),
    }


def _check_shapes(result: dict) -> None:
    assert result["region"].shape == (48, 64, 4)
    assert max(result["thumbnail"].shape[:2]) == 128
    assert result["tile"].ndim == 3


def test_native_svs():
    if not (FIXTURES / "small.svs").exists():
        pytest.skip("openslide fixtures not found next to the repository")
    with openslide.open_slide(str(FIXTURES / "small.svs")) as osr:
        result = pipeline(osr)
    assert result["vendor"] == "aperio"
    assert result["region"].shape == (48, 64, 4)


def test_dicom_folder_and_dicomweb_slide_agree(corpus, orthanc):
    folder = corpus / "V05-wsidicomizer-svs"
    with openslide.OpenSlide(folder) as osr:
        local = pipeline(osr)
    _check_shapes(local)
    assert local["vendor"] == "dicom"
    assert local["associated"] == ["label", "macro", "thumbnail"]
    orthanc.upload(dicom_files(folder))
    slide = dicomslide.find_slides(
        DICOMwebClient(orthanc.dicomweb_url), container_id="V05-SLIDE"
    )[0]
    with dicomslide.OpenSlide(slide) as osr:
        remote = pipeline(osr)
    assert remote["levels"] == local["levels"]
    assert remote["associated"] == local["associated"]
    for key in ("region", "thumbnail", "tile"):
        np.testing.assert_array_equal(remote[key], local[key], err_msg=key)
