"""Read-ahead: predict the next regions of a row-major scan.

Patch extraction walks a matrix row by row: regions of one size, each a fixed
step right of the last, and at the end of a row back to the column the row
began at, one step down. :class:`ScanPredictor` recognises that walk from the
regions read so far and names the regions that come next, so that their frames
can be fetched and decoded on idle cores while the caller works on the
current one. Random reads predict nothing.

The number of regions predicted is ``DICOMSLIDE_READAHEAD`` (default 2;
0 turns read-ahead off). Where every request costs a network round trip
(DICOMweb), the next regions must be on their way long before they are read:
:meth:`ScanPredictor.observe_rows` names the rest of the scan, a row at a
time, and the caller reads ahead as far as its budget allows.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

Region = tuple[int, int, int, int]
"""First row, one-past-last row, first column, one-past-last column."""


def default_depth() -> int:
    """Regions to read ahead, from ``DICOMSLIDE_READAHEAD`` (default 2)."""
    try:
        return max(0, int(os.environ.get("DICOMSLIDE_READAHEAD", "2")))
    except ValueError:
        return 2


@dataclass
class _Scan:
    region: Region
    key: tuple[int, int]
    step: int = 0  # columns between regions of a row; 0 before the second
    row_start: int = 0  # first column of the scan's rows
    row_last: int | None = None  # first column of a row's last region, once known
    row_step: int = 0  # rows between scan rows, once a row has ended
    rows_done: int = 0  # scan rows ended so far


class ScanPredictor:
    """Recognise row-major scans over one matrix and predict their next regions.

    Parameters
    ----------
    shape: Tuple[int, int]
        Rows and columns of the total pixel matrix
    depth: Union[int, None], optional
        Regions to predict (default: :func:`default_depth`)

    """

    def __init__(self, shape: tuple[int, int], depth: int | None = None) -> None:
        self.shape = shape
        self.depth = default_depth() if depth is None else depth
        self._scan: _Scan | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, object]:
        return {"shape": self.shape, "depth": self.depth}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__(state["shape"], state["depth"])  # type: ignore[misc]

    def observe(self, key: tuple[int, int], region: Region) -> list[Region]:
        """Record a read and predict the regions a scan would read next.

        Parameters
        ----------
        key: Tuple[int, int]
            What is read (channel and focal plane); a scan stays on one
        region: Tuple[int, int, int, int]
            Rows [r0, r1) and columns [c0, c1) read

        Returns
        -------
        List[Tuple[int, int, int, int]]
            Regions predicted to come next (empty unless the reads so far
            form a row-major scan)

        """
        if self.depth <= 0:
            return []
        with self._lock:
            scan = self._follow(key, region)
            self._scan = scan
            if scan.step <= 0:
                return []
            return self._predict(scan)

    def observe_rows(self, key: tuple[int, int], region: Region) -> Iterator[Region]:
        """Record a read and name the rest of a scan, one region per row.

        Parameters
        ----------
        key: Tuple[int, int]
            What is read (channel and focal plane); a scan stays on one
        region: Tuple[int, int, int, int]
            Rows [r0, r1) and columns [c0, c1) read

        Returns
        -------
        Iterator[Tuple[int, int, int, int]]
            The rest of the read's scan row (to the matrix's edge until a row
            has ended), then, once rows have ended, each next scan row whole,
            nearest first: four times as many rows as have ended, so that a scan
            of a small part of the matrix fetches little beyond it (nothing
            unless the reads so far form a row-major scan, or read-ahead is
            off)

        """
        if self.depth <= 0:
            return iter(())
        with self._lock:
            scan = self._follow(key, region)
            self._scan = scan
        if scan.step <= 0:
            return iter(())
        return self._rows(scan)

    def _rows(self, scan: _Scan) -> Iterator[Region]:
        rows, columns = self.shape
        r0, r1, c0, c1 = scan.region
        height, width = r1 - r0, c1 - c0
        row_end = columns if scan.row_last is None else scan.row_last + width
        row_end = min(row_end, columns)
        if c0 + scan.step < row_end:
            yield (r0, r1, c0 + scan.step, row_end)
        if scan.row_last is None or scan.row_step <= 0:
            return
        tops = range(r0 + scan.row_step, rows, scan.row_step)
        for top in tops[: 4 * scan.rows_done]:
            yield (top, top + height, scan.row_start, row_end)

    def _follow(self, key: tuple[int, int], region: Region) -> _Scan:
        last = self._scan
        r0, r1, c0, c1 = region
        if last is None or last.key != key:
            return _Scan(region, key, row_start=c0)
        l0, l1, m0, m1 = last.region
        height, width = r1 - r0, c1 - c0
        if (height, width) != (l1 - l0, m1 - m0) or height <= 0 or width <= 0:
            return _Scan(region, key, row_start=c0)
        step = c0 - m0
        if r0 == l0 and 0 < step <= width and last.step in (0, step):
            # next region of the same row (adjacent or overlapping)
            return _Scan(
                region,
                key,
                step,
                last.row_start,
                last.row_last,
                last.row_step,
                last.rows_done,
            )
        down = r0 - l0
        if last.step and c0 == last.row_start and 0 < down <= height:
            # the next row of the scan begins
            return _Scan(region, key, last.step, c0, m0, down, last.rows_done + 1)
        return _Scan(region, key, row_start=c0)

    def _predict(self, scan: _Scan) -> list[Region]:
        rows, columns = self.shape
        r0, r1, c0, c1 = scan.region
        height, width = r1 - r0, c1 - c0

        predicted: list[Region] = []
        while len(predicted) < self.depth:
            c0 += scan.step
            past_row = scan.row_last is not None and c0 > scan.row_last
            if past_row or c0 >= columns:
                # the next row, once the scan has shown where rows end
                if not scan.row_step:
                    break
                r0 += scan.row_step
                c0 = scan.row_start
            if r0 >= rows or c0 >= columns:
                break
            predicted.append((r0, r0 + height, c0, c0 + width))
        return predicted
