"""A thread-safe cache of decoded frames, bounded in bytes."""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import numpy as np

#: Byte budget of the cache that images share unless they are given their own.
DEFAULT_CACHE_SIZE = int(os.environ.get("DICOMSLIDE_CACHE_SIZE", 128 * 1024 * 1024))

_CACHES: weakref.WeakSet[FrameCache] = weakref.WeakSet()


def _reset_locks_after_fork() -> None:
    # A lock held by another thread at fork time would stay locked forever.
    for cache in list(_CACHES):
        cache._lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_locks_after_fork)


class FrameCache:
    """Least-recently-used cache of decoded frames, bounded in bytes.

    Parameters
    ----------
    max_bytes: int
        Upper bound on the summed size of the cached arrays

    Note
    ----
    Cached arrays are made read-only, so that no caller can alter a frame
    another caller will be given later.

    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_SIZE) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self._max_bytes = int(max_bytes)
        self._entries: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._nbytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        _CACHES.add(self)

    def __reduce__(self) -> tuple[Any, ...]:
        # Frames don't travel: the shared cache stays the receiver's shared
        # cache, any other arrives empty with the same budget.
        if self is _default_cache:
            return (get_default_cache, ())
        return (FrameCache, (self._max_bytes,))

    @property
    def max_bytes(self) -> int:
        """int: upper bound on the summed size of cached frames in bytes"""
        return self._max_bytes

    @property
    def nbytes(self) -> int:
        """int: summed size of the cached frames in bytes"""
        return self._nbytes

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def reserve(self, nbytes: int) -> None:
        """Grow the byte budget so that it holds at least `nbytes`.

        Parameters
        ----------
        nbytes: int
            Number of bytes the cache should be able to hold

        """
        with self._lock:
            self._max_bytes = max(self._max_bytes, int(nbytes))

    def get(self, key: Hashable) -> np.ndarray | None:
        """Get a cached frame and mark it as recently used.

        Parameters
        ----------
        key: Hashable
            Key of the frame

        Returns
        -------
        Union[numpy.ndarray, None]
            The frame, or ``None`` if it is not cached

        """
        with self._lock:
            array = self._entries.get(key)
            if array is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return array

    def put(self, key: Hashable, array: np.ndarray) -> None:
        """Cache a frame, evicting the least recently used ones if needed.

        Parameters
        ----------
        key: Hashable
            Key of the frame
        array: numpy.ndarray
            Decoded frame

        """
        if array.nbytes > self._max_bytes:
            return
        array.flags.writeable = False
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._nbytes -= previous.nbytes
            self._entries[key] = array
            self._nbytes += array.nbytes
            while self._nbytes > self._max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._nbytes -= evicted.nbytes

    def clear(self) -> None:
        """Remove all frames."""
        with self._lock:
            self._entries.clear()
            self._nbytes = 0


_default_cache: FrameCache | None = None
_default_lock = threading.Lock()


def get_default_cache() -> FrameCache:
    """Get the frame cache shared by images that are not given their own.

    Its budget is :data:`DEFAULT_CACHE_SIZE` bytes (128 MiB, or the value of
    the ``DICOMSLIDE_CACHE_SIZE`` environment variable).

    Returns
    -------
    dicomslide.cache.FrameCache
        Shared cache

    """
    global _default_cache
    with _default_lock:
        if _default_cache is None:
            _default_cache = FrameCache(DEFAULT_CACHE_SIZE)
        return _default_cache
