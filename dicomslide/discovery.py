"""Finding slides: search a source, fetch metadata once per series, group."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from dicomweb_client import DICOMfileClient
from pydicom import dcmread
from pydicom.dataset import Dataset

from dicomslide.cache import FrameCache
from dicomslide.client import (
    ICC_PROFILE_URIS,
    LocalFolderClient,
    call,
    client_lock,
    open_client,
)
from dicomslide.elements import element_value
from dicomslide.errors import DicomSlideError, MetadataError
from dicomslide.slide import Slide
from dicomslide.tile import FRAME_TABLE_ATTRIBUTE, frame_table_from_json
from dicomslide.utils import (
    PARAMETRIC_MAP_SOP_CLASS_UID,
    SEGMENTATION_SOP_CLASS_UIDS,
    VL_WSI_SOP_CLASS_UID,
    does_specimen_description_item_match,
    get_referenced_instances,
)

if TYPE_CHECKING:
    import highdicom as hd
    from pydicom.sr.coding import Code

logger = logging.getLogger(__name__)

_ICC_PROFILE_TAG = 0x00282000
# Pixel Data, Float and Double Float Pixel Data: never read from metadata
# (Orthanc gives the first value of float pixel data inline)
_PIXEL_DATA_TAGS = frozenset({"7FE00010", "7FE00008", "7FE00009"})
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


def load_metadata(client: Any, metadata: dict[str, Any]) -> Dataset:
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
    frames = int(_value(metadata, "00280008") or 1)
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
    client: Any,
    study_instance_uid: str,
    series_instance_uid: str,
    sop_classes: set[str],
) -> list[Dataset]:
    """Metadata of the instances of a series that are of the given SOP classes.

    One request per series. Files of a ``DICOMfileClient`` are read directly
    (headers only), which spares the JSON round trip the client would make.

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
    if isinstance(client, DICOMfileClient):
        with client_lock(client):
            manager = client._db_manager
            paths = [
                manager.get_instance_file_path(*identifiers)
                for identifiers in manager.get_instance_identifiers(
                    study_instance_uid=study_instance_uid,
                    series_instance_uid=series_instance_uid,
                )
            ]
        datasets = [dcmread(path, stop_before_pixels=True) for path in paths]
        return [d for d in datasets if d.get("SOPClassUID") in sop_classes]
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


def _wanted(
    image: Dataset,
    container_id: str | None,
    specimen_stains: Sequence[Code | hd.sr.CodedConcept] | None,
    optical_path_ids: Sequence[str] | None,
) -> bool:
    if container_id is not None and image.get("ContainerIdentifier") != container_id:
        return False
    if image.SOPClassUID != VL_WSI_SOP_CLASS_UID:
        return True
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


def _slide_key(image: Dataset) -> tuple[str, str]:
    container = element_value(image, "ContainerIdentifier")
    frame_of_reference = element_value(image, "FrameOfReferenceUID")
    if container is None or frame_of_reference is None:
        logger.debug(
            "instance %s lacks %s; grouping by what is present",
            image.SOPInstanceUID,
            "ContainerIdentifier" if container is None else "FrameOfReferenceUID",
        )
    if container is None and frame_of_reference is None:
        return ("series", str(image.SeriesInstanceUID))
    return (str(container or ""), str(frame_of_reference or ""))


def _contradictions(
    groups: dict[tuple[str, str], list[Dataset]],
) -> dict[tuple[str, str], MetadataError]:
    """Slides whose images disagree: one series (or pyramid) spread over
    several containers or frames of reference cannot be trusted."""
    keys_of: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for key, members in groups.items():
        for image in members:
            for keyword in ("SeriesInstanceUID", "PyramidUID"):
                value = element_value(image, keyword)
                if value:
                    keys_of[f"{keyword} {value}"].add(key)
    broken: dict[tuple[str, str], MetadataError] = {}
    for name, keys in keys_of.items():
        if len(keys) > 1:
            details = "; ".join(
                f"container {c!r}, frame of reference {f!r}" for c, f in sorted(keys)
            )
            for key in keys:
                broken[key] = MetadataError(
                    f"the images of {name} disagree on their slide: {details}"
                )
    return broken


def _search(
    client: Any,
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
    search: dict[str, Any] = {"search_filters": filters, "get_remaining": True}
    if not isinstance(client, DICOMfileClient):
        search["fields"] = _SERIES_FIELDS  # the file client warns that it ignores them
    found = call(client, "search_for_series", **search)
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


def find_slides(
    client: Any,
    study_instance_uid: str | None = None,
    patient_id: str | None = None,
    study_id: str | None = None,
    container_id: str | None = None,
    max_frame_cache_size: int = 6,
    pyramid_tolerance: float = 0.1,
    fail_on_error: bool = True,
    include_derived: bool = True,
    specimen_stains: Sequence[Code | hd.sr.CodedConcept] | None = None,
    optical_path_ids: Sequence[str] | None = None,
    *,
    correct_color: bool = True,
    cache: FrameCache | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[Slide]:
    """Find slides.

    Parameters
    ----------
    client: Union[dicomweb_client.api.DICOMClient, str, os.PathLike]
        DICOMweb client; or a local folder path (opens the embedded
        ``DICOMfileClient``); or an ``http(s)://`` DICOMweb base URL
    study_instance_uid: Union[str, None], optional
        DICOM Study Instance UID
    patient_id: Union[str, None], optional
        Patient identifier
    study_id: Union[str, None], optional
        Study identifier
    container_id: Union[str, None], optional
        Specimen container (slide) identifier
    max_frame_cache_size: int, optional
        Number of frames per image the frame cache holds at least
    pyramid_tolerance: float, optional
        Maximally tolerated distances between the centers of images at
        different pyramid levels in the slide coordinate system in millimeter
        unit
    fail_on_error: bool, optional
        Whether the function should raise an exception in case an error
        occurs. If False, slides will be skipped (and the reason logged).
    include_derived: bool, optional
        Whether derived images (DICOM Segmentation or DICOM Parametric Map
        instances) should be considered and included into slides
    specimen_stains: Union[Sequence[Union[pydicom.sr.coding.Code, highdicom.sr.CodedConcept]], None], optional
        Specimen stains for which corresponding slide microscopy images should
        be included in slides. Any image that does not contain one of the
        stains in the specimen description will be omitted.
    optical_path_ids: Union[Sequence[str], None], optional
        Identifiers of optical paths for which corresponding slide microscopy
        images should be included in slides. Any image that does not contain
        any of the specified optical paths will be omitted.
    correct_color: bool, optional
        Whether pixels of the slides' images are colour corrected with their
        ICC profiles
    cache: Union[dicomslide.cache.FrameCache, None], optional
        Cache for decoded frames of every slide found; by default the cache
        shared by all images
    progress: Union[Callable[[int, int], None], None], optional
        Called with (series done, series in all) as discovery proceeds

    Returns
    -------
    List[dicomslide.Slide]
        Digital slides, sorted by container identifier

    """  # noqa: E501
    client = open_client(client)
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
    images = [
        image
        for image in candidates
        if _wanted(image, container_id, specimen_stains, optical_path_ids)
    ]

    groups: dict[tuple[str, str], list[Dataset]] = defaultdict(list)
    derived: list[Dataset] = []
    for image in images:
        if image.SOPClassUID == VL_WSI_SOP_CLASS_UID:
            groups[_slide_key(image)].append(image)
        else:
            derived.append(image)
    owner = {
        str(image.SOPInstanceUID): key
        for key, members in groups.items()
        for image in members
    }
    broken = _contradictions(groups)
    for image in derived:
        own_study = str(image.get("StudyInstanceUID", ""))
        references = {
            uid
            for study, _, uid in get_referenced_instances(image)
            if study == own_study
        }
        keys = {owner[uid] for uid in references if uid in owner}
        if references and not keys:
            reason = MetadataError(
                "derived image references none of the images found "
                f"(e.g. {sorted(references)[0]})",
                str(image.SOPInstanceUID),
            )
            if fail_on_error:
                raise reason
            logger.warning("skipping derived image: %s", reason)
            continue
        key = keys.pop() if len(keys) == 1 else _slide_key(image)
        if key in groups:
            groups[key].append(image)
        else:
            logger.debug("derived image %s matches no slide", image.SOPInstanceUID)

    slides = []
    for key in sorted(groups):
        try:
            if key in broken:
                raise broken[key]
            slides.append(
                Slide(
                    client,
                    groups[key],
                    max_frame_cache_size=max_frame_cache_size,
                    pyramid_tolerance=pyramid_tolerance,
                    correct_color=correct_color,
                    cache=cache,
                )
            )
        except (DicomSlideError, ValueError) as error:
            if fail_on_error:
                raise
            logger.warning("skipping slide %s: %s", key[0], error)
    return slides
