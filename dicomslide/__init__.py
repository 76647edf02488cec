"""Read DICOM whole slide microscopy images from local files and DICOMweb."""

import importlib
import importlib.util
import logging

from dicomslide.enum import ChannelTypes, ImageFlavors
from dicomslide.image import TiledImage
from dicomslide.matrix import TotalPixelMatrix, TotalPixelMatrixSampler
from dicomslide.pyramid import (
    Pyramid,
    PyramidLevel,
    compute_image_center_position,
    select_image_at_magnification,
    select_image_at_pixel_spacing,
    sort_images_by_pixel_spacing,
    sort_images_by_size,
)
from dicomslide.slide import Slide, find_slides, open_slide
from dicomslide.tile import (
    assemble_total_pixel_matrix,
    compute_frame_positions,
    disassemble_total_pixel_matrix,
)
from dicomslide.utils import (
    does_optical_path_item_match,
    does_segment_item_match,
    does_specimen_description_item_match,
    get_image_pixel_spacing,
    get_image_size,
    is_image,
    is_label_image,
    is_overview_image,
    is_tiled_image,
    is_volume_image,
)
from dicomslide.version import __version__

logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name: str) -> object:
    # dicomslide.OpenSlide is dicomslide.openslide.OpenSlide, imported on
    # first use so that `import dicomslide` does not load libopenslide.
    if name == "OpenSlide":
        from dicomslide.openslide import OpenSlide

        return OpenSlide
    # The modules of sources other than a folder (DICOMweb, object storage)
    # are imported when first used; dicomslide.web and the like still resolve.
    if importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'dicomslide' has no attribute {name!r}")


__all__ = [
    "ChannelTypes",
    "ImageFlavors",
    "OpenSlide",
    "Pyramid",
    "PyramidLevel",
    "Slide",
    "TiledImage",
    "TotalPixelMatrix",
    "TotalPixelMatrixSampler",
    "__version__",
    "assemble_total_pixel_matrix",
    "compute_frame_positions",
    "compute_image_center_position",
    "disassemble_total_pixel_matrix",
    "does_optical_path_item_match",
    "does_segment_item_match",
    "does_specimen_description_item_match",
    "find_slides",
    "open_slide",
    "get_image_pixel_spacing",
    "get_image_size",
    "is_image",
    "is_label_image",
    "is_overview_image",
    "is_tiled_image",
    "is_volume_image",
    "select_image_at_magnification",
    "select_image_at_pixel_spacing",
    "sort_images_by_pixel_spacing",
    "sort_images_by_size",
]
