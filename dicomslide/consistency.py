"""What the images of one slide must agree on, and what is repaired where they
don't.

Two containers cannot be one glass slide: :func:`check_slide_images` refuses
them. Images that name different frames of reference are read as one slide
(grouping put them together), with a warning. Levels that repeat the largest
image's Pixel Spacing get the spacing their sizes imply
(:func:`repair_pixel_spacings`). The rules are described in the user guide
("How images become slides").
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TypeVar, cast

import numpy as np
from pydicom.dataset import Dataset

from dicomslide.discovery import describe_group
from dicomslide.elements import element_value
from dicomslide.errors import DicomSlideError, MetadataError
from dicomslide.pyramid import derive_pixel_spacings
from dicomslide.utils import (
    DERIVED_PIXEL_SPACING,
    VL_WSI_SOP_CLASS_UID,
    distinct_values,
    get_image_pixel_spacing,
    is_label_image,
    is_overview_image,
    is_tiled_image,
)

T = TypeVar("T")

logger = logging.getLogger(__name__)


def slide_name(image_metadata: Sequence[Dataset]) -> str:
    """Name a slide in messages: by its container, or else its series.

    Parameters
    ----------
    image_metadata: Sequence[pydicom.Dataset]
        Metadata of the slide's images

    Returns
    -------
    str
        Name

    """
    containers = distinct_values(image_metadata, "ContainerIdentifier")
    if containers:
        return repr(containers[0])
    series = distinct_values(image_metadata, "SeriesInstanceUID")
    return f"of series {series[0]} (no container)" if series else "(no container)"


def check_slide_images(image_metadata: Sequence[Dataset]) -> None:
    """Refuse what cannot be one slide; warn about what contradicts itself.

    Parameters
    ----------
    image_metadata: Sequence[pydicom.Dataset]
        Metadata of the slide's images

    Raises
    ------
    TypeError
        When an item is not a dataset
    dicomslide.errors.MetadataError
        When a SOP Instance UID occurs twice, or the images name several
        containers

    """
    seen: set[str] = set()
    for metadata in image_metadata:
        if not isinstance(metadata, Dataset):
            raise TypeError("image_metadata must be a sequence of datasets")
        uid = str(element_value(metadata, "SOPInstanceUID"))
        if uid in seen:
            raise MetadataError("SOP Instance UID occurs twice in the slide", uid)
        seen.add(uid)
    containers = distinct_values(image_metadata, "ContainerIdentifier")
    if len(containers) > 1:
        raise MetadataError(
            "the images name several containers: "
            + ", ".join(repr(c) for c in containers)
        )
    frames_of_reference = distinct_values(image_metadata, "FrameOfReferenceUID")
    if len(frames_of_reference) > 1:
        logger.warning(
            "slide %s: its images name %d frames of reference (%s%s); they are "
            "read as one slide, placed by their own positions",
            slide_name(image_metadata),
            len(frames_of_reference),
            ", ".join(frames_of_reference[:2]),
            ", ..." if len(frames_of_reference) > 2 else "",
        )


def repair_pixel_spacings(image_metadata: Sequence[Dataset]) -> None:
    """Give images whose Pixel Spacing contradicts their size the spacing
    their size implies, and warn once.

    The derived spacing is kept with the dataset (the stored value is left
    as it is) and is what :func:`dicomslide.get_image_pixel_spacing` returns;
    see :func:`dicomslide.pyramid.derive_pixel_spacings`. A derived image of
    the size and stored spacing of a repaired level gets the same spacing.

    Parameters
    ----------
    image_metadata: Sequence[pydicom.Dataset]
        Metadata of the slide's images

    """
    derived = derive_pixel_spacings(image_metadata)
    if not derived:
        return
    for metadata in image_metadata:
        if (
            not is_tiled_image(metadata)
            or is_label_image(metadata)
            or is_overview_image(metadata)
        ):
            continue
        size = (
            int(metadata.TotalPixelMatrixRows),
            int(metadata.TotalPixelMatrixColumns),
        )
        try:
            stored = get_image_pixel_spacing(metadata)
        except MetadataError:
            continue
        for (wrong_size, wrong_spacing), spacing in derived.items():
            if size == wrong_size and np.allclose(stored, wrong_spacing, rtol=1e-6):
                setattr(metadata, DERIVED_PIXEL_SPACING, spacing)
    sizes = ", ".join(
        f"{rows}x{columns} px: {spacing[0]:.6g} mm"
        for ((rows, columns), _), spacing in sorted(derived.items(), reverse=True)
    )
    (_, repeated) = next(iter(derived))
    logger.warning(
        "slide %s: images of several sizes state the Pixel Spacing %s mm of the "
        "largest image; the spacing of the others is derived from their sizes "
        "(%s)",
        slide_name(image_metadata),
        tuple(float(v) for v in repeated),
        sizes,
    )


def make_leaving_out(
    members: list[Dataset], make: Callable[[list[Dataset]], T], fail_on_error: bool
) -> T | None:
    """Make a slide of a group of images, leaving out derived images that
    break it.

    A derived series that the slide cannot hold (its size matches no level,
    say) is left out with one warning; a slide that fails without derived
    images raises, or with `fail_on_error` False is skipped with a warning.

    Parameters
    ----------
    members: List[pydicom.Dataset]
        Metadata of the images of the slide
    make: Callable[[List[pydicom.Dataset]], T]
        Makes a slide of images (e.g. :class:`dicomslide.Slide`)
    fail_on_error: bool
        Whether a slide that cannot be made raises

    Returns
    -------
    Union[T, None]
        The slide, or None when it was skipped

    """
    try:
        return make(members)
    except (DicomSlideError, ValueError) as error:
        is_derived = [is_derived_image(m) for m in members]
        if not any(is_derived):
            if fail_on_error:
                raise
            logger.warning("skipping slide (%s): %s", describe_group(members), error)
            return None
        failure = error
    whole_slide = [m for m, derived in zip(members, is_derived) if not derived]
    try:
        slide = make(whole_slide)
    except (DicomSlideError, ValueError) as error:
        if fail_on_error:
            raise
        logger.warning("skipping slide (%s): %s", describe_group(members), error)
        return None
    logger.debug(
        "slide (%s) fails with its derived images: %s", describe_group(members), failure
    )
    series: dict[str, list[Dataset]] = defaultdict(list)
    for image, derived in zip(members, is_derived):
        if derived:
            series[str(element_value(image, "SeriesInstanceUID"))].append(image)
    accepted = list(whole_slide)
    for images in series.values():
        try:
            slide = make(accepted + images)
        except (DicomSlideError, ValueError) as error:
            logger.warning(
                "skipping derived image(s) of %s: %s", describe_group(images), error
            )
            continue
        accepted += images
    return slide


def is_derived_image(metadata: Dataset) -> bool:
    """Whether an image is derived (not VL Whole Slide Microscopy).

    Parameters
    ----------
    metadata: pydicom.Dataset
        Metadata of an image

    Returns
    -------
    bool
        Whether the image is a segmentation, parametric map or other
        non-WSI image

    """
    return cast("bool", element_value(metadata, "SOPClassUID") != VL_WSI_SOP_CLASS_UID)
