"""Which backend reads a slide: DICOM sources in Python, the rest by the C library.

A :class:`dicomslide.Slide`, a folder, or a DICOM file goes to the DICOM backend
(:mod:`dicomslide.openslide.dicom`); a DICOM file it declines goes on to the
OpenSlide library (OpenSlide 4 reads DICOM too). Every other file goes to the
library (:mod:`dicomslide.openslide.native`).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from dicomslide.openslide._backend import SlideBackend
from dicomslide.openslide.dicom import DicomBackend
from dicomslide.openslide.dicom.sources import (
    folder_holds_part10_file,
    is_dicom_source,
    is_dicomweb_url,
    is_part10_file,
)
from dicomslide.openslide.library import OpenSlideUnsupportedFormatError
from dicomslide.openslide.properties import DICOM_VENDOR
from dicomslide.slide import Slide
from dicomslide.urls import is_object_url

if TYPE_CHECKING:
    from dicomslide.openslide.native import NativeBackend

__all__ = ["detect_vendor", "open_backend"]

_logger = logging.getLogger(__name__)


def _native() -> type[NativeBackend]:
    # The backend of the C library, imported (and the library loaded) only
    # for a source that the DICOM backend does not read
    from dicomslide.openslide.native import NativeBackend

    return NativeBackend


def open_backend(source: Any) -> SlideBackend:
    """Open a slide with the backend that reads it.

    Parameters
    ----------
    source: Union[str, bytes, os.PathLike, dicomslide.Slide]
        Path of a slide file, of a DICOM file or of a folder of DICOM files, or
        a DICOM slide

    Returns
    -------
    dicomslide.openslide._backend.SlideBackend
        The open slide

    Raises
    ------
    OpenSlideUnsupportedFormatError
        When no backend reads `source`
    OpenSlideError
        When a backend recognises `source` but cannot open it

    """
    if not is_dicom_source(source):
        return _native().open(source)
    try:
        return DicomBackend.open(source)
    except OpenSlideUnsupportedFormatError as error:
        if (
            isinstance(source, Slide)
            or is_dicomweb_url(source)
            or is_object_url(source)
            or os.path.isdir(source)
        ):
            raise
        _logger.debug("DICOM backend declined %r (%s): trying OpenSlide", source, error)
        try:
            return _native().open(source)
        except OpenSlideUnsupportedFormatError:
            raise error from None


def detect_vendor(filename: Any) -> str | None:
    """The format vendor of a file or folder.

    Parameters
    ----------
    filename: Union[str, bytes, os.PathLike]
        Path of a file or a folder

    Returns
    -------
    Union[str, None]
        ``"dicom"`` for a DICOM file or a folder holding DICOM files, else the
        vendor the OpenSlide library detects; None if the file is not
        recognised

    """
    if is_dicomweb_url(filename) or is_object_url(filename):
        return DICOM_VENDOR
    if isinstance(filename, str | bytes | os.PathLike):
        if os.path.isdir(filename):
            return DICOM_VENDOR if folder_holds_part10_file(filename) else None
        if is_part10_file(filename):
            return DICOM_VENDOR
    return _native().detect_vendor(filename)
