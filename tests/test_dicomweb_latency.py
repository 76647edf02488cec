"""DICOMweb through a proxy that adds a network's round trip, in front of Orthanc.

The proxy (:class:`tests.faultproxy.FaultProxy` with a latency) counts the requests
and how many it answers at once; pixels are compared with the same files read
from a local folder. Nothing here measures time.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from dicomweb_client import DICOMwebClient

import dicomslide
from dicomslide import preconnect, web
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


# ---------------------------------------------------------------- connections ahead

PAUSE = 0.2  # seconds a caller spends between reads


def _far_apart_reads(slide: dicomslide.Slide, count: int) -> list[np.ndarray]:
    """Reads of 40 x 40 pixels in distinct tiles, `PAUSE` apart."""
    regions = []
    for k in range(count):
        if k:
            time.sleep(PAUSE)
        offset = (64 * k + 5, 96 * k + 7)
        regions.append(slide.get_image_region(offset, 0, (40, 40)))
    return regions


def _expected(image: synthetic.SyntheticImage, count: int) -> list[np.ndarray]:
    local = _local(image)
    return [
        local.get_image_region((64 * k + 5, 96 * k + 7), 0, (40, 40))
        for k in range(count)
    ]


def test_connections_are_opened_ahead_where_the_server_closes_them(
    orthanc, uploaded, monkeypatch
):
    monkeypatch.setattr(web.settings, "neighbours", False)
    with FaultProxy(orthanc.base_url, close_connections=True) as proxy:
        (slide,) = dicomslide.find_slides(proxy.dicomweb_url, correct_color=False)
        regions = _far_apart_reads(slide, 5)
        frames = proxy.requests_to("/frames/")
    for region, expected in zip(regions, _expected(uploaded, 5), strict=True):
        np.testing.assert_array_equal(region, expected)
    assert len(frames) == 5  # one request per read, each on its own connection
    assert len({seen.connection for seen in frames}) == 5
    # after the first, each came on a connection opened while the caller
    # paused, before it asked: no handshake between asking and sending
    for seen in frames[1:]:
        assert seen.arrived - seen.accepted > PAUSE / 2


def test_no_connections_are_opened_ahead_where_the_server_keeps_them(
    orthanc, uploaded, monkeypatch
):
    monkeypatch.setattr(web.settings, "neighbours", False)
    with FaultProxy(orthanc.base_url) as proxy:
        (slide,) = dicomslide.find_slides(proxy.dicomweb_url, correct_color=False)
        regions = _far_apart_reads(slide, 3)
        time.sleep(0.1)
        assert (len(proxy.requests_to("/frames/")), proxy.connections) == (3, 1)
    for region, expected in zip(regions, _expected(uploaded, 3), strict=True):
        np.testing.assert_array_equal(region, expected)


def test_connections_opened_ahead_that_the_server_closed_are_not_used(
    orthanc, uploaded, monkeypatch
):
    monkeypatch.setattr(web.settings, "neighbours", False)
    monkeypatch.setattr(web.settings, "retries", 0)  # a dead connection would fail
    with FaultProxy(
        orthanc.base_url, close_connections=True, idle_timeout=PAUSE / 4
    ) as proxy:
        (slide,) = dicomslide.find_slides(proxy.dicomweb_url, correct_color=False)
        regions = _far_apart_reads(slide, 4)
        assert [seen.status for seen in proxy.requests_to("/frames/")] == [200] * 4
    for region, expected in zip(regions, _expected(uploaded, 4), strict=True):
        np.testing.assert_array_equal(region, expected)


def test_connections_opened_ahead_are_closed_when_unused(
    orthanc, uploaded, monkeypatch
):
    monkeypatch.setattr(web.settings, "neighbours", False)
    monkeypatch.setattr(preconnect.spares, "seconds", PAUSE)
    with FaultProxy(orthanc.base_url, close_connections=True) as proxy:
        (slide,) = dicomslide.find_slides(proxy.dicomweb_url, correct_color=False)
        _far_apart_reads(slide, 2)
        assert proxy.open_connections > 0  # opened ahead, waiting
        deadline = time.monotonic() + 10 * PAUSE
        while proxy.open_connections and time.monotonic() < deadline:
            time.sleep(PAUSE / 4)
        assert proxy.open_connections == 0
