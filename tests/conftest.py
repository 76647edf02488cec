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
