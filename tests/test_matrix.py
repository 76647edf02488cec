"""TotalPixelMatrix on synthetic slides: placement, indexing, sparse, z, channels."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dicomslide
from dicomslide.cache import FrameCache
from dicomslide.client import LocalFolderClient
from dicomslide.testing import synthetic


def _open(image: synthetic.SyntheticImage, **kwargs) -> dicomslide.TiledImage:
    parts = [pydicom.dcmread(path, stop_before_pixels=True) for path in image.files]
    client = LocalFolderClient(image.files[0].parent)
    kwargs.setdefault("correct_color", False)
    kwargs.setdefault("cache", FrameCache(64 * 1024 * 1024))
    return dicomslide.TiledImage(client, parts, **kwargs)


def _expected(image: synthetic.SyntheticImage) -> np.ndarray:
    """What a decoder built on the same libraries must return, exactly.

    Lossy frames are decoded again by the generator, independently of
    dicomslide, with Pillow for JPEG / JPEG XL (as dicomslide does; pydicom's
    default JPEG plugin rounds the YCbCr conversion differently) and pydicom's
    pylibjpeg-openjpeg for JPEG 2000, then pasted at their positions.
    """
    if not image.lossy:
        return image.pixels
    return image.redecode("pillow-direct")


def _full(matrix: dicomslide.TotalPixelMatrix) -> np.ndarray:
    return matrix[:, :, :]


@pytest.fixture(scope="module")
def native(tmp_path_factory) -> synthetic.SyntheticImage:
    """RGB, explicit VR, partial non-square edge tiles."""
    return synthetic.write_wsi_image(
        tmp_path_factory.mktemp("native"),
        total_rows=300,
        total_cols=470,
        tile_rows=64,
        tile_cols=96,
        seed=1,
    )


@pytest.fixture(scope="module")
def native_matrix(native) -> dicomslide.TotalPixelMatrix:
    return _open(native).get_total_pixel_matrix()


_EIGHT_BIT_ONLY = ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.111")
_PIXEL_FORMATS = [
    (syntax, samples, bits)
    for syntax in synthetic.encodable_transfer_syntaxes()
    for samples, bits in [(3, 8), (1, 8), (1, 16)]
    if not (bits == 16 and syntax in _EIGHT_BIT_ONLY)  # JPEG baseline is 8 bit
]


@pytest.mark.parametrize("transfer_syntax,samples,bits", _PIXEL_FORMATS)
def test_full_level_read_places_every_pixel(tmp_path, transfer_syntax, samples, bits):
    image = synthetic.write_wsi_image(
        tmp_path,
        total_rows=150,
        total_cols=230,
        tile_rows=64,
        tile_cols=96,
        samples=samples,
        bits=bits,
        transfer_syntax=transfer_syntax,
        seed=7,
    )
    matrix = _open(image).get_total_pixel_matrix()
    assert matrix.shape == (150, 230, samples)
    assert matrix.dtype == image.decoded.dtype
    got = _full(matrix)
    np.testing.assert_array_equal(got, _expected(image)[0, 0])
    if image.lossy:
        # and the lossy result is placed where the source is
        source = image.pixels[0, 0].astype(np.int64)
        error = np.abs(got.astype(np.int64) - source).mean()
        shifted = np.abs(got[1:, 1:].astype(np.int64) - source[:-1, :-1]).mean()
        assert error < shifted


@pytest.mark.parametrize(
    "preset", ["sparse", "no_organization", "concatenation", "mono16", "rgb_full"]
)
def test_presets_read_exactly(tmp_path, preset):
    slide = synthetic.write_slide(tmp_path, preset)
    for level in slide.levels:
        image = _open(level)
        for plane in range(level.focal_planes):
            for path in range(level.optical_paths):
                got = _full(image.get_total_pixel_matrix(path, plane))
                np.testing.assert_array_equal(got, _expected(level)[plane, path])


@pytest.mark.parametrize("preset", ["multi_z_channel_full", "multi_z_channel_sparse"])
def test_focal_planes_and_channels_are_selected(tmp_path, preset):
    slide = synthetic.write_slide(tmp_path, preset)
    level = slide.levels[0]
    image = _open(level)
    assert image.num_focal_planes == 3
    assert image.num_channels == 2
    assert [image.get_focal_plane_offset(i) for i in range(3)] == pytest.approx(
        level.z_offsets_um
    )
    assert [image.get_channel_identifier(i) for i in range(2)] == list(
        level.optical_path_identifiers
    )
    reads = {}
    for plane in range(3):
        for path in range(2):
            got = _full(image.get_total_pixel_matrix(path, plane))
            np.testing.assert_array_equal(got, level.decoded[plane, path])
            reads[(plane, path)] = got
    # every plane and path has its own content
    assert len({r.tobytes() for r in reads.values()}) == 6
    offset = level.z_offsets_um[2]
    assert image.get_focal_plane_index(offset) == 2
    assert image.get_channel_index(level.optical_path_identifiers[1]) == 1
    with pytest.raises(ValueError):
        image.get_total_pixel_matrix(2, 0)
    with pytest.raises(ValueError):
        image.get_focal_plane_index(12345.0)


def test_sparse_holes_read_as_fill(tmp_path):
    slide = synthetic.write_slide(tmp_path, "sparse")
    level = slide.levels[0]
    assert not level.present.all()
    matrix = _open(level).get_total_pixel_matrix()
    for tile_row, tile_col in zip(*np.nonzero(~level.present), strict=True):
        index = matrix.get_tile_index((int(tile_row), int(tile_col)))
        tile = matrix[index]
        assert tile.shape == matrix.tile_shape
        assert (tile == 255).all()  # white glass for brightfield RGB
    # a region across a hole and present tiles
    got = matrix[0:100, 50:200]
    np.testing.assert_array_equal(got, level.decoded[0, 0, 0:100, 50:200])


def test_edge_tiles_are_cropped_and_padded_with_fill(native, native_matrix):
    matrix = native_matrix
    grid_rows, grid_cols = matrix.tile_grid_shape
    assert (grid_rows, grid_cols) == (5, 5)
    last = matrix[matrix.num_tiles - 1]
    height = 300 - 4 * 64
    width = 470 - 4 * 96
    np.testing.assert_array_equal(
        last[:height, :width], native.pixels[0, 0, 4 * 64 :, 4 * 96 :]
    )
    assert (last[height:] == 255).all() and (last[:, width:] == 255).all()
    # The stored padding (magenta) never leaks into a read
    assert matrix.get_tile_bounding_box(matrix.num_tiles - 1) == (
        (256, 384),
        (height, width),
    )
    region = matrix.read_region((290, 460), (20, 20))
    np.testing.assert_array_equal(region[:10, :10], native.pixels[0, 0, 290:, 460:])
    assert (region[10:] == 255).all() and (region[:, 10:] == 255).all()


def test_tile_indexing_with_int_list_and_slice(native, native_matrix):
    matrix = native_matrix
    truth = native.pixels[0, 0]
    assert len(matrix) == matrix.num_tiles == 25
    tile = matrix[6]
    assert matrix.get_tile_grid_position(6) == (1, 1)
    assert matrix.get_tile_position(6) == (64, 96)
    np.testing.assert_array_equal(tile, truth[64:128, 96:192])
    tiles = matrix[[0, 6, 7]]
    assert tiles.shape == (3, 64, 96, 3)
    np.testing.assert_array_equal(tiles[2], truth[64:128, 192:288])
    np.testing.assert_array_equal(matrix[5:8], matrix[[5, 6, 7]])
    np.testing.assert_array_equal(matrix[-25], matrix[0])
    assert matrix.get_tile_index(frame_number=7) == 6
    with pytest.raises(IndexError):
        matrix[25]
    positions = matrix.tile_positions
    assert positions.shape == (25, 2)
    assert tuple(positions[6]) == (64, 96)


def test_numpy_semantics_basic(native, native_matrix):
    matrix = native_matrix
    truth = native.pixels[0, 0]
    for key in [
        (slice(None), slice(None)),
        (5, slice(10, 300)),
        (slice(-20, None), -1),
        (slice(None, None, -7), slice(3, 400, 13), 0),
        (Ellipsis, 1),
        (slice(250, 10, -3), Ellipsis),
        ([3, 1, 299], slice(0, 5)),
        (slice(0, 0), slice(None)),
        (slice(280, 400), slice(460, 600)),
    ]:
        got = matrix[key]
        expected = truth[key]
        assert got.shape == expected.shape, key
        np.testing.assert_array_equal(got, expected, err_msg=str(key))
    with pytest.raises(IndexError):
        matrix[300, 0]
    with pytest.raises(IndexError):
        matrix[0, -471]
    with pytest.raises(IndexError):
        matrix[0, 0, 0, 0]


def _axis_index(length: int):
    integers = st.integers(-length, length - 1)
    bounds = st.none() | st.integers(-length - 5, length + 5)
    steps = st.none() | st.integers(-9, 9).filter(lambda s: s != 0)
    return integers | st.builds(slice, bounds, bounds, steps)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    row=_axis_index(300),
    column=_axis_index(470),
    sample=st.none() | _axis_index(3),
)
def test_numpy_shape_equivalence(native, native_matrix, row, column, sample):
    key = (row, column) if sample is None else (row, column, sample)
    expected = native.pixels[0, 0][key]
    got = native_matrix[key]
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def test_sampler_walks_the_grid_with_padding(native, native_matrix):
    truth = native.pixels[0, 0]
    sampler = dicomslide.TotalPixelMatrixSampler(
        native_matrix, (100, 128), padding=(2, 3)
    )
    assert sampler.padding == (2, 3, 2, 3)
    assert sampler.region_shape == (100, 128, 3)
    assert sampler.padded_region_shape == (106, 132, 3)
    assert len(sampler) == 3 * 4
    assert sampler.get_region_grid_position(5) == (1, 1)
    region = sampler[5]
    assert region.shape == (106, 132, 3)
    np.testing.assert_array_equal(region, truth[97:203, 126:258])
    first = sampler[0]  # padding past the top-left edge reads as fill
    assert (first[:3] == 255).all() and (first[:, :2] == 255).all()
    np.testing.assert_array_equal(first[3:, 2:], truth[:103, :130])
    assert sum(1 for _ in sampler) == len(sampler)


def test_sampler_bounding_box_and_tile_positions(native_matrix):
    sampler = dicomslide.TotalPixelMatrixSampler(
        native_matrix,
        (50, 50),
        bounding_box=((10, 20), (120, 60)),
        padding=(1, 2, 3, 4),
    )
    # the regions of the matrix's grid that hold a pixel of rows [10, 130)
    # and columns [20, 80)
    assert [sampler.get_region_grid_position(i) for i in range(len(sampler))] == [
        (0, 0),
        (0, 1),
        (1, 0),
        (1, 1),
        (2, 0),
        (2, 1),
    ]
    assert sampler.get_region_bounding_box(0) == ((-2, -1), (56, 54))
    assert sampler.get_region_bounding_box(5) == ((98, 49), (56, 54))
    by_tiles = dicomslide.TotalPixelMatrixSampler(
        native_matrix, (64, 96), tile_grid_positions=[(1, 1), (4, 4)]
    )
    assert [by_tiles.get_region_grid_position(i) for i in range(len(by_tiles))] == [
        (1, 1),
        (4, 4),
    ]
    with pytest.raises(ValueError):
        dicomslide.TotalPixelMatrixSampler(native_matrix, (0, 5))


def test_negative_size_is_an_error(native_matrix):
    with pytest.raises(ValueError):
        native_matrix.read_region((0, 0), (-1, 5))


def test_read_region_into_out(native, native_matrix):
    # into a view: the colour bands of an RGBA batch, across the edge tile
    batch = np.zeros((2, 40, 50, 4), np.uint8)
    got = native_matrix.read_region((280, 440), (40, 50), out=batch[1, ..., :3])
    assert np.shares_memory(got, batch)
    np.testing.assert_array_equal(
        batch[1, :20, :30, :3], native.pixels[0, 0, 280:, 440:]
    )
    assert (batch[1, 20:, :, :3] == 255).all() and (batch[1, :, 30:, :3] == 255).all()
    assert (batch[..., 3] == 0).all() and (batch[0] == 0).all()
    # inside the matrix, where frames cover every pixel
    out = np.zeros((64, 100, 3), np.uint8)
    native_matrix.read_region((10, 20), (64, 100), out=out)
    np.testing.assert_array_equal(out, native.pixels[0, 0, 10:74, 20:120])
    with pytest.raises(ValueError, match="shape"):
        native_matrix.read_region((0, 0), (5, 5), out=np.zeros((5, 6, 3), np.uint8))


def test_read_region_into_out_with_colour_correction(tmp_path):
    image = synthetic.write_wsi_image(
        tmp_path,
        total_rows=100,
        total_cols=140,
        tile_rows=64,
        tile_cols=64,
        icc_profile=synthetic.icc_profile("wide"),
        seed=4,
    )
    matrix = _open(image, correct_color=True).get_total_pixel_matrix()
    out = np.zeros((70, 90, 3), np.uint8)
    assert matrix.read_region((20, 30), (70, 90), out=out) is out
    np.testing.assert_array_equal(out, matrix.read_region((20, 30), (70, 90)))
    assert np.abs(out.astype(int) - image.pixels[0, 0, 20:90, 30:120]).mean() > 1


def test_colour_correction_applies_the_icc_profile(tmp_path):
    import io

    from PIL import Image, ImageCms

    profile = synthetic.icc_profile("wide")
    image = synthetic.write_wsi_image(
        tmp_path,
        total_rows=100,
        total_cols=140,
        tile_rows=64,
        tile_cols=64,
        icc_profile=profile,
        seed=3,
    )
    raw = _full(_open(image, correct_color=False).get_total_pixel_matrix())
    corrected = _full(_open(image, correct_color=True).get_total_pixel_matrix())
    np.testing.assert_array_equal(raw, image.pixels[0, 0])
    transform = ImageCms.buildTransform(
        ImageCms.ImageCmsProfile(io.BytesIO(profile)),
        ImageCms.createProfile("sRGB"),
        "RGB",
        "RGB",
        renderingIntent=ImageCms.Intent.PERCEPTUAL,
    )
    expected = np.asarray(ImageCms.applyTransform(Image.fromarray(raw), transform))
    np.testing.assert_array_equal(corrected, expected)
    assert np.abs(corrected.astype(int) - raw.astype(int)).mean() > 1


def test_tile_presence_and_instances(tmp_path):
    slide = synthetic.write_slide(tmp_path, "sparse")
    level = slide.levels[0]
    image = _open(level)
    matrix = image.get_total_pixel_matrix()
    np.testing.assert_array_equal(matrix.tile_presence, level.present)
    assert [
        m.SOPInstanceUID for m in image.instance_metadata
    ] == level.sop_instance_uids
