"""Frame positions and (dis)assembly of total pixel matrices."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

import dicomslide
from dicomslide.testing import synthetic


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


def _slow_table(path):
    from dicomslide.tile import compute_frame_table

    dataset = pydicom.dcmread(path, stop_before_pixels=True)
    _ = dataset.PerFrameFunctionalGroupsSequence  # decoded: the slow path
    return compute_frame_table(dataset)


def _assert_tables_equal(fast, slow) -> None:
    np.testing.assert_array_equal(fast.positions, slow.positions)
    np.testing.assert_array_equal(fast.channel_indices, slow.channel_indices)
    np.testing.assert_allclose(fast.z_offsets, slow.z_offsets)


def _derived_files(tmp_path):
    from dicomslide.testing import synthetic_derived

    source = synthetic.write_slide(tmp_path / "src", "rgb_full")
    seg = synthetic_derived.write_segmentation(
        tmp_path / "seg", source.levels[0], segments=3, organization="TILED_SPARSE"
    )
    return seg.files


@pytest.mark.parametrize(
    "case",
    ["multi_z_channel_sparse", "no_organization", "implicit", "segmentation"],
)
def test_raw_per_frame_fast_path_equals_the_slow_path(tmp_path, case):
    from dicomslide.frametable import _table_from_raw_per_frame

    if case == "segmentation":
        files = _derived_files(tmp_path)
    elif case == "implicit":
        files = synthetic.write_wsi_image(
            tmp_path,
            total_rows=150,
            total_cols=230,
            tile_rows=64,
            tile_cols=96,
            organization="TILED_SPARSE",
            optical_paths=2,
            samples=1,
            transfer_syntax="1.2.840.10008.1.2",
        ).files
    else:
        files = synthetic.write_slide(tmp_path, case).levels[0].files
    for path in files:
        dataset = pydicom.dcmread(path, stop_before_pixels=True)
        fast = _table_from_raw_per_frame(dataset, int(dataset.NumberOfFrames))
        assert fast is not None
        _assert_tables_equal(fast, _slow_table(path))


def test_json_fast_path_equals_the_file(tmp_path, monkeypatch):
    from dicomweb_client import DICOMfileClient

    from dicomslide import discovery
    from dicomslide.tile import FRAME_TABLE_ATTRIBUTE, compute_frame_table

    monkeypatch.setattr(discovery, "LARGE_PER_FRAME_SEQUENCE", 0)
    slide = synthetic.write_slide(tmp_path, "multi_z_channel_sparse")
    path = slide.levels[0].files[0]
    client = DICOMfileClient(url=tmp_path.as_uri(), in_memory=True)
    uids = slide.uids
    metadata = client.retrieve_instance_metadata(
        uids.study_instance_uid,
        uids.series_instance_uid,
        slide.levels[0].sop_instance_uids[0],
    )
    dataset = discovery.load_metadata(client, metadata)
    assert hasattr(dataset, FRAME_TABLE_ATTRIBUTE)
    assert len(dataset.PerFrameFunctionalGroupsSequence) == 1
    _assert_tables_equal(compute_frame_table(dataset), _slow_table(path))
