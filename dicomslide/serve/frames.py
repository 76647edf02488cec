"""Stored frames for native tiles, fetched a block at a time: :class:`EncodedFrames`.

A viewer asks for the tiles of its viewport together, so the frame of a native
tile is fetched with the others of its aligned block of grid cells, in one
request per instance (one round trip over DICOMweb), and kept, as stored, in a
cache bounded in bytes. Threads that want frames of a block being fetched wait
for that fetch instead of starting their own. The frames of a block that reach
past the edge of the image are tiles to render, not to send: they are also
decoded into the store's cache as they arrive, so that rendering them does not
fetch them again (an edge tile of a stored level has its block fetched first).

Where every request costs a round trip (a remote source), the first tile
served from a block also has the blocks beside it (left, right, above, below)
fetched in the background, so that a viewer that pans finds the next tiles
cached instead of waiting for a fetch at every block it enters. As for the
neighbours of region reads (:meth:`dicomslide.loader.FrameLoader.wants_neighbours`),
this goes on while at least a quarter of the frames fetched ahead were served
(judged once :data:`AHEAD_PROBATION` were fetched; frames still on their way
count as fetched, so that a viewer that jumps faster than the answers come
gets no more fetched ahead than one that waits). Fetches ahead wait their
turn in the I/O pool (:func:`dicomslide.pool.submit_io`); a tile wanted now
never waits behind them: it takes the fetch of its block over if that has not
begun.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from concurrent.futures import CancelledError, Future
from typing import Any

from dicomslide import pool

__all__ = ["EncodedFrames"]

logger = logging.getLogger(__name__)

#: Frames per side of a block fetched at once
BLOCK = 4
#: Bytes of encoded frames a cache keeps
CACHE_BYTES = 64 << 20
#: Frames fetched ahead before their use is judged
AHEAD_PROBATION = 64
#: Share of the frames fetched ahead that must be served to go on
AHEAD_MIN_USE = 0.25

_Frames = dict[tuple[int, int], tuple[bytes, str]]
_Block = tuple[int, int, int]  # level key, block row, block column
_Entry = tuple[int, int, int]  # level key, row, column


class EncodedFrames:
    """Encoded frames of stored levels, fetched by blocks and cached.

    Parameters
    ----------
    block: int, optional
        Frames per side of the blocks fetched at once
    max_bytes: int, optional
        Bytes of encoded frames kept

    """

    def __init__(self, block: int = BLOCK, max_bytes: int = CACHE_BYTES) -> None:
        self._block = block
        self._max_bytes = max_bytes
        self._cache: OrderedDict[_Entry, tuple[bytes, str] | None] = OrderedDict()
        self._bytes = 0
        self._pending: dict[_Block, Future[_Frames]] = {}
        self._lock = threading.Lock()
        # blocks whose neighbours were asked for already
        self._spread: set[_Block] = set()
        # frames fetched ahead and not served yet; counts fetched and served
        self._unserved: set[_Entry] = set()
        self._ahead = [0, 0]
        # frames of the blocks being fetched ahead, by block
        self._on_the_way: dict[_Block, int] = {}
        # whether each level's frames cost a round trip (known once fetched)
        self._remote: dict[int, bool] = {}

    def get(
        self,
        key: int,
        store: Any,
        channel: int,
        plane: int,
        position: tuple[int, int],
        fetch: bool = True,
    ) -> tuple[bytes, str] | None:
        """The stored frame at a grid position of a level.

        Parameters
        ----------
        key: int
            Which level (the cache's key for the store)
        store: dicomslide.store.FrameStore
            Frames of the level
        channel: int
            Zero-based channel index in the store
        plane: int
            Zero-based focal plane index in the store
        position: Tuple[int, int]
            (row, column) in the tile grid
        fetch: bool, optional
            Whether to fetch the frame (or wait for its fetch) when it is not
            cached; without, the call never waits for the network

        Returns
        -------
        Union[Tuple[bytes, str], None]
            The frame and its Transfer Syntax UID; None where there is none

        Raises
        ------
        KeyError
            When `fetch` is False and the frame is not cached

        """
        row, column = position
        entry = (key, row, column)
        block = (key, row // self._block, column // self._block)
        while True:
            with self._lock:
                if entry in self._cache:
                    self._cache.move_to_end(entry)
                    if entry in self._unserved:
                        self._unserved.discard(entry)
                        self._ahead[1] += 1
                    frame = self._cache[entry]
                    break
                if not fetch:
                    raise KeyError(position)
                future = self._pending.get(block)
                # a fetch ahead still queued is not waited for: done here now
                owner = future is None or future.cancel()
                if owner:
                    future = self._pending[block] = Future()
                    future.set_running_or_notify_cancel()
            assert future is not None
            if owner:
                # the block wanted now first, then those beside it
                self._fetch(block, store, channel, plane, future, ahead=False)
                self._fetch_neighbours(block, store, channel, plane)
            try:
                return future.result().get(position)
            except CancelledError:  # its fetch ahead was taken over: wait for that
                continue
        self._fetch_neighbours(block, store, channel, plane)
        return frame

    def _fetch(
        self,
        block: _Block,
        store: Any,
        channel: int,
        plane: int,
        future: Future[_Frames],
        ahead: bool,
    ) -> None:
        """Fetch a block claimed with `future`, keep it and settle `future`
        (unless `future`, of a fetch ahead, was cancelled before it began)."""
        if ahead and not future.set_running_or_notify_cancel():
            self._release(block, future, ahead)
            return
        try:
            top, left = block[1] * self._block, block[2] * self._block
            positions = [
                (r, c)
                for r in range(top, top + self._block)
                for c in range(left, left + self._block)
            ]
            rows, columns = store.total_shape
            height, width = store.tile_shape
            # frames that reach past the matrix are tiles to render: decoded
            # now, they are not fetched again
            edges = [
                (r, c)
                for r, c in positions
                if (r + 1) * height > rows or (c + 1) * width > columns
            ]
            frames = store.encoded_frames(channel, plane, positions, edges)
            self._remote[block[0]] = bool(store.loader.remote)
            self._keep(block[0], positions, frames, ahead)
            future.set_result(frames)
        except BaseException as error:
            future.set_exception(error)
            if not ahead:
                raise
            logger.debug("fetching frames ahead failed: %s", error)
        finally:
            self._release(block, future, ahead)

    def _release(self, block: _Block, future: Future[_Frames], ahead: bool) -> None:
        """A fetch of a block claimed with `future` ended (its frames kept,
        failed, or, ahead, taken over before it began): the block is no
        longer pending under `future`, nor, fetched ahead, on its way."""
        with self._lock:
            if self._pending.get(block) is future:
                del self._pending[block]
            if ahead:
                self._on_the_way.pop(block, None)

    def _fetch_neighbours(
        self, block: _Block, store: Any, channel: int, plane: int
    ) -> None:
        """Fetch the blocks beside a block in the background, once, if its
        level is remote."""
        if not self._remote.get(block[0]):
            return
        rows, columns = store.grid(channel, plane).grid_shape
        key, block_row, block_column = block
        claimed = []
        with self._lock:
            if block in self._spread:
                return
            self._spread.add(block)
            fetched = self._ahead[0] + sum(self._on_the_way.values())
            if fetched >= AHEAD_PROBATION and self._ahead[1] < AHEAD_MIN_USE * fetched:
                return
            for r, c in (
                (block_row, block_column + 1),
                (block_row + 1, block_column),
                (block_row, block_column - 1),
                (block_row - 1, block_column),
            ):
                neighbour = (key, r, c)
                if (
                    not (0 <= r * self._block < rows and 0 <= c * self._block < columns)
                    or neighbour in self._pending
                    or (key, r * self._block, c * self._block) in self._cache
                ):
                    continue
                future: Future[_Frames] = Future()
                self._pending[neighbour] = future
                self._on_the_way[neighbour] = min(
                    self._block, rows - r * self._block
                ) * min(self._block, columns - c * self._block)
                claimed.append((neighbour, future))
        for neighbour, future in claimed:
            try:
                pool.submit_io(
                    self._fetch, neighbour, store, channel, plane, future, True
                )
            except RuntimeError:  # the pool is shut down (exit): not ahead
                self._release(neighbour, future, ahead=True)
                future.cancel()  # whoever waits for it fetches it

    def _keep(
        self, key: int, positions: list[tuple[int, int]], frames: _Frames, ahead: bool
    ) -> None:
        with self._lock:
            for position in positions:
                frame = frames.get(position)
                entry = (key, *position)
                if entry not in self._cache:
                    self._cache[entry] = frame
                    self._bytes += len(frame[0]) if frame else 0
                    if ahead and frame is not None:
                        self._unserved.add(entry)
                        self._ahead[0] += 1
            while self._bytes > self._max_bytes and self._cache:
                entry, dropped = self._cache.popitem(last=False)
                self._bytes -= len(dropped[0]) if dropped else 0
                self._unserved.discard(entry)
