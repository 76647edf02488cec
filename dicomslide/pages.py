"""Faulting in the memory of a new frame on an idle core.

A decoded frame goes into fresh memory while the frame cache fills. The
kernel maps that memory a page (4 KiB) at a time, on first write, so a decoder
that writes a 512 x 512 RGB frame stops for 192 page faults on the way. When a
read leaves a decoding thread idle, that thread can fault the pages in for the
decoder instead: Linux's ``madvise(MADV_POPULATE_WRITE)`` (kernel 5.14) maps
the pages of a range without writing to them, so it may run while the decoder
writes the same memory.

Memory that was used before (the allocator hands freed frames out again) is
mapped already; :func:`needs_faulting` tells it by asking the kernel whether
one page of the array is resident.

Elsewhere (no Linux, an older kernel) nothing is faulted in ahead and frames
decode as before.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import mmap
import os
import sys

import numpy as np

logger = logging.getLogger(__name__)

_MADV_POPULATE_WRITE = 23  # <linux/mman.h>
_PAGE = mmap.PAGESIZE

#: Smallest array worth faulting in from another thread: handing the work over
#: costs about as much as the faults of a few dozen pages (measured: a
#: 240 x 240 RGB frame gains nothing, a 512 x 512 one a third of its decode)
MIN_BYTES = 256 * 1024


def _load_libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    except (OSError, AttributeError) as error:
        logger.debug("cannot bind madvise/mincore: %s", error)
        return None
    return libc


_libc = _load_libc()


def _whole_pages(array: np.ndarray) -> tuple[int, int]:
    """First address and length of the pages that lie wholly in `array`."""
    address = array.ctypes.data
    start = -(-address // _PAGE) * _PAGE
    end = (address + array.nbytes) // _PAGE * _PAGE
    return start, max(end - start, 0)


def worth_faulting(nbytes: int) -> bool:
    """Whether an array of this size is worth faulting in from another thread.

    Parameters
    ----------
    nbytes: int
        Size of the array in bytes

    Returns
    -------
    bool
        True when the system supports it and the size is :data:`MIN_BYTES` or
        more

    """
    return _libc is not None and nbytes >= MIN_BYTES


def needs_faulting(array: np.ndarray) -> bool:
    """Whether the memory of a new array is still to be mapped.

    Parameters
    ----------
    array: numpy.ndarray
        A C-contiguous array just allocated

    Returns
    -------
    bool
        True when the last whole page of the array is not resident (memory
        used before is), and the system lets :func:`fault_in` map the pages

    """
    if _libc is None:
        return False
    start, length = _whole_pages(array)
    if length == 0:
        return False
    resident = ctypes.create_string_buffer(1)
    if _libc.mincore(start + length - _PAGE, _PAGE, resident) != 0:
        return False
    return not resident.raw[0] & 1


def fault_in(array: np.ndarray) -> None:
    """Map the pages of an array, leaving its contents as they are.

    Parameters
    ----------
    array: numpy.ndarray
        A C-contiguous array, which another thread may be writing

    """
    global _libc
    libc = _libc
    if libc is None:
        return
    start, length = _whole_pages(array)
    if length and libc.madvise(start, length, _MADV_POPULATE_WRITE) != 0:
        code = ctypes.get_errno()
        logger.debug("madvise(MADV_POPULATE_WRITE): %s", os.strerror(code))
        if code == errno.EINVAL:  # a kernel older than 5.14
            _libc = None
