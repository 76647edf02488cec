"""DICOMweb against a real Orthanc server: parity, economy, faults, security."""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time

import numpy as np
import pydicom
import pytest
import requests
from dicomweb_client import DICOMwebClient

import dicomslide
from dicomslide import web
from dicomslide.cache import FrameCache
from dicomslide.client import resolve_bulk_data_uri
from dicomslide.errors import FrameRetrievalError, ServerError
from dicomslide.testing import synthetic
from tests.faultproxy import FaultProxy
from tests.orthanc import OrthancServer


class CountingSession(requests.Session):
    """A requests session that records every request it sends."""

    __attrs__ = [*requests.Session.__attrs__, "sent"]  # pickled with the session

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str]] = []

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        self.sent.append((method, url))
        return super().request(method, url, *args, **kwargs)

    def count(self, fragment: str) -> int:
        return sum(1 for _, url in self.sent if fragment in url)


def _upload_slide(
    orthanc, folder, preset, container, **kwargs
) -> synthetic.SyntheticSlide:
    slide = synthetic.write_slide(
        folder, preset, uids=synthetic.SlideUIDs.new(container[:16]), **kwargs
    )
    orthanc.upload(slide.files)
    return slide


def _web_slide(url: str, truth: synthetic.SyntheticSlide, **kwargs) -> dicomslide.Slide:
    client = DICOMwebClient(url, **kwargs)
    slides = dicomslide.find_slides(
        client, study_instance_uid=truth.uids.study_instance_uid, correct_color=False
    )
    assert len(slides) == 1
    return slides[0]


@pytest.mark.parametrize("transfer_syntax", synthetic.encodable_transfer_syntaxes())
def test_same_pixels_as_local_files(orthanc, tmp_path, transfer_syntax):
    image = synthetic.write_wsi_image(
        tmp_path,
        total_rows=150,
        total_cols=230,
        tile_rows=64,
        tile_cols=96,
        transfer_syntax=transfer_syntax,
        uids=synthetic.SlideUIDs.new(f"W{transfer_syntax[-6:]}"),
        seed=3,
    )
    orthanc.upload(image.files)
    local = dicomslide.find_slides(tmp_path, correct_color=False)[0]
    client = DICOMwebClient(orthanc.dicomweb_url)
    remote = dicomslide.find_slides(
        client, study_instance_uid=image.uids.study_instance_uid, correct_color=False
    )[0]
    expected = local.get_image_region((0, 0), 0, (150, 230))
    got = remote.get_image_region((0, 0), 0, (150, 230))
    np.testing.assert_array_equal(got, expected)
    assert remote.get_image(0).metrics["requests"] >= 1


def test_concatenation_over_dicomweb(orthanc, tmp_path):
    truth = _upload_slide(orthanc, tmp_path, "concatenation", "WEB-CONCAT")
    slide = _web_slide(orthanc.dicomweb_url, truth)
    level = truth.levels[0]
    assert len(level.files) == 3
    image = slide.get_volume_images()[0]
    assert len(image.sop_instance_uids) == 3
    # the last rows live in the third instance of the concatenation
    np.testing.assert_array_equal(
        image.get_image_region((0, 0), (300, 470)), level.pixels[0, 0]
    )


def test_one_request_per_instance_and_read(orthanc, tmp_path, monkeypatch):
    monkeypatch.setattr(web.settings, "neighbours", False)
    truth = _upload_slide(orthanc, tmp_path, "sparse", "WEB-COUNT")
    session = CountingSession()
    slide = _web_slide(orthanc.dicomweb_url, truth, session=session)
    image = slide.get_volume_images()[0]
    image._cache.clear()
    before = session.count("/frames/")
    region = image.get_image_region((10, 20), (200, 300))
    np.testing.assert_array_equal(region, truth.levels[0].pixels[0, 0, 10:210, 20:320])
    assert session.count("/frames/") - before == 1
    image.get_image_region((10, 20), (200, 300))
    assert session.count("/frames/") - before == 1  # the repeat read is cached
    image.get_image_region((10, 20), (250, 300))  # one more row of tiles
    assert session.count("/frames/") - before == 2


def _frames_asked(session: CountingSession) -> list[list[int]]:
    """Frame numbers of each frames request, in order."""
    return [
        [int(n) for n in url.rsplit("/frames/", 1)[1].split(",")]
        for _, url in session.sent
        if "/frames/" in url
    ]


def test_neighbouring_tiles_come_after_a_read(orthanc, tmp_path):
    truth = _upload_slide(orthanc, tmp_path, "sparse", "WEB-RING")
    session = CountingSession()
    image = _web_slide(
        orthanc.dicomweb_url, truth, session=session
    ).get_volume_images()[0]
    image._cache.clear()
    pixels = truth.levels[0].pixels[0, 0]  # 300 x 470, tiles 64 x 96: 5 x 5
    region = image.get_image_region((70, 100), (100, 150))  # tile rows 1-2, cols 1-2
    np.testing.assert_array_equal(region, pixels[70:170, 100:250])
    # the read's request holds its 4 tiles only; the ring of 12 around them,
    # less omitted (0, 0) and (2, 3), comes in a second request, sent in the
    # background once the read's frames are in
    for offset, size in (((0, 0), (64, 300)), ((130, 200), (100, 180))):
        np.testing.assert_array_equal(
            image.get_image_region(offset, size),
            pixels[offset[0] : offset[0] + size[0], offset[1] : offset[1] + size[1]],
        )
    asked = _frames_asked(session)
    assert [len(numbers) for numbers in asked] == [4, 12 - 2]
    assert image.metrics["frames_fetched"] == 14  # reads next to it need no request


def test_neighbours_stop_while_reads_leave_them_unread(orthanc, tmp_path, monkeypatch):
    monkeypatch.setenv("DICOMSLIDE_READAHEAD", "0")  # no scan read-ahead here
    image = synthetic.write_wsi_image(
        tmp_path,
        total_rows=32 * 32,
        total_cols=32 * 32,
        tile_rows=32,
        tile_cols=32,
        transfer_syntax=synthetic.JPEG_BASELINE,
        uids=synthetic.SlideUIDs.new("WEB-STOP"),
        seed=7,
    )
    orthanc.upload(image.files)
    session = CountingSession()
    client = DICOMwebClient(orthanc.dicomweb_url, session=session)
    metadata = pydicom.dcmread(image.files[0], stop_before_pixels=True)
    tiled = dicomslide.TiledImage(
        client, metadata, correct_color=False, cache=FrameCache(1 << 26)
    )
    matrix = tiled.get_total_pixel_matrix()
    truth = image.redecode("pillow-direct")[0, 0]

    loader = matrix._store.loader

    def read_tile(row: int, column: int) -> None:
        top, left = 32 * row, 32 * column
        np.testing.assert_array_equal(
            matrix[top : top + 32, left : left + 32],
            truth[top : top + 32, left : left + 32],
        )
        deadline = time.monotonic() + 10  # the ring's request is sent meanwhile
        while loader.loading and time.monotonic() < deadline:
            time.sleep(0.005)

    # Single tiles 4 apart: 8 neighbours each, none of them read later.
    far = [(row, column) for row in range(2, 32, 4) for column in range(2, 32, 4)]
    for row, column in far[:12]:
        read_tile(row, column)
    sizes = [len(frames) for frames in _frames_asked(session)]
    assert sizes[:16] == [1, 8] * 8  # 64 neighbours on probation, none read
    assert sizes[16:] == [1] * 4  # then only what reads need
    # Reads that come back to them: a quarter of the 64 read (all cached)...
    before = len(sizes)
    for row, column in far[:4]:
        for d_row, d_column in ((-1, -1), (-1, 0), (-1, 1), (0, -1)):
            read_tile(row + d_row, column + d_column)
    assert len(_frames_asked(session)) == before
    # ...and neighbours come after reads again.
    read_tile(*far[20])
    assert [len(frames) for frames in _frames_asked(session)[-2:]] == [1, 8]


def test_large_reads_are_split_into_concurrent_chunks(orthanc, tmp_path, monkeypatch):
    truth = _upload_slide(orthanc, tmp_path, "rgb_full", "WEB-CHUNK")
    session = CountingSession()
    slide = _web_slide(orthanc.dicomweb_url, truth, session=session)
    image = slide.get_volume_images()[0]
    image._cache.clear()
    monkeypatch.setattr(web.settings, "chunk_frames", 4)
    before = session.count("/frames/")
    region = image.get_image_region((0, 0), (300, 470))
    assert session.count("/frames/") - before == 7  # 25 frames in chunks of 4
    expected = truth.levels[0].redecode("pillow-direct")[0, 0]
    np.testing.assert_array_equal(region, expected)


def test_discovery_requests_do_not_grow_with_instances(orthanc, tmp_path):
    small = _upload_slide(orthanc, tmp_path / "a", "sparse", "WEB-FEW")
    large = _upload_slide(orthanc, tmp_path / "b", "concatenation", "WEB-MANY")
    counts = []
    for truth in (small, large):
        session = CountingSession()
        slide = _web_slide(orthanc.dicomweb_url, truth, session=session)
        assert slide.num_levels >= 3
        counts.append(len(session.sent))
    assert len(large.files) > len(small.files)
    assert counts[0] == counts[1] <= 5  # search + one metadata request per series


def test_icc_profile_fetched_once_on_first_use(orthanc, tmp_path):
    truth = _upload_slide(orthanc, tmp_path, "rgb_full", "WEB-ICC", icc="wide")
    session = CountingSession()
    client = DICOMwebClient(orthanc.dicomweb_url, session=session)
    slide = dicomslide.find_slides(
        client, study_instance_uid=truth.uids.study_instance_uid
    )[0]
    assert session.count("/bulk") == 0
    image = slide.get_volume_images()[0]
    image.get_image_region((0, 0), (50, 50))
    image.get_image_region((50, 50), (50, 50))
    assert image.icc_profile == truth.levels[0].icc_profile
    assert session.count("/bulk") == 1
    local = dicomslide.find_slides(tmp_path)[0]
    np.testing.assert_array_equal(
        image.get_image_region((0, 0), (100, 100)),
        local.get_volume_images()[0].get_image_region((0, 0), (100, 100)),
    )


def test_bulk_data_uri_on_another_host_is_not_followed():
    client = DICOMwebClient("http://127.0.0.1:8042/dicom-web")
    own = "http://127.0.0.1:8042/dicom-web/studies/1/bulk/1"
    assert resolve_bulk_data_uri(client, own) == own
    assert resolve_bulk_data_uri(client, "studies/1/bulk/2").startswith(
        "http://127.0.0.1:8042/dicom-web/"
    )
    # another host: never contacted; a path below our root is re-based
    rebased = resolve_bulk_data_uri(client, "http://evil.example/dicom-web/studies/1/x")
    assert rebased == "http://127.0.0.1:8042/dicom-web/studies/1/x"
    assert resolve_bulk_data_uri(client, "http://evil.example/steal?x=1") is None
    assert resolve_bulk_data_uri(client, "https://127.0.0.1:8042/other") is None


@pytest.fixture()
def proxied(orthanc, tmp_path, monkeypatch):
    # each read asks for its own tiles only: the faults hit the reads
    monkeypatch.setattr(web.settings, "neighbours", False)
    truth = _upload_slide(orthanc, tmp_path, "sparse", "WEB-FAULTS")
    proxy = FaultProxy(orthanc.base_url)
    yield truth, proxy
    proxy.close()


def test_transient_failures_are_retried(proxied, monkeypatch):
    truth, proxy = proxied
    monkeypatch.setattr(web.settings, "backoff", 0.01)
    slide = _web_slide(proxy.dicomweb_url, truth)
    image = slide.get_volume_images()[0]
    image._cache.clear()
    pixels = truth.levels[0].pixels[0, 0]
    before = len(proxy.requests_to("/frames/"))
    for status in (503, 500, 503):  # three failures, then the answer
        proxy.add("/frames/", status=status)
    region = image.get_image_region((64, 96), (64, 96))  # one stored tile
    np.testing.assert_array_equal(region, pixels[64:128, 96:192])
    assert [s.status for s in proxy.requests_to("/frames/")[before:]] == [
        503,
        500,
        503,
        200,
    ]
    image._cache.clear()
    resets = proxy.add("/frames/", reset=True, times=2)
    region = image.get_image_region((128, 0), (64, 96))
    np.testing.assert_array_equal(region, pixels[128:192, :96])
    assert resets.times == 0 and resets.used == 2


def test_failures_beyond_the_retries_are_a_clear_error(proxied, monkeypatch):
    truth, proxy = proxied
    monkeypatch.setattr(web.settings, "backoff", 0.01)
    slide = _web_slide(proxy.dicomweb_url, truth)
    image = slide.get_volume_images()[0]
    image._cache.clear()
    proxy.add("/frames/", status=503, times=None)
    with pytest.raises(FrameRetrievalError, match="HTTP 503") as info:
        image.get_image_region((64, 96), (64, 96))
    assert info.value.sop_instance_uid == image.sop_instance_uids[0]
    assert len(proxy.requests_to("/frames/")) == web.settings.retries + 1


def _drop_last_part(body: bytes) -> bytes:
    boundary = body.split(b"\r\n", 1)[0]  # the first delimiter line
    pieces = body.split(boundary)
    return boundary.join(pieces[:-2] + pieces[-1:])


def test_wrong_number_of_parts_is_an_error(proxied):
    truth, proxy = proxied
    slide = _web_slide(proxy.dicomweb_url, truth)
    image = slide.get_volume_images()[0]
    image._cache.clear()
    proxy.add("/frames/", transform=_drop_last_part)
    with pytest.raises(FrameRetrievalError, match="asked for 4 frames"):
        image.get_image_region((64, 96), (128, 192))


def test_server_killed_during_reads(orthanc_available, tmp_path, monkeypatch):
    monkeypatch.setattr(web.settings, "backoff", 0.05)
    monkeypatch.setattr(web.settings, "timeout", (1.0, 2.0))
    server = OrthancServer(tmp_path / "server")
    server.start()
    try:
        truth = _upload_slide(server, tmp_path / "slide", "rgb_full", "WEB-KILL")
        slide = _web_slide(server.dicomweb_url, truth)
        image = slide.get_volume_images()[0]
        outcome: dict[str, object] = {}

        def read_until_failure() -> None:
            started = time.monotonic()
            try:
                while time.monotonic() - started < 20:
                    image._cache.clear()
                    image.get_image_region((0, 0), (300, 470))
            except Exception as error:  # noqa: BLE001 (recorded for the test)
                outcome["error"] = error
            outcome["seconds"] = time.monotonic() - started

        reader = threading.Thread(target=read_until_failure)
        reader.start()
        time.sleep(0.3)
        killed = time.monotonic()
        server.kill()
        reader.join(timeout=30)
        assert not reader.is_alive()
        assert isinstance(outcome.get("error"), FrameRetrievalError)
        # retries with backoff, then the error: well within the timeout
        assert time.monotonic() - killed < 10
        server.start()  # same port, same storage
        image._cache.clear()
        np.testing.assert_array_equal(
            image.get_image_region((0, 0), (64, 96)),
            truth.levels[0].redecode("pillow-direct")[0, 0, :64, :96],
        )
    finally:
        server.stop()


def test_basic_authentication(orthanc_available, tmp_path, caplog):
    secret = "s3cret-Passw0rd"
    server = OrthancServer(tmp_path / "server", credentials=("reader", secret))
    server.start()
    try:
        truth = _upload_slide(server, tmp_path / "slide", "sparse", "WEB-AUTH")
        session = requests.Session()
        session.auth = ("reader", secret)
        with caplog.at_level(logging.DEBUG):
            slide = _web_slide(server.dicomweb_url, truth, session=session)
            region = slide.get_image_region((0, 0), 0, (64, 96))
        np.testing.assert_array_equal(region, truth.levels[0].pixels[0, 0, :64, :96])
        with pytest.raises(ServerError, match="authentication failed") as info:
            dicomslide.find_slides(DICOMwebClient(server.dicomweb_url))
        assert info.value.status == 401
        # frames too: a slide whose session lost its credentials
        session.auth = None
        image = slide.get_volume_images()[0]
        image._cache.clear()
        with pytest.raises(
            FrameRetrievalError, match="authentication failed"
        ) as frame_info:
            image.get_image_region((64, 96), (64, 96))  # a stored tile
        for text in (str(info.value), str(frame_info.value), repr(slide), caplog.text):
            assert secret not in text
    finally:
        server.stop()


@pytest.mark.parametrize("reachable", [True, False], ids=["fast-path", "public"])
def test_user_built_client_with_and_without_its_session(
    orthanc, tmp_path, monkeypatch, reachable
):
    """dicomslide sends with a user-built client's session when it can reach it
    (the _compat fast path), else through the client's public methods; the
    pixels are the same either way, also in a forked process."""
    from dicomslide import _compat

    monkeypatch.setattr(_compat, "CLIENT_SESSION", reachable)
    truth = _upload_slide(orthanc, tmp_path, "sparse", f"WEB-SESSION-{reachable}")
    session = CountingSession()
    slide = _web_slide(orthanc.dicomweb_url, truth, session=session)
    image = slide.get_volume_images()[0]
    expected = truth.levels[0].pixels[0, 0, 30:230, 40:340]
    np.testing.assert_array_equal(
        image.get_image_region((30, 40), (200, 300)), expected
    )
    assert session.count("/frames/") >= 1  # the user's session sent the frames
    image._cache.clear()
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        got = pool.apply(image.get_image_region, ((30, 40), (200, 300)))
    np.testing.assert_array_equal(got, expected)
