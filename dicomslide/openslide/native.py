"""The native backend: slides that the OpenSlide C library reads.

:class:`NativeBackend` implements :class:`dicomslide.openslide._backend.SlideBackend`
over :mod:`dicomslide.openslide.lowlevel`. It keeps the library's semantics:
missing or unsupported files raise :class:`OpenSlideUnsupportedFormatError`,
errors are sticky (once a call fails, every later call on the slide fails with
the same message), and a closed slide raises :class:`ctypes.ArgumentError`.

Every call into the library holds a use of the slide handle; :meth:`close` waits
until no call is in progress before it closes the handle, and calls that arrive
while it closes wait for it and then fail as calls on a closed slide do. So a
slide closed in one thread while others read from it never crashes the process.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from PIL import Image

from dicomslide.openslide.cache import OpenSlideCache, library_cache
from dicomslide.openslide.library import OpenSlideUnsupportedFormatError, lowlevel

_logger = logging.getLogger(__name__)

_R = TypeVar("_R")

_GUARDS: weakref.WeakSet[_HandleGuard] = weakref.WeakSet()


def _reset_guards_after_fork() -> None:
    # Calls in progress in other threads at fork time do not exist in the child.
    for guard in list(_GUARDS):
        guard._reset()


os.register_at_fork(after_in_child=_reset_guards_after_fork)


class _HandleGuard:
    """Counts the calls that use a handle, so that it is closed between calls."""

    def __init__(self) -> None:
        self._reset()
        _GUARDS.add(self)

    def _reset(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._users = 0
        self._closing = False

    def call(self, function: Callable[..., _R], *args: Any) -> _R:
        """Call `function` while no close is in progress, and hold off closes."""
        condition = self._condition
        with condition:
            while self._closing:
                condition.wait()
            self._users += 1
        try:
            return function(*args)
        finally:
            with condition:
                self._users -= 1
                if not self._users:
                    condition.notify_all()

    def close(self, closer: Callable[[], None]) -> None:
        """Call `closer` once every call in progress has returned."""
        condition = self._condition
        with condition:
            while self._closing:
                condition.wait()
            self._closing = True
            while self._users:
                condition.wait()
        try:
            closer()
        finally:
            with condition:
                self._closing = False
                condition.notify_all()


class _NativeProperties(Mapping[str, str]):
    """Live view of a slide's properties: every access asks the library."""

    def __init__(self, backend: NativeBackend) -> None:
        self._backend = backend

    def _names(self) -> list[str]:
        backend = self._backend
        return backend._guard.call(lowlevel.get_property_names, backend._handle)

    def __getitem__(self, name: str) -> str:
        backend = self._backend
        value = backend._guard.call(lowlevel.get_property_value, backend._handle, name)
        if value is None:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


class NativeBackend:
    """A slide opened by the OpenSlide C library.

    Not intended for direct instantiation: use :meth:`open`.

    Parameters
    ----------
    filename: Union[str, bytes, os.PathLike]
        Path the slide was opened from
    handle: dicomslide.openslide.lowlevel._OpenSlide
        Handle of the open slide

    """

    def __init__(self, filename: lowlevel.Filename, handle: Any) -> None:
        self._filename = filename
        self._handle = handle
        self._guard = _HandleGuard()
        self._icc_profile: bytes | None = None
        if lowlevel.read_icc_profile.available:
            self._icc_profile = self._guard.call(lowlevel.read_icc_profile, handle)

    @classmethod
    def open(cls, filename: lowlevel.Filename) -> NativeBackend:
        """Open a slide file with the OpenSlide library, if one is loaded.

        Parameters
        ----------
        filename: Union[str, bytes, os.PathLike]
            Path of the slide file

        Returns
        -------
        dicomslide.openslide.native.NativeBackend
            The open slide

        Raises
        ------
        OpenSlideUnsupportedFormatError
            When the file is missing or of no format that OpenSlide reads, or
            no OpenSlide library is loaded
        OpenSlideError
            When OpenSlide recognises the file but cannot open it
        ctypes.ArgumentError
            When `filename` is not a str, bytes or os.PathLike

        """
        if lowlevel is None:
            raise OpenSlideUnsupportedFormatError(
                "Unsupported or missing image file (no OpenSlide library is loaded)"
            )
        handle = lowlevel.open(filename)
        _logger.debug("opened %r with OpenSlide", filename)
        return cls(filename, handle)

    @staticmethod
    def detect_vendor(filename: lowlevel.Filename) -> str | None:
        """Return the format vendor of a file as the OpenSlide library sees it.

        Parameters
        ----------
        filename: Union[str, bytes, os.PathLike]
            Path of the file

        Returns
        -------
        Union[str, None]
            Vendor, or None if OpenSlide does not recognise the file or no
            OpenSlide library is loaded

        """
        if lowlevel is None:
            return None
        return lowlevel.detect_vendor(filename)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self._filename!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self).open, (self._filename,))

    def _call(self, function: Callable[..., _R], *args: Any) -> _R:
        return self._guard.call(function, self._handle, *args)

    def _levels(self) -> tuple[tuple[tuple[int, int], float], ...]:
        handle = self._handle
        return tuple(
            (
                lowlevel.get_level_dimensions(handle, level),
                lowlevel.get_level_downsample(handle, level),
            )
            for level in range(lowlevel.get_level_count(handle))
        )

    @property
    def level_dimensions(self) -> tuple[tuple[int, int], ...]:
        """Tuple[Tuple[int, int], ...]: (width, height) of every level"""
        return tuple(size for size, _ in self._guard.call(self._levels))

    @property
    def level_downsamples(self) -> tuple[float, ...]:
        """Tuple[float, ...]: downsample of every level relative to level 0"""
        return tuple(factor for _, factor in self._guard.call(self._levels))

    @property
    def properties(self) -> Mapping[str, str]:
        """Mapping[str, str]: OpenSlide properties, read when accessed"""
        return _NativeProperties(self)

    @property
    def associated_image_names(self) -> tuple[str, ...]:
        """Tuple[str, ...]: names of the associated images"""
        return tuple(self._call(lowlevel.get_associated_image_names))

    def read_associated_image(self, name: str) -> Image.Image:
        """Read an associated image.

        Parameters
        ----------
        name: str
            Name of the image

        Returns
        -------
        PIL.Image.Image
            RGBA image (not premultiplied)

        Raises
        ------
        KeyError
            When the slide has no associated image of that name

        """
        return self._call(lowlevel.read_associated_image, name)

    def associated_image_icc_profile(self, name: str) -> bytes | None:
        """Read the ICC profile of an associated image.

        Parameters
        ----------
        name: str
            Name of the image

        Returns
        -------
        Union[bytes, None]
            The profile; None if the image has none or the library is older than
            OpenSlide 4.0

        """
        if not lowlevel.read_associated_image_icc_profile.available:
            return None
        return self._call(lowlevel.read_associated_image_icc_profile, name)

    @property
    def icc_profile(self) -> bytes | None:
        """Union[bytes, None]: ICC profile of the slide, read when it was opened"""
        return self._icc_profile

    def read_region(
        self, location: tuple[int, int], level: int, size: tuple[int, int]
    ) -> Image.Image:
        """Read a region as straight-alpha RGBA; outside the slide transparent.

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
            RGBA image

        """
        x, y = location
        width, height = size
        return self._call(lowlevel.read_region, x, y, level, width, height)

    def get_best_level_for_downsample(self, downsample: float) -> int:
        """Return the level OpenSlide picks for a downsample factor.

        Parameters
        ----------
        downsample: float
            Desired downsample factor

        Returns
        -------
        int
            Level number

        """
        return self._call(lowlevel.get_best_level_for_downsample, downsample)

    def set_cache(self, cache: OpenSlideCache) -> None:
        """Use a tile cache that slides can share.

        Parameters
        ----------
        cache: dicomslide.openslide.OpenSlideCache
            The cache; its library handle is created on first use

        Raises
        ------
        OpenSlideVersionError
            When the library is older than OpenSlide 4.0

        """
        self._call(lowlevel.set_cache, library_cache(cache))

    def close(self) -> None:
        """Close the slide once no call is in progress.

        Raises
        ------
        ctypes.ArgumentError
            When the slide is closed already

        """
        self._guard.close(lambda: lowlevel.close(self._handle))
