"""The OpenSlide facade opens a DICOMweb slide from a URL, as from a folder."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import dicomslide.openslide as openslide
from dicomslide.testing import synthetic
from tests.faultproxy import FaultProxy


@pytest.fixture(scope="module")
def served(orthanc, tmp_path_factory):
    """Two slides in Orthanc (the session's server holds others too)."""
    folder = tmp_path_factory.mktemp("facade-web")
    slides = []
    for name, preset in (("FACADE-A", "rgb_full"), ("FACADE-B", "sparse")):
        truth = synthetic.write_slide(
            folder / name, preset, uids=synthetic.SlideUIDs.new(name)
        )
        orthanc.upload(truth.files)
        slides.append(truth)
    return orthanc, slides


def _url(orthanc, truth, series: bool = True) -> str:
    url = f"{orthanc.dicomweb_url}/studies/{truth.uids.study_instance_uid}"
    return url + f"/series/{truth.uids.series_instance_uid}" if series else url


@pytest.mark.parametrize("series", [True, False])
def test_a_series_or_study_url_opens_like_the_folder(served, series):
    orthanc, (truth, _) = served
    remote = openslide.OpenSlide(_url(orthanc, truth, series))
    local = openslide.OpenSlide(truth.folder)
    assert remote.level_dimensions == local.level_dimensions
    assert sorted(remote.associated_images) == sorted(local.associated_images)
    for level, (width, height) in enumerate(local.level_dimensions):
        size = (min(width, 200), min(height, 150))
        expected = np.asarray(local.read_region((40, 30), level, size))
        assert np.array_equal(
            np.asarray(remote.read_region((40, 30), level, size)), expected
        )
    assert openslide.OpenSlide.detect_format(_url(orthanc, truth)) == "dicom"
    again = pickle.loads(pickle.dumps(remote))
    assert np.array_equal(
        np.asarray(again.read_region((0, 0), 1, (64, 64))),
        np.asarray(local.read_region((0, 0), 1, (64, 64))),
    )
    assert isinstance(openslide.open_slide(_url(orthanc, truth)), openslide.OpenSlide)


def test_a_root_url_with_several_slides_names_them(served):
    orthanc, _ = served
    with pytest.raises(openslide.OpenSlideUnsupportedFormatError) as info:
        openslide.OpenSlide(orthanc.dicomweb_url)
    assert "'FACADE-A'" in str(info.value) and "'FACADE-B'" in str(info.value)
    assert "/studies/" in str(info.value)


def test_a_url_without_slides(served):
    orthanc, _ = served
    with pytest.raises(openslide.OpenSlideUnsupportedFormatError, match="no DICOM"):
        openslide.OpenSlide(f"{orthanc.dicomweb_url}/studies/1.2.3.4.5")


def test_credentials_stay_out_of_the_repr(served):
    orthanc, (truth, _) = served
    url = _url(orthanc, truth).replace("http://", "http://someone:s3cret@")
    remote = openslide.OpenSlide(url)
    assert "s3cret" not in repr(remote) and "someone" not in repr(remote)


def test_the_associated_images_icc_profiles_are_fetched_when_asked_for(served):
    # Orthanc gives the ICC profiles as bulk data: opening the slide and
    # reading it fetches level 0's alone, not those of the label, macro and
    # thumbnail, which are found (and their profiles fetched) on first use
    orthanc, (truth, _) = served
    local = openslide.OpenSlide(truth.folder)
    with FaultProxy(orthanc.base_url) as proxy:
        url = f"{proxy.dicomweb_url}/studies/{truth.uids.study_instance_uid}"
        remote = openslide.OpenSlide(url)
        region = remote.read_region((40, 30), 0, (200, 150))
        at_open = len(proxy.requests_to("/bulk"))
        names = sorted(remote.associated_images)
        profiles = {
            name: remote.associated_images[name].info.get("icc_profile")
            for name in names
        }
        after = len(proxy.requests_to("/bulk"))
    assert np.array_equal(
        np.asarray(region), np.asarray(local.read_region((40, 30), 0, (200, 150)))
    )
    assert names == ["label", "macro", "thumbnail"]
    assert at_open == 1
    expected = {
        name: local.associated_images[name].info.get("icc_profile") for name in names
    }
    assert profiles == expected
    assert after - at_open == sum(profile is not None for profile in expected.values())
    assert after > at_open
