"""The embedded client of a folder: dicomslide's own index of its Part 10 files.

:class:`LocalFolderClient` implements the ``dicomweb_client``
``DICOMClient`` protocol over a folder and its subfolders. It reads the header
of each file once (:func:`dicomslide.files.read_header`), keeps the headers in
memory (nothing is written into the folder) and answers from them:

- searches for studies, series and instances (:mod:`dicomslide.query`);
- metadata in DICOM JSON; binary values longer than 1 KiB are given as bulk
  data URIs that name their place in the header, which
  :meth:`LocalFolderClient.retrieve_bulkdata` resolves;
- instances, frames (read from the files by
  :class:`dicomslide.fileframes.FileFrameSource`, every transfer syntax as
  stored) and bulk data.

Every method may be called from any thread. Requests that a DICOMweb server
would refuse with an HTTP status (an unknown instance: 404; a media type that
would need transcoding: 406) raise ``requests.HTTPError`` with that status.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

import requests
from pydicom import dcmread
from pydicom.dataset import Dataset

from dicomslide import uids
from dicomslide.codec import NATIVE_TRANSFER_SYNTAXES
from dicomslide.elements import element_value
from dicomslide.fetch import describe_pixels
from dicomslide.fileframes import FileFrameSource
from dicomslide.files import files_under, read_header
from dicomslide.query import search, stored_syntax

if TYPE_CHECKING:
    from dicomweb_client import DICOMClient

logger = logging.getLogger(__name__)

MediaTypes = tuple[str | tuple[str, str], ...] | None

#: Binary values longer than this are given as bulk data URIs in metadata
BULK_DATA_THRESHOLD = 1024

# Media types of frames by transfer syntax (DICOM PS3.18 Table 8.7.3-2)
_FRAME_MEDIA_TYPES: dict[str, str] = {
    **dict.fromkeys(
        [uids.JPEGBaseline8Bit, uids.JPEGExtended12Bit]
        + [uids.JPEGLossless, uids.JPEGLosslessSV1],
        "image/jpeg",
    ),
    **dict.fromkeys([uids.JPEGLSLossless, uids.JPEGLSNearLossless], "image/jls"),
    **dict.fromkeys([uids.JPEG2000Lossless, uids.JPEG2000], "image/jp2"),
    **dict.fromkeys(
        [uids.HTJ2KLossless, uids.HTJ2KLosslessRPCL] + [uids.HTJ2K],
        "image/jphc",
    ),
    **dict.fromkeys(
        [uids.JPEGXLLossless, uids.JPEGXLJPEGRecompression] + [uids.JPEGXL],
        "image/jxl",
    ),
    uids.RLELossless: "image/dicom-rle",
}
_BULK_DATA_PATH = re.compile(
    r"/studies/([^/]+)/series/([^/]+)/instances/([^/]+)/bulkdata/"
    r"((?:[0-9A-F]{8}/\d+/)*[0-9A-F]{8})"
)
_BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})


def _with_bulk_data_uris(metadata: dict[str, Any], url: str) -> dict[str, Any]:
    """DICOM JSON whose inline binary values longer than
    :data:`BULK_DATA_THRESHOLD` are replaced by URIs naming their path
    (``{url}/bulkdata/{tag}[/{item}/{tag}...]``)."""
    result: dict[str, Any] = {}
    for tag, element in metadata.items():
        inline = element.get("InlineBinary")
        if inline is not None and len(inline) * 3 // 4 > BULK_DATA_THRESHOLD:
            element = {"vr": element["vr"], "BulkDataURI": f"{url}/{tag}"}
        elif element.get("vr") == "SQ" and element.get("Value"):
            items = [
                _with_bulk_data_uris(item, f"{url}/{tag}/{index}")
                for index, item in enumerate(element["Value"])
            ]
            element = {**element, "Value": items}
        result[tag] = element
    return result


def http_error(status: int, reason: str, url: str) -> requests.HTTPError:
    """The error a DICOMweb client raises for a status (a local answer).

    Parameters
    ----------
    status: int
        HTTP status
    reason: str
        Why the request is refused
    url: str
        What was asked for

    Returns
    -------
    requests.HTTPError
        Error whose ``response`` has the status and reason

    """
    response = requests.Response()
    response.status_code = status
    response.reason = reason
    response.url = url
    return requests.HTTPError(f"{status} {reason}: {url}", response=response)


def _accepts(media_types: MediaTypes, media_type: str, syntax: str | None) -> bool:
    """Whether acceptable media types include the stored representation.

    Entries are media types or (media type, transfer syntax) pairs.
    ``application/octet-stream`` carries the stored bytes of any syntax that
    its transfer syntax names (``*``: any); without one, only uncompressed
    bytes. Another media type accepts the syntaxes it names, or any.
    """
    if not media_types:
        return True
    octets = "application/octet-stream"
    major = media_type.split("/")[0]
    for entry in media_types:
        kind, wanted = (entry, None) if isinstance(entry, str) else entry
        kind = kind.strip().lower()
        if kind == octets and wanted in ("*", syntax):
            return True
        if kind not in ("*", "*/*", f"{major}/*", media_type):
            continue
        if wanted in ("*", syntax) or (
            wanted is None
            and (media_type != octets or syntax in NATIVE_TRANSFER_SYNTAXES)
        ):
            return True
    return False


class LocalFolderClient:
    """The embedded client of a folder of DICOM Part 10 files.

    A ``dicomweb_client`` ``DICOMClient`` whose index is the headers of the
    folder's files, read once and kept in memory: nothing is written into the
    folder. Every method may be called from any thread. A client pickles as
    its folder; the receiving process reads the headers again.

    Parameters
    ----------
    folder: Union[str, os.PathLike]
        Folder that holds the files (searched recursively)

    Raises
    ------
    FileNotFoundError
        When the folder does not exist

    """

    base_url: str
    scheme: str
    protocol: str | None
    url_prefix: str
    qido_url_prefix: str | None
    wado_url_prefix: str | None
    stow_url_prefix: str | None
    delete_url_prefix: str | None

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        path = Path(folder).expanduser().resolve()
        if not path.is_dir():
            raise FileNotFoundError(f"not a folder: {path}")
        self.folder = path
        self.base_url = path.as_uri()
        self.scheme = "file"
        self.protocol = None
        self.url_prefix = urlsplit(self.base_url).path
        self.qido_url_prefix = None
        self.wado_url_prefix = None
        self.stow_url_prefix = None
        self.delete_url_prefix = None
        self._lock = threading.Lock()
        self._headers: list[Dataset] | None = None
        self._by_uid: dict[str, Dataset] | None = None
        self._sources: dict[str, FileFrameSource] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.folder)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # The headers do not travel; the receiving process reads them again.
        return (type(self), (str(self.folder),))

    # -- the index ------------------------------------------------------------

    def headers(self) -> list[Dataset]:
        """Read the headers of the folder's Part 10 image files (once).

        Returns
        -------
        List[pydicom.Dataset]
            Metadata of every image instance (no pixel data), in path order;
            each knows its ``filename`` and where its pixel data start

        """
        with self._lock:
            if self._headers is None:
                self._headers = [
                    header
                    for path in files_under(self.folder)
                    for header in [read_header(path)]
                    if header is not None
                ]
            return self._headers

    def find_header(self, sop_instance_uid: str) -> Dataset | None:
        """The header of an instance of the folder.

        Parameters
        ----------
        sop_instance_uid: str
            SOP Instance UID

        Returns
        -------
        Union[pydicom.Dataset, None]
            Its header (see :meth:`headers`; the first file's if several
            files hold it), or None if no file holds it

        """
        by_uid = self._by_uid
        if by_uid is None:
            headers = self.headers()
            by_uid = {}
            for header in headers:
                by_uid.setdefault(str(element_value(header, "SOPInstanceUID")), header)
            self._by_uid = by_uid
        return by_uid.get(str(sop_instance_uid))

    def _instances(self, study: str, series: str | None = None) -> list[Dataset]:
        """Headers of a study's (or series') instances; 404 if there are none."""
        found = [
            header
            for header in self.headers()
            if str(element_value(header, "StudyInstanceUID")) == study
            and (
                series is None
                or str(element_value(header, "SeriesInstanceUID")) == series
            )
        ]
        if not found:
            what = f"study {study}" + ("" if series is None else f", series {series}")
            raise http_error(404, "not found", f"{self.base_url} ({what})")
        return found

    def _instance(self, study: str, series: str, sop: str) -> Dataset:
        """The header of an instance; 404 if the folder lacks it."""
        header = self.find_header(sop)
        if (
            header is None
            or str(element_value(header, "StudyInstanceUID")) != study
            or str(element_value(header, "SeriesInstanceUID")) != series
        ):
            raise http_error(404, "not found", self._url(study, series, sop))
        return header

    def _url(
        self, study: str, series: str | None = None, sop: str | None = None
    ) -> str:
        url = f"{self.base_url}/studies/{study}"
        if series is not None:
            url += f"/series/{series}"
        if sop is not None:
            url += f"/instances/{sop}"
        return url

    # -- searches (QIDO-RS) -----------------------------------------------------

    def search_for_studies(
        self,
        fuzzymatching: bool | None = None,
        limit: int | None = None,
        offset: int | None = None,
        fields: Sequence[str] | None = None,
        search_filters: dict[str, Any] | None = None,
        get_remaining: bool = False,
    ) -> list[dict[str, dict[str, Any]]]:
        """Search for studies (see :mod:`dicomslide.query`).

        Parameters and results are those of ``DICOMClient.search_for_studies``;
        all results are returned at once (`get_remaining` changes nothing).
        """
        return search(
            self.headers(),
            "studies",
            self.base_url,
            None,
            fuzzymatching,
            limit,
            offset,
            fields,
            search_filters,
        )

    def search_for_series(
        self,
        study_instance_uid: str | None = None,
        fuzzymatching: bool | None = None,
        limit: int | None = None,
        offset: int | None = None,
        fields: Sequence[str] | None = None,
        search_filters: dict[str, Any] | None = None,
        get_remaining: bool = False,
    ) -> list[dict[str, dict[str, Any]]]:
        """Search for series, of one study or of all.

        Parameters and results are those of ``DICOMClient.search_for_series``.
        """
        scope = {}
        if study_instance_uid is not None:
            scope["StudyInstanceUID"] = study_instance_uid
        return search(
            self.headers(),
            "series",
            self.base_url,
            scope,
            fuzzymatching,
            limit,
            offset,
            fields,
            search_filters,
        )

    def search_for_instances(
        self,
        study_instance_uid: str | None = None,
        series_instance_uid: str | None = None,
        fuzzymatching: bool | None = None,
        limit: int | None = None,
        offset: int | None = None,
        fields: Sequence[str] | None = None,
        search_filters: dict[str, Any] | None = None,
        get_remaining: bool = False,
    ) -> list[dict[str, dict[str, Any]]]:
        """Search for instances, of one series, one study or of all.

        Parameters and results are those of
        ``DICOMClient.search_for_instances``.

        Raises
        ------
        TypeError
            When a series is given without its study

        """
        if series_instance_uid is not None and study_instance_uid is None:
            raise TypeError("a Series Instance UID needs its Study Instance UID")
        scope = {}
        if study_instance_uid is not None:
            scope["StudyInstanceUID"] = study_instance_uid
        if series_instance_uid is not None:
            scope["SeriesInstanceUID"] = series_instance_uid
        return search(
            self.headers(),
            "instances",
            self.base_url,
            scope,
            fuzzymatching,
            limit,
            offset,
            fields,
            search_filters,
        )

    # -- metadata (WADO-RS) -----------------------------------------------------

    def _metadata(self, header: Dataset) -> dict[str, dict[str, Any]]:
        """A header in DICOM JSON, with its Available Transfer Syntax UID;
        long binary values are given as bulk data URIs."""
        url = self._url(
            str(element_value(header, "StudyInstanceUID")),
            str(element_value(header, "SeriesInstanceUID")),
            str(element_value(header, "SOPInstanceUID")),
        )
        metadata = {
            tag: value
            for tag, value in header.to_json_dict().items()
            if not tag.startswith("7FE0")
        }
        metadata = _with_bulk_data_uris(metadata, f"{url}/bulkdata")
        syntax = stored_syntax(header)
        if syntax:
            metadata["00083002"] = {"vr": "UI", "Value": [syntax]}
        return metadata

    def retrieve_study_metadata(
        self, study_instance_uid: str
    ) -> list[dict[str, dict[str, Any]]]:
        """Retrieve the metadata of the instances of a study.

        Parameters
        ----------
        study_instance_uid: str
            Study Instance UID

        Returns
        -------
        List[Dict[str, dict]]
            Metadata of each instance in DICOM JSON

        """
        return [self._metadata(h) for h in self._instances(study_instance_uid)]

    def retrieve_series_metadata(
        self, study_instance_uid: str, series_instance_uid: str
    ) -> list[dict[str, dict[str, Any]]]:
        """Retrieve the metadata of the instances of a series.

        Parameters
        ----------
        study_instance_uid: str
            Study Instance UID
        series_instance_uid: str
            Series Instance UID

        Returns
        -------
        List[Dict[str, dict]]
            Metadata of each instance in DICOM JSON

        """
        headers = self._instances(study_instance_uid, series_instance_uid)
        return [self._metadata(header) for header in headers]

    def retrieve_instance_metadata(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        sop_instance_uid: str,
    ) -> dict[str, dict[str, Any]]:
        """Retrieve the metadata of an instance.

        Parameters
        ----------
        study_instance_uid: str
            Study Instance UID
        series_instance_uid: str
            Series Instance UID
        sop_instance_uid: str
            SOP Instance UID

        Returns
        -------
        Dict[str, dict]
            Metadata in DICOM JSON

        """
        return self._metadata(
            self._instance(study_instance_uid, series_instance_uid, sop_instance_uid)
        )

    # -- instances, frames and bulk data (WADO-RS) ------------------------------

    def _read_instance(self, header: Dataset, media_types: MediaTypes) -> Dataset:
        url = self._url(
            str(element_value(header, "StudyInstanceUID")),
            str(element_value(header, "SeriesInstanceUID")),
            str(element_value(header, "SOPInstanceUID")),
        )
        if not _accepts(media_types, "application/dicom", stored_syntax(header)):
            raise http_error(406, "the instance is stored in another syntax", url)
        return self._read_file(header)

    def _read_file(self, header: Dataset) -> Dataset:
        """The whole data set of the file a header was read from."""
        return dcmread(header.filename)

    def retrieve_instance(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        sop_instance_uid: str,
        media_types: MediaTypes = None,
    ) -> Dataset:
        """Retrieve an instance, as stored in its file.

        Parameters
        ----------
        study_instance_uid: str
            Study Instance UID
        series_instance_uid: str
            Series Instance UID
        sop_instance_uid: str
            SOP Instance UID
        media_types: Union[Tuple[Union[str, Tuple[str, str]], ...], None], optional
            Acceptable media types (``application/dicom``) and transfer
            syntaxes; the instance is not transcoded

        Returns
        -------
        pydicom.dataset.Dataset
            The instance

        """
        header = self._instance(
            study_instance_uid, series_instance_uid, sop_instance_uid
        )
        return self._read_instance(header, media_types)

    def iter_series(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        media_types: MediaTypes = None,
    ) -> Iterator[Dataset]:
        """Iterate over the instances of a series (see :meth:`retrieve_instance`)."""
        headers = self._instances(study_instance_uid, series_instance_uid)
        return (self._read_instance(header, media_types) for header in headers)

    def retrieve_series(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        media_types: MediaTypes = None,
    ) -> list[Dataset]:
        """Retrieve the instances of a series (see :meth:`retrieve_instance`)."""
        return list(
            self.iter_series(study_instance_uid, series_instance_uid, media_types)
        )

    def iter_study(
        self, study_instance_uid: str, media_types: MediaTypes = None
    ) -> Iterator[Dataset]:
        """Iterate over the instances of a study (see :meth:`retrieve_instance`)."""
        headers = self._instances(study_instance_uid)
        return (self._read_instance(header, media_types) for header in headers)

    def retrieve_study(
        self, study_instance_uid: str, media_types: MediaTypes = None
    ) -> list[Dataset]:
        """Retrieve the instances of a study (see :meth:`retrieve_instance`)."""
        return list(self.iter_study(study_instance_uid, media_types))

    def frame_source(self, header: Dataset) -> FileFrameSource:
        """The frame source of an instance of the folder (one per instance).

        Parameters
        ----------
        header: pydicom.Dataset
            Its header (see :meth:`headers`)

        Returns
        -------
        dicomslide.fileframes.FileFrameSource
            Source of its frames, as stored

        """
        sop = str(element_value(header, "SOPInstanceUID"))
        with self._lock:
            source = self._sources.get(sop)
            if source is None:
                source = self._sources[sop] = self._new_frame_source(header, sop)
            return source

    def _new_frame_source(self, header: Dataset, sop: str) -> FileFrameSource:
        """A frame source of the instance `header` describes (what a folder of
        another kind of storage replaces)."""
        return FileFrameSource(
            header.filename,
            sop,
            describe_pixels(header, stored_syntax(header) or ""),
            int(element_value(header, "NumberOfFrames", 1) or 1),
            header,
        )

    def iter_instance_frames(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        sop_instance_uid: str,
        frame_numbers: Sequence[int],
        media_types: MediaTypes = None,
    ) -> Iterator[bytes]:
        """Iterate over frames (see :meth:`retrieve_instance_frames`)."""
        return iter(
            self.retrieve_instance_frames(
                study_instance_uid,
                series_instance_uid,
                sop_instance_uid,
                frame_numbers,
                media_types,
            )
        )

    def retrieve_instance_frames(
        self,
        study_instance_uid: str,
        series_instance_uid: str,
        sop_instance_uid: str,
        frame_numbers: Sequence[int],
        media_types: MediaTypes = None,
    ) -> list[bytes]:
        """Retrieve frames of an instance, as stored (never transcoded).

        Parameters
        ----------
        study_instance_uid: str
            Study Instance UID
        series_instance_uid: str
            Series Instance UID
        sop_instance_uid: str
            SOP Instance UID
        frame_numbers: Sequence[int]
            One-based frame numbers
        media_types: Union[Tuple[Union[str, Tuple[str, str]], ...], None], optional
            Acceptable media types (and transfer syntaxes); they must include
            the stored one

        Returns
        -------
        List[bytes]
            Encoded frames in the order of `frame_numbers`

        Raises
        ------
        dicomslide.errors.FrameRetrievalError
            When a frame number is out of range or a frame cannot be read

        """
        header = self._instance(
            study_instance_uid, series_instance_uid, sop_instance_uid
        )
        syntax = stored_syntax(header)
        media_type = _FRAME_MEDIA_TYPES.get(syntax or "", "application/octet-stream")
        if not _accepts(media_types, media_type, syntax):
            url = self._url(study_instance_uid, series_instance_uid, sop_instance_uid)
            raise http_error(406, f"frames are stored as {media_type}", url)
        return self.frame_source(header).read_frames(frame_numbers)

    def iter_bulkdata(
        self,
        url: str,
        media_types: MediaTypes = None,
        byte_range: tuple[int, int] | None = None,
    ) -> Iterator[bytes]:
        """Iterate over bulk data items (see :meth:`retrieve_bulkdata`)."""
        return iter(self.retrieve_bulkdata(url, media_types, byte_range))

    def retrieve_bulkdata(
        self,
        url: str,
        media_types: MediaTypes = None,
        byte_range: tuple[int, int] | None = None,
    ) -> list[bytes]:
        """Retrieve a bulk data item that this client's metadata name.

        Parameters
        ----------
        url: str
            Bulk data URI from the metadata
        media_types: Union[Tuple[Union[str, Tuple[str, str]], ...], None], optional
            Acceptable media types (``application/octet-stream``)
        byte_range: Union[Tuple[int, int], None], optional
            First and last byte of the item wanted

        Returns
        -------
        List[bytes]
            The item

        """
        prefix = self.base_url + "/"
        match = _BULK_DATA_PATH.fullmatch(url[len(self.base_url) :])
        if not url.startswith(prefix) or match is None:
            raise http_error(404, "not a bulk data URI of this folder", url)
        study, series, sop, path = match.groups()
        kinds = {e if isinstance(e, str) else e[0] for e in media_types or ["*"]}
        if kinds.isdisjoint(("*", "*/*", "application/*", "application/octet-stream")):
            raise http_error(406, "bulk data are application/octet-stream", url)
        value: Any = self._instance(study, series, sop)
        steps = path.split("/")
        try:
            for tag, item in zip(steps[::2], [*steps[1::2], None], strict=True):
                element = value[int(tag, 16)]
                value = element.value if item is None else element.value[int(item)]
        except (KeyError, IndexError, TypeError):
            raise http_error(404, "no such bulk data", url) from None
        if element.VR not in _BINARY_VRS or not isinstance(value, bytes):
            raise http_error(404, "no such bulk data", url)
        data = value
        if byte_range is not None:
            data = data[byte_range[0] : byte_range[1] + 1]
        return [data]

    # -- what a folder of files does not offer ----------------------------------

    def _not_rendered(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise NotImplementedError(f"{self!r} does not render images")

    retrieve_instance_rendered = _not_rendered
    retrieve_series_rendered = _not_rendered
    retrieve_instance_frames_rendered = _not_rendered

    def _read_only(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise PermissionError(f"{self!r} is read-only: nothing is written")

    store_instances = _read_only
    delete_study = _read_only
    delete_series = _read_only
    delete_instance = _read_only


if TYPE_CHECKING:

    def _is_a_dicom_client(client: LocalFolderClient) -> DICOMClient:
        return client  # mypy checks that the protocol is implemented
