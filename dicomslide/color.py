"""Colour management: the transform of an image's colours to sRGB.

An image's ICC profile (the colours its scanner saw) becomes a Pillow
ImageCms transform to sRGB, built once per distinct profile and shared by
every image that carries it. A profile whose transform leaves every colour of
a test grid as it is (an sRGB profile, say) is an identity: reads skip it.
Otherwise reads apply it to each frame as the frame is decoded, and cache the
corrected frame (see :meth:`dicomslide.loader.FrameLoader.transformed`).
"""

from __future__ import annotations

import hashlib
import io
import threading

import numpy as np
from PIL import Image, ImageCms


def _test_grid() -> np.ndarray:
    """Colours that decide whether a transform is an identity: a grid of every
    fifteenth value (0 to 255) along each axis, and every value along the grey
    axis and each primary and secondary ramp; shape (n, 1, 3)."""
    steps = np.arange(0, 256, 15, dtype=np.uint8)
    grid = np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), axis=-1)
    directions = np.array(
        [(1, 1, 1), (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (1, 0, 1), (0, 1, 1)],
        dtype=np.uint8,
    )
    ramps = np.arange(256, dtype=np.uint8)[None, :, None] * directions[:, None, :]
    return np.concatenate([grid.reshape(-1, 3), ramps.reshape(-1, 3)]).reshape(-1, 1, 3)


class ColorTransform:
    """Transform from an ICC profile's colour space to sRGB.

    Transforms are built once per distinct profile and shared.

    Parameters
    ----------
    icc_profile: bytes
        ICC profile of the image

    Attributes
    ----------
    key: str
        SHA-256 of the profile: names the transform, e.g. in cache keys of
        corrected frames
    is_identity: bool
        Whether the transform leaves every colour of a test grid unchanged
        (then colours are not corrected at all)

    """

    _cache: dict[str, tuple[ImageCms.ImageCmsTransform, bool]] = {}
    _lock = threading.Lock()

    def __init__(self, icc_profile: bytes) -> None:
        self.key = hashlib.sha256(icc_profile).hexdigest()
        with self._lock:
            known = self._cache.get(self.key)
            if known is None:
                source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
                target = ImageCms.createProfile("sRGB")
                transform = ImageCms.buildTransform(
                    source,
                    target,
                    "RGB",
                    "RGB",
                    renderingIntent=ImageCms.Intent.PERCEPTUAL,
                )
                grid = _test_grid()
                identity = bool(np.array_equal(_apply(transform, grid), grid))
                known = self._cache[self.key] = (transform, identity)
        self._transform, self.is_identity = known
        self._greys: dict[float, np.ndarray] = {}

    def __call__(self, array: np.ndarray) -> np.ndarray:
        """Apply the transform to an RGB array.

        Parameters
        ----------
        array: numpy.ndarray
            8-bit RGB pixels of shape (rows, columns, 3)

        Returns
        -------
        numpy.ndarray
            Colour-corrected pixels of the same shape (a new array)

        """
        if array.size == 0:
            return array.copy()
        return _apply(self._transform, array)

    def colour_of(self, value: float) -> np.ndarray:
        """The corrected colour of a grey value, e.g. of the fill value.

        Parameters
        ----------
        value: float
            Value of all three samples

        Returns
        -------
        numpy.ndarray
            The three corrected samples (uint8)

        """
        colour = self._greys.get(value)
        if colour is None:
            pixel = np.full((1, 1, 3), value, dtype=np.uint8)
            colour = self._greys[value] = self(pixel).reshape(3)
            colour.flags.writeable = False
        return colour


def _apply(transform: ImageCms.ImageCmsTransform, array: np.ndarray) -> np.ndarray:
    # LittleCMS works pixel by pixel (without the GIL), so a frame corrected
    # alone has the values it has corrected within any region.
    image = Image.fromarray(np.ascontiguousarray(array), "RGB")
    transform.apply_in_place(image)
    return np.array(image)  # a writable copy, like every other read
