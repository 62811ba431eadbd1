"""Stat or read many files at once: the per-file passes of every dataset load.

This is the one home of the numbers that tell a cached record from a stale one: size,
``st_mtime_ns`` and ``st_ctime_ns`` (:func:`stat_many` with ``ctime=True``). The caches
(:mod:`detforge.data.cache`, :mod:`detforge.check.resultcache`) are never stale because every
load ``stat()``-s every image and label file and reuses a record only while these numbers
match. The ctime is there because the mtime alone can lie: an edit that keeps the size and
sets the mtime back (``touch -d``, ``os.utime``, a copy tool that keeps times) leaves size and
mtime as they were, but no user can set the ctime, which every write moves (a ``chmod`` or a
copy moves it too: a harmless cache miss).

That makes the stat pass the floor of a cached load. :func:`stat_many` runs it in the
optional C helper :mod:`detforge.utils._cstat`, which releases the GIL for a whole chunk so
that the chunks run on all cores; without the helper (it is built at install time when a C
compiler is present, and never on Windows; one built from an older ``_cstat.c`` is not used)
it falls back to ``os.stat`` in a loop. Both give identical numbers, so a cache written by one
is valid for the other. :func:`read_many` reads the label files of a first (uncached) load
the same way.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Literal, overload

import numpy as np
from numpy.typing import NDArray

from detforge.utils.cpu import usable_cores

_REG = 0o100000
_FMT = 0o170000
_PROBE = 2048  # files stat-ed before deciding how many threads the rest gets
_SLOW_STAT_S = 50e-6  # per file: slower than this is remote or cold storage
_MIN_CHUNK = 4096  # fewer files than this per thread are not worth a thread
_PROBE_READS = 256  # likewise for reads
_SLOW_READ_S = 100e-6
_MIN_READ_CHUNK = 1024
_MAX_CALL = 16384  # items per call into the C helper

I64 = NDArray[np.int64]
Stamps = tuple[I64, I64, I64]
"""``(size, mtime_ns, ctime_ns)``, each ``(N,)``: :func:`stat_many` with ``ctime=True``."""


def _load_native() -> ModuleType | None:
    if os.name != "posix":
        return None
    try:
        from detforge.utils import _cstat
    except ImportError:
        return None
    empty = np.zeros(0, dtype=np.int64)
    try:  # a helper built from an older _cstat.c (no ctime_out): os.stat gives the answer
        _cstat.stat_paths(b"", 0, empty, empty, empty)
    except TypeError:
        return None
    return _cstat


_NATIVE = _load_native()


def native_available() -> bool:
    """Whether the C helper was built (see the module docstring)."""
    return _NATIVE is not None


@overload
def stat_many(
    paths: Sequence[str],
    *,
    threads: int | None = None,
    native: bool | None = None,
    ctime: Literal[False] = False,
) -> tuple[I64, I64]: ...


@overload
def stat_many(
    paths: Sequence[str],
    *,
    threads: int | None = None,
    native: bool | None = None,
    ctime: Literal[True],
) -> Stamps: ...


def stat_many(
    paths: Sequence[str],
    *,
    threads: int | None = None,
    native: bool | None = None,
    ctime: bool = False,
) -> tuple[I64, I64] | Stamps:
    """``size (N,)`` in bytes and ``mtime_ns (N,)`` of each path, and with ``ctime`` also
    ``ctime_ns (N,)`` (the inode change time, what every cache key needs: module docstring),
    as ``os.stat`` (symlinks followed) gives them; ``-1`` in each where a path is missing,
    cannot be stat-ed (also a path ``os.stat`` rejects, such as one with a NUL) or is not a
    regular file. Relative paths resolve against the working directory.

    ``threads``: how many at once; by default the first files show the storage's speed and
    the rest gets one thread per core on local storage, more (to overlap the waits) on slow
    or remote storage. ``native``: force (``True``) or forbid (``False``) the C helper; by
    default it is used when built. Results never depend on either.
    """
    n = len(paths)
    size = np.full(n, -1, dtype=np.int64)
    mtime = np.full(n, -1, dtype=np.int64)
    ctimes = np.full(n, -1, dtype=np.int64) if ctime else None
    use_native = _NATIVE is not None if native is None else native
    if use_native and _NATIVE is None:
        raise RuntimeError("detforge.utils._cstat was not built (no C compiler at install?)")
    stat = _stat_native if use_native else _stat_python
    # without the C helper, threads only trade the GIL back and forth on fast storage
    _in_chunks(
        n,
        lambda lo, hi: stat(paths, lo, hi, size, mtime, ctimes),
        threads=threads,
        fast_threads=min(16, usable_cores()) if use_native else 1,
        probe=_PROBE,
        slow_s=_SLOW_STAT_S,
        min_chunk=_MIN_CHUNK,
    )
    return (size, mtime) if ctimes is None else (size, mtime, ctimes)


def read_many(
    paths: Sequence[str], sizes: Sequence[int], *, threads: int | None = None
) -> list[bytes | None]:
    """The whole content of each file, read in the C helper on every core.

    ``sizes`` are the files' sizes from a stat just before (bytes). ``None`` where the caller
    must read the file itself: it could not be opened or read (the caller's own read then
    raises a clear error), it grew since the stat, or the C helper is not built (then every
    entry is ``None``). ``threads`` as in :func:`stat_many`.
    """
    caps = np.maximum(np.asarray(sizes, dtype=np.int64).reshape(-1), 0) + 1  # +1: sees growth
    return _read_slots(paths, caps, prefix=None, threads=threads)


def read_heads(
    paths: Sequence[str],
    nbytes: int,
    *,
    sizes: Sequence[int] | NDArray[np.int64] | None = None,
    threads: int | None = None,
) -> list[bytes | None]:
    """The first ``nbytes`` of each file (all of a shorter file), read in the C helper on
    every core; ``None`` where it could not be opened or read, or the helper is not built.
    ``sizes`` (from a stat just before) saves memory for small files; a file that grew since
    is ``None``."""
    nbytes = max(nbytes, 0)
    if sizes is None:
        caps = np.full(len(paths), nbytes, dtype=np.int64)
    else:
        caps = np.minimum(np.maximum(np.asarray(sizes, dtype=np.int64), 0) + 1, nbytes)
    return _read_slots(paths, caps.reshape(-1), prefix=nbytes, threads=threads)


def _read_slots(
    paths: Sequence[str], caps: NDArray[np.int64], *, prefix: int | None, threads: int | None
) -> list[bytes | None]:
    """Read at most ``caps[i]`` bytes of file ``i``. A file that fills its slot may be longer
    than expected and is ``None``, unless its slot is the wanted ``prefix`` length."""
    n = len(paths)
    out: list[bytes | None] = [None] * n
    if _NATIVE is None or n == 0:
        return out
    native = _NATIVE

    def read(lo: int, hi: int) -> None:
        blob = _encode_paths(paths, lo, hi)
        if blob is None:
            return  # left to the caller's careful path
        cap = np.ascontiguousarray(caps[lo:hi])
        starts = (np.cumsum(cap) - cap).astype(np.int64)
        buf = np.empty(int(cap.sum()), dtype=np.uint8)  # not zeroed: untouched pages stay free
        got = np.empty(hi - lo, dtype=np.int64)
        native.read_paths(blob, hi - lo, starts, cap, buf, got)
        view = buf.data  # a memoryview of the array
        slots = zip(starts.tolist(), got.tolist(), cap.tolist(), strict=True)
        for k, (s0, g, c) in enumerate(slots):
            if g >= 0 and (g < c or c == prefix):  # g < 0: an error; g == c: maybe more
                out[lo + k] = bytes(view[s0 : s0 + g])

    _in_chunks(
        n,
        read,
        threads=threads,
        fast_threads=min(16, usable_cores()),
        probe=_PROBE_READS,
        slow_s=_SLOW_READ_S,
        min_chunk=_MIN_READ_CHUNK,
    )
    return out


def _in_chunks(
    n: int,
    run: Callable[[int, int], None],
    *,
    threads: int | None,
    fast_threads: int,
    probe: int,
    slow_s: float,
    min_chunk: int,
) -> None:
    """Call ``run(lo, hi)`` over ``range(n)`` in chunks. With ``threads=None`` the first
    ``probe`` items run in this thread to time the storage: slower than ``slow_s`` each means
    remote or cold storage (a few threads per core overlap the waits), else ``fast_threads``."""
    start = 0
    if threads is None:
        start = min(n, probe)
        t0 = time.perf_counter()
        if start:
            run(0, start)
        slow = start > 0 and time.perf_counter() - t0 > slow_s * start
        threads = min(32, 4 * usable_cores()) if slow else fast_threads
    threads = max(1, min(threads, -(-(n - start) // min_chunk)))
    if n <= start:
        return
    # calls of at most _MAX_CALL items: Ctrl-C (seen between calls, the GIL being released
    # within one) then stops a pass over slow storage within one call per thread
    step = max(1, min(-(-(n - start) // threads), _MAX_CALL))
    bounds = [(i, min(n, i + step)) for i in range(start, n, step)]
    if threads == 1:
        for lo, hi in bounds:
            run(lo, hi)
        return
    pool = ThreadPoolExecutor(max_workers=threads)
    try:
        for _ in pool.map(lambda b: run(*b), bounds):
            pass
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _stat_python(
    paths: Sequence[str], lo: int, hi: int, size: I64, mtime: I64, ctime: I64 | None
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
            if ctime is not None:
                ctime[i] = s.st_ctime_ns


_FS_ENCODING = sys.getfilesystemencoding()
_FS_ERRORS = sys.getfilesystemencodeerrors()


def _encode_paths(paths: Sequence[str], lo: int, hi: int) -> bytes | None:
    """``paths[lo:hi]`` as NUL-terminated file-system bytes, or ``None`` where one cannot be
    passed to C (not a ``str``, not encodable, or holding a NUL)."""
    try:
        blob = "\0".join(paths[lo:hi]).encode(_FS_ENCODING, _FS_ERRORS) + b"\0"
    except (UnicodeEncodeError, TypeError):
        return None
    return blob if blob.count(b"\0") == hi - lo else None


def _stat_native(
    paths: Sequence[str], lo: int, hi: int, size: I64, mtime: I64, ctime: I64 | None
) -> None:
    assert _NATIVE is not None
    if hi <= lo:
        return
    blob = _encode_paths(paths, lo, hi)
    if blob is None:  # os.stat gives the right answer (-1, or the file) for such paths
        _stat_python(paths, lo, hi, size, mtime, ctime)
    elif ctime is None:
        _NATIVE.stat_paths(blob, hi - lo, size[lo:hi], mtime[lo:hi])
    else:
        _NATIVE.stat_paths(blob, hi - lo, size[lo:hi], mtime[lo:hi], ctime[lo:hi])
