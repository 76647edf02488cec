"""The OpenSlide C library, when one loads, and the facade's exception types.

The facade imports without the C library: DICOM slides and ordinary images need
none. This module is the one place that tries :mod:`dicomslide.openslide.lowlevel`
and says what came of it:

* :data:`lowlevel` is that module, or None when no library loads;
* :data:`library_version` is the library's version, or None;
* :class:`OpenSlideError`, :class:`OpenSlideUnsupportedFormatError` and
  :class:`OpenSlideVersionError` are lowlevel's classes when it loads (so that
  one ``except`` catches what either backend raises), and classes of the same
  names and hierarchy otherwise.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

__all__ = [
    "OpenSlideError",
    "OpenSlideUnsupportedFormatError",
    "OpenSlideVersionError",
    "library_version",
    "lowlevel",
]

_logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from dicomslide.openslide import lowlevel
    from dicomslide.openslide.lowlevel import (
        OpenSlideError,
        OpenSlideUnsupportedFormatError,
        OpenSlideVersionError,
    )
else:
    try:
        from dicomslide.openslide import lowlevel
    except ModuleNotFoundError as _error:
        # Raised by lowlevel when no OpenSlide library loads (name None), or by
        # the import system when the module is blocked.
        if _error.name not in (None, "dicomslide.openslide.lowlevel"):
            raise
        _logger.debug("no OpenSlide library: %s", _error)
        lowlevel = None

        class OpenSlideError(Exception):
            """An error produced by the OpenSlide library."""

        class OpenSlideVersionError(OpenSlideError):
            """The OpenSlide library is too old (or missing)."""

            def __init__(self, minimum_version: str) -> None:
                super().__init__(f"OpenSlide >= {minimum_version} required")
                self.minimum_version = minimum_version

        class OpenSlideUnsupportedFormatError(OpenSlideError):
            """OpenSlide does not support the requested file."""

        del _error
    else:
        from dicomslide.openslide.lowlevel import (
            OpenSlideError,
            OpenSlideUnsupportedFormatError,
            OpenSlideVersionError,
        )

#: Version of the OpenSlide C library in use, or None if none loads.
library_version: str | None = None if lowlevel is None else lowlevel.get_version()
