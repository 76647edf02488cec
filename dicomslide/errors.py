"""Exception types raised by dicomslide.

Every exception derives from :class:`DicomSlideError`. Errors that concern a
particular frame carry the SOP Instance UID and the frame number, and name both
in their message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _rebuilt(
    cls: type[DicomSlideError], args: tuple[Any, ...], state: dict[str, Any]
) -> DicomSlideError:
    """An error as it was pickled: its message and attributes, unchanged."""
    error = cls.__new__(cls, *args)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class DicomSlideError(Exception):
    """Base class of all errors raised by dicomslide.

    Errors pickle with their message and attributes, so that an error raised
    in a worker process reaches the caller as it was raised.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuilt, (type(self), self.args, dict(self.__dict__)))


class MetadataError(DicomSlideError, ValueError):
    """Image metadata are missing, malformed or contradictory.

    Parameters
    ----------
    message: str
        What is wrong
    sop_instance_uid: Union[str, None], optional
        SOP Instance UID of the offending instance

    """

    def __init__(self, message: str, sop_instance_uid: str | None = None) -> None:
        self.sop_instance_uid = sop_instance_uid
        if sop_instance_uid is not None:
            message = f"instance {sop_instance_uid}: {message}"
        super().__init__(message)


class FrameError(DicomSlideError):
    """A frame could not be obtained.

    Parameters
    ----------
    message: str
        What went wrong
    sop_instance_uid: str
        SOP Instance UID of the instance that holds the frame
    frame_number: Union[int, None], optional
        One-based number of the frame within that instance

    """

    def __init__(
        self,
        message: str,
        sop_instance_uid: str,
        frame_number: int | None = None,
    ) -> None:
        self.sop_instance_uid = sop_instance_uid
        self.frame_number = frame_number
        where = f"instance {sop_instance_uid}"
        if frame_number is not None:
            where += f", frame {frame_number}"
        super().__init__(f"{where}: {message}")


class FrameRetrievalError(FrameError):
    """Encoded frame data could not be retrieved (I/O, truncated file, server)."""


class FrameDecodeError(FrameError, ValueError):
    """An encoded frame could not be decoded (corrupt or inconsistent data)."""


class UnsupportedTransferSyntaxError(FrameDecodeError, NotImplementedError):
    """No decoder is installed for the transfer syntax of an image.

    The message names the transfer syntax and the package that would add a
    decoder for it.
    """


class ServerError(DicomSlideError):
    """A request to a server (or a client's index) failed.

    Parameters
    ----------
    message: str
        What failed
    status: Union[int, None], optional
        HTTP status code of the answer, if there was one

    """

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class SlideNotFoundError(DicomSlideError, LookupError):
    """A source holds no slide (that matches the filters given).

    Parameters
    ----------
    message: str
        Where no slide was found
    candidates: Sequence[str], optional
        Container identifiers of the slides found, when there are several

    """

    def __init__(self, message: str, candidates: Sequence[str] = ()) -> None:
        self.candidates = tuple(candidates)
        super().__init__(message)


class MultipleSlidesError(SlideNotFoundError):
    """A source holds several slides where one was asked for.

    The message and :attr:`candidates` list the container identifiers of the
    slides found.
    """


class ObjectNotFoundError(DicomSlideError, FileNotFoundError):
    """An object, prefix or bucket of object storage does not exist.

    The message names its URL (never the credentials used to reach it).
    """


class MissingExtraError(DicomSlideError, ImportError):
    """A source needs an optional part of dicomslide that is not installed.

    The message names the extra to install, e.g. ``dicomslide[cloud]``.
    """
