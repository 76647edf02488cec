"""Tests of the synthetic Segmentation / Parametric Map generator.

The written files are read back with highdicom (``segread`` / ``imread``) and
with plain pydicom, and compared with the truth arrays returned by
:mod:`synthetic_derived`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import numpy.typing as npt
import pydicom
import pytest
from pydicom.dataset import Dataset

from dicomslide.testing import synthetic
from dicomslide.testing import synthetic_derived as sd

SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
LABELMAP_SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.7"
PM_STORAGE = "1.2.840.10008.5.1.4.1.1.30"


@pytest.fixture(scope="module")
def slide(tmp_path_factory: pytest.TempPathFactory) -> synthetic.SyntheticSlide:
    """The ``rgb_full`` synthetic slide (JPEG, 3 levels)."""
    return synthetic.write_slide(tmp_path_factory.mktemp("slide"), "rgb_full")


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Output folder for derived instances."""
    return tmp_path_factory.mktemp("derived")


def _grid(ds: Dataset) -> tuple[int, int]:
    return (
        -(-int(ds.TotalPixelMatrixRows) // int(ds.Rows)),
        -(-int(ds.TotalPixelMatrixColumns) // int(ds.Columns)),
    )


def _frame_positions(ds: Dataset) -> list[tuple[int, int, int]]:
    """(channel index, row0, col0) of every stored frame, 0-based."""
    rows, cols = int(ds.Rows), int(ds.Columns)
    if "PerFrameFunctionalGroupsSequence" not in ds:
        grid_r, grid_c = _grid(ds)
        return [
            (k // (grid_r * grid_c), (k // grid_c) % grid_r * rows, k % grid_c * cols)
            for k in range(int(ds.NumberOfFrames))
        ]
    out = []
    for item in ds.PerFrameFunctionalGroupsSequence:
        pos = item.PlanePositionSlideSequence[0]
        channel = 0
        if "SegmentIdentificationSequence" in item:
            channel = (
                int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber) - 1
            )
        out.append(
            (
                channel,
                int(pos.RowPositionInTotalImagePixelMatrix) - 1,
                int(pos.ColumnPositionInTotalImagePixelMatrix) - 1,
            )
        )
    return out


def _assemble(ds: Dataset, channels: int, dtype: npt.DTypeLike) -> np.ndarray:
    """Total pixel matrix per channel from pydicom's ``pixel_array``."""
    frames = ds.pixel_array.reshape(
        int(ds.NumberOfFrames), int(ds.Rows), int(ds.Columns)
    )
    total = np.zeros(
        (channels, int(ds.TotalPixelMatrixRows), int(ds.TotalPixelMatrixColumns)),
        dtype=dtype,
    )
    for frame, (ch, r0, c0) in zip(frames, _frame_positions(ds)):
        h = min(int(ds.Rows), total.shape[1] - r0)
        w = min(int(ds.Columns), total.shape[2] - c0)
        total[ch, r0 : r0 + h, c0 : c0 + w] = frame[:h, :w]
    return total


def _check_references(ds: Dataset, source: synthetic.SyntheticImage) -> None:
    src = pydicom.dcmread(source.files[0], stop_before_pixels=True)
    assert ds.StudyInstanceUID == src.StudyInstanceUID
    assert ds.FrameOfReferenceUID == src.FrameOfReferenceUID
    assert ds.ContainerIdentifier == src.ContainerIdentifier
    assert ds.PatientID == src.PatientID
    assert ds.SeriesInstanceUID != src.SeriesInstanceUID
    assert ds.TotalPixelMatrixRows == source.total_rows
    assert ds.TotalPixelMatrixColumns == source.total_cols
    series = ds.ReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == src.SeriesInstanceUID
    referenced = [
        it.ReferencedSOPInstanceUID for it in series.ReferencedInstanceSequence
    ]
    assert referenced == list(source.sop_instance_uids)
    assert [it.ReferencedSOPInstanceUID for it in ds.SourceImageSequence] == list(
        source.sop_instance_uids
    )


# --------------------------------------------------------------------------
# Content
# --------------------------------------------------------------------------


@pytest.mark.parametrize("segments", [1, 2, 5])
def test_segment_masks_content(segments: int) -> None:
    masks = sd.make_segment_masks(300, 470, segments, seed=3)
    assert masks.shape == (segments, 300, 470)
    assert masks.sum(axis=0).max() == 1  # no overlap
    for k in range(segments):
        assert 0 < masks[k].sum() < masks[k].size
    # Some segment reaches the partial edge tiles (64 x 96 tiles).
    assert masks[:, 256:, 384:].any()
    # Whole 64 x 96 tiles are empty.
    union: np.ndarray = np.any(masks, axis=0)
    empty = [
        not union[r : r + 64, c : c + 96].any()
        for r in range(0, 300, 64)
        for c in range(0, 470, 96)
    ]
    assert sum(empty) >= 4
    again = sd.make_segment_masks(300, 470, segments, seed=3)
    assert np.array_equal(masks, again)
    other = sd.make_segment_masks(300, 470, segments, seed=4)
    assert not np.array_equal(masks, other)


def test_fractional_values_content() -> None:
    masks = sd.make_segment_masks(300, 470, 3, seed=1)
    values = sd.make_fractional_values(masks, seed=1)
    assert values.dtype == np.uint8
    assert np.array_equal(values > 0, masks)
    for k in range(3):
        inside = values[k][masks[k]]
        assert inside.max() == sd.MAX_FRACTIONAL_VALUE
        assert len(np.unique(inside)) > 20


# --------------------------------------------------------------------------
# Segmentations
# --------------------------------------------------------------------------


@pytest.mark.parametrize("organization", ["TILED_SPARSE", "TILED_FULL"])
@pytest.mark.parametrize("segmentation_type", ["BINARY", "FRACTIONAL", "LABELMAP"])
def test_segmentation(
    slide: synthetic.SyntheticSlide,
    out: Path,
    segmentation_type: str,
    organization: str,
) -> None:
    source = slide.levels[0]
    result = sd.write_segmentation(
        out,
        source,
        segmentation_type=segmentation_type,
        segments=3,
        organization=organization,
        seed=2,
        name=f"seg_{segmentation_type}_{organization}",
    )
    assert len(result.files) == 1
    assert result.segment_numbers == [1, 2, 3]
    ds = pydicom.dcmread(result.files[0])
    _check_references(ds, source)
    assert ds.SeriesInstanceUID == result.series_instance_uid
    assert ds.SOPInstanceUID == result.sop_instance_uids[0]
    assert ds.Modality == "SEG"
    assert ds.SegmentationType == segmentation_type
    assert ds.DimensionOrganizationType == organization
    assert (ds.Rows, ds.Columns) == (source.tile_rows, source.tile_cols)
    assert "PyramidUID" not in ds

    numbers = [int(it.SegmentNumber) for it in ds.SegmentSequence]
    labels = [str(it.SegmentLabel) for it in ds.SegmentSequence]
    if segmentation_type == "LABELMAP":
        assert ds.SOPClassUID == LABELMAP_SEG_STORAGE
        assert numbers == [0, 1, 2, 3]  # highdicom adds a background item
        assert labels[0] == "Background"
        assert labels[1:] == result.segment_labels
        assert ds.BitsAllocated == 8
        channels = 1
    else:
        assert ds.SOPClassUID == SEG_STORAGE
        assert numbers == [1, 2, 3]
        assert labels == result.segment_labels
        assert ds.BitsAllocated == (1 if segmentation_type == "BINARY" else 8)
        channels = 3

    grid_r, grid_c = _grid(ds)
    full = grid_r * grid_c * channels
    assert ds.NumberOfFrames == result.expected_number_of_frames[0]
    pointers = [
        int(it.DimensionIndexPointer) for it in ds.get("DimensionIndexSequence", [])
    ]
    if organization == "TILED_SPARSE":
        assert ds.NumberOfFrames < full
        position = [0x0048021F, 0x0048021E]  # row, then column position
        assert pointers == (position if channels == 1 else [0x0062000B, *position])
    else:
        assert ds.NumberOfFrames == full
        assert "PerFrameFunctionalGroupsSequence" not in ds
        assert "DimensionIndexSequence" not in ds
    assert ds.LossyImageCompression == "01"  # propagated from the JPEG source

    seg = hd.seg.segread(result.files[0])
    masks, label_image = result.masks[0], result.labels[0]
    assert masks.shape == (3, source.total_rows, source.total_cols)
    if segmentation_type == "FRACTIONAL":
        assert ds.MaximumFractionalValue == sd.MAX_FRACTIONAL_VALUE
        assert ds.SegmentationFractionalType == "PROBABILITY"
        raw = seg.get_total_pixel_matrix(rescale_fractional=False)
        assert np.array_equal(np.moveaxis(raw, -1, 0), masks)
        scaled = seg.get_total_pixel_matrix()
        np.testing.assert_allclose(
            np.moveaxis(scaled, -1, 0), masks / 255.0, rtol=0, atol=1e-7
        )
        assert np.array_equal(
            label_image, ((masks > 0) * np.array([1, 2, 3])[:, None, None]).sum(axis=0)
        )
    else:
        assert set(np.unique(masks)) == {0, 1}
        stacked = seg.get_total_pixel_matrix()
        assert np.array_equal(np.moveaxis(stacked, -1, 0), masks)
        combined = seg.get_total_pixel_matrix(combine_segments=True)
        assert np.array_equal(combined, label_image)

    # Independent read with pydicom only.
    if segmentation_type == "LABELMAP":
        assert np.array_equal(_assemble(ds, 1, np.uint8)[0], label_image)
    else:
        assert np.array_equal(_assemble(ds, 3, np.uint8), masks)


def test_segmentation_keep_empty_frames(
    slide: synthetic.SyntheticSlide, out: Path
) -> None:
    result = sd.write_segmentation(
        out, slide.levels[0], omit_empty_frames=False, name="seg_keep_empty"
    )
    ds = pydicom.dcmread(result.files[0], stop_before_pixels=True)
    assert ds.DimensionOrganizationType == "TILED_SPARSE"
    grid_r, grid_c = _grid(ds)
    assert ds.NumberOfFrames == grid_r * grid_c * 2


def test_segmentation_tile_size(slide: synthetic.SyntheticSlide, out: Path) -> None:
    result = sd.write_segmentation(
        out,
        slide.levels[0],
        tile_size=(50, 60),
        segmentation_type="LABELMAP",
        segments=2,
        name="seg_tile_size",
    )
    ds = pydicom.dcmread(result.files[0], stop_before_pixels=True)
    assert (ds.Rows, ds.Columns) == (50, 60) == result.tile_sizes[0]
    assert ds.NumberOfFrames == result.expected_number_of_frames[0] < 6 * 8
    seg = hd.seg.segread(result.files[0])
    assert np.array_equal(
        seg.get_total_pixel_matrix(combine_segments=True), result.labels[0]
    )


@pytest.mark.parametrize("segmentation_type", ["BINARY", "FRACTIONAL", "LABELMAP"])
def test_segmentation_pyramid(
    slide: synthetic.SyntheticSlide, out: Path, segmentation_type: str
) -> None:
    result = sd.write_segmentation(
        out,
        slide.levels,
        segmentation_type=segmentation_type,
        segments=2,
        pyramid=True,
        name=f"seg_pyr_{segmentation_type}",
    )
    assert len(result.files) == len(slide.levels) == 3
    datasets = [pydicom.dcmread(f) for f in result.files]
    pyramid_uids = {ds.PyramidUID for ds in datasets}
    assert pyramid_uids == {result.pyramid_uid}
    assert result.pyramid_uid != slide.uids.pyramid_uid
    assert {ds.SeriesInstanceUID for ds in datasets} == {result.series_instance_uid}
    assert len({ds.SOPInstanceUID for ds in datasets}) == 3
    assert [int(ds.InstanceNumber) for ds in datasets] == [1, 2, 3]
    base_masks = result.masks[0]
    channels = 1 if segmentation_type == "LABELMAP" else 2
    for k, (ds, level) in enumerate(zip(datasets, slide.levels)):
        _check_references(ds, level)
        assert (ds.Rows, ds.Columns) == (level.tile_rows, level.tile_cols)
        grid_r, grid_c = _grid(ds)
        assert ds.NumberOfFrames == result.expected_number_of_frames[k]
        assert ds.NumberOfFrames < grid_r * grid_c * channels
        # Levels are nearest-neighbour subsamples of level 0.
        factor = slide.downsamples[k]
        assert np.array_equal(result.masks[k], base_masks[:, ::factor, ::factor])
        rows, cols = sd.level_indices(level, slide.levels[0])
        assert np.array_equal(result.labels[k], result.labels[0][rows][:, cols])
        # Some segment lies in the partial last tile row / column.
        assert result.labels[k][
            (grid_r - 1) * ds.Rows :, (grid_c - 1) * ds.Columns :
        ].any()
        seg = hd.seg.segread(result.files[k])
        if segmentation_type == "LABELMAP":
            total = seg.get_total_pixel_matrix(combine_segments=True)
            assert np.array_equal(total, result.labels[k])
        else:
            total = seg.get_total_pixel_matrix(rescale_fractional=False)
            assert np.array_equal(np.moveaxis(total, -1, 0), result.masks[k])


def test_segmentation_concatenated_sparse_source(tmp_path: Path) -> None:
    source = synthetic.write_wsi_image(
        tmp_path,
        total_rows=130,
        total_cols=170,
        tile_rows=32,
        tile_cols=48,
        organization="TILED_SPARSE",
        omitted_tiles=[(0, 0)],
        concatenation_parts=2,
        name="concat",
    )
    result = sd.write_segmentation(tmp_path, source, segments=2)
    ds = pydicom.dcmread(result.files[0])
    _check_references(ds, source)  # all concatenation parts are referenced
    seg = hd.seg.segread(result.files[0])
    total = seg.get_total_pixel_matrix()
    assert np.array_equal(np.moveaxis(total, -1, 0), result.masks[0])


def test_segmentation_pyramid_with_concatenated_level(tmp_path: Path) -> None:
    uids = synthetic.SlideUIDs.new(key="derived-concat")
    common: dict[str, Any] = {
        "organization": "TILED_FULL",
        "uids": uids,
        "origin": (20.0, 40.0),
    }
    levels = [
        synthetic.write_wsi_image(
            tmp_path,
            total_rows=140,
            total_cols=200,
            tile_rows=32,
            tile_cols=48,
            pixel_spacing=(0.0005, 0.0005),
            concatenation_parts=2,
            name="l0",
            instance_number=1,
            **common,
        ),
        synthetic.write_wsi_image(
            tmp_path,
            total_rows=70,
            total_cols=100,
            tile_rows=32,
            tile_cols=32,
            pixel_spacing=(0.001, 0.001),
            name="l1",
            instance_number=2,
            derived=True,
            **common,
        ),
    ]
    result = sd.write_segmentation(
        tmp_path, levels, segmentation_type="LABELMAP", pyramid=True, segments=3
    )
    datasets = [pydicom.dcmread(f) for f in result.files]
    assert {ds.PyramidUID for ds in datasets} == {result.pyramid_uid}
    assert len({ds.PyramidLabel for ds in datasets}) == 1
    for k, (ds, level) in enumerate(zip(datasets, levels)):
        _check_references(ds, level)  # each level: its own parts only
        assert ds.InstanceNumber == k + 1
        seg = hd.seg.segread(result.files[k])
        total = seg.get_total_pixel_matrix(combine_segments=True)
        assert np.array_equal(total, result.labels[k])
    assert np.array_equal(result.labels[1], result.labels[0][::2, ::2])


def test_files_are_reproducible(
    slide: synthetic.SyntheticSlide, tmp_path: Path
) -> None:
    a = sd.write_segmentation(tmp_path / "a", slide.levels[1], seed=5)
    b = sd.write_segmentation(tmp_path / "b", slide.levels[1], seed=5)
    assert a.files[0].read_bytes() == b.files[0].read_bytes()
    c = sd.write_parametric_map(tmp_path / "a", slide.levels[1], dtype="uint16")
    d = sd.write_parametric_map(tmp_path / "b", slide.levels[1], dtype="uint16")
    assert c.files[0].read_bytes() == d.files[0].read_bytes()


def test_segmentation_rejects_bad_arguments(
    slide: synthetic.SyntheticSlide, out: Path
) -> None:
    with pytest.raises(ValueError, match="segmentation_type"):
        sd.write_segmentation(out, slide.levels[0], segmentation_type="BOGUS")
    with pytest.raises(ValueError, match="organization"):
        sd.write_segmentation(out, slide.levels[0], organization="FULL")
    with pytest.raises(ValueError, match="pyramid"):
        sd.write_segmentation(out, slide.levels)
    with pytest.raises(ValueError, match="segments"):
        sd.write_segmentation(out, slide.levels[0], segments=0)


# --------------------------------------------------------------------------
# Parametric maps
# --------------------------------------------------------------------------


@pytest.mark.parametrize("organization", ["TILED_FULL", "TILED_SPARSE"])
@pytest.mark.parametrize("dtype", ["float32", "uint16"])
def test_parametric_map(
    slide: synthetic.SyntheticSlide, out: Path, dtype: str, organization: str
) -> None:
    source = slide.levels[0]
    result = sd.write_parametric_map(
        out,
        source,
        dtype=dtype,
        organization=organization,
        name=f"pm_{dtype}_{organization}",
    )
    ds = pydicom.dcmread(result.files[0])
    _check_references(ds, source)
    assert ds.SOPClassUID == PM_STORAGE
    assert ds.SOPInstanceUID == result.sop_instance_uids[0]
    assert ds.DimensionOrganizationType == organization
    grid_r, grid_c = _grid(ds)
    assert ds.NumberOfFrames == grid_r * grid_c  # never omitted
    assert result.stored.dtype == np.dtype(dtype)
    assert result.values.dtype == np.float64
    assert result.values.shape == (source.total_rows, source.total_cols)
    assert len(np.unique(result.values)) > 1000

    shared = ds.SharedFunctionalGroupsSequence[0]
    mapping = shared.RealWorldValueMappingSequence[0]
    assert mapping.LUTLabel == result.lut_label
    assert float(mapping.RealWorldValueSlope) == result.slope
    assert float(mapping.RealWorldValueIntercept) == result.intercept
    if "PerFrameFunctionalGroupsSequence" in ds:
        assert (
            "RealWorldValueMappingSequence"
            not in ds.PerFrameFunctionalGroupsSequence[0]
        )

    if dtype == "float32":
        assert "FloatPixelData" in ds and "PixelData" not in ds
        assert ds.BitsAllocated == 32
        assert (result.slope, result.intercept) == (1.0, 0.0)
        assert np.array_equal(result.values, result.stored)
    else:
        assert "PixelData" in ds and "FloatPixelData" not in ds
        assert (ds.BitsAllocated, ds.BitsStored, ds.PixelRepresentation) == (16, 16, 0)
        assert result.stored.max() > 32767  # catches signed misreads
        assert np.array_equal(
            result.values,
            result.stored.astype(np.float64) * sd.PM_UINT16_SLOPE
            + sd.PM_UINT16_INTERCEPT,
        )

    # pydicom: pixel_array holds the stored values (Float Pixel Data or not).
    assembled = _assemble(ds, 1, result.stored.dtype)[0]
    assert np.array_equal(assembled, result.stored)
    # highdicom: real world values and stored values.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image = hd.imread(result.files[0])
        values = image.get_total_pixel_matrix()
        stored = image.get_total_pixel_matrix(
            apply_real_world_transform=False, dtype=result.stored.dtype
        )
    assert np.array_equal(values, result.values)
    assert np.array_equal(stored, result.stored)


def test_parametric_map_tile_size(slide: synthetic.SyntheticSlide, out: Path) -> None:
    source = slide.levels[1]
    result = sd.write_parametric_map(
        out, source, dtype="uint16", tile_size=(40, 40), seed=9, name="pm_tile_size"
    )
    ds = pydicom.dcmread(result.files[0], stop_before_pixels=True)
    assert (ds.Rows, ds.Columns) == (40, 40) == result.tile_size
    assert ds.NumberOfFrames == 4 * 6
    values = hd.imread(result.files[0]).get_total_pixel_matrix()
    assert np.array_equal(values, result.values)
