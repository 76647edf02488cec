"""What :class:`dicomslide.openslide.OpenSlide` needs from a kind of slide.

Two backends implement this protocol: the native one
(:mod:`dicomslide.openslide.native`: libopenslide through
:mod:`dicomslide.openslide.lowlevel`, for SVS, NDPI, MRXS, TIFF, ...) and the
DICOM one (:mod:`dicomslide.openslide.dicom`, pure Python over a
:class:`dicomslide.Slide`). ``OpenSlide`` holds one backend and adds what
openslide-python adds on top of the C library (property and associated-image
mappings, ``color_profile``, thumbnails through ``AbstractSlide``, the context
manager, pickling); it never decodes pixels itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from PIL import Image

if TYPE_CHECKING:
    from dicomslide.openslide.cache import OpenSlideCache


class SlideBackend(Protocol):
    """A slide as OpenSlide's C API sees it.

    Sizes are (width, height) and locations (x, y), OpenSlide's order.
    """

    @property
    def level_dimensions(self) -> tuple[tuple[int, int], ...]:
        """Tuple[Tuple[int, int], ...]: (width, height) of every level"""
        ...

    @property
    def level_downsamples(self) -> tuple[float, ...]:
        """Tuple[float, ...]: downsample of every level relative to level 0"""
        ...

    @property
    def properties(self) -> Mapping[str, str]:
        """Mapping[str, str]: OpenSlide properties (``openslide.*`` and vendor)"""
        ...

    @property
    def associated_image_names(self) -> tuple[str, ...]:
        """Tuple[str, ...]: names of the associated images"""
        ...

    def read_associated_image(self, name: str) -> Image.Image:
        """Read an associated image as RGBA (KeyError for an unknown name)."""
        ...

    def associated_image_icc_profile(self, name: str) -> bytes | None:
        """ICC profile of an associated image, if it has one."""
        ...

    @property
    def icc_profile(self) -> bytes | None:
        """Union[bytes, None]: ICC profile of the slide, if it has one"""
        ...

    def read_region(
        self, location: tuple[int, int], level: int, size: tuple[int, int]
    ) -> Image.Image:
        """Read a region as straight-alpha RGBA; outside the image transparent.

        `location` is in level-0 coordinates, `size` in pixels of `level`.
        """
        ...

    def get_best_level_for_downsample(self, downsample: float) -> int:
        """The level OpenSlide would pick for a downsample."""
        ...

    def set_cache(self, cache: OpenSlideCache) -> None:
        """Use an :class:`dicomslide.openslide.OpenSlideCache`."""
        ...

    def close(self) -> None:
        """Release resources; later calls raise."""
        ...

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as how to reopen (a path or a picklable slide), not state."""
        ...
