"""Shared fixtures: the third-party corpus and synthetic slides."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _shared_data(variable: str, name: str) -> Path | None:
    """A folder of ``../shared/data`` (or the one an environment variable names)."""
    configured = os.environ.get(variable)
    path = Path(configured) if configured else ROOT.parent / "shared" / "data" / name
    return path if path.is_dir() else None


def _required(variable: str, name: str) -> Path:
    """The folder, or a skip (a failure where DICOMSLIDE_REQUIRE_CORPUS=1, as in
    CI) when it is absent."""
    path = _shared_data(variable, name)
    if path is None:
        reason = f"{name} not found: set {variable} to the {name} folder"
        if os.environ.get("DICOMSLIDE_REQUIRE_CORPUS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def corpus_path() -> Path | None:
    """Locate the third-party DICOM WSI corpus (DICOMSLIDE_CORPUS)."""
    return _shared_data("DICOMSLIDE_CORPUS", "wsi-corpus")


@pytest.fixture(scope="session")
def corpus() -> Path:
    """Folder of the third-party corpus our converters wrote."""
    return _required("DICOMSLIDE_CORPUS", "wsi-corpus")


@pytest.fixture(scope="session")
def wild() -> Path:
    """Folder of the DICOM files other projects wrote (DICOMSLIDE_WILD)."""
    return _required("DICOMSLIDE_WILD", "wild-dicom")


@pytest.fixture(scope="session")
def orthanc_available() -> None:
    """Skip (or fail when DICOMSLIDE_REQUIRE_ORTHANC=1) without Orthanc."""
    from tests.orthanc import DICOMWEB_PLUGIN, orthanc_binary

    if orthanc_binary() is None or not DICOMWEB_PLUGIN.exists():
        reason = (
            "Orthanc with its DICOMweb plugin is not installed "
            "(Debian packages orthanc, orthanc-dicomweb)"
        )
        if os.environ.get("DICOMSLIDE_REQUIRE_ORTHANC") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def orthanc(orthanc_available, tmp_path_factory):
    """A running Orthanc server, empty at the start of the session."""
    from tests.orthanc import OrthancServer

    server = OrthancServer(tmp_path_factory.mktemp("orthanc"))
    server.start()
    yield server
    server.stop()
