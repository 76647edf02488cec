"""The facade's exception types, the same whether or not a C library loads.

:mod:`dicomslide.openslide.lowlevel` raises them, and so does the DICOM
backend, so that one ``except`` catches what either backend raises; they are
defined here so that naming them does not load the OpenSlide C library.
"""

from __future__ import annotations

__all__ = [
    "OpenSlideError",
    "OpenSlideUnsupportedFormatError",
    "OpenSlideVersionError",
]


class OpenSlideError(Exception):
    """An error produced by the OpenSlide library."""


class OpenSlideVersionError(OpenSlideError):
    """The loaded OpenSlide library is too old for the requested functionality.

    Parameters
    ----------
    minimum_version: str
        Oldest OpenSlide version that has the functionality

    Attributes
    ----------
    minimum_version: str
        Oldest OpenSlide version that has the functionality

    """

    def __init__(self, minimum_version: str) -> None:
        super().__init__(f"OpenSlide >= {minimum_version} required")
        self.minimum_version = minimum_version


class OpenSlideUnsupportedFormatError(OpenSlideError):
    """OpenSlide does not support the requested file."""
