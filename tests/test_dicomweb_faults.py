"""DICOMweb under faults and attack, and frames that servers refuse.

Every case runs against the Orthanc fixture, with a proxy of our own in front
of it (:mod:`faultproxy`) where a fault must be injected or crafted metadata
served. The security cases check with a listening socket that no connection
reached the other host.
"""

from __future__ import annotations

import base64
import datetime
import email.utils
import json
import logging
import time
from urllib.parse import quote, urlsplit

import numpy as np
import pydicom
import pytest
import requests
from dicomweb_client import DICOMwebClient
from pydicom.encaps import generate_frames

import dicomslide
from dicomslide import ChannelTypes, transport, web
from dicomslide.cache import get_default_cache
from dicomslide.client import resolve_bulk_data_uri
from dicomslide.errors import DicomSlideError, FrameRetrievalError, ServerError
from dicomslide.testing import synthetic, synthetic_derived
from tests.faultproxy import ConnectionRecorder, FaultProxy

STAR = "transfer-syntax=*"


def _open(url: str, study: str, **kwargs) -> dicomslide.Slide:
    slides = dicomslide.find_slides(
        DICOMwebClient(url), study_instance_uid=study, **kwargs
    )
    assert len(slides) == 1
    return slides[0]


def _statuses(proxy: FaultProxy, fragment: str) -> list[int]:
    return [seen.status for seen in proxy.requests_to(fragment)]


# ---------------------------------------------------------------- SSRF


@pytest.fixture(scope="module")
def icc_slide(orthanc, tmp_path_factory):
    """A slide whose wide-gamut ICC profile Orthanc gives as bulk data, and
    its pixels read locally, colour-corrected and raw."""
    folder = tmp_path_factory.mktemp("icc")
    truth = synthetic.write_slide(
        folder, "rgb_full", uids=synthetic.SlideUIDs.new("WEB-SSRF"), icc="wide"
    )
    orthanc.upload(truth.files)
    corrected = dicomslide.find_slides(folder)[0].get_image_region(
        (0, 0), 0, (100, 100)
    )
    raw = dicomslide.find_slides(folder, correct_color=False)[0].get_image_region(
        (0, 0), 0, (100, 100)
    )
    assert not np.array_equal(corrected, raw)  # the profile changes pixels
    return truth.uids.study_instance_uid, corrected, raw


def _rewrite_icc_uris(craft):
    """A proxy transform that replaces the ICC profile's BulkDataURI in
    series metadata by ``craft(path of the original URI)``."""

    def rewrite(item: dict) -> None:
        for tag, element in item.items():
            if tag == "00282000" and "BulkDataURI" in element:
                element["BulkDataURI"] = craft(urlsplit(element["BulkDataURI"]).path)
            if element.get("vr") == "SQ":
                for child in element.get("Value", []):
                    rewrite(child)

    def transform(body: bytes) -> bytes:
        instances = json.loads(body)
        for instance in instances:
            rewrite(instance)
        return json.dumps(instances).encode()

    return transform


REFUSED, REBASED = "refused", "re-based"
# {P}: the proxy's port (the client's server), {L}: the other host's port
TRICKS = {
    "backslash": ("http://127.0.0.1:{L}\\@127.0.0.1:{P}{path}", REFUSED),
    "userinfo": ("http://127.0.0.1:{P}@127.0.0.1:{L}{path}", REFUSED),
    "credentials": ("http://reader:secret@127.0.0.1:{L}{path}", REFUSED),
    "encoded-at": ("http://127.0.0.1:{L}%40127.0.0.1:{P}{path}", REFUSED),
    "encoded-at-host": ("http://127.0.0.1%40127.0.0.1:{L}{path}", REFUSED),
    "other-scheme": ("ftp://127.0.0.1:{L}{path}", REFUSED),
    "file": ("file:///etc/passwd", REFUSED),
    "outside-root": ("http://127.0.0.1:{P}/elsewhere{path}", REFUSED),
    "dot-segments": ("http://127.0.0.1:{P}/dicom-web/%2e%2e/x{path}", REFUSED),
    "ipv6-mapped": ("http://[::ffff:127.0.0.1]:{L}{path}", REBASED),
    "ipv6-loopback": ("http://[::1]:{L}{path}", REBASED),
    "other-port": ("http://127.0.0.1:{L}{path}", REBASED),
    "https": ("https://127.0.0.1:{L}{path}", REBASED),
    "network-path": ("//127.0.0.1:{L}{path}", REBASED),
}


@pytest.mark.parametrize("trick", sorted(TRICKS))
def test_bulk_data_uri_tricks_never_reach_another_host(
    orthanc, icc_slide, trick, caplog
):
    study, corrected, raw = icc_slide
    template, outcome = TRICKS[trick]
    with ConnectionRecorder() as other, FaultProxy(orthanc.base_url) as proxy:

        def craft(path: str) -> str:
            return template.format(P=proxy.port, L=other.port, path=path)

        proxy.add("/metadata", transform=_rewrite_icc_uris(craft), times=None)
        slide = _open(proxy.dicomweb_url, study)
        if outcome == REBASED:
            region = slide.get_image_region((0, 0), 0, (100, 100))
            np.testing.assert_array_equal(region, corrected)
            assert _statuses(proxy, "/bulk/") == [200]  # fetched from our server
        else:
            with pytest.raises(FrameRetrievalError, match="not on the client's server"):
                slide.get_image_region((0, 0), 0, (100, 100))
            assert proxy.requests_to("/bulk/") == []
            stored = _open(proxy.dicomweb_url, study, correct_color=False)
            np.testing.assert_array_equal(
                stored.get_image_region((0, 0), 0, (100, 100)), raw
            )
        assert any(seen.status == 200 for seen in proxy.requests_to("/metadata"))
        time.sleep(0.05)  # a connection attempt would have been accepted by now
    assert other.connections == []
    assert "secret" not in caplog.text


def test_rebase_decides_hosts_as_urllib3_does():
    base = "http://127.0.0.1:8042/dicom-web"
    own = f"{base}/studies/1/bulk/1"
    assert resolve_bulk_data_uri(DICOMwebClient(base), own) == own
    assert transport.rebase(base, "studies/1/bulk/2") == f"{base}/studies/1/bulk/2"
    assert transport.rebase(base, "/dicom-web/studies/1?x=1") == (
        f"{base}/studies/1?x=1"
    )
    # any authority that parses cleanly is replaced by the client's own
    for uri in (
        "http://evil.example/dicom-web/studies/1/x",
        "HTTPS://[::1]:9/dicom-web/studies/1/x",
    ):
        assert transport.rebase(base, uri) == f"{base}/studies/1/x"
    for uri in (
        "http://evil.example/steal?x=1",  # outside the root
        "https://127.0.0.1:8042/other",
        "http://127.0.0.1:9\\@127.0.0.1:8042/dicom-web/x",  # urllib3: host :9
        "http://127.0.0.1:8042/dicom-web/x\\y",
        "http://a@127.0.0.1:8042/dicom-web/x",
        "http://127.0.0.1:8042/dicom-web/../x",
        "../x",
        "studies/%2F..%2Fx",
        "http://127.0.0.1:8042/dicom-web/x#fragment",
        "http://127.0.0.1:8042 /dicom-web/x",
        "javascript:alert(1)",
    ):
        assert transport.rebase(base, uri) is None, uri
    # the origin a request goes to, as urllib3 decides it
    assert transport.origin("http://127.0.0.1:9\\@127.0.0.1:8042/x") is None
    assert transport.origin("HTTP://Example.org/x") == ("http", "example.org", 80)
    assert transport.origin("https://[::1]/x") == ("https", "::1", 443)


# ---------------------------------------------------------------- redirects


def test_redirects_to_another_origin_are_refused(orthanc, icc_slide, monkeypatch):
    study, corrected, _ = icc_slide
    monkeypatch.setattr(web.settings, "backoff", 0.01)
    with ConnectionRecorder() as other, FaultProxy(orthanc.base_url) as proxy:
        elsewhere = f"http://127.0.0.1:{other.port}/dicom-web/studies"
        proxy.add("/frames/", status=302, headers={"Location": elsewhere})
        slide = _open(proxy.dicomweb_url, study, correct_color=False)
        get_default_cache().clear()
        with pytest.raises(FrameRetrievalError, match="another origin") as info:
            slide.get_image_region((0, 0), 0, (100, 100))
        assert info.value.sop_instance_uid == slide.get_image(0).sop_instance_uids[0]
        assert f"127.0.0.1:{other.port}" in str(info.value)

        # bulk data: the read fails, a later one is corrected
        proxy.add("/bulk/", status=302, headers={"Location": elsewhere})
        slide = _open(proxy.dicomweb_url, study)
        with pytest.raises(FrameRetrievalError, match="another origin"):
            slide.get_image_region((0, 0), 0, (100, 100))
        time.sleep(0.2)  # the backoff
        np.testing.assert_array_equal(
            slide.get_image_region((0, 0), 0, (100, 100)), corrected
        )
        assert _statuses(proxy, "/bulk/") == [302, 200]
        time.sleep(0.05)
    assert other.connections == []


def test_redirects_within_the_server_are_followed(orthanc, icc_slide, monkeypatch):
    monkeypatch.setattr(web.settings, "neighbours", False)  # the read's request only
    study, _, raw = icc_slide
    with FaultProxy(orthanc.base_url) as proxy:
        proxy.add("/frames/", status=307, headers={"Location": "?moved=1"})
        slide = _open(proxy.dicomweb_url, study, correct_color=False)
        get_default_cache().clear()
        np.testing.assert_array_equal(
            slide.get_image_region((0, 0), 0, (100, 100)), raw
        )
        frames = proxy.requests_to("/frames/")
        assert [seen.status for seen in frames] == [307, 200]
        assert frames[1].path.endswith("?moved=1")


# ---------------------------------------------------------------- 429 / 503


@pytest.fixture()
def jpeg_slide(orthanc, tmp_path, monkeypatch):
    """An uploaded JPEG slide; each read asks for its own tiles only."""
    monkeypatch.setattr(web.settings, "neighbours", False)
    monkeypatch.setenv("DICOMSLIDE_READAHEAD", "0")
    truth = synthetic.write_slide(
        tmp_path, "rgb_full", uids=synthetic.SlideUIDs.new(tmp_path.name[-16:])
    )
    orthanc.upload(truth.files)
    get_default_cache().clear()
    return truth


@pytest.mark.parametrize("status", [429, 503])
def test_busy_answers_are_retried_after_retry_after(orthanc, jpeg_slide, status):
    pixels = jpeg_slide.levels[0].redecode("pillow-direct")[0, 0]
    with FaultProxy(orthanc.base_url) as proxy:
        proxy.add("/frames/", status=status, headers={"Retry-After": "1"})
        slide = _open(
            proxy.dicomweb_url, jpeg_slide.uids.study_instance_uid, correct_color=False
        )
        image = slide.get_volume_images()[0]
        started = time.monotonic()
        region = image.get_image_region((64, 96), (64, 96))
        waited = time.monotonic() - started
    np.testing.assert_array_equal(region, pixels[64:128, 96:192])
    assert _statuses(proxy, "/frames/") == [status, 200]
    assert 0.95 <= waited < 5  # the server's 1 s, not the 0.1 s backoff


def test_retry_after_as_an_http_date_is_honoured_up_to_the_cap(
    orthanc, jpeg_slide, monkeypatch
):
    monkeypatch.setattr(web.settings, "backoff", 0.01)
    monkeypatch.setattr(web.settings, "max_wait", 0.4)
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
        seconds=60
    )
    date = email.utils.format_datetime(later, usegmt=True)
    with FaultProxy(orthanc.base_url) as proxy:
        proxy.add("/system", status=503, headers={"Retry-After": date})
        answer = requests.get(f"{proxy.url}/system", timeout=5)
        assert 55 <= transport.retry_after(answer) <= 60
        proxy.add("/frames/", status=429, headers={"Retry-After": date})
        slide = _open(
            proxy.dicomweb_url, jpeg_slide.uids.study_instance_uid, correct_color=False
        )
        started = time.monotonic()
        slide.get_image_region((0, 0), 0, (64, 96))
        waited = time.monotonic() - started
    assert 0.35 <= waited < 5  # the cap, not the date nor the backoff
    assert _statuses(proxy, "/frames/") == [429, 200]


def test_a_server_that_stays_busy_is_a_clear_error(orthanc, jpeg_slide, monkeypatch):
    monkeypatch.setattr(web.settings, "max_wait", 0.05)
    with FaultProxy(orthanc.base_url) as proxy:
        proxy.add("/frames/", status=429, headers={"Retry-After": "1"}, times=None)
        slide = _open(
            proxy.dicomweb_url, jpeg_slide.uids.study_instance_uid, correct_color=False
        )
        started = time.monotonic()
        with pytest.raises(FrameRetrievalError) as info:
            slide.get_image_region((0, 0), 0, (64, 96))
        assert time.monotonic() - started < 3
    message = str(info.value)
    assert "HTTP 429" in message and "Retry-After: 1" in message
    assert f"{web.settings.retries + 1} attempts" in message
    assert len(proxy.requests_to("/frames/")) == web.settings.retries + 1


# ---------------------------------------------------------------- media types


def _stored_frame_sizes(path) -> list[int]:
    dataset = pydicom.dcmread(path)
    frames = generate_frames(
        dataset.PixelData, number_of_frames=int(dataset.NumberOfFrames)
    )
    return [len(frame) for frame in frames]


def _asked(path: str) -> list[int]:
    return [int(n) for n in path.rsplit("/frames/", 1)[1].split("?")[0].split(",")]


def _read_tiles(image, tiles, pixels) -> None:
    for row, column in tiles:
        top, left = 64 * row, 96 * column
        np.testing.assert_array_equal(
            image.get_image_region((top, left), (64, 96)),
            pixels[top : top + 64, left : left + 96],
        )


def test_one_transient_error_does_not_pin_transcoded_frames(orthanc, jpeg_slide):
    level = jpeg_slide.levels[0]
    sizes = _stored_frame_sizes(level.files[0])
    native = 64 * 96 * 3
    assert max(sizes) * 4 < native
    pixels = level.redecode("pillow-direct")[0, 0]
    with FaultProxy(orthanc.base_url) as proxy:
        proxy.add("/frames/", status=500)  # the first frames request only
        slide = _open(
            proxy.dicomweb_url, jpeg_slide.uids.study_instance_uid, correct_color=False
        )
        image = slide.get_volume_images()[0]
        _read_tiles(image, [(r, c) for r in range(3) for c in range(4)], pixels)
        frames = proxy.requests_to("/frames/")
    assert [seen.status for seen in frames[:2]] == [500, 200]
    assert len(frames) == 13
    for seen in frames:
        assert STAR in seen.headers["Accept"]
    for seen in frames[1:]:
        (number,) = _asked(seen.path)
        assert seen.nbytes <= sizes[number - 1] + 1000  # the stored bytes


@pytest.mark.parametrize(
    ("setting", "value", "learnt_reads"),
    [("reprobe_reads", 2, 3), ("reprobe_seconds", 0.3, 1)],
)
def test_a_media_type_learnt_from_a_refusal_is_given_up_later(
    orthanc, jpeg_slide, monkeypatch, setting, value, learnt_reads
):
    monkeypatch.setattr(web.settings, setting, value)
    level = jpeg_slide.levels[0]
    sizes = _stored_frame_sizes(level.files[0])
    pixels = level.redecode("pillow-direct")[0, 0]
    with FaultProxy(orthanc.base_url) as proxy:
        proxy.add("/frames/", status=406, when=lambda h: STAR in h.get("Accept", ""))
        slide = _open(
            proxy.dicomweb_url, jpeg_slide.uids.study_instance_uid, correct_color=False
        )
        image = slide.get_volume_images()[0]
        tiles = [(0, c) for c in range(4)] + [(1, 0)]
        _read_tiles(image, tiles[:1], pixels)
        if setting == "reprobe_seconds":
            time.sleep(value)
        _read_tiles(image, tiles[1:], pixels)
        frames = proxy.requests_to("/frames/")
    seen = [(STAR in f.headers["Accept"], f.status) for f in frames]
    # read 1: refused, then the transcoded frames; the choice holds for
    # `learnt_reads` reads, then the stored bytes are asked for again and sent
    assert seen == [(True, 406)] + [(False, 200)] * learnt_reads + [(True, 200)] * (
        len(tiles) - learnt_reads
    )
    for f in frames[1 : 1 + learnt_reads]:
        assert f.nbytes >= 64 * 96 * 3  # native
    for f in frames[1 + learnt_reads :]:
        (number,) = _asked(f.path)
        assert f.nbytes <= sizes[number - 1] + 1000


# ---------------------------------------------------------------- ICC profiles


def test_an_icc_failure_is_retried_in_place(orthanc, icc_slide):
    study, corrected, _ = icc_slide
    with FaultProxy(orthanc.base_url) as proxy:
        proxy.add("/bulk/", status=500)
        slide = _open(proxy.dicomweb_url, study)
        np.testing.assert_array_equal(
            slide.get_image_region((0, 0), 0, (100, 100)), corrected
        )
        assert _statuses(proxy, "/bulk/") == [500, 200]


def test_icc_failures_do_not_turn_colour_correction_off(
    orthanc, icc_slide, monkeypatch, caplog
):
    study, corrected, raw = icc_slide
    monkeypatch.setattr(web.settings, "backoff", 0.05)
    attempts = web.settings.retries + 1
    with FaultProxy(orthanc.base_url) as proxy:
        proxy.add("/bulk/", status=500, times=attempts)
        slide = _open(proxy.dicomweb_url, study)
        with pytest.raises(FrameRetrievalError, match="colours cannot be corrected"):
            slide.get_image_region((0, 0), 0, (100, 100))
        assert "HTTP 500" in caplog.text and "ICC profile not retrieved" in caplog.text
        # before the backoff is over: the same error, without a request
        with pytest.raises(FrameRetrievalError, match="HTTP 500"):
            slide.get_image_region((0, 0), 0, (100, 100))
        assert _statuses(proxy, "/bulk/") == [500] * attempts
        stored = slide.get_image(0).get_total_pixel_matrix(correct_color=False)
        np.testing.assert_array_equal(stored[:100, :100], raw)
        time.sleep(0.5)  # 0.05 * 2**3 later
        np.testing.assert_array_equal(
            slide.get_image_region((0, 0), 0, (100, 100)), corrected
        )
        assert _statuses(proxy, "/bulk/") == [500] * attempts + [200]
        assert slide.get_image(0).icc_profile is not None


# ---------------------------------------------------------------- credentials


def test_credentials_in_a_url_go_into_the_session(orthanc, tmp_path, caplog):
    user, password = "reader", "p@ss:w0rd/%x"
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    truth = synthetic.write_slide(
        tmp_path, "sparse", uids=synthetic.SlideUIDs.new("WEB-CREDS")
    )
    orthanc.upload(truth.files)
    get_default_cache().clear()
    caplog.set_level(logging.DEBUG)  # every logger, dicomweb_client's too
    with FaultProxy(orthanc.base_url, authorization=f"Basic {token}") as proxy:
        host = f"127.0.0.1:{proxy.port}"
        url = f"http://{user}:{quote(password, safe='')}@{host}/dicom-web"
        slides = dicomslide.find_slides(
            url, study_instance_uid=truth.uids.study_instance_uid, correct_color=False
        )
        region = slides[0].get_image_region((64, 96), 0, (64, 96))
        np.testing.assert_array_equal(
            region, truth.levels[0].pixels[0, 0, 64:128, 96:192]
        )
        assert proxy.seen and all(seen.status != 401 for seen in proxy.seen)
        assert {seen.headers.get("Authorization") for seen in proxy.seen} == {
            f"Basic {token}"
        }
        client = slides[0].get_image(0).client
        assert client.base_url == proxy.dicomweb_url
        wrong = f"http://{user}:Wr0ng-Secret@{host}/dicom-web"
        with pytest.raises(ServerError, match="authentication failed") as info:
            dicomslide.find_slides(wrong)
    assert f"GET: http://{host}/dicom-web/" in caplog.text  # DEBUG was on
    for text in (caplog.text, repr(slides[0]), str(info.value)):
        for secret in (password, quote(password, safe=""), "Wr0ng-Secret", token):
            assert secret not in text


def test_a_client_with_credentials_in_its_url_is_refused():
    client = DICOMwebClient("http://reader:s3cret@127.0.0.1:9/dicom-web")
    with pytest.raises(DicomSlideError, match="requests.Session") as info:
        dicomslide.find_slides(client)
    assert "s3cret" not in str(info.value)
    with pytest.raises(DicomSlideError, match="ambiguous") as info:
        dicomslide.find_slides("http://reader:s3cret@127.0.0.1:9\\@other/dicom-web")
    assert "s3cret" not in str(info.value)


# ---------------------------------------------------------------- timeouts


def test_web_settings_timeouts_govern_the_frames_of_a_users_client(
    orthanc, jpeg_slide, monkeypatch
):
    with FaultProxy(orthanc.base_url) as proxy:
        client = DICOMwebClient(proxy.dicomweb_url)  # its own timeout: 20 s
        slide = dicomslide.find_slides(
            client, study_instance_uid=jpeg_slide.uids.study_instance_uid
        )[0]
        monkeypatch.setattr(web.settings, "timeout", (1.0, 0.3))
        monkeypatch.setattr(web.settings, "retries", 0)
        proxy.add("/frames/", delay=3.0, times=None)
        started = time.monotonic()
        with pytest.raises(FrameRetrievalError, match="ReadTimeout"):
            slide.get_image_region((0, 0), 0, (64, 96))
        assert time.monotonic() - started < 2


def test_clients_opened_from_a_url_take_the_web_settings_timeouts(
    orthanc, jpeg_slide, monkeypatch
):
    monkeypatch.setattr(web.settings, "timeout", (1.0, 0.3))
    monkeypatch.setattr(web.settings, "retries", 1)
    monkeypatch.setattr(web.settings, "backoff", 0.01)
    with FaultProxy(orthanc.base_url) as proxy:
        proxy.add("/metadata", delay=3.0, times=None)
        started = time.monotonic()
        with pytest.raises(ServerError, match="ReadTimeout"):
            dicomslide.find_slides(
                proxy.dicomweb_url,
                study_instance_uid=jpeg_slide.uids.study_instance_uid,
            )
        assert time.monotonic() - started < 2
        assert len(proxy.requests_to("/metadata")) == 2  # with one retry


# ---------------------------------------------------------------- refused frames


def _instance_requests(proxy: FaultProxy, sop: str) -> list[int]:
    return [
        seen.status
        for seen in proxy.requests_to(f"/instances/{sop}")
        if "/frames/" not in seen.path
    ]


def test_a_parametric_map_whose_frames_orthanc_refuses(
    orthanc, tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(web.settings, "neighbours", False)
    monkeypatch.setattr(web.settings, "reprobe_reads", 3)
    source = synthetic.write_slide(
        tmp_path / "slide", "rgb_full", uids=synthetic.SlideUIDs.new("WEB-PM")
    )
    pmap = synthetic_derived.write_parametric_map(
        tmp_path / "pm", source.levels[0], dtype="float32"
    )
    orthanc.upload(source.files + pmap.files)

    def channel_of(slide: dicomslide.Slide) -> int:
        (channel,) = [
            i
            for i in range(slide.num_channels)
            if slide.get_channel_type(i) == ChannelTypes.PARAMETER
        ]
        return channel

    local = dicomslide.find_slides(tmp_path)[0]
    expected = local.get_image_region((0, 0), 0, (300, 470), channel_of(local))
    (sop,) = pmap.sop_instance_uids
    caplog.set_level(logging.INFO, logger="dicomslide")
    with FaultProxy(orthanc.base_url) as proxy:
        slide = _open(proxy.dicomweb_url, source.uids.study_instance_uid)
        channel = channel_of(slide)
        get_default_cache().clear()
        region = slide.get_image_region((0, 0), 0, (300, 470), channel)
        np.testing.assert_array_equal(region, expected)
        np.testing.assert_allclose(region[..., 0], pmap.values, rtol=1e-6)
        assert _statuses(proxy, f"{sop}/frames/") == [400]  # Bad file format
        assert _instance_requests(proxy, sop) == [200]
        for _ in range(3):  # from the instance kept
            get_default_cache().clear()
            region = slide.get_image_region((64, 96), 0, (64, 96), channel)
            np.testing.assert_array_equal(region, expected[64:128, 96:192])
        assert _statuses(proxy, f"{sop}/frames/") == [400]
        get_default_cache().clear()  # after 3 reads: are frames sent now?
        region = slide.get_image_region((64, 96), 0, (64, 96), channel)
        np.testing.assert_array_equal(region, expected[64:128, 96:192])
        assert _statuses(proxy, f"{sop}/frames/") == [400, 400]
        assert _instance_requests(proxy, sop) == [200]
    told = [r for r in caplog.records if "retrieved whole" in r.getMessage()]
    assert len(told) == 1 and told[0].levelno == logging.INFO
    assert sop in told[0].getMessage()


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, b'{"Message": "Bad file format"}'),
        (406, b""),
        (415, b""),
        (500, b'{"Message": "Cannot transcode"}'),
    ],
)
def test_frames_refused_by_the_server_come_from_the_instance(
    orthanc, jpeg_slide, monkeypatch, status, body
):
    monkeypatch.setattr(web.settings, "backoff", 0.01)
    pixels = jpeg_slide.levels[0].redecode("pillow-direct")[0, 0]
    with FaultProxy(orthanc.base_url) as proxy:
        proxy.add("/frames/", status=status, body=body, times=None)
        slide = _open(
            proxy.dicomweb_url, jpeg_slide.uids.study_instance_uid, correct_color=False
        )
        image = slide.get_volume_images()[0]
        _read_tiles(image, [(1, 1), (2, 3)], pixels)
        sop = image.sop_instance_uids[0]
        assert _instance_requests(proxy, sop) == [200]
    # the first read only; 406 and 415 for both media types
    asked = {400: 1, 406: 2, 415: 2, 500: web.settings.retries + 1}[status]
    assert len(proxy.requests_to("/frames/")) == asked


def test_an_instance_too_large_to_retrieve_is_an_error(
    orthanc, jpeg_slide, monkeypatch
):
    monkeypatch.setattr(web, "_instances", web._Instances())
    monkeypatch.setattr(web.settings, "instance_cache_bytes", 10_000)
    with FaultProxy(orthanc.base_url) as proxy:
        proxy.add("/frames/", status=400, body=b'{"Message": "Bad file format"}')
        slide = _open(
            proxy.dicomweb_url, jpeg_slide.uids.study_instance_uid, correct_color=False
        )
        with pytest.raises(FrameRetrievalError, match="too large") as info:
            slide.get_image_region((0, 0), 0, (64, 96))
        assert "Bad file format" in str(info.value)
        assert _instance_requests(proxy, slide.get_image(0).sop_instance_uids[0]) == []
