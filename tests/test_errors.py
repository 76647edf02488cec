"""Bad input gives a dicomslide.errors exception naming instance and frame."""

from __future__ import annotations

import copy
import multiprocessing
import pickle

import numpy as np
import pydicom
import pytest
from pydicom.encaps import generate_frames

import dicomslide
from dicomslide import codec, errors
from dicomslide.cache import FrameCache
from dicomslide.client import LocalFolderClient
from dicomslide.errors import (
    DicomSlideError,
    FrameDecodeError,
    FrameRetrievalError,
    MetadataError,
    UnsupportedTransferSyntaxError,
)
from dicomslide.files import PIXEL_DATA_OFFSET, read_header
from dicomslide.testing import synthetic

JPEG_BASELINE = "1.2.840.10008.1.2.4.50"


def _write(folder, **kwargs) -> synthetic.SyntheticImage:
    kwargs.setdefault("total_rows", 150)
    kwargs.setdefault("total_cols", 230)
    kwargs.setdefault("tile_rows", 64)
    kwargs.setdefault("tile_cols", 96)
    return synthetic.write_wsi_image(folder, **kwargs)


def _matrix(
    image: synthetic.SyntheticImage, metadata=None
) -> dicomslide.TotalPixelMatrix:
    if metadata is None:
        metadata = pydicom.dcmread(image.files[0], stop_before_pixels=True)
    client = LocalFolderClient(image.files[0].parent)
    tiled = dicomslide.TiledImage(
        client, metadata, correct_color=False, cache=FrameCache(1 << 26)
    )
    return tiled.get_total_pixel_matrix()


def _truncate(path, nbytes: int) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:-nbytes])


@pytest.mark.parametrize("transfer_syntax", ["1.2.840.10008.1.2.1", JPEG_BASELINE])
def test_truncated_file(tmp_path, transfer_syntax):
    image = _write(tmp_path, transfer_syntax=transfer_syntax)
    metadata = pydicom.dcmread(image.files[0], stop_before_pixels=True)
    _truncate(image.files[0], 600)
    matrix = _matrix(image, metadata)
    # frames before the damage still read
    np.testing.assert_array_equal(matrix[0][:10, :10].shape, (10, 10, 3))
    with pytest.raises(FrameRetrievalError) as info:
        matrix[:, :]
    error = info.value
    assert error.sop_instance_uid == image.sop_instance_uids[0]
    assert error.frame_number == image.number_of_frames
    assert image.sop_instance_uids[0] in str(error)
    assert f"frame {image.number_of_frames}" in str(error)
    assert "truncated" in str(error)


@pytest.mark.parametrize(
    "cut",
    [
        0,  # the file ends where Pixel Data would begin
        6,  # inside the Pixel Data element's header
        16,  # inside the header of the offset table item
        24,  # after the offset table item's header
    ],
)
def test_file_cut_at_its_pixel_data_names_the_frame_read(tmp_path, cut):
    # The frame index is built by the first read: its failure names the
    # instance and the frame that read asked for.
    image = _write(tmp_path, transfer_syntax=JPEG_BASELINE)
    metadata = pydicom.dcmread(image.files[0], stop_before_pixels=True)
    path = image.files[0]
    offset = getattr(read_header(path), PIXEL_DATA_OFFSET)
    path.write_bytes(path.read_bytes()[: offset + cut])
    matrix = _matrix(image, metadata)
    for _ in range(2):  # the index is not kept broken: a second read says the same
        with pytest.raises(FrameRetrievalError) as info:
            matrix[3]
        assert info.value.sop_instance_uid == image.sop_instance_uids[0]
        assert info.value.frame_number == 4
        assert f"{image.sop_instance_uids[0]}, frame 4:" in str(info.value)


def _frame_bytes(path, index: int, number_of_frames: int) -> bytes:
    dataset = pydicom.dcmread(path)
    return list(generate_frames(dataset.PixelData, number_of_frames=number_of_frames))[
        index
    ]


def _overwrite(path, old: bytes, new: bytes) -> None:
    data = path.read_bytes()
    assert data.count(old) == 1 and len(old) == len(new)
    path.write_bytes(data.replace(old, new))


def test_corrupt_jpeg_frame(tmp_path):
    image = _write(tmp_path, transfer_syntax=JPEG_BASELINE)
    frame = _frame_bytes(image.files[0], 4, image.number_of_frames)
    garbage = np.random.default_rng(0).integers(0, 256, len(frame), np.uint8).tobytes()
    _overwrite(image.files[0], frame, garbage)
    matrix = _matrix(image)
    matrix[0]  # another frame is fine
    with pytest.raises(FrameDecodeError) as info:
        matrix[4]
    assert info.value.frame_number == 5
    assert image.sop_instance_uids[0] in str(info.value)


def test_corrupt_frame_among_many_of_one_read(tmp_path):
    # The frames of one read are decoded by several threads; the bad one is
    # reported, the others are decoded and cached, and reading again fails
    # the same way instead of waiting for a frame that never comes.
    image = _write(tmp_path, transfer_syntax=JPEG_BASELINE)
    truth = image.redecode("pillow-direct")[0, 0]
    frame = _frame_bytes(image.files[0], 4, image.number_of_frames)
    garbage = np.random.default_rng(1).integers(0, 256, len(frame), np.uint8).tobytes()
    _overwrite(image.files[0], frame, garbage)
    client = LocalFolderClient(image.files[0].parent)
    metadata = pydicom.dcmread(image.files[0], stop_before_pixels=True)
    tiled = dicomslide.TiledImage(
        client, metadata, correct_color=False, cache=FrameCache(1 << 26)
    )
    matrix = tiled.get_total_pixel_matrix()
    for _ in range(2):
        with pytest.raises(FrameDecodeError) as info:
            matrix[:, :]
        assert info.value.frame_number == 5
    assert tiled.metrics["frames_fetched"] == 9 + 1
    np.testing.assert_array_equal(matrix[:64, :], truth[:64])
    assert tiled.metrics["frames_fetched"] == 10


def test_jpeg_frame_cut_short(tmp_path):
    image = _write(tmp_path, transfer_syntax=JPEG_BASELINE)
    frame = _frame_bytes(image.files[0], 2, image.number_of_frames)
    # the second half of the entropy-coded data is lost, EOI included
    damaged = frame[: len(frame) // 2] + b"\x00" * (len(frame) - len(frame) // 2)
    _overwrite(image.files[0], frame, damaged)
    with pytest.raises(FrameDecodeError) as info:
        _matrix(image)[2]
    assert info.value.frame_number == 3


def test_jpeg_whose_scan_ends_early(tmp_path):
    # Headers intact, the second half of the scan replaced by fill bytes up to
    # EOI: libjpeg only warns ("premature end of data segment") and Pillow
    # returns a partly grey tile. It must be an error instead.
    image = _write(tmp_path, transfer_syntax=JPEG_BASELINE)
    frame = _frame_bytes(image.files[0], 3, image.number_of_frames)
    middle = (frame.index(b"\xff\xda") + len(frame)) // 2
    damaged = frame[:middle] + b"\xff" * (len(frame) - middle - 2) + frame[-2:]
    _overwrite(image.files[0], frame, damaged)
    matrix = _matrix(image)
    matrix[2]  # the neighbouring frame is fine
    with pytest.raises(FrameDecodeError, match="premature end") as info:
        matrix[3]
    assert info.value.frame_number == 4
    assert image.sop_instance_uids[0] in str(info.value)


def test_frame_number_out_of_range(tmp_path):
    image = _write(tmp_path)
    metadata = pydicom.dcmread(image.files[0], stop_before_pixels=True)
    matrix = _matrix(image, metadata)
    source = matrix.image._store.loader._source(0)
    with pytest.raises(FrameRetrievalError) as info:
        source.read_frames([image.number_of_frames + 1])
    assert info.value.frame_number == image.number_of_frames + 1
    assert "out of range" in str(info.value)
    with pytest.raises(IndexError):
        matrix.get_tile_index(frame_number=image.number_of_frames + 1)


def test_metadata_promising_more_frames_than_stored(tmp_path):
    image = _write(tmp_path, organization="TILED_SPARSE", omitted_tiles=[(0, 1)])
    metadata = pydicom.dcmread(image.files[0], stop_before_pixels=True)
    # claim one frame more than the file holds, placed at the omitted tile
    extra = copy.deepcopy(metadata.PerFrameFunctionalGroupsSequence[0])
    extra.PlanePositionSlideSequence[0].ColumnPositionInTotalImagePixelMatrix = 97
    extra.PlanePositionSlideSequence[0].RowPositionInTotalImagePixelMatrix = 1
    metadata.PerFrameFunctionalGroupsSequence.append(extra)
    metadata.NumberOfFrames = image.number_of_frames + 1
    with pytest.raises(FrameRetrievalError) as info:
        _matrix(image, metadata)[0:10, 100:110]
    assert info.value.frame_number == image.number_of_frames + 1


@pytest.mark.parametrize(
    "keyword",
    ["TotalPixelMatrixRows", "Rows", "SamplesPerPixel", "TotalPixelMatrixColumns"],
)
def test_missing_required_attribute(tmp_path, keyword):
    image = _write(tmp_path)
    metadata = pydicom.dcmread(image.files[0], stop_before_pixels=True)
    delattr(metadata, keyword)
    with pytest.raises(MetadataError) as info:
        _matrix(image, metadata)
    assert image.sop_instance_uids[0] in str(info.value)


def test_missing_frame_position(tmp_path):
    image = _write(tmp_path, organization="TILED_SPARSE")
    metadata = pydicom.dcmread(image.files[0], stop_before_pixels=True)
    del metadata.PerFrameFunctionalGroupsSequence[3].PlanePositionSlideSequence
    with pytest.raises(MetadataError) as info:
        _matrix(image, metadata)
    assert "frame 4" in str(info.value)


def test_unsupported_transfer_syntax(tmp_path):
    image = _write(tmp_path, transfer_syntax=JPEG_BASELINE)
    dataset = pydicom.dcmread(image.files[0])
    mpeg4 = "1.2.840.10008.1.2.4.102"
    dataset.file_meta.TransferSyntaxUID = mpeg4
    dataset.save_as(image.files[0], enforce_file_format=True)
    with pytest.raises(UnsupportedTransferSyntaxError) as info:
        _matrix(image)[0]
    message = str(info.value)
    assert mpeg4 in message and "MPEG-4" in message
    assert info.value.frame_number == 1
    assert image.sop_instance_uids[0] in message


def test_missing_decoder_names_the_package(monkeypatch):
    monkeypatch.setattr(codec, "_decoder_available", lambda family: family != "j2k")
    desc = codec.PixelDescription(
        8, 8, 3, 8, 8, 0, "YBR_ICT", 0, "1.2.840.10008.1.2.4.91"
    )
    with pytest.raises(UnsupportedTransferSyntaxError, match="imagecodecs"):
        codec.decode_frame(b"\xff\x4f", desc, "1.2.3", 7)


def test_errors_share_a_base_class():
    for error in (
        MetadataError,
        FrameRetrievalError,
        FrameDecodeError,
        UnsupportedTransferSyntaxError,
    ):
        assert issubclass(error, DicomSlideError)


def test_wrong_frame_size_is_an_error(tmp_path):
    desc = codec.PixelDescription(8, 8, 3, 8, 8, 0, "RGB", 0, "1.2.840.10008.1.2.1")
    with pytest.raises(FrameDecodeError, match="frame 2"):
        codec.decode_frame(b"\x00" * 100, desc, "1.2.3", 2)


def _raise_frame_error(number: int) -> None:
    raise errors.FrameRetrievalError("cannot read file", "1.2.3.4", number)


def test_errors_pickle_as_raised():
    """Every error type crosses a process boundary with its message and
    attributes (a worker's FrameError used to fail to unpickle, which hangs a
    multiprocessing pool)."""
    examples = [
        errors.MetadataError("no Rows", "1.2.3"),
        errors.FrameRetrievalError("truncated", "1.2.3", 7),
        errors.FrameDecodeError("corrupt", "1.2.3", 2),
        errors.UnsupportedTransferSyntaxError("no decoder", "1.2.3"),
        errors.ServerError("HTTP 503", 503),
        errors.MultipleSlidesError("two slides", ["A", "B"]),
        errors.ObjectNotFoundError("s3://bucket/x.dcm"),
        errors.MissingExtraError("needs dicomslide[cloud]"),
    ]
    for error in examples:
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert str(copy) == str(error)
        assert copy.__dict__ == error.__dict__


def test_a_worker_s_frame_error_reaches_the_caller():
    context = multiprocessing.get_context("spawn")
    with (
        context.Pool(1) as pool,
        pytest.raises(errors.FrameRetrievalError) as raised,
    ):
        pool.apply(_raise_frame_error, (5,))
    assert raised.value.frame_number == 5
    assert raised.value.sop_instance_uid == "1.2.3.4"
    assert str(raised.value) == "instance 1.2.3.4, frame 5: cannot read file"
