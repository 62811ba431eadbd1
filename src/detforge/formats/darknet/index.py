"""The per-file pass of :func:`detforge.formats.darknet.read_darknet`: stat every image, find
and stat its label file, and read the label files that are not cached.

A cached load must ``stat()`` every image and every label file (that is what keeps the index
cache from ever being stale), so this pass is the floor of a cached load. It is built to do
as little per-file Python work as possible around batched stats
(:func:`~detforge.utils.filestat.stat_many`, which runs them in C on every core when the
optional helper is built):

* label folders are worked out once per image folder, not per image: the three rules of
  :func:`~detforge.formats.darknet.labels.label_path_candidates` (same folder, ``/JPEGImages/``
  -> ``/labels/``, last ``/images/`` -> ``/labels/``) only rewrite the folder part of a path,
  so each rule is one batch of ``folder + name`` candidates for the images not found yet;
* a folder tried for many images whose first candidates all miss (negatives, or labels kept
  in a separate ``labels/`` tree) is listed once, and the candidates that are not in the
  listing are skipped without a failing ``stat``. A listing is used only where it is exact:
  a folder that answers a case-swapped name (case-insensitive file systems) and non-ASCII
  names (which such systems may normalise) are always ``stat``-ed.

Paths with a backslash (and every path on Windows) take the general per-path rules.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from detforge.errors import DetforgeError
from detforge.formats.darknet.labels import label_path_candidates
from detforge.utils.cpu import usable_cores
from detforge.utils.filestat import Stamps, native_available, read_many, stat_many
from detforge.utils.progress import progress

LABEL_NONE, LABEL_SAME, LABEL_JPEG, LABEL_IMAGES = 0, 1, 2, 3
"""Which rule found an image's label file (``label_rule`` column)."""

_LIST_AFTER_MISSES = 32  # candidates probed in a folder before it may be listed instead


def _unstated() -> NDArray[np.int64]:
    return np.zeros(0, dtype=np.int64)


@dataclass
class FileStats:
    """Result of :func:`stat_images`; arrays are ``(N,)``, ``-1`` where a file is missing.

    A record of the index cache is fresh only while ``size``, ``mtime_ns`` and ``ctime_ns``
    (and the ``label_*`` ones) all match (why the ctime: :mod:`detforge.utils.filestat`).
    Made without the ctimes (by hand), those are ``-1``: no cache record is fresh for them."""

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
    ctime_ns: NDArray[np.int64] = field(default_factory=_unstated)
    label_ctime_ns: NDArray[np.int64] = field(default_factory=_unstated)

    def __post_init__(self) -> None:
        n = len(self.size)
        for name in ("ctime_ns", "label_ctime_ns"):
            got = getattr(self, name)
            if len(got) == 0 and n:
                setattr(self, name, np.full(n, -1, dtype=np.int64))
            elif len(got) != n:
                raise ValueError(f"FileStats: {name} has {len(got)} entries for {n} images")


_PROBE_READS = 256  # files read in this thread before deciding whether threads would help
_NATIVE_READ_CHUNK = 32768  # label files read (in C) between progress-bar updates
_SLOW_READ_S = 100e-6  # per file read


def stat_images(paths: Sequence[str], workers: int | None = None) -> FileStats:
    """Size, mtime and ctime of every image and of its label file (see the module docstring).

    ``workers``: threads for the stat passes (see :func:`~detforge.utils.filestat.stat_many`:
    by default the first files show the storage's speed). Results do not depend on it.
    """
    size, mtime, ctime = stat_many(paths, threads=workers, ctime=True)
    found = _LabelSearch(len(paths))
    plan = _Plan(paths)
    listings: dict[str, frozenset[str] | None] = {}  # folder -> _exact_listing, once each
    for r in range(3):
        todo, dirs = plan.round(r)
        if len(todo):
            _stat_round(found, plan, r, todo, dirs, workers, listings)
    if plan.general:
        _find_labels_general(found, paths, plan.general, workers)
    _refuse_unreadable_labels(found, plan, paths, size, listings)
    return FileStats(
        size=size,
        mtime_ns=mtime,
        label_paths=found.paths,
        label_rule=found.rule,
        label_size=found.size,
        label_mtime_ns=found.mtime,
        ctime_ns=ctime,
        label_ctime_ns=found.ctime,
    )


class _LabelSearch:
    """Per image, the label file found so far (``""`` / ``LABEL_NONE`` / ``-1``: none yet)."""

    def __init__(self, n: int) -> None:
        self.paths = [""] * n
        self.rule = np.zeros(n, dtype=np.int8)
        self.size = np.full(n, -1, dtype=np.int64)
        self.mtime = np.full(n, -1, dtype=np.int64)
        self.ctime = np.full(n, -1, dtype=np.int64)

    def record(
        self,
        idx: NDArray[np.int64],
        paths: list[str],
        stamps: Stamps,
        rule: NDArray[np.int8] | int,
    ) -> None:
        """Take the candidates ``paths`` (of images ``idx``, found by ``rule``) that are
        files (``stamps``: their size, mtime and ctime)."""
        size, mtime, ctime = stamps
        ok = size >= 0
        at = idx.tolist()
        for k in np.flatnonzero(ok).tolist():
            self.paths[at[k]] = paths[k]
        hit = idx[ok]
        self.rule[hit] = rule if isinstance(rule, int) else rule[ok]
        self.size[hit] = size[ok]
        self.mtime[hit] = mtime[ok]
        self.ctime[hit] = ctime[ok]


class _Plan:
    """Label-file candidates of the images as ``folder + name``: the three rules of
    :func:`~detforge.formats.darknet.labels.label_path_candidates` (same folder,
    ``/JPEGImages/`` -> ``/labels/``, last ``/images/`` -> ``/labels/``) only rewrite an
    image's folder, so candidate folders are worked out once per image folder. Paths with a
    backslash (every path on Windows) are left to the general rules (``general``)."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.names: list[str] = []
        """Per image: its label file's name (``""`` for the general rules)."""
        self.folders: list[list[tuple[str, int]]] = []
        """Per image folder id: ``(label folder, LABEL_* rule)`` to try, in order."""
        self.general: list[int] = []
        """Images that take the general per-path rules."""
        dir_of: list[int] = []
        ids: dict[str, int] = {}
        add_name, add_dir, splitext = self.names.append, dir_of.append, os.path.splitext
        slash_only = os.sep == "/"
        for i, p in enumerate(paths):
            if not slash_only or "\\" in p:
                self.general.append(i)
                add_dir(-1)
                add_name("")
                continue
            d, sep, name = p.rpartition("/")
            prefix = d + sep  # "x.jpg" -> "", "/x.jpg" -> "/"
            did = ids.get(prefix)
            if did is None:
                did = ids[prefix] = len(self.folders)
                self.folders.append(_label_dirs(prefix))
            add_dir(did)
            dot = name.rfind(".")
            if dot > 0 and name[0] != ".":
                add_name(name[:dot] + ".txt")
            else:  # leading dots are not an extension (os.path.splitext)
                add_name(splitext(name)[0] + ".txt")
        self.dir_of = np.asarray(dir_of, dtype=np.int64)
        """Per image: its image folder's id (``-1``: general rules)."""

    def round(self, r: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Images that have an ``r``-th (0-based) candidate folder, and their folder ids."""
        has = np.array([len(c) > r for c in self.folders] + [False], dtype=bool)
        todo = np.flatnonzero(has[self.dir_of])  # dir_of -1 (general) reads the last: False
        return todo, self.dir_of[todo]


def _label_dirs(prefix: str) -> list[tuple[str, int]]:
    """``(label folder, LABEL_* rule)`` to try, in order, for the images in ``prefix`` (a
    folder ending in ``/``, or ``""``)."""
    got = [(prefix, LABEL_SAME)]
    if "/JPEGImages/" in prefix:
        got.append((prefix.replace("/JPEGImages/", "/labels/", 1), LABEL_JPEG))
    if "/images/" in prefix:
        head, _, tail = prefix.rpartition("/images/")
        alt = f"{head}/labels/{tail}"
        if all(alt != d for d, _ in got):
            got.append((alt, LABEL_IMAGES))
    return got


def _stat_round(
    found: _LabelSearch,
    plan: _Plan,
    r: int,
    todo: NDArray[np.int64],
    dirs: NDArray[np.int64],
    workers: int | None,
    listings: dict[str, frozenset[str] | None],
) -> None:
    """Stat the ``r``-th candidates of the images ``todo`` (in image folders ``dirs``) that
    are not found yet (``listings``: folder listings made so far, added to).

    A label folder tried for many images whose first candidates all miss (negatives, or
    labels kept in a ``labels/`` tree) is listed once, and its candidates that are not in the
    listing are not stat-ed. A listing is used only where it is exact (see
    :func:`_exact_listing`); non-ASCII names, which case-insensitive systems may normalise,
    are always stat-ed.
    """
    still = found.size[todo] < 0
    todo, dirs = todo[still], dirs[still]
    if not len(todo):
        return
    # group by image folder (each has one r-th label folder); rank within, in image order
    order = np.argsort(dirs, kind="stable")
    counts = np.bincount(dirs, minlength=len(plan.folders))
    starts = np.cumsum(counts) - counts
    rank = np.empty(len(dirs), dtype=np.int64)
    rank[order] = np.arange(len(dirs)) - np.repeat(starts, counts)
    big = counts >= 2 * _LIST_AFTER_MISSES
    probe = big[dirs] & (rank < _LIST_AFTER_MISSES)
    rest = ~probe
    if probe.any():
        at = np.flatnonzero(probe)
        got = _stat_candidates(found, plan, r, todo[at], dirs[at], workers)
        hits = np.bincount(dirs[at], weights=got >= 0, minlength=len(plan.folders))
        for u in np.flatnonzero(big & (hits == 0)).tolist():
            listing = _listing(listings, plan.folders[u][r][0])
            if listing is None:
                continue
            names = plan.names
            for k in order[starts[u] : starts[u] + counts[u]].tolist():
                name = names[int(todo[k])]
                if rest[k] and name not in listing and name.isascii():
                    rest[k] = False  # not in the folder: no stat needed
    at = np.flatnonzero(rest)
    if len(at):
        _stat_candidates(found, plan, r, todo[at], dirs[at], workers)


def _stat_candidates(
    found: _LabelSearch,
    plan: _Plan,
    r: int,
    idx: NDArray[np.int64],
    dirs: NDArray[np.int64],
    workers: int | None,
) -> NDArray[np.int64]:
    """Stat the ``r``-th candidates of images ``idx`` (in image folders ``dirs``) and record
    the files found; returns the sizes (``-1``: not a file)."""
    table = [c[r] if len(c) > r else ("", LABEL_NONE) for c in plan.folders]
    names = plan.names
    paths = [table[d][0] + names[i] for d, i in zip(dirs.tolist(), idx.tolist(), strict=True)]
    rules = np.array([rule for _, rule in table], dtype=np.int8)[dirs]
    stamps = stat_many(paths, threads=workers, ctime=True)
    found.record(idx, paths, stamps, rules)
    return stamps[0]


def _find_labels_general(
    found: _LabelSearch, images: Sequence[str], general: list[int], workers: int | None
) -> None:
    """Paths with a backslash (every path on Windows) take the per-path candidate rules;
    the rule recorded is 1 + the index among :func:`label_path_candidates`."""
    cands = {i: label_path_candidates(images[i]) for i in general}
    for r in range(3):
        idx = [i for i in general if len(cands[i]) > r and found.size[i] < 0]
        if idx:
            paths = [cands[i][r] for i in idx]
            stamps = stat_many(paths, threads=workers, ctime=True)
            found.record(np.asarray(idx, dtype=np.int64), paths, stamps, r + 1)


def _refuse_unreadable_labels(
    found: _LabelSearch,
    plan: _Plan,
    paths: Sequence[str],
    image_size: NDArray[np.int64],
    listings: dict[str, frozenset[str] | None],
) -> None:
    """A :class:`DetforgeError` naming the first label file (images in order) that exists but
    is not a readable regular file: a folder, a FIFO or device, a symbolic link to nothing or
    to itself. The stat pass counts such a candidate as absent, which would read its image as
    a silent negative. Only the candidates of existing images left without a label file are
    looked at, by ``lstat`` (which opens nothing, so a FIFO cannot block) or in the folder's
    listing: one the stat pass made, or a new one where many of the folder's images are
    negatives (a listing costs about a fifth of an ``lstat`` per name in the folder)."""
    neg = np.flatnonzero((found.rule == LABEL_NONE) & (image_size >= 0)).tolist()
    if not neg:
        return
    cands: list[tuple[str, str]] = []  # (folder prefix, name); prefix "" with a whole path
    for i in neg:
        d = int(plan.dir_of[i])
        if d < 0:
            cands += [("", c) for c in label_path_candidates(paths[i])]
        else:
            cands += [(folder, plan.names[i]) for folder, _ in plan.folders[d]]
    misses: dict[str, int] = {}
    for folder, _ in cands:
        misses[folder] = misses.get(folder, 0) + 1
    tried: dict[str, int] = {}  # label folder -> images whose candidates it holds
    per_dir = np.bincount(plan.dir_of[plan.dir_of >= 0], minlength=len(plan.folders))
    for d, count in enumerate(per_dir.tolist()):
        for folder, _ in plan.folders[d]:
            tried[folder] = tried.get(folder, 0) + count
    for folder, name in cands:
        many = misses[folder] >= _LIST_AFTER_MISSES and 3 * misses[folder] >= tried.get(folder, 0)
        if folder and name.isascii() and (folder in listings or many):
            listing = _listing(listings, folder)
            if listing is not None and name not in listing:
                continue  # absent: the usual negative
        path = folder + name
        why = _unreadable_reason(path)
        if why is not None:
            raise DetforgeError(
                f"cannot read label file: {why}; fix or remove it, or its image would be read "
                "as unlabelled ('detforge check' lists every such file)",
                path=path,
            )


def _listing(listings: dict[str, frozenset[str] | None], folder: str) -> frozenset[str] | None:
    """:func:`_exact_listing` of ``folder``, listed once per load (kept in ``listings``)."""
    if folder not in listings:
        listings[folder] = _exact_listing(folder)
    return listings[folder]


def _unreadable_reason(path: str) -> str | None:
    """Why the label file ``path`` cannot be read, or ``None`` when nothing is there (or a
    regular file is, after all). Only stats: a FIFO is never opened."""
    try:
        os.lstat(path)
    except (OSError, ValueError):
        return None  # absent (or unreachable, which the stat pass also saw as absent)
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return f"it is a symbolic link that leads to no file ({exc.strerror})"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "it is a folder, not a file"
    return "it is not a regular file (a pipe, socket or device)"


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
    if native_available():  # read in C on every core, a chunk at a time for the progress bar
        got: list[bytes] = []
        for lo in range(0, n, _NATIVE_READ_CHUNK):
            hi = min(n, lo + _NATIVE_READ_CHUNK)
            fast = read_many(paths[lo:hi], sizes[lo:hi], threads=workers)
            for i, b in enumerate(fast, lo):  # None: read here, with its clear error
                got.append(b if b is not None else _read_one(paths[i], sizes[i]))
                next(bar, None)
        for _ in bar:  # close the bar
            pass
        return got
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
    cores = usable_cores()
    return min(32, 4 * cores) if cores > 1 and count and elapsed > slow * count else 1
