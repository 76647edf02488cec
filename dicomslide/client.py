"""Talking to a ``DICOMClient``: opening sources, thread-safe local clients.

Everything the package asks of a client goes through :func:`call`, which
serialises calls into a ``DICOMfileClient`` (its SQLite connection is bound to
one thread and holds one shared cursor).
"""

from __future__ import annotations

import io
import logging
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse, urlsplit

import numpy as np
import requests
from dicomweb_client import DICOMfileClient, DICOMwebClient
from pydicom.dataset import Dataset, FileDataset

from dicomslide.codec import PixelDescription
from dicomslide.elements import (
    DISCOVERY_ELEMENTS,
    convert_elements,
    element_value,
    has_element,
)
from dicomslide.errors import DicomSlideError, ServerError
from dicomslide.fetch import (
    PIXEL_DATA_OFFSET,
    ClientFrameSource,
    FileFrameSource,
    FrameSource,
)
from dicomslide.transport import (
    RequestError,
    rebase,
    session_of,
    settings,
    split_credentials,
    without_credentials,
)
from dicomslide.utils import (
    PARAMETRIC_MAP_SOP_CLASS_UID,
    SEGMENTATION_SOP_CLASS_UIDS,
    VL_WSI_SOP_CLASS_UID,
)
from dicomslide.web import WebFrameSource, retrieve_bulk_data

logger = logging.getLogger(__name__)

T = TypeVar("T")

_adopt_lock = threading.Lock()
_LOCK_ATTRIBUTE = "_dicomslide_lock"


class LocalFolderClient(DICOMfileClient):
    """The embedded default client for a folder of DICOM Part 10 files.

    A ``DICOMfileClient`` whose index lives in memory (nothing is written into
    the data folder) and which can be used from any thread.

    Parameters
    ----------
    folder: Union[str, os.PathLike]
        Folder that holds the files (searched recursively)

    """

    def __init__(self, folder: str | os.PathLike) -> None:
        path = Path(folder).expanduser().resolve()
        if not path.is_dir():
            raise FileNotFoundError(f"not a folder: {path}")
        self.folder = path
        # What DICOMfileClient sets before indexing; the index itself is
        # built on first use of a DICOMweb-style method (see __getattr__):
        # find_slides reads the file headers once via headers() instead.
        self.base_url = path.as_uri()
        self.scheme = "file"
        self._headers: list[Dataset] | None = None
        self._headers_lock = threading.Lock()
        self._index_lock = threading.RLock()

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes not set yet: build the index now.
        state = self.__dict__
        if name != "_db_manager" or "_index_lock" not in state:
            raise AttributeError(name)
        if state.get("_building") == threading.get_ident():
            raise AttributeError(name)  # asked for while being built
        with state["_index_lock"]:
            if "_db_manager" not in state:
                state["_building"] = threading.get_ident()
                quiet = _QuietIndexing()
                index_logger = logging.getLogger("dicomweb_client.file")
                index_logger.addFilter(quiet)
                try:
                    super().__init__(
                        url=self.folder.as_uri(), in_memory=True, readonly=True
                    )
                    self._index_skipped_images()
                    _adopt(self)
                finally:
                    index_logger.removeFilter(quiet)
                    state["_building"] = None
        return state["_db_manager"]

    def headers(self) -> list[Dataset]:
        """Read the headers of the folder's Part 10 image files (once).

        Returns
        -------
        List[pydicom.Dataset]
            Metadata of every image instance (no pixel data); each knows its
            ``filename`` and where its pixel data start

        """
        with self._headers_lock:
            if self._headers is None:
                self._headers = [
                    header
                    for path in files_under(self.folder)
                    for header in [read_header(path)]
                    if header is not None
                ]
            return self._headers

    def _index_skipped_images(self) -> None:
        """Index image files that the parent's indexing gave up on.

        ``DICOMfileClient`` fails on files whose transfer syntax pydicom does
        not know (e.g. JPEG XL) because it computes frame offsets. We read
        frames ourselves, so such files are indexed without offsets.
        """
        manager = self._db_manager
        indexed = set(manager._get_indexed_file_paths())
        rows: tuple[list[Any], list[Any], list[Any]] = ([], [], [])
        for path in files_under(self.folder):
            if path in indexed or path.name == "DICOMDIR":
                continue
            try:
                with open(path, "rb") as fp:
                    if fp.read(132)[128:] != b"DICM":
                        continue  # not a Part 10 file
                    fp.seek(0)
                    # (typed as DicomFileLike, used as any binary file)
                    dataset = manager._read_selected_metadata(fp)  # type: ignore[arg-type]
                transfer_syntax_uid = str(dataset.file_meta.TransferSyntaxUID)
            except Exception:
                continue
            if "SOPClassUID" not in dataset or "Rows" not in dataset:
                continue
            logger.debug("indexing %s (transfer syntax %s)", path, transfer_syntax_uid)
            rows[0].append(manager._extract_study_metadata(dataset))
            rows[1].append(manager._extract_series_metadata(dataset))
            rows[2].append(
                (
                    *manager._extract_instance_metadata(dataset),
                    transfer_syntax_uid,
                    str(path.relative_to(self.folder)),
                    -1,
                    np.zeros((0,), dtype=np.uint32),
                )
            )
        if rows[2]:
            manager._insert_into_db(*rows)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.folder)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # The in-memory index does not travel; the receiving process rebuilds it.
        return (type(self), (str(self.folder),))


def files_under(folder: Path) -> list[Path]:
    """List the files in a folder and its subfolders, sorted.

    Like ``sorted(p for p in folder.rglob("*") if p.is_file())`` (symbolic
    links to folders are not followed), in a tenth of the time.

    Parameters
    ----------
    folder: pathlib.Path
        Folder

    Returns
    -------
    List[pathlib.Path]
        Files, in path order

    """
    files: list[Path] = []
    folders = [str(folder)]
    while folders:
        try:
            with os.scandir(folders.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        folders.append(entry.path)
                    elif entry.is_file():
                        files.append(Path(entry.path))
        except OSError as error:  # an unreadable subfolder is left out
            logger.debug("cannot list %s: %s", error.filename, error)
    return sorted(files)


def read_header(path: Path) -> Dataset | None:
    """Read the metadata of a Part 10 image file, up to its pixel data.

    Parameters
    ----------
    path: pathlib.Path
        File

    Returns
    -------
    Union[pydicom.Dataset, None]
        Metadata, or None for files that are not DICOM images

    """
    from pydicom import dcmread

    try:
        with open(path, "rb") as fp:
            head = fp.read(_HEAD_BYTES)
            if head[128:132] != b"DICM":
                return None
            parsed = _header_in(head)
            if parsed is None:  # the header goes on past the first bytes
                fp.seek(0)
                header = dcmread(fp, stop_before_pixels=True)
                offset = fp.tell()  # pydicom stops in front of the pixel data
            else:
                header, offset = parsed
    except Exception as error:  # a broken file must not stop discovery
        logger.warning("cannot read %s: %s", path, error)
        return None
    if not has_element(header, "SOPClassUID"):
        return None
    if (
        not has_element(header, "Rows")
        and element_value(header, "SOPClassUID") not in _SLIDE_IMAGE_CLASSES
    ):
        return None  # not an image (an image that lacks Rows is kept: broken)
    convert_elements(header, DISCOVERY_ELEMENTS)
    header.filename = str(path)
    setattr(header, PIXEL_DATA_OFFSET, offset)
    return header


#: SOP classes of the images slides are made of
_SLIDE_IMAGE_CLASSES = SEGMENTATION_SOP_CLASS_UIDS | {
    VL_WSI_SOP_CLASS_UID,
    PARAMETRIC_MAP_SOP_CLASS_UID,
}

#: Bytes read at the start of a file: most headers end within them
_HEAD_BYTES = 64 * 1024

# (7FE0,0010) Pixel Data, (7FE0,0008) Float and (7FE0,0009) Double Float
# Pixel Data, little endian
_PIXEL_DATA_TAGS = (b"\xe0\x7f\x10\x00", b"\xe0\x7f\x08\x00", b"\xe0\x7f\x09\x00")


def _header_in(head: bytes) -> tuple[FileDataset, int] | None:
    """Parse a header from a file's first bytes, if it ends within them.

    Returns the header and the offset of the pixel data, or None when the
    bytes hold only part of the header (or pydicom fails on them).
    """
    from pydicom import dcmread

    buffer = io.BytesIO(head)
    try:
        header = dcmread(buffer, stop_before_pixels=True)
    except Exception:
        return None
    offset = buffer.tell()
    whole_file = len(head) < _HEAD_BYTES
    if not whole_file and head[offset : offset + 4] not in _PIXEL_DATA_TAGS:
        return None
    header.buffer = None  # the bytes are not needed again
    return header, offset


class _QuietIndexing(logging.Filter):
    """Demote the index's complaints about non-DICOM files to DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            record.levelno == logging.WARNING
            and "failed to read file" in record.getMessage()
        ):
            logger.debug("not a DICOM file: %s", record.getMessage())
            return False
        return True


def open_client(source: Any) -> Any:
    """Get a client for what a user passed as a source of slides.

    Parameters
    ----------
    source: Union[dicomweb_client.api.DICOMClient, str, os.PathLike]
        A client; a path to a local folder (opens a
        :class:`LocalFolderClient`); or an ``http(s)://`` DICOMweb base URL
        (opens a ``dicomweb_client.DICOMwebClient`` with the timeouts and
        retries of :data:`dicomslide.web.settings`; a user name and password
        in the URL become the session's basic authentication and leave the
        URL)

    Returns
    -------
    dicomweb_client.api.DICOMClient
        Client

    Raises
    ------
    dicomslide.errors.DicomSlideError
        When a URL's user information is ambiguous, or a
        ``DICOMwebClient``'s URL holds user information

    """
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if isinstance(text, str) and text.startswith(("http://", "https://")):
            return open_web_client(text)
        if isinstance(text, str) and text.startswith("file://"):
            text = unquote(urlparse(text).path)
        return LocalFolderClient(text)
    if isinstance(source, DICOMfileClient) and not isinstance(
        source, LocalFolderClient
    ):
        _make_thread_safe(source)  # ours is made safe when its index is built
    if isinstance(source, DICOMwebClient):
        url = str(source.base_url)
        if "@" in urlsplit(url).netloc:
            raise DicomSlideError(
                "the URL of the DICOMwebClient holds a user name or password "
                f"({without_credentials(url)}): give them as the auth of the "
                "client's requests.Session, or pass the URL itself to dicomslide"
            )
    return source


def open_web_client(
    url: str, session: requests.Session | None = None
) -> DICOMwebClient:
    """Open a ``DICOMwebClient`` the way dicomslide opens a URL.

    The client's own requests (searches, metadata) take the timeouts and
    retries of :data:`dicomslide.web.settings`. A user name and password in
    the URL are moved into the session's basic authentication (unless it has
    one) before any request is made, and leave the URL.

    Parameters
    ----------
    url: str
        ``http(s)://`` DICOMweb base URL
    session: Union[requests.Session, None], optional
        Session to send requests with (a new one by default)

    Returns
    -------
    dicomweb_client.DICOMwebClient
        Client

    Raises
    ------
    dicomslide.errors.DicomSlideError
        When the URL's user information is ambiguous

    """
    try:
        url, credentials = split_credentials(url)
    except ValueError as error:
        raise DicomSlideError(
            f"{error}: give user name and password as the auth of a "
            "requests.Session (see the DICOMweb guide)"
        ) from None
    if session is None:
        session = requests.Session()
    if credentials is not None and session.auth is None:
        session.auth = credentials
    client = DICOMwebClient(url=url, session=session, timeout=settings.timeout)
    # its own retries (of searches and metadata) as ours
    client.set_http_retry_params(
        max_attempts=max(0, settings.retries) + 1,
        wait_exponential_multiplier=max(1, round(settings.backoff * 500)),
    )
    return client


def _make_thread_safe(client: DICOMfileClient) -> threading.RLock:
    """Let a ``DICOMfileClient`` be called from any thread.

    Its SQLite connection is replaced by one that is not bound to the creating
    thread (an in-memory index is copied over), and a lock is attached that
    :func:`call` holds during every call.
    """
    lock = getattr(client, _LOCK_ATTRIBUTE, None)
    if lock is not None:
        return lock
    if isinstance(client, LocalFolderClient):
        # Building its index makes it thread-safe. The index is set before it
        # is complete: the build's lock tells when another thread is done.
        with client._index_lock:
            client._db_manager  # noqa: B018
        return getattr(client, _LOCK_ATTRIBUTE)
    return _adopt(client)


def _adopt(client: DICOMfileClient) -> threading.RLock:
    """Replace a client's SQLite connection by a shared one and attach a lock."""
    with _adopt_lock:
        lock = getattr(client, _LOCK_ATTRIBUTE, None)
        if lock is not None:
            return lock
        manager = client._db_manager
        identifier = str(manager._db_file_identifier)
        shared = sqlite3.connect(
            identifier,
            detect_types=sqlite3.PARSE_DECLTYPES,
            check_same_thread=False,
        )
        shared.row_factory = sqlite3.Row
        if identifier == ":memory:":
            try:
                manager._connection.backup(shared)
            except sqlite3.ProgrammingError as error:
                shared.close()
                raise DicomSlideError(
                    "a DICOMfileClient with an in-memory index must first be used "
                    "by dicomslide in the thread that created it"
                ) from error
        manager._db_connection_handle = shared
        manager._db_cursor_handle = None
        lock = threading.RLock()
        setattr(client, _LOCK_ATTRIBUTE, lock)
        return lock


def client_lock(client: DICOMfileClient) -> threading.RLock:
    """The lock that serialises use of a ``DICOMfileClient``'s index.

    Parameters
    ----------
    client: dicomweb_client.DICOMfileClient
        Client

    Returns
    -------
    threading.RLock
        Lock

    """
    return _make_thread_safe(client)


def call(client: Any, method: str, /, **kwargs: Any) -> Any:
    """Call a client method, serialised where the client needs it.

    Parameters
    ----------
    client: dicomweb_client.api.DICOMClient
        Client
    method: str
        Name of the method
    **kwargs: Any
        Arguments of the method

    Returns
    -------
    Any
        What the method returns

    """
    if isinstance(client, DICOMfileClient):
        with _make_thread_safe(client):
            return getattr(client, method)(**kwargs)
    try:
        return getattr(client, method)(**kwargs)
    except requests.HTTPError as error:
        status = error.response.status_code if error.response is not None else None
        reason = (
            "authentication failed" if status in (401, 403) else _reason(error.response)
        )
        raise ServerError(f"{method} failed: HTTP {status}, {reason}", status) from None
    except requests.RequestException as error:
        raise ServerError(f"{method} failed: {type(error).__name__}") from None


def _reason(response: Any) -> str:
    """The reason an answer gives, without echoing URLs (they may hold secrets)."""
    return str(getattr(response, "reason", "") or "request failed")


def make_frame_source(
    client: Any, image: Dataset, desc: PixelDescription
) -> FrameSource:
    """Choose how to fetch the frames of an instance.

    Instances served by a ``DICOMfileClient`` are read from their files
    directly; all others through the client.

    Parameters
    ----------
    client: dicomweb_client.api.DICOMClient
        Client that serves the instance
    image: pydicom.Dataset
        Metadata of the instance
    desc: dicomslide.codec.PixelDescription
        Pixel layout of the instance's frames

    Returns
    -------
    dicomslide.fetch.FrameSource
        Frame source

    """
    number_of_frames = int(image.get("NumberOfFrames", 1) or 1)
    study = str(image.StudyInstanceUID)
    series = str(image.SeriesInstanceUID)
    sop = str(image.SOPInstanceUID)
    if isinstance(client, DICOMfileClient):
        path = getattr(image, "filename", None)  # metadata read from the file
        if not isinstance(path, str) or not os.path.isfile(path):
            with _make_thread_safe(client):
                path = client._db_manager.get_instance_file_path(study, series, sop)
        return FileFrameSource(path, sop, desc, number_of_frames, image)
    if isinstance(client, DICOMwebClient):
        return WebFrameSource(
            client,
            study,
            series,
            sop,
            number_of_frames,
            stored_transfer_syntax(image),
            desc=desc,
        )
    return ClientFrameSource(
        client, study, series, sop, number_of_frames, stored_transfer_syntax(image)
    )


def stored_transfer_syntax(image: Dataset) -> str | None:
    """Get the transfer syntax an instance is stored in, if its metadata say.

    Parameters
    ----------
    image: pydicom.Dataset
        Metadata of the instance

    Returns
    -------
    Union[str, None]
        Transfer Syntax UID

    """
    file_meta = getattr(image, "file_meta", None)
    if file_meta is not None and "TransferSyntaxUID" in file_meta:
        return str(file_meta.TransferSyntaxUID)
    for keyword in ("AvailableTransferSyntaxUID", "TransferSyntaxUID"):
        value = image.get(keyword)
        if value:
            return str(value)
    return None


#: Attribute of a metadata dataset that lists bulk data URIs of ICC profiles
ICC_PROFILE_URIS = "_dicomslide_icc_profile_uris"


def resolve_bulk_data_uri(client: Any, uri: str) -> str | None:
    """Make a BulkDataURI safe to fetch with a client.

    For a client of an ``http(s)`` server, the URI is re-based onto the
    client's base URL: its path must lie below the client's DICOMweb root, and
    the scheme, host and port used are the client's, whatever the URI names
    (servers behind proxies often write their internal host name). A URI that
    does not re-base cleanly is refused (see
    :func:`dicomslide.transport.rebase`). Other clients get the URI as is.

    Parameters
    ----------
    client: dicomweb_client.api.DICOMClient
        Client
    uri: str
        BulkDataURI from the metadata

    Returns
    -------
    Union[str, None]
        URI to fetch, or None if it must not be fetched

    """
    base = getattr(client, "base_url", None)
    if not isinstance(base, str) or not base.startswith(("http://", "https://")):
        return uri
    rebased = rebase(base, uri)
    if rebased is None:
        logger.warning(
            "not following a bulk data URI that is not on the client's server: %r",
            without_credentials(uri, mask="***@")[:300],
        )
    elif rebased != uri:
        logger.debug("bulk data URI re-based onto the client's base URL")
    return rebased


def fetch_bulk_icc_profile(client: Any, metadata: Dataset) -> bytes | None:
    """Fetch an ICC profile that the metadata give as bulk data.

    Parameters
    ----------
    client: dicomweb_client.api.DICOMClient
        Client that returned the metadata
    metadata: pydicom.Dataset
        Metadata of an image

    Returns
    -------
    Union[bytes, None]
        ICC profile, or None if the metadata name none

    Raises
    ------
    dicomslide.errors.ServerError
        When the metadata name a profile that could not be fetched (the
        message says why)

    """
    failures: list[str] = []
    status = None
    for uri in getattr(metadata, ICC_PROFILE_URIS, []):
        resolved = resolve_bulk_data_uri(client, uri)
        if resolved is None:
            failures.append("its bulk data URI is not on the client's server")
            continue
        try:
            if isinstance(client, DICOMwebClient):
                profile = retrieve_bulk_data(session_of(client), resolved)
            else:
                parts = call(
                    client,
                    "retrieve_bulkdata",
                    url=resolved,
                    media_types=("application/octet-stream",),
                )
                profile = bytes(parts[0]) if parts else b""
        except RequestError as error:
            failures.append(str(error))
            status = error.status
            continue
        except Exception as error:  # whatever another client raises
            failures.append(f"{type(error).__name__}: {error}")
            continue
        if profile:
            return profile
        failures.append("the server sent no bytes")
    if failures:
        raise ServerError(
            "ICC profile not retrieved: " + "; ".join(dict.fromkeys(failures)),
            status,
        )
    return None


class _FolderClientReference:
    """Pickles as a :class:`LocalFolderClient` for a folder.

    A ``DICOMfileClient`` must not be pickled: its pickling closes the live
    index connection of the original and loses an in-memory index. The
    receiving process opens its own embedded client on the same folder.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __reduce__(self) -> tuple[Any, ...]:
        return (LocalFolderClient, (str(self.folder),))


def portable(client: Any) -> Any:
    """A stand-in for a client that can travel to another process.

    Parameters
    ----------
    client: dicomweb_client.api.DICOMClient
        Client

    Returns
    -------
    Any
        The client itself, or for a ``DICOMfileClient`` an object that
        unpickles as a :class:`LocalFolderClient` on the same folder

    """
    if isinstance(client, DICOMfileClient) and not isinstance(
        client, LocalFolderClient
    ):
        return _FolderClientReference(Path(unquote(urlparse(client.base_url).path)))
    return client
