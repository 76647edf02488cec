"""The pixel values of one tiled image, as every read of it returns them.

:class:`ImagePixels` joins what the total pixel matrices of an image share:
its :class:`~dicomslide.store.FrameStore`; the fill value of pixels no frame
covers; how stored values become the values read (a segment's mask of a label
map, real-world values of a parametric map); and the colour correction with
the image's ICC profile, which may have to be fetched (bulk data) on first
use and is fetched again later, with backoff, while that fails. It is the
package-internal layer below :class:`~dicomslide.TotalPixelMatrix` and
:class:`~dicomslide.TiledImage`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from dicomslide.cache import FrameCache, get_default_cache
from dicomslide.client import fetch_bulk_icc_profile, open_client, portable
from dicomslide.color import ColorTransform
from dicomslide.elements import element_value, has_element
from dicomslide.enum import ChannelTypes
from dicomslide.errors import FrameRetrievalError, ServerError
from dicomslide.frametable import get_channel_identifiers
from dicomslide.store import FrameStore
from dicomslide.utils import PARAMETRIC_MAP_SOP_CLASS_UID, SEGMENTATION_SOP_CLASS_UIDS

logger = logging.getLogger(__name__)


def _real_world_value_mapping(image: Dataset) -> tuple[float, float] | None:
    """Slope and intercept that map stored integers of a parametric map to
    real-world values; None for float pixel data or other images."""
    if element_value(image, "SOPClassUID") != PARAMETRIC_MAP_SOP_CLASS_UID:
        return None
    if has_element(image, "FloatPixelData") or has_element(
        image, "DoubleFloatPixelData"
    ):
        return None
    bits_allocated = int(element_value(image, "BitsAllocated") or 0)
    if not has_element(image, "BitsStored") and bits_allocated in (32, 64):
        return None  # float pixel data (the element itself is not in metadata)
    for keyword in (
        "SharedFunctionalGroupsSequence",
        "PerFrameFunctionalGroupsSequence",
    ):
        groups = element_value(image, keyword)
        if groups and "RealWorldValueMappingSequence" in groups[0]:
            mapping = groups[0].RealWorldValueMappingSequence[0]
            return (
                float(mapping.get("RealWorldValueSlope", 1.0)),
                float(mapping.get("RealWorldValueIntercept", 0.0)),
            )
    return None


def _find_icc_profile(image: Dataset) -> bytes | None:
    paths = element_value(image, "OpticalPathSequence") or []
    for item in paths:
        profile = item.get("ICCProfile")
        if profile:
            return bytes(profile)
    profile = image.get("ICCProfile")
    return bytes(profile) if profile else None


def _channel_type(image: Dataset) -> ChannelTypes:
    sop_class_uid = element_value(image, "SOPClassUID")
    if sop_class_uid in SEGMENTATION_SOP_CLASS_UIDS:
        return ChannelTypes.SEGMENT
    if sop_class_uid == PARAMETRIC_MAP_SOP_CLASS_UID:
        return ChannelTypes.PARAMETER
    return ChannelTypes.OPTICAL_PATH


class ImagePixels:
    """The pixel values of one tiled image (package-internal).

    Parameters
    ----------
    client: Union[dicomweb_client.api.DICOMClient, str, os.PathLike]
        DICOMweb client, or a local folder path or DICOMweb URL to open one
    parts: Sequence[pydicom.dataset.Dataset]
        Metadata of the instance, or of every instance of its concatenation
    max_frame_cache_size: int
        Number of frames of this image the cache holds at least
    cache: Union[dicomslide.cache.FrameCache, None], optional
        Cache for decoded frames; by default the cache shared by all images

    """

    def __init__(
        self,
        client: Any,
        parts: Sequence[Dataset],
        max_frame_cache_size: int,
        cache: FrameCache | None = None,
    ) -> None:
        self.client = open_client(client)
        self.cache = cache if cache is not None else get_default_cache()
        self.store = FrameStore(self.client, parts, self.cache)
        self.cache.reserve(max_frame_cache_size * self.store.frame_nbytes)
        metadata = self.store.metadata
        self.channel_identifiers = get_channel_identifiers(metadata)
        self.channel_type = _channel_type(metadata)
        self.is_label_map = (
            self.channel_type == ChannelTypes.SEGMENT
            and element_value(metadata, "SegmentationType") == "LABELMAP"
        )
        self.value_mapping = _real_world_value_mapping(metadata)
        samples = self.store.samples_per_pixel
        #: value of pixels that no frame covers: white glass for colour
        #: brightfield images, 0 otherwise
        self.fill_value = (
            255
            if samples == 3 and self.channel_type == ChannelTypes.OPTICAL_PATH
            else 0
        )
        self._icc_profile: bytes | None = None
        self._icc_resolved = samples != 3
        self._icc_failures = 0
        self._icc_retry_at = 0.0
        self._icc_error = ""
        self._color_transform: ColorTransform | None = None
        self._color_resolved = self._no_colour_correction()
        self._lock = threading.Lock()

    def _no_colour_correction(self) -> bool:
        return self.store.samples_per_pixel != 3 or self.store.dtype != np.uint8

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["client"] = portable(self.client)
        state["_lock"] = None
        state["_icc_retry_at"] = 0.0  # a time of this process only
        # colour transforms don't pickle: the receiver builds its own
        state["_color_transform"] = None
        state["_color_resolved"] = self._no_colour_correction()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def metadata(self) -> Dataset:
        """pydicom.dataset.Dataset: metadata of the (first) instance"""
        return self.store.metadata

    @property
    def sop_instance_uids(self) -> tuple[str, ...]:
        """Tuple[str, ...]: SOP Instance UIDs of the instances, in order"""
        return tuple(str(part.SOPInstanceUID) for part in self.store.parts)

    @property
    def icc_profile(self) -> bytes | None:
        """Union[bytes, None]: ICC profile of the image, if it has one

        Where the metadata give it as bulk data, it is fetched on first use.
        While it cannot be fetched, this is None (and a warning is logged at
        each failed attempt); it is fetched again at a later use, no sooner
        than a backoff that doubles with each failure.
        """
        self._resolve_icc_profile()
        return self._icc_profile

    def _resolve_icc_profile(self) -> None:
        """Find or fetch the ICC profile, unless known or a retry is not due."""
        if self._icc_resolved or time.monotonic() < self._icc_retry_at:
            return
        with self._lock:
            if self._icc_resolved or time.monotonic() < self._icc_retry_at:
                return
            try:
                profile = _find_icc_profile(self.metadata)
                if profile is None:
                    profile = fetch_bulk_icc_profile(self.client, self.metadata)
            except ServerError as error:
                from dicomslide.transport import retry_delay, settings

                self._icc_failures += 1
                delay = retry_delay(settings.retries + self._icc_failures)
                self._icc_retry_at = time.monotonic() + delay
                self._icc_error = str(error)
                logger.warning(
                    "instance %s: %s; fetched again in %.1f s or later",
                    self.metadata.get("SOPInstanceUID"),
                    error,
                    delay,
                )
                return
            self._icc_profile = profile
            self._icc_resolved = True

    def color_transform(self) -> ColorTransform | None:
        """The transform of the image's colours to sRGB, built on first use.

        Returns
        -------
        Union[dicomslide.color.ColorTransform, None]
            None where colours are not corrected: no ICC profile, one that
            cannot be used or whose transform is an identity (such as an sRGB
            profile), or not 8-bit RGB pixels

        Raises
        ------
        dicomslide.errors.FrameRetrievalError
            While the image's ICC profile could not be fetched

        """
        if not self._color_resolved:
            self._resolve_icc_profile()
            if not self._icc_resolved:
                raise FrameRetrievalError(
                    f"colours cannot be corrected: {self._icc_error}; it is "
                    "fetched again at a later read (read with correct_color=False "
                    "for the stored colours)",
                    str(self.metadata.get("SOPInstanceUID")),
                )
            profile = self._icc_profile
            with self._lock:
                if not self._color_resolved:
                    if profile is not None:
                        try:
                            transform = ColorTransform(profile)
                        except Exception as error:  # must not stop reading
                            logger.warning(
                                "instance %s: ICC profile unusable, colours not "
                                "corrected: %s",
                                self.metadata.get("SOPInstanceUID"),
                                error,
                            )
                        else:
                            # an identity (e.g. an sRGB profile) is skipped
                            if not transform.is_identity:
                                self._color_transform = transform
                    self._color_resolved = True
        return self._color_transform
