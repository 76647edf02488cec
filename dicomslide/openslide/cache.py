"""The tile cache that slides of every backend can share: :class:`OpenSlideCache`.

One object stands for two caches: DICOM slides keep their decoded frames in a
:class:`dicomslide.cache.FrameCache`, and slides of the OpenSlide library in a
cache of the library, made the first time the object is set on such a slide.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any

from dicomslide.cache import FrameCache
from dicomslide.openslide import library
from dicomslide.openslide.library import OpenSlideError

__all__ = ["OpenSlideCache", "library_cache"]


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


def library_cache(cache: OpenSlideCache) -> Any:
    """The OpenSlide library's cache of an :class:`OpenSlideCache` (package-internal).

    It has the same capacity and is made on first use, so that a cache used by
    DICOM slides only needs no library.

    Parameters
    ----------
    cache: dicomslide.openslide.OpenSlideCache
        The cache

    Returns
    -------
    dicomslide.openslide.lowlevel._OpenSlideCache
        Handle of the library's cache

    Raises
    ------
    OpenSlideError
        When no OpenSlide library is loaded
    OpenSlideVersionError
        When the library is older than OpenSlide 4.0

    """
    with cache._lock:
        if cache._native is None:
            lowlevel = library.load()
            if lowlevel is None:
                raise OpenSlideError("no OpenSlide library is loaded")
            cache._native = lowlevel.cache_create(cache._capacity)
        return cache._native
