"""The embedded client of a folder, held against dicomweb-client's DICOMfileClient.

LocalFolderClient is dicomslide's own index of a folder. It must be a
``DICOMClient`` from the moment it exists, answer searches and retrievals as
``DICOMfileClient`` answers them on the same files, write nothing into the
folder, serve many threads, and travel to other processes as its folder.
"""

from __future__ import annotations

import base64
import pickle
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
import requests
from dicomweb_client import DICOMClient, DICOMfileClient
from pydicom.encaps import generate_frames

import dicomslide
from dicomslide import folder as folder_module
from dicomslide.client import call, fetch_bulk_icc_profile, portable
from dicomslide.discovery import load_metadata
from dicomslide.errors import ServerError
from dicomslide.files import read_header
from dicomslide.folder import LocalFolderClient
from dicomslide.testing import synthetic
from tests.subprocesses import run_python

VL_WSI = "1.2.840.10008.5.1.4.1.1.77.1.6"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
STUDY, SERIES, INSTANCE = "0020000D", "0020000E", "00080018"
CORPUS_VARIANTS = [
    "V13-wsidicomizer-jpeg422",
    "V04-orthanc-raw-icc",
    "V10-highdicom-seg",
]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    """Two slides of two studies, an image with a large ICC profile, and a
    file that is not DICOM, in subfolders."""
    root = tmp_path_factory.mktemp("mixed")
    synthetic.write_slide(root / "a", "rgb_full")
    synthetic.write_slide(root / "b" / "deeper", "sparse", seed=3)
    profile = np.random.default_rng(2).integers(0, 256, 5000, np.uint8).tobytes()
    synthetic.write_wsi_image(
        root / "c",
        total_rows=150,
        total_cols=230,
        tile_rows=64,
        tile_cols=96,
        icc_profile=profile,
    )
    (root / "notes.txt").write_text("not DICOM")
    return root


@pytest.fixture(params=["mixed", *CORPUS_VARIANTS])
def folder(request, tmp_path_factory) -> Path:
    if request.param == "mixed":
        return request.getfixturevalue("mixed")
    return request.getfixturevalue("corpus") / request.param


def _file_client(folder: Path) -> DICOMfileClient:
    return DICOMfileClient(url=folder.as_uri(), in_memory=True, readonly=True)


def _key(result: dict[str, Any]) -> tuple[str, ...]:
    return tuple(
        result[tag]["Value"][0] for tag in (STUDY, SERIES, INSTANCE) if tag in result
    )


def _assert_same_results(theirs: list[dict], ours: list[dict]) -> None:
    """The same entities; every attribute the file client gives a value, ours
    gives the same value."""
    assert len(ours) == len(theirs)
    by_key = {_key(result): result for result in ours}
    assert by_key.keys() == {_key(result) for result in theirs}
    for result in theirs:
        mine = by_key[_key(result)]
        for tag, element in result.items():
            if "Value" in element:
                assert mine.get(tag) == element, tag


def _with_inline_bulk_data(client: LocalFolderClient, metadata: Any) -> Any:
    """DICOM JSON with every bulk data URI replaced by the bytes it names."""
    if isinstance(metadata, list):
        return [_with_inline_bulk_data(client, item) for item in metadata]
    if not isinstance(metadata, dict):
        return metadata
    if "BulkDataURI" in metadata:
        data = client.retrieve_bulkdata(metadata["BulkDataURI"])[0]
        return {"vr": metadata["vr"], "InlineBinary": base64.b64encode(data).decode()}
    return {k: _with_inline_bulk_data(client, v) for k, v in metadata.items()}


def _count_header_reads(monkeypatch) -> list[Path]:
    reads: list[Path] = []

    def counted(path: Path):
        reads.append(path)
        return read_header(path)

    monkeypatch.setattr(folder_module, "read_header", counted)
    return reads


def test_a_dicom_client_from_the_start(mixed, monkeypatch):
    reads = _count_header_reads(monkeypatch)
    client = LocalFolderClient(mixed)
    assert isinstance(client, DICOMClient)
    assert reads == []  # nothing read yet
    assert client.base_url == mixed.resolve().as_uri()
    assert client.scheme == "file" and client.protocol is None
    assert len(client.search_for_studies()) == 3
    assert len(reads) == len([p for p in mixed.rglob("*") if p.is_file()])


def test_searches_equal_the_file_clients(folder):
    theirs, ours = _file_client(folder), LocalFolderClient(folder)
    _assert_same_results(theirs.search_for_studies(), ours.search_for_studies())
    _assert_same_results(theirs.search_for_series(), ours.search_for_series())
    _assert_same_results(theirs.search_for_instances(), ours.search_for_instances())
    for series in ours.search_for_series():
        study, uid = series[STUDY]["Value"][0], series[SERIES]["Value"][0]
        _assert_same_results(
            theirs.search_for_series(study), ours.search_for_series(study)
        )
        _assert_same_results(
            theirs.search_for_instances(study, uid),
            ours.search_for_instances(study, uid),
        )
        patient = series.get("00100020", {}).get("Value", [""])[0]
        modality = series["00080060"]["Value"][0]
        sop_class = ours.search_for_instances(study, uid)[0]["00080016"]["Value"][0]
        for filters in (
            {"StudyInstanceUID": study},
            {"SeriesInstanceUID": uid, "Modality": modality},
            {"PatientID": patient},
            {"00080016": sop_class},
        ):
            for method in ("search_for_series", "search_for_instances"):
                expected = getattr(theirs, method)(search_filters=filters)
                found = getattr(ours, method)(search_filters=filters)
                _assert_same_results(expected, found)
                assert found  # every filter matches something here


def test_search_matching_limit_and_offset(mixed):
    client = LocalFolderClient(mixed)
    everything = client.search_for_instances()
    assert client.search_for_instances(limit=2, offset=1) == everything[1:3]
    assert client.search_for_instances(offset=len(everything)) == []
    names = {r["00100010"]["Value"][0]["Alphabetic"] for r in everything}
    name = names.pop()
    assert client.search_for_studies(search_filters={"PatientName": name[:3] + "*"})
    assert not client.search_for_studies(search_filters={"PatientName": "zz*"})
    assert client.search_for_studies(
        fuzzymatching=True, search_filters={"PatientName": name[:3].lower()}
    )
    uids = [r[INSTANCE]["Value"][0] for r in everything[:2]]
    listed = client.search_for_instances(
        search_filters={"SOPInstanceUID": "\\".join(uids)}
    )
    assert [r[INSTANCE]["Value"][0] for r in listed] == uids
    dated = client.search_for_studies(search_filters={"StudyDate": "19000101-"})
    assert len(dated) == len(client.search_for_studies())
    assert not client.search_for_studies(search_filters={"StudyDate": "-19000101"})
    # attributes asked for, and those matched on, are in the results
    found = client.search_for_series(fields=["ContainerIdentifier"])
    assert all("00400512" in result for result in found)
    with pytest.raises(ValueError, match="NoSuchKeyword"):
        client.search_for_series(search_filters={"NoSuchKeyword": "x"})
    with pytest.raises(ValueError):
        client.search_for_series(limit=-1)


def test_metadata_equals_the_file_clients(folder):
    theirs, ours = _file_client(folder), LocalFolderClient(folder)
    bulk_items = 0
    for series in ours.search_for_series():
        study, uid = series[STUDY]["Value"][0], series[SERIES]["Value"][0]
        mine = ours.retrieve_series_metadata(study, uid)
        bulk_items += str(mine).count("BulkDataURI")
        expected = {_key(m): m for m in theirs.retrieve_series_metadata(study, uid)}
        assert len(mine) == len(expected)
        for metadata in mine:
            key = _key(metadata)
            syntax = metadata.pop("00083002")["Value"][0]
            path = ours.find_header(key[-1]).filename
            assert syntax == pydicom.dcmread(path).file_meta.TransferSyntaxUID
            assert _with_inline_bulk_data(ours, metadata) == expected[key]
            assert ours.retrieve_instance_metadata(*key) == {
                **metadata,
                "00083002": {"vr": "UI", "Value": [syntax]},
            }
        assert len(ours.retrieve_study_metadata(study)) >= len(mine)
    if "mixed" in folder.name:
        assert bulk_items  # an ICC profile larger than 1 KiB


def _frames_read_by_pydicom(path: str, numbers: list[int]) -> list[bytes]:
    dataset = pydicom.dcmread(path)
    count = int(dataset.get("NumberOfFrames", 1) or 1)
    if dataset.file_meta.TransferSyntaxUID.is_compressed:
        frames = list(generate_frames(dataset.PixelData, number_of_frames=count))
    else:
        size = len(dataset.PixelData) // count
        frames = [dataset.PixelData[i * size : (i + 1) * size] for i in range(count)]
    return [frames[n - 1] for n in numbers]


def test_frames_and_instances_equal_the_file_clients(folder):
    theirs, ours = _file_client(folder), LocalFolderClient(folder)
    for instance in ours.search_for_instances():
        key = _key(instance)
        frames = instance["00280008"]["Value"][0]
        numbers = sorted({1, frames, (frames + 1) // 2})
        found = ours.retrieve_instance_frames(*key, numbers)
        path = ours.find_header(key[-1]).filename
        assert found == _frames_read_by_pydicom(path, numbers)
        try:  # it cannot read frames of every syntax (implicit VR, for one)
            expected = theirs.retrieve_instance_frames(*key, numbers)
        except requests.HTTPError:
            expected = found
        assert found == expected
        whole = ours.retrieve_instance(*key)
        assert whole == pydicom.dcmread(path)
        assert whole.PixelData == pydicom.dcmread(path).PixelData
    series = ours.search_for_series()[0]
    key = (series[STUDY]["Value"][0], series[SERIES]["Value"][0])
    assert [d.SOPInstanceUID for d in ours.retrieve_series(*key)] == [
        r[INSTANCE]["Value"][0] for r in ours.search_for_instances(*key)
    ]


def test_media_types_and_unknown_resources(mixed):
    client = LocalFolderClient(mixed / "a")
    instance = client.search_for_instances(search_filters={"NumberOfFrames": 12})[0]
    key = _key(instance)
    assert instance["00083002"]["Value"] == [JPEG_BASELINE]
    stored = client.retrieve_instance_frames(*key, [2])
    assert stored[0][:2] == b"\xff\xd8"  # a JPEG stream, as stored
    for media_types in [
        ("image/jpeg",),
        (("application/octet-stream", "*"),),
        (("image/jpeg", JPEG_BASELINE),),
        ("*/*",),
    ]:
        assert client.retrieve_instance_frames(*key, [2], media_types) == stored
    for media_types in [("application/octet-stream",), ("image/jp2",)]:
        with pytest.raises(requests.HTTPError) as refused:
            client.retrieve_instance_frames(*key, [2], media_types)
        assert refused.value.response.status_code == 406
    with pytest.raises(requests.HTTPError) as refused:
        client.retrieve_instance(*key, (("application/dicom", "1.2.840.10008.1.2.1"),))
    assert refused.value.response.status_code == 406
    with pytest.raises(requests.HTTPError) as missing:
        client.retrieve_instance_metadata(key[0], key[1], "1.2.3.4")
    assert missing.value.response.status_code == 404
    with pytest.raises(ServerError) as failed:
        call(client, "retrieve_series_metadata", study_instance_uid=key[0],
             series_instance_uid="1.2.3.4")  # fmt: skip
    assert failed.value.status == 404
    for url in (
        (mixed / "a" / "level0.dcm").as_uri(),
        f"{client.base_url}/studies/{key[0]}/series/{key[1]}/instances/{key[2]}"
        "/bulkdata/7FE00010",  # the pixel data are not served as bulk data
    ):
        with pytest.raises(requests.HTTPError) as missing:
            client.retrieve_bulkdata(url)
        assert missing.value.response.status_code == 404
    with pytest.raises(NotImplementedError):
        client.retrieve_instance_rendered(*key)
    with pytest.raises(PermissionError):
        client.delete_instance(*key)


def test_icc_profiles_given_as_bulk_data_are_fetched(mixed):
    client = LocalFolderClient(mixed / "c")
    instance = client.search_for_instances()[0]
    metadata = client.retrieve_instance_metadata(*_key(instance))
    profile_item = metadata["00480105"]["Value"][0]["00282000"]
    assert "BulkDataURI" in profile_item
    dataset = load_metadata(client, metadata)
    expected = pydicom.dcmread(client.find_header(_key(instance)[-1]).filename)
    assert fetch_bulk_icc_profile(client, dataset) == (
        expected.OpticalPathSequence[0].ICCProfile
    )
    part = client.retrieve_bulkdata(profile_item["BulkDataURI"], byte_range=(10, 19))
    assert part == [expected.OpticalPathSequence[0].ICCProfile[10:20]]


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in [folder, *folder.rglob("*")]
    }


def test_nothing_is_written_into_the_folder(mixed):
    before = _snapshot(mixed)
    client = LocalFolderClient(mixed)
    for instance in client.search_for_instances():
        key = _key(instance)
        client.retrieve_instance_metadata(*key)
        client.retrieve_instance_frames(*key, [1])
        client.retrieve_instance(*key)
    client.search_for_studies()
    slides = dicomslide.find_slides(client, correct_color=False)
    slides[0].get_image_region((0, 0), 0, (100, 100))
    dicomslide.find_slides(mixed)[0].get_image_region((0, 0), 0, (100, 100))
    assert _snapshot(mixed) == before


def test_find_slides_reads_each_header_once_and_asks_nothing(mixed, monkeypatch):
    reads = _count_header_reads(monkeypatch)
    asked: list[str] = []
    for name in dir(LocalFolderClient):
        if name.startswith(("search_", "retrieve_", "iter_")):
            method = getattr(LocalFolderClient, name)

            def counted(self, *args, _name=name, _method=method, **kwargs):
                asked.append(_name)
                return _method(self, *args, **kwargs)

            monkeypatch.setattr(LocalFolderClient, name, counted)
    slides = dicomslide.find_slides(mixed, correct_color=False)
    assert len(slides) == 3
    for slide in slides:
        slide.get_image_region((0, 0), 0, (64, 64))
    assert sorted(reads) == sorted(p for p in mixed.rglob("*") if p.is_file())
    assert asked == []


def test_threads_read_through_the_embedded_client(tmp_path):
    truth = synthetic.write_slide(tmp_path, "concatenation")
    client = LocalFolderClient(tmp_path)
    slide = dicomslide.find_slides(client, correct_color=False)[0]
    instances = client.search_for_instances(search_filters={"Rows": 64})
    serial = {
        _key(i): client.retrieve_instance_frames(*_key(i), [1]) for i in instances
    }
    barrier = threading.Barrier(8)
    rng = np.random.default_rng(3)
    boxes = [(int(rng.integers(0, 250)), int(rng.integers(0, 420))) for _ in range(32)]

    def work(index: int) -> None:
        barrier.wait()
        for key, frames in serial.items():
            assert client.retrieve_instance_frames(*key, [1]) == frames
        for row, col in boxes[index::8]:
            np.testing.assert_array_equal(
                slide.get_image_region((row, col), 0, (50, 50)),
                truth.levels[0].pixels[0, 0, row : row + 50, col : col + 50],
            )

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(8)))


def test_pickled_as_its_folder(mixed):
    client = LocalFolderClient(mixed)
    expected = client.search_for_instances()
    data = pickle.dumps(client)
    assert len(data) < 1000  # the headers do not travel
    copy = pickle.loads(data)
    assert type(copy) is LocalFolderClient and copy.folder == client.folder
    assert copy.search_for_instances() == expected


# -- a user's own DICOMfileClient ----------------------------------------------


class _CountingFileClient(DICOMfileClient):
    """A user's DICOMfileClient that counts the calls dicomslide makes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[str] = []

    def search_for_series(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append("search_for_series")
        return super().search_for_series(*args, **kwargs)

    def retrieve_series_metadata(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append("retrieve_series_metadata")
        return super().retrieve_series_metadata(*args, **kwargs)


def _made_in_another_thread(factory: Any) -> Any:
    made: list[Any] = []
    thread = threading.Thread(target=lambda: made.append(factory()))
    thread.start()
    thread.join()
    return made[0]


@pytest.mark.parametrize("in_memory", [True, False])
def test_a_users_file_client_made_in_another_thread(tmp_path, in_memory):
    truth = synthetic.write_slide(tmp_path / "data", "no_organization")
    (tmp_path / "db").mkdir()
    client = _made_in_another_thread(
        lambda: _CountingFileClient(
            url=(tmp_path / "data").as_uri(),
            in_memory=in_memory,
            db_dir=tmp_path / "db",
            readonly=True,
        )
    )
    slides = dicomslide.find_slides(client, correct_color=False)
    assert len(slides) == 1 and slides[0].client is client
    # tried once: its connection refused this thread, and the folder's own
    # index answered there from then on
    assert client.calls == ["search_for_series"]
    region = slides[0].get_image_region((0, 0), 0, (200, 300))
    np.testing.assert_array_equal(region, truth.levels[0].pixels[0, 0, :200, :300])


def test_a_users_file_client_is_asked_in_its_own_thread(tmp_path):
    truth = synthetic.write_slide(tmp_path, "sparse")
    client = _CountingFileClient(url=tmp_path.as_uri(), in_memory=True)
    slides = dicomslide.find_slides(client, correct_color=False)
    assert client.calls == ["search_for_series", "retrieve_series_metadata"]
    expected = client.search_for_instances()

    def read(offset: int) -> np.ndarray:
        # here or, where the client refuses the thread, from the folder index
        _assert_same_results(expected, call(client, "search_for_instances"))
        return slides[0].get_image_region((offset, offset), 0, (40, 60))

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(read, range(0, 160, 10)))
    for offset, result in zip(range(0, 160, 10), results, strict=True):
        np.testing.assert_array_equal(
            result,
            truth.levels[0].pixels[0, 0, offset : offset + 40, offset : offset + 60],
        )
    # the user's client still works, and its in-memory index is whole
    assert client.search_for_instances() == expected
    copy = pickle.loads(pickle.dumps(portable(client)))
    assert isinstance(copy, LocalFolderClient) and copy.folder == tmp_path.resolve()
    assert client.search_for_instances() == expected


def test_a_folder_reads_without_loading_the_modules_of_other_sources(tmp_path):
    """A folder's first pixel needs neither dicomweb-client (nor its SQLite)
    nor dicomslide's HTTP, DICOMweb and object-storage modules: a fresh interpreter
    opens a folder, reads a region, and has imported none of them; the
    DICOMweb settings still resolve as ``dicomslide.web`` afterwards."""
    truth = synthetic.write_slide(tmp_path / "data", "no_organization")
    np.save(tmp_path / "expected.npy", truth.levels[0].pixels[0, 0, 10:74, 20:100])
    result = run_python(
        f"""
        import sys
        import numpy as np
        import dicomslide

        folder = {str(tmp_path / "data")!r}
        slide = dicomslide.find_slides(folder, correct_color=False)[0]
        region = slide.get_image_region((10, 20), 0, (64, 80))
        expected = np.load({str(tmp_path / "expected.npy")!r})
        assert np.array_equal(region, expected), "pixels differ"
        unwanted = ["dicomweb_client", "sqlite3", "dicomslide.web",
                    "dicomslide.transport", "dicomslide.objects",
                    "dicomslide.objectfolder", "dicomslide.objectframes"]
        print(sorted(name for name in unwanted if name in sys.modules))
        print(dicomslide.web.settings.timeout is not None)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["[]", "True"]
