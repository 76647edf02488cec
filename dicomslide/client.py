"""Sources of slides: choosing a client, and asking clients for what they serve.

dicomslide reads from any ``dicomweb_client`` ``DICOMClient``. This module

- opens a client for what a user passes (:func:`open_client`): a folder path
  gives the embedded :class:`dicomslide.folder.LocalFolderClient`, a URL a
  ``DICOMwebClient``;
- makes every call into a client (:func:`call`) and chooses how frames are
  fetched (:func:`make_frame_source`): from files directly, from a DICOMweb
  server with dicomslide's own requests (:mod:`dicomslide.web`), or through
  the client's ``retrieve_instance_frames``;
- serves a user's own ``DICOMfileClient`` through its public methods only
  (:class:`UserFileClient`).

A ``DICOMfileClient`` keeps one SQLite connection that only the thread which
created the client may use. dicomslide calls the user's client in the calling
thread, one call at a time. In a thread that the connection refuses, the call
is answered instead by dicomslide's own index of the same folder, which
answers searches and retrievals as the client does. Frames are read from the
files directly: the metadata read from a file name it, else the folder index
finds the instance's file.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard, cast
from urllib.parse import unquote, urlparse, urlsplit

import requests
from pydicom.dataset import Dataset

from dicomslide.codec import PixelDescription
from dicomslide.errors import DicomSlideError, ServerError
from dicomslide.fetch import ClientFrameSource, FrameSource
from dicomslide.fileframes import FileFrameSource
from dicomslide.folder import LocalFolderClient
from dicomslide.urls import without_credentials

if TYPE_CHECKING:
    from dicomweb_client import DICOMfileClient, DICOMwebClient
    from dicomweb_client.protocol import DICOMClient

    from dicomslide.objectfolder import ObjectFolderClient

__all__ = [
    "ICC_PROFILE_URIS",
    "LocalFolderClient",
    "UserFileClient",
    "call",
    "fetch_bulk_icc_profile",
    "folder_index",
    "folder_of",
    "is_file_client",
    "is_object_folder",
    "is_web_client",
    "loaded_class",
    "make_frame_source",
    "open_client",
    "open_web_client",
    "portable",
    "resolve_bulk_data_uri",
    "stored_transfer_syntax",
]

logger = logging.getLogger(__name__)


def loaded_class(module: str, name: str) -> type | None:
    """A class of a module, if that module has been imported.

    No object is an instance of a class whose module was never imported, so
    asking whether a client is a ``DICOMwebClient`` (or one of dicomslide's
    clients of object storage) needs no import: the modules of the clients
    that a folder does not use stay out of the import of dicomslide.

    Parameters
    ----------
    module: str
        Name of the module
    name: str
        Name of the class in it

    Returns
    -------
    Union[type, None]
        The class, or None when the module is not imported

    """
    found = getattr(sys.modules.get(module), name, None)
    return found if isinstance(found, type) else None


def is_file_client(client: object) -> TypeGuard[DICOMfileClient]:
    """Whether a client is a ``dicomweb_client.DICOMfileClient``."""
    cls = loaded_class("dicomweb_client", "DICOMfileClient")
    return cls is not None and isinstance(client, cls)


def is_web_client(client: object) -> TypeGuard[DICOMwebClient]:
    """Whether a client is a ``dicomweb_client.DICOMwebClient``."""
    cls = loaded_class("dicomweb_client", "DICOMwebClient")
    return cls is not None and isinstance(client, cls)


def is_object_folder(client: object) -> TypeGuard[ObjectFolderClient]:
    """Whether a client is a :class:`dicomslide.objectfolder.ObjectFolderClient`."""
    cls = loaded_class("dicomslide.objectfolder", "ObjectFolderClient")
    return cls is not None and isinstance(client, cls)


def _session_of(client: DICOMwebClient) -> requests.Session | None:
    from dicomslide.transport import session_of

    return session_of(client)


def open_client(source: Any) -> DICOMClient:
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
            # dicomweb-client types DICOMwebClient.protocol as str, its
            # DICOMClient protocol as str | None: the client is one all the same
            return cast("DICOMClient", open_web_client(text))
        if isinstance(text, str) and text.startswith("file://"):
            text = unquote(urlparse(text).path)
        return LocalFolderClient(text)
    if is_web_client(source):
        url = str(source.base_url)
        if "@" in urlsplit(url).netloc:
            raise DicomSlideError(
                "the URL of the DICOMwebClient holds a user name or password "
                f"({without_credentials(url)}): give them as the auth of the "
                "client's requests.Session, or pass the URL itself to dicomslide"
            )
    return cast("DICOMClient", source)


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
    # the HTTP stack of DICOMweb loads with the first URL
    from dicomweb_client import DICOMwebClient

    from dicomslide.transport import (
        give_session,
        new_session,
        settings,
        split_credentials,
    )

    try:
        url, credentials = split_credentials(url)
    except ValueError as error:
        raise DicomSlideError(
            f"{error}: give user name and password as the auth of a "
            "requests.Session (see the DICOMweb guide)"
        ) from None
    if session is None:
        session = new_session()
    if credentials is not None and session.auth is None:
        session.auth = credentials
    client = DICOMwebClient(url=url, session=session, timeout=settings.timeout)
    give_session(client, session)
    # its own retries (of searches and metadata) as ours
    client.set_http_retry_params(
        max_attempts=max(0, settings.retries) + 1,
        wait_exponential_multiplier=max(1, round(settings.backoff * 500)),
    )
    return client


def folder_of(client: DICOMfileClient) -> Path:
    """The folder a ``DICOMfileClient`` serves (from its ``base_url``).

    Parameters
    ----------
    client: dicomweb_client.DICOMfileClient
        Client

    Returns
    -------
    pathlib.Path
        Folder

    """
    return Path(unquote(urlparse(str(client.base_url)).path))


def _refused_thread(error: BaseException) -> bool:
    """Whether an error (or one it was raised from) is SQLite refusing to be
    used from another thread than the one that created the connection."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        sqlite_error = loaded_class("sqlite3", "ProgrammingError")
        if (
            sqlite_error is not None
            and isinstance(cause, sqlite_error)
            and "thread" in str(cause)
        ):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


class UserFileClient:
    """A user's ``DICOMfileClient``, served through its public methods.

    Calls go to the user's client in the calling thread, one at a time (the
    client shares one SQLite cursor). When the client's SQLite connection
    refuses the thread (it is bound to the thread that created the client),
    the call is answered by :meth:`index`, dicomslide's own index of the same
    folder, and later calls from that thread go there directly. Pickled, it
    becomes a :class:`dicomslide.folder.LocalFolderClient` of the folder (a
    ``DICOMfileClient`` must not be pickled: that closes its connection and
    loses an in-memory index).

    Use :func:`UserFileClient.of` to get the one of a client.

    Parameters
    ----------
    client: dicomweb_client.DICOMfileClient
        The user's client

    """

    _registry: weakref.WeakKeyDictionary[DICOMfileClient, UserFileClient] = (
        weakref.WeakKeyDictionary()
    )
    _registry_lock = threading.Lock()

    def __init__(self, client: DICOMfileClient) -> None:
        self._client = weakref.ref(client)
        self.folder = folder_of(client)
        self.base_url = str(client.base_url)
        self._lock = threading.RLock()
        self._local = threading.local()
        self._index: LocalFolderClient | None = None
        self._index_lock = threading.Lock()

    @classmethod
    def of(cls, client: DICOMfileClient) -> UserFileClient:
        """The adapter of a client (one per client).

        Parameters
        ----------
        client: dicomweb_client.DICOMfileClient
            The user's client

        Returns
        -------
        UserFileClient
            Its adapter

        """
        with cls._registry_lock:
            adapter = cls._registry.get(client)
            if adapter is None:
                adapter = cls._registry[client] = cls(client)
            return adapter

    def __reduce__(self) -> tuple[Any, ...]:
        return (LocalFolderClient, (str(self.folder),))

    def index(self) -> LocalFolderClient:
        """dicomslide's own index of the client's folder (made on first use).

        Returns
        -------
        dicomslide.folder.LocalFolderClient
            Client of the same folder

        """
        with self._index_lock:
            if self._index is None:
                self._index = LocalFolderClient(self.folder)
            return self._index

    def call(self, method: str, kwargs: dict[str, Any]) -> Any:
        """Call a method of the user's client (or, where its connection
        refuses the thread, of :meth:`index`).

        Parameters
        ----------
        method: str
            Name of a ``DICOMClient`` method
        kwargs: Dict[str, Any]
            Its arguments

        Returns
        -------
        Any
            What the method returns

        """
        client = self._client()
        if client is not None and not getattr(self._local, "refused", False):
            try:
                with self._lock:
                    return getattr(client, method)(**kwargs)
            except Exception as error:
                if not _refused_thread(error):
                    raise
            self._local.refused = True
            logger.debug(
                "the DICOMfileClient of %s refuses thread %s: the folder's own "
                "index answers there",
                self.folder,
                threading.current_thread().name,
            )
        return getattr(self.index(), method)(**kwargs)

    def retrieve_instance_frames(self, **kwargs: Any) -> list[bytes]:
        """``retrieve_instance_frames`` of the client (see :meth:`call`)."""
        frames: list[bytes] = self.call("retrieve_instance_frames", kwargs)
        return frames


def call(client: DICOMClient, method: str, /, **kwargs: Any) -> Any:
    """Call a client method; a user's ``DICOMfileClient`` through its adapter.

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

    Raises
    ------
    dicomslide.errors.ServerError
        When a request fails (HTTP errors of clients other than a
        ``DICOMfileClient``)

    """
    if is_file_client(client):
        return UserFileClient.of(client).call(method, kwargs)
    try:
        return getattr(client, method)(**kwargs)
    except requests.HTTPError as error:
        status = error.response.status_code if error.response is not None else None
        reason = (
            "authentication failed" if status in (401, 403) else _reason(error.response)
        )
        if status == 404:
            root = without_credentials(str(getattr(client, "base_url", "")))
            reason += f"; is the DICOMweb root right? ({root})"
        raise ServerError(f"{method} failed: HTTP {status}, {reason}", status) from None
    except requests.RequestException as error:
        raise ServerError(f"{method} failed: {_connection_failure(error)}") from None


def _reason(response: Any) -> str:
    """The reason an answer gives, without echoing URLs (they may hold secrets)."""
    return str(getattr(response, "reason", "") or "request failed")


def _connection_failure(error: requests.RequestException) -> str:
    """Where a request could not go, and why: host, port and the cause."""
    url = getattr(error.request, "url", None) or ""
    parts = urlsplit(str(url))
    where = parts.hostname or "the server"
    if parts.port or parts.scheme:
        where += f":{parts.port or (443 if parts.scheme == 'https' else 80)}"
    causes: list[BaseException] = []
    cause: BaseException | None = error
    while cause is not None and len(causes) < 10:
        causes.append(cause)
        cause = cause.__cause__ or cause.__context__
        if cause is None and causes[-1].args:
            nested = causes[-1].args[0]
            cause = nested if isinstance(nested, BaseException) else None
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        why = "connection refused"
    elif any(isinstance(c, socket.gaierror) for c in causes):
        why = "host name not found"
    elif isinstance(error, requests.Timeout):
        why = (
            f"no answer in time ({type(error).__name__}; "
            "see dicomslide.web.settings.timeout)"
        )
    else:
        why = type(error).__name__
    return f"cannot reach {where}: {why}"


def folder_index(client: DICOMClient) -> LocalFolderClient | None:
    """dicomslide's index of the folder a client serves, if it serves one.

    Parameters
    ----------
    client: dicomweb_client.api.DICOMClient
        Client

    Returns
    -------
    Union[dicomslide.folder.LocalFolderClient, None]
        The client itself if it is one; for a ``DICOMfileClient`` the index of
        its folder (see :class:`UserFileClient`); else None

    """
    if isinstance(client, LocalFolderClient):
        return client
    if is_file_client(client):
        return UserFileClient.of(client).index()
    return None


def make_frame_source(
    client: DICOMClient, image: Dataset, desc: PixelDescription
) -> FrameSource:
    """Choose how to fetch the frames of an instance.

    The frames of a folder's instances (of a
    :class:`~dicomslide.folder.LocalFolderClient` or a ``DICOMfileClient``)
    are read from their files directly: the file the metadata were read from,
    else the one the folder's index finds. Those of a ``DICOMwebClient`` are
    fetched by :class:`dicomslide.web.WebFrameSource`; all others through the
    client's ``retrieve_instance_frames``.

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
    if is_object_folder(client):
        source = client.instance_frame_source(image, desc, number_of_frames)
        if source is not None:
            return source
    elif isinstance(client, LocalFolderClient) or is_file_client(client):
        path = getattr(image, "filename", None)  # metadata read from the file
        header: Dataset | None = image
        if not isinstance(path, str) or not os.path.isfile(path):
            index = folder_index(cast("DICOMClient", client))
            header = None if index is None else index.find_header(sop)
            path = None if header is None else header.filename
        if path is not None:
            return FileFrameSource(path, sop, desc, number_of_frames, header)
        if is_file_client(client):
            client = cast("DICOMClient", UserFileClient.of(client))
    elif is_web_client(client) and _session_of(client) is not None:
        from dicomslide.web import WebFrameSource

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


def resolve_bulk_data_uri(client: DICOMClient, uri: str) -> str | None:
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
    from dicomslide.transport import rebase

    rebased = rebase(base, uri)
    if rebased is None:
        logger.warning(
            "not following a bulk data URI that is not on the client's server: %r",
            without_credentials(uri, mask="***@")[:300],
        )
    elif rebased != uri:
        logger.debug("bulk data URI re-based onto the client's base URL")
    return rebased


def fetch_bulk_icc_profile(client: DICOMClient, metadata: Dataset) -> bytes | None:
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
    from dicomslide.transport import RequestError

    failures: list[str] = []
    status = None
    for uri in getattr(metadata, ICC_PROFILE_URIS, []):
        resolved = resolve_bulk_data_uri(client, uri)
        if resolved is None:
            failures.append("its bulk data URI is not on the client's server")
            continue
        try:
            session = _session_of(client) if is_web_client(client) else None
            if session is not None:
                from dicomslide.web import retrieve_bulk_data

                profile = retrieve_bulk_data(session, resolved)
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


def portable(client: DICOMClient) -> DICOMClient:
    """A stand-in for a client that can travel to another process.

    Parameters
    ----------
    client: dicomweb_client.api.DICOMClient
        Client

    Returns
    -------
    Any
        The client itself, or for a ``DICOMfileClient`` its
        :class:`UserFileClient`, which unpickles as a
        :class:`dicomslide.folder.LocalFolderClient` on the same folder

    """
    if is_file_client(client):
        return cast("DICOMClient", UserFileClient.of(client))
    return client
