"""Objects in object storage (S3, GCS, any fsspec filesystem), read in place.

Part 10 files that sit as objects in a bucket are read with ranged requests
through `fsspec <https://filesystem-spec.readthedocs.io>`_: nothing is
downloaded whole. :class:`ObjectStore` is where the objects are (a URL and the
``storage_options`` passed to fsspec); it pickles as those two and opens its
own fsspec filesystem in each process, so that workers make their own
connections. :class:`ObjectFile` is one object; :class:`RangeReader` reads one
as a file object, fetching the bytes it is asked for in few, growing ranges, so
that the local header reader (:func:`dicomslide.files.parse_part10_header`)
and frame index (:mod:`dicomslide.fileframes`) work on it unchanged.

fsspec and the filesystems of the storage services (s3fs, gcsfs) come with the
``dicomslide[cloud]`` extra; without them a URL gives a
:class:`dicomslide.errors.MissingExtraError` that names the extra.
"""

from __future__ import annotations

import io
import json
import logging
import os
import pickle
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from dicomslide.errors import DicomSlideError, MissingExtraError, ObjectNotFoundError
from dicomslide.urls import is_object_url as is_object_url
from dicomslide.urls import without_credentials

logger = logging.getLogger(__name__)

#: The extra that brings fsspec and the filesystems of storage services
CLOUD_EXTRA = "dicomslide[cloud]"

#: Requests that run at once per process (header reads, runs of frames)
MAX_CONCURRENCY = 16

#: Bytes read first from an object: most headers and offset tables fit
FIRST_READ = 64 * 1024
_LARGEST_READ_AHEAD = 16 * 1024 * 1024

#: Tries of a request that fails other than with a missing object
_ATTEMPTS = 3
_RETRY_DELAY = 0.2

_T = TypeVar("_T")
_R = TypeVar("_R")


#: Environment variable that holds the storage options used when none are
#: given, as a JSON object (for the OpenSlide facade and the command line)
STORAGE_OPTIONS_VARIABLE = "DICOMSLIDE_STORAGE_OPTIONS"


def default_storage_options() -> dict[str, Any]:
    """The storage options in :data:`STORAGE_OPTIONS_VARIABLE` (none if unset).

    Raises
    ------
    dicomslide.errors.DicomSlideError
        When the variable holds no JSON object (its value is not shown)

    """
    text = os.environ.get(STORAGE_OPTIONS_VARIABLE, "").strip()
    if not text:
        return {}
    try:
        options = json.loads(text)
    except ValueError:
        options = None
    if not isinstance(options, dict):
        raise DicomSlideError(f"{STORAGE_OPTIONS_VARIABLE} must hold a JSON object")
    return options


def _fsspec() -> Any:
    try:
        import fsspec
    except ImportError as error:
        raise MissingExtraError(
            f"reading object storage needs fsspec: install {CLOUD_EXTRA} "
            f"(pip install '{CLOUD_EXTRA}')"
        ) from error
    return fsspec


_executor: ThreadPoolExecutor | None = None
_executor_pid = -1
_executor_lock = threading.Lock()


def run_concurrently(function: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
    """Call a function on each item, at most :data:`MAX_CONCURRENCY` at once.

    The threads are the process's own: a forked child starts its own pool.
    """
    global _executor, _executor_pid
    if len(items) <= 1:
        return [function(item) for item in items]
    with _executor_lock:
        if _executor is None or _executor_pid != os.getpid():
            _executor = ThreadPoolExecutor(
                MAX_CONCURRENCY, thread_name_prefix="dicomslide-objects"
            )
            _executor_pid = os.getpid()
        executor = _executor
    return list(executor.map(function, items))


class ObjectStore:
    """Where objects are: a URL and the ``storage_options`` of fsspec, or an
    fsspec filesystem and a path in it.

    Pickles as those; each process opens its own fsspec filesystem (and so
    its own connections) on first use. A filesystem given is used as it is in
    the process that made it; another process (a forked or spawned worker)
    uses a copy made from its pickle, which fsspec makes from the arguments
    the filesystem was created with. Its repr leaves out the options, which
    may hold credentials.

    Parameters
    ----------
    url: str
        URL of any object or prefix of the store (gives the protocol); with
        `filesystem`, a path in it
    storage_options: Union[Mapping[str, Any], None], optional
        Options of the fsspec filesystem (credentials, ``endpoint_url``, ...)
    filesystem: Union[fsspec.AbstractFileSystem, None], optional
        The filesystem of the objects (then `url` is a path in it)

    Raises
    ------
    dicomslide.errors.MissingExtraError
        When fsspec, or the filesystem of the URL's protocol, is not installed
    TypeError
        When `filesystem` is no fsspec filesystem, or comes with options

    """

    def __init__(
        self,
        url: str,
        storage_options: Mapping[str, Any] | None = None,
        filesystem: Any = None,
    ):
        self.url = url
        self.filesystem = filesystem
        self._lock = threading.Lock()
        self._fs: Any = None
        self._pid = -1
        if filesystem is not None:
            if storage_options:
                raise TypeError(
                    "storage_options are for URLs: a filesystem given comes "
                    "with its own"
                )
            if not isinstance(filesystem, _fsspec().AbstractFileSystem):
                raise TypeError(
                    "filesystem must be an fsspec.AbstractFileSystem, "
                    f"not {type(filesystem).__name__}"
                )
            storage_options = {}
            self._fs, self._pid = filesystem, os.getpid()
        elif storage_options is None:
            storage_options = default_storage_options()
        self.storage_options = dict(storage_options)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({without_credentials(self.url)!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "storage_options": self.storage_options,
            "filesystem": self.filesystem,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["url"], state["storage_options"], state.get("filesystem")
        )

    def locate(self, url: str) -> tuple[Any, str]:
        """The filesystem of this process and the path of a URL in it (with
        a filesystem given: of a path in it, or of a URL of its protocol)."""
        fsspec = _fsspec()
        if self.filesystem is not None:
            if "://" not in url:
                return self.fs, url
            protocol = url.partition("://")[0]
            known = self.filesystem.protocol
            if protocol not in ((known,) if isinstance(known, str) else known):
                raise TypeError(
                    f"{without_credentials(url)} is no URL of the filesystem "
                    f"given ({type(self.filesystem).__name__}): give a path in it"
                )
            return self.fs, str(fsspec.core.strip_protocol(url))
        try:
            fs, path = fsspec.core.url_to_fs(url, **self.storage_options)
        except ImportError as error:
            raise MissingExtraError(
                f"reading {without_credentials(url)} needs {CLOUD_EXTRA} "
                f"(pip install '{CLOUD_EXTRA}'): {error}"
            ) from error
        except ValueError as error:
            raise DicomSlideError(
                f"no fsspec filesystem reads {without_credentials(url)}: {error}"
            ) from error
        return fs, str(path)

    @property
    def fs(self) -> Any:
        """fsspec.AbstractFileSystem: the filesystem, opened once per process"""
        if self._fs is None or self._pid != os.getpid():
            with self._lock:
                if self._fs is None or self._pid != os.getpid():
                    self._fs = (
                        self.locate(self.url)[0]
                        if self.filesystem is None
                        # in another process: fsspec makes a new one from
                        # the arguments the filesystem was made with
                        else pickle.loads(pickle.dumps(self.filesystem))
                    )
                    self._pid = os.getpid()
        return self._fs

    def url_of(self, path: str) -> str:
        """The URL of a path of the filesystem."""
        return str(self.fs.unstrip_protocol(path))

    def list(self, path: str) -> dict[str, int]:
        """Sizes of the objects under a path (and the object at it), by path.

        Raises
        ------
        dicomslide.errors.ObjectNotFoundError
            When the bucket does not exist

        """
        where = without_credentials(self.url_of(path))
        self.fs.invalidate_cache(path)  # list what is there now
        found = self.call(
            lambda: self.fs.find(path, detail=True, withdirs=False), where
        )
        return {
            str(name): int(info.get("size") or 0)
            for name, info in found.items()
            if info.get("type", "file") == "file" and not str(name).endswith("/")
        }

    def call(self, request: Callable[[], _R], where: str) -> _R:
        """Make a request, tried again when it fails other than with a
        missing object; errors name `where` (a URL without credentials)."""
        for attempt in range(_ATTEMPTS):
            try:
                return request()
            except FileNotFoundError as error:
                raise ObjectNotFoundError(f"not found: {where}") from error
            except PermissionError as error:
                raise PermissionError(f"access denied: {where}: {error}") from error
            except Exception as error:  # noqa: BLE001 - each filesystem has its own
                # (s3fs: OSError; the HTTP filesystem: aiohttp's errors)
                if attempt + 1 == _ATTEMPTS:
                    raise OSError(
                        f"cannot read {where} (tried {_ATTEMPTS} times): "
                        f"{type(error).__name__}: {error}"
                    ) from error
                logger.debug("reading %s failed, trying again: %s", where, error)
                time.sleep(_RETRY_DELAY * (attempt + 1))
        raise AssertionError("unreachable")


class ObjectFile:
    """One object of a store.

    Parameters
    ----------
    store: ObjectStore
        Its store
    path: str
        Its path in the store's filesystem
    size: Union[int, None], optional
        Its size, if a listing gave it (else asked for when needed)

    """

    def __init__(self, store: ObjectStore, path: str, size: int | None = None):
        self.store = store
        self.path = path
        self._size = size
        self.url = without_credentials(store.url_of(path))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    @property
    def size(self) -> int:
        """int: size of the object in bytes (one request if not listed)"""
        if self._size is None:
            info = self.store.call(lambda: self.store.fs.info(self.path), self.url)
            self._size = int(info["size"])
        return self._size

    def read(self, begin: int, end: int) -> bytes:
        """The bytes [begin, end) of the object; fewer at its end."""
        if self._size is not None:
            end = min(end, self._size)
        if end <= begin:
            return b""
        data = self.store.call(
            lambda: self.store.fs.cat_file(self.path, start=begin, end=end), self.url
        )
        return bytes(data)

    def read_ranges(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """Read byte ranges [begin, end), one request each, concurrently."""
        return run_concurrently(lambda span: self.read(*span), list(ranges))


class RangeReader(io.RawIOBase):
    """An object read as a file: a seekable binary file object.

    Bytes are fetched when first read: at least :data:`FIRST_READ` of them,
    and each further fetch four times more than the one before (up to 16
    MiB, and up to `keep`), so that parsing a long header or walking
    fragments takes a few requests. Bytes fetched before may be given
    (`chunks`). The bytes fetched are kept for later reads and for
    :meth:`held`; with `keep`, the oldest are dropped once more than `keep`
    bytes are kept (a walk over the fragments of a large object then holds
    a window of it, not all of it), and are fetched again if read again.

    Parameters
    ----------
    file: ObjectFile
        The object
    chunks: Sequence[Tuple[int, bytes]], optional
        Bytes of the object known already, by offset
    keep: Union[int, None], optional
        Most bytes to keep (the latest fetch is kept whatever its size);
        None keeps all

    """

    def __init__(
        self,
        file: ObjectFile,
        chunks: Sequence[tuple[int, bytes]] = (),
        keep: int | None = None,
    ) -> None:
        super().__init__()
        self.file = file
        self.chunks = list(chunks)
        self.keep = keep
        self._position = 0
        self._next_read = FIRST_READ
        self._end: int | None = None  # the end of the object, once met
        self._largest_read = min(keep or _LARGEST_READ_AHEAD, _LARGEST_READ_AHEAD)

    @property
    def name(self) -> str:
        """str: URL of the object"""
        return self.file.url

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            self._position = offset
        elif whence == io.SEEK_CUR:
            self._position += offset
        elif whence == io.SEEK_END:
            self._position = self.file.size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._bytes_at(self._position, len(view))
        assert data is not None  # fetched
        view[: len(data)] = data
        self._position += len(data)
        return len(data)

    def _bytes_at(self, position: int, count: int, fetch: bool = True) -> bytes | None:
        """The bytes [position, position + count), fewer at the end of the
        object; those not held are fetched, or without `fetch` make the
        answer None."""
        parts = []
        while count > 0:
            found = self._chunk_at(position)
            if found is None:
                if self._end is not None and position >= self._end:
                    break
                if not fetch:
                    return None
                size = max(count, self._next_read)
                self._next_read = min(self._next_read * 4, self._largest_read)
                data = self.file.read(position, position + size)
                if len(data) < size:
                    self._end = position + len(data)
                if not data:
                    break
                self._hold(position, data)
                continue
            offset, data = found
            part = data[position - offset : position - offset + count]
            parts.append(part)
            position += len(part)
            count -= len(part)
        return b"".join(parts)

    def _hold(self, position: int, data: bytes) -> None:
        """Keep fetched bytes, dropping the oldest beyond :attr:`keep`."""
        self.chunks.append((position, data))
        if self.keep is None:
            return
        total = sum(len(chunk) for _, chunk in self.chunks)
        while total > self.keep and len(self.chunks) > 1:
            total -= len(self.chunks.pop(0)[1])

    def held(self, begin: int, end: int) -> bytes | None:
        """The bytes [begin, end) if they were fetched already (fewer at the
        end of the object, once met), else None; fetches nothing."""
        return self._bytes_at(begin, end - begin, fetch=False)

    def _chunk_at(self, position: int) -> tuple[int, bytes] | None:
        for offset, data in self.chunks:
            if offset <= position < offset + len(data):
                return offset, data
        return None
