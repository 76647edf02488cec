"""Low-level interface to the OpenSlide C library.

A ctypes binding with the semantics of openslide-python's ``openslide.lowlevel``:
nearly direct equivalents of the OpenSlide C API, plus the conversion of the
library's premultiplied ARGB pixels into straight-alpha RGBA :class:`PIL.Image.Image`
objects. The library is looked for when this module is first imported; the first
of these that loads is used:

1. the path in the environment variable ``DICOMSLIDE_OPENSLIDE_LIBRARY``;
2. the library that the ``openslide-bin`` package ships
   (``pip install openslide-bin``);
3. the system's ``libopenslide.so.1``, then ``libopenslide.so.0``
   (Windows: ``libopenslide-1.dll``, ``libopenslide-0.dll``; macOS:
   ``libopenslide.1.dylib``, ``libopenslide.0.dylib``, then what
   :func:`ctypes.util.find_library` finds).

If none loads, the import raises :class:`ModuleNotFoundError` naming every
attempt and why it failed. Every public function has a boolean ``available``
attribute; the functions that need OpenSlide 4.0.0 (ICC profiles and tile caches)
raise :class:`OpenSlideVersionError` when the loaded library is older.

"""

import ctypes as _ct
import functools as _functools
import importlib as _importlib
import logging as _logging
import os as _os
import platform as _platform
import sys as _sys
import types as _types
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, ParamSpec, Protocol, TypeAlias, TypeVar
from typing import cast as _cast

import numpy as _np
from PIL import Image

__all__ = [
    "Filename",
    "OpenSlideError",
    "OpenSlideUnsupportedFormatError",
    "OpenSlideVersionError",
    "cache_create",
    "cache_release",
    "close",
    "detect_vendor",
    "get_associated_image_dimensions",
    "get_associated_image_icc_profile_size",
    "get_associated_image_names",
    "get_best_level_for_downsample",
    "get_error",
    "get_icc_profile_size",
    "get_level_count",
    "get_level_dimensions",
    "get_level_downsample",
    "get_property_names",
    "get_property_value",
    "get_version",
    "open",
    "read_associated_image",
    "read_associated_image_icc_profile",
    "read_icc_profile",
    "read_region",
    "set_cache",
]

_logger = _logging.getLogger(__name__)

#: Environment variable naming the OpenSlide library to try before any other.
_ENV_VAR = "DICOMSLIDE_OPENSLIDE_LIBRARY"

#: Package (pip ``openslide-bin``) that ships a build of the library.
_BIN_PACKAGE = "openslide_bin"

_WINDOWS = _platform.system() == "Windows"

Filename: TypeAlias = str | bytes | _os.PathLike[Any]


# -- Exceptions -------------------------------------------------------------


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


class _UnknownAssociatedImageError(KeyError, ValueError):
    """A slide has no associated image of the given name.

    It is a KeyError, as the specification asks, and a ValueError, which is what
    openslide-python happens to raise in that case.
    """

    def __init__(self, name: str | bytes) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        name = self.name
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        return f"no associated image named {name!r}"


# -- Handles ----------------------------------------------------------------


class _Handle:
    """A pointer handed out by the C library, valid until it is let go of.

    Subclasses name what they hold: the words of their argument errors and
    the binding method that frees the pointer.
    """

    _reference = ""  # "Not an ... reference"
    _noun = ""  # "Passing undefined ... object"
    _gone = ""  # "Passing ... <noun> object" once let go of
    _destroy = ""  # the _Binding method that frees the pointer

    def __init__(self, ptr: _ct.c_void_p, owner: "_Binding | None" = None) -> None:
        self._as_parameter_ = ptr
        self._owner = owner if owner is not None else _API._binding
        self._valid = True

    def __del__(self) -> None:
        if getattr(self, "_valid", False):
            self._valid = False
            getattr(self._owner, self._destroy)(self._as_parameter_)

    def invalidate(self) -> None:
        """Mark the handle let go of: it is no longer accepted."""
        self._valid = False

    @classmethod
    def _checked(cls, obj: object) -> "_Handle":
        if obj.__class__ is not cls:
            raise ValueError(f"Not an {cls._reference} reference")
        handle = _cast(_Handle, obj)
        if not handle._as_parameter_:
            raise ValueError(f"Passing undefined {cls._noun} object")
        if not handle._valid:
            raise ValueError(f"Passing {cls._gone} {cls._noun} object")
        return handle


class _OpenSlide(_Handle):
    """Handle of an open slide.

    Not intended for direct instantiation: use :func:`open` instead. The slide is
    closed by :func:`close` or, failing that, when the handle is garbage-collected.
    """

    _reference, _noun, _gone, _destroy = (
        "OpenSlide",
        "slide",
        "closed",
        "_destroy_slide",
    )

    @classmethod
    def from_param(cls, obj: object) -> "_OpenSlide":
        """Check that `obj` is an open slide handle (ctypes argument converter)."""
        return _cast(_OpenSlide, cls._checked(obj))


class _OpenSlideCache(_Handle):
    """Handle of an OpenSlide tile cache.

    Not intended for direct instantiation: use :func:`cache_create` instead. The
    cache is released by :func:`cache_release` or, failing that, when the handle
    is garbage-collected; slides that use it keep it alive in the library.
    """

    _reference, _noun, _gone, _destroy = (
        "OpenSlide cache",
        "cache",
        "released",
        "_destroy_cache",
    )

    @classmethod
    def from_param(cls, obj: object) -> "_OpenSlideCache":
        """Check that `obj` is a live cache handle (ctypes argument converter)."""
        return _cast(_OpenSlideCache, cls._checked(obj))


# -- Argument converters (ctypes from_param) --------------------------------
# An exception raised by from_param reaches the caller as ctypes.ArgumentError.


class _FilenameArg:
    """A filename (str, bytes or os.PathLike) as bytes for the C library."""

    @classmethod
    def from_param(cls, obj: Filename) -> bytes:
        if _WINDOWS:
            # OpenSlide 4 expects UTF-8 on Windows, whatever the code page.
            path = _os.fspath(obj)
            return path.encode("utf-8") if isinstance(path, str) else path
        return _os.fsencode(obj)  # TypeError on anything else


class _Utf8Arg:
    """A str (encoded as UTF-8) or bytes argument."""

    @classmethod
    def from_param(cls, obj: str | bytes) -> bytes:
        if isinstance(obj, bytes):
            return obj
        if isinstance(obj, str):
            return obj.encode("utf-8")
        raise TypeError("Incorrect type")


class _SizeArg:
    """A non-negative int as size_t."""

    @classmethod
    def from_param(cls, obj: int) -> _ct.c_size_t:
        if not isinstance(obj, int):
            raise TypeError("Incorrect type")
        if obj < 0:
            raise ValueError("Value out of range")
        return _ct.c_size_t(obj)


class _SlideArg:
    """An open slide handle that belongs to one binding."""

    def __init__(self, owner: "_Binding") -> None:
        self._owner = owner

    def from_param(self, obj: object) -> _OpenSlide:
        slide = _OpenSlide.from_param(obj)
        if slide._owner is not self._owner:
            raise ValueError("Passing slide object of another OpenSlide library")
        return slide


class _CacheArg:
    """A live cache handle that belongs to one binding."""

    def __init__(self, owner: "_Binding") -> None:
        self._owner = owner

    def from_param(self, obj: object) -> _OpenSlideCache:
        cache = _OpenSlideCache.from_param(obj)
        if cache._owner is not self._owner:
            raise ValueError("Passing cache object of another OpenSlide library")
        return cache


# -- C prototypes -----------------------------------------------------------

_SLIDE = "slide"  # placeholder for the binding's _SlideArg
_CACHE = "cache"  # placeholder for the binding's _CacheArg
_INT64_P = _ct.POINTER(_ct.c_int64)
_UINT32_P = _ct.POINTER(_ct.c_uint32)
_CHAR_P = _ct.POINTER(_ct.c_char)
_NAMES_P = _ct.POINTER(_ct.c_char_p)


class _Prototype(NamedTuple):
    name: str  # C symbol without its "openslide_" prefix
    restype: Any
    argtypes: tuple[Any, ...]
    check: str  # result handler: _Binding._check_<check>
    minimum_version: str | None = None  # None: the function must exist


_PROTOTYPES = (
    _Prototype("detect_vendor", _ct.c_char_p, (_FilenameArg,), "string"),
    _Prototype("open", _ct.c_void_p, (_FilenameArg,), "open"),
    _Prototype("close", None, (_SLIDE,), "close"),
    _Prototype("get_error", _ct.c_char_p, (_SLIDE,), "string"),
    _Prototype("get_version", _ct.c_char_p, (), "string"),
    _Prototype("get_level_count", _ct.c_int32, (_SLIDE,), "error"),
    _Prototype(
        "get_level_dimensions",
        None,
        (_SLIDE, _ct.c_int32, _INT64_P, _INT64_P),
        "error",
    ),
    _Prototype("get_level_downsample", _ct.c_double, (_SLIDE, _ct.c_int32), "error"),
    _Prototype(
        "get_best_level_for_downsample",
        _ct.c_int32,
        (_SLIDE, _ct.c_double),
        "error",
    ),
    _Prototype(
        "read_region",
        None,
        (_SLIDE, _UINT32_P, _ct.c_int64, _ct.c_int64, _ct.c_int32)
        + (_ct.c_int64, _ct.c_int64),
        "error",
    ),
    _Prototype("get_property_names", _NAMES_P, (_SLIDE,), "names"),
    _Prototype("get_property_value", _ct.c_char_p, (_SLIDE, _Utf8Arg), "error"),
    _Prototype("get_associated_image_names", _NAMES_P, (_SLIDE,), "names"),
    _Prototype(
        "get_associated_image_dimensions",
        None,
        (_SLIDE, _Utf8Arg, _INT64_P, _INT64_P),
        "error",
    ),
    _Prototype("read_associated_image", None, (_SLIDE, _Utf8Arg, _UINT32_P), "error"),
    _Prototype("get_icc_profile_size", _ct.c_int64, (_SLIDE,), "error", "4.0.0"),
    _Prototype("read_icc_profile", None, (_SLIDE, _CHAR_P), "error", "4.0.0"),
    _Prototype(
        "get_associated_image_icc_profile_size",
        _ct.c_int64,
        (_SLIDE, _Utf8Arg),
        "error",
        "4.0.0",
    ),
    _Prototype(
        "read_associated_image_icc_profile",
        None,
        (_SLIDE, _Utf8Arg, _CHAR_P),
        "error",
        "4.0.0",
    ),
    _Prototype("cache_create", _ct.c_void_p, (_SizeArg,), "cache", "4.0.0"),
    _Prototype("set_cache", None, (_SLIDE, _CACHE), "error", "4.0.0"),
    _Prototype("cache_release", None, (_CACHE,), "release", "4.0.0"),
)

#: C functions behind the public functions that call more than their namesake.
_USES = {
    "read_icc_profile": ("get_icc_profile_size", "read_icc_profile"),
    "read_associated_image": (
        "get_associated_image_dimensions",
        "read_associated_image",
    ),
    "read_associated_image_icc_profile": (
        "get_associated_image_icc_profile_size",
        "read_associated_image_icc_profile",
    ),
}


class _Unavailable:
    """Stand-in for a C function that the loaded library lacks."""

    available = False

    def __init__(self, name: str, minimum_version: str) -> None:
        self.__name__ = f"openslide_{name}"
        self.minimum_version = minimum_version

    def __call__(self, *args: Any) -> Any:
        raise OpenSlideVersionError(self.minimum_version)


# -- Pixels -----------------------------------------------------------------


def _argb_to_image(
    buf: Any, size: tuple[int, int], byteorder: str = _sys.byteorder
) -> Image.Image:
    """Make an RGBA image of premultiplied ARGB words in native byte order.

    Pillow's ``BGRa`` raw mode un-premultiplies exactly as openslide-python does;
    fully opaque data need only the channel swap of ``BGRA``.
    """
    words = _np.frombuffer(buf, dtype="<u4" if byteorder == "little" else ">u4")
    raw_mode = "BGRA" if words.min() >= 0xFF000000 else "BGRa"
    data = words.astype("<u4", copy=False)  # bytes B, G, R, A
    return Image.frombuffer("RGBA", size, data, "raw", raw_mode, 0, 1)


# -- Binding to one library -------------------------------------------------


class _Binding:
    """The OpenSlide API implemented on one loaded copy of the C library.

    Parameters
    ----------
    library: ctypes.CDLL
        The loaded OpenSlide library

    Raises
    ------
    OpenSlideVersionError
        When the library is older than OpenSlide 3.4.0

    """

    def __init__(self, library: _ct.CDLL) -> None:
        self.library = library
        self._slide_arg = _SlideArg(self)
        self._cache_arg = _CacheArg(self)
        self._c = _types.SimpleNamespace(
            **{proto.name: self._resolve(proto) for proto in _PROTOTYPES}
        )
        self._close_ptr = self._pointer_function("close")
        if self._c.cache_release.available:
            self._release_ptr = self._pointer_function("cache_release")

    def __repr__(self) -> str:
        return f"<OpenSlide {self.get_version()} from {self.library._name}>"

    # -- setting up

    def _resolve(self, proto: _Prototype) -> Any:
        try:
            # library[...] makes a fresh object: its settings are not shared with
            # other users of the library (openslide-python sets getattr()'s ones).
            func: Any = self.library["openslide_" + proto.name]
        except AttributeError:
            if proto.minimum_version is None:
                raise OpenSlideVersionError("3.4.0") from None
            return _Unavailable(proto.name, proto.minimum_version)
        func.argtypes = [self._converter(arg) for arg in proto.argtypes]
        func.restype = proto.restype
        func.errcheck = getattr(self, "_check_" + proto.check)
        func.available = True
        return func

    def _converter(self, argtype: Any) -> Any:
        if argtype == _SLIDE:
            return self._slide_arg
        if argtype == _CACHE:
            return self._cache_arg
        return argtype

    def _pointer_function(self, name: str) -> Any:
        """The C function taking a bare pointer, for use by destructors."""
        func = self.library["openslide_" + name]
        func.argtypes = [_ct.c_void_p]
        func.restype = None
        return func

    def _destroy_slide(self, ptr: _ct.c_void_p) -> None:
        self._close_ptr(ptr)

    def _destroy_cache(self, ptr: _ct.c_void_p) -> None:
        self._release_ptr(ptr)

    def available(self, function: str) -> bool:
        """Whether the library has every C function that `function` calls."""
        return all(
            getattr(self._c, name).available
            for name in _USES.get(function, (function,))
        )

    # -- result handlers (ctypes errcheck)

    def _raise_for_error(self, slide: _OpenSlide) -> None:
        message = self._c.get_error(slide)
        if message is not None:
            raise OpenSlideError(message)

    def _check_string(self, result: bytes | None, func: Any, args: Any) -> str | None:
        return None if result is None else result.decode("utf-8", "replace")

    def _check_error(self, result: Any, func: Any, args: tuple[Any, ...]) -> Any:
        self._raise_for_error(args[0])
        if isinstance(result, bytes):
            return result.decode("utf-8", "replace")
        return result

    def _check_names(self, result: Any, func: Any, args: tuple[Any, ...]) -> list[str]:
        self._raise_for_error(args[0])
        names: list[str] = []
        if result:  # a NULL-terminated array of strings
            while (name := result[len(names)]) is not None:
                names.append(name.decode("utf-8", "replace"))
        return names

    def _check_open(self, result: int | None, func: Any, args: Any) -> _OpenSlide:
        if result is None:
            raise OpenSlideUnsupportedFormatError("Unsupported or missing image file")
        slide = _OpenSlide(_ct.c_void_p(result), self)
        message = self._c.get_error(slide)
        if message is not None:
            self._c.close(slide)
            raise OpenSlideError(message)
        return slide

    def _check_close(self, result: None, func: Any, args: tuple[Any, ...]) -> None:
        args[0].invalidate()

    def _check_cache(self, result: int, func: Any, args: Any) -> _OpenSlideCache:
        return _OpenSlideCache(_ct.c_void_p(result), self)

    def _check_release(self, result: None, func: Any, args: tuple[Any, ...]) -> None:
        args[0].invalidate()

    # -- the public API

    def open(self, filename: Filename) -> _OpenSlide:
        """Open a whole-slide image file.

        Parameters
        ----------
        filename: Union[str, bytes, os.PathLike]
            Path of the slide file

        Returns
        -------
        _OpenSlide
            Handle of the open slide

        Raises
        ------
        OpenSlideUnsupportedFormatError
            When the file is missing or of no format that OpenSlide reads
        OpenSlideError
            When OpenSlide recognises the file but cannot open it
        ctypes.ArgumentError
            When `filename` is of another type

        """
        return _cast(_OpenSlide, self._c.open(filename))

    def close(self, slide: _OpenSlide) -> None:
        """Close a slide; its handle is no longer accepted afterwards.

        Parameters
        ----------
        slide: _OpenSlide
            Handle of an open slide

        Raises
        ------
        ctypes.ArgumentError
            When `slide` is not an open slide handle

        """
        self._c.close(slide)

    def detect_vendor(self, filename: Filename) -> str | None:
        """Detect the format vendor of a slide file.

        Parameters
        ----------
        filename: Union[str, bytes, os.PathLike]
            Path of the slide file

        Returns
        -------
        Union[str, None]
            Name of the vendor, or None if the file is not recognised

        Raises
        ------
        ctypes.ArgumentError
            When `filename` is of another type

        """
        return _cast("str | None", self._c.detect_vendor(filename))

    def get_version(self) -> str:
        """Return the version of the OpenSlide library.

        Returns
        -------
        str
            Version string, for example ``"4.0.1"``

        """
        return _cast(str, self._c.get_version())

    def get_error(self, slide: _OpenSlide) -> str | None:
        """Return the error that put a slide into its error state.

        Once a slide is in the error state, every further call that takes it
        raises :class:`OpenSlideError` with this message.

        Parameters
        ----------
        slide: _OpenSlide
            Handle of an open slide

        Returns
        -------
        Union[str, None]
            Error message, or None if the slide is not in the error state

        """
        return _cast("str | None", self._c.get_error(slide))

    def get_level_count(self, slide: _OpenSlide) -> int:
        """Return the number of resolution levels of a slide.

        Parameters
        ----------
        slide: _OpenSlide
            Handle of an open slide

        Returns
        -------
        int
            Number of levels

        Raises
        ------
        OpenSlideError
            When the slide is in the error state

        """
        return _cast(int, self._c.get_level_count(slide))

    def get_level_dimensions(self, slide: _OpenSlide, level: int) -> tuple[int, int]:
        """Return the size of a level.

        Parameters
        ----------
        slide: _OpenSlide
            Handle of an open slide
        level: int
            Zero-based level number

        Returns
        -------
        Tuple[int, int]
            Width and height in pixels; ``(-1, -1)`` for a level that does not exist

        Raises
        ------
        OpenSlideError
            When the slide is in the error state

        """
        width, height = _ct.c_int64(), _ct.c_int64()
        self._c.get_level_dimensions(slide, level, _ct.byref(width), _ct.byref(height))
        return width.value, height.value

    def get_level_downsample(self, slide: _OpenSlide, level: int) -> float:
        """Return the downsample factor of a level relative to level 0.

        Parameters
        ----------
        slide: _OpenSlide
            Handle of an open slide
        level: int
            Zero-based level number

        Returns
        -------
        float
            Downsample factor; -1.0 for a level that does not exist

        Raises
        ------
        OpenSlideError
            When the slide is in the error state

        """
        return _cast(float, self._c.get_level_downsample(slide, level))

    def get_best_level_for_downsample(
        self, slide: _OpenSlide, downsample: float
    ) -> int:
        """Return the level best suited to display a given downsample factor.

        Parameters
        ----------
        slide: _OpenSlide
            Handle of an open slide
        downsample: float
            Desired downsample factor

        Returns
        -------
        int
            Zero-based level number

        Raises
        ------
        OpenSlideError
            When the slide is in the error state

        """
        return _cast(int, self._c.get_best_level_for_downsample(slide, downsample))

    def read_region(
        self, slide: _OpenSlide, x: int, y: int, level: int, w: int, h: int
    ) -> Image.Image:
        """Read a rectangle of pixels of one level.

        Parameters
        ----------
        slide: _OpenSlide
            Handle of an open slide
        x: int
            Left edge in the level 0 reference frame
        y: int
            Top edge in the level 0 reference frame
        level: int
            Zero-based level number
        w: int
            Width of the region in pixels of `level`
        h: int
            Height of the region in pixels of `level`

        Returns
        -------
        PIL.Image.Image
            RGBA image (not premultiplied) of size `w` x `h`; transparent where
            the region has no slide data. Empty if `w` or `h` is 0, in which case
            the library is not called.

        Raises
        ------
        OpenSlideError
            When `w` or `h` is negative (before anything is allocated), when the
            read fails, or when the slide is in the error state

        """
        if w < 0 or h < 0:
            # The library would say so too, but only after the buffer allocation.
            raise OpenSlideError(
                f"negative width ({w}) or negative height ({h}) not allowed"
            )
        if w == 0 or h == 0:
            return Image.new("RGBA", (w, h))
        buf = (_ct.c_uint32 * (w * h))()
        self._c.read_region(slide, buf, x, y, level, w, h)
        return _argb_to_image(buf, (w, h))

    def get_property_names(self, slide: _OpenSlide) -> list[str]:
        """Return the names of the properties of a slide.

        Parameters
        ----------
        slide: _OpenSlide
            Handle of an open slide

        Returns
        -------
        List[str]
            Property names

        Raises
        ------
        OpenSlideError
            When the slide is in the error state

        """
        return _cast("list[str]", self._c.get_property_names(slide))

    def get_property_value(self, slide: _OpenSlide, name: str | bytes) -> str | None:
        """Return the value of a property of a slide.

        Parameters
        ----------
        slide: _OpenSlide
            Handle of an open slide
        name: Union[str, bytes]
            Property name

        Returns
        -------
        Union[str, None]
            Property value, or None if the slide has no such property

        Raises
        ------
        OpenSlideError
            When the slide is in the error state

        """
        return _cast("str | None", self._c.get_property_value(slide, name))

    def get_associated_image_names(self, slide: _OpenSlide) -> list[str]:
        """Return the names of the associated images (label, thumbnail, ...).

        Parameters
        ----------
        slide: _OpenSlide
            Handle of an open slide

        Returns
        -------
        List[str]
            Associated image names

        Raises
        ------
        OpenSlideError
            When the slide is in the error state

        """
        return _cast("list[str]", self._c.get_associated_image_names(slide))

    def get_associated_image_dimensions(
        self, slide: _OpenSlide, name: str | bytes
    ) -> tuple[int, int]:
        """Return the size of an associated image.

        Parameters
        ----------
        slide: _OpenSlide
            Handle of an open slide
        name: Union[str, bytes]
            Associated image name

        Returns
        -------
        Tuple[int, int]
            Width and height in pixels; ``(-1, -1)`` if there is no such image

        Raises
        ------
        OpenSlideError
            When the slide is in the error state

        """
        width, height = _ct.c_int64(), _ct.c_int64()
        self._c.get_associated_image_dimensions(
            slide, name, _ct.byref(width), _ct.byref(height)
        )
        return width.value, height.value

    def read_associated_image(
        self, slide: _OpenSlide, name: str | bytes
    ) -> Image.Image:
        """Read an associated image.

        Parameters
        ----------
        slide: _OpenSlide
            Handle of an open slide
        name: Union[str, bytes]
            Associated image name

        Returns
        -------
        PIL.Image.Image
            RGBA image (not premultiplied)

        Raises
        ------
        KeyError
            When the slide has no associated image of that name (the exception is
            a ValueError too)
        OpenSlideError
            When the read fails or the slide is in the error state

        """
        width, height = self.get_associated_image_dimensions(slide, name)
        if width < 0 or height < 0:
            raise _UnknownAssociatedImageError(name)
        if width == 0 or height == 0:
            return Image.new("RGBA", (width, height))
        buf = (_ct.c_uint32 * (width * height))()
        self._c.read_associated_image(slide, name, buf)
        return _argb_to_image(buf, (width, height))

    def get_icc_profile_size(self, slide: _OpenSlide) -> int:
        """Return the size of the ICC profile of the slide's pyramid.

        Parameters
        ----------
        slide: _OpenSlide
            Handle of an open slide

        Returns
        -------
        int
            Size in bytes; 0 if there is no profile

        Raises
        ------
        OpenSlideVersionError
            When the library is older than OpenSlide 4.0.0
        OpenSlideError
            When the slide is in the error state

        """
        return _cast(int, self._c.get_icc_profile_size(slide))

    def read_icc_profile(self, slide: _OpenSlide) -> bytes | None:
        """Read the ICC profile of the slide's pyramid.

        Parameters
        ----------
        slide: _OpenSlide
            Handle of an open slide

        Returns
        -------
        Union[bytes, None]
            The profile, or None if there is none

        Raises
        ------
        OpenSlideVersionError
            When the library is older than OpenSlide 4.0.0
        OpenSlideError
            When the read fails or the slide is in the error state

        """
        size = self.get_icc_profile_size(slide)
        if size == 0:
            return None
        buf = (_ct.c_char * size)()
        self._c.read_icc_profile(slide, buf)
        return buf.raw

    def get_associated_image_icc_profile_size(
        self, slide: _OpenSlide, name: str | bytes
    ) -> int:
        """Return the size of the ICC profile of an associated image.

        Parameters
        ----------
        slide: _OpenSlide
            Handle of an open slide
        name: Union[str, bytes]
            Associated image name

        Returns
        -------
        int
            Size in bytes; 0 if there is no profile, -1 if there is no such image

        Raises
        ------
        OpenSlideVersionError
            When the library is older than OpenSlide 4.0.0
        OpenSlideError
            When the slide is in the error state

        """
        return _cast(int, self._c.get_associated_image_icc_profile_size(slide, name))

    def read_associated_image_icc_profile(
        self, slide: _OpenSlide, name: str | bytes
    ) -> bytes | None:
        """Read the ICC profile of an associated image.

        Parameters
        ----------
        slide: _OpenSlide
            Handle of an open slide
        name: Union[str, bytes]
            Associated image name

        Returns
        -------
        Union[bytes, None]
            The profile, or None if there is none

        Raises
        ------
        KeyError
            When the slide has no associated image of that name (the exception is
            a ValueError too)
        OpenSlideVersionError
            When the library is older than OpenSlide 4.0.0
        OpenSlideError
            When the read fails or the slide is in the error state

        """
        size = self.get_associated_image_icc_profile_size(slide, name)
        if size < 0:
            raise _UnknownAssociatedImageError(name)
        if size == 0:
            return None
        buf = (_ct.c_char * size)()
        self._c.read_associated_image_icc_profile(slide, name, buf)
        return buf.raw

    def cache_create(self, capacity: int) -> _OpenSlideCache:
        """Create a tile cache that slides can share.

        Parameters
        ----------
        capacity: int
            Capacity of the cache in bytes

        Returns
        -------
        _OpenSlideCache
            Handle of the cache

        Raises
        ------
        OpenSlideVersionError
            When the library is older than OpenSlide 4.0.0
        ctypes.ArgumentError
            When `capacity` is not a non-negative int

        """
        return _cast(_OpenSlideCache, self._c.cache_create(capacity))

    def set_cache(self, slide: _OpenSlide, cache: _OpenSlideCache) -> None:
        """Make a slide use a tile cache instead of its own.

        Parameters
        ----------
        slide: _OpenSlide
            Handle of an open slide
        cache: _OpenSlideCache
            Handle of a cache

        Raises
        ------
        OpenSlideVersionError
            When the library is older than OpenSlide 4.0.0
        OpenSlideError
            When the slide is in the error state

        """
        self._c.set_cache(slide, cache)

    def cache_release(self, cache: _OpenSlideCache) -> None:
        """Release a tile cache; its handle is no longer accepted afterwards.

        Slides that use the cache keep using it until they are closed.

        Parameters
        ----------
        cache: _OpenSlideCache
            Handle of a cache

        Raises
        ------
        OpenSlideVersionError
            When the library is older than OpenSlide 4.0.0
        ctypes.ArgumentError
            When `cache` is not a live cache handle

        """
        self._c.cache_release(cache)


# -- Module-like namespace of public functions ------------------------------

_P = ParamSpec("_P")
_R = TypeVar("_R")
_R_co = TypeVar("_R_co", covariant=True)


class _Function(Protocol[_P, _R_co]):
    """A public function: callable, and telling whether the library has it."""

    available: bool

    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _R_co: ...


class _Api:
    """The public functions, bound to one library (a module-like namespace).

    Parameters
    ----------
    binding: _Binding
        The library to call

    """

    def __init__(self, binding: _Binding) -> None:
        self._binding = binding
        self.open = self._export(binding.open)
        self.close = self._export(binding.close)
        self.detect_vendor = self._export(binding.detect_vendor)
        self.get_version = self._export(binding.get_version)
        self.get_error = self._export(binding.get_error)
        self.get_level_count = self._export(binding.get_level_count)
        self.get_level_dimensions = self._export(binding.get_level_dimensions)
        self.get_level_downsample = self._export(binding.get_level_downsample)
        self.get_best_level_for_downsample = self._export(
            binding.get_best_level_for_downsample
        )
        self.read_region = self._export(binding.read_region)
        self.get_property_names = self._export(binding.get_property_names)
        self.get_property_value = self._export(binding.get_property_value)
        self.get_associated_image_names = self._export(
            binding.get_associated_image_names
        )
        self.get_associated_image_dimensions = self._export(
            binding.get_associated_image_dimensions
        )
        self.read_associated_image = self._export(binding.read_associated_image)
        self.get_icc_profile_size = self._export(binding.get_icc_profile_size)
        self.read_icc_profile = self._export(binding.read_icc_profile)
        self.get_associated_image_icc_profile_size = self._export(
            binding.get_associated_image_icc_profile_size
        )
        self.read_associated_image_icc_profile = self._export(
            binding.read_associated_image_icc_profile
        )
        self.cache_create = self._export(binding.cache_create)
        self.set_cache = self._export(binding.set_cache)
        self.cache_release = self._export(binding.cache_release)

    def __repr__(self) -> str:
        return f"<API of {self._binding!r}>"

    def _export(self, method: Callable[_P, _R]) -> _Function[_P, _R]:
        name = method.__name__

        @_functools.wraps(method)
        def function(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            return method(*args, **kwargs)

        function.__qualname__ = name
        function.__module__ = __name__
        exported = _cast("_Function[_P, _R]", function)
        exported.available = self._binding.available(name)
        return exported


# -- Finding the library ----------------------------------------------------


class _Candidate(NamedTuple):
    label: str
    load: Callable[[], _ct.CDLL]
    explicit: bool = False  # asked for by the user


def _library_names(system: str) -> tuple[str, ...]:
    """File names of OpenSlide 4 and 3 on a platform, newest first."""
    if system == "Windows":
        return ("libopenslide-1.dll", "libopenslide-0.dll")
    if system == "Darwin":
        return ("libopenslide.1.dylib", "libopenslide.0.dylib")
    return ("libopenslide.so.1", "libopenslide.so.0")


def _load_from_package(package: str) -> _ct.CDLL:
    """Load the library that a package like openslide-bin ships."""
    module = _importlib.import_module(package)
    library = getattr(module, "libopenslide1", None)  # what openslide-bin offers
    if isinstance(library, _ct.CDLL):
        return library
    if module.__file__ is None:
        raise OSError(f"package {package} has no files")
    name = _library_names(_platform.system())[0]
    return _ct.CDLL(_os.path.join(_os.path.dirname(module.__file__), name))


def _load_found_library() -> _ct.CDLL:
    """Load what ctypes.util.find_library finds (e.g. MacPorts on macOS)."""
    import ctypes.util

    path = ctypes.util.find_library("openslide")
    if path is None:
        raise OSError("ctypes.util.find_library('openslide') found nothing")
    return _ct.CDLL(path)


def _candidates(
    environ: Mapping[str, str], package: str | None, names: Sequence[str] | None
) -> list[_Candidate]:
    found = []
    override = environ.get(_ENV_VAR)
    if override:
        label = f"${_ENV_VAR} ({override})"
        found.append(_Candidate(label, _functools.partial(_ct.CDLL, override), True))
    if package:
        loader = _functools.partial(_load_from_package, package)
        found.append(_Candidate(f"package {package}", loader))
    system = _platform.system()
    for name in _library_names(system) if names is None else names:
        found.append(_Candidate(name, _functools.partial(_ct.CDLL, name)))
    if names is None and system == "Darwin":
        found.append(_Candidate("ctypes.util.find_library", _load_found_library))
    return found


def _search(
    environ: Mapping[str, str] | None = None,
    package: str | None = _BIN_PACKAGE,
    names: Sequence[str] | None = None,
) -> _Api:
    """Bind to the first OpenSlide library that loads.

    Parameters
    ----------
    environ: Union[Mapping[str, str], None], optional
        Environment holding the override variable (default: ``os.environ``)
    package: Union[str, None], optional
        Package shipping the library, or None to skip that candidate
    names: Union[Sequence[str], None], optional
        Library names for the dynamic loader (default: the platform's names)

    Returns
    -------
    _Api
        The public functions bound to that library

    Raises
    ------
    ModuleNotFoundError
        When no candidate loads; the message names each and why it failed

    """
    failures = []
    environ = _os.environ if environ is None else environ
    for candidate in _candidates(environ, package, names):
        try:
            api = _Api(_Binding(candidate.load()))
        except (ImportError, OSError, OpenSlideError) as exc:
            failures.append(f"  {candidate.label}: {type(exc).__name__}: {exc}")
            if candidate.explicit:
                _logger.warning("cannot load %s: %s", candidate.label, exc)
            continue
        _logger.debug("loaded OpenSlide through %s: %r", candidate.label, api)
        return api
    raise ModuleNotFoundError(
        "Couldn't load the OpenSlide library. Tried:\n"
        + "\n".join(failures)
        + f"\nInstall it with `pip install openslide-bin`, or set {_ENV_VAR} "
        "to the path of the library."
    )


def _load(path: str | _os.PathLike[str]) -> _Api:
    """Bind to the OpenSlide library at `path` (alongside the default one).

    Parameters
    ----------
    path: Union[str, os.PathLike]
        Path or name of the library, as ``ctypes.CDLL`` takes it

    Returns
    -------
    _Api
        The public functions bound to that library

    Raises
    ------
    OSError
        When the library cannot be loaded
    OpenSlideVersionError
        When it is older than OpenSlide 3.4.0

    """
    return _Api(_Binding(_ct.CDLL(_os.fspath(path))))


_API = _search()

open = _API.open
close = _API.close
detect_vendor = _API.detect_vendor
get_version = _API.get_version
get_error = _API.get_error
get_level_count = _API.get_level_count
get_level_dimensions = _API.get_level_dimensions
get_level_downsample = _API.get_level_downsample
get_best_level_for_downsample = _API.get_best_level_for_downsample
read_region = _API.read_region
get_property_names = _API.get_property_names
get_property_value = _API.get_property_value
get_associated_image_names = _API.get_associated_image_names
get_associated_image_dimensions = _API.get_associated_image_dimensions
read_associated_image = _API.read_associated_image
get_icc_profile_size = _API.get_icc_profile_size
read_icc_profile = _API.read_icc_profile
get_associated_image_icc_profile_size = _API.get_associated_image_icc_profile_size
read_associated_image_icc_profile = _API.read_associated_image_icc_profile
cache_create = _API.cache_create
set_cache = _API.set_cache
cache_release = _API.cache_release
