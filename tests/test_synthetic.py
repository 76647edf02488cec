"""Tests of the synthetic WSI generator itself (independent of dicomslide)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image, ImageCms
from pydicom.encaps import generate_frames

from dicomslide.testing.synthetic import (
    PRESETS,
    SlideUIDs,
    SyntheticImage,
    encodable_transfer_syntaxes,
    icc_profile,
    is_lossy,
    read_frames,
    write_slide,
    write_wsi_image,
)

ROWS, COLS, TR, TC = 300, 470, 64, 96
EXPLICIT = "1.2.840.10008.1.2.1"
JPEG = "1.2.840.10008.1.2.4.50"
JXL_JPEG = "1.2.840.10008.1.2.4.111"
PYDICOM_CANNOT_DECODE = {
    "1.2.840.10008.1.2.1.98",
    "1.2.840.10008.1.2.4.110",
    "1.2.840.10008.1.2.4.111",
    "1.2.840.10008.1.2.4.112",
}
REPO = Path(__file__).resolve().parent.parent


def _frames_independently(path: Path) -> list[np.ndarray]:
    """Decode with pydicom where it can, else with the module's helper."""
    ds = pydicom.dcmread(path)
    if str(ds.file_meta.TransferSyntaxUID) in PYDICOM_CANNOT_DECODE:
        return read_frames(path)
    spp = int(ds.SamplesPerPixel)
    arr = ds.pixel_array
    if int(ds.NumberOfFrames) == 1:
        arr = arr[None]
    return [f.reshape(int(ds.Rows), int(ds.Columns), spp) for f in arr]


def _expected_frame(
    image: SyntheticImage, tile_row: int, tile_col: int, plane: int, path: int
) -> np.ndarray:
    frame = np.empty(
        (image.tile_rows, image.tile_cols, image.samples), dtype=image.pixels.dtype
    )
    frame[...] = np.asarray(image.pad_value, dtype=frame.dtype)
    tile = image.tile(tile_row, tile_col, plane, path, decoded=False)
    frame[: tile.shape[0], : tile.shape[1]] = tile
    return frame


def _variants() -> list[tuple[str, int, int]]:
    out = []
    for ts in encodable_transfer_syntaxes():
        out.append((ts, 3, 8))
        out.append((ts, 1, 8))
        if ts not in (JPEG, JXL_JPEG):
            out.append((ts, 1, 16))
    return out


def test_encodable_list_contains_required_syntaxes() -> None:
    listed = set(encodable_transfer_syntaxes())
    for ts in (
        "1.2.840.10008.1.2",
        EXPLICIT,
        "1.2.840.10008.1.2.1.99",
        JPEG,
        "1.2.840.10008.1.2.4.80",
        "1.2.840.10008.1.2.4.81",
        "1.2.840.10008.1.2.4.90",
        "1.2.840.10008.1.2.4.91",
        "1.2.840.10008.1.2.5",
        "1.2.840.10008.1.2.4.110",
        "1.2.840.10008.1.2.4.112",
    ):
        assert ts in listed
    assert "1.2.840.10008.1.2.4.201" not in listed  # HTJ2K: not encodable
    assert "1.2.840.10008.1.2.4.70" not in listed  # JPEG lossless: not encodable


@pytest.mark.parametrize(("ts", "samples", "bits"), _variants(), ids=lambda v: str(v))
def test_roundtrip_every_transfer_syntax(
    tmp_path: Path, ts: str, samples: int, bits: int
) -> None:
    image = write_wsi_image(
        tmp_path,
        total_rows=ROWS,
        total_cols=COLS,
        tile_rows=TR,
        tile_cols=TC,
        samples=samples,
        bits=bits,
        transfer_syntax=ts,
    )
    assert image.lossy == is_lossy(ts)
    assert image.pixels.shape == (1, 1, ROWS, COLS, samples)
    assert image.pixels.dtype == (np.uint8 if bits == 8 else np.uint16)
    ds = pydicom.dcmread(image.files[0])
    assert ds.file_meta.TransferSyntaxUID == ts
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.77.1.6"
    assert ds.PhotometricInterpretation == image.photometric_interpretation
    assert int(ds.NumberOfFrames) == image.grid_rows * image.grid_cols == 25
    assert ds.LossyImageCompression == ("01" if image.lossy else "00")
    frames = _frames_independently(image.files[0])
    assert len(frames) == 25
    scale = ((1 << bits) - 1) / 255
    for info, frame in zip(image.frames, frames):
        expected = _expected_frame(image, info.tile_row, info.tile_col, 0, 0)
        if not image.lossy:
            np.testing.assert_array_equal(frame, expected)
            continue
        h = min(TR, ROWS - info.tile_row * TR)
        w = min(TC, COLS - info.tile_col * TC)
        # Away from the magenta pad (chroma bleeds into the last pixels).
        h = h - 16 if h < TR else h
        w = w - 16 if w < TC else w
        diff = np.abs(
            frame[:h, :w].astype(np.int64) - expected[:h, :w].astype(np.int64)
        )
        assert diff.max() <= 24 * scale, (info, diff.max())
        assert diff.mean() <= 3 * scale
    if image.lossy:
        assert image.decoded is not image.pixels
        np.testing.assert_array_equal(image.decoded, image.redecode())
    else:
        assert image.decoded is image.pixels


def test_tiled_full_frame_order_planes_and_paths(tmp_path: Path) -> None:
    image = write_wsi_image(
        tmp_path,
        total_rows=150,
        total_cols=200,
        tile_rows=64,
        tile_cols=96,
        samples=1,
        focal_planes=3,
        optical_paths=2,
        transfer_syntax=EXPLICIT,
    )
    ds = pydicom.dcmread(image.files[0])
    assert ds.DimensionOrganizationType == "TILED_FULL"
    assert "PerFrameFunctionalGroupsSequence" not in ds
    assert ds.TotalPixelMatrixFocalPlanes == 3
    assert ds.NumberOfOpticalPaths == 2
    measures = ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    assert float(measures.SpacingBetweenSlices) == pytest.approx(0.002)
    assert (
        "OpticalPathIdentificationSequence" not in ds.SharedFunctionalGroupsSequence[0]
    )
    assert [p.OpticalPathIdentifier for p in ds.OpticalPathSequence] == ["1", "2"]
    assert image.z_offsets_um == (0.0, 2.0, 4.0)
    grid_r, grid_c = 3, 3
    frames = _frames_independently(image.files[0])
    assert len(frames) == grid_r * grid_c * 3 * 2
    for index, frame in enumerate(frames):
        tc = index % grid_c
        tr = (index // grid_c) % grid_r
        plane = (index // (grid_c * grid_r)) % 3
        path = index // (grid_c * grid_r * 3)
        info = image.frames[index]
        assert (info.tile_row, info.tile_col, info.focal_plane, info.optical_path) == (
            tr,
            tc,
            plane,
            path,
        )
        np.testing.assert_array_equal(
            frame, _expected_frame(image, tr, tc, plane, path)
        )


def test_content_distinct_per_tile_plane_and_path(tmp_path: Path) -> None:
    images = [
        write_wsi_image(
            tmp_path / "mono",
            total_rows=ROWS,
            total_cols=COLS,
            tile_rows=TR,
            tile_cols=TC,
            samples=1,
            focal_planes=2,
            optical_paths=2,
            transfer_syntax=EXPLICIT,
        ),
        write_wsi_image(
            tmp_path / "jpeg",
            total_rows=ROWS,
            total_cols=COLS,
            tile_rows=TR,
            tile_cols=TC,
            transfer_syntax=JPEG,
        ),
        write_wsi_image(
            tmp_path / "jpeg-mono",
            total_rows=ROWS,
            total_cols=COLS,
            tile_rows=TR,
            tile_cols=TC,
            samples=1,
            focal_planes=3,
            optical_paths=2,
            transfer_syntax=JPEG,
        ),
    ]
    for image in images:
        tiles = {}
        for p in range(image.focal_planes):
            for o in range(image.optical_paths):
                for tr in range(image.grid_rows):
                    for tc in range(image.grid_cols):
                        tile = image.tile(tr, tc, p, o, decoded=False)
                        assert tile.min() != tile.max(), "constant tile"
                        tiles[(p, o, tr, tc)] = tile[:44, :86].astype(np.int64)
        keys = list(tiles)
        for i, a in enumerate(keys):
            for b in keys[i + 1 :]:
                diff = np.abs(tiles[a] - tiles[b]).mean()
                assert diff > 6, (a, b, diff)


def test_sparse_omits_tiles_and_shuffles(tmp_path: Path) -> None:
    omitted = {(0, 0), (2, 3), (4, 4)}
    image = write_wsi_image(
        tmp_path,
        total_rows=ROWS,
        total_cols=COLS,
        tile_rows=TR,
        tile_cols=TC,
        samples=1,
        focal_planes=2,
        optical_paths=2,
        organization="TILED_SPARSE",
        omitted_tiles=omitted,
        transfer_syntax=EXPLICIT,
        z_offsets_um=[-1.5, 1.0],
    )
    ds = pydicom.dcmread(image.files[0])
    assert ds.DimensionOrganizationType == "TILED_SPARSE"
    n_present = 25 - len(omitted)
    assert int(ds.NumberOfFrames) == n_present * 4
    assert not image.present[0, 0] and image.present.sum() == n_present
    for tr, tc in omitted:
        assert (
            image.pixels[:, :, tr * TR : (tr + 1) * TR, tc * TC : (tc + 1) * TC] == 0
        ).all()
    seen = set()
    frames = _frames_independently(image.files[0])
    ids = {"1": 0, "2": 1}
    z_index = {-1.5: 0, 1.0: 1}
    for item, frame, info in zip(
        ds.PerFrameFunctionalGroupsSequence, frames, image.frames
    ):
        pos = item.PlanePositionSlideSequence[0]
        col = int(pos.ColumnPositionInTotalImagePixelMatrix)
        row = int(pos.RowPositionInTotalImagePixelMatrix)
        assert (col - 1) % TC == 0 and (row - 1) % TR == 0
        tr, tc = (row - 1) // TR, (col - 1) // TC
        assert (tr, tc) not in omitted
        path = ids[item.OpticalPathIdentificationSequence[0].OpticalPathIdentifier]
        plane = z_index[float(pos.ZOffsetInSlideCoordinateSystem)]
        assert (info.tile_row, info.tile_col, info.focal_plane, info.optical_path) == (
            tr,
            tc,
            plane,
            path,
        )
        x, y, z = image.frame_position(info)
        assert float(pos.XOffsetInSlideCoordinateSystem) == pytest.approx(x)
        assert float(pos.YOffsetInSlideCoordinateSystem) == pytest.approx(y)
        # Default orientation [0,-1,0,-1,0,0]: rows run along -X, cols along -Y.
        assert x == pytest.approx(20.0 - (row - 1) * 0.0005)
        assert y == pytest.approx(40.0 - (col - 1) * 0.0005)
        np.testing.assert_array_equal(
            frame, _expected_frame(image, tr, tc, plane, path)
        )
        seen.add((tr, tc, plane, path))
    assert len(seen) == n_present * 4
    stored = [
        (f.optical_path, f.focal_plane, f.tile_row, f.tile_col) for f in image.frames
    ]
    assert stored != sorted(stored), "TILED_SPARSE frames should be shuffled"


def test_no_organization(tmp_path: Path) -> None:
    image = write_wsi_image(
        tmp_path,
        total_rows=ROWS,
        total_cols=COLS,
        tile_rows=TR,
        tile_cols=TC,
        organization=None,
        omitted_tiles=[(1, 1)],
    )
    ds = pydicom.dcmread(image.files[0])
    assert "DimensionOrganizationType" not in ds
    assert len(ds.PerFrameFunctionalGroupsSequence) == 24
    assert "OpticalPathIdentificationSequence" in ds.PerFrameFunctionalGroupsSequence[0]


def test_tiled_full_rejects_omitted_tiles(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_wsi_image(
            tmp_path,
            total_rows=ROWS,
            total_cols=COLS,
            tile_rows=TR,
            tile_cols=TC,
            omitted_tiles=[(0, 0)],
        )


@pytest.mark.parametrize("organization", ["TILED_FULL", "TILED_SPARSE"])
def test_concatenation(tmp_path: Path, organization: str) -> None:
    image = write_wsi_image(
        tmp_path,
        total_rows=ROWS,
        total_cols=COLS,
        tile_rows=TR,
        tile_cols=TC,
        concatenation_parts=3,
        organization=organization,
        transfer_syntax="1.2.840.10008.1.2.4.90",
    )
    assert len(image.files) == 3
    parts = [pydicom.dcmread(f) for f in image.files]
    assert len({p.SOPInstanceUID for p in parts}) == 3
    assert len({p.ConcatenationUID for p in parts}) == 1
    assert len({p.SOPInstanceUIDOfConcatenationSource for p in parts}) == 1
    assert [int(p.InConcatenationNumber) for p in parts] == [1, 2, 3]
    assert all(int(p.InConcatenationTotalNumber) == 3 for p in parts)
    offset = 0
    for ds in parts:
        assert int(ds.ConcatenationFrameOffsetNumber) == offset
        assert (ds.TotalPixelMatrixRows, ds.TotalPixelMatrixColumns) == (ROWS, COLS)
        offset += int(ds.NumberOfFrames)
        if organization == "TILED_SPARSE":
            assert len(ds.PerFrameFunctionalGroupsSequence) == int(ds.NumberOfFrames)
    assert offset == 25 == len(image.frames)
    per_file = [_frames_independently(f) for f in image.files]
    for info in image.frames:
        np.testing.assert_array_equal(
            per_file[info.part][info.frame_number - 1],
            _expected_frame(image, info.tile_row, info.tile_col, 0, 0),
        )


def test_edge_frames_are_padded(tmp_path: Path) -> None:
    image = write_wsi_image(
        tmp_path, total_rows=ROWS, total_cols=COLS, tile_rows=TR, tile_cols=TC
    )
    assert ROWS % TR and COLS % TC
    frames = _frames_independently(image.files[0])
    last = frames[-1]
    assert (last[ROWS % TR :, :] == (255, 0, 255)).all()
    assert (last[:, COLS % TC :] == (255, 0, 255)).all()


@pytest.mark.parametrize("offset_table", ["basic", "extended", "empty"])
def test_offset_tables(tmp_path: Path, offset_table: str) -> None:
    image = write_wsi_image(
        tmp_path,
        total_rows=ROWS,
        total_cols=COLS,
        tile_rows=TR,
        tile_cols=TC,
        transfer_syntax="1.2.840.10008.1.2.5",
        offset_table=offset_table,
    )
    ds = pydicom.dcmread(image.files[0])
    assert ("ExtendedOffsetTable" in ds) == (offset_table == "extended")
    bot_item_length = int.from_bytes(ds.PixelData[4:8], "little")
    assert (bot_item_length == 0) == (offset_table != "basic")
    frames = _frames_independently(image.files[0])
    np.testing.assert_array_equal(frames[7], _expected_frame(image, 1, 2, 0, 0))


@pytest.mark.parametrize(
    ("kwargs", "photometric"),
    [
        ({}, "YBR_FULL_422"),
        ({"jpeg_subsampling": "4:2:2"}, "YBR_FULL_422"),
        ({"jpeg_subsampling": "4:4:4"}, "YBR_FULL"),
        ({"jpeg_rgb": True}, "RGB"),
    ],
)
def test_jpeg_variants(tmp_path: Path, kwargs: dict, photometric: str) -> None:
    image = write_wsi_image(
        tmp_path,
        total_rows=ROWS,
        total_cols=COLS,
        tile_rows=TR,
        tile_cols=TC,
        transfer_syntax=JPEG,
        **kwargs,
    )
    ds = pydicom.dcmread(image.files[0])
    assert ds.PhotometricInterpretation == photometric
    first = next(generate_frames(ds.PixelData, number_of_frames=25))
    assert first[:2] == b"\xff\xd8"
    assert (b"Adobe" in first[:64]) == bool(kwargs.get("jpeg_rgb"))
    diff = np.abs(image.decoded.astype(int) - image.pixels.astype(int))
    assert diff[..., :256, :384, :].mean() < 3


def test_icc_profiles() -> None:
    srgb, wide = icc_profile("srgb"), icc_profile("wide")
    assert srgb != wide
    target = ImageCms.createProfile("sRGB")
    grey = Image.fromarray(np.full((1, 1, 3), 128, dtype=np.uint8))
    values = {}
    for name, data in (("srgb", srgb), ("wide", wide)):
        profile = ImageCms.ImageCmsProfile(io.BytesIO(data))
        out = ImageCms.profileToProfile(grey, profile, target, outputMode="RGB")
        values[name] = np.asarray(out)[0, 0].astype(int)
    assert np.abs(values["srgb"] - 128).max() <= 1
    assert values["wide"].min() >= 128 + 10  # gamma 1.8 -> visibly brighter


@pytest.mark.parametrize("preset", [p for p in PRESETS if p != "demo"])
def test_presets(tmp_path: Path, preset: str) -> None:
    slide = write_slide(tmp_path, preset)
    datasets = [pydicom.dcmread(f) for f in slide.files]
    for attr in (
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "FrameOfReferenceUID",
        "PyramidUID",
        "ContainerIdentifier",
    ):
        assert len({str(getattr(ds, attr)) for ds in datasets}) == 1, attr
    assert len({ds.SOPInstanceUID for ds in datasets}) == len(datasets)
    sizes = [lv.total_rows * lv.total_cols for lv in slide.levels]
    assert sizes == sorted(sizes, reverse=True) and len(sizes) >= 2
    assert slide.downsamples[0] == 1
    for level, factor in zip(slide.levels, slide.downsamples):
        assert level.flavor == "VOLUME"
        assert level.pixel_spacing[0] == pytest.approx(0.0005 * factor)
    for ds in datasets:
        assert ds.ImageType[2] in ("VOLUME", "THUMBNAIL", "LABEL", "OVERVIEW")
        assert ds.Modality == "SM"
        substances = [
            item.ConceptCodeSequence[0].CodeValue
            for item in ds.SpecimenDescriptionSequence[0]
            .SpecimenPreparationSequence[0]
            .SpecimenPreparationStepContentItemSequence
            if item.ConceptNameCodeSequence[0].CodeValue == "424361007"
        ]
        assert substances == ["12710003", "36879007"]  # hematoxylin, eosin
        if ds.SamplesPerPixel == 3:
            assert len(ds.OpticalPathSequence[0].ICCProfile) > 100
    cfg = PRESETS[preset]
    level0 = slide.levels[0]
    assert level0.focal_planes == cfg.focal_planes
    assert level0.optical_paths == cfg.optical_paths
    assert level0.organization == cfg.organization
    if preset == "concatenation":
        assert len(level0.files) == 3
    if preset == "rgb_full":
        assert slide.label is not None and slide.overview is not None
        assert slide.thumbnail is not None
        label = pydicom.dcmread(slide.label.files[0])
        assert label.ImageType[2] == "LABEL" and label.SpecimenLabelInImage == "YES"
        assert "SYNTH-001" in label.LabelText
        assert (slide.label.pixels < 60).mean() > 0.05  # text and barcode ink
    for image in slide.images:
        for path in image.files:
            _frames_independently(path)


def test_deterministic_output(tmp_path: Path) -> None:
    uids = SlideUIDs.new(key="determinism")
    kwargs = dict(
        total_rows=100,
        total_cols=130,
        tile_rows=64,
        tile_cols=64,
        uids=uids,
        transfer_syntax=JPEG,
    )
    a = write_wsi_image(tmp_path / "a", **kwargs)
    b = write_wsi_image(tmp_path / "b", **kwargs)
    assert a.files[0].read_bytes() == b.files[0].read_bytes()


def test_cli_help_and_write(tmp_path: Path) -> None:
    script = [sys.executable, "-m", "dicomslide.testing.synthetic"]
    out = subprocess.run(
        [*script, "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "preset" in out.stdout
    subprocess.run(
        [*script, "mono16", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert (tmp_path / "level0.dcm").exists()


def test_demo_sample_reads() -> None:
    folder = REPO / "data" / "sample"
    if not folder.exists():
        pytest.skip("data/sample not generated")
    files = sorted(folder.glob("*.dcm"))
    assert {f.stem for f in files} >= {"level0", "label", "overview", "thumbnail"}
    assert sum(f.stat().st_size for f in files) < 10_000_000
    ds = pydicom.dcmread(folder / "level0.dcm", stop_before_pixels=True)
    assert ds.ContainerIdentifier == "DEMO-001"
    assert ds.TotalPixelMatrixColumns % 256 and ds.TotalPixelMatrixRows % 256
