"""A drop-in replacement for openslide-python that also reads DICOM slides.

``import dicomslide.openslide as openslide`` runs code written for
openslide-python 1.4 unchanged. :class:`OpenSlide` opens

* DICOM whole-slide images: a :class:`dicomslide.Slide`, a folder of DICOM
  files, or one DICOM file (a file with ``DICM`` at byte 128), read in pure
  Python by :mod:`dicomslide.openslide.dicom`;
* every other file with the OpenSlide C library (SVS, NDPI, MRXS, TIFF, ...)
  through :mod:`dicomslide.openslide.native`.

Both kinds of slide are instances of the one class :class:`OpenSlide`.
:func:`open_slide` falls back to :class:`ImageSlide` for files that neither
reads, as openslide-python does. Unlike openslide-python, this package imports
without the OpenSlide library; then :data:`__library_version__` is None and
only DICOM slides and images can be opened.

This module is the face only: it names what the submodules define (the slide
classes, the cache, the exceptions and the property names) and
:func:`open_slide`. Deep Zoom is :mod:`dicomslide.openslide.deepzoom`, imported
on its own as in openslide-python.
"""

from __future__ import annotations

from dicomslide.enum import ImageFlavors as ImageFlavors  # a dicomslide 0.7 name
from dicomslide.openslide import library as _library
from dicomslide.openslide.abstract import AbstractSlide
from dicomslide.openslide.abstract import Filename as Filename
from dicomslide.openslide.cache import OpenSlideCache
from dicomslide.openslide.image_slide import ImageSlide
from dicomslide.openslide.library import (
    OpenSlideError,
    OpenSlideUnsupportedFormatError,
    OpenSlideVersionError,
)
from dicomslide.openslide.properties import DICOM_VENDOR as DICOM_VENDOR
from dicomslide.openslide.properties import (
    OPENSLIDE_BACKGROUND_COLOR,
    OPENSLIDE_BOUNDS_HEIGHT,
    OPENSLIDE_BOUNDS_WIDTH,
    OPENSLIDE_BOUNDS_X,
    OPENSLIDE_BOUNDS_Y,
    OPENSLIDE_COMMENT,
    OPENSLIDE_MPP_X,
    OPENSLIDE_MPP_Y,
    OPENSLIDE_OBJECTIVE_POWER,
    OPENSLIDE_QUICKHASH1,
    OPENSLIDE_VENDOR,
    PROPERTY_NAME_BACKGROUND_COLOR,
    PROPERTY_NAME_BARCODE,
    PROPERTY_NAME_BOUNDS_HEIGHT,
    PROPERTY_NAME_BOUNDS_WIDTH,
    PROPERTY_NAME_BOUNDS_X,
    PROPERTY_NAME_BOUNDS_Y,
    PROPERTY_NAME_COMMENT,
    PROPERTY_NAME_MPP_X,
    PROPERTY_NAME_MPP_Y,
    PROPERTY_NAME_OBJECTIVE_POWER,
    PROPERTY_NAME_QUICKHASH1,
    PROPERTY_NAME_VENDOR,
)
from dicomslide.openslide.slide import OpenSlide
from dicomslide.slide import Slide as Slide  # a dicomslide 0.7 name
from dicomslide.version import __version__ as __version__

__all__ = [
    "PROPERTY_NAME_BACKGROUND_COLOR",
    "PROPERTY_NAME_BARCODE",
    "PROPERTY_NAME_BOUNDS_HEIGHT",
    "PROPERTY_NAME_BOUNDS_WIDTH",
    "PROPERTY_NAME_BOUNDS_X",
    "PROPERTY_NAME_BOUNDS_Y",
    "PROPERTY_NAME_COMMENT",
    "PROPERTY_NAME_MPP_X",
    "PROPERTY_NAME_MPP_Y",
    "PROPERTY_NAME_OBJECTIVE_POWER",
    "PROPERTY_NAME_QUICKHASH1",
    "PROPERTY_NAME_VENDOR",
    "OPENSLIDE_BACKGROUND_COLOR",
    "OPENSLIDE_BOUNDS_HEIGHT",
    "OPENSLIDE_BOUNDS_WIDTH",
    "OPENSLIDE_BOUNDS_X",
    "OPENSLIDE_BOUNDS_Y",
    "OPENSLIDE_COMMENT",
    "OPENSLIDE_MPP_X",
    "OPENSLIDE_MPP_Y",
    "OPENSLIDE_OBJECTIVE_POWER",
    "OPENSLIDE_QUICKHASH1",
    "OPENSLIDE_VENDOR",
    "AbstractSlide",
    "ImageSlide",
    "OpenSlide",
    "OpenSlideCache",
    "OpenSlideError",
    "OpenSlideUnsupportedFormatError",
    "OpenSlideVersionError",
    "__library_version__",
    "__version__",
    "open_slide",
]


def __getattr__(name: str) -> object:
    # __library_version__ (the version of the OpenSlide C library in use, or
    # None if none loads) and lowlevel (dicomslide.openslide.lowlevel, or
    # None) load the library on first access: importing the facade does not.
    if name == "__library_version__":
        return _library.version()
    if name == "lowlevel":
        return _library.load()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_slide(filename: Filename) -> OpenSlide | ImageSlide:
    """Open a whole-slide image, or an ordinary image.

    DICOM files and folders and the files the OpenSlide library reads give an
    :class:`OpenSlide`; other files an :class:`ImageSlide`.

    Parameters
    ----------
    filename: Union[str, bytes, os.PathLike]
        Path of the file (or of a folder of DICOM files)

    Returns
    -------
    Union[dicomslide.openslide.OpenSlide, dicomslide.openslide.ImageSlide]
        The slide

    """
    try:
        return OpenSlide(filename)
    except OpenSlideUnsupportedFormatError:
        return ImageSlide(filename)
