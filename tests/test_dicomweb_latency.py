"""DICOMweb through a proxy that adds a network's round trip, in front of Orthanc.

The proxy (:class:`tests.faultproxy.FaultProxy` with a latency) counts the requests
and how many it answers at once; pixels are compared with the same files read
from a local folder. Nothing here measures how fast reads are; the tests of
connections opened ahead compare when the proxy accepted a connection with
when a request arrived on it.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from typing import Any

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


def _open_url(proxy: FaultProxy, image: synthetic.SyntheticImage) -> dicomslide.Slide:
    """The slide opened from the proxy's URL (dicomslide makes the session)."""
    (slide,) = dicomslide.find_slides(
        proxy.dicomweb_url,
        study_instance_uid=image.uids.study_instance_uid,
        correct_color=False,
    )
    return slide


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
        slide = _open_url(proxy, uploaded)
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
        slide = _open_url(proxy, uploaded)
        regions = _far_apart_reads(slide, 3)
        time.sleep(0.1)
        assert (len(proxy.requests_to("/frames/")), proxy.connections) == (3, 1)
    for region, expected in zip(regions, _expected(uploaded, 3), strict=True):
        np.testing.assert_array_equal(region, expected)


def test_connections_opened_ahead_that_the_server_closed_are_not_used(
    orthanc, uploaded, monkeypatch
):
    monkeypatch.setattr(web.settings, "neighbours", False)
    with FaultProxy(
        orthanc.base_url, close_connections=True, idle_timeout=PAUSE / 4
    ) as proxy:
        slide = _open_url(proxy, uploaded)
        monkeypatch.setattr(web.settings, "retries", 0)  # a dead one would fail
        regions = _far_apart_reads(slide, 4)
        assert [seen.status for seen in proxy.requests_to("/frames/")] == [200] * 4
    for region, expected in zip(regions, _expected(uploaded, 4), strict=True):
        np.testing.assert_array_equal(region, expected)


def test_connections_opened_ahead_are_closed_when_unused(
    orthanc, uploaded, monkeypatch
):
    monkeypatch.setattr(web.settings, "neighbours", False)
    monkeypatch.setattr(preconnect.spares, "seconds", 2 * PAUSE)
    with FaultProxy(orthanc.base_url, close_connections=True) as proxy:
        slide = _open_url(proxy, uploaded)
        _far_apart_reads(slide, 2)
        time.sleep(PAUSE / 2)
        assert proxy.open_connections > 0  # opened ahead, waiting
        deadline = time.monotonic() + 20 * PAUSE
        while proxy.open_connections and time.monotonic() < deadline:
            time.sleep(PAUSE / 4)
        assert proxy.open_connections == 0


def _read_in_child(queue: Any, slide: dicomslide.Slide, done: Any) -> None:
    queue.put(np.asarray(slide.get_image_region((300, 500), 0, (40, 40))))
    done.wait(60)  # the child lives on while the parent waits


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_opens_its_own_connections(orthanc, uploaded, monkeypatch):
    monkeypatch.setattr(web.settings, "neighbours", False)
    monkeypatch.setattr(web.settings, "retries", 0)  # a shared socket would fail
    monkeypatch.setattr(preconnect.spares, "seconds", 2 * PAUSE)
    local = _local(uploaded)
    with FaultProxy(orthanc.base_url, close_connections=True) as proxy:
        slide = _open_url(proxy, uploaded)
        _far_apart_reads(slide, 2)
        time.sleep(PAUSE / 2)  # the parent has connections opened ahead
        context = multiprocessing.get_context("fork")
        queue, done = context.Queue(), context.Event()
        child = context.Process(target=_read_in_child, args=(queue, slide, done))
        child.start()
        try:
            in_child = queue.get(timeout=60)
            # the parent's connections opened ahead close when they expire:
            # the child kept no copy of them open
            deadline = time.monotonic() + 20 * PAUSE
            while proxy.open_connections and time.monotonic() < deadline:
                time.sleep(PAUSE / 4)
            assert proxy.open_connections == 0
            after = slide.get_image_region((400, 600), 0, (40, 40))
        finally:
            done.set()
            child.join(timeout=60)
        assert child.exitcode == 0
        frames = proxy.requests_to("/frames/")
    np.testing.assert_array_equal(
        in_child, local.get_image_region((300, 500), 0, (40, 40))
    )
    np.testing.assert_array_equal(
        after, local.get_image_region((400, 600), 0, (40, 40))
    )
    assert [seen.status for seen in frames] == [200] * 4
    assert len({seen.connection for seen in frames}) == 4


def test_more_connections_are_opened_ahead_for_concurrent_requests(
    orthanc, uploaded, monkeypatch
):
    monkeypatch.setattr(web.settings, "neighbours", False)
    with FaultProxy(orthanc.base_url, latency=LATENCY, close_connections=True) as p:
        slide = _open_url(p, uploaded)
        slide.get_image_region((0, 0), 0, (40, 40))
        time.sleep(PAUSE)
        assert p.open_connections == preconnect.SPARES  # one request at a time
        # 8 x 8 tiles: four concurrent requests of 16 frames
        region = slide.get_image_region((64, 96), 0, (256, 256))
        assert len(p.requests_to("/frames/")) == 5
        time.sleep(PAUSE)
        assert p.open_connections == preconnect.MAX_SPARES
    np.testing.assert_array_equal(
        region, _local(uploaded).get_image_region((64, 96), 0, (256, 256))
    )
