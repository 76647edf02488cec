"""A "folder" of Part 10 files in object storage, served as a DICOM client.

:class:`ObjectFolderClient` is :class:`dicomslide.folder.LocalFolderClient`
on objects: a prefix of a bucket (``s3://bucket/slides/``), one object of it
(which stands for the objects beside it, as a file stands for its folder), or
an explicit list of object URLs (e.g. ``https://`` URLs of files on a web
server that honours ``Range``). Opening lists the prefix with one request and
reads the objects' headers concurrently with one request each (more only for
headers longer than :data:`dicomslide.objects.FIRST_READ`): a slide of N
instances whose headers fit opens in N + 1 requests. Frames are read by
:class:`dicomslide.objectframes.ObjectFrameSource`.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset

from dicomslide.elements import element_value
from dicomslide.errors import MetadataError, ObjectNotFoundError
from dicomslide.fetch import describe_pixels
from dicomslide.fileframes import FileFrameSource
from dicomslide.files import image_header
from dicomslide.folder import LocalFolderClient
from dicomslide.objectframes import OBJECT_FILE, ObjectFrameSource, read_object_header
from dicomslide.objects import ObjectFile, ObjectStore, run_concurrently
from dicomslide.query import stored_syntax
from dicomslide.urls import without_credentials


class ObjectFolderClient(LocalFolderClient):
    """The embedded client of Part 10 files in object storage.

    Parameters
    ----------
    source: Union[str, Sequence[str]]
        URL of a prefix (a "folder": every object under it), of one object
        (the objects under the same prefix, see :attr:`named_instance`), or a
        list of URLs of objects
    storage_options: Union[Mapping[str, Any], None], optional
        Options of the fsspec filesystem (e.g. ``{"anon": True}``, or
        ``{"endpoint_url": ..., "key": ..., "secret": ...}`` for S3); never
        shown in its repr or in messages
    filesystem: Union[fsspec.AbstractFileSystem, None], optional
        The fsspec filesystem of the objects, given instead of options: then
        `source` is a path in it (or a list of paths), such as
        ``bucket/slides/`` for an ``s3fs.S3FileSystem``

    Raises
    ------
    dicomslide.errors.MissingExtraError
        When fsspec or the filesystem of the URLs is not installed
    TypeError
        When `filesystem` is no fsspec filesystem or comes with options

    Note
    ----
    The objects are listed and their headers read on first use; errors such
    as :class:`dicomslide.errors.ObjectNotFoundError` are raised then.

    """

    def __init__(
        self,
        source: str | Sequence[str],
        storage_options: Mapping[str, Any] | None = None,
        filesystem: Any = None,
    ) -> None:
        self.source: str | list[str] = (
            source if isinstance(source, str) else list(source)
        )
        urls = [self.source] if isinstance(self.source, str) else self.source
        if not urls:
            raise ValueError("no URLs given")
        self.store = ObjectStore(urls[0], storage_options, filesystem)
        self.store.fs  # noqa: B018 - fails now if the extra is missing
        first = urls[0] if filesystem is None else self.store.url_of(urls[0])
        self.base_url = without_credentials(first).rstrip("/")
        self.scheme = self.base_url.partition("://")[0]
        self.protocol = None
        self.url_prefix = ""
        self.qido_url_prefix = None
        self.wado_url_prefix = None
        self.stow_url_prefix = None
        self.delete_url_prefix = None
        self._lock = threading.Lock()
        self._headers: list[Dataset] | None = None
        self._by_uid: dict[str, Dataset] | None = None
        self._sources: dict[str, Any] = {}
        self._named: ObjectFile | None = None
        self._files_by_uid: dict[str, ObjectFile] = {}

    def __repr__(self) -> str:
        if isinstance(self.source, str) and self.store.filesystem is not None:
            return f"{type(self).__name__}({self.base_url!r})"  # with the protocol
        if isinstance(self.source, str):
            return f"{type(self).__name__}({without_credentials(self.source)!r})"
        return f"{type(self).__name__}(<{len(self.source)} URLs>)"

    def __reduce__(self) -> tuple[Any, ...]:
        # The objects of the instances travel, not their headers: another
        # process reads a header when it reads the instance's frames.
        return (
            type(self),
            (self.source, self.store.storage_options, self.store.filesystem),
            {"_files_by_uid": self._known_files()},
        )

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._files_by_uid = state["_files_by_uid"]

    def _known_files(self) -> dict[str, ObjectFile]:
        files = dict(self._files_by_uid)
        for header in self._headers or []:
            files[str(element_value(header, "SOPInstanceUID"))] = getattr(
                header, OBJECT_FILE
            )
        return files

    # -- the index ------------------------------------------------------------

    def _list(self) -> list[ObjectFile]:
        """The objects to read, and the one a URL names (:attr:`_named`)."""
        store = self.store
        if not isinstance(self.source, str):
            return [ObjectFile(store, store.locate(url)[1]) for url in self.source]
        path = store.locate(self.source)[1].rstrip("/")
        named = not self.source.endswith("/") and "/" in path
        listed = store.list(path.rpartition("/")[0] if named else path)
        if named and path in listed:
            self._named = ObjectFile(store, path, listed[path])
        elif named:  # a prefix given without its slash
            listed = {p: n for p, n in listed.items() if p.startswith(path + "/")}
        if not listed:
            raise ObjectNotFoundError(
                f"no such object or prefix: {without_credentials(self.source)}"
            )
        return [
            self._named if p == path and self._named else ObjectFile(store, p, n)
            for p, n in sorted(listed.items())
        ]

    def headers(self) -> list[Dataset]:
        """Read the headers of the Part 10 image objects (once, concurrently).

        Returns
        -------
        List[pydicom.Dataset]
            Metadata of every image instance (no pixel data), in URL order;
            each knows its URL (``filename``) and object

        Raises
        ------
        dicomslide.errors.ObjectNotFoundError
            When the prefix, object or bucket does not exist

        """
        with self._lock:
            if self._headers is None:
                files = self._list()
                found = run_concurrently(
                    lambda file: image_header(
                        lambda: read_object_header(file), file.url
                    ),
                    files,
                )
                self._headers = [header for header in found if header is not None]
            return self._headers

    @property
    def named_instance(self) -> str | None:
        """Union[str, None]: SOP Instance UID of the object the URL names
        (None for a prefix or a list)

        Raises
        ------
        dicomslide.errors.MetadataError
            When that object is not a DICOM image

        """
        headers = self.headers()
        if self._named is None:
            return None
        for header in headers:
            if getattr(header, OBJECT_FILE) is self._named:
                return str(element_value(header, "SOPInstanceUID"))
        raise MetadataError(f"not a DICOM image file: {self._named.url}")

    def _new_frame_source(self, header: Dataset, sop: str) -> ObjectFrameSource:
        return ObjectFrameSource(
            getattr(header, OBJECT_FILE),
            sop,
            describe_pixels(header, stored_syntax(header) or ""),
            int(element_value(header, "NumberOfFrames", 1) or 1),
            header,
        )

    def instance_frame_source(
        self, image: Dataset, desc: Any, number_of_frames: int
    ) -> FileFrameSource | None:
        """The frame source of an instance given its metadata: from the
        objects known (in a process this client was sent to: without
        reading every header), else from the headers."""
        sop = str(image.SOPInstanceUID)
        file = self._files_by_uid.get(sop) if self._headers is None else None
        if file is not None:
            with self._lock:
                source = self._sources.get(sop)
                if source is None:
                    source = ObjectFrameSource(file, sop, desc, number_of_frames)
                    self._sources[sop] = source
                return source
        header = self.find_header(sop)
        return None if header is None else self.frame_source(header)

    def _read_file(self, header: Dataset) -> Dataset:
        file: ObjectFile = getattr(header, OBJECT_FILE)
        return dcmread(io.BytesIO(file.read(0, file.size)))
