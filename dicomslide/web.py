"""DICOMweb retrieval: frames, bulk data, and instances when frames are refused.

:class:`WebFrameSource` asks a ``dicomweb_client.DICOMwebClient``'s server for
frames itself (with the client's session, so its authentication and headers
apply, and under the rules of :mod:`dicomslide.transport`), because the
transfer syntax of the frames is only in the response's part headers, which
the client drops. It asks for the stored bytes first (``transfer-syntax=*``)
and for another media type only where the server says that it cannot send
them (406, 415, or a 400 that names the media type); the choice is learnt per
client and given up for the stored bytes again now and then. Where a server
refuses the frames of an instance altogether (Orthanc answers 400 for float
pixel data; servers answer 500 where they cannot transcode), the instance is
retrieved whole instead, once, and kept (:attr:`WebSettings.instance_cache_bytes`).
It checks that the answer holds exactly the frames asked for, and splits
large reads into requests sent concurrently (:func:`split_request`).
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pydicom
import requests

from dicomslide import pool, uids
from dicomslide.codec import PixelDescription
from dicomslide.errors import FrameRetrievalError
from dicomslide.fetch import (
    ClientFrameSource,
    checked_frame_numbers,
    describe_pixels,
    split_frames,
)
from dicomslide.transport import (
    RequestError,
    describe,
    get,
    session_of,
    settings,
    without_credentials,
)
from dicomslide.transport import WebSettings as WebSettings

if TYPE_CHECKING:
    from dicomweb_client import DICOMwebClient

logger = logging.getLogger(__name__)

#: Accept headers for frames, in the order they are tried
ACCEPT_HEADERS = (
    'multipart/related; type="application/octet-stream"; transfer-syntax=*',
    'multipart/related; type="application/octet-stream"',
)
#: Accept headers for whole instances, in the order they are tried
INSTANCE_ACCEPT_HEADERS = (
    'multipart/related; type="application/dicom"; transfer-syntax=*',
    'multipart/related; type="application/dicom"',
)
#: Accept header for bulk data
BULK_DATA_ACCEPT = 'multipart/related; type="application/octet-stream"'
# Transfer syntax of frames whose part names a media type but no syntax
_MEDIA_TYPE_SYNTAXES = {
    "image/jpeg": uids.JPEGBaseline8Bit,
    "image/jls": uids.JPEGLSLossless,
    "image/jp2": uids.JPEG2000,
    "image/jph": uids.HTJ2K,
    "image/jphc": uids.HTJ2K,
    "image/jxl": uids.JPEGXL,
    "image/dicom-rle": uids.RLELossless,
    "image/x-dicom-rle": uids.RLELossless,
}
# Words of a 400 answer that blames the media type asked for
_MEDIA_TYPE_WORDS = (
    "media type",
    "media-type",
    "mediatype",
    "accept",
    "transfer syntax",
    "transfer-syntax",
    "content type",
    "content-type",
)
_PIXEL_DATA_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


@dataclass
class _Learned:
    """What worked (the index of an Accept header; 1 for frames read from the
    instance retrieved whole), and how much it has been used since."""

    index: int
    since: float = field(default_factory=time.monotonic)
    uses: int = 0

    def start(self) -> int:
        """What to try first: 0 (the stored bytes, as frames) again once the
        choice is old (:attr:`WebSettings.reprobe_reads`, ``reprobe_seconds``)."""
        if self.index and (
            self.uses >= settings.reprobe_reads
            or time.monotonic() - self.since >= settings.reprobe_seconds
        ):
            return 0
        self.uses += 1
        return self.index


class _Instances:
    """Encoded frames of instances retrieved whole, within a byte budget
    (:attr:`WebSettings.instance_cache_bytes`); least recently used go first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[list[bytes], str, int]] = OrderedDict()
        self._nbytes = 0

    def get(self, key: str) -> tuple[list[bytes], str] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0], entry[1]

    def put(self, key: str, frames: list[bytes], transfer_syntax_uid: str) -> None:
        nbytes = sum(len(frame) for frame in frames)
        with self._lock:
            if key in self._entries or nbytes > settings.instance_cache_bytes:
                return
            self._entries[key] = (frames, transfer_syntax_uid, nbytes)
            self._nbytes += nbytes
            while self._nbytes > settings.instance_cache_bytes:
                _, (_, _, dropped) = self._entries.popitem(last=False)
                self._nbytes -= dropped


_accept_choice: weakref.WeakKeyDictionary[Any, _Learned] = weakref.WeakKeyDictionary()
_instances = _Instances()
_retrieval_lock = threading.Lock()


def _forget_after_fork() -> None:
    global _instances, _retrieval_lock
    _instances = _Instances()
    _retrieval_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


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


def _refuses_media_type(response: requests.Response) -> bool:
    """Whether an answer says that the server cannot send the media type asked
    for: 406, 415, or a 400 that names the media type."""
    status = response.status_code
    if status in (406, 415):
        return True
    if status != 400:
        return False
    text = f"{response.reason or ''} {response.text[:2000]}".lower()
    return any(word in text for word in _MEDIA_TYPE_WORDS)


def retrieve_bulk_data(session: requests.Session, url: str) -> bytes:
    """Fetch one bulk data item (e.g. an ICC profile).

    Parameters
    ----------
    session: requests.Session
        Session of the client
    url: str
        URL on the client's server (see :func:`dicomslide.transport.rebase`)

    Returns
    -------
    bytes
        The item

    Raises
    ------
    dicomslide.transport.RequestError
        When the server does not send it

    """
    response = get(session, url, BULK_DATA_ACCEPT)
    if response.status_code != 200:
        raise RequestError(describe(response), response)
    content_type = response.headers.get("Content-Type", "")
    if not content_type.lower().startswith("multipart/"):
        return response.content
    try:
        parts = parse_multipart(content_type, response.content)
    except ValueError as error:
        raise RequestError(f"malformed answer: {error}", response) from None
    if not parts:
        raise RequestError("the answer holds no part", response)
    return parts[0][1]


def split_request(numbers: list[int]) -> list[list[int]]:
    """Split the frames of a read into the requests that fetch them.

    A read of at least twice :attr:`WebSettings.split_frames` frames is split
    into requests of at least that many frames each, as many as
    :attr:`WebSettings.connections`; no request holds more than
    :attr:`WebSettings.chunk_frames` frames.

    Parameters
    ----------
    numbers: List[int]
        Frame numbers, in the order of the read

    Returns
    -------
    List[List[int]]
        Frame numbers of each request, in order

    """
    if not numbers:
        return []
    least = max(1, settings.split_frames)
    count = min(len(numbers) // least, max(1, settings.connections))
    count = max(count, 1, -(-len(numbers) // max(1, settings.chunk_frames)))
    size = -(-len(numbers) // count)
    return [numbers[i : i + size] for i in range(0, len(numbers), size)]


class WebFrameSource(ClientFrameSource):
    """Fetches the frames of one instance from a DICOMweb server.

    Constructed like :class:`dicomslide.fetch.ClientFrameSource`, for a
    ``dicomweb_client.DICOMwebClient`` whose session (authentication, headers)
    is used; the transfer syntax becomes that of the frames last received.
    The keyword argument `desc` (:class:`dicomslide.codec.PixelDescription`)
    gives the size of the instance's pixels, which bounds what is retrieved
    whole where the server refuses to send frames.
    """

    def __init__(
        self,
        client: DICOMwebClient,
        *args: Any,
        desc: PixelDescription | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(client, *args, **kwargs)
        self._accept: _Learned | None = None  # this instance's Accept header
        # index 1 while frames come from the instance retrieved whole
        self._whole: _Learned | None = None
        self._told = False  # whether the fallback was logged
        self._pixel_nbytes = (
            None
            if desc is None
            else -(
                -self._number_of_frames
                * desc.rows
                * desc.columns
                * desc.samples_per_pixel
                * desc.bits_allocated
                // 8
            )
        )
        root = str(client.base_url).rstrip("/")
        prefix = getattr(client, "wado_url_prefix", None)
        if prefix:
            root += "/" + str(prefix).strip("/")
        self._instance_url = (
            f"{root}/studies/{self.study_instance_uid}/series/"
            f"{self.series_instance_uid}/instances/{self.sop_instance_uid}"
        )
        self._url = self._instance_url + "/frames/"

    def _error(self, message: str, frame_number: int) -> FrameRetrievalError:
        return FrameRetrievalError(message, self.sop_instance_uid, frame_number)

    @property
    def fetches_neighbours(self) -> bool:
        """bool: whether reads ask for neighbouring frames too
        (:attr:`WebSettings.neighbours`)"""
        return settings.neighbours

    def request_size(self, count: int) -> int:
        """Frames per request when `count` frames are fetched in the
        background (as :func:`split_request` splits a read).

        Parameters
        ----------
        count: int
            Number of frames

        Returns
        -------
        int
            Largest number of frames in one request

        """
        return max(1, len(split_request(list(range(count)))[0])) if count else 1

    @property
    def remote(self) -> bool:
        """bool: True: every request costs a round trip, so reads of a scan
        are fetched further ahead (see :mod:`dicomslide.readahead`)"""
        return True

    def read_frames(self, frame_numbers: Sequence[int]) -> list[bytes]:
        """Fetch encoded frames: one request, or concurrent ones if many
        (:func:`split_request`).

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
            server keeps failing or redirects to another origin, or the
            answer holds the wrong frames

        """
        if session_of(self.client) is None:  # e.g. unpickled where it cannot be
            return super().read_frames(frame_numbers)
        numbers = checked_frame_numbers(
            frame_numbers, self._number_of_frames, self.sop_instance_uid
        )
        chunks = split_request(numbers)
        if len(chunks) <= 1:
            return self._request(numbers) if numbers else []
        if pool.in_io_thread():  # waiting for its own pool could deadlock it
            results = [self._request(chunk) for chunk in chunks]
        else:
            # this thread sends the first request, so that the read goes on
            # however busy the I/O pool is with background fetches
            executor = pool.io_executor()
            futures = [executor.submit(self._request, c) for c in chunks[1:]]
            try:
                results = [self._request(chunks[0])]
                results.extend(future.result() for future in futures)
            finally:
                for future in futures:
                    future.cancel()
        return [frame for chunk in results for frame in chunk]

    def _session(self) -> requests.Session:
        session = session_of(self.client)
        if session is None:
            raise FrameRetrievalError(
                "the client's HTTP session cannot be reached", self.sop_instance_uid
            )
        return session

    def _request(self, numbers: list[int]) -> list[bytes]:
        if self._whole is not None and self._whole.start():
            return self._from_instance(numbers, "")
        url = self._url + ",".join(str(n) for n in numbers)
        shown = without_credentials(url)
        session = self._session()
        learned = self._accept or _accept_choice.get(self.client)
        start = 0 if learned is None else learned.start()
        choice = start
        while True:
            try:
                response = get(session, url, ACCEPT_HEADERS[choice])
            except RequestError as failure:
                status = failure.status
                if status is not None and status >= 500 and status != 503:
                    # the server keeps failing on these frames: maybe it
                    # cannot send them at all
                    return self._from_instance(numbers, str(failure))
                raise self._error(
                    f"frames request failed: {failure} at {shown}", numbers[0]
                ) from None
            status = response.status_code
            logger.debug("frames request: HTTP %d (Accept #%d)", status, choice)
            if status == 200:
                frames = self._frames_of(response, numbers)
                self._learn(learned, start, choice)
                self._whole = None
                return frames
            if status in (401, 403):
                raise self._error(
                    f"authentication failed (HTTP {status}) at {shown}", numbers[0]
                )
            if status == 404:
                raise self._error(f"not found (HTTP 404) at {shown}", numbers[0])
            if _refuses_media_type(response) and choice + 1 < len(ACCEPT_HEADERS):
                choice += 1
                continue
            if status in (400, 406, 415) or status >= 500:
                return self._from_instance(numbers, describe(response))
            raise self._error(
                f"frames request failed: {describe(response)} at {shown}", numbers[0]
            )

    def _learn(self, learned: _Learned | None, start: int, choice: int) -> None:
        """Remember the Accept header that worked, for this instance and, when
        it was the client's choice that was tried, for the client."""
        if learned is not None and learned.index == start == choice:
            return
        known = _accept_choice.get(self.client)
        self._accept = _Learned(choice)
        if known is None or known is learned or choice == 0:
            _accept_choice[self.client] = _Learned(choice)

    def _from_instance(self, numbers: list[int], refusal: str) -> list[bytes]:
        """Frames from the instance retrieved whole (once, then kept)."""
        key = self._instance_url
        entry = _instances.get(key)
        limit = settings.instance_cache_bytes
        if entry is None and (self._pixel_nbytes or 0) > limit:
            raise self._error(
                f"frames refused ({refusal or 'before'}), and the instance is too "
                f"large to be retrieved whole: {self._pixel_nbytes} bytes of "
                f"pixels, more than WebSettings.instance_cache_bytes ({limit})",
                numbers[0],
            )
        if entry is None:
            with _retrieval_lock:
                entry = _instances.get(key)
                if entry is None:
                    try:
                        entry = self._retrieve_instance()
                    except (RequestError, ValueError) as error:
                        because = f"frames refused ({refusal}); " if refusal else ""
                        raise self._error(
                            f"{because}retrieving the instance failed: {error} at "
                            f"{without_credentials(key)}",
                            numbers[0],
                        ) from None
                    _instances.put(key, *entry)
        if not self._told:
            logger.info(
                "instance %s: the server does not send its frames (%s); they "
                "are read from the instance, retrieved whole",
                self.sop_instance_uid,
                refusal,
            )
            self._told = True
        if refusal:  # (again): asked for frames again after a while only
            self._whole = _Learned(1)
        frames, self._transfer_syntax_uid = entry
        return [frames[n - 1] for n in numbers]

    def _retrieve_instance(self) -> tuple[list[bytes], str]:
        """Retrieve the instance and split its pixel data into frames."""
        session = self._session()
        for accept in INSTANCE_ACCEPT_HEADERS:
            response = get(session, self._instance_url, accept)
            if response.status_code == 200 or not _refuses_media_type(response):
                break
        if response.status_code != 200:
            raise RequestError(describe(response), response)
        content_type = response.headers.get("Content-Type", "")
        body = response.content
        if content_type.lower().startswith("multipart/"):
            parts = parse_multipart(content_type, body)
            if len(parts) != 1:
                raise ValueError(f"the answer holds {len(parts)} instances, not 1")
            body = parts[0][1]
        try:
            dataset = pydicom.dcmread(io.BytesIO(body))
        except Exception as error:  # whatever pydicom raises for bad input
            raise ValueError(f"not a DICOM instance: {error}") from None
        if str(dataset.get("SOPInstanceUID", "")) != self.sop_instance_uid:
            raise ValueError("the server sent another instance")
        syntax = str(dataset.file_meta.get("TransferSyntaxUID", ""))
        keyword = next((k for k in _PIXEL_DATA_KEYWORDS if k in dataset), None)
        if keyword is None:
            raise ValueError("the instance holds no pixel data")
        try:
            frames = split_frames(
                bytes(dataset[keyword].value),
                syntax,
                describe_pixels(dataset, syntax),
                self._number_of_frames,
            )
        except (AttributeError, TypeError, ValueError) as error:
            raise ValueError(f"its pixel data cannot be split: {error}") from None
        logger.debug("instance retrieved whole: %d bytes", len(body))
        return frames, syntax

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
