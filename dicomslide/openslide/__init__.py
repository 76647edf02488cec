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
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from abc import ABCMeta, abstractmethod
from collections.abc import Iterator, Mapping
from functools import cached_property
from io import BytesIO
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar, cast

from PIL import Image, ImageCms

from dicomslide.cache import FrameCache
from dicomslide.enum import ImageFlavors as ImageFlavors  # a dicomslide 0.7 name
from dicomslide.slide import Slide
from dicomslide.version import __version__ as __version__

if TYPE_CHECKING:
    from dicomslide.openslide import lowlevel
    from dicomslide.openslide._backend import SlideBackend
    from dicomslide.openslide.lowlevel import OpenSlideError as OpenSlideError
    from dicomslide.openslide.lowlevel import (
        OpenSlideUnsupportedFormatError as OpenSlideUnsupportedFormatError,
    )
    from dicomslide.openslide.lowlevel import (
        OpenSlideVersionError as OpenSlideVersionError,
    )
else:
    try:
        from dicomslide.openslide import lowlevel
    except ModuleNotFoundError as _error:
        # Raised by lowlevel when no OpenSlide library loads (name None), or by
        # the import system when the module is blocked.
        if _error.name not in (None, f"{__name__}.lowlevel"):
            raise
        logging.getLogger(__name__).debug("no OpenSlide library: %s", _error)
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

_logger = logging.getLogger(__name__)

#: Version of the OpenSlide C library in use, or None if none loads.
__library_version__: str | None = None if lowlevel is None else lowlevel.get_version()

PROPERTY_NAME_BACKGROUND_COLOR = "openslide.background-color"
PROPERTY_NAME_BARCODE = "openslide.barcode"
PROPERTY_NAME_BOUNDS_HEIGHT = "openslide.bounds-height"
PROPERTY_NAME_BOUNDS_WIDTH = "openslide.bounds-width"
PROPERTY_NAME_BOUNDS_X = "openslide.bounds-x"
PROPERTY_NAME_BOUNDS_Y = "openslide.bounds-y"
PROPERTY_NAME_COMMENT = "openslide.comment"
PROPERTY_NAME_MPP_X = "openslide.mpp-x"
PROPERTY_NAME_MPP_Y = "openslide.mpp-y"
PROPERTY_NAME_OBJECTIVE_POWER = "openslide.objective-power"
PROPERTY_NAME_QUICKHASH1 = "openslide.quickhash-1"
PROPERTY_NAME_VENDOR = "openslide.vendor"

# The names dicomslide 0.7 gave the same properties.
OPENSLIDE_BACKGROUND_COLOR = PROPERTY_NAME_BACKGROUND_COLOR
OPENSLIDE_BOUNDS_HEIGHT = PROPERTY_NAME_BOUNDS_HEIGHT
OPENSLIDE_BOUNDS_WIDTH = PROPERTY_NAME_BOUNDS_WIDTH
OPENSLIDE_BOUNDS_X = PROPERTY_NAME_BOUNDS_X
OPENSLIDE_BOUNDS_Y = PROPERTY_NAME_BOUNDS_Y
OPENSLIDE_COMMENT = PROPERTY_NAME_COMMENT
OPENSLIDE_MPP_X = PROPERTY_NAME_MPP_X
OPENSLIDE_MPP_Y = PROPERTY_NAME_MPP_Y
OPENSLIDE_OBJECTIVE_POWER = PROPERTY_NAME_OBJECTIVE_POWER
OPENSLIDE_QUICKHASH1 = PROPERTY_NAME_QUICKHASH1
OPENSLIDE_VENDOR = PROPERTY_NAME_VENDOR

#: What a path may be: the types openslide-python accepts.
Filename: TypeAlias = "str | bytes | os.PathLike[Any]"

#: Vendor string of DICOM slides, as OpenSlide 4 names its DICOM format.
DICOM_VENDOR = "dicom"

_T = TypeVar("_T")
_SlideT = TypeVar("_SlideT", bound="AbstractSlide")


# -- Recognising DICOM ------------------------------------------------------

_DICOM_PREAMBLE_SIZE = 128
_DICOM_PREFIX = b"DICM"


def _is_path(filename: object) -> bool:
    return isinstance(filename, str | bytes | os.PathLike)


def _is_dicom_file(path: Filename) -> bool:
    """Whether a file starts like a DICOM Part 10 file (``DICM`` at byte 128)."""
    if not os.path.isfile(path):  # opening a FIFO would block
        return False
    try:
        with open(path, "rb") as file:
            file.seek(_DICOM_PREAMBLE_SIZE)
            return file.read(len(_DICOM_PREFIX)) == _DICOM_PREFIX
    except OSError:
        return False


def _folder_has_dicom_file(folder: Filename) -> bool:
    """Whether a folder or one of its subfolders holds a DICOM file."""
    for root, _, names in os.walk(os.fspath(folder)):
        if any(_is_dicom_file(os.path.join(root, name)) for name in names):
            return True
    return False


def _is_dicom_source(filename: object) -> bool:
    """Whether OpenSlide should read `filename` with the DICOM backend."""
    if isinstance(filename, Slide):
        return True
    if not _is_path(filename):
        return False
    path = cast(Filename, filename)
    return os.path.isdir(path) or _is_dicom_file(path)


def _open_native(filename: Filename) -> SlideBackend:
    if lowlevel is None:
        raise OpenSlideUnsupportedFormatError(
            "Unsupported or missing image file (no OpenSlide library is loaded)"
        )
    from dicomslide.openslide.native import NativeBackend

    return NativeBackend.open(filename)


def _open_backend(filename: Filename | Slide) -> SlideBackend:
    """Open `filename` with the backend that reads it.

    DICOM sources (a :class:`dicomslide.Slide`, a folder, a DICOM file) go to
    the DICOM backend; a DICOM file it does not support goes on to the OpenSlide
    library (OpenSlide 4 reads DICOM too). Everything else goes to the library.
    """
    if not _is_dicom_source(filename):
        return _open_native(filename)  # type: ignore[arg-type]
    try:
        return DicomBackend.open(filename)
    except OpenSlideUnsupportedFormatError as error:
        if isinstance(filename, Slide) or os.path.isdir(filename):
            raise
        _logger.debug(
            "DICOM backend declined %r (%s): trying OpenSlide", filename, error
        )
        try:
            return _open_native(filename)
        except OpenSlideUnsupportedFormatError:
            raise error from None


# -- Slides -----------------------------------------------------------------


class AbstractSlide(metaclass=ABCMeta):
    """The base class of a slide object."""

    #: ICC profile of the slide, if it has one (set by subclasses).
    _profile: bytes | None = None

    def __enter__(self: _SlideT) -> _SlideT:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> Literal[False]:
        self.close()
        return False

    @classmethod
    @abstractmethod
    def detect_format(cls, filename: Filename) -> str | None:
        """Return a string describing the format of a file.

        Parameters
        ----------
        filename: Union[str, bytes, os.PathLike]
            Path of the file

        Returns
        -------
        Union[str, None]
            Format, or None if the file is not recognised

        """

    @abstractmethod
    def close(self) -> None:
        """Close the slide."""

    @property
    @abstractmethod
    def level_count(self) -> int:
        """int: number of levels in the image"""

    @property
    @abstractmethod
    def level_dimensions(self) -> tuple[tuple[int, int], ...]:
        """Tuple[Tuple[int, int], ...]: (width, height) of every level"""

    @property
    def dimensions(self) -> tuple[int, int]:
        """Tuple[int, int]: (width, height) of level 0"""
        return self.level_dimensions[0]

    @property
    @abstractmethod
    def level_downsamples(self) -> tuple[float, ...]:
        """Tuple[float, ...]: downsample factor of every level"""

    @property
    @abstractmethod
    def properties(self) -> Mapping[str, str]:
        """Mapping[str, str]: metadata of the image, name to value"""

    @property
    @abstractmethod
    def associated_images(self) -> Mapping[str, Image.Image]:
        """Mapping[str, PIL.Image.Image]: images associated with the slide"""

    @property
    def color_profile(self) -> ImageCms.ImageCmsProfile | None:
        """Union[PIL.ImageCms.ImageCmsProfile, None]: ICC profile of the slide"""
        profile = self._profile
        if profile is None:
            return None
        return ImageCms.getOpenProfile(BytesIO(profile))

    @abstractmethod
    def get_best_level_for_downsample(self, downsample: float) -> int:
        """Return the best level for displaying a downsample factor.

        Parameters
        ----------
        downsample: float
            Desired downsample factor

        Returns
        -------
        int
            Level number

        """

    @abstractmethod
    def read_region(
        self, location: tuple[int, int], level: int, size: tuple[int, int]
    ) -> Image.Image:
        """Read a region of a level.

        Parameters
        ----------
        location: Tuple[int, int]
            (x, y) of the top left pixel in the level 0 reference frame
        level: int
            Level number
        size: Tuple[int, int]
            (width, height) of the region in pixels of `level`

        Returns
        -------
        PIL.Image.Image
            RGBA image, not premultiplied

        """

    def set_cache(self, cache: OpenSlideCache) -> None:  # noqa: B027
        """Use a cache for recently decoded tiles (this class has none).

        Parameters
        ----------
        cache: dicomslide.openslide.OpenSlideCache
            The cache

        """

    def get_thumbnail(self, size: tuple[int, int]) -> Image.Image:
        """Make an RGB thumbnail of the image, on the slide's background colour.

        Parameters
        ----------
        size: Tuple[int, int]
            Maximum (width, height) of the thumbnail

        Returns
        -------
        PIL.Image.Image
            RGB image that fits in `size`, keeping the aspect ratio

        """
        downsample = max(
            full / wanted for full, wanted in zip(self.dimensions, size, strict=True)
        )
        level = self.get_best_level_for_downsample(downsample)
        region = self.read_region((0, 0), level, self.level_dimensions[level])
        background = self.properties.get(PROPERTY_NAME_BACKGROUND_COLOR, "ffffff")
        thumbnail = Image.new("RGB", region.size, f"#{background}")
        thumbnail.paste(region, None, region)
        thumbnail.thumbnail(size, Image.Resampling.LANCZOS)
        if self._profile is not None:
            thumbnail.info["icc_profile"] = self._profile
        return thumbnail


class _SlideMap(Mapping[str, _T], metaclass=ABCMeta):
    """Read-only mapping over a backend, with openslide-python's repr."""

    def __init__(self, backend: SlideBackend) -> None:
        self._backend = backend

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} {dict(self)!r}>"

    @abstractmethod
    def _keys(self) -> list[str]: ...

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())


class _PropertyMap(_SlideMap[str]):
    def _keys(self) -> list[str]:
        return list(self._backend.properties)

    def __getitem__(self, name: str) -> str:
        return self._backend.properties[name]


#: Keys of associated images in dicomslide 0.7 (decisions §4): they still
#: resolve for DICOM slides; iteration yields OpenSlide's names
_DICOMSLIDE_07_NAMES = {"LABEL": "label", "OVERVIEW": "macro", "THUMBNAIL": "thumbnail"}


class _AssociatedImageMap(_SlideMap[Image.Image]):
    def __init__(self, backend: SlideBackend, slide: OpenSlide) -> None:
        super().__init__(backend)
        self._slide = slide

    def _keys(self) -> list[str]:
        return list(self._backend.associated_image_names)

    def __getitem__(self, name: str) -> Image.Image:
        keys = self._keys()
        if (
            name not in keys
            and self._backend.properties.get("openslide.vendor") == "dicom"
        ):
            # dicomslide 0.7 named DICOM associated images by image flavor
            name = _DICOMSLIDE_07_NAMES.get(name, name)
        if name not in keys:
            raise KeyError(name)
        image = self._backend.read_associated_image(name)
        profile = self._backend.associated_image_icc_profile(name)
        if profile is not None:
            slide_profile = self._slide._profile
            # Share the slide's copy of an identical profile, to save memory.
            image.info["icc_profile"] = (
                slide_profile if profile == slide_profile else profile
            )
        return image


def _restore(
    cls: type[OpenSlide], backend: SlideBackend, filename: Filename | Slide
) -> OpenSlide:
    """Unpickle an OpenSlide: wrap the backend reopened by its own reduce."""
    slide = cls.__new__(cls)
    slide._init(backend, filename)
    return slide


class OpenSlide(AbstractSlide):
    """An open whole-slide image: an OpenSlide-read file or a DICOM slide.

    The object may be used as a context manager, which closes it on exit. If an
    operation fails, :class:`OpenSlideError` is raised; errors are sticky: once
    one is raised, every later operation other than :meth:`close` fails too.
    After :meth:`close`, operations raise :class:`ctypes.ArgumentError` (native
    slides) as in openslide-python.

    Objects pickle as the way they were opened, and reopen when unpickled.

    Parameters
    ----------
    filename: Union[str, bytes, os.PathLike, dicomslide.Slide]
        Path of a slide file, of a DICOM file or of a folder of DICOM files, or
        a DICOM slide

    Raises
    ------
    OpenSlideUnsupportedFormatError
        When the file is missing or of no format that can be read
    OpenSlideError
        When the file is recognised but cannot be opened

    """

    def __init__(self, filename: Filename | Slide) -> None:
        super().__init__()
        self._init(_open_backend(filename), filename)

    def _init(self, backend: SlideBackend, filename: Filename | Slide) -> None:
        self._filename = filename
        self._backend = backend

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self._filename!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (type(self), self._backend, self._filename))

    @cached_property
    def _profile(self) -> bytes | None:  # type: ignore[override]
        return self._backend.icc_profile

    @classmethod
    def detect_format(cls, filename: Filename) -> str | None:
        """Return the format vendor of a file.

        Parameters
        ----------
        filename: Union[str, bytes, os.PathLike]
            Path of a file or a folder

        Returns
        -------
        Union[str, None]
            ``"dicom"`` for a DICOM file or a folder holding DICOM files, else
            the vendor the OpenSlide library detects; None if the file is not
            recognised

        """
        if _is_path(filename):
            if os.path.isdir(filename):
                return DICOM_VENDOR if _folder_has_dicom_file(filename) else None
            if _is_dicom_file(filename):
                return DICOM_VENDOR
        if lowlevel is None:
            return None
        return lowlevel.detect_vendor(filename)

    def close(self) -> None:
        """Close the slide."""
        self._backend.close()

    @property
    def level_count(self) -> int:
        """int: number of levels in the image"""
        return len(self._backend.level_dimensions)

    @property
    def level_dimensions(self) -> tuple[tuple[int, int], ...]:
        """Tuple[Tuple[int, int], ...]: (width, height) of every level"""
        return self._backend.level_dimensions

    @property
    def level_downsamples(self) -> tuple[float, ...]:
        """Tuple[float, ...]: downsample factor of every level"""
        return self._backend.level_downsamples

    @property
    def properties(self) -> Mapping[str, str]:
        """Mapping[str, str]: metadata of the image, name to value

        ``openslide.*`` properties are the same for every format; others are
        vendor specific.
        """
        return _PropertyMap(self._backend)

    @property
    def associated_images(self) -> Mapping[str, Image.Image]:
        """Mapping[str, PIL.Image.Image]: images associated with the slide

        Images are read when accessed, as RGBA (not premultiplied), with their
        ICC profile in ``info["icc_profile"]`` when they have one.
        """
        return _AssociatedImageMap(self._backend, self)

    def get_best_level_for_downsample(self, downsample: float) -> int:
        """Return the best level for displaying a downsample factor.

        Parameters
        ----------
        downsample: float
            Desired downsample factor

        Returns
        -------
        int
            Level number

        """
        return self._backend.get_best_level_for_downsample(downsample)

    def read_region(
        self, location: tuple[int, int], level: int, size: tuple[int, int]
    ) -> Image.Image:
        """Read a region of a level.

        Parameters
        ----------
        location: Tuple[int, int]
            (x, y) of the top left pixel in the level 0 reference frame
        level: int
            Level number
        size: Tuple[int, int]
            (width, height) of the region in pixels of `level`

        Returns
        -------
        PIL.Image.Image
            RGBA image, not premultiplied; transparent outside the slide. Its
            ``info["icc_profile"]`` is the slide's profile, if it has one.

        Raises
        ------
        OpenSlideError
            When `size` is negative or the read fails

        """
        width, height = size
        if width < 0 or height < 0:
            raise OpenSlideError(
                f"negative width ({width}) or negative height ({height}) not allowed"
            )
        if width == 0 or height == 0:
            region = Image.new("RGBA", (width, height))
        else:
            region = self._backend.read_region(location, level, size)
        if self._profile is not None:
            region.info["icc_profile"] = self._profile
        return region

    def set_cache(self, cache: OpenSlideCache) -> None:
        """Use a cache for recently decoded tiles, which slides can share.

        By default, every slide has a private cache of a default size.

        Parameters
        ----------
        cache: dicomslide.openslide.OpenSlideCache
            The cache

        Raises
        ------
        TypeError
            When `cache` is not an :class:`OpenSlideCache`
        OpenSlideVersionError
            When the slide is read by an OpenSlide library older than 4.0

        """
        if not isinstance(cache, OpenSlideCache):
            raise TypeError("Not a cache object")
        self._backend.set_cache(cache)


def _check_capacity(capacity: object) -> None:
    """Accept what OpenSlide's size_t argument accepts, failing like ctypes."""
    if not isinstance(capacity, int):
        raise ctypes.ArgumentError("argument 1: TypeError: Incorrect type")
    if capacity < 0:
        raise ctypes.ArgumentError("argument 1: ValueError: Value out of range")


class OpenSlideCache:
    """An in-memory cache of decoded tiles, which slides can share.

    Attach it to slides with :meth:`OpenSlide.set_cache`. DICOM slides keep
    their decoded frames in :attr:`frame_cache`; slides of the OpenSlide library
    in a cache of the library, which is made when the object is first set on
    such a slide (OpenSlide 4.0 or newer needed then).

    Parameters
    ----------
    capacity: int
        Capacity in bytes

    Attributes
    ----------
    frame_cache: dicomslide.cache.FrameCache
        Cache of the DICOM slides, bounded to `capacity` bytes

    Raises
    ------
    ctypes.ArgumentError
        When `capacity` is not a non-negative int

    """

    def __init__(self, capacity: int) -> None:
        _check_capacity(capacity)
        self._capacity = capacity
        self.frame_cache = FrameCache(capacity)
        self._native: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self._capacity!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # The cached tiles stay behind: a copy starts empty.
        return (type(self), (self._capacity,))

    @property
    def capacity(self) -> int:
        """int: capacity in bytes"""
        return self._capacity

    @property
    def _openslide_cache(self) -> Any:
        """The OpenSlide library's cache, made on first use."""
        with self._lock:
            if self._native is None:
                if lowlevel is None:
                    raise OpenSlideError("no OpenSlide library is loaded")
                self._native = lowlevel.cache_create(self._capacity)
            return self._native


class ImageSlide(AbstractSlide):
    """A slide of one level made of an ordinary image (a PIL image or a file).

    Parameters
    ----------
    file: Union[str, bytes, os.PathLike, PIL.Image.Image]
        Image or path of an image file. A file is closed by :meth:`close`; an
        image is left open.

    """

    def __init__(self, file: Filename | Image.Image) -> None:
        super().__init__()
        self._file_arg = file
        self._lock = threading.Lock()
        self._image: Image.Image | None
        if isinstance(file, Image.Image):
            self._close = False
            self._image = file
        else:
            self._close = True
            self._image = Image.open(file)
        self._profile = self._image.info.get("icc_profile")

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self._file_arg!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self._file_arg,))

    @classmethod
    def detect_format(cls, filename: Filename) -> str | None:
        """Return the format of an image file as PIL names it.

        Parameters
        ----------
        filename: Union[str, bytes, os.PathLike]
            Path of the file

        Returns
        -------
        Union[str, None]
            Format, e.g. ``"PNG"``, or None if PIL cannot open the file

        """
        try:
            with Image.open(filename) as image:
                return image.format
        except OSError:
            return None

    def close(self) -> None:
        """Close the slide (and the image file it opened)."""
        with self._lock:
            if self._close and self._image is not None:
                self._image.close()
            self._close = False
            self._image = None

    def _open_image(self) -> Image.Image:
        if self._image is None:
            raise ValueError("Cannot read from a closed slide")
        return self._image

    @property
    def level_count(self) -> Literal[1]:
        """int: number of levels in the image (1)"""
        return 1

    @property
    def level_dimensions(self) -> tuple[tuple[int, int]]:
        """Tuple[Tuple[int, int]]: (width, height) of the image"""
        return (self._open_image().size,)

    @property
    def level_downsamples(self) -> tuple[float]:
        """Tuple[float]: downsample factor of the one level (1.0)"""
        return (1.0,)

    @property
    def properties(self) -> Mapping[str, str]:
        """Mapping[str, str]: metadata of the image (none)"""
        return {}

    @property
    def associated_images(self) -> Mapping[str, Image.Image]:
        """Mapping[str, PIL.Image.Image]: associated images (none)"""
        return {}

    def get_best_level_for_downsample(self, downsample: float) -> Literal[0]:
        """Return the best level for a downsample factor: the only one, 0.

        Parameters
        ----------
        downsample: float
            Desired downsample factor

        Returns
        -------
        int
            0

        """
        return 0

    def read_region(
        self, location: tuple[int, int], level: int, size: tuple[int, int]
    ) -> Image.Image:
        """Read a region of the image.

        Parameters
        ----------
        location: Tuple[int, int]
            (x, y) of the top left pixel
        level: int
            Level number: 0
        size: Tuple[int, int]
            (width, height) of the region

        Returns
        -------
        PIL.Image.Image
            RGBA image, transparent outside the image

        Raises
        ------
        ValueError
            When the slide is closed
        OpenSlideError
            When `level` is not 0 or `size` is negative

        """
        with self._lock:
            image = self._open_image()
            if level != 0:
                raise OpenSlideError("Invalid level")
            if any(extent < 0 for extent in size):
                raise OpenSlideError(f"Size {size} must be non-negative")
            region = Image.new("RGBA", size, (0, 0, 0, 0))
            # The part of the region inside the image, in image coordinates.
            box = [
                max(0, min(start, limit))
                for start, limit in zip(location, image.size, strict=True)
            ] + [
                max(0, min(start + extent, limit))
                for start, extent, limit in zip(location, size, image.size, strict=True)
            ]
            left, top, right, bottom = box
            if right > left and bottom > top:
                crop = image.crop((left, top, right, bottom))
                region.paste(crop, (left - location[0], top - location[1]))
        if self._profile is not None:
            region.info["icc_profile"] = self._profile
        return region


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


# The backend and Deep Zoom use the names above.
from dicomslide.openslide import deepzoom as deepzoom  # noqa: E402
from dicomslide.openslide.dicom import DicomBackend  # noqa: E402
