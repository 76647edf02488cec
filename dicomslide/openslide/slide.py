""":class:`OpenSlide`: a whole-slide image of any backend, as openslide-python shows it.

An ``OpenSlide`` holds one :class:`dicomslide.openslide._backend.SlideBackend`
and adds what openslide-python adds on top of the C library: the property and
associated-image mappings, the ICC profile on the images it returns, argument
checks, pickling (as the way the slide was opened) and the context manager.
It never decodes pixels itself.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

from PIL import Image

from dicomslide.openslide._backend import SlideBackend
from dicomslide.openslide.abstract import AbstractSlide, Filename
from dicomslide.openslide.cache import OpenSlideCache
from dicomslide.openslide.library import OpenSlideError
from dicomslide.openslide.opening import detect_vendor, open_backend
from dicomslide.openslide.properties import DICOM_VENDOR, PROPERTY_NAME_VENDOR
from dicomslide.slide import Slide
from dicomslide.urls import without_credentials

__all__ = ["OpenSlide"]

_T = TypeVar("_T")

#: Keys of associated images in dicomslide 0.7 (decisions §4): they still
#: resolve for DICOM slides; iteration yields OpenSlide's names
_DICOMSLIDE_07_NAMES = {"LABEL": "label", "OVERVIEW": "macro", "THUMBNAIL": "thumbnail"}


class _BackendView(Mapping[str, _T], metaclass=ABCMeta):
    """Read-only mapping over a backend, with openslide-python's repr."""

    #: the class name that openslide-python's repr of the mapping shows
    _shown_as = ""

    def __init__(self, backend: SlideBackend) -> None:
        self._backend = backend

    def __repr__(self) -> str:
        return f"<{self._shown_as} {dict(self)!r}>"

    @abstractmethod
    def _keys(self) -> list[str]: ...

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())


class _Properties(_BackendView[str]):
    _shown_as = "_PropertyMap"

    def _keys(self) -> list[str]:
        return list(self._backend.properties)

    def __getitem__(self, name: str) -> str:
        return self._backend.properties[name]


class _AssociatedImages(_BackendView[Image.Image]):
    _shown_as = "_AssociatedImageMap"

    def __init__(self, backend: SlideBackend, slide_profile: bytes | None) -> None:
        super().__init__(backend)
        self._slide_profile = slide_profile

    def _keys(self) -> list[str]:
        return list(self._backend.associated_image_names)

    def __getitem__(self, name: str) -> Image.Image:
        keys = self._keys()
        if (
            name not in keys
            and self._backend.properties.get(PROPERTY_NAME_VENDOR) == DICOM_VENDOR
        ):
            # dicomslide 0.7 named DICOM associated images by image flavor
            name = _DICOMSLIDE_07_NAMES.get(name, name)
        if name not in keys:
            raise KeyError(name)
        image = self._backend.read_associated_image(name)
        profile = self._backend.associated_image_icc_profile(name)
        if profile is not None:
            # Share the slide's copy of an identical profile, to save memory.
            same = profile == self._slide_profile
            image.info["icc_profile"] = self._slide_profile if same else profile
        return image


def _reopened(
    cls: type[OpenSlide], backend: SlideBackend, source: Filename | Slide
) -> OpenSlide:
    """Unpickle an OpenSlide: wrap the backend reopened by its own reduce."""
    slide = cls.__new__(cls)
    slide._attach(backend, source)
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
        Path of a slide file, of a DICOM file or of a folder of DICOM files; a
        DICOMweb URL (``https://host/dicom-web``, or with
        ``/studies/<uid>[/series/<uid>]`` to choose a slide; credentials in
        the URL go into the session, see the DICOMweb guide); or a DICOM slide

    Raises
    ------
    OpenSlideUnsupportedFormatError
        When the file is missing or of no format that can be read
    OpenSlideError
        When the file is recognised but cannot be opened

    """

    def __init__(self, filename: Filename | Slide) -> None:
        super().__init__()
        self._attach(open_backend(filename), filename)

    def _attach(self, backend: SlideBackend, source: Filename | Slide) -> None:
        self._source = source
        self._backend = backend
        self._icc = backend.icc_profile

    def __repr__(self) -> str:
        source = self._source
        if isinstance(source, str):
            source = without_credentials(source)
        return f"{self.__class__.__name__}({source!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_reopened, (type(self), self._backend, self._source))

    def _icc_profile(self) -> bytes | None:
        return self._icc

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
        return detect_vendor(filename)

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
        return _Properties(self._backend)

    @property
    def associated_images(self) -> Mapping[str, Image.Image]:
        """Mapping[str, PIL.Image.Image]: images associated with the slide

        Images are read when accessed, as RGBA (not premultiplied), with their
        ICC profile in ``info["icc_profile"]`` when they have one.
        """
        return _AssociatedImages(self._backend, self._icc)

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
        if self._icc is not None:
            region.info["icc_profile"] = self._icc
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
