""":class:`ImageSlide`: an ordinary image (PNG, JPEG, ...) as a slide of one level.

What :func:`dicomslide.openslide.open_slide` returns for files that no backend
reads, as openslide-python does. Regions outside the image are transparent.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Literal

from PIL import Image

from dicomslide.openslide.abstract import AbstractSlide, Filename
from dicomslide.openslide.library import OpenSlideError

__all__ = ["ImageSlide"]


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
        self._source = file
        self._lock = threading.Lock()
        # a file is opened here and closed by close(); a given image is the
        # caller's to close
        self._owns_picture = not isinstance(file, Image.Image)
        picture = file if isinstance(file, Image.Image) else Image.open(file)
        self._picture: Image.Image | None = picture
        self._icc: bytes | None = picture.info.get("icc_profile")

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self._source!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self._source,))

    def _icc_profile(self) -> bytes | None:
        return self._icc

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
            picture, self._picture = self._picture, None
            if picture is not None and self._owns_picture:
                picture.close()

    def _live_picture(self) -> Image.Image:
        picture = self._picture
        if picture is None:
            raise ValueError("Cannot read from a closed slide")
        return picture

    @property
    def level_count(self) -> Literal[1]:
        """int: number of levels in the image (1)"""
        return 1

    @property
    def level_dimensions(self) -> tuple[tuple[int, int]]:
        """Tuple[Tuple[int, int]]: (width, height) of the image"""
        return (self._live_picture().size,)

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
            picture = self._live_picture()
            if level != 0:
                raise OpenSlideError("Invalid level")
            if any(extent < 0 for extent in size):
                raise OpenSlideError(f"Size {size} must be non-negative")
            region = Image.new("RGBA", size, (0, 0, 0, 0))
            # where the region and the picture overlap, in picture coordinates
            (x, y), (width, height) = location, size
            left, top = max(x, 0), max(y, 0)
            right = min(x + width, picture.width)
            bottom = min(y + height, picture.height)
            if left < right and top < bottom:
                overlap = picture.crop((left, top, right, bottom))
                region.paste(overlap, (left - x, top - y))
        if self._icc is not None:
            region.info["icc_profile"] = self._icc
        return region
