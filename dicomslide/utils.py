"""Small predicates and look-ups on DICOM image metadata."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from pydicom.dataset import Dataset

from dicomslide import uids
from dicomslide.elements import element_value, has_element
from dicomslide.enum import ImageFlavors as ImageFlavors  # a dicomslide 0.7 name
from dicomslide.errors import MetadataError

if TYPE_CHECKING:
    import highdicom as hd
    from pydicom.sr.coding import Code

logger = logging.getLogger(__name__)

VL_WSI_SOP_CLASS_UID: str = uids.VLWholeSlideMicroscopyImageStorage
SEGMENTATION_SOP_CLASS_UIDS: frozenset[str] = frozenset(
    {
        uids.SegmentationStorage,  # Segmentation Storage
        uids.LabelMapSegmentationStorage,  # Label Map Segmentation Storage
    }
)
PARAMETRIC_MAP_SOP_CLASS_UID: str = uids.ParametricMapStorage
_USING_SUBSTANCE = ("424361007", "SCT")


def image_flavor(dataset: Dataset) -> str | None:
    """Get the flavor of an image: value 3 of Image Type (e.g. "VOLUME").

    Parameters
    ----------
    dataset: pydicom.dataset.Dataset
        Dataset

    Returns
    -------
    Union[str, None]
        Flavor, or None when Image Type has fewer than three values

    """
    image_type = element_value(dataset, "ImageType")
    if image_type is None or len(image_type) < 3:
        return None
    return str(image_type[2])


def _is_wsi_of_flavor(dataset: Dataset, *flavors: str) -> bool:
    return (
        element_value(dataset, "SOPClassUID") == VL_WSI_SOP_CLASS_UID
        and image_flavor(dataset) in flavors
    )


def is_image(dataset: Dataset) -> bool:
    """Determine whether a dataset is an image.

    Parameters
    ----------
    dataset: pydicom.dataset.Dataset
        Dataset

    Returns
    -------
    bool
        Whether dataset is an image

    """
    return all(
        has_element(dataset, keyword)
        for keyword in ("Rows", "Columns", "SamplesPerPixel")
    )


def is_tiled_image(dataset: Dataset) -> bool:
    """Determine whether a dataset is a tiled image.

    A tiled image carries the Total Pixel Matrix Rows and Total Pixel Matrix
    Columns attributes.

    Parameters
    ----------
    dataset: pydicom.dataset.Dataset
        Dataset

    Returns
    -------
    bool
        Whether dataset is a tiled image

    """
    return (
        is_image(dataset)
        and has_element(dataset, "TotalPixelMatrixRows")
        and has_element(dataset, "TotalPixelMatrixColumns")
    )


def is_volume_image(dataset: Dataset) -> bool:
    """Determine whether a dataset is a VOLUME or THUMBNAIL image.

    Parameters
    ----------
    dataset: pydicom.dataset.Dataset
        Dataset

    Returns
    -------
    bool
        Whether dataset is a VOLUME or THUMBNAIL image

    """
    return _is_wsi_of_flavor(dataset, "VOLUME", "THUMBNAIL")


def is_label_image(dataset: Dataset) -> bool:
    """Determine whether a dataset is a LABEL image.

    Parameters
    ----------
    dataset: pydicom.dataset.Dataset
        Dataset

    Returns
    -------
    bool
        Whether dataset is a LABEL image

    """
    return _is_wsi_of_flavor(dataset, "LABEL")


def is_overview_image(dataset: Dataset) -> bool:
    """Determine whether a dataset is an OVERVIEW image.

    Parameters
    ----------
    dataset: pydicom.dataset.Dataset
        Dataset

    Returns
    -------
    bool
        Whether dataset is an OVERVIEW image

    """
    return _is_wsi_of_flavor(dataset, "OVERVIEW")


def _codes_equal(item: Dataset, code: Code | hd.sr.CodedConcept) -> bool:
    import highdicom as hd

    try:
        concept = hd.sr.CodedConcept.from_dataset(item)
    except (AttributeError, TypeError, ValueError):
        return False
    return concept == code


def does_optical_path_item_match(
    item: Dataset,
    identifier: str | None = None,
    description: str | None = None,
    illumination_wavelength: float | None = None,
) -> bool:
    """Check whether an optical path item matches.

    Parameters
    ----------
    item: pydicom.Dataset
        Item of the Optical Path Sequence
    identifier: Union[str, None], optional
        Optical path identifier
    description: Union[str, None], optional
        Optical path description
    illumination_wavelength: Union[float, None], optional
        Illumination wavelength in nanometers

    Returns
    -------
    bool
        Whether item matches

    """
    if identifier is not None and str(item.get("OpticalPathIdentifier")) != identifier:
        return False
    if description is not None and item.get("OpticalPathDescription") != description:
        return False
    if illumination_wavelength is not None:
        value = item.get("IlluminationWaveLength")
        if value is None or abs(float(value) - float(illumination_wavelength)) > 1e-6:
            return False
    return True


def _folded(text: object) -> str:
    return " ".join(str(text or "").split()).casefold()


def does_segment_item_match(
    item: Dataset,
    number: int | None = None,
    label: str | None = None,
    property_category: Code | hd.sr.CodedConcept | None = None,
    property_type: Code | hd.sr.CodedConcept | None = None,
) -> bool:
    """Check whether a segment item matches.

    Parameters
    ----------
    item: pydicom.Dataset
        Item of the Segment Sequence
    number: Union[int, None], optional
        Segment number
    label: Union[str, None], optional
        Segment label (compared ignoring case and surrounding or repeated
        white space)
    property_category: Union[pydicom.sr.coding.Code, highdicom.sr.CodedConcept, None], optional
        Segmented property category
    property_type: Union[pydicom.sr.coding.Code, highdicom.sr.CodedConcept, None], optional
        Segmented property type

    Returns
    -------
    bool
        Whether item matches

    """  # noqa: E501
    if number is not None and int(item.get("SegmentNumber", -1)) != int(number):
        return False
    if label is not None and _folded(item.get("SegmentLabel")) != _folded(label):
        return False
    for keyword, code in (
        ("SegmentedPropertyCategoryCodeSequence", property_category),
        ("SegmentedPropertyTypeCodeSequence", property_type),
    ):
        if code is None:
            continue
        sequence = item.get(keyword)
        if not sequence or not _codes_equal(sequence[0], code):
            return False
    return True


def does_specimen_description_item_match(
    item: Dataset,
    specimen_stain: Code | hd.sr.CodedConcept | None = None,
) -> bool:
    """Check whether a specimen description item matches.

    Parameters
    ----------
    item: pydicom.Dataset
        Item of the Specimen Description Sequence
    specimen_stain: Union[pydicom.sr.coding.Code, highdicom.sr.CodedConcept, None], optional
        Specimen stain substance

    Returns
    -------
    bool
        Whether item matches

    """  # noqa: E501
    if specimen_stain is None:
        return True
    for step in item.get("SpecimenPreparationSequence", []):
        for content in step.get("SpecimenPreparationStepContentItemSequence", []):
            names = content.get("ConceptNameCodeSequence")
            if (
                not names
                or (
                    str(names[0].get("CodeValue")),
                    str(names[0].get("CodingSchemeDesignator")),
                )
                != _USING_SUBSTANCE
            ):
                continue
            values = content.get("ConceptCodeSequence")
            if values and _codes_equal(values[0], specimen_stain):
                return True
    return False


def _first_functional_group(image: Dataset, keyword: str) -> Dataset | None:
    for group_keyword in (
        "SharedFunctionalGroupsSequence",
        "PerFrameFunctionalGroupsSequence",
    ):
        groups = element_value(image, group_keyword)
        if groups:
            sequence = element_value(groups[0], keyword)
            if sequence:
                return cast("Dataset | None", sequence[0])
    return None


#: Attribute of a metadata dataset that holds the Pixel Spacing dicomslide
#: derived where the stored one contradicts the image's size (see
#: :func:`dicomslide.pyramid.derive_pixel_spacings`)
DERIVED_PIXEL_SPACING = "_dicomslide_derived_pixel_spacing"


def get_image_pixel_spacing(image: Dataset) -> tuple[float, float]:
    """Get pixel spacing (spacing between pixels) of an image.

    Parameters
    ----------
    image: pydicom.dataset.Dataset
        Metadata of a DICOM VL Whole Slide Microscopy Image instance or of a
        derived image instance (e.g., DICOM Segmentation)

    Returns
    -------
    Tuple[float, float]
        Pixel spacing in millimeter: spacing between rows (top to bottom) and
        between columns (left to right), as stored in Pixel Spacing (or as
        derived by a :class:`dicomslide.Slide` where the stored value
        contradicts the image's size)

    Raises
    ------
    dicomslide.errors.MetadataError
        When the image has no Pixel Spacing

    """
    derived: tuple[float, float] | None = getattr(image, DERIVED_PIXEL_SPACING, None)
    if derived is not None:
        return derived
    measures = _first_functional_group(image, "PixelMeasuresSequence")
    spacing = None if measures is None else element_value(measures, "PixelSpacing")
    if spacing is None:
        raise MetadataError(
            "Pixel Spacing is missing from the Pixel Measures Sequence",
            image.get("SOPInstanceUID"),
        )
    row_spacing, column_spacing = spacing
    return (float(row_spacing), float(column_spacing))


def distinct_values(image_metadata: Sequence[Dataset], keyword: str) -> list[str]:
    """The distinct non-empty values of an attribute, in order of appearance.

    Parameters
    ----------
    image_metadata: Sequence[pydicom.Dataset]
        Metadata of images
    keyword: str
        Keyword of the attribute

    Returns
    -------
    List[str]
        Values

    """
    values = (element_value(m, keyword) for m in image_metadata)
    return list(dict.fromkeys(str(v) for v in values if v))


def get_image_size(image: Dataset) -> int:
    """Get size of an image.

    Parameters
    ----------
    image: pydicom.dataset.Dataset
        Metadata of a DICOM VL Whole Slide Microscopy Image instance or a
        derived image instance (e.g., DICOM Segmentation)

    Returns
    -------
    int
        Number of pixels in each total pixel matrix

    """
    return int(image.TotalPixelMatrixRows) * int(image.TotalPixelMatrixColumns)


def get_referenced_instances(
    image: Dataset, sop_class_uid: str | None = None
) -> list[tuple[str, str, str]]:
    """Get the instances an image references (e.g. a segmentation's sources).

    Parameters
    ----------
    image: pydicom.dataset.Dataset
        Metadata of an image
    sop_class_uid: Union[str, None], optional
        Only references to instances of this SOP class

    Returns
    -------
    List[Tuple[str, str, str]]
        Study, Series, and SOP Instance UID of each referenced instance, in
        the order of the references, without repetitions

    """
    studies = [(str(image.get("StudyInstanceUID", "")), image)]
    studies += [
        (str(item.StudyInstanceUID), item)
        for item in image.get("StudiesContainingOtherReferencedInstancesSequence", [])
    ]
    references = [
        (study, str(series.SeriesInstanceUID), str(instance.ReferencedSOPInstanceUID))
        for study, item in studies
        for series in item.get("ReferencedSeriesSequence", [])
        for instance in series.get("ReferencedInstanceSequence", [])
        if sop_class_uid is None
        or instance.get("ReferencedSOPClassUID") == sop_class_uid
    ]
    return list(dict.fromkeys(references))
