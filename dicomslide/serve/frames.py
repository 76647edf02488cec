"""Stored frames for native tiles, fetched a block at a time: :class:`EncodedFrames`.

A viewer asks for the tiles of its viewport together, so the frame of a native
tile is fetched with the others of its aligned block of grid cells, in one
request per instance (one round trip over DICOMweb), and kept, as stored, in a
cache bounded in bytes. Threads that want frames of a block being fetched wait
for that fetch instead of starting their own.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future
from typing import Any

__all__ = ["EncodedFrames"]

#: Frames per side of a block fetched at once
BLOCK = 4
#: Bytes of encoded frames a cache keeps
CACHE_BYTES = 64 << 20

_Frames = dict[tuple[int, int], tuple[bytes, str]]


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
        self._cache: OrderedDict[tuple[int, int, int], tuple[bytes, str] | None]
        self._cache = OrderedDict()
        self._bytes = 0
        self._pending: dict[tuple[int, int, int], Future[_Frames]] = {}
        self._lock = threading.Lock()

    def get(
        self, key: int, store: Any, channel: int, plane: int, position: tuple[int, int]
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

        Returns
        -------
        Union[Tuple[bytes, str], None]
            The frame and its Transfer Syntax UID; None where there is none

        """
        row, column = position
        block = (key, row // self._block, column // self._block)
        with self._lock:
            if (key, row, column) in self._cache:
                self._cache.move_to_end((key, row, column))
                return self._cache[(key, row, column)]
            future = self._pending.get(block)
            owner = future is None
            if future is None:
                future = self._pending[block] = Future()
        if owner:
            try:
                top, left = block[1] * self._block, block[2] * self._block
                positions = [
                    (r, c)
                    for r in range(top, top + self._block)
                    for c in range(left, left + self._block)
                ]
                frames = store.encoded_frames(channel, plane, positions)
                self._keep(key, positions, frames)
                future.set_result(frames)
            except BaseException as error:
                future.set_exception(error)
                raise
            finally:
                with self._lock:
                    self._pending.pop(block, None)
        return future.result().get(position)

    def _keep(
        self, key: int, positions: list[tuple[int, int]], frames: _Frames
    ) -> None:
        with self._lock:
            for position in positions:
                frame = frames.get(position)
                entry = (key, *position)
                if entry not in self._cache:
                    self._cache[entry] = frame
                    self._bytes += len(frame[0]) if frame else 0
            while self._bytes > self._max_bytes and self._cache:
                _, dropped = self._cache.popitem(last=False)
                self._bytes -= len(dropped[0]) if dropped else 0
