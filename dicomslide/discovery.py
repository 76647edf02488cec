"""Finding slides: search a source, fetch metadata once per series, group.

The embedded client of a folder gives the headers it read from the files; any
other client is searched for series and asked for the metadata of each series
once (:func:`series_metadata`). The images found are grouped into slides
(:func:`group_images`) and derived images attached to the slide they
reference.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from pydicom.dataset import Dataset

from dicomslide.client import ICC_PROFILE_URIS, call, is_file_client, open_client
from dicomslide.elements import element_value
from dicomslide.errors import MetadataError
from dicomslide.files import read_header
from dicomslide.folder import LocalFolderClient
from dicomslide.tile import (
    FRAME_TABLE_ATTRIBUTE,
    check_image_geometry,
    frame_table_from_json,
)
from dicomslide.urls import is_object_url
from dicomslide.utils import (
    PARAMETRIC_MAP_SOP_CLASS_UID,
    SEGMENTATION_SOP_CLASS_UIDS,
    VL_WSI_SOP_CLASS_UID,
    distinct_values,
    does_specimen_description_item_match,
    get_referenced_instances,
    is_label_image,
    is_overview_image,
    is_volume_image,
)

if TYPE_CHECKING:
    import highdicom as hd
    from dicomweb_client.protocol import DICOMClient
    from pydicom.sr.coding import Code

logger = logging.getLogger(__name__)

_ICC_PROFILE_TAG = 0x00282000
# Pixel Data, Float and Double Float Pixel Data: never read from metadata
# (Orthanc gives the first value of float pixel data inline)
_PIXEL_DATA_TAGS = frozenset({"7FE00010", "7FE00008", "7FE00009"})
#: Series asked for per search request; a shorter answer ends the search
SEARCH_PAGE = 1000
_SERIES_FIELDS = [
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "Modality",
    "PatientID",
    "StudyID",
]
_SLIDE_MODALITIES = {"SM"}
_DERIVED_MODALITIES = {"SM", "SEG", "OT"}
_DERIVED_SOP_CLASS_UIDS = SEGMENTATION_SOP_CLASS_UIDS | {PARAMETRIC_MAP_SOP_CLASS_UID}


def _value(item: dict[str, Any], tag: str) -> Any:
    values = item.get(tag, {}).get("Value")
    return values[0] if values else None


def _matches(item: dict[str, Any], tag: str, expected: str | None) -> bool:
    if expected is None:
        return True
    value = _value(item, tag)
    # A client that ignored the filter returns everything: filter here too.
    return value is None or str(value) == expected


#: Per-frame sequences with more items are summarised when JSON is loaded
LARGE_PER_FRAME_SEQUENCE = 2000


def load_metadata(client: DICOMClient, metadata: dict[str, Any]) -> Dataset:
    """Turn DICOM JSON metadata into a dataset, fetching nothing.

    The ICC profile, if given as bulk data, is fetched on first use. For an
    instance with more than :data:`LARGE_PER_FRAME_SEQUENCE` frames and per-frame
    positions, the frame table is computed from the JSON and the dataset's
    Per-Frame Functional Groups Sequence keeps only its first item.

    Parameters
    ----------
    client: dicomweb_client.api.DICOMClient
        Client that returned the metadata
    metadata: Dict[str, Any]
        Metadata of one instance in DICOM JSON

    Returns
    -------
    pydicom.Dataset
        Metadata

    """

    icc_profile_uris: list[str] = []

    def bulk_data(tag: str, vr: str, uri: str) -> Any:
        # Nothing is fetched now; ICC profiles are fetched on first use.
        if int(tag, 16) == _ICC_PROFILE_TAG:
            icc_profile_uris.append(uri)
        return None

    table = None
    try:
        frames = int(_value(metadata, "00280008") or 1)
    except (TypeError, ValueError):  # reported when the image is checked
        frames = 1
    if (
        frames > LARGE_PER_FRAME_SEQUENCE
        and _value(metadata, "00209311") != "TILED_FULL"
    ):
        table = frame_table_from_json(metadata)
        if table is not None:
            # keep the first item only: pydicom would take seconds for all
            metadata = dict(metadata)
            per_frame = metadata["52009230"]
            metadata["52009230"] = {**per_frame, "Value": per_frame["Value"][:1]}
    if not _PIXEL_DATA_TAGS.isdisjoint(metadata):
        metadata = {k: v for k, v in metadata.items() if k not in _PIXEL_DATA_TAGS}
    dataset = Dataset.from_json(metadata, bulk_data_uri_handler=bulk_data)
    if icc_profile_uris:
        setattr(dataset, ICC_PROFILE_URIS, icc_profile_uris)
    if table is not None:
        setattr(dataset, FRAME_TABLE_ATTRIBUTE, table)
    return dataset


def series_metadata(
    client: DICOMClient,
    study_instance_uid: str,
    series_instance_uid: str,
    sop_classes: set[str],
) -> list[Dataset]:
    """Metadata of the instances of a series that are of the given SOP classes.

    One request per series. The embedded client of a folder gives the file
    headers it read, which spares the JSON round trip.

    Parameters
    ----------
    client: dicomweb_client.api.DICOMClient
        Client
    study_instance_uid: str
        Study Instance UID
    series_instance_uid: str
        Series Instance UID
    sop_classes: Set[str]
        SOP Class UIDs of the instances wanted

    Returns
    -------
    List[pydicom.Dataset]
        Metadata of the instances

    """
    if isinstance(client, LocalFolderClient):
        return [
            header
            for header in client.headers()
            if element_value(header, "StudyInstanceUID") == study_instance_uid
            and element_value(header, "SeriesInstanceUID") == series_instance_uid
            and element_value(header, "SOPClassUID") in sop_classes
        ]
    instances = call(
        client,
        "retrieve_series_metadata",
        study_instance_uid=study_instance_uid,
        series_instance_uid=series_instance_uid,
    )
    return [
        load_metadata(client, instance)
        for instance in instances
        if _value(instance, "00080016") in sop_classes
    ]


def open_source(
    source: Any,
    storage_options: Mapping[str, Any] | None = None,
    filesystem: Any = None,
) -> tuple[DICOMClient, str | None]:
    """Open a client for a source of slides.

    Parameters
    ----------
    source: Union[dicomweb_client.api.DICOMClient, str, os.PathLike, Sequence[str]]
        What :func:`find_slides` accepts
    storage_options: Union[Mapping[str, Any], None], optional
        Options of the fsspec filesystem of an object storage URL
    filesystem: Union[fsspec.AbstractFileSystem, None], optional
        An fsspec filesystem; `source` is then a path in it (or a list of
        paths), read as object storage

    Returns
    -------
    Tuple[dicomweb_client.api.DICOMClient, Union[str, None]]
        Client; and for a path to one file, that file's SOP Instance UID (the
        client then serves the file's folder, as OpenSlide opens a slide from
        one of its files)

    Raises
    ------
    dicomslide.errors.MetadataError
        When a path or URL names a file that is not a DICOM image
    dicomslide.errors.ObjectNotFoundError
        When an object storage URL names nothing

    """
    if filesystem is not None or is_object_url(source):
        if filesystem is not None and not (
            isinstance(source, str)
            or isinstance(source, (list, tuple))
            and source
            and all(isinstance(path, str) for path in source)
        ):
            raise TypeError("with a filesystem, the source is a path in it")
        from dicomslide.objectfolder import ObjectFolderClient

        objects = ObjectFolderClient(source, storage_options, filesystem)
        return objects, objects.named_instance
    if storage_options:
        raise TypeError("storage_options are for object storage URLs")
    if isinstance(source, (str, os.PathLike)):
        text = os.fsdecode(source)
        if text.startswith("file://"):
            text = unquote(urlsplit(text).path)
        if os.path.isfile(text):
            path = Path(text).expanduser().resolve()
            header = read_header(path)
            if header is None:
                raise MetadataError(f"not a DICOM image file: {path}")
            return LocalFolderClient(path.parent), str(header.SOPInstanceUID)
    return open_client(source), None


def _is_wanted(
    image: Dataset,
    specimen_stains: Sequence[Code | hd.sr.CodedConcept] | None,
    optical_path_ids: Sequence[str] | None,
) -> bool:
    """Whether a VOLUME or THUMBNAIL image passes the search filters."""
    if specimen_stains:
        specimens = image.get("SpecimenDescriptionSequence", [])
        if not any(
            does_specimen_description_item_match(specimen, stain)
            for specimen in specimens
            for stain in specimen_stains
        ):
            return False
    if optical_path_ids:
        identifiers = {
            str(item.OpticalPathIdentifier)
            for item in image.get("OpticalPathSequence", [])
        }
        if not identifiers & {str(i) for i in optical_path_ids}:
            return False
    return True


def _readable(image: Dataset, fail_on_error: bool) -> bool:
    """Whether the attributes that size an image are sound; an image whose
    are not is skipped with a warning (or raises, with `fail_on_error`).

    The frame count of LABEL and OVERVIEW images, which are opened on first
    use, is checked then.
    """
    try:
        check_image_geometry(
            image, frame_count=not (is_label_image(image) or is_overview_image(image))
        )
    except MetadataError as error:
        if fail_on_error:
            raise
        logger.warning("skipping image: %s", error)
        return False
    return True


def describe_group(images: Sequence[Dataset]) -> str:
    """Name a group of images in messages: its series and container(s).

    Parameters
    ----------
    images: Sequence[pydicom.Dataset]
        Metadata of images

    Returns
    -------
    str
        For example ``series 1.2.3, container 'S-1'`` (``(none)`` when the
        images name no container)

    """
    series = sorted(distinct_values(images, "SeriesInstanceUID"))
    containers = sorted(distinct_values(images, "ContainerIdentifier"))
    return (
        f"series {', '.join(series)}, container "
        f"{', '.join(repr(c) for c in containers) or '(none)'}"
    )


def _links(image: Dataset) -> Iterator[str]:
    """What ties an image to the others of its slide.

    The images of one series, of one pyramid, and of one container imaged in
    one frame of reference belong to one slide.
    """
    yield f"series {element_value(image, 'SeriesInstanceUID')}"
    pyramid = element_value(image, "PyramidUID")
    if pyramid:
        yield f"pyramid {pyramid}"
    container, frame_of_reference = _key(image)
    if container or frame_of_reference:
        yield f"slide {container}\\{frame_of_reference}"


def group_images(images: Sequence[Dataset]) -> list[list[Dataset]]:
    """Group VL Whole Slide Microscopy images into slides.

    Two images belong to one slide when they share a series, a pyramid, or
    both container identifier and frame of reference; grouping is transitive.
    So a series whose levels each name their own frame of reference (as
    Google's wsi2dcm wrote them) is one slide, as in OpenSlide.

    Parameters
    ----------
    images: Sequence[pydicom.Dataset]
        Metadata of VL Whole Slide Microscopy Image instances

    Returns
    -------
    List[List[pydicom.Dataset]]
        Images of each slide, in the order slides first appear

    """
    parent = list(range(len(images)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for index, image in enumerate(images):
        for link in _links(image):
            other = first.setdefault(link, index)
            parent[root(index)] = root(other)
    groups: dict[int, list[Dataset]] = {}
    for index, image in enumerate(images):
        groups.setdefault(root(index), []).append(image)
    return list(groups.values())


def _all_series(client: Any, search: dict[str, Any]) -> list[dict[str, Any]]:
    """Every series a search finds, a page of :data:`SEARCH_PAGE` at a time.

    A page shorter than the limit asked for is the last one, so a search
    that finds fewer series costs one request, not a second one for the
    empty page after it (as ``get_remaining`` does).
    """
    found: list[dict[str, Any]] = []
    while True:
        page = call(
            client, "search_for_series", limit=SEARCH_PAGE, offset=len(found), **search
        )
        found.extend(page)
        if len(page) != SEARCH_PAGE:
            # shorter: the last page; longer: the server ignores the limit
            # (and so the offset) and sent every series
            return found


def _search(
    client: DICOMClient,
    identity: dict[str, str | None],
    sop_classes: set[str],
    include_derived: bool,
    fail_on_error: bool,
    progress: Callable[[int, int], None] | None,
) -> list[Dataset]:
    """Search a client for series, then fetch metadata once per series."""
    filters = {
        keyword: value for keyword, value in identity.items() if value is not None
    }
    search: dict[str, Any] = {"search_filters": filters}
    if not is_file_client(client):
        search["fields"] = _SERIES_FIELDS  # the file client warns that it ignores them
    found = _all_series(client, search)
    modalities = _DERIVED_MODALITIES if include_derived else _SLIDE_MODALITIES
    tags = {
        "StudyInstanceUID": "0020000D",
        "PatientID": "00100020",
        "StudyID": "00200010",
    }
    images: list[Dataset] = []
    for done, series in enumerate(found):
        if progress is not None:
            progress(done, len(found))
        if not all(_matches(series, tags[k], v) for k, v in identity.items()):
            continue
        if _value(series, "00080060") not in modalities:
            continue
        series_uid = _value(series, "0020000E")
        try:
            images.extend(
                series_metadata(
                    client, _value(series, "0020000D"), series_uid, sop_classes
                )
            )
        except Exception as error:
            if fail_on_error:
                raise
            logger.warning("skipping series %s: %s", series_uid, error)
    return images


def find_slide_images(
    client: DICOMClient,
    study_instance_uid: str | None = None,
    patient_id: str | None = None,
    study_id: str | None = None,
    container_id: str | None = None,
    fail_on_error: bool = True,
    include_derived: bool = True,
    specimen_stains: Sequence[Code | hd.sr.CodedConcept] | None = None,
    optical_path_ids: Sequence[str] | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> list[list[Dataset]]:
    """Find the images of each slide: search a source and group its images.

    The images of one group make one :class:`dicomslide.Slide`
    (:func:`dicomslide.find_slides` builds them); the parameters are those of
    :func:`dicomslide.find_slides` that select images. How images are grouped
    is described in the user guide ("How images become slides").

    Parameters
    ----------
    client: dicomweb_client.api.DICOMClient
        Client (see :func:`open_source`)
    study_instance_uid: Union[str, None], optional
        DICOM Study Instance UID
    patient_id: Union[str, None], optional
        Patient identifier
    study_id: Union[str, None], optional
        Study identifier
    container_id: Union[str, None], optional
        Specimen container (slide) identifier
    fail_on_error: bool, optional
        Whether to raise when the metadata of a series cannot be retrieved,
        or an image's size attributes are broken (e.g. Rows of 0); if False,
        the series or image is skipped (and the reason logged)
    include_derived: bool, optional
        Whether derived images (DICOM Segmentation or DICOM Parametric Map
        instances) should be included into the groups of their slides
    specimen_stains: Union[Sequence[Union[pydicom.sr.coding.Code, highdicom.sr.CodedConcept]], None], optional
        Specimen stains one of which a VOLUME or THUMBNAIL image must contain
    optical_path_ids: Union[Sequence[str], None], optional
        Identifiers of optical paths one of which a VOLUME or THUMBNAIL image
        must contain
    progress: Union[Callable[[int, int], None], None], optional
        Called with (series done, series in all) as discovery proceeds

    Returns
    -------
    List[List[pydicom.dataset.Dataset]]
        Metadata of the images of each slide, sorted by container identifier

    """  # noqa: E501
    sop_classes = {VL_WSI_SOP_CLASS_UID}
    if include_derived:
        sop_classes |= _DERIVED_SOP_CLASS_UIDS
    identity = {
        "StudyInstanceUID": study_instance_uid,
        "PatientID": patient_id,
        "StudyID": study_id,
    }
    if isinstance(client, LocalFolderClient):
        # the embedded client: one reading of each file's header
        candidates = [
            header
            for header in client.headers()
            if header.get("SOPClassUID") in sop_classes
            and all(
                expected is None or str(header.get(keyword, "")) == expected
                for keyword, expected in identity.items()
            )
        ]
        if progress is not None:
            progress(1, 1)
    else:
        candidates = _search(
            client, identity, sop_classes, include_derived, fail_on_error, progress
        )
    candidates = [i for i in candidates if _readable(i, fail_on_error)]
    whole_slide = [i for i in candidates if i.SOPClassUID == VL_WSI_SOP_CLASS_UID]
    derived = [i for i in candidates if i.SOPClassUID != VL_WSI_SOP_CLASS_UID]

    groups: list[list[Dataset]] = []
    left_out: set[str] = set()  # instances the search filters leave out
    for members in group_images(whole_slide):
        wanted = [
            image
            for image in members
            if not is_volume_image(image)
            or _is_wanted(image, specimen_stains, optical_path_ids)
        ]
        containers = {
            str(element_value(i, "ContainerIdentifier") or "") for i in members
        }
        if container_id is not None and container_id not in containers:
            wanted = []
        if not any(is_volume_image(image) for image in members):
            left_out.update(str(image.SOPInstanceUID) for image in members)
            logger.warning(
                "skipping %s: LABEL or OVERVIEW images without a VOLUME image",
                describe_group(members),
            )
            continue
        if not any(is_volume_image(image) for image in wanted):
            left_out.update(str(image.SOPInstanceUID) for image in members)
            logger.debug("%s: filtered out", describe_group(members))
            continue
        # by identity: Dataset equality compares every element of both
        kept = {id(image) for image in wanted}
        left_out.update(
            str(image.SOPInstanceUID) for image in members if id(image) not in kept
        )
        groups.append(wanted)
    _attach_derived(groups, derived, left_out)

    return sorted(groups, key=_sort_key)


def _sort_key(members: Sequence[Dataset]) -> tuple[str, str, str]:
    first = members[0]
    return (*_key(first), str(element_value(first, "SeriesInstanceUID") or ""))


def _attach_derived(
    groups: list[list[Dataset]], derived: Sequence[Dataset], left_out: set[str]
) -> None:
    """Add each derived image to the slide whose images it references.

    A derived image that references images of no slide (or of several) is
    skipped with one warning per series; one whose references the search
    filters left out is dropped quietly. Without references, an image joins
    the slide of its container and frame of reference, if there is one.
    """
    owner = {
        str(image.SOPInstanceUID): index
        for index, members in enumerate(groups)
        for image in members
    }
    by_key: dict[tuple[str, str], set[int]] = defaultdict(set)
    for index, members in enumerate(groups):
        for image in members:
            by_key[_key(image)].add(index)
    skipped: dict[str, tuple[str, list[Dataset]]] = {}
    for image in derived:
        references = {uid for _, _, uid in get_referenced_instances(image)}
        if references:
            found = {owner[uid] for uid in references if uid in owner}
            if not found and references <= left_out:
                logger.debug(
                    "derived image %s: its slide is filtered out", image.SOPInstanceUID
                )
                continue
        else:
            found = by_key.get(_key(image), set())
        if len(found) == 1:
            groups[found.pop()].append(image)
            continue
        if found:
            reason = "it references images of several slides"
        elif references:
            reason = f"it references none of the images found (e.g. {min(references)})"
        else:
            reason = "it references no image and matches no slide"
        series = str(element_value(image, "SeriesInstanceUID"))
        skipped.setdefault(series, (reason, []))[1].append(image)
    for reason, images in skipped.values():
        logger.warning(
            "skipping derived image(s) of %s: %s", describe_group(images), reason
        )


def _key(image: Dataset) -> tuple[str, str]:
    return (
        str(element_value(image, "ContainerIdentifier") or ""),
        str(element_value(image, "FrameOfReferenceUID") or ""),
    )
