"""The per-file pass of :func:`detforge.formats.darknet.read_darknet`: stat every image, find
and stat its label file, and read the label files that are not cached.

A cached load must ``stat()`` every image and every label file (that is what keeps the index
cache from ever being stale), so this pass is the floor of a cached load; it is written to do
as little Python work per file as possible:

* label folders are worked out once per image folder, not per image: the three rules of
  :func:`~detforge.formats.darknet_labels.label_path_candidates` (same folder, ``/JPEGImages/``
  -> ``/labels/``, last ``/images/`` -> ``/labels/``) only rewrite the folder part of a path;
* a label folder whose candidates keep missing (negatives, or labels kept in a separate
  ``labels/`` tree) is listed once, and later candidates that are not in the listing are
  skipped without a failing ``stat``. A listing is used only where it is exact: a folder that
  answers a case-swapped name (case-insensitive file systems) and non-ASCII names (which such
  systems may normalise) are always ``stat``-ed;
* threads (``os.stat`` releases the GIL) are used only where the first files show slow
  storage, or when asked for with ``workers``.

Paths with a backslash (and every path on Windows) take the general per-path rules.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detforge.errors import DetforgeError
from detforge.formats.darknet_labels import label_path_candidates
from detforge.utils.progress import progress

LABEL_NONE, LABEL_SAME, LABEL_JPEG, LABEL_IMAGES = 0, 1, 2, 3
"""Which rule found an image's label file (``label_rule`` column)."""

_LIST_AFTER_MISSES = 32  # failed label stats in one folder before it is listed instead
_REG = 0o100000
_FMT = 0o170000


@dataclass
class FileStats:
    """Result of :func:`stat_images`; arrays are ``(N,)``, ``-1`` where a file is missing."""

    size: NDArray[np.int64]
    mtime_ns: NDArray[np.int64]
    label_paths: list[str]
    """Per image, its label file (``""``: none, a negative)."""
    label_rule: NDArray[np.int8]
    """Per image, ``LABEL_*``: which rule found the label file (for paths that take the
    general rules: 1 + the index among :func:`label_path_candidates`). With the image path it
    determines the label path, so the cache stores this instead of the path."""
    label_size: NDArray[np.int64]
    label_mtime_ns: NDArray[np.int64]


_PROBE = 2048  # files stat-ed in this thread before deciding whether threads would help
_PROBE_READS = 256  # likewise for label reads
_SLOW_READ_S = 100e-6  # per file read
_SLOW_STAT_S = 50e-6  # per image and label: slower than this is remote or cold storage


class _Folders:
    """Label folders per image folder, and listings of label folders that kept missing."""

    def __init__(self) -> None:
        self.candidates: dict[str, list[tuple[str, int]]] = {}
        self.listings: dict[str, frozenset[str] | None] = {}
        self.misses: dict[str, int] = {}

    def label_dirs(self, prefix: str) -> list[tuple[str, int]]:
        """``(folder prefix ending in '/', rule)`` to try for images whose path starts with
        ``prefix`` (the image's folder and its ``/``, or ``""``)."""
        got = self.candidates.get(prefix)
        if got is None:
            got = [(prefix, LABEL_SAME)]
            if "/JPEGImages/" in prefix:
                got.append((prefix.replace("/JPEGImages/", "/labels/", 1), LABEL_JPEG))
            if "/images/" in prefix:
                head, _, tail = prefix.rpartition("/images/")
                alt = f"{head}/labels/{tail}"
                if all(alt != d for d, _ in got):
                    got.append((alt, LABEL_IMAGES))
            self.candidates[prefix] = got
        return got

    def missed(self, folder: str) -> None:
        n = self.misses.get(folder, 0) + 1
        self.misses[folder] = n
        if n == _LIST_AFTER_MISSES:
            self.listings[folder] = _exact_listing(folder)


def _exact_listing(folder: str) -> frozenset[str] | None:
    """Names in ``folder`` (a prefix ending in ``/``, or ``""`` for the working directory);
    empty when it does not exist; ``None`` when membership would not be exact (unlistable,
    or a case-insensitive file system)."""
    try:
        names = frozenset(os.listdir(folder or "."))
    except (FileNotFoundError, NotADirectoryError):
        return frozenset()
    except OSError:
        return None
    for name in names:
        swapped = name.swapcase()
        if swapped != name and swapped not in names:
            try:
                os.lstat(folder + swapped)
            except OSError:
                return names  # case-sensitive
            return None  # the swapped name answers: case-insensitive
    return names  # no name has case: membership cannot be fooled by it


def _stat_chunk(
    paths: Sequence[str], folders: _Folders
) -> tuple[list[int], list[int], list[str], list[int], list[int], list[int]]:
    # the hot loop of a cached load: one or two stats per image and as little else as possible
    size: list[int] = []
    mtime: list[int] = []
    lpath: list[str] = []
    lrule: list[int] = []
    lsize: list[int] = []
    lmtime: list[int] = []
    add_size, add_mtime, add_lpath = size.append, mtime.append, lpath.append
    add_lrule, add_lsize, add_lmtime = lrule.append, lsize.append, lmtime.append
    st = os.stat
    listings = folders.listings
    by_dir: dict[str, list[tuple[str, int]]] = {}  # image folder -> its label folders
    general = os.sep != "/"
    for p in paths:
        try:
            s = st(p)
        except (OSError, ValueError):
            add_size(-1)
            add_mtime(-1)
        else:
            if s.st_mode & _FMT == _REG:
                add_size(s.st_size)
                add_mtime(s.st_mtime_ns)
            else:
                add_size(-1)
                add_mtime(-1)
        if general or "\\" in p:
            lp, lr, ls, lm = _find_label_general(p)
            add_lpath(lp)
            add_lrule(lr)
            add_lsize(ls)
            add_lmtime(lm)
            continue
        d, sep, name = p.rpartition("/")
        key = d if sep else "\0"  # "x.jpg" and "/x.jpg" both have d == ""
        cands = by_dir.get(key)
        if cands is None:
            cands = by_dir[key] = folders.label_dirs(d + sep)
        dot = name.rfind(".")
        if dot > 0 and name[0] != ".":
            lname = name[:dot] + ".txt"
        else:  # leading dots are not an extension (os.path.splitext)
            lname = os.path.splitext(name)[0] + ".txt"
        for folder, rule in cands:
            known = listings.get(folder)
            if known is not None and lname not in known and lname.isascii():
                continue
            lp = folder + lname
            try:
                s = st(lp)
            except (OSError, ValueError):
                folders.missed(folder)
                continue
            if s.st_mode & _FMT == _REG:
                add_lpath(lp)
                add_lrule(rule)
                add_lsize(s.st_size)
                add_lmtime(s.st_mtime_ns)
                break
        else:
            add_lpath("")
            add_lrule(LABEL_NONE)
            add_lsize(-1)
            add_lmtime(-1)
    return size, mtime, lpath, lrule, lsize, lmtime


def _find_label_general(image: str) -> tuple[str, int, int, int]:
    """``(label path, rule, size, mtime_ns)`` of the first candidate that is a file (rule:
    1 + its index among the candidates), else ``("", LABEL_NONE, -1, -1)``."""
    for k, cand in enumerate(label_path_candidates(image)):
        try:
            s = os.stat(cand)
        except (OSError, ValueError):
            continue
        if s.st_mode & _FMT == _REG:
            return cand, k + 1, s.st_size, s.st_mtime_ns
    return "", LABEL_NONE, -1, -1


def stat_images(paths: Sequence[str], workers: int | None = None) -> FileStats:
    """Size and mtime of every image and of its label file (see the module docstring).

    ``workers``: threads. By default the first files are stat-ed in this thread and threads
    (a few per core) are used for the rest only when those were slow (network or cold
    storage): on a warm local disk a ``stat`` takes microseconds and handing the GIL between
    threads costs more than it saves. Results do not depend on ``workers``.
    """
    n = len(paths)
    folders = _Folders()
    parts = []
    if workers is None:
        t0 = time.perf_counter()
        parts.append(_stat_chunk(paths[:_PROBE], folders))
        w = use_threads(time.perf_counter() - t0, min(n, _PROBE), _SLOW_STAT_S)
        rest = paths[_PROBE:]
    else:
        w, rest = max(1, workers), paths
    if w == 1:
        if len(rest) or not parts:
            parts.append(_stat_chunk(rest, folders))
    else:
        step = max(1024, -(-len(rest) // (4 * w)))
        chunks = [rest[i : i + step] for i in range(0, len(rest), step)]
        with ThreadPoolExecutor(max_workers=w) as pool:
            parts += pool.map(lambda c: _stat_chunk(c, folders), chunks)

    def col(k: int, dtype: type[np.generic]) -> NDArray[Any]:
        vals = parts[0][k] if len(parts) == 1 else [v for part in parts for v in part[k]]
        return np.array(vals, dtype=dtype).reshape(n)

    label_paths = parts[0][2] if len(parts) == 1 else [v for part in parts for v in part[2]]
    return FileStats(
        size=col(0, np.int64),
        mtime_ns=col(1, np.int64),
        label_paths=label_paths,
        label_rule=col(3, np.int8),
        label_size=col(4, np.int64),
        label_mtime_ns=col(5, np.int64),
    )


def _read_one(path: str, size: int) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise DetforgeError(f"cannot read label file: {exc.strerror}", path=path) from None
    try:
        want = max(size, 0) + 1  # one more than stat said, to see the end in one read
        data = os.read(fd, want)
        if len(data) == want:  # it grew since the stat: read the rest
            more = [data]
            while chunk := os.read(fd, 1 << 20):
                more.append(chunk)
            data = b"".join(more)
        return data
    except OSError as exc:
        raise DetforgeError(f"cannot read label file: {exc.strerror}", path=path) from None
    finally:
        os.close(fd)


def read_files(
    paths: Sequence[str],
    sizes: Sequence[int],
    *,
    workers: int | None = None,
    desc: str = "",
) -> list[bytes]:
    """The bytes of each file (``sizes`` from a stat: a hint for one read call).

    ``workers``: threads; by default the first files are read in this thread and threads are
    used for the rest only when those were slow (see :func:`use_threads`). Raises
    :class:`DetforgeError` for the first file (in order) that cannot be read. ``desc``:
    progress bar label (shown on a terminal), empty for none.
    """
    n = len(paths)
    bar = progress(range(n), total=n, desc=desc, unit="file", enabled=None if desc else False)
    out: list[bytes] = []
    start = 0
    if workers is None:
        t0 = time.perf_counter()
        start = min(n, _PROBE_READS)
        out = [_read_one(paths[i], sizes[i]) for i in range(start)]
        w = use_threads(time.perf_counter() - t0, start, _SLOW_READ_S)
    else:
        w = max(1, workers)
    step = max(256, -(-(n - start) // (4 * w)))
    bounds = [(i, min(n, i + step)) for i in range(start, n, step)]

    def chunk(b: tuple[int, int]) -> list[bytes]:
        return [_read_one(paths[i], sizes[i]) for i in range(b[0], b[1])]

    for _ in range(start):
        next(bar, None)
    with ThreadPoolExecutor(max_workers=w) if w > 1 else contextlib.nullcontext() as pool:
        for got in pool.map(chunk, bounds) if pool is not None else map(chunk, bounds):
            out += got
            for _ in got:
                next(bar, None)
    for _ in bar:  # close the bar
        pass
    return out


def use_threads(elapsed: float, count: int, slow: float) -> int:
    """Threads for the rest of a pass whose first ``count`` files took ``elapsed`` seconds:
    a few per core when they took over ``slow`` seconds each (network or cold storage, where
    threads overlap the waits), else 1 (on warm local storage threads only add GIL traffic:
    measured here, a cold load used 20-80% more CPU time with them and was no faster)."""
    cores = os.cpu_count() or 1
    return min(32, 4 * cores) if cores > 1 and count and elapsed > slow * count else 1
