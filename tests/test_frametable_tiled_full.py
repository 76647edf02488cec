"""The frame table of TILED_FULL images, against the standard's formula.

Frame k (counted from the start of the whole image, i.e. after the
Concatenation Frame Offset Number) lies at tile (k mod columns, k div columns
mod rows) of focal plane (k div grid) mod planes, of channel k div (grid x
planes): computed here frame by frame, in Python, and compared with the
table dicomslide lays out for a whole image at once.
"""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from dicomslide.frametable import compute_frame_table


def _image(
    frames: int, offset: int, planes: int, paths: int, spacing_mm: float
) -> Dataset:
    image = Dataset()
    image.SOPClassUID = "1.2.840.10008.5.1.4.1.1.77.1.6"  # VL WSI
    image.SOPInstanceUID = "1.2.3.4"
    image.DimensionOrganizationType = "TILED_FULL"
    image.NumberOfFrames = frames
    image.Rows, image.Columns = 30, 40
    image.SamplesPerPixel, image.BitsAllocated = 1, 8
    image.TotalPixelMatrixRows, image.TotalPixelMatrixColumns = 100, 130  # 4 x 4
    image.TotalPixelMatrixFocalPlanes = planes
    image.ConcatenationUID = "1.2.3.5"  # a part: any frames of the whole image
    image.ConcatenationFrameOffsetNumber = offset
    image.NumberOfOpticalPaths = paths
    image.OpticalPathSequence = []
    for identifier in range(paths):
        path = Dataset()
        path.OpticalPathIdentifier = str(identifier)
        image.OpticalPathSequence.append(path)
    position, measures, shared = Dataset(), Dataset(), Dataset()
    position.ZOffsetInSlideCoordinateSystem = 2.5
    measures.SpacingBetweenSlices = spacing_mm
    shared.PlanePositionSlideSequence = [position]
    shared.PixelMeasuresSequence = [measures]
    image.SharedFunctionalGroupsSequence = [shared]
    return image


@pytest.mark.parametrize(
    ("frames", "offset", "planes", "paths"),
    [
        (16, 0, 1, 1),
        (10, 0, 1, 1),
        (7, 5, 1, 1),
        (48, 0, 3, 1),
        (29, 11, 3, 1),
        (40, 20, 2, 2),
        (30, 17, 1, 3),
    ],
)
def test_tiled_full_table_follows_the_formula(frames, offset, planes, paths):
    table = compute_frame_table(_image(frames, offset, planes, paths, 0.002))
    grid_rows, grid_columns = 4, 4
    for k in range(frames):
        index = offset + k
        column, row = index % grid_columns, index // grid_columns % grid_rows
        plane = index // (grid_rows * grid_columns) % planes
        channel = index // (grid_rows * grid_columns * planes)
        assert tuple(table.positions[k]) == (row * 30, column * 40), k
        assert table.channel_indices[k] == channel, k
        expected_z = 2.5 + plane * 2.0 if planes > 1 else 2.5
        assert table.z_offsets[k] == pytest.approx(expected_z), k
    assert len(table.positions) == len(table.channel_indices) == frames
