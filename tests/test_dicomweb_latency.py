"""DICOMweb through a proxy that adds a network's round trip, in front of Orthanc.

The proxy (:class:`tests.faultproxy.FaultProxy` with a latency) counts the requests
and how many it answers at once; pixels are compared with the same files read
from a local folder. Nothing here measures time.
"""

from __future__ import annotations

import numpy as np
import pytest
from dicomweb_client import DICOMwebClient

import dicomslide
from dicomslide import web
from dicomslide.testing import synthetic
from tests.faultproxy import FaultProxy

LATENCY = 0.02  # seconds of round trip the proxy adds to every request


@pytest.fixture(scope="module")
def uploaded(orthanc, tmp_path_factory) -> synthetic.SyntheticImage:
    """A 512 x 768 JPEG image of 32 x 32 tiles (384 frames) on Orthanc."""
    image = synthetic.write_wsi_image(
        tmp_path_factory.mktemp("latency"),
        total_rows=512,
        total_cols=768,
        tile_rows=32,
        tile_cols=32,
        transfer_syntax=synthetic.JPEG_BASELINE,
        uids=synthetic.SlideUIDs.new("WEB-LATENCY"),
        seed=23,
    )
    orthanc.upload(image.files)
    return image


@pytest.fixture
def proxy(orthanc):
    with FaultProxy(orthanc.base_url, latency=LATENCY) as proxy:
        yield proxy


def _open(proxy: FaultProxy, image: synthetic.SyntheticImage) -> dicomslide.Slide:
    slides = dicomslide.find_slides(
        DICOMwebClient(proxy.dicomweb_url),
        study_instance_uid=image.uids.study_instance_uid,
        correct_color=False,
    )
    assert len(slides) == 1
    return slides[0]


def _local(image: synthetic.SyntheticImage) -> dicomslide.Slide:
    (slide,) = dicomslide.find_slides(image.files[0].parent, correct_color=False)
    return slide


def test_open_takes_two_requests(proxy, uploaded):
    slide = _open(proxy, uploaded)
    # the series search (one page: no empty second one) and the metadata
    assert [seen.path.split("?")[0].rsplit("/", 1)[-1] for seen in proxy.seen] == [
        "series",
        "metadata",
    ]
    region = slide.get_image_region((40, 50), 0, (100, 120))
    np.testing.assert_array_equal(
        region, _local(uploaded).get_image_region((40, 50), 0, (100, 120))
    )
    # the read's first request holds its 4 x 5 tiles only (the ring of tiles
    # around them comes in a request of its own)
    first = proxy.requests_to("/frames/")[0]
    assert len(first.path.rsplit("/", 1)[1].split(",")) == 4 * 5


def test_large_read_sends_concurrent_requests(proxy, uploaded, monkeypatch):
    monkeypatch.setattr(web.settings, "neighbours", False)
    slide = _open(proxy, uploaded)
    proxy.max_in_flight = 0
    region = slide.get_image_region((0, 0), 0, (512, 768))
    np.testing.assert_array_equal(
        region, _local(uploaded).get_image_region((0, 0), 0, (512, 768))
    )
    frames = proxy.requests_to("/frames/")
    asked = [len(seen.path.rsplit("/", 1)[1].split(",")) for seen in frames]
    assert sorted(asked) == [48] * 8  # 384 frames in 8 requests
    assert proxy.max_in_flight > 2  # they were in flight together


def test_scan_fetches_ahead_concurrently(proxy, uploaded):
    slide = _open(proxy, uploaded)
    matrix = slide.get_volume_images()[0].get_total_pixel_matrix()
    local = _local(uploaded).get_volume_images()[0].get_total_pixel_matrix()
    proxy.max_in_flight = 0
    sampler = dicomslide.TotalPixelMatrixSampler(matrix, (64, 64))
    expected = dicomslide.TotalPixelMatrixSampler(local, (64, 64))
    count = 0
    for mine, theirs in zip(sampler, expected, strict=True):
        np.testing.assert_array_equal(mine, theirs)
        count += 1
    assert count == 8 * 12
    frames = proxy.requests_to("/frames/")
    assert sum(len(s.path.rsplit("/", 1)[1].split(",")) for s in frames) == 384
    assert len(frames) < count // 2  # regions ahead come several to a request
    assert proxy.max_in_flight > 2
