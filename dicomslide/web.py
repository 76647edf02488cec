"""Frames over DICOMweb: one batched multipart request per instance and read.

:class:`WebFrameSource` asks a ``dicomweb_client.DICOMwebClient``'s server for
frames itself (with the client's session, so its authentication and headers
apply), because the transfer syntax of the frames is only in the response's
part headers, which the client drops. It negotiates the media type once per
client (e.g. Orthanc answers 400 to the client's default but serves the stored
bytes for ``transfer-syntax=*``), falls back per instance when the server
cannot serve the stored bytes (Orthanc answers 500 for some syntaxes but
transcodes them), retries transient failures with backoff, checks that the
answer holds exactly the frames asked for, and splits very large requests
into chunks fetched concurrently.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from dicomslide.errors import FrameRetrievalError
from dicomslide.fetch import ClientFrameSource, checked_frame_numbers

logger = logging.getLogger(__name__)

#: Accept headers for frames, in the order they are tried
ACCEPT_HEADERS = (
    'multipart/related; type="application/octet-stream"; transfer-syntax=*',
    'multipart/related; type="application/octet-stream"',
)
# Transfer syntax of frames whose part names a media type but no syntax
_MEDIA_TYPE_SYNTAXES = {
    "image/jpeg": "1.2.840.10008.1.2.4.50",
    "image/jls": "1.2.840.10008.1.2.4.80",
    "image/jp2": "1.2.840.10008.1.2.4.91",
    "image/jph": "1.2.840.10008.1.2.4.203",
    "image/jphc": "1.2.840.10008.1.2.4.203",
    "image/jxl": "1.2.840.10008.1.2.4.112",
    "image/dicom-rle": "1.2.840.10008.1.2.5",
    "image/x-dicom-rle": "1.2.840.10008.1.2.5",
}


@dataclass
class WebSettings:
    """How frames are requested over DICOMweb.

    Parameters
    ----------
    timeout: Tuple[float, float]
        Connect and read timeout of one request in seconds (a client's own
        ``timeout`` is used where it was given)
    retries: int
        Attempts after the first one for transient failures (connection
        errors, timeouts, HTTP 5xx)
    backoff: float
        Wait before the first retry in seconds; doubled for each further one
    chunk_frames: int
        Largest number of frames in one request; larger reads are split into
        chunks that are fetched concurrently
    workers: int
        Largest number of chunks fetched at once
    neighbours: bool
        Whether a read that fetches frames also asks, in the same request, for
        the ring of tiles around it, while at least a quarter of the tiles so
        fetched are read later

    """

    timeout: tuple[float, float] = (5.0, 60.0)
    retries: int = 3
    backoff: float = 0.1
    chunk_frames: int = 512
    workers: int = 4
    neighbours: bool = True


#: Settings used by every :class:`WebFrameSource`
settings = WebSettings()

_accept_choice: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _chunk_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                settings.workers, thread_name_prefix="dicomslide-web"
            )
        return _pool


def _forget_pool_after_fork() -> None:
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_pool_after_fork)


def without_credentials(url: str) -> str:
    """Remove user name and password from a URL (for messages and logs).

    Parameters
    ----------
    url: str
        URL

    Returns
    -------
    str
        The URL without its user information

    """
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _parameters(header: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Type header into its media type and parameters."""
    pieces = [piece.strip() for piece in header.split(";")]
    parameters = {}
    for piece in pieces[1:]:
        name, _, value = piece.partition("=")
        parameters[name.strip().lower()] = value.strip().strip('"')
    return pieces[0].lower(), parameters


def parse_multipart(content_type: str, body: bytes) -> list[tuple[str, bytes]]:
    """Split a multipart/related body into (Content-Type, payload) parts.

    Parameters
    ----------
    content_type: str
        Content-Type header of the response
    body: bytes
        Body of the response

    Returns
    -------
    List[Tuple[str, bytes]]
        Content-Type and payload of each part

    Raises
    ------
    ValueError
        When the body is not a multipart message

    """
    media_type, parameters = _parameters(content_type)
    boundary = parameters.get("boundary")
    if not media_type.startswith("multipart/") or not boundary:
        raise ValueError(f"not a multipart response ({content_type!r})")
    delimiter = b"--" + boundary.encode("latin-1")
    parts = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        header_end = chunk.find(b"\r\n\r\n")
        if header_end < 0:
            raise ValueError("a part of the multipart response has no header end")
        headers = chunk[:header_end].decode("latin-1")
        payload = chunk[header_end + 4 :]
        if payload.endswith(b"\r\n"):
            payload = payload[:-2]
        part_type = ""
        for line in headers.split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-type":
                part_type = value.strip()
        parts.append((part_type, payload))
    return parts


def transfer_syntax_of(content_type: str) -> str | None:
    """Transfer syntax of a frame, from the Content-Type of its part.

    Parameters
    ----------
    content_type: str
        Content-Type of a part

    Returns
    -------
    Union[str, None]
        Transfer Syntax UID, or None if the header does not tell

    """
    media_type, parameters = _parameters(content_type)
    syntax = parameters.get("transfer-syntax")
    if syntax and syntax != "*":
        return syntax
    return _MEDIA_TYPE_SYNTAXES.get(media_type)


class WebFrameSource(ClientFrameSource):
    """Fetches the frames of one instance from a DICOMweb server.

    Constructed like :class:`dicomslide.fetch.ClientFrameSource`, for a
    ``dicomweb_client.DICOMwebClient`` whose session (authentication, headers)
    is used; the transfer syntax becomes that of the frames last received.
    """

    def __init__(self, client: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(client, *args, **kwargs)
        self._accept: int | None = None  # this instance's working Accept header
        root = str(client.base_url).rstrip("/")
        prefix = getattr(client, "wado_url_prefix", None)
        if prefix:
            root += "/" + str(prefix).strip("/")
        self._url = (
            f"{root}/studies/{self.study_instance_uid}/series/"
            f"{self.series_instance_uid}/instances/{self.sop_instance_uid}/frames/"
        )

    def _error(self, message: str, frame_number: int) -> FrameRetrievalError:
        return FrameRetrievalError(message, self.sop_instance_uid, frame_number)

    @property
    def fetches_neighbours(self) -> bool:
        """bool: whether reads ask for neighbouring frames too
        (:attr:`WebSettings.neighbours`)"""
        return settings.neighbours

    def read_frames(self, frame_numbers: Sequence[int]) -> list[bytes]:
        """Fetch encoded frames: one request, or concurrent chunks if many.

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
            When a frame number is out of range, authentication fails, the
            server keeps failing, or the answer holds the wrong frames

        """
        numbers = checked_frame_numbers(
            frame_numbers, self._number_of_frames, self.sop_instance_uid
        )
        size = max(1, settings.chunk_frames)
        chunks = [numbers[i : i + size] for i in range(0, len(numbers), size)]
        if len(chunks) <= 1:
            return self._request(numbers) if numbers else []
        results = list(_chunk_pool().map(self._request, chunks))
        return [frame for chunk in results for frame in chunk]

    def _request(self, numbers: list[int]) -> list[bytes]:
        from dicomslide.client import session_of

        url = self._url + ",".join(str(n) for n in numbers)
        session = session_of(self.client)
        timeout = getattr(self.client, "_timeout", None) or settings.timeout
        failures: list[str] = []
        for attempt in range(settings.retries + 1):
            if attempt:
                time.sleep(settings.backoff * 2 ** (attempt - 1))
            first = (
                self._accept
                if self._accept is not None
                else _accept_choice.get(self.client, 0)
            )
            for choice in range(first, len(ACCEPT_HEADERS)):
                try:
                    response = session.get(
                        url, headers={"Accept": ACCEPT_HEADERS[choice]}, timeout=timeout
                    )
                except requests.RequestException as error:
                    failures.append(f"{type(error).__name__}")
                    logger.debug("frames request failed: %r", error)
                    break  # transient: wait and try again
                status = response.status_code
                logger.debug("frames request: HTTP %d (Accept #%d)", status, choice)
                if status == 200:
                    frames = self._frames_of(response, numbers)
                    self._accept = choice
                    _accept_choice.setdefault(self.client, choice)
                    return frames
                if status in (401, 403):
                    raise self._error(
                        f"authentication failed (HTTP {status}) at "
                        f"{without_credentials(url)}",
                        numbers[0],
                    )
                if status == 404:
                    raise self._error(
                        f"not found (HTTP 404) at {without_credentials(url)}",
                        numbers[0],
                    )
                failures.append(f"HTTP {status}{_server_message(response)}")
                if status in (400, 406, 415) or status >= 500:
                    continue  # another media type may work
                raise self._error(
                    f"frames request failed: HTTP {status}{_server_message(response)}",
                    numbers[0],
                )
        raise self._error(
            f"frames request failed after {settings.retries + 1} attempts "
            f"({', '.join(dict.fromkeys(failures))}) at {without_credentials(url)}",
            numbers[0],
        )

    def _frames_of(
        self, response: requests.Response, numbers: list[int]
    ) -> list[bytes]:
        try:
            parts = parse_multipart(
                response.headers.get("Content-Type", ""), response.content
            )
        except ValueError as error:
            raise self._error(
                f"malformed frames response: {error}", numbers[0]
            ) from None
        if len(parts) != len(numbers):
            raise self._error(
                f"asked for {len(numbers)} frames, the server sent {len(parts)}",
                numbers[0],
            )
        syntaxes = {transfer_syntax_of(content_type) for content_type, _ in parts}
        syntaxes.discard(None)
        if len(syntaxes) == 1:
            self._transfer_syntax_uid = syntaxes.pop()
        return [payload for _, payload in parts]


def _server_message(response: requests.Response) -> str:
    """A short excerpt of an error response (Orthanc explains its errors)."""
    try:
        details = response.json()
    except ValueError:
        return ""
    if isinstance(details, dict):
        text = details.get("Details") or details.get("Message")
        if text:
            return f": {str(text)[:200]}"
    return ""
