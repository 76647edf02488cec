"""The thread pools that every frame store shares, and who is busy.

Frames are decoded by the thread that reads them and by one process-wide pool
of :data:`WORKERS` threads (the codecs release the GIL). :data:`busy` counts
the threads at work for dicomslide now, readers decoding their frames and pool
tasks of all stores alike, so that a read asks the pool for help only while
threads are idle. Fetching frames in the background (read-ahead, the
neighbours of a read) and the concurrent requests of a large DICOMweb read
wait on the network, not on a core: they run in a separate pool
(:func:`submit_io`, :func:`io_executor`) of
:attr:`dicomslide.transport.WebSettings.connections` threads, which is not
counted as busy. A forked child starts with no pools and nobody busy: threads
do not survive ``fork()``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

#: Threads that decode at once: the pool's size, and the readers' share
WORKERS = os.cpu_count() or 2

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()
_io: ThreadPoolExecutor | None = None
_io_size = 0


class Busy:
    """Counts the threads at work for dicomslide; ``with busy:`` counts one."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Count nobody: in a forked child, the threads that were busy are gone."""
        self.count = 0
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        with self._lock:
            self.count += 1

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self.count -= 1


#: The threads at work for dicomslide now
busy = Busy()


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=WORKERS, thread_name_prefix="dicomslide-decode"
            )
        return _executor


def _counted(task: Callable[..., object], *args: Any) -> None:
    with busy:
        task(*args)


def submit(task: Callable[..., object], *args: Any) -> None:
    """Run a task in the decode pool, counted as busy while it runs.

    Parameters
    ----------
    task: Callable[..., object]
        Function to call
    *args: Any
        Its arguments

    Raises
    ------
    RuntimeError
        When the pool is shut down (the interpreter exits)

    """
    _pool().submit(_counted, task, *args)


def io_executor() -> ThreadPoolExecutor:
    """The pool of threads that wait on the network (or on storage).

    Its size is :attr:`dicomslide.transport.WebSettings.connections`, read
    when the pool is made (again after the setting changes).

    Returns
    -------
    concurrent.futures.ThreadPoolExecutor
        The pool

    """
    global _io, _io_size
    from dicomslide.transport import settings  # the HTTP stack loads lazily

    size = max(1, settings.connections)
    with _executor_lock:
        if _io is None or _io_size != size:
            if _io is not None:
                _io.shutdown(wait=False)  # its running tasks finish
            _io = ThreadPoolExecutor(size, thread_name_prefix="dicomslide-io")
            _io_size = size
        return _io


def submit_io(task: Callable[..., object], *args: Any) -> None:
    """Run a task that waits on I/O in the I/O pool (not counted as busy).

    Parameters
    ----------
    task: Callable[..., object]
        Function to call
    *args: Any
        Its arguments

    Raises
    ------
    RuntimeError
        When the pool is shut down (the interpreter exits)

    """
    io_executor().submit(task, *args)


def in_io_thread() -> bool:
    """Whether the calling thread is one of the I/O pool's.

    Returns
    -------
    bool
        True in a thread of :func:`io_executor` (which must not wait for
        other tasks of its own pool)

    """
    return threading.current_thread().name.startswith("dicomslide-io")


def _forget_pool_after_fork() -> None:
    global _executor, _executor_lock, _io, _io_size
    _executor = None
    _io = None
    _io_size = 0
    _executor_lock = threading.Lock()
    busy.reset()


os.register_at_fork(after_in_child=_forget_pool_after_fork)
