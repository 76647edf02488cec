"""The DICOM backend's slide object: :class:`DicomBackend`.

It implements :class:`dicomslide.openslide._backend.SlideBackend` over the
levels and associated images of :mod:`.levels` and keeps OpenSlide's state
rules: thread-safe calls, sticky errors after a failed read, and
:class:`ctypes.ArgumentError` after :meth:`DicomBackend.close`. A read on whole
level pixels is the level's pixels themselves; any other read is painted as
OpenSlide's cairo paints it (:mod:`.painting`), in OpenSlide's areas of
:data:`.painting.AREA` pixels.
"""

from __future__ import annotations

import ctypes
import threading
import types
import weakref
from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image

from dicomslide._compat import rgba_image
from dicomslide.cache import FrameCache
from dicomslide.errors import DicomSlideError
from dicomslide.image import TiledImage
from dicomslide.openslide.abstract import best_level
from dicomslide.openslide.cache import OpenSlideCache
from dicomslide.openslide.dicom.levels import (
    Level,
    associated_images,
    is_grey,
    levels_of,
)
from dicomslide.openslide.dicom.painting import AREA, paint_area
from dicomslide.openslide.dicom.properties import slide_properties
from dicomslide.openslide.dicom.sources import find_slide
from dicomslide.openslide.library import (
    OpenSlideError,
)
from dicomslide.slide import Slide

__all__ = ["DicomBackend"]


def _straight_image(pixels: np.ndarray) -> Image.Image:
    """Premultiplied RGBA to a straight-alpha RGBA image, as openslide-python."""
    if pixels.size == 0 or bool(np.all(pixels[..., 3] == 255)):
        return rgba_image(pixels)
    height, width = pixels.shape[:2]
    data = np.ascontiguousarray(pixels)
    return Image.frombuffer("RGBA", (width, height), data, "raw", "RGBa", 0, 1)


class DicomBackend:
    """OpenSlide's view of a DICOM whole slide image.

    Use :meth:`open`. Every method may be called from several threads at once.
    After :meth:`close` every method raises :class:`ctypes.ArgumentError`, as
    openslide-python does for a closed handle. After a read failed every method
    raises :class:`OpenSlideError` with that failure's message (OpenSlide's
    errors are sticky).

    Parameters
    ----------
    slide: dicomslide.Slide
        Slide to show
    origin: Any, optional
        What the backend was opened from (a path or the slide), for pickling

    Raises
    ------
    OpenSlideUnsupportedFormatError
        When the slide cannot be shown as RGBA
    OpenSlideError
        When its metadata are broken

    """

    def __init__(self, slide: Slide, origin: Any = None) -> None:
        self._origin = slide if origin is None else origin
        self._lock = threading.Lock()
        self._closed = False
        self._error: str | None = None
        self._slide: Slide | None = slide
        try:
            self._setup(slide)
        except (OpenSlideError, KeyError):
            raise
        except (DicomSlideError, ValueError, AttributeError, TypeError) as error:
            raise OpenSlideError(f"cannot open DICOM slide: {error}") from error

    # -- opening ---------------------------------------------------------------

    @classmethod
    def open(cls, source: Any) -> DicomBackend:
        """Open a DICOM slide.

        Parameters
        ----------
        source: Union[dicomslide.Slide, str, os.PathLike]
            A slide (found in local files or over DICOMweb); a folder that holds
            one slide; or one file of a slide, whose folder (and its subfolders)
            is searched for the other images of the slide, as OpenSlide opens a
            series from one of its files

        Returns
        -------
        DicomBackend
            The open slide

        Raises
        ------
        OpenSlideUnsupportedFormatError
            When `source` is not a DICOM whole slide image, when a folder holds
            several slides (their container identifiers are listed; open one of
            their files instead), or when the slide cannot be shown as RGBA
        OpenSlideError
            When the files are DICOM whole slide images but broken

        """
        slide, origin = find_slide(source)
        return cls(slide, origin=origin)

    def _setup(self, slide: Slide) -> None:
        self._levels = self._base_levels = levels_of(slide)
        self._cached_levels: weakref.WeakKeyDictionary[FrameCache, tuple[Level, ...]]
        self._cached_levels = weakref.WeakKeyDictionary()
        # ICC profiles: one bytes object per distinct profile
        self._profiles: dict[bytes, bytes] = {}
        self._icc = self._intern(self._levels[0].image.icc_profile)
        # found on first use: reading the slide needs no LABEL or OVERVIEW
        # image, and making them makes their frame stores
        self._found: tuple[dict[str, TiledImage], dict[str, bytes | None]] | None
        self._found = None
        # built on first use: flattening the metadata into ``dicom.*``
        # properties parses every sequence of the header
        self._properties: Mapping[str, str] | None = None

    def _intern(self, profile: bytes | None) -> bytes | None:
        if not profile:
            return None
        return self._profiles.setdefault(bytes(profile), bytes(profile))

    def _associated(self) -> tuple[dict[str, TiledImage], dict[str, bytes | None]]:
        """The associated images by name, and their ICC profiles (found once)."""
        found = self._found
        if found is None:
            slide = self.slide
            try:
                images = associated_images(slide)
                profiles = {
                    name: self._intern(image.icc_profile)
                    for name, image in images.items()
                }
            except (DicomSlideError, ValueError, AttributeError, TypeError) as error:
                raise OpenSlideError(
                    f"cannot read the associated images: {error}"
                ) from error
            with self._lock:
                if self._found is None:
                    self._found = (images, profiles)
                found = self._found
        return found

    # -- state -----------------------------------------------------------------

    def _check(self) -> None:
        if self._closed:
            # what openslide-python raises for a closed handle
            raise ctypes.ArgumentError(
                "argument 1: ValueError: Passing closed slide object"
            )
        if self._error is not None:
            raise OpenSlideError(self._error)

    def _fail(self, error: BaseException) -> OpenSlideError:
        message = str(error) or type(error).__name__
        with self._lock:
            if self._error is None:
                self._error = message
        return OpenSlideError(message)

    # -- SlideBackend ----------------------------------------------------------

    @property
    def level_dimensions(self) -> tuple[tuple[int, int], ...]:
        """Tuple[Tuple[int, int], ...]: (width, height) of every level"""
        self._check()
        return tuple((level.width, level.height) for level in self._base_levels)

    @property
    def level_downsamples(self) -> tuple[float, ...]:
        """Tuple[float, ...]: downsample of every level relative to level 0"""
        self._check()
        return tuple(level.downsample for level in self._base_levels)

    @property
    def properties(self) -> Mapping[str, str]:
        """Mapping[str, str]: OpenSlide properties (``openslide.*``, ``dicom.*``)"""
        self._check()
        if self._properties is None:
            images, profiles = self._associated()
            self._properties = types.MappingProxyType(
                slide_properties(self._base_levels, images, self._icc, profiles)
            )
        return self._properties

    @property
    def associated_image_names(self) -> tuple[str, ...]:
        """Tuple[str, ...]: names of the associated images, sorted"""
        self._check()
        return tuple(sorted(self._associated()[0]))

    def read_associated_image(self, name: str) -> Image.Image:
        """Read an associated image.

        Parameters
        ----------
        name: str
            ``label``, ``macro`` or ``thumbnail``

        Returns
        -------
        PIL.Image.Image
            Opaque RGBA image

        Raises
        ------
        KeyError
            When the slide has no such associated image
        OpenSlideError
            When reading fails

        """
        self._check()
        image = self._associated()[0].get(name)
        if image is None:
            raise KeyError(name)
        try:
            grey = is_grey(image, name)
            matrix = image.get_total_pixel_matrix(0, 0, correct_color=False)
            rows, columns = image.size
            pixels = matrix.read_region((0, 0), (rows, columns))
        except OpenSlideError:
            raise
        except Exception as error:
            raise self._fail(error) from error
        rgba = np.empty((rows, columns, 4), dtype=np.uint8)
        rgba[..., :3] = pixels[..., :1] if grey else pixels[..., :3]
        rgba[..., 3] = 255
        return rgba_image(rgba)

    def associated_image_icc_profile(self, name: str) -> bytes | None:
        """ICC profile of an associated image, if it has one.

        Parameters
        ----------
        name: str
            Name of the associated image

        Returns
        -------
        Union[bytes, None]
            The profile (the same object for equal profiles of one slide)

        """
        self._check()
        images, profiles = self._associated()
        if name not in images:
            raise KeyError(name)
        return profiles.get(name)

    @property
    def icc_profile(self) -> bytes | None:
        """Union[bytes, None]: ICC profile of level 0, if it has one"""
        self._check()
        return self._icc

    def get_best_level_for_downsample(self, downsample: float) -> int:
        """The level OpenSlide 4.0.1 picks for a downsample.

        The last level whose downsample is not above `downsample` (level 0 when
        `downsample` is below 1), compared exactly, as OpenSlide does.

        Parameters
        ----------
        downsample: float
            Wanted downsample

        Returns
        -------
        int
            Level

        """
        self._check()
        return best_level([level.downsample for level in self._base_levels], downsample)

    def read_region(
        self, location: tuple[int, int], level: int, size: tuple[int, int]
    ) -> Image.Image:
        """Read a region as OpenSlide does.

        Parameters
        ----------
        location: Tuple[int, int]
            (x, y) of the top left pixel in level-0 coordinates
        level: int
            Level (an unknown level reads as transparent, as in OpenSlide)
        size: Tuple[int, int]
            (width, height) in pixels of `level`

        Returns
        -------
        PIL.Image.Image
            Straight-alpha RGBA; transparent where the slide has no pixels

        Raises
        ------
        OpenSlideError
            When `size` is negative or reading fails

        """
        self._check()
        x, y = (int(v) for v in location)
        w, h = (int(v) for v in size)
        if w < 0 or h < 0:
            raise OpenSlideError(
                f"negative width ({w}) or negative height ({h}) not allowed"
            )
        if w == 0 or h == 0:
            return Image.new("RGBA", (w, h))
        levels = self._levels
        if 0 <= level < len(levels) and max(w, h) <= AREA and min(x, y) >= 0:
            try:
                pixels = levels[level].read_whole(x, y, w, h)
            except Exception as error:
                raise self._fail(error) from error
            if pixels is not None:
                return rgba_image(pixels)
        out = np.zeros((h, w, 4), dtype=np.uint8)
        if 0 <= level < len(levels):
            chosen = levels[level]
            ds = chosen.downsample
            try:
                for row in range((h + AREA - 1) // AREA):
                    for column in range((w + AREA - 1) // AREA):
                        # C: int64 = int64 + int64 * double, truncated
                        sx = int(x + column * AREA * ds)
                        sy = int(y + row * AREA * ds)
                        paint_area(
                            chosen,
                            sx,
                            sy,
                            out[
                                row * AREA : (row + 1) * AREA,
                                column * AREA : (column + 1) * AREA,
                            ],
                        )
            except Exception as error:
                raise self._fail(error) from error
        return _straight_image(out)

    def set_cache(self, cache: OpenSlideCache | FrameCache) -> None:
        """Read through another frame cache.

        Parameters
        ----------
        cache: Union[dicomslide.openslide.OpenSlideCache, dicomslide.cache.FrameCache]
            The cache (of an ``OpenSlideCache``, its ``frame_cache`` is used)

        """
        self._check()
        frame_cache = cache.frame_cache if isinstance(cache, OpenSlideCache) else cache
        if not isinstance(frame_cache, FrameCache):
            raise TypeError(f"not a cache: {cache!r}")
        with self._lock:
            levels = self._cached_levels.get(frame_cache)
            if levels is None:
                levels = tuple(
                    level.with_cache(frame_cache) for level in self._base_levels
                )
                self._cached_levels[frame_cache] = levels
            self._levels = levels

    def close(self) -> None:
        """Release the slide; later calls raise :class:`ctypes.ArgumentError`.

        Reads under way in other threads finish (or fail cleanly).
        """
        with self._lock:
            self._closed = True
            # Reads under way keep the objects they hold; nothing is torn down.
            self._slide = None
            self._cached_levels = weakref.WeakKeyDictionary()

    @property
    def slide(self) -> Slide:
        """dicomslide.Slide: the slide shown"""
        self._check()
        assert self._slide is not None
        return self._slide

    def __reduce__(self) -> tuple[Any, ...]:
        return (DicomBackend.open, (self._origin,))

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"levels={len(self._base_levels)}"
        return f"<DicomBackend {self._origin!r} {state}>"
