"""The interface every slide of the facade offers: :class:`AbstractSlide`.

A slide is a pyramid of levels that ``read_region`` reads, with properties,
associated images and an optional ICC profile. Subclasses provide those; this
class adds what follows from them: ``dimensions``, ``color_profile``, the
context manager and ``get_thumbnail``.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections.abc import Mapping, Sequence
from io import BytesIO
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar

from PIL import Image, ImageCms

from dicomslide.openslide.rendering import render

if TYPE_CHECKING:
    import os

    from dicomslide.openslide.cache import OpenSlideCache

__all__ = ["AbstractSlide", "Filename", "best_level"]

#: What a path may be: the types openslide-python accepts.
Filename: TypeAlias = "str | bytes | os.PathLike[Any]"

_SlideT = TypeVar("_SlideT", bound="AbstractSlide")


def best_level(downsamples: Sequence[float], downsample: float) -> int:
    """The level OpenSlide 4.0.1 picks for a downsample.

    Levels are scanned from the largest: the level before the first whose
    downsample is above `downsample` (level 0 when `downsample` is below its
    own; the last level when none is above), compared exactly.

    Parameters
    ----------
    downsamples: Sequence[float]
        Downsample of each level, level 0 first
    downsample: float
        Wanted downsample

    Returns
    -------
    int
        Level

    """
    for index in range(1, len(downsamples)):
        if downsample < downsamples[index]:
            return index - 1
    return len(downsamples) - 1 if downsample >= downsamples[0] else 0


class AbstractSlide(metaclass=ABCMeta):
    """The base class of a slide object."""

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

    def _icc_profile(self) -> bytes | None:
        """The ICC profile of the slide as stored; subclasses that have one say."""
        return None

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
        profile = self._icc_profile()
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

        The smallest level that still has `size` worth of pixels is read whole
        and shrunk.

        Parameters
        ----------
        size: Tuple[int, int]
            Maximum (width, height) of the thumbnail

        Returns
        -------
        PIL.Image.Image
            RGB image that fits in `size`, keeping the aspect ratio, with the
            slide's ICC profile in ``info["icc_profile"]`` if it has one

        """
        box_width, box_height = size
        width, height = self.dimensions
        shrink = max(width / box_width, height / box_height)
        level = self.get_best_level_for_downsample(shrink)
        whole = self.read_region((0, 0), level, self.level_dimensions[level])
        thumbnail = render(whole, self.properties, size)
        profile = self._icc_profile()
        if profile is not None:
            thumbnail.info["icc_profile"] = profile
        return thumbnail
