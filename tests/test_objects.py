"""Slides in object storage, read in place: a real S3-compatible server (moto's
standalone server, through s3fs) and nginx (through fsspec's HTTP filesystem).

Every corpus slide is uploaded once; its pixels read from the bucket must equal
those read from the local files, through the API and through the OpenSlide
facade. Requests are counted by a proxy in front of the server
(:class:`objectservers.CountingProxy`), not by dicomslide.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import pickle
import struct
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from pydicom.dataset import Dataset

import dicomslide
from dicomslide import fileframes, objectframes
from dicomslide.cache import FrameCache
from dicomslide.errors import (
    FrameRetrievalError,
    MissingExtraError,
    ObjectNotFoundError,
)
from dicomslide.fetch import describe_pixels
from dicomslide.fileframes import FileFrameSource
from dicomslide.files import PIXEL_DATA_OFFSET, read_part10_header
from dicomslide.objectframes import ObjectFrameSource
from dicomslide.objects import ObjectFile, ObjectStore
from dicomslide.query import stored_syntax
from dicomslide.testing import synthetic
from tests.conftest import corpus_path
from tests.objectservers import CountingProxy, GcsEmulator, MotoServer, Nginx
from tests.subprocesses import run_python

boto3 = pytest.importorskip("boto3", reason="the tests requirements bring moto")

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
SECRET = "s3cr3t-never-shown"
BUCKET = "slides"


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.dcm") if p.is_file())


@pytest.fixture(scope="module")
def s3(corpus):
    server = MotoServer()
    proxy = CountingProxy(server.url)
    client = boto3.client(
        "s3",
        endpoint_url=server.url,
        aws_access_key_id="test-key",
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=BUCKET)
    for variant in SLIDE_VARIANTS:
        for path in _files(corpus / variant):
            key = f"{variant}/{path.relative_to(corpus / variant)}"
            client.upload_file(str(path), BUCKET, key)
    # an object that is no DICOM file: skipped, as in a folder
    client.put_object(Bucket=BUCKET, Key=f"{SLIDE_VARIANTS[0]}/README.txt", Body=b"hi")
    options = {
        "key": "test-key",
        "secret": SECRET,
        "endpoint_url": proxy.url,
        "client_kwargs": {"region_name": "us-east-1"},
    }
    yield SimpleNamespace(proxy=proxy, options=options, client=client, server=server)
    proxy.close()
    server.close()


def _remote(s3, url, **kwargs):
    return dicomslide.find_slides(
        url, storage_options=s3.options, correct_color=False, **kwargs
    )


def _regions(slide: dicomslide.Slide, level: int) -> list[tuple[tuple, tuple]]:
    """A corner of each end of a level (edge tiles included)."""
    rows, columns = slide.total_pixel_matrix_dimensions[level]
    h, w = min(rows, 700), min(columns, 700)
    return [
        ((0, 0), (min(rows, 300), min(columns, 300))),
        ((rows - h, columns - w), (h, w)),
    ]


@pytest.mark.parametrize("variant", SLIDE_VARIANTS)
def test_slides_in_a_bucket_match_the_local_files(corpus, s3, variant):
    remote = _remote(s3, f"s3://{BUCKET}/{variant}/")
    local = dicomslide.find_slides(corpus / variant, correct_color=False)
    assert len(remote) == len(local) > 0
    for slide, reference in zip(remote, local, strict=True):
        assert slide.sop_instance_uids == reference.sop_instance_uids
        assert slide.total_pixel_matrix_dimensions == (
            reference.total_pixel_matrix_dimensions
        )
        for level in range(slide.num_levels):
            for channel in range(slide.num_channels):
                for offset, size in _regions(slide, level):
                    got = slide.get_image_region(offset, level, size, channel)
                    expected = reference.get_image_region(offset, level, size, channel)
                    assert got.std() > 0  # content, not a blank tile
                    np.testing.assert_array_equal(got, expected)


def test_opening_takes_one_request_per_instance_and_a_listing(corpus, s3):
    variant = max(SLIDE_VARIANTS, key=lambda v: len(_files(corpus / v)))
    instances = len(_files(corpus / variant))
    listed = s3.client.list_objects_v2(Bucket=BUCKET, Prefix=f"{variant}/")
    objects = len(listed["Contents"])  # (straight from the server)
    s3.proxy.clear()
    slides = _remote(s3, f"s3://{BUCKET}/{variant}/")
    seen = s3.proxy.requests()
    assert len(slides) == 1 and len(slides[0].sop_instance_uids) == instances
    assert len(seen) <= objects + 2, [(s.method, s.path, s.range) for s in seen]
    assert s3.proxy.most_at_once() > 1  # the headers were read concurrently


def test_an_objects_url_opens_its_slide_with_its_siblings(corpus, s3):
    variant = SLIDE_VARIANTS[0]
    files = _files(corpus / variant)
    named = files[len(files) // 2]
    uid = str(read_part10_header(named).SOPInstanceUID)
    s3.proxy.clear()
    url = f"s3://{BUCKET}/{variant}/{named.relative_to(corpus / variant)}"
    slide = dicomslide.open_slide(url, storage_options=s3.options)
    assert uid in slide.sop_instance_uids and len(slide.sop_instance_uids) > 1
    assert len(s3.proxy.requests()) <= len(files) + 1 + 2  # +1: README.txt


def _has_offset_table(path: Path) -> bool:
    header = read_part10_header(path)
    if "ExtendedOffsetTable" in header:
        return True
    with open(path, "rb") as fp:
        fp.seek(getattr(header, PIXEL_DATA_OFFSET))
        element = fp.read(20)
    if element[8:12] == b"\xff\xff\xff\xff":  # encapsulated: the first item
        return struct.unpack("<I", element[16:20])[0] > 0
    return True  # native: frames are where their size puts them


def _sources(
    s3, path: Path, key: str
) -> tuple[FileFrameSource, ObjectFrameSource, int]:
    """Frame sources of a local file and of its copy at `key` of the bucket."""
    header = read_part10_header(path)
    frames = int(header.get("NumberOfFrames", 1) or 1)
    desc = describe_pixels(header, stored_syntax(header) or "")
    sop = str(header.SOPInstanceUID)
    store = ObjectStore(f"s3://{BUCKET}/", s3.options)
    size = s3.client.head_object(Bucket=BUCKET, Key=key)["ContentLength"]  # as listed
    remote = ObjectFrameSource(
        ObjectFile(store, f"{BUCKET}/{key}", size), sop, desc, frames
    )
    return FileFrameSource(path, sop, desc, frames), remote, frames


@pytest.mark.parametrize("variant", SLIDE_VARIANTS)
def test_header_and_offset_table_take_at_most_two_requests(corpus, s3, variant):
    for path in _files(corpus / variant):
        local, remote, frames = _sources(s3, path, str(path.relative_to(corpus)))
        s3.proxy.clear()
        assert remote.read_frames([frames]) == local.read_frames([frames])
        seen = s3.proxy.requests()
        if _has_offset_table(path):  # header and table, then the frame
            assert len(seen) <= 2 + 1, [(s.method, s.range) for s in seen]
        assert remote.read_frames([1, frames]) == local.read_frames([1, frames])


def test_a_read_gets_each_run_of_frames_with_one_request(corpus, s3):
    variant = SLIDE_VARIANTS[0]
    slide = _remote(s3, f"s3://{BUCKET}/{variant}/")[0]
    reference = dicomslide.find_slides(corpus / variant, correct_color=False)[0]
    image = slide.get_volume_images()[0]
    tile_rows, tile_columns = int(image.metadata.Rows), int(image.metadata.Columns)
    s3.proxy.clear()
    size = (2 * tile_rows, 4 * tile_columns)  # 2 rows of 4 adjacent tiles
    # away from the first rows, which come with the header's first bytes
    offset = (4 * tile_rows, 0)
    region = slide.get_image_region(offset, 0, size)
    np.testing.assert_array_equal(region, reference.get_image_region(offset, 0, size))
    seen = s3.proxy.requests()
    assert 1 <= len(seen) <= 2, [(s.method, s.range) for s in seen]
    assert all(s.method == "GET" and s.range and s.status == 206 for s in seen)


def test_missing_bucket_or_object_names_the_url(s3, caplog):
    caplog.set_level(logging.DEBUG)
    for url in (
        f"s3://no-such-bucket/{SLIDE_VARIANTS[0]}/",
        f"s3://{BUCKET}/nothing/x.dcm",
    ):
        with pytest.raises(ObjectNotFoundError) as raised:
            _remote(s3, url)
        assert isinstance(raised.value, FileNotFoundError)
        assert url.rstrip("/") in str(raised.value)
        assert SECRET not in str(raised.value)
    assert SECRET not in caplog.text


def test_credentials_are_never_shown(s3, caplog):
    caplog.set_level(logging.DEBUG)
    slide = _remote(s3, f"s3://{BUCKET}/{SLIDE_VARIANTS[0]}/")[0]
    slide.get_image_region((0, 0), 0, (64, 64))
    shown = [repr(slide), repr(slide.client), str(slide.client.store), caplog.text]
    assert not any(SECRET in text for text in shown)


@pytest.mark.parametrize(
    "variant", ["V01-orthanc-jpeg", "V14-wsidicom-native-explicit"]
)
def test_a_truncated_object_reads_like_a_truncated_file(corpus, s3, tmp_path, variant):
    path = max(_files(corpus / variant), key=lambda p: p.stat().st_size)
    data = path.read_bytes()
    cut = tmp_path / variant / path.name
    cut.parent.mkdir()
    cut.write_bytes(data[: len(data) * 3 // 5])
    key = f"cut/{variant}/{path.name}"
    s3.client.put_object(Bucket=BUCKET, Key=key, Body=cut.read_bytes())
    local, remote, frames = _sources(s3, cut, key)
    outcomes = []
    lost = int(frames * 0.6)  # about where the cut is
    for frame in sorted({1, 2, *range(lost - 20, lost + 20), frames}):
        try:
            expected = local.read_frames([frame])
        except FrameRetrievalError:
            with pytest.raises(FrameRetrievalError) as raised:
                remote.read_frames([frame])
            assert raised.value.frame_number == frame
            assert raised.value.sop_instance_uid == remote.sop_instance_uid
            outcomes.append(False)
        else:
            assert remote.read_frames([frame]) == expected
            outcomes.append(True)
    assert outcomes[0] and not outcomes[-1]


def _read_region(args):
    slide, level = args
    offset = [n // 3 for n in slide.total_pixel_matrix_dimensions[level]]
    return slide.get_image_region(offset, level, (100, 200))


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_workers_read_from_the_bucket(corpus, s3, method):
    variant = SLIDE_VARIANTS[0]
    slide = _remote(s3, f"s3://{BUCKET}/{variant}/")[0]
    reference = dicomslide.find_slides(corpus / variant, correct_color=False)[0]
    slide.get_image_region((0, 0), 0, (64, 64))  # the parent has connected
    assert SECRET.encode() in pickle.dumps(slide)  # the options travel...
    assert b"S3FileSystem" not in pickle.dumps(slide)  # ...a connection doesn't
    levels = [0, slide.num_levels - 1]
    s3.proxy.clear()
    with multiprocessing.get_context(method).Pool(2) as pool:
        try:
            regions = pool.map(_read_region, [(slide, level) for level in levels])
        except FrameRetrievalError as error:  # what did the server see? (seen once)
            seen = [(s.method, s.path, s.range, s.status) for s in s3.proxy.requests()]
            details = f"proxy saw {seen}\nmoto's log:\n{s3.server.log_tail()}"
            raise AssertionError(details) from error
    assert len(s3.proxy.requests()) >= len(levels)  # the workers read themselves
    for level, region in zip(levels, regions, strict=True):
        np.testing.assert_array_equal(region, _read_region((reference, level)))


def test_to_dask_reads_from_the_bucket(corpus, s3):
    pytest.importorskip("dask", reason="dask is an extra")
    variant = SLIDE_VARIANTS[0]
    slide = _remote(s3, f"s3://{BUCKET}/{variant}/")[0]
    reference = dicomslide.find_slides(corpus / variant, correct_color=False)[0]
    level = slide.num_levels - 2
    got = slide.to_dask(level).compute(scheduler="threads")
    np.testing.assert_array_equal(got, reference.to_dask(level).compute())


@pytest.mark.parametrize("variant", SLIDE_VARIANTS)
def test_facade_opens_a_bucket_prefix(corpus, s3, monkeypatch, variant):
    from dicomslide.openslide import OpenSlide

    monkeypatch.setenv("DICOMSLIDE_STORAGE_OPTIONS", json.dumps(s3.options))
    with (
        OpenSlide(f"s3://{BUCKET}/{variant}/") as remote,
        OpenSlide(str(corpus / variant)) as local,
    ):
        assert remote.level_dimensions == local.level_dimensions
        last = remote.level_count - 1
        width, height = remote.level_dimensions[0]
        for location, level, size in (
            ((0, 0), last, remote.level_dimensions[last]),
            ((width - 300, height - 200), 0, (300, 200)),
        ):
            got = np.asarray(remote.read_region(location, level, size))
            np.testing.assert_array_equal(
                got, np.asarray(local.read_region(location, level, size))
            )


def test_cli_lists_a_bucket_prefix(s3, capsys):
    from dicomslide.cli import main

    options = [
        f"--storage-option={key}={v if isinstance(v, str) else json.dumps(v)}"
        for key, v in s3.options.items()
    ]
    assert main(["ls", f"s3://{BUCKET}/{SLIDE_VARIANTS[0]}/", *options]) == 0
    out = capsys.readouterr().out
    assert "V01-SLIDE" in out and SECRET not in out
    assert main(["ls", f"s3://{BUCKET}/missing/", *options]) != 0
    err = capsys.readouterr().err
    assert f"s3://{BUCKET}/missing" in err and SECRET not in err


def test_without_the_cloud_extra_an_s3_url_names_it():
    result = run_python(
        """
        import sys
        sys.modules["s3fs"] = None  # as if not installed
        import dicomslide
        from dicomslide.errors import MissingExtraError
        try:
            dicomslide.find_slides("s3://bucket/prefix/")
        except MissingExtraError as error:
            print("raised:", error)
        """
    )
    assert "raised:" in result.stdout and "dicomslide[cloud]" in result.stdout, (
        result.stdout + result.stderr
    )
    assert issubclass(MissingExtraError, ImportError)


@pytest.fixture(scope="module")
def web_files(corpus):
    server = Nginx(corpus)
    proxy = CountingProxy(server.url)
    yield proxy
    proxy.close()
    server.close()


def test_http_file_urls_through_nginx(corpus, web_files):
    variant = SLIDE_VARIANTS[0]
    files = _files(corpus / variant)
    urls = [f"{web_files.url}/{path.relative_to(corpus)}" for path in files]
    web_files.clear()
    slide = dicomslide.open_slide(urls, correct_color=False)
    seen = [(s.method, s.path, s.range) for s in web_files.requests()]
    assert len(seen) <= len(files) + 2, seen  # a GET per header, + long headers
    reference = dicomslide.find_slides(corpus / variant, correct_color=False)[0]
    for level in (0, slide.num_levels - 1):
        for offset, size in _regions(slide, level):
            np.testing.assert_array_equal(
                slide.get_image_region(offset, level, size),
                reference.get_image_region(offset, level, size),
            )
    assert all(s.range for s in web_files.requests("GET"))


def test_a_server_that_goes_away_is_tried_again_then_named(corpus, web_files):
    folder = corpus / SLIDE_VARIANTS[0]
    urls = [f"{web_files.url}/{path.relative_to(corpus)}" for path in _files(folder)]

    def fresh() -> dicomslide.Slide:  # with a cache of its own: nothing read yet
        return dicomslide.open_slide(urls, correct_color=False, cache=FrameCache(2**26))

    slide = fresh()
    reference = dicomslide.open_slide(folder, correct_color=False)
    level = slide.num_levels - 1
    size = slide.total_pixel_matrix_dimensions[level]
    web_files.clear()
    web_files.break_next = 1  # one request is cut off, the next one answered
    np.testing.assert_array_equal(
        slide.get_image_region((0, 0), level, size),
        reference.get_image_region((0, 0), level, size),
    )
    seen = web_files.requests()
    assert seen[0].status == 0 and len(seen) >= 2  # cut off, then tried again
    other = fresh()
    web_files.break_next = None  # gone for good
    try:
        with pytest.raises(FrameRetrievalError) as raised:
            other.get_image_region((0, 0), level, size)
    finally:
        web_files.break_next = 0
    assert raised.value.frame_number is not None
    assert f"{web_files.url}/{SLIDE_VARIANTS[0]}/" in str(raised.value)


@pytest.mark.slow
def test_to_dask_on_a_process_cluster_reads_from_the_bucket(corpus, s3):
    distributed = pytest.importorskip("distributed", reason="dask is an extra")
    variant = SLIDE_VARIANTS[0]
    slide = _remote(s3, f"s3://{BUCKET}/{variant}/")[0]
    reference = dicomslide.find_slides(corpus / variant, correct_color=False)[0]
    level = slide.num_levels - 2
    expected = reference.to_dask(level).astype(np.int64).sum(axis=(0, 1)).compute()
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    try:
        with distributed.Client(cluster) as client:
            s3.proxy.clear()
            array = slide.to_dask(level).astype(np.int64).sum(axis=(0, 1))
            total = client.compute(array).result()
    finally:
        cluster.close()
    np.testing.assert_array_equal(total, expected)
    assert s3.proxy.requests("GET")  # the workers read from the bucket


def test_which_sources_are_object_storage(tmp_path):
    from dicomslide.objects import is_object_url

    assert is_object_url("s3://bucket/prefix/") and is_object_url("gs://b/o.dcm")
    assert is_object_url(["https://host/a.dcm", "https://host/b.dcm"])
    for other in ("http://host/dicom-web", "file:///tmp", "/tmp/x", "C:\\slides", []):
        assert not is_object_url(other)
    with pytest.raises(TypeError, match="storage_options"):
        dicomslide.find_slides(tmp_path, storage_options={"anon": True})


def test_serve_shows_a_slide_in_object_storage(s3, corpus):
    from tests.viewer_server import get, slides, viewer_server

    options = [
        f"--storage-option={key}={v if isinstance(v, str) else json.dumps(v)}"
        for key, v in s3.options.items()
    ]
    variant = SLIDE_VARIANTS[0]
    with (
        viewer_server(f"s3://{BUCKET}/{variant}/", *options) as remote,
        viewer_server(corpus / variant) as local,
    ):
        (summary,) = slides(remote)
        assert slides(local)[0]["id"] == summary["id"]
        prefix = f"/slides/{summary['id']}"
        dzi = get(remote, prefix + ".dzi")[2]
        assert dzi == get(local, prefix + ".dzi")[2]
        top = int(np.ceil(np.log2(max(summary["levels"][0]))))
        for path in (
            f"{prefix}_files/{top}/1_1.jpeg",
            f"{prefix}_files/{top - 3}/0_0.png",
        ):
            status, headers, tile = get(remote, path)
            assert status == 200 and len(tile) > 1000
            assert tile == get(local, path)[2]


# -- fsspec filesystems given as objects (filesystem=) -------------------------


def _read_corner(args):
    slide, level = args
    return slide.get_image_region((0, 0), level, (200, 300))


def test_an_s3fs_filesystem_reads_like_its_urls(corpus, s3):
    s3fs = pytest.importorskip("s3fs", reason="the cloud extra brings s3fs")
    variant = max(SLIDE_VARIANTS, key=lambda v: len(_files(corpus / v)))
    filesystem = s3fs.S3FileSystem(
        key=s3.options["key"],
        secret=SECRET,
        endpoint_url=s3.proxy.url,
        client_kwargs={"region_name": "us-east-1"},
    )
    objects = len(
        s3.client.list_objects_v2(Bucket=BUCKET, Prefix=f"{variant}/")["Contents"]
    )
    s3.proxy.clear()
    slide = dicomslide.open_slide(
        f"{BUCKET}/{variant}/", filesystem=filesystem, correct_color=False
    )
    assert len(s3.proxy.requests()) <= objects + 2  # as for its URL
    reference = dicomslide.open_slide(corpus / variant, correct_color=False)
    assert slide.sop_instance_uids == reference.sop_instance_uids
    s3.proxy.clear()
    for level in (0, slide.num_levels - 1):
        for offset, size in _regions(slide, level):
            got = slide.get_image_region(offset, level, size)
            assert got.std() > 0
            np.testing.assert_array_equal(
                got, reference.get_image_region(offset, level, size)
            )
    seen = s3.proxy.requests()
    assert seen and all(s.method == "GET" and s.status == 206 for s in seen)
    assert SECRET not in repr(slide) + repr(slide.client)
    # a URL of its protocol names the same objects
    by_url = dicomslide.open_slide(
        f"s3://{BUCKET}/{variant}/", filesystem=filesystem, correct_color=False
    )
    assert by_url.sop_instance_uids == reference.sop_instance_uids
    # a worker makes its own filesystem (and connections) from the pickle
    s3.proxy.clear()
    with multiprocessing.get_context("fork").Pool(1) as pool:
        (region,) = pool.map(_read_corner, [(slide, 1)])
    np.testing.assert_array_equal(region, _read_corner((reference, 1)))
    assert s3.proxy.requests("GET")  # read by the worker, not the cache


@pytest.fixture(scope="module")
def corpus_dirfs(corpus):
    from fsspec.implementations.dirfs import DirFileSystem
    from fsspec.implementations.local import LocalFileSystem

    return DirFileSystem(str(corpus), LocalFileSystem())


@pytest.mark.parametrize("variant", SLIDE_VARIANTS)
def test_a_dir_filesystem_reads_like_the_folder(corpus, corpus_dirfs, variant):
    remote = dicomslide.find_slides(
        f"{variant}/", filesystem=corpus_dirfs, correct_color=False
    )
    local = dicomslide.find_slides(corpus / variant, correct_color=False)
    assert len(remote) == len(local) > 0
    for slide, reference in zip(remote, local, strict=True):
        assert slide.sop_instance_uids == reference.sop_instance_uids
        for level in (0, slide.num_levels - 1):
            for offset, size in _regions(slide, level):
                got = slide.get_image_region(offset, level, size)
                assert got.std() > 0
                np.testing.assert_array_equal(
                    got, reference.get_image_region(offset, level, size)
                )


def test_a_filesystems_slide_goes_to_spawned_workers_and_dask(corpus, corpus_dirfs):
    variant = SLIDE_VARIANTS[0]
    files = _files(corpus / variant)
    named = str(files[0].relative_to(corpus))  # one file: its slide
    slide = dicomslide.open_slide(named, filesystem=corpus_dirfs, correct_color=False)
    reference = dicomslide.open_slide(corpus / variant, correct_color=False)
    assert b"DirFileSystem" in pickle.dumps(slide)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        (region,) = pool.map(_read_corner, [(slide, 0)])
    np.testing.assert_array_equal(region, _read_corner((reference, 0)))
    level = slide.num_levels - 2
    np.testing.assert_array_equal(
        slide.to_dask(level).compute(scheduler="threads"),
        reference.to_dask(level).compute(),
    )
    from dicomslide.openslide import OpenSlide

    with OpenSlide(slide) as remote, OpenSlide(str(corpus / variant)) as local:
        size = remote.level_dimensions[-1]
        last = remote.level_count - 1
        np.testing.assert_array_equal(
            np.asarray(remote.read_region((0, 0), last, size)),
            np.asarray(local.read_region((0, 0), last, size)),
        )


def test_a_memory_filesystem_serves_forked_workers(corpus):
    fsspec = pytest.importorskip("fsspec")
    variant = SLIDE_VARIANTS[-1]
    memory = fsspec.filesystem("memory")
    for path in _files(corpus / variant):
        memory.pipe_file(f"/objects/{path.name}", path.read_bytes())
    try:
        slide = dicomslide.open_slide(
            "/objects/", filesystem=memory, correct_color=False
        )
        reference = dicomslide.open_slide(corpus / variant, correct_color=False)
        level = slide.num_levels - 1
        with multiprocessing.get_context("fork").Pool(1) as pool:
            (region,) = pool.map(_read_corner, [(slide, level)])
        np.testing.assert_array_equal(region, _read_corner((reference, level)))
        assert region.std() > 0
    finally:
        memory.rm("/objects", recursive=True)


def test_a_filesystem_is_checked_and_names_what_is_missing(corpus_dirfs, s3):
    with pytest.raises(TypeError, match="fsspec"):
        dicomslide.find_slides("slides/", filesystem=object())
    with pytest.raises(TypeError, match="storage_options"):
        dicomslide.find_slides(
            "slides/", filesystem=corpus_dirfs, storage_options=s3.options
        )
    with pytest.raises(TypeError, match="path"):
        dicomslide.find_slides(Path("slides"), filesystem=corpus_dirfs)
    with pytest.raises(TypeError, match="DirFileSystem"):
        dicomslide.find_slides("s3://slides/x/", filesystem=corpus_dirfs)
    with pytest.raises(ObjectNotFoundError, match="no-such-folder"):
        dicomslide.find_slides("no-such-folder/", filesystem=corpus_dirfs)


# -- Google Cloud Storage (gs://) on gcp-storage-emulator ----------------------

GCS_VARIANTS = [
    v for v in ("V01-orthanc-jpeg", "V15-wsidicom-j2k-ict") if v in SLIDE_VARIANTS
]


@pytest.fixture(scope="module")
def gcs(corpus):
    fsspec = pytest.importorskip("fsspec")
    gcsfs = pytest.importorskip("gcsfs", reason="the cloud extra brings gcsfs")
    # gcsfs's default class first asks a bucket's layout over gRPC (the
    # Storage Control API), which the emulator does not serve: each call then
    # waits for a minute. Its JSON API class is what the emulator speaks.
    default = fsspec.get_filesystem_class("gs")
    fsspec.register_implementation("gs", gcsfs.core.GCSFileSystem, clobber=True)
    server = GcsEmulator()
    proxy = CountingProxy(server.url)
    options = {"endpoint_url": proxy.url, "token": "anon", "project": "test"}
    uploader = gcsfs.core.GCSFileSystem(
        endpoint_url=server.url, token="anon", project="test", skip_instance_cache=True
    )
    try:
        uploader.mkdir(BUCKET)
        for variant in GCS_VARIANTS:
            for path in _files(corpus / variant):
                key = f"{BUCKET}/{variant}/{path.relative_to(corpus / variant)}"
                uploader.pipe_file(key, path.read_bytes())
        yield SimpleNamespace(proxy=proxy, options=options)
    finally:
        proxy.close()
        server.close()
        fsspec.register_implementation("gs", default, clobber=True)


@pytest.mark.parametrize("variant", GCS_VARIANTS)
def test_slides_in_a_gcs_bucket_match_the_local_files(corpus, gcs, variant):
    instances = len(_files(corpus / variant))
    gcs.proxy.clear()
    slides = dicomslide.find_slides(
        f"gs://{BUCKET}/{variant}/", storage_options=gcs.options, correct_color=False
    )
    assert len(gcs.proxy.requests()) <= instances + 2
    local = dicomslide.find_slides(corpus / variant, correct_color=False)
    assert len(slides) == len(local) == 1
    slide, reference = slides[0], local[0]
    assert slide.sop_instance_uids == reference.sop_instance_uids
    gcs.proxy.clear()
    for level in range(slide.num_levels):
        for offset, size in _regions(slide, level):
            got = slide.get_image_region(offset, level, size)
            assert got.std() > 0
            np.testing.assert_array_equal(
                got, reference.get_image_region(offset, level, size)
            )
    gets = gcs.proxy.requests("GET")
    assert gets and all(s.range and s.status == 206 for s in gets), [
        (s.path, s.range, s.status) for s in gets
    ]


def test_facade_opens_a_gcs_object(corpus, gcs, monkeypatch):
    from dicomslide.openslide import OpenSlide

    variant = GCS_VARIANTS[-1]
    named = _files(corpus / variant)[0].relative_to(corpus / variant)
    monkeypatch.setenv("DICOMSLIDE_STORAGE_OPTIONS", json.dumps(gcs.options))
    with (
        OpenSlide(f"gs://{BUCKET}/{variant}/{named}") as remote,
        OpenSlide(str(corpus / variant)) as local,
    ):
        assert remote.level_dimensions == local.level_dimensions
        width, height = remote.level_dimensions[0]
        for location, level, size in (
            ((0, 0), remote.level_count - 1, remote.level_dimensions[-1]),
            ((width - 300, height - 200), 0, (300, 200)),
        ):
            np.testing.assert_array_equal(
                np.asarray(remote.read_region(location, level, size)),
                np.asarray(local.read_region(location, level, size)),
            )
    with pytest.raises(ObjectNotFoundError, match=f"gs://{BUCKET}/nothing"):
        dicomslide.find_slides(f"gs://{BUCKET}/nothing/", storage_options=gcs.options)


def _v13_in_the_bucket(
    corpus, s3
) -> tuple[dicomslide.Slide, dicomslide.Slide, Dataset]:
    """V13 read from the bucket (with a cache of its own) and from the
    folder, and the metadata of its level 0. V13's offset tables place its
    frames: its reads walk no fragments."""
    variant = "V13-wsidicomizer-jpeg422"
    slide = _remote(s3, f"s3://{BUCKET}/{variant}/", cache=FrameCache(2**27))[0]
    reference = dicomslide.open_slide(corpus / variant, correct_color=False)
    return slide, reference, slide.get_volume_images()[0].metadata


def test_the_tiles_beside_a_read_come_in_its_requests(corpus, s3):
    slide, reference, meta = _v13_in_the_bucket(corpus, s3)
    rows, columns = int(meta.Rows), int(meta.Columns)
    assert int(meta.TotalPixelMatrixColumns) >= 6 * columns

    def read(row: int, column: int, across: int = 1) -> list:
        s3.proxy.clear()
        offset, size = (row * rows, column * columns), (rows, across * columns)
        got = slide.get_image_region(offset, 0, size)
        np.testing.assert_array_equal(got, reference.get_image_region(offset, 0, size))
        time.sleep(0.2)  # the frames beside are decoded in the background
        return s3.proxy.requests()

    first = read(2, 2, across=2)  # tiles (2, 2) and (2, 3)
    assert len(first) == 1 and first[0].status == 206
    assert read(2, 4) == [] and read(2, 1) == []  # came with them
    assert len(read(1, 2)) == 1  # the row above costs a request of its own
    assert len(read(2, 5)) == 1  # and so do tiles two columns away


def test_a_scan_is_read_ahead_in_few_requests(corpus, s3):
    slide, reference, meta = _v13_in_the_bucket(corpus, s3)
    rows, columns = int(meta.Rows), int(meta.Columns)
    across = int(meta.TotalPixelMatrixColumns) // columns
    s3.proxy.clear()
    reads = 0
    for row in range(3):  # a tiler's walk: one tile after the other
        for column in range(across):
            offset = (row * rows, column * columns)
            got = slide.get_image_region(offset, 0, (rows, columns))
            np.testing.assert_array_equal(
                got, reference.get_image_region(offset, 0, (rows, columns))
            )
            reads += 1
            time.sleep(0.01)
    seen = s3.proxy.requests()
    assert reads >= 24 and len(seen) <= reads // 4, len(seen)


def _without_offset_table(
    s3, folder: Path, fragments: int, side: int = 1024
) -> tuple[Path, str]:
    """A JPEG image whose frames no offset table places (an empty Basic
    Offset Table, no Extended one), stored in the bucket; its path and key.
    Its pixel data (noise: about 1 MB of 1024 x 1024) go far past the first
    bytes read."""
    image = synthetic.write_wsi_image(
        folder,
        total_rows=side,
        total_cols=side,
        tile_rows=128,
        tile_cols=128,
        transfer_syntax=synthetic.JPEG_BASELINE,
        offset_table="empty",
        fragments_per_frame=fragments,
        pattern="random",
        seed=fragments,
    )
    path = image.files[0]
    assert not _has_offset_table(path)
    key = f"no-table/{folder.name}/{path.name}"
    s3.client.upload_file(str(path), BUCKET, key)
    return path, key


def _fetched_once(seen: list) -> bool:
    """Whether the ranged GETs the proxy saw fetched no byte twice."""
    spans = sorted(
        tuple(int(v) for v in s.range.removeprefix("bytes=").split("-")) for s in seen
    )
    return all(end < begin for (_, end), (begin, _) in zip(spans, spans[1:]))


@pytest.mark.parametrize("fragments", [1, 2])
def test_a_scan_of_the_fragments_serves_the_read_that_caused_it(
    s3, tmp_path, fragments
):
    path, key = _without_offset_table(s3, tmp_path / f"f{fragments}", fragments)
    local, remote, frames = _sources(s3, path, key)
    wanted = [frames - 9, frames - 8, frames - 1, 3]  # at the end and the start
    s3.proxy.clear()
    assert remote.read_frames(wanted) == local.read_frames(wanted)
    seen = s3.proxy.requests()
    # the header, then the pixel data in growing reads: never a frame again
    assert all(s.method == "GET" and s.status == 206 for s in seen)
    assert _fetched_once(seen), [s.range for s in seen]
    assert sum(s.nbytes for s in seen) <= path.stat().st_size
    s3.proxy.clear()  # indexed: a later read costs its run's request
    assert remote.read_frames([frames // 2]) == local.read_frames([frames // 2])
    assert len(s3.proxy.requests()) == 1


@pytest.mark.parametrize("window", [None, 32])
def test_a_scan_holds_a_window_of_the_object_not_all_of_it(
    s3, tmp_path, monkeypatch, window
):
    path, key = _without_offset_table(s3, tmp_path / "window", 1, side=2048)
    size = path.stat().st_size
    if window is not None:  # as for an object 32x the window, scanned 64 reads a window
        monkeypatch.setattr(objectframes, "SCAN_WINDOW", size // window)
        monkeypatch.setattr(fileframes, "_SCAN_WINDOW", size // (2 * window))
    local, remote, frames = _sources(s3, path, key)
    wanted = [3, frames - 1]  # the scan passes frame 3 first
    remote.file.read(0, 1)  # the connection and the client's set-up: not counted
    s3.proxy.clear()
    tracemalloc.start()
    try:
        got = remote.read_frames(wanted)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got == local.read_frames(wanted)
    seen = s3.proxy.requests()
    fetched = sum(s.nbytes for s in seen)
    if window is None:  # the object is within the window: held whole, read once
        assert peak > size and _fetched_once(seen) and fetched <= size
    else:  # a window is held; frame 3, fallen out of it, is fetched again
        assert peak < size // 2, (peak, size)
        assert not _fetched_once(seen) and fetched < size + size // 16


def test_the_first_read_of_a_slide_without_offset_table_costs_the_scan(
    s3, corpus, tmp_path
):
    path, key = _without_offset_table(s3, tmp_path / "slide", 1)
    slide = _remote(s3, f"s3://{BUCKET}/{key}")[0]
    reference = dicomslide.open_slide(path.parent, correct_color=False)
    s3.proxy.clear()
    region = slide.get_image_region((700, 300), 0, (300, 500))
    seen = s3.proxy.requests()
    np.testing.assert_array_equal(
        region, reference.get_image_region((700, 300), 0, (300, 500))
    )
    assert _fetched_once(seen), [s.range for s in seen]
    assert sum(s.nbytes for s in seen) < path.stat().st_size


def test_a_truncated_object_without_offset_table_reads_like_the_file(s3, tmp_path):
    path, _ = _without_offset_table(s3, tmp_path / "whole", 1)
    data = path.read_bytes()
    cut = tmp_path / "cut" / path.name
    cut.parent.mkdir()
    cut.write_bytes(data[: len(data) * 3 // 5])
    key = f"cut/no-table/{path.name}"
    s3.client.put_object(Bucket=BUCKET, Key=key, Body=cut.read_bytes())
    outcomes = []
    for frame in (1, 2, 35, 36, 37, 38, 39, 40, 41, 63, 64):
        local, remote, frames = _sources(s3, cut, key)  # each read indexes
        assert frames == 64
        try:
            expected = local.read_frames([frame])
        except FrameRetrievalError as failure:
            with pytest.raises(FrameRetrievalError) as raised:
                remote.read_frames([frame])
            assert raised.value.frame_number == frame == failure.frame_number
            assert raised.value.sop_instance_uid == remote.sop_instance_uid
            outcomes.append(False)
        else:
            assert remote.read_frames([frame]) == expected
            outcomes.append(True)
    assert outcomes[0] and not outcomes[-1]
