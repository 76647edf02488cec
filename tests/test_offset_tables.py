"""Opening a file by its offset table: cheap, checked as frames are read.

A file with a Basic or Extended Offset Table is opened without walking its
fragment items (so without reading them); a table that proves wrong when a
frame is read makes the file be scanned once, with one warning, and every
frame still comes out right. The files are JPEG-LS lossless (frames start
with FFD8 and end with FFD9), so the pixels read are compared exactly with
the pixels written.
"""

from __future__ import annotations

import logging
import shutil
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pydicom
import pytest

import dicomslide
from dicomslide.cache import FrameCache
from dicomslide.errors import FrameRetrievalError
from dicomslide.testing import synthetic

TILE = 64
ROWS, COLS = 1024, 1024
GRID = (ROWS // TILE, COLS // TILE)
FRAMES = GRID[0] * GRID[1]
#: A frame in the middle of the file
MIDDLE = FRAMES // 2


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[tuple[str, int], synthetic.SyntheticImage]:
    """One image per (offset table, fragments per frame)."""
    images = {}
    for table, fragments in [("basic", 1), ("basic", 2), ("extended", 1), ("empty", 1)]:
        images[table, fragments] = synthetic.write_wsi_image(
            tmp_path_factory.mktemp(f"{table}{fragments}"),
            total_rows=ROWS,
            total_cols=COLS,
            tile_rows=TILE,
            tile_cols=TILE,
            transfer_syntax=synthetic.JPEG_LS_LOSSLESS,
            offset_table=table,
            fragments_per_frame=fragments,
            uids=synthetic.SlideUIDs.new(f"OT{table[0]}{fragments}"),
        )
    return images


def _copy(image: synthetic.SyntheticImage, folder: Path) -> Path:
    path = folder / "image.dcm"
    shutil.copyfile(image.files[0], path)
    return path


def _matrix(path: Path) -> dicomslide.TotalPixelMatrix:
    metadata = pydicom.dcmread(path, stop_before_pixels=True)
    image = dicomslide.TiledImage(
        path.parent, metadata, correct_color=False, cache=FrameCache(1 << 26)
    )
    return image.get_total_pixel_matrix()


def _expected(image: synthetic.SyntheticImage, frame_number: int) -> np.ndarray:
    row, column = divmod(frame_number - 1, GRID[1])
    return image.pixels[0, 0][
        row * TILE : (row + 1) * TILE, column * TILE : (column + 1) * TILE
    ]


def _read_all(path: Path) -> list[np.ndarray]:
    """Every frame, read by 4 threads at once from one opened image."""
    matrix = _matrix(path)
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(matrix.__getitem__, range(FRAMES)))


def _assert_all_right(image: synthetic.SyntheticImage, path: Path) -> None:
    for number, tile in enumerate(_read_all(path), 1):
        np.testing.assert_array_equal(tile, _expected(image, number))


def _bytes_read() -> int:
    """Bytes this process has read by system calls (``rchar``), as the
    kernel counts them."""
    with open("/proc/self/io") as io:
        return next(int(line.split()[1]) for line in io if line.startswith("rchar"))


def _bot(path: Path) -> tuple[int, np.ndarray]:
    """File offset and entries of the Basic Offset Table."""
    first = synthetic.frame_byte_ranges(path)[0][0]
    data = path.read_bytes()
    offset = first - 4 * FRAMES
    assert struct.unpack_from("<I", data, offset - 4)[0] == 4 * FRAMES
    return offset, np.frombuffer(data, "<u4", FRAMES, offset).copy()


def _set_bot(path: Path, entries: np.ndarray) -> None:
    offset, _ = _bot(path)
    with open(path, "r+b") as fp:
        fp.seek(offset)
        fp.write(entries.astype("<u4").tobytes())


def _table_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "scanning" in r.getMessage()]


@pytest.mark.parametrize(
    ("table", "fragments"), [("basic", 1), ("basic", 2), ("extended", 1)]
)
def test_opening_reads_the_table_not_the_fragments(
    tmp_path, caplog, written, table, fragments
):
    image = written[table, fragments]
    path = _copy(image, tmp_path)
    size = path.stat().st_size
    before = _bytes_read()
    matrix = _matrix(path)
    np.testing.assert_array_equal(matrix[0], _expected(image, 1))
    assert _bytes_read() - before < size / 8

    # The fragments between the first and the last frame are not even looked
    # at: with their item tags broken (but frame 3's), the frames around
    # still read.
    ranges = synthetic.frame_byte_ranges(path)
    with open(path, "r+b") as fp:
        for begin, _ in ranges[1:2] + ranges[3:-1]:  # frame 3 stays whole
            fp.seek(begin)
            fp.write(b"\0\0\0\0")
    with caplog.at_level(logging.WARNING, logger="dicomslide"):
        matrix = _matrix(path)
        np.testing.assert_array_equal(matrix[0], _expected(image, 1))
        np.testing.assert_array_equal(matrix[FRAMES - 1], _expected(image, FRAMES))
        assert _table_warnings(caplog) == []
        # a frame whose item is broken proves the table wrong; the scan that
        # follows finds the broken items and says where
        with pytest.raises(FrameRetrievalError, match="unexpected tag") as info:
            matrix[MIDDLE - 1]
        assert info.value.sop_instance_uid == image.sop_instance_uids[0]
        assert info.value.frame_number == MIDDLE
        # the failed scan is not repeated: other broken frames fail at once,
        # the frames the table places right still read
        with pytest.raises(FrameRetrievalError, match="cannot be scanned") as info:
            matrix[MIDDLE]
        assert info.value.frame_number == MIDDLE + 1
        np.testing.assert_array_equal(matrix[2], _expected(image, 3))
    assert len(_table_warnings(caplog)) == 1


def _second_fragment(path: Path, frame_number: int) -> int:
    begin, _ = synthetic.frame_byte_ranges(path)[frame_number - 1]
    (length,) = struct.unpack_from("<I", path.read_bytes(), begin + 4)
    return begin + 8 + length


def _swap(bot: np.ndarray, i: int, j: int) -> np.ndarray:
    bot = bot.copy()
    bot[[i, j]] = bot[[j, i]]
    return bot


#: Ways of spoiling a Basic Offset Table: (name, fragments per frame, change)
WRONG_TABLES = [
    # a frame starts 2 bytes into its item: found when the frame is read
    ("inside an item", 1, lambda bot, path, first: bot + 2 * (bot == bot[MIDDLE])),
    # a frame starts at its predecessor's second fragment: the items are
    # whole, but neither frame is
    (
        "at another fragment",
        2,
        lambda bot, path, first: np.where(
            bot == bot[MIDDLE], _second_fragment(path, MIDDLE) - first, bot
        ),
    ),
    # two frames swapped: the table does not increase, found when the file
    # is opened
    ("swapped", 1, lambda bot, path, first: _swap(bot, MIDDLE, MIDDLE + 1)),
    # offsets past 4 GiB wrap around (as in files writers did not check)
    ("wrapped", 1, lambda bot, path, first: np.where(bot > bot[MIDDLE], bot - 8, bot)),
    # the last frame's offset leads nowhere: found when the file is opened
    ("last frame", 1, lambda bot, path, first: bot + 4 * (bot == bot[-1])),
]


@pytest.mark.parametrize(("name", "fragments", "change"), WRONG_TABLES)
def test_wrong_basic_offset_table_gives_the_right_pixels(
    tmp_path, caplog, written, name, fragments, change
):
    image = written["basic", fragments]
    path = _copy(image, tmp_path)
    _, bot = _bot(path)
    first = synthetic.frame_byte_ranges(path)[0][0]
    _set_bot(path, change(bot, path, first))
    assert not np.array_equal(_bot(path)[1], bot)
    with caplog.at_level(logging.WARNING, logger="dicomslide"):
        _assert_all_right(image, path)
    (warning,) = _table_warnings(caplog)
    assert image.sop_instance_uids[0] in warning
    assert "Offset Table" in warning or "offset table" in warning


def test_wrong_extended_offset_table_gives_the_right_pixels(tmp_path, caplog, written):
    image = written["extended", 1]
    path = _copy(image, tmp_path)
    table = np.frombuffer(
        pydicom.dcmread(path, stop_before_pixels=True).ExtendedOffsetTable, "<u8"
    ).copy()
    table[MIDDLE] += 2
    synthetic.set_attribute(path, "ExtendedOffsetTable", table.tobytes())
    with caplog.at_level(logging.WARNING, logger="dicomslide"):
        _assert_all_right(image, path)
    (warning,) = _table_warnings(caplog)
    assert image.sop_instance_uids[0] in warning


def test_empty_table_is_scanned_without_warning(tmp_path, caplog, written):
    image = written["empty", 1]
    path = _copy(image, tmp_path)
    with caplog.at_level(logging.WARNING, logger="dicomslide"):
        _assert_all_right(image, path)
    assert caplog.records == []


def test_extended_lengths_that_count_the_item_header(tmp_path, caplog, written):
    """Some writers (wsidicom) count each frame's 8-byte item header in its
    Extended Offset Table Lengths, so each length reaches into the next frame:
    the offsets are right, and the file is opened by them, without a warning
    and without walking its fragments."""
    image = written["extended", 1]
    path = _copy(image, tmp_path)
    lengths = np.frombuffer(
        pydicom.dcmread(path, stop_before_pixels=True).ExtendedOffsetTableLengths,
        "<u8",
    )
    synthetic.set_attribute(
        path, "ExtendedOffsetTableLengths", (lengths + 8).astype("<u8").tobytes()
    )
    size = path.stat().st_size
    with caplog.at_level(logging.WARNING, logger="dicomslide"):
        before = _bytes_read()
        matrix = _matrix(path)
        np.testing.assert_array_equal(matrix[0], _expected(image, 1))
        np.testing.assert_array_equal(matrix[FRAMES - 1], _expected(image, FRAMES))
        assert _bytes_read() - before < size / 8
        _assert_all_right(image, path)
    assert _table_warnings(caplog) == []
