"""Frame positions and (dis)assembly of total pixel matrices."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import synthetic

import dicomslide


@pytest.mark.parametrize("organization", ["TILED_FULL", "TILED_SPARSE", None])
def test_compute_frame_positions(tmp_path, organization):
    image = synthetic.write_wsi_image(
        tmp_path,
        total_rows=150,
        total_cols=230,
        tile_rows=64,
        tile_cols=96,
        samples=1,
        focal_planes=2,
        optical_paths=3,
        organization=organization,
        z_offsets_um=(0.0, 1.5),
        pixel_spacing=(0.0005, 0.00025),
    )
    metadata = pydicom.dcmread(image.files[0], stop_before_pixels=True)
    positions, slide_positions, channels, planes = dicomslide.compute_frame_positions(
        metadata
    )
    assert len(positions) == image.number_of_frames == 3 * 3 * 2 * 3
    for i, frame in enumerate(image.frames):
        assert tuple(positions[i]) == (frame.tile_row * 64, frame.tile_col * 96)
        assert channels[i] == frame.optical_path
        assert planes[i] == frame.focal_plane
        x, y, z = image.frame_position(frame)
        assert slide_positions[i] == pytest.approx((x, y, z / 1000.0))


def test_assemble_and_disassemble_round_trip():
    rng = np.random.default_rng(0)
    matrix = rng.integers(0, 255, (150, 230, 3), dtype=np.uint8)
    positions = [(r, c) for r in range(0, 150, 64) for c in range(0, 230, 96)]
    tiles = dicomslide.disassemble_total_pixel_matrix(matrix, positions, 64, 96)
    assert tiles.shape == (9, 64, 96, 3)
    # the parts of edge tiles outside the matrix are 0
    assert (tiles[-1, 150 - 128 :] == 0).all()
    np.testing.assert_array_equal(tiles[4], matrix[64:128, 96:192])
    again = dicomslide.assemble_total_pixel_matrix(list(tiles), positions, 150, 230)
    np.testing.assert_array_equal(again, matrix)


def test_assemble_accepts_two_dimensional_tiles():
    tiles = [np.full((2, 2), v, dtype=np.uint16) for v in (1, 2)]
    matrix = dicomslide.assemble_total_pixel_matrix(tiles, [(0, 0), (0, 2)], 2, 3)
    assert matrix.shape == (2, 3, 1)
    assert matrix[..., 0].tolist() == [[1, 1, 2], [1, 1, 2]]
