"""Shared fixtures: the third-party corpus and synthetic slides."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def corpus_path() -> Path | None:
    """Locate the third-party DICOM WSI corpus (DICOMSLIDE_CORPUS)."""
    configured = os.environ.get("DICOMSLIDE_CORPUS")
    path = (
        Path(configured)
        if configured
        else ROOT.parent / "shared" / "data" / "wsi-corpus"
    )
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def corpus() -> Path:
    """Folder of the third-party corpus; skips (or fails in CI) when absent."""
    path = corpus_path()
    if path is None:
        reason = (
            "third-party WSI corpus not found: set DICOMSLIDE_CORPUS to the "
            "wsi-corpus folder"
        )
        if os.environ.get("DICOMSLIDE_REQUIRE_CORPUS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def wild_path() -> Path | None:
    """Locate the DICOM files other projects wrote (DICOMSLIDE_WILD)."""
    configured = os.environ.get("DICOMSLIDE_WILD")
    path = (
        Path(configured)
        if configured
        else ROOT.parent / "shared" / "data" / "wild-dicom"
    )
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def wild() -> Path:
    """Folder of the wild files; skips (or fails where DICOMSLIDE_REQUIRE_CORPUS=1,
    as in CI) when absent."""
    path = wild_path()
    if path is None:
        reason = (
            "wild DICOM files not found: set DICOMSLIDE_WILD to the wild-dicom folder"
        )
        if os.environ.get("DICOMSLIDE_REQUIRE_CORPUS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def orthanc_available() -> None:
    """Skip (or fail when DICOMSLIDE_REQUIRE_ORTHANC=1) without Orthanc."""
    from orthanc import DICOMWEB_PLUGIN, orthanc_binary

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
    from orthanc import OrthancServer

    server = OrthancServer(tmp_path_factory.mktemp("orthanc"))
    server.start()
    yield server
    server.stop()
