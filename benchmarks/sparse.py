"""A large synthetic TILED_SPARSE slide, for the "open-sparse" workload.

What makes opening such a file expensive is its Per-Frame Functional Groups
Sequence: one item per frame, each with a Plane Position (Slide) Sequence (and
a Frame Content Sequence), which a reader has to parse before it knows where a
frame goes.  The pixels themselves are tiny (16×16 native RGB frames), so the
workload measures metadata handling, not decoding.

The file is written with pydicom once and cached (``benchmarks/.cache/``);
its name encodes the parameters and :data:`FORMAT_VERSION`, so changing either
writes a new one.  Every pixel is a known function of its (row, column) in the
total pixel matrix (:func:`expected_region`), so reads can be checked exactly;
omitted tiles (the "sparse" part) lie outside the first 512 rows, so the
256×256 check read at the top left never touches one.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Bump when the written file changes, so stale caches are not reused.
FORMAT_VERSION = 1

TILE = 16
GRID_ROWS = 320
GRID_COLUMNS = 352
#: Tiles at grid row >= this index may be omitted.
FIRST_SPARSE_GRID_ROW = 32
PIXEL_SPACING_MM = 0.00025
ORIGIN_MM = (20.0, 40.0)

UID_ROOT = "1.2.826.0.1.3680043.8.498.77"
_UIDS = {
    "study": f"{UID_ROOT}.1.1",
    "series": f"{UID_ROOT}.1.2",
    "instance": f"{UID_ROOT}.1.3",
    "frame_of_reference": f"{UID_ROOT}.1.4",
    "dimension_organization": f"{UID_ROOT}.1.5",
    "specimen": f"{UID_ROOT}.1.6",
    "pyramid": f"{UID_ROOT}.1.7",
}
_VL_WSI = "1.2.840.10008.5.1.4.1.1.77.1.6"


@dataclass(frozen=True)
class SparseSlide:
    """Where the synthetic slide is and what it holds."""

    folder: Path
    path: Path
    rows: int
    columns: int
    tile: int
    number_of_frames: int
    grid_positions: int
    write_seconds: float | None
    """Seconds it took to write, or None when it came from the cache."""


def present_mask() -> np.ndarray:
    """Which tile positions hold a frame.

    Returns
    -------
    numpy.ndarray
        Boolean array of shape (GRID_ROWS, GRID_COLUMNS)

    """
    grid_rows, grid_columns = np.mgrid[0:GRID_ROWS, 0:GRID_COLUMNS]
    omitted = ((grid_rows * 7 + grid_columns * 3) % 10 == 0) & (
        grid_rows >= FIRST_SPARSE_GRID_ROW
    )
    return ~omitted


def expected_region(row: int, column: int, height: int, width: int) -> np.ndarray:
    """The pixels a reader must return for a region of the synthetic slide.

    Only valid for regions of present tiles (e.g. anything above row 512).

    Parameters
    ----------
    row, column: int
        Zero-based offset in the total pixel matrix
    height, width: int
        Region size

    Returns
    -------
    numpy.ndarray
        uint8 array of shape (height, width, 3)

    """
    rows = np.arange(row, row + height, dtype=np.int64)[:, None]
    columns = np.arange(column, column + width, dtype=np.int64)[None, :]
    red = (columns * 3 + rows) % 256
    green = (rows * 5 + columns // 7) % 256
    blue = ((rows // TILE) * 31 + (columns // TILE) * 17) % 256
    return np.stack(np.broadcast_arrays(red, green, blue), axis=-1).astype(np.uint8)


def _code(value: str, scheme: str, meaning: str) -> object:
    from pydicom.dataset import Dataset

    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _dataset(number_of_frames: int) -> object:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    rows = GRID_ROWS * TILE
    columns = GRID_COLUMNS * TILE
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = _VL_WSI
    meta.MediaStorageSOPInstanceUID = _UIDS["instance"]
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    now = datetime.datetime(2025, 11, 21, 12, 0, 0)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
    ds.SOPClassUID = _VL_WSI
    ds.SOPInstanceUID = _UIDS["instance"]
    ds.StudyDate = now.strftime("%Y%m%d")
    ds.StudyTime = now.strftime("%H%M%S")
    ds.ContentDate = ds.StudyDate
    ds.ContentTime = ds.StudyTime
    ds.AcquisitionDateTime = now.strftime("%Y%m%d%H%M%S")
    ds.AccessionNumber = ""
    ds.Modality = "SM"
    ds.Manufacturer = "dicomslide benchmarks"
    ds.ReferringPhysicianName = ""
    ds.ManufacturerModelName = "benchmarks/sparse.py"
    ds.DeviceSerialNumber = "0"
    ds.SoftwareVersions = str(FORMAT_VERSION)
    ds.PatientName = "Bench^Sparse"
    ds.PatientID = "BENCH-SPARSE"
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyInstanceUID = _UIDS["study"]
    ds.SeriesInstanceUID = _UIDS["series"]
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.FrameOfReferenceUID = _UIDS["frame_of_reference"]
    ds.PositionReferenceIndicator = "SLIDE_CORNER"
    ds.PyramidUID = _UIDS["pyramid"]
    ds.DimensionOrganizationType = "TILED_SPARSE"
    ds.ContainerIdentifier = "BENCH-SPARSE"
    ds.IssuerOfTheContainerIdentifierSequence = []
    ds.ContainerTypeCodeSequence = [_code("433466003", "SCT", "Microscope slide")]
    specimen = Dataset()
    specimen.SpecimenIdentifier = "BENCH-SPARSE-S1"
    specimen.SpecimenUID = _UIDS["specimen"]
    specimen.IssuerOfTheSpecimenIdentifierSequence = []
    specimen.SpecimenPreparationSequence = []
    ds.SpecimenDescriptionSequence = [specimen]
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.NumberOfFrames = number_of_frames
    ds.Rows = TILE
    ds.Columns = TILE
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"
    ds.SpecimenLabelInImage = "NO"
    ds.VolumetricProperties = "VOLUME"
    ds.FocusMethod = "AUTO"
    ds.ExtendedDepthOfField = "NO"
    ds.ImagedVolumeWidth = columns * PIXEL_SPACING_MM
    ds.ImagedVolumeHeight = rows * PIXEL_SPACING_MM
    ds.ImagedVolumeDepth = 0.001
    ds.TotalPixelMatrixColumns = columns
    ds.TotalPixelMatrixRows = rows
    ds.TotalPixelMatrixFocalPlanes = 1
    ds.NumberOfFocalPlanes = 1
    ds.NumberOfOpticalPaths = 1
    origin = Dataset()
    origin.XOffsetInSlideCoordinateSystem = ORIGIN_MM[0]
    origin.YOffsetInSlideCoordinateSystem = ORIGIN_MM[1]
    ds.TotalPixelMatrixOriginSequence = [origin]
    ds.ImageOrientationSlide = [0, -1, 0, -1, 0, 0]
    optical_path = Dataset()
    optical_path.OpticalPathIdentifier = "0"
    optical_path.OpticalPathDescription = "Brightfield"
    optical_path.IlluminationTypeCodeSequence = [
        _code("111744", "DCM", "Brightfield illumination")
    ]
    optical_path.IlluminationColorCodeSequence = [
        _code("414298005", "SCT", "Full Spectrum")
    ]
    ds.OpticalPathSequence = [optical_path]
    organization = Dataset()
    organization.DimensionOrganizationUID = _UIDS["dimension_organization"]
    ds.DimensionOrganizationSequence = [organization]
    index_items = []
    for pointer in (0x0048021E, 0x0048021F):  # column, row position in the matrix
        item = Dataset()
        item.DimensionOrganizationUID = _UIDS["dimension_organization"]
        item.DimensionIndexPointer = pointer
        item.FunctionalGroupPointer = 0x0048021A  # PlanePositionSlideSequence
        index_items.append(item)
    ds.DimensionIndexSequence = index_items
    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = [PIXEL_SPACING_MM, PIXEL_SPACING_MM]
    measures.SliceThickness = 0.001
    shared.PixelMeasuresSequence = [measures]
    frame_type = Dataset()
    frame_type.FrameType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
    shared.WholeSlideMicroscopyImageFrameTypeSequence = [frame_type]
    optical_path_id = Dataset()
    optical_path_id.OpticalPathIdentifier = "0"
    shared.OpticalPathIdentificationSequence = [optical_path_id]
    ds.SharedFunctionalGroupsSequence = [shared]
    return ds


def _per_frame_items(mask: np.ndarray) -> list[object]:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    items: list[object] = []
    grid_rows, grid_columns = np.nonzero(mask)  # row-major order
    for grid_row, grid_column in zip(grid_rows.tolist(), grid_columns.tolist()):
        row, column = grid_row * TILE, grid_column * TILE
        position = Dataset()
        # ImageOrientationSlide (0,-1,0,-1,0,0): down the rows X decreases,
        # along a row Y decreases.
        position.add_new(
            0x0040072A, "DS", round(ORIGIN_MM[0] - row * PIXEL_SPACING_MM, 6)
        )
        position.add_new(
            0x0040073A, "DS", round(ORIGIN_MM[1] - column * PIXEL_SPACING_MM, 6)
        )
        position.add_new(0x0040074A, "DS", 0.0)
        position.add_new(0x0048021E, "SL", column + 1)
        position.add_new(0x0048021F, "SL", row + 1)
        content = Dataset()
        content.add_new(0x00209157, "UL", [grid_column + 1, grid_row + 1])
        item = Dataset()
        item.add_new(0x00209111, "SQ", Sequence([content]))
        item.add_new(0x0048021A, "SQ", Sequence([position]))
        items.append(item)
    return items


def _tiles(mask: np.ndarray) -> bytes:
    full = expected_region(0, 0, GRID_ROWS * TILE, GRID_COLUMNS * TILE)
    tiles = full.reshape(GRID_ROWS, TILE, GRID_COLUMNS, TILE, 3).swapaxes(1, 2)
    return np.ascontiguousarray(tiles[mask]).tobytes()


def _describe(
    folder: Path, path: Path, frames: int, seconds: float | None
) -> SparseSlide:
    return SparseSlide(
        folder=folder,
        path=path,
        rows=GRID_ROWS * TILE,
        columns=GRID_COLUMNS * TILE,
        tile=TILE,
        number_of_frames=frames,
        grid_positions=GRID_ROWS * GRID_COLUMNS,
        write_seconds=seconds,
    )


def ensure_sparse_slide(cache_dir: Path) -> SparseSlide:
    """Return the cached synthetic slide, writing it first when missing.

    Parameters
    ----------
    cache_dir: pathlib.Path
        Folder for cached benchmark data (``benchmarks/.cache``)

    Returns
    -------
    SparseSlide
        The slide; its folder holds exactly one DICOM file

    """
    mask = present_mask()
    frames = int(mask.sum())
    name = f"sparse-v{FORMAT_VERSION}-{GRID_ROWS}x{GRID_COLUMNS}x{TILE}-{frames}"
    folder = cache_dir / name
    path = folder / "sparse.dcm"
    cache_dir.mkdir(parents=True, exist_ok=True)
    ignore = cache_dir / ".gitignore"
    if not ignore.exists():  # keeps the cache out of git even without a rule
        ignore.write_text("# written by benchmarks/sparse.py\n*\n")
    if path.exists():
        return _describe(folder, path, frames, None)
    start = time.perf_counter()
    from pydicom.sequence import Sequence

    folder.mkdir(parents=True, exist_ok=True)
    ds = _dataset(frames)
    ds.PerFrameFunctionalGroupsSequence = Sequence(_per_frame_items(mask))
    ds.PixelData = _tiles(mask)
    partial = path.with_suffix(".partial")
    ds.save_as(partial, enforce_file_format=True)
    partial.replace(path)
    return _describe(folder, path, frames, time.perf_counter() - start)


if __name__ == "__main__":  # pragma: no cover - manual use
    import sys

    slide = ensure_sparse_slide(Path(sys.argv[1] if len(sys.argv) > 1 else ".cache"))
    print(slide)
