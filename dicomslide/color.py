"""Colour management: the transform of an image's colours to sRGB.

An image's ICC profile (the colours its scanner saw) becomes a Pillow
ImageCms transform to sRGB, built once per distinct profile and shared by
every image that carries it; reads apply it once per region.
"""

from __future__ import annotations

import hashlib
import io
import threading

import numpy as np
from PIL import Image, ImageCms


class ColorTransform:
    """Transform from an ICC profile's colour space to sRGB.

    Transforms are built once per distinct profile and shared.

    Parameters
    ----------
    icc_profile: bytes
        ICC profile of the image

    """

    _cache: dict[str, ImageCms.ImageCmsTransform] = {}
    _lock = threading.Lock()

    def __init__(self, icc_profile: bytes) -> None:
        key = hashlib.sha256(icc_profile).hexdigest()
        with self._lock:
            transform = self._cache.get(key)
            if transform is None:
                source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
                target = ImageCms.createProfile("sRGB")
                transform = ImageCms.buildTransform(
                    source,
                    target,
                    "RGB",
                    "RGB",
                    renderingIntent=ImageCms.Intent.PERCEPTUAL,
                )
                self._cache[key] = transform
        self._transform = transform

    def __call__(self, array: np.ndarray) -> np.ndarray:
        """Apply the transform to an RGB array.

        Parameters
        ----------
        array: numpy.ndarray
            8-bit RGB pixels of shape (rows, columns, 3)

        Returns
        -------
        numpy.ndarray
            Colour-corrected pixels of the same shape

        """
        if array.size == 0:
            return array
        image = Image.fromarray(np.ascontiguousarray(array), "RGB")
        self._transform.apply_in_place(image)
        return np.array(image)  # a writable copy, like every other read
