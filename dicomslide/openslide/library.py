"""The OpenSlide C library, loaded when first needed, and the facade's exceptions.

The facade imports without the C library: DICOM slides and ordinary images need
none, so the library is not even loaded until a slide needs it. This module is
the one place that tries :mod:`dicomslide.openslide.lowlevel` and says what came
of it:

* :func:`load` gives that module, or None when no library loads (it is tried
  once, on first use); :data:`lowlevel` is the same, as an attribute;
* :data:`library_version` is the library's version, or None;
* :class:`OpenSlideError`, :class:`OpenSlideUnsupportedFormatError` and
  :class:`OpenSlideVersionError` are the classes lowlevel raises (defined in
  :mod:`dicomslide.openslide.errors`), so that one ``except`` catches what
  either backend raises, with or without a library.
"""

from __future__ import annotations

import importlib
import logging
from types import ModuleType
from typing import TYPE_CHECKING

from dicomslide.openslide.errors import (
    OpenSlideError,
    OpenSlideUnsupportedFormatError,
    OpenSlideVersionError,
)

__all__ = [
    "OpenSlideError",
    "OpenSlideUnsupportedFormatError",
    "OpenSlideVersionError",
    "library_version",
    "load",
    "lowlevel",
]

_logger = logging.getLogger(__name__)

if TYPE_CHECKING:  # at run time, module attributes resolved on first access
    from dicomslide.openslide import lowlevel

    library_version: str | None

_loaded: list[ModuleType | None] = []  # what loading gave, once tried


def load() -> ModuleType | None:
    """The binding to the OpenSlide C library, loading it on first use.

    Returns
    -------
    Union[types.ModuleType, None]
        :mod:`dicomslide.openslide.lowlevel`, or None when no OpenSlide
        library loads (then it is not tried again)

    """
    if not _loaded:
        try:
            # (by name: the package's own __getattr__ answers "lowlevel" by
            # calling this function)
            lowlevel = importlib.import_module("dicomslide.openslide.lowlevel")
        except ModuleNotFoundError as error:
            # Raised by lowlevel when no OpenSlide library loads (name None),
            # or by the import system when the module is blocked.
            if error.name not in (None, "dicomslide.openslide.lowlevel"):
                raise
            _logger.debug("no OpenSlide library: %s", error)
            _loaded[:] = [None]
        else:
            _loaded[:] = [lowlevel]
    return _loaded[0]


def version() -> str | None:
    """Version of the OpenSlide C library in use, or None if none loads.

    Returns
    -------
    Union[str, None]
        Version (loads the library on first use)

    """
    lowlevel = load()
    return None if lowlevel is None else str(lowlevel.get_version())


def __getattr__(name: str) -> object:
    # lowlevel and library_version, resolved (and the library loaded) on first
    # access rather than at import
    if name == "lowlevel":
        return load()
    if name == "library_version":
        return version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
