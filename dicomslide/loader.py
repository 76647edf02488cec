"""Loading the decoded frames of one image: fetch once, decode in parallel, cache.

A read asks its :class:`FrameLoader` for the frames it needs. Those in the
cache are handed over at once; of the others, each is claimed by the first
read that wants it, so that concurrent reads, read-ahead and every view of the
image's frames wait for one load instead of starting their own. The claimed
frames are fetched in one call per instance, and decoded largest first by the
reading thread and idle threads of the decode pool (:mod:`dicomslide.pool`),
where possible straight into memory that an idle thread faults in meanwhile
(:mod:`dicomslide.pages`). Frames of a scan's next regions, and the ring
of tiles around a DICOMweb read, are fetched in the background by the I/O
pool and decoded by the decode pool. A transformed view of the loader
(:meth:`FrameLoader.transformed`) applies a transform, such as colour
correction, to every frame as it is decoded, and caches the transformed
frames apart from the plain ones. :class:`ReadMetrics` counts what reading
cost.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Collection, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from pydicom.dataset import Dataset

from dicomslide import pages, pool
from dicomslide.cache import FrameCache
from dicomslide.client import make_frame_source, portable
from dicomslide.codec import PixelDescription, decode_frame, decodes_into
from dicomslide.errors import FrameRetrievalError
from dicomslide.fetch import FrameSource, describe_pixels

if TYPE_CHECKING:
    from dicomweb_client.protocol import DICOMClient

logger = logging.getLogger(__name__)

# Neighbouring frames come with a read's request while at least this share of
# those fetched so far were read later, judged once this many were fetched.
_NEIGHBOURS_MIN_USE = 0.25
_NEIGHBOURS_PROBATION = 64


class ReadMetrics:
    """What reading an image cost, counted since it was opened.

    Attributes
    ----------
    requests: int
        Calls that fetched encoded frames (requests to a server, or reads of
        a local file), one per instance and read
    frames_fetched: int
        Encoded frames fetched
    bytes_fetched: int
        Bytes of encoded frames fetched
    cache_hits: int
        Frames served from the frame cache instead

    """

    _FIELDS = ("requests", "frames_fetched", "bytes_fetched", "cache_hits")

    def __init__(self) -> None:
        self.requests = 0
        self.frames_fetched = 0
        self.bytes_fetched = 0
        self.cache_hits = 0
        self._lock = threading.Lock()

    def add(self, **counts: int) -> None:
        """Add to the counters (thread-safe)."""
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, int]:
        """The counters as a dictionary."""
        return {name: getattr(self, name) for name in self._FIELDS}

    def __getstate__(self) -> dict[str, int]:
        return self.as_dict()

    def __setstate__(self, state: dict[str, int]) -> None:
        self.__init__()  # type: ignore[misc]
        self.add(**state)

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.as_dict().items())
        return f"ReadMetrics({counts})"


class FrameTransform(Protocol):
    """A transform of decoded frames, named by a key (e.g. colour correction,
    :class:`dicomslide.color.ColorTransform`)."""

    #: names the transform in cache keys: equal keys, equal results
    key: str

    def __call__(self, array: np.ndarray) -> np.ndarray:
        """The transformed frame (a new array)."""
        ...


@dataclass(frozen=True)
class _Job:
    """One fetched frame to decode, and the future its readers wait on."""

    index: int
    future: Future[np.ndarray]
    data: bytes
    desc: PixelDescription
    sop: str
    number: int
    #: memory to decode into (see :meth:`FrameLoader._fault_in_ahead`)
    out: np.ndarray | None = None


class _ReadRun:
    """The work of one read, shared by the reading thread and pool workers:
    frames to decode, then cached frames to paste.

    Each thread takes the next step until none is left, the largest encoding
    first: a thread that starts late or draws quick frames takes more, and
    the reader never waits for a worker that found nothing to do.
    """

    def __init__(
        self,
        jobs: Sequence[_Job],
        cached: Sequence[tuple[int, np.ndarray]],
        decode: Callable[[_Job, Callable[[int, np.ndarray], None]], None],
        on_frame: Callable[[int, np.ndarray], None],
    ) -> None:
        largest_first = sorted(jobs, key=lambda job: len(job.data), reverse=True)
        self._steps: deque[_Job | tuple[int, np.ndarray]] = deque(largest_first)
        self._steps.extend(cached)
        self._decode = decode
        self._on_frame = on_frame
        self._unfinished = len(self._steps)
        self._finished = threading.Condition()
        self._errors: list[BaseException] = []

    def work(self) -> None:
        """Decode or paste frames until none is left to take."""
        while True:
            try:
                step = self._steps.popleft()
            except IndexError:
                return
            try:
                if isinstance(step, _Job):
                    self._decode(step, self._on_frame)
                else:
                    self._on_frame(*step)
            except BaseException as error:  # the others still settle
                self._errors.append(error)
            finally:
                with self._finished:
                    self._unfinished -= 1
                    if self._unfinished == 0:
                        self._finished.notify_all()

    def wait(self) -> None:
        """Wait until every step taken is done (or has failed)."""
        with self._finished:
            self._finished.wait_for(lambda: self._unfinished == 0)

    def cancel(self) -> None:
        """Drop the steps nobody took yet (a read that stops early)."""
        while True:
            try:
                self._steps.popleft()
            except IndexError:
                return
            with self._finished:
                self._unfinished -= 1

    def raise_first_error(self) -> None:
        """Raise the error of the first step that failed, if any."""
        if self._errors:
            raise self._errors[0]


class FrameLoader:
    """Loads the decoded frames of one image: each frame once, however many
    reads want it at the same time.

    A frame is taken from the cache, or claimed by the read that first wants
    it (later reads wait for that one), fetched with the read's other frames
    in one call per instance, and decoded by the reading thread and idle pool
    threads into the cache. Every view of an image's frames (plain or RGBA,
    see :meth:`dicomslide.store.FrameStore.as_rgba`) loads through the same
    loader, so no frame is fetched or decoded twice.

    Parameters
    ----------
    client: dicomweb_client.api.DICOMClient
        Client that serves the image
    parts: Sequence[pydicom.Dataset]
        Metadata of the instance, or of the instances of its concatenation
        in order
    layout: dicomslide.codec.PixelDescription
        Pixel layout of the frames (transfer syntax aside)
    cache: dicomslide.cache.FrameCache
        Cache for decoded frames
    part_of_frame: numpy.ndarray
        Zero-based index of the part that holds each frame
    local_numbers: numpy.ndarray
        One-based number of each frame within its part

    """

    def __init__(
        self,
        client: DICOMClient,
        parts: Sequence[Dataset],
        layout: PixelDescription,
        cache: FrameCache,
        part_of_frame: np.ndarray,
        local_numbers: np.ndarray,
    ) -> None:
        self.client = client
        self.parts = list(parts)
        self.layout = layout
        self.cache = cache
        self.part_of_frame = part_of_frame
        self.local_numbers = local_numbers
        self.metrics = ReadMetrics()
        self._sop_uids = [str(part.SOPInstanceUID) for part in self.parts]
        # Files and servers may hold different pixels under one SOP Instance
        # UID (copies edited by hand, test files): cache keys name the origin.
        self._origins = [
            str(getattr(part, "filename", None) or getattr(client, "base_url", ""))
            for part in self.parts
        ]
        self._sources: list[FrameSource | None] = [None] * len(self.parts)
        self._descs: list[PixelDescription | None] = [None] * len(self.parts)
        self._lock = threading.Lock()
        #: applied to every frame as it is decoded (see transformed)
        self._transform: FrameTransform | None = None
        self._views: dict[str, FrameLoader] = {}
        self._reset_pending()

    def _reset_pending(self) -> None:
        # Frames being loaded, by index. A forked child never sees the
        # parent's loads complete, so it starts afresh (see _claim).
        self._pending: dict[int, Future[np.ndarray]] = {}
        self._pending_lock = threading.Lock()
        self._pid = os.getpid()
        # Neighbouring frames fetched with a read and not read yet, and how
        # many were fetched and read so far (see wants_neighbours).
        self._unread_neighbours: set[int] = set()
        self._neighbour_counts = [0, 0]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for name in (
            "_lock",
            "_pending",
            "_pending_lock",
            "_pid",
            "_unread_neighbours",
            "_neighbour_counts",
        ):
            del state[name]
        state["client"] = portable(self.client)
        # transforms don't pickle: views are made again where wanted
        state["_transform"] = None
        state["_views"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._reset_pending()

    def transformed(self, transform: FrameTransform | None) -> FrameLoader:
        """The loader of the same frames with `transform` applied to each.

        Every frame the view loads is transformed once, in the thread that
        decodes it, and cached under a key that names the transform, in the
        same cache as the plain frames: plain and transformed frames never
        stand in for each other. The view shares this loader's sources and
        metrics, and is made once per transform.

        Parameters
        ----------
        transform: Union[dicomslide.loader.FrameTransform, None]
            The transform; None for this loader itself

        Returns
        -------
        dicomslide.loader.FrameLoader
            The view

        """
        if transform is None or transform is self._transform:
            return self
        with self._lock:
            view = self._views.get(transform.key)
            if view is None:
                view = object.__new__(FrameLoader)
                view.__dict__.update(self.__dict__)
                view._transform = transform
                view._views = {}
                view._reset_pending()
                self._views[transform.key] = view
        return view

    @property
    def loading(self) -> int:
        """int: number of frames being loaded now (by reads or ahead of them)"""
        return len(self._pending)

    def _source(self, part: int) -> FrameSource:
        source = self._sources[part]
        if source is None:
            with self._lock:
                source = self._sources[part]
                if source is None:
                    source = make_frame_source(
                        self.client, self.parts[part], self.layout
                    )
                    self._sources[part] = source
        return source

    def _description(
        self, part: int, transfer_syntax_uid: str | None
    ) -> PixelDescription:
        """Pixel layout of a part's frames in the syntax they arrived in."""
        desc = self._descs[part]
        if desc is None or desc.transfer_syntax_uid != (transfer_syntax_uid or ""):
            desc = replace(
                describe_pixels(self.parts[part], ""),
                transfer_syntax_uid=transfer_syntax_uid or "",
            )
            self._descs[part] = desc
        return desc

    def _frame_id(self, index: int) -> tuple[str, int]:
        """SOP Instance UID and frame number of a frame."""
        part = int(self.part_of_frame[index])
        return (self._sop_uids[part], int(self.local_numbers[index]))

    def _key(self, index: int) -> tuple[Hashable, ...]:
        """Cache key of a decoded frame: origin, SOP Instance UID, number,
        and the key of the transform applied to it, if any."""
        part = int(self.part_of_frame[index])
        key = (
            self._origins[part],
            self._sop_uids[part],
            int(self.local_numbers[index]),
        )
        if self._transform is None:
            return key
        return (*key, self._transform.key)

    def is_cached(self, index: int) -> bool:
        """Whether a frame is in the cache, as this loader gives it.

        Parameters
        ----------
        index: int
            Zero-based index of the frame over all parts

        Returns
        -------
        bool
            Whether it is cached (transformed, for a transformed view)

        """
        return self._key(index) in self.cache

    def _claim(
        self, indices: Sequence[int]
    ) -> tuple[
        list[tuple[int, np.ndarray]],
        dict[int, Future[np.ndarray]],
        list[tuple[int, Future[np.ndarray]]],
    ]:
        """Sort frames into cached, to load here, and loading elsewhere.

        Frames to load here are registered as pending, so that a concurrent
        read (another thread, or read-ahead) waits for them instead of
        fetching and decoding them a second time. Every claimed frame must be
        settled (:meth:`_settle`), with its array or its error.
        """
        cached: list[tuple[int, np.ndarray]] = []
        claimed: dict[int, Future[np.ndarray]] = {}
        waiting: list[tuple[int, Future[np.ndarray]]] = []
        if self._pid != os.getpid():
            self._reset_pending()
        with self._pending_lock:
            for index in dict.fromkeys(int(i) for i in indices):
                array = self.cache.get(self._key(index))
                if array is not None:
                    cached.append((index, array))
                    continue
                future = self._pending.get(index)
                if future is None:
                    future = self._pending[index] = Future()
                    claimed[index] = future
                else:
                    waiting.append((index, future))
        return cached, claimed, waiting

    def _settle(
        self,
        index: int,
        future: Future[np.ndarray],
        outcome: np.ndarray | BaseException,
    ) -> None:
        """Publish a claimed frame, or its error, to whoever waits for it."""
        with self._pending_lock:
            if self._pending.get(index) is future:
                del self._pending[index]
            if future.done():
                return
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    def _settle_all(
        self, claimed: dict[int, Future[np.ndarray]], error: BaseException
    ) -> None:
        for index, future in claimed.items():
            self._settle(index, future, error)

    def _abandon(self, claimed: dict[int, Future[np.ndarray]]) -> None:
        """Settle claimed frames a failed or interrupted read left unloaded,
        so that nobody waits for them forever."""
        for index, future in claimed.items():
            if not future.done():
                sop, number = self._frame_id(index)
                error = FrameRetrievalError(
                    "the read that was loading this frame stopped first", sop, number
                )
                self._settle(index, future, error)

    def _fetch(self, claimed: dict[int, Future[np.ndarray]]) -> list[_Job]:
        """Fetch claimed frames, one call per instance; on failure every
        claimed frame is settled with the error."""
        by_part: dict[int, list[int]] = defaultdict(list)
        for index in claimed:
            by_part[int(self.part_of_frame[index])].append(index)
        jobs: list[_Job] = []
        try:
            for part, missing in by_part.items():
                source = self._source(part)
                numbers = [int(self.local_numbers[i]) for i in missing]
                encoded = source.read_frames(numbers)
                self.metrics.add(
                    requests=1,
                    frames_fetched=len(encoded),
                    bytes_fetched=sum(len(data) for data in encoded),
                )
                desc = self._description(part, source.transfer_syntax_uid)
                sop = self._sop_uids[part]
                jobs.extend(
                    _Job(index, claimed[index], data, desc, sop, number)
                    for index, data, number in zip(
                        missing, encoded, numbers, strict=True
                    )
                )
        except BaseException as error:
            self._settle_all(claimed, error)
            raise
        return jobs

    def read_encoded(
        self, indices: Sequence[int], decode: Collection[int] = ()
    ) -> list[tuple[bytes, str]]:
        """Fetch frames as they are stored, without caching them.

        Parameters
        ----------
        indices: Sequence[int]
            Zero-based indices of frames over all parts
        decode: Collection[int], optional
            Those of `indices` that reads will want decoded too: the ones
            neither cached nor being loaded are decoded in the background
            into the cache, from the bytes fetched here

        Returns
        -------
        List[Tuple[bytes, str]]
            Each encoded frame and the Transfer Syntax UID it arrived in, in
            the order of `indices` (one fetch per instance)

        """
        by_part: dict[int, list[int]] = defaultdict(list)
        for index in indices:
            by_part[int(self.part_of_frame[index])].append(index)
        found: dict[int, tuple[bytes, str]] = {}
        for part, wanted in by_part.items():
            source = self._source(part)
            numbers = [int(self.local_numbers[i]) for i in wanted]
            encoded = source.read_frames(numbers)
            self.metrics.add(
                requests=1,
                frames_fetched=len(encoded),
                bytes_fetched=sum(len(data) for data in encoded),
            )
            syntax = str(source.transfer_syntax_uid or "")
            found.update(zip(wanted, ((d, syntax) for d in encoded), strict=True))
            _, claimed, _ = self._claim([i for i in wanted if i in decode])
            desc = self._description(part, source.transfer_syntax_uid)
            self._decode_later(
                [
                    _Job(i, future, found[i][0], desc, self._sop_uids[part], number)
                    for i, number in zip(wanted, numbers, strict=True)
                    if (future := claimed.get(i)) is not None
                ]
            )
        return [found[index] for index in indices]

    def _decode(
        self, job: _Job, on_frame: Callable[[int, np.ndarray], None] | None
    ) -> None:
        try:
            array = decode_frame(job.data, job.desc, job.sop, job.number, job.out)
            if job.desc.bits_allocated == 1:
                array = array.astype(np.uint8)
            if self._transform is not None:
                array = self._transform(array)
            self.cache.put(self._key(job.index), array)
        except BaseException as error:
            self._settle(job.index, job.future, error)
            raise
        self._settle(job.index, job.future, array)
        if on_frame is not None:
            on_frame(job.index, array)

    def load_frames(
        self,
        indices: Sequence[int],
        on_frame: Callable[[int, np.ndarray], None],
        prefetch: Sequence[int] = (),
        neighbours: Callable[[], Sequence[int]] | None = None,
        share_pastes: bool = False,
    ) -> None:
        """Get decoded frames, fetching and decoding only those not cached.

        Parameters
        ----------
        indices: Sequence[int]
            Zero-based indices of frames over all parts
        on_frame: Callable[[int, numpy.ndarray], None]
            Called once per distinct index with the decoded frame; may run in a
            decoder thread
        prefetch: Sequence[int], optional
            Indices of frames to load in the background after these, for a
            read expected next (see :mod:`dicomslide.readahead`)
        neighbours: Union[Callable[[], Sequence[int]], None], optional
            Gives the indices of frames to ask for after these, in a request
            of their own in the background, called only if any are fetched;
            they are decoded in the background too
        share_pastes: bool, optional
            Whether idle pool threads may also hand cached frames to
            `on_frame`, for reads that paste enough pixels to be worth
            sharing; otherwise this thread does, while frames are decoded

        """
        self._note_read(indices)
        cached, claimed, waiting = self._claim(indices)
        self.metrics.add(cache_hits=len(cached))
        run: _ReadRun | None = None
        beside: list[_Job] = []
        try:
            if claimed and neighbours is not None and self._carries_neighbours:
                # the neighbours that lie beside the read's frames in their
                # objects come in the same ranged requests, decoded after the
                # read's own frames
                extra = self._claim_neighbours(
                    self._beside(neighbours(), claimed), claimed
                )
                jobs = self._fetch({**claimed, **extra})
                beside = [job for job in jobs if job.index in extra]
                jobs = [job for job in jobs if job.index not in extra]
            else:
                jobs = self._fetch(claimed) if claimed else []
                if claimed and neighbours is not None:
                    # after the read's own frames, in a request of their own
                    self._fetch_later(self._claim_neighbours(neighbours(), claimed))
            shared = (
                cached if share_pastes and pool.busy.count < pool.WORKERS - 1 else []
            )
            if jobs or shared:
                helpers = min(len(jobs) + len(shared), pool.WORKERS) - 1
                idle = pool.WORKERS - pool.busy.count - 1 - helpers  # 1: this thread
                jobs = self._fault_in_ahead(jobs, idle)
                run = _ReadRun(jobs, shared, self._decode, on_frame)
                for _ in range(helpers):
                    pool.submit(run.work)
            if prefetch:
                self._prefetch(prefetch)
            if not shared:
                for index, array in cached:
                    on_frame(index, array)
            if run is not None:
                with pool.busy:
                    run.work()
                run.wait()
        finally:
            if run is not None:
                run.cancel()
            self._abandon(claimed)
            self._decode_later(beside)
        if run is not None:
            run.raise_first_error()
        for index, future in waiting:
            on_frame(index, future.result())

    def _fault_in_ahead(self, jobs: list[_Job], idle: int) -> list[_Job]:
        """Give the frames of a read their memory now, and have up to `idle`
        pool threads fault it in while the frames are decoded.

        A frame decoded into fresh memory waits for a page fault every 4 KiB
        (see :mod:`dicomslide.pages`). Memory used before needs no faulting;
        frames that no codec writes into given memory are left alone.
        """
        ready = []
        for job in jobs:
            desc = job.desc
            if (
                idle > 0
                and pages.worth_faulting(desc.frame_nbytes)
                and decodes_into(desc)
            ):
                out = np.empty(desc.shape, desc.dtype)
                if pages.needs_faulting(out):
                    pool.submit(pages.fault_in, out)
                    idle -= 1
                job = replace(job, out=out)
            ready.append(job)
        return ready

    @property
    def background_limit(self) -> int:
        """int: how many frames may be loaded ahead of reads: a quarter of
        the cache's worth"""
        return self.cache.max_bytes // 4 // max(self.layout.frame_nbytes, 1)

    def _prefetch(self, indices: Sequence[int]) -> None:
        """Load frames in the background, within a quarter of the cache.

        Nothing is done while fewer than a quarter of them are neither
        loaded nor loading, so that a scan that reads far ahead fetches its
        next regions in a few larger requests, not one request per region.
        """
        ahead = [int(i) for i in indices][: self.background_limit]
        with self._pending_lock:
            missing = sum(
                i not in self._pending and self._key(i) not in self.cache for i in ahead
            )
        if not missing or 4 * missing < len(ahead) and len(ahead) >= 8:
            return
        _, claimed, _ = self._claim(ahead)
        self._fetch_later(claimed)

    def _fetch_later(self, claimed: dict[int, Future[np.ndarray]]) -> None:
        """Fetch claimed frames in the background, in as many concurrent
        requests as a read of them would make, and decode them there.

        Fetches that wait on a network go to the I/O pool; a local file's are
        work for a core (bytes copied from the page cache) and go to the
        decode pool, as its decoding does: run in the I/O pool's threads,
        which :data:`dicomslide.pool.busy` does not count, they competed with
        the decoding for the cores and made a patch scan 15-20 % slower.
        """
        if not claimed:
            return
        items = list(claimed.items())
        split = getattr(self._source(0), "request_size", None)
        size = len(items) if split is None else max(1, split(len(items)))
        for start in range(0, len(items), size):
            batch = dict(items[start : start + size])

            def run(batch: dict[int, Future[np.ndarray]] = batch) -> None:
                try:
                    jobs = self._fetch(batch)
                except Exception as error:  # readers waiting get the error
                    logger.debug(
                        "fetching %d frames ahead failed: %s", len(batch), error
                    )
                    return
                self._decode_later(jobs)

            try:
                (pool.submit_io if self.remote else pool.submit)(run)
            except RuntimeError as error:  # the pool is shut down (exit)
                self._settle_all(batch, error)

    def _decode_later(self, jobs: Sequence[_Job]) -> None:
        """Decode fetched frames in the background, into the cache."""
        try:
            for job in jobs:
                pool.submit(self._decode, job, None)
        except RuntimeError as error:  # the pool is shut down (exit)
            for job in jobs:
                self._settle(job.index, job.future, error)

    @property
    def remote(self) -> bool:
        """bool: whether every request for frames costs a network round trip"""
        return bool(getattr(self._source(0), "remote", False))

    def wants_neighbours(self) -> bool:
        """Whether reads should ask for the neighbours of their frames too.

        A request over DICOMweb costs a round trip however many frames it
        holds: reads that go on near earlier ones then find their frames
        cached. Neighbours are asked for while at least a quarter of those
        fetched so far were read (judged once 64 were fetched), and only of
        sources that fetch them in the same request.
        """
        if not getattr(self._source(0), "fetches_neighbours", False):
            return False
        fetched, read = self._neighbour_counts
        return fetched < _NEIGHBOURS_PROBATION or read >= _NEIGHBOURS_MIN_USE * fetched

    @property
    def _carries_neighbours(self) -> bool:
        """Whether the source's requests carry neighbours beside a read's
        frames at no further request (a ranged GET of an object)."""
        return bool(getattr(self._source(0), "carries_neighbours", False))

    def _beside(self, neighbours: Sequence[int], claimed: Collection[int]) -> list[int]:
        """The neighbours stored right before or after a claimed frame of
        the same instance: a ranged request of its run reaches them too."""
        own = {
            (int(self.part_of_frame[i]), int(self.local_numbers[i])) for i in claimed
        }
        return [
            i
            for i in neighbours
            if (int(self.part_of_frame[i]), int(self.local_numbers[i]) - 1) in own
            or (int(self.part_of_frame[i]), int(self.local_numbers[i]) + 1) in own
        ]

    def _claim_neighbours(
        self, neighbours: Sequence[int], claimed: dict[int, Future[np.ndarray]]
    ) -> dict[int, Future[np.ndarray]]:
        """Claim the neighbours that a read's requests can carry, within a
        quarter of the cache."""
        if not neighbours:
            return {}
        parts = {int(self.part_of_frame[index]) for index in claimed}
        wanted = [i for i in neighbours if int(self.part_of_frame[i]) in parts]
        _, extra, _ = self._claim(wanted[: self.background_limit])
        with self._pending_lock:
            self._unread_neighbours.update(extra)
            self._neighbour_counts[0] += len(extra)
        return extra

    def _note_read(self, indices: Sequence[int]) -> None:
        """Count the neighbours fetched earlier that a read asks for."""
        if not self._unread_neighbours:
            return
        with self._pending_lock:
            read = self._unread_neighbours.intersection(int(i) for i in indices)
            self._unread_neighbours -= read
            self._neighbour_counts[1] += len(read)
