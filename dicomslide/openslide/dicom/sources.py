"""DICOM sources of the facade: which paths are DICOM, and the slide they hold.

A DICOM source is a :class:`dicomslide.Slide`, a DICOMweb URL (of a service,
or of one of its studies or series), a folder, or a DICOM Part 10
file (``DICM`` at byte 128: :func:`dicomslide.files.is_part10`, the one place
that check is written). :func:`find_slide` finds the slide a source shows:
a folder must hold one slide; a file names its slide, which is looked for in
the file's folder and its subfolders, as OpenSlide opens a series from one of
its files.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import VLWholeSlideMicroscopyImageStorage

from dicomslide.errors import DicomSlideError, MetadataError, ObjectNotFoundError
from dicomslide.files import is_part10
from dicomslide.folder import LocalFolderClient
from dicomslide.openslide.library import (
    OpenSlideError,
    OpenSlideUnsupportedFormatError,
)
from dicomslide.slide import Slide, find_slides
from dicomslide.tile import check_image_geometry
from dicomslide.urls import is_object_url, without_credentials
from dicomslide.utils import is_volume_image

logger = logging.getLogger(__name__)

__all__ = [
    "find_slide",
    "folder_holds_part10_file",
    "is_dicom_source",
    "is_dicomweb_url",
    "split_dicomweb_url",
    "is_part10_file",
]


def is_part10_file(path: str | bytes | os.PathLike[Any]) -> bool:
    """Whether a path is a regular file that starts like a DICOM Part 10 file
    (see :func:`dicomslide.files.is_part10`)."""
    return is_part10(path)


def folder_holds_part10_file(folder: str | bytes | os.PathLike[Any]) -> bool:
    """Whether a folder or one of its subfolders holds a DICOM Part 10 file."""
    for root, _, names in os.walk(os.fspath(folder)):
        if any(is_part10_file(os.path.join(root, name)) for name in names):
            return True
    return False


def is_dicomweb_url(source: object) -> bool:
    """Whether a source is an ``http(s)://`` URL (of a DICOMweb service).

    Parameters
    ----------
    source: object
        What :class:`dicomslide.openslide.OpenSlide` was given

    Returns
    -------
    bool
        Whether it is an HTTP or HTTPS URL

    """
    return isinstance(source, str) and source.startswith(("http://", "https://"))


def split_dicomweb_url(url: str) -> tuple[str, str | None, str | None]:
    """Split a DICOMweb URL into the service's root and a study and series.

    ``https://host/dicom-web/studies/1.2.3/series/4.5.6`` (as viewers and
    archives link to a series) is the root ``https://host/dicom-web``, study
    ``1.2.3`` and series ``4.5.6``; a URL without ``/studies/`` is a root.

    Parameters
    ----------
    url: str
        URL

    Returns
    -------
    Tuple[str, Union[str, None], Union[str, None]]
        Root URL, Study Instance UID and Series Instance UID (None where the
        URL names none)

    """
    parts = urlsplit(url)
    match = _STUDY_SERIES.search(parts.path)
    if match is None:
        return url.rstrip("/"), None, None
    root = urlunsplit(parts._replace(path=parts.path[: match.start()], query=""))
    return root.rstrip("/"), match["study"], match["series"]


_STUDY_SERIES = re.compile(
    r"/studies/(?P<study>[0-9.]+)(?:/series/(?P<series>[0-9.]+))?/*$"
)


def is_dicom_source(source: object) -> bool:
    """Whether the DICOM backend is the one to open `source`.

    Parameters
    ----------
    source: object
        What :class:`dicomslide.openslide.OpenSlide` was given

    Returns
    -------
    bool
        True for a :class:`dicomslide.Slide`, a folder and a DICOM file

    """
    if isinstance(source, Slide) or is_dicomweb_url(source) or is_object_url(source):
        return True
    if not isinstance(source, str | bytes | os.PathLike):
        return False
    return os.path.isdir(source) or is_part10_file(source)


def find_slide(source: Any) -> tuple[Slide, Slide | str]:
    """Find the slide a DICOM source shows.

    Parameters
    ----------
    source: Union[dicomslide.Slide, str, os.PathLike]
        A slide; a folder that holds one slide; or one file of a slide

    Returns
    -------
    Tuple[dicomslide.Slide, Union[dicomslide.Slide, str]]
        The slide, and how to find it again (the slide, or the path as str)

    Raises
    ------
    TypeError
        When `source` is neither a slide nor a path
    OpenSlideUnsupportedFormatError
        When `source` is not a DICOM whole slide image, or a folder holds
        several slides (their container identifiers are listed; open one of
        their files instead)
    OpenSlideError
        When the files are DICOM whole slide images but broken

    """
    if isinstance(source, Slide):
        return source, source
    if is_dicomweb_url(source):
        return _slide_of_url(source), source
    if is_object_url(source):
        return _slide_of_objects(source), source
    try:
        path = Path(os.fsdecode(os.fspath(source)))
    except TypeError:
        raise TypeError(
            f"expected a dicomslide.Slide or a path, got {type(source).__name__}"
        ) from None
    if path.is_dir():
        return _only_slide(path), str(path)
    if not path.is_file():
        raise OpenSlideUnsupportedFormatError(
            f"Unsupported or missing image file: {path}"
        )
    sop_instance_uid = _wsi_instance(path)
    folder = _OpenSlideFolder(path.parent)
    slides = _slides_in(folder)
    if sop_instance_uid in folder.left_out:  # libdicom refuses it
        raise OpenSlideError(f"cannot read {path}: {folder.left_out[sop_instance_uid]}")
    for slide in slides:
        if sop_instance_uid in slide.sop_instance_uids:
            return slide, str(path)
    raise OpenSlideUnsupportedFormatError(
        f"{path}: instance {sop_instance_uid} belongs to no slide that can be "
        "shown (no VOLUME image found with it)"
    )


def _wsi_instance(path: Path) -> str:
    """SOP Instance UID of a VL Whole Slide Microscopy file (raise if not one)."""
    if not is_part10_file(path):
        raise OpenSlideUnsupportedFormatError(f"not a DICOM file: {path}")
    try:
        dataset = pydicom.dcmread(
            path,
            stop_before_pixels=True,
            specific_tags=["SOPClassUID", "SOPInstanceUID"],
        )
        sop_class = str(
            dataset.file_meta.get("MediaStorageSOPClassUID")
            or dataset.get("SOPClassUID", "")
        )
        sop_instance = str(dataset.get("SOPInstanceUID") or "")
    except Exception as error:
        raise OpenSlideError(f"cannot read {path}: {error}") from error
    if sop_class != VLWholeSlideMicroscopyImageStorage:
        raise OpenSlideUnsupportedFormatError(
            f"Not a WSI DICOM: class UID {sop_class} ({path})"
        )
    if not sop_instance:
        raise OpenSlideError(f"{path}: SOPInstanceUID not found")
    return sop_instance


class _OpenSlideFolder(LocalFolderClient):
    """The files of a folder as OpenSlide reads them.

    A VL Whole Slide Microscopy file whose frames cannot be laid out (e.g.
    Rows of 0, see :func:`dicomslide.tile.check_image_geometry`) is left out
    with a warning, as OpenSlide leaves out a file that libdicom refuses; the
    other images of its slide open without it.
    """

    @property
    def left_out(self) -> dict[str, MetadataError]:
        """Dict[str, MetadataError]: why images were left out, by SOP
        Instance UID"""
        self.headers()
        left_out: dict[str, MetadataError] = self.__dict__["_left_out"]
        return left_out

    def headers(self) -> list[Dataset]:
        kept: list[Dataset] | None = self.__dict__.get("_kept")
        if kept is None:
            left_out: dict[str, MetadataError] = {}
            kept = []
            for header in super().headers():
                try:
                    if header.get("SOPClassUID") == VLWholeSlideMicroscopyImageStorage:
                        # (LABEL and OVERVIEW frames are counted on first use)
                        check_image_geometry(
                            header, frame_count=is_volume_image(header)
                        )
                except MetadataError as error:
                    logger.warning("leaving out %s: %s", header.filename, error)
                    left_out[str(header.get("SOPInstanceUID"))] = error
                    continue
                kept.append(header)
            self.__dict__.update(_kept=kept, _left_out=left_out)
        return kept


def _slides_in(folder: _OpenSlideFolder) -> list[Slide]:
    try:
        return find_slides(folder, include_derived=False, correct_color=False)
    except (DicomSlideError, ValueError) as error:
        raise OpenSlideError(
            f"cannot read the slides in {folder.folder}: {error}"
        ) from error


def _slide_of_url(url: str) -> Slide:
    """The one slide of a DICOMweb service, or of its study or series."""
    root, study, series = split_dicomweb_url(url)
    shown = without_credentials(url)
    try:
        slides = find_slides(
            root,
            study_instance_uid=study,
            include_derived=False,
            correct_color=False,
        )
    except (DicomSlideError, ValueError) as error:
        raise OpenSlideError(f"cannot read the slides of {shown}: {error}") from error
    if series is not None:
        slides = [
            slide
            for slide in slides
            if any(
                str(image.metadata.SeriesInstanceUID) == series
                for image in slide.get_volume_images()
            )
        ]
    if not slides:
        raise OpenSlideUnsupportedFormatError(
            f"no DICOM whole slide image found at {shown}"
        )
    if len(slides) > 1:
        names = ", ".join(repr(slide.container_id) for slide in slides)
        raise OpenSlideUnsupportedFormatError(
            f"{shown} holds {len(slides)} slides ({names}); add "
            "/studies/<Study Instance UID>/series/<Series Instance UID> to the URL"
        )
    return slides[0]


def _slide_of_objects(source: str | list[str]) -> Slide:
    """The one slide under a prefix of object storage, or of one object
    (storage options from ``DICOMSLIDE_STORAGE_OPTIONS``)."""
    shown = without_credentials(source) if isinstance(source, str) else "the URLs"
    try:
        slides = find_slides(source, include_derived=False, correct_color=False)
    except ObjectNotFoundError as error:
        raise OpenSlideUnsupportedFormatError(str(error)) from error
    except (DicomSlideError, ValueError) as error:
        raise OpenSlideError(f"cannot read the slides of {shown}: {error}") from error
    if len(slides) != 1:
        names = ", ".join(repr(slide.container_id) for slide in slides)
        raise OpenSlideUnsupportedFormatError(
            f"{shown} holds {len(slides)} slides ({names}): open one of their objects"
        )
    return slides[0]


def _only_slide(folder: Path) -> Slide:
    slides = _slides_in(_OpenSlideFolder(folder))
    if not slides:
        raise OpenSlideUnsupportedFormatError(
            f"no DICOM whole slide image found in {folder}"
        )
    if len(slides) > 1:
        names = ", ".join(repr(slide.container_id) for slide in slides)
        raise OpenSlideUnsupportedFormatError(
            f"{folder} holds {len(slides)} slides ({names}); open a file of the "
            "one you want"
        )
    return slides[0]
