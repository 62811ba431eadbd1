"""``(size, mtime_ns)`` of many files at once: the per-file check behind every cached load.

The dataset index cache (:mod:`detforge.data.cache`) is never stale because every load
``stat()``-s every image and label file and reuses a record only while both numbers match.
That makes the stat pass the floor of a cached load. :func:`stat_many` runs it in the
optional C helper :mod:`detforge.utils._cstat`, which releases the GIL for a whole chunk so
that the chunks run on all cores; without the helper (it is built at install time when a C
compiler is present, and never on Windows) it falls back to ``os.stat`` in a loop. Both give
identical numbers, so a cache written by one is valid for the other.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType

import numpy as np
from numpy.typing import NDArray

from detforge.utils.cpu import usable_cores

_REG = 0o100000
_FMT = 0o170000
_PROBE = 2048  # files stat-ed before deciding how many threads the rest gets
_SLOW_STAT_S = 50e-6  # per file: slower than this is remote or cold storage
_MIN_CHUNK = 4096  # fewer files than this per thread are not worth a thread


def _load_native() -> ModuleType | None:
    if os.name != "posix":
        return None
    try:
        from detforge.utils import _cstat
    except ImportError:
        return None
    return _cstat


_NATIVE = _load_native()


def native_available() -> bool:
    """Whether the C helper was built (see the module docstring)."""
    return _NATIVE is not None


def stat_many(
    paths: Sequence[str], *, threads: int | None = None, native: bool | None = None
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """``size (N,)`` in bytes and ``mtime_ns (N,)`` of each path, as ``os.stat`` (symlinks
    followed) gives them; ``-1`` in both where a path is missing, cannot be stat-ed (also a
    path ``os.stat`` rejects, such as one with a NUL) or is not a regular file. Relative paths
    resolve against the working directory.

    ``threads``: how many at once; by default the first files show the storage's speed and
    the rest gets one thread per core on local storage, more (to overlap the waits) on slow
    or remote storage. ``native``: force (``True``) or forbid (``False``) the C helper; by
    default it is used when built. Results never depend on either.
    """
    n = len(paths)
    size = np.full(n, -1, dtype=np.int64)
    mtime = np.full(n, -1, dtype=np.int64)
    use_native = _NATIVE is not None if native is None else native
    if use_native and _NATIVE is None:
        raise RuntimeError("detforge.utils._cstat was not built (no C compiler at install?)")
    run = _stat_native if use_native else _stat_python
    start = 0
    if threads is None:
        start = min(n, _PROBE)
        t0 = time.perf_counter()
        run(paths, 0, start, size, mtime)
        slow = start > 0 and time.perf_counter() - t0 > _SLOW_STAT_S * start
        cores = usable_cores()
        # without the C helper, threads only trade the GIL back and forth on fast storage
        threads = min(32, 4 * cores) if slow else (min(16, cores) if use_native else 1)
    threads = max(1, min(threads, -(-(n - start) // _MIN_CHUNK)))
    if threads == 1:
        run(paths, start, n, size, mtime)
        return size, mtime
    step = -(-(n - start) // threads)
    bounds = [(i, min(n, i + step)) for i in range(start, n, step)]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for _ in pool.map(lambda b: run(paths, b[0], b[1], size, mtime), bounds):
            pass
    return size, mtime


def _stat_python(
    paths: Sequence[str], lo: int, hi: int, size: NDArray[np.int64], mtime: NDArray[np.int64]
) -> None:
    st = os.stat
    for i in range(lo, hi):
        try:
            s = st(paths[i])
        except (OSError, ValueError):
            continue
        if s.st_mode & _FMT == _REG:
            size[i] = s.st_size
            mtime[i] = s.st_mtime_ns


_FS_ENCODING = sys.getfilesystemencoding()
_FS_ERRORS = sys.getfilesystemencodeerrors()


def _stat_native(
    paths: Sequence[str], lo: int, hi: int, size: NDArray[np.int64], mtime: NDArray[np.int64]
) -> None:
    assert _NATIVE is not None
    if hi <= lo:
        return
    chunk = paths[lo:hi]
    try:
        joined = "\0".join(chunk)
        blob = joined.encode(_FS_ENCODING, _FS_ERRORS) + b"\0"
    except (UnicodeEncodeError, TypeError):
        blob = b""  # a path os.stat cannot encode, or not a str: take the careful way
    if not blob or blob.count(b"\0") != hi - lo:  # a NUL inside a path: os.stat rejects it
        _stat_python(paths, lo, hi, size, mtime)
        return
    _NATIVE.stat_paths(blob, hi - lo, size[lo:hi], mtime[lo:hi])
