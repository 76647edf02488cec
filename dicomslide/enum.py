"""Enumerated values shared by the package."""

from enum import Enum


class ImageFlavors(Enum):
    """Enumerated values for image flavors (value 3 of Image Type)."""

    VOLUME = "VOLUME"
    LABEL = "LABEL"
    OVERVIEW = "OVERVIEW"
    THUMBNAIL = "THUMBNAIL"


class ChannelTypes(Enum):
    """Enumerated values for channel types."""

    OPTICAL_PATH = "OPTICAL_PATH"
    SEGMENT = "SEGMENT"
    PARAMETER = "PARAMETER"
