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

Every function that takes a slide raises :class:`OpenSlideError` when the slide
is in the error state (errors are sticky: once a call failed, every later call
fails with the same message; :func:`get_error` gives it), and
:class:`ctypes.ArgumentError` when an argument has the wrong type or the slide
or cache handle is closed, released or of another copy of the library.

Each C function is declared once, in :data:`_PROTOTYPES`; each public function
once, as a method of :class:`_Api`, the API bound to one loaded library.
"""

import ctypes as _ct
import ctypes.util as _ct_util
import functools as _functools
import importlib as _importlib
import logging as _logging
import os as _os
import platform as _platform
import sys as _sys
import types as _types
from collections.abc import Callable, Mapping, Sequence
from typing import (
    Any,
    Concatenate,
    Generic,
    NamedTuple,
    ParamSpec,
    Protocol,
    TypeAlias,
    TypeVar,
)
from typing import cast as _cast
from typing import overload as _overload

import numpy as _np
from PIL import Image

from dicomslide.openslide.errors import (
    OpenSlideError,
    OpenSlideUnsupportedFormatError,
    OpenSlideVersionError,
)

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

# (defined in dicomslide.openslide.errors, so that the facade names them
# without loading the library)


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


# -- Handles and argument converters ----------------------------------------
# ctypes calls from_param on every argument; what it raises reaches the caller
# as ctypes.ArgumentError.


class _Handle:
    """A pointer handed out by one copy of the C library, valid until let go of.

    Subclasses name what they hold (the words of their argument errors) and the
    C function that frees the pointer.
    """

    _reference = ""  # "Not an ... reference"
    _noun = ""  # "Passing undefined ... object"
    _gone = ""  # "Passing ... <noun> object" once let go of
    _free = ""  # the C function (without "openslide_") that frees the pointer

    def __init__(self, ptr: _ct.c_void_p, owner: "_Api") -> None:
        self._as_parameter_ = ptr
        self._owner = owner
        self._valid = True

    def __del__(self) -> None:
        if getattr(self, "_valid", False):
            self._valid = False
            self._owner._free(self._free, self._as_parameter_)

    def invalidate(self) -> None:
        """Mark the handle let go of: it is no longer accepted."""
        self._valid = False

    @classmethod
    def checked(cls, obj: object, owner: "_Api") -> "_Handle":
        """`obj` if it is a live handle of this class and library (ctypes argument)."""
        if obj.__class__ is not cls:
            raise ValueError(f"Not an {cls._reference} reference")
        if not obj._as_parameter_:
            raise ValueError(f"Passing undefined {cls._noun} object")
        if not obj._valid:
            raise ValueError(f"Passing {cls._gone} {cls._noun} object")
        if obj._owner is not owner:
            raise ValueError(f"Passing {cls._noun} object of another OpenSlide library")
        return obj


class _OpenSlide(_Handle):
    """Handle of an open slide.

    Not intended for direct instantiation: use :func:`open` instead. The slide is
    closed by :func:`close` or, failing that, when the handle is garbage-collected.
    """

    _reference, _noun, _gone, _free = "OpenSlide", "slide", "closed", "close"


class _OpenSlideCache(_Handle):
    """Handle of an OpenSlide tile cache.

    Not intended for direct instantiation: use :func:`cache_create` instead. The
    cache is released by :func:`cache_release` or, failing that, when the handle
    is garbage-collected; slides that use it keep it alive in the library.
    """

    _reference, _noun, _gone, _free = (
        "OpenSlide cache",
        "cache",
        "released",
        "cache_release",
    )


class _HandleArg:
    """A live handle of one class that belongs to one library."""

    def __init__(self, kind: type[_Handle], owner: "_Api") -> None:
        self._kind = kind
        self._owner = owner

    def from_param(self, obj: object) -> _Handle:
        return self._kind.checked(obj, self._owner)


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


def _pixels(width: int, height: int) -> Any:
    return (_ct.c_uint32 * (width * height))()


# -- The C functions ----------------------------------------------------------

_SLIDE = _OpenSlide  # argument placeholders, made _HandleArg of each library
_CACHE = _OpenSlideCache
_INT64_P = _ct.POINTER(_ct.c_int64)
_UINT32_P = _ct.POINTER(_ct.c_uint32)
_CHAR_P = _ct.POINTER(_ct.c_char)
_NAMES_P = _ct.POINTER(_ct.c_char_p)


class _Prototype(NamedTuple):
    restype: Any
    argtypes: tuple[Any, ...]
    check: str  # result handler: _Api._check_<check>
    since: str | None = None  # OpenSlide version that added it; None: 3.4.0


#: Every C function used, by name without its "openslide_" prefix.
_PROTOTYPES = {
    "detect_vendor": _Prototype(_ct.c_char_p, (_FilenameArg,), "string"),
    "open": _Prototype(_ct.c_void_p, (_FilenameArg,), "open"),
    "close": _Prototype(None, (_SLIDE,), "let_go"),
    "get_error": _Prototype(_ct.c_char_p, (_SLIDE,), "string"),
    "get_version": _Prototype(_ct.c_char_p, (), "string"),
    "get_level_count": _Prototype(_ct.c_int32, (_SLIDE,), "error"),
    "get_level_dimensions": _Prototype(
        None, (_SLIDE, _ct.c_int32, _INT64_P, _INT64_P), "error"
    ),
    "get_level_downsample": _Prototype(_ct.c_double, (_SLIDE, _ct.c_int32), "error"),
    "get_best_level_for_downsample": _Prototype(
        _ct.c_int32, (_SLIDE, _ct.c_double), "error"
    ),
    "read_region": _Prototype(
        None,
        (_SLIDE, _UINT32_P, _ct.c_int64, _ct.c_int64, _ct.c_int32)
        + (_ct.c_int64, _ct.c_int64),
        "error",
    ),
    "get_property_names": _Prototype(_NAMES_P, (_SLIDE,), "names"),
    "get_property_value": _Prototype(_ct.c_char_p, (_SLIDE, _Utf8Arg), "error"),
    "get_associated_image_names": _Prototype(_NAMES_P, (_SLIDE,), "names"),
    "get_associated_image_dimensions": _Prototype(
        None, (_SLIDE, _Utf8Arg, _INT64_P, _INT64_P), "error"
    ),
    "read_associated_image": _Prototype(None, (_SLIDE, _Utf8Arg, _UINT32_P), "error"),
    "get_icc_profile_size": _Prototype(_ct.c_int64, (_SLIDE,), "error", "4.0.0"),
    "read_icc_profile": _Prototype(None, (_SLIDE, _CHAR_P), "error", "4.0.0"),
    "get_associated_image_icc_profile_size": _Prototype(
        _ct.c_int64, (_SLIDE, _Utf8Arg), "error", "4.0.0"
    ),
    "read_associated_image_icc_profile": _Prototype(
        None, (_SLIDE, _Utf8Arg, _CHAR_P), "error", "4.0.0"
    ),
    "cache_create": _Prototype(_ct.c_void_p, (_SizeArg,), "cache", "4.0.0"),
    "set_cache": _Prototype(None, (_SLIDE, _CACHE), "error", "4.0.0"),
    "cache_release": _Prototype(None, (_CACHE,), "let_go", "4.0.0"),
}


class _Unavailable:
    """Stand-in for a C function that the loaded library lacks."""

    available = False

    def __init__(self, name: str, minimum_version: str) -> None:
        self.__name__ = f"openslide_{name}"
        self.minimum_version = minimum_version

    def __call__(self, *args: Any) -> Any:
        raise OpenSlideVersionError(self.minimum_version)


# -- Public functions -----------------------------------------------------------

_P = ParamSpec("_P")
_R = TypeVar("_R")
_R_co = TypeVar("_R_co", covariant=True)


class _Function(Protocol[_P, _R_co]):
    """A public function: callable, and telling whether the library has it."""

    available: bool

    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _R_co: ...


class _Public(Generic[_P, _R]):
    """A method of :class:`_Api` that each API exports as a plain function.

    The function has the method's name, signature and docstring, and an
    ``available`` attribute: whether the library has the C functions it calls.
    """

    def __init__(
        self, method: Callable[Concatenate["_Api", _P], _R], calls: tuple[str, ...]
    ) -> None:
        self._method = method
        self._calls = calls or (method.__name__,)

    @_overload
    def __get__(self, api: None, owner: type["_Api"]) -> "_Public[_P, _R]": ...
    @_overload
    def __get__(self, api: "_Api", owner: type["_Api"]) -> _Function[_P, _R]: ...
    def __get__(self, api: "_Api | None", owner: type["_Api"]) -> Any:
        if api is None:
            return self
        bound: Callable[_P, _R] = _types.MethodType(self._method, api)

        @_functools.wraps(bound)
        def function(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            return bound(*args, **kwargs)

        function.__qualname__ = function.__name__
        function.__module__ = __name__
        exported = _cast("_Function[_P, _R]", function)
        exported.available = all(api.c[name].available for name in self._calls)
        api.__dict__[function.__name__] = exported  # made once per API
        return exported


def _public(
    *calls: str,
) -> Callable[[Callable[Concatenate["_Api", _P], _R]], _Public[_P, _R]]:
    """Make a method public; `calls` names its C functions if not its namesake."""
    return lambda method: _Public(method, calls)


class _Api:
    """The public functions, bound to one loaded copy of the C library.

    Parameters
    ----------
    library: ctypes.CDLL
        The loaded OpenSlide library
    origin: str
        Where the library was found, for messages

    Raises
    ------
    OpenSlideVersionError
        When the library is older than OpenSlide 3.4.0

    """

    def __init__(self, library: _ct.CDLL, origin: str) -> None:
        self.library = library
        self.origin = origin
        self.c = {
            name: self._resolve(name, proto) for name, proto in _PROTOTYPES.items()
        }
        # Destructors free a pointer without the checks of the handle argument.
        self._frees = {}
        for name in ("close", "cache_release"):
            if self.c[name].available:
                free = library["openslide_" + name]
                free.argtypes, free.restype = [_ct.c_void_p], None
                self._frees[name] = free

    def __repr__(self) -> str:
        return f"<OpenSlide {self.get_version()} from {self.origin}>"

    def _resolve(self, name: str, proto: _Prototype) -> Any:
        try:
            # library[...] makes a fresh object: its settings are not shared with
            # other users of the library (openslide-python sets getattr()'s ones).
            func: Any = self.library["openslide_" + name]
        except AttributeError:
            if proto.since is None:
                raise OpenSlideVersionError("3.4.0") from None
            return _Unavailable(name, proto.since)
        func.argtypes = [
            _HandleArg(arg, self) if arg in (_SLIDE, _CACHE) else arg
            for arg in proto.argtypes
        ]
        func.restype = proto.restype
        func.errcheck = getattr(self, "_check_" + proto.check)
        func.available = True
        return func

    def _free(self, name: str, ptr: _ct.c_void_p) -> None:
        self._frees[name](ptr)

    # -- result handlers (ctypes errcheck)

    def _raise_for_error(self, slide: _OpenSlide) -> None:
        message = self.c["get_error"](slide)
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
        message = self.c["get_error"](slide)
        if message is not None:
            self.c["close"](slide)
            raise OpenSlideError(message)
        return slide

    def _check_cache(self, result: int, func: Any, args: Any) -> _OpenSlideCache:
        return _OpenSlideCache(_ct.c_void_p(result), self)

    def _check_let_go(self, result: None, func: Any, args: tuple[Any, ...]) -> None:
        args[0].invalidate()

    # -- the public functions

    @_public()
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

        """
        return _cast(_OpenSlide, self.c["open"](filename))

    @_public()
    def close(self, slide: _OpenSlide) -> None:
        """Close a slide; its handle is no longer accepted afterwards."""
        self.c["close"](slide)

    @_public()
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

        """
        return _cast("str | None", self.c["detect_vendor"](filename))

    @_public()
    def get_version(self) -> str:
        """Return the version of the OpenSlide library, e.g. ``"4.0.1"``."""
        return _cast(str, self.c["get_version"]())

    @_public()
    def get_error(self, slide: _OpenSlide) -> str | None:
        """Return the error that put a slide into its error state, or None."""
        return _cast("str | None", self.c["get_error"](slide))

    @_public()
    def get_level_count(self, slide: _OpenSlide) -> int:
        """Return the number of resolution levels of a slide."""
        return _cast(int, self.c["get_level_count"](slide))

    @_public()
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

        """
        width, height = _ct.c_int64(), _ct.c_int64()
        self.c["get_level_dimensions"](
            slide, level, _ct.byref(width), _ct.byref(height)
        )
        return width.value, height.value

    @_public()
    def get_level_downsample(self, slide: _OpenSlide, level: int) -> float:
        """Return the downsample of a level relative to level 0 (-1.0 if none)."""
        return _cast(float, self.c["get_level_downsample"](slide, level))

    @_public()
    def get_best_level_for_downsample(
        self, slide: _OpenSlide, downsample: float
    ) -> int:
        """Return the level best suited to display a downsample factor."""
        return _cast(int, self.c["get_best_level_for_downsample"](slide, downsample))

    @_public()
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
            When `w` or `h` is negative (before anything is allocated), or when
            the read fails

        """
        if w < 0 or h < 0:
            # The library would say so too, but only after the buffer allocation.
            raise OpenSlideError(
                f"negative width ({w}) or negative height ({h}) not allowed"
            )
        if w == 0 or h == 0:
            return Image.new("RGBA", (w, h))
        buf = _pixels(w, h)
        self.c["read_region"](slide, buf, x, y, level, w, h)
        return _argb_to_image(buf, (w, h))

    @_public()
    def get_property_names(self, slide: _OpenSlide) -> list[str]:
        """Return the names of the properties of a slide."""
        return _cast("list[str]", self.c["get_property_names"](slide))

    @_public()
    def get_property_value(self, slide: _OpenSlide, name: str | bytes) -> str | None:
        """Return the value of a property of a slide, or None if it has none."""
        return _cast("str | None", self.c["get_property_value"](slide, name))

    @_public()
    def get_associated_image_names(self, slide: _OpenSlide) -> list[str]:
        """Return the names of the associated images (label, thumbnail, ...)."""
        return _cast("list[str]", self.c["get_associated_image_names"](slide))

    @_public()
    def get_associated_image_dimensions(
        self, slide: _OpenSlide, name: str | bytes
    ) -> tuple[int, int]:
        """Return the size of an associated image; ``(-1, -1)`` if there is none."""
        width, height = _ct.c_int64(), _ct.c_int64()
        self.c["get_associated_image_dimensions"](
            slide, name, _ct.byref(width), _ct.byref(height)
        )
        return width.value, height.value

    @_public("get_associated_image_dimensions", "read_associated_image")
    def read_associated_image(
        self, slide: _OpenSlide, name: str | bytes
    ) -> Image.Image:
        """Read an associated image as RGBA (not premultiplied).

        Raises
        ------
        KeyError
            When the slide has no associated image of that name (the exception is
            a ValueError too)

        """
        width, height = self.get_associated_image_dimensions(slide, name)
        if width < 0 or height < 0:
            raise _UnknownAssociatedImageError(name)
        if width == 0 or height == 0:
            return Image.new("RGBA", (width, height))
        buf = _pixels(width, height)
        self.c["read_associated_image"](slide, name, buf)
        return _argb_to_image(buf, (width, height))

    @_public()
    def get_icc_profile_size(self, slide: _OpenSlide) -> int:
        """Return the size in bytes of the ICC profile of the slide (0 if none)."""
        return _cast(int, self.c["get_icc_profile_size"](slide))

    @_public("get_icc_profile_size", "read_icc_profile")
    def read_icc_profile(self, slide: _OpenSlide) -> bytes | None:
        """Read the ICC profile of the slide's pyramid; None if there is none."""
        size = self.get_icc_profile_size(slide)
        if size == 0:
            return None
        buf = (_ct.c_char * size)()
        self.c["read_icc_profile"](slide, buf)
        return buf.raw

    @_public()
    def get_associated_image_icc_profile_size(
        self, slide: _OpenSlide, name: str | bytes
    ) -> int:
        """Return the size of an associated image's ICC profile (0: none, -1:
        no such image)."""
        return _cast(int, self.c["get_associated_image_icc_profile_size"](slide, name))

    @_public(
        "get_associated_image_icc_profile_size", "read_associated_image_icc_profile"
    )
    def read_associated_image_icc_profile(
        self, slide: _OpenSlide, name: str | bytes
    ) -> bytes | None:
        """Read the ICC profile of an associated image; None if it has none.

        Raises
        ------
        KeyError
            When the slide has no associated image of that name (the exception is
            a ValueError too)

        """
        size = self.get_associated_image_icc_profile_size(slide, name)
        if size < 0:
            raise _UnknownAssociatedImageError(name)
        if size == 0:
            return None
        buf = (_ct.c_char * size)()
        self.c["read_associated_image_icc_profile"](slide, name, buf)
        return buf.raw

    @_public()
    def cache_create(self, capacity: int) -> _OpenSlideCache:
        """Create a tile cache of `capacity` bytes that slides can share."""
        return _cast(_OpenSlideCache, self.c["cache_create"](capacity))

    @_public()
    def set_cache(self, slide: _OpenSlide, cache: _OpenSlideCache) -> None:
        """Make a slide use a tile cache instead of its own."""
        self.c["set_cache"](slide, cache)

    @_public()
    def cache_release(self, cache: _OpenSlideCache) -> None:
        """Release a tile cache; slides that use it keep it until they close."""
        self.c["cache_release"](cache)


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
    path = _ct_util.find_library("openslide")
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
            api = _Api(candidate.load(), candidate.label)
        except (ImportError, OSError, OpenSlideError) as exc:
            failures.append(f"  {candidate.label}: {type(exc).__name__}: {exc}")
            if candidate.explicit:
                _logger.warning("cannot load %s: %s", candidate.label, exc)
            continue
        _logger.debug("loaded %r", api)
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
    return _Api(_ct.CDLL(_os.fspath(path)), _os.fspath(path))


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
