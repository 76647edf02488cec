"""Frame sources: what hands out encoded frames, and fetching them through a client.

A :class:`FrameSource` hands out the encoded bytes of frames of one instance,
many frames per call. This module holds what every frame source shares
(:func:`checked_frame_numbers`, :func:`describe_pixels`,
:func:`split_frames`) and :class:`ClientFrameSource`, which asks any
``DICOMClient`` for the frames: one batched ``retrieve_instance_frames``
request per call, with media types negotiated once per client. Frames of
files are read by :class:`dicomslide.fileframes.FileFrameSource`, frames of a
DICOMweb server by :class:`dicomslide.web.WebFrameSource`.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import requests
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames

from dicomslide.codec import NATIVE_TRANSFER_SYNTAXES, PixelDescription
from dicomslide.elements import element_value, has_element
from dicomslide.errors import FrameRetrievalError

logger = logging.getLogger(__name__)


class FrameSource(Protocol):
    """Hands out the encoded frames of one instance."""

    sop_instance_uid: str

    @property
    def transfer_syntax_uid(self) -> str | None:
        """Union[str, None]: transfer syntax of the frames handed out, if known"""
        ...

    def read_frames(self, frame_numbers: Sequence[int]) -> list[bytes]:
        """Read encoded frames.

        Parameters
        ----------
        frame_numbers: Sequence[int]
            One-based frame numbers within the instance

        Returns
        -------
        List[bytes]
            Encoded frames in the order of `frame_numbers`

        """
        ...


def checked_frame_numbers(
    frame_numbers: Sequence[int], number_of_frames: int, sop_instance_uid: str
) -> list[int]:
    """Frame numbers as ints, all within [1, number_of_frames].

    Parameters
    ----------
    frame_numbers: Sequence[int]
        One-based frame numbers
    number_of_frames: int
        Number of frames of the instance
    sop_instance_uid: str
        SOP Instance UID of the instance, for the error message

    Returns
    -------
    List[int]
        The frame numbers

    Raises
    ------
    dicomslide.errors.FrameRetrievalError
        When a frame number is out of range

    """
    numbers = [int(n) for n in frame_numbers]
    for number in numbers:
        if not 1 <= number <= number_of_frames:
            raise FrameRetrievalError(
                f"frame number out of range [1, {number_of_frames}]",
                sop_instance_uid,
                number,
            )
    return numbers


def split_frames(
    pixel_data: bytes,
    transfer_syntax_uid: str,
    desc: PixelDescription,
    number_of_frames: int,
) -> list[bytes]:
    """Split the value of a pixel data element into encoded frames.

    Parameters
    ----------
    pixel_data: bytes
        Value of the Pixel Data (or Float / Double Float Pixel Data) element
    transfer_syntax_uid: str
        Transfer syntax of the data set
    desc: dicomslide.codec.PixelDescription
        Layout of a frame's pixels (gives the size of native frames)
    number_of_frames: int
        Number of frames

    Returns
    -------
    List[bytes]
        Encoded frames, in order

    Raises
    ------
    ValueError
        When the data hold fewer frames

    """
    if transfer_syntax_uid not in NATIVE_TRANSFER_SYNTAXES:
        return list(generate_frames(pixel_data, number_of_frames=number_of_frames))
    bits = desc.rows * desc.columns * desc.samples_per_pixel * desc.bits_allocated
    if len(pixel_data) * 8 < bits * number_of_frames:
        raise ValueError(
            f"pixel data hold {len(pixel_data)} bytes, {number_of_frames} frames "
            f"need {-(-bits * number_of_frames // 8)}"
        )
    if bits % 8 == 0:
        size = bits // 8
        return [pixel_data[i * size : (i + 1) * size] for i in range(number_of_frames)]
    # bit-packed frames (1 bit per pixel) that don't end on a byte boundary
    unpacked = np.unpackbits(np.frombuffer(pixel_data, np.uint8), bitorder="little")
    return [
        np.packbits(unpacked[i * bits : (i + 1) * bits], bitorder="little").tobytes()
        for i in range(number_of_frames)
    ]


# Media types that clients accept for frames, in the order they are tried.
_FRAME_MEDIA_TYPES: tuple[tuple[tuple[str, str], ...] | None, ...] = (
    (("application/octet-stream", "*"),),
    None,
)
_media_type_choice: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


class ClientFrameSource:
    """Asks a ``DICOMClient`` for the frames of one instance.

    Parameters
    ----------
    client: dicomweb_client.api.DICOMClient
        Client
    study_instance_uid: str
        Study Instance UID
    series_instance_uid: str
        Series Instance UID
    sop_instance_uid: str
        SOP Instance UID
    number_of_frames: int
        Number of frames of the instance
    transfer_syntax_uid: Union[str, None]
        Transfer syntax of the stored frames, if the metadata say

    """

    def __init__(
        self,
        client: Any,
        study_instance_uid: str,
        series_instance_uid: str,
        sop_instance_uid: str,
        number_of_frames: int,
        transfer_syntax_uid: str | None = None,
    ) -> None:
        self.client = client
        self.study_instance_uid = study_instance_uid
        self.series_instance_uid = series_instance_uid
        self.sop_instance_uid = sop_instance_uid
        self._number_of_frames = number_of_frames
        self._transfer_syntax_uid = transfer_syntax_uid

    @property
    def transfer_syntax_uid(self) -> str | None:
        """Union[str, None]: transfer syntax of the stored frames, if known"""
        return self._transfer_syntax_uid

    def read_frames(self, frame_numbers: Sequence[int]) -> list[bytes]:
        """Read encoded frames with one request.

        Parameters
        ----------
        frame_numbers: Sequence[int]
            One-based frame numbers within the instance

        Returns
        -------
        List[bytes]
            Encoded frames in the order of `frame_numbers`

        Raises
        ------
        dicomslide.errors.FrameRetrievalError
            When a frame number is out of range, the request fails or the
            answer holds the wrong number of frames

        """
        numbers = checked_frame_numbers(
            frame_numbers, self._number_of_frames, self.sop_instance_uid
        )
        first_choice = _media_type_choice.get(self.client, 0)
        last_error: Exception | None = None
        for choice in range(first_choice, len(_FRAME_MEDIA_TYPES)):
            try:
                frames = self.client.retrieve_instance_frames(
                    study_instance_uid=self.study_instance_uid,
                    series_instance_uid=self.series_instance_uid,
                    sop_instance_uid=self.sop_instance_uid,
                    frame_numbers=numbers,
                    media_types=_FRAME_MEDIA_TYPES[choice],
                )
            except requests.HTTPError as error:
                status = (
                    error.response.status_code if error.response is not None else None
                )
                last_error = error
                if status in (400, 406, 415):
                    continue
                raise FrameRetrievalError(
                    f"frames request failed: {error}", self.sop_instance_uid, numbers[0]
                ) from error
            except (requests.RequestException, OSError) as error:
                raise FrameRetrievalError(
                    f"frames request failed: {error}", self.sop_instance_uid, numbers[0]
                ) from error
            _media_type_choice[self.client] = choice
            if len(frames) != len(numbers):
                raise FrameRetrievalError(
                    f"asked for {len(numbers)} frames, received {len(frames)}",
                    self.sop_instance_uid,
                    numbers[0],
                )
            return [bytes(frame) for frame in frames]
        raise FrameRetrievalError(
            f"no media type was accepted for frames: {last_error}",
            self.sop_instance_uid,
            numbers[0],
        )


def describe_pixels(image: Dataset, transfer_syntax_uid: str) -> PixelDescription:
    """Describe the pixel layout of an image's frames.

    Parameters
    ----------
    image: pydicom.Dataset
        Image metadata
    transfer_syntax_uid: str
        Transfer Syntax UID of the stored frames

    Returns
    -------
    dicomslide.codec.PixelDescription
        Pixel layout

    """
    bits_allocated = int(element_value(image, "BitsAllocated", 8))
    bits_stored = element_value(image, "BitsStored")
    return PixelDescription(
        rows=int(image.Rows),
        columns=int(image.Columns),
        samples_per_pixel=int(element_value(image, "SamplesPerPixel", 1)),
        bits_allocated=bits_allocated,
        bits_stored=int(bits_stored or bits_allocated),
        pixel_representation=int(element_value(image, "PixelRepresentation") or 0),
        photometric_interpretation=str(
            element_value(image, "PhotometricInterpretation", "")
        ),
        planar_configuration=int(element_value(image, "PlanarConfiguration") or 0),
        transfer_syntax_uid=transfer_syntax_uid,
        float_pixels=not has_element(image, "BitsStored")
        and bits_allocated in (32, 64),
    )
