"""The dataset index cache: per-file records that stay valid while a file's stat numbers do.

Every record is keyed by the file's path and is used only while ``(size, mtime_ns, ctime_ns)``
from ``os.stat`` still match what was stored, so the cache is never stale (unlike a hash of
summed sizes; why the ctime too: :mod:`detforge.utils.filestat`, the one home of these
numbers). Tables live in the cache folder -- ``$DETFORGE_CACHE``, else
``$XDG_CACHE_HOME/detforge``, else ``~/.cache/detforge`` -- never in the user's dataset folder;
when the cache folder cannot be written the cache is silently skipped.

One cache file holds one table for one ``(source, kind)``: ``kind`` names the producer
(``"darknet"`` for :func:`detforge.formats.darknet.read_darknet`, ``"check"`` for the checker's
per-file results...). A table has fixed columns (one value, or a fixed-shape row, per file) and
ragged columns (a variable number of rows per file, e.g. the boxes of a label file)::

    cache = FileIndexCache.for_source(source, kind="check")
    size, mtime, ctime = stat_many(paths, ctime=True)       # detforge.utils.filestat
    rows, fresh = cache.lookup(paths, size, mtime, ctime)   # rows into the table, (N,) bool
    old = cache.column("width")[rows[fresh]]                # reuse fresh records ...
    cache.store(paths, size, mtime, ctime, columns={...}, ragged={...})  # ... save the table

Files are ``.npz`` (``allow_pickle=False``), written atomically.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detforge.utils.io import atomic_open

CACHE_VERSION = 2  # in every file name: a table of another layout is never read (2: ctime)
_SEP = "\0"  # cannot occur in a path


def default_cache_dir() -> Path:
    """``$DETFORGE_CACHE``, else ``$XDG_CACHE_HOME/detforge``, else ``~/.cache/detforge``."""
    env = os.environ.get("DETFORGE_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "detforge"


def encode_strings(values: Sequence[str]) -> NDArray[np.uint8]:
    """Pack strings into one byte array (for ``.npz`` without pickle)."""
    return np.frombuffer(_encode(values), dtype=np.uint8)


def _encode(values: Sequence[str]) -> bytes:
    return _SEP.join(values).encode("utf-8", "surrogateescape")


def _is_arange(rows: NDArray[np.int64]) -> bool:
    return bool(rows[0] == 0) and bool((np.diff(rows) == 1).all())


def decode_strings(blob: NDArray[np.uint8], n: int) -> list[str]:
    """Inverse of :func:`encode_strings` for ``n`` strings."""
    if n == 0:
        return []
    return blob.tobytes().decode("utf-8", "surrogateescape").split(_SEP)


def gather_ragged(
    values: NDArray[Any], counts: NDArray[np.int64], rows: NDArray[np.int64]
) -> tuple[NDArray[Any], NDArray[np.int64]]:
    """Rows ``rows`` of a ragged column (``values`` stacked, ``counts (N,)`` per file).

    Returns the selected ``values`` (concatenated in ``rows`` order) and their ``counts``.
    """
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    c = counts[rows]
    total = int(c.sum())
    if total == 0:
        return values[:0], c
    # index = start of each selected row repeated, plus 0..count-1 within the row
    first = np.repeat(starts[rows], c)
    within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(c) - c, c)
    return values[first + within], c


class FileIndexCache:
    """One cached table of per-file records (see the module docstring for the workflow)."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self._n = 0
        self._paths: list[str] | None = []
        self._paths_blob: bytes = b""  # the stored paths, encoded (decoded only when needed)
        self.size = np.zeros(0, dtype=np.int64)
        self.mtime_ns = np.zeros(0, dtype=np.int64)
        self.ctime_ns = np.zeros(0, dtype=np.int64)
        """``-1`` where a table was stored without ctimes (never fresh for a lookup with)."""
        self._columns: dict[str, NDArray[Any]] = {}
        self._ragged: dict[str, tuple[NDArray[Any], NDArray[np.int64]]] = {}
        self._strings: dict[str, list[str]] = {}
        self._load()

    @classmethod
    def for_source(
        cls, source: str | os.PathLike[str], *, kind: str, cache_dir: Path | None = None
    ) -> FileIndexCache:
        """The cache table of ``kind`` for the dataset at ``source`` (any path naming it)."""
        key = os.path.abspath(os.fspath(source))
        digest = hashlib.sha1(key.encode("utf-8", "surrogateescape")).hexdigest()[:20]
        base = default_cache_dir() if cache_dir is None else Path(cache_dir)
        return cls(base / f"{kind}-v{CACHE_VERSION}-{digest}.npz")

    # ------------------------------------------------------------------ reading
    def _load(self) -> None:
        """Read the table; a damaged file (cut off by a crash, overwritten, of another
        version) is treated as empty, noted in :attr:`damaged`, and rebuilt by the next
        :meth:`store`."""
        self.damaged: str | None = None
        if not self.file.exists():
            return
        try:
            with np.load(self.file, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
            self._adopt(data)
        except Exception as exc:
            self._n, self._paths, self._paths_blob = 0, [], b""
            self.size = np.zeros(0, dtype=np.int64)
            self.mtime_ns = np.zeros(0, dtype=np.int64)
            self.ctime_ns = np.zeros(0, dtype=np.int64)
            self._columns, self._ragged, self._strings = {}, {}, {}
            self.damaged = f"the cache file {self.file} was damaged ({type(exc).__name__}); rebuilt"

    def _adopt(self, data: dict[str, NDArray[Any]]) -> None:
        """Take over a loaded table after checking that its parts fit together."""
        n = int(data.pop("__n__"))
        blob = data.pop("__paths__")
        stamps = [data.pop(k) for k in ("__size__", "__mtime__", "__ctime__")]
        size, mtime, ctime = stamps
        if n < 0 or any(a.shape != (n,) for a in stamps) or blob.dtype != np.uint8:
            raise ValueError("inconsistent table")
        if any(a.dtype != np.int64 for a in stamps):
            raise ValueError("wrong column types")
        columns, strings, ragged = {}, {}, {}
        for k, v in data.items():
            kind, _, name = k.partition(":")
            if kind == "c":
                if v.ndim == 0 or len(v) != n or v.dtype.kind not in "biuf":
                    raise ValueError(f"column {name} does not fit")
                columns[name] = v
            elif kind == "s":
                strings[name] = decode_strings(v, n)
                if len(strings[name]) != n:
                    raise ValueError(f"strings {name} do not fit")
            elif kind == "rv":
                counts = data["rc:" + name]
                if counts.shape != (n,) or (counts < 0).any() or int(counts.sum()) != len(v):
                    raise ValueError(f"ragged column {name} does not fit")
                ragged[name] = (v, counts)
        raw = blob.tobytes()
        if n and raw.count(_SEP.encode()) != n - 1:
            raise ValueError("paths do not fit")
        self._paths_blob = raw
        self._n, self._paths = n, None
        self.size, self.mtime_ns, self.ctime_ns = size, mtime, ctime
        self._columns, self._strings, self._ragged = columns, strings, ragged

    @property
    def paths(self) -> list[str]:
        """The stored paths (row order)."""
        if self._paths is None:
            blob = np.frombuffer(self._paths_blob, dtype=np.uint8)
            self._paths = decode_strings(blob, self._n)
        return self._paths

    def __len__(self) -> int:
        return self._n

    def lookup(
        self,
        paths: Sequence[str],
        size: NDArray[np.int64],
        mtime_ns: NDArray[np.int64],
        ctime_ns: NDArray[np.int64] | None = None,
    ) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        """Match ``paths`` against the stored table.

        Returns ``rows (N,)`` (index into the stored table, ``-1`` when absent) and
        ``fresh (N,)``: stored, and stored size, mtime and ctime equal ``size``/``mtime_ns``/
        ``ctime_ns`` (missing files, ``-1``, are never fresh). Pass ``ctime_ns``
        (:func:`~detforge.utils.filestat.stat_many` with ``ctime=True``): without it a
        same-size edit whose mtime was set back is taken for unchanged.
        """
        n = len(paths)
        if n == self._n and _encode(paths) == self._paths_blob:
            rows = np.arange(n, dtype=np.int64)  # the same paths in the same order: no dict
        else:
            index = {p: i for i, p in enumerate(self.paths)}
            rows = np.fromiter((index.get(p, -1) for p in paths), dtype=np.int64, count=n)
        fresh = rows >= 0
        if self._n:
            r = np.where(fresh, rows, 0)
            fresh &= (self.size[r] == size) & (self.mtime_ns[r] == mtime_ns) & (size >= 0)
            if ctime_ns is not None:
                fresh &= (self.ctime_ns[r] == ctime_ns) & (ctime_ns >= 0)
        return rows, fresh

    def column(self, name: str) -> NDArray[Any]:
        """A stored fixed column, ``(len(self), ...)``; ``KeyError`` when absent."""
        return self._columns[name]

    def strings(self, name: str) -> list[str]:
        """A stored string column."""
        return self._strings[name]

    def ragged(self, name: str, rows: NDArray[np.int64]) -> tuple[NDArray[Any], NDArray[np.int64]]:
        """Values and per-row counts of a stored ragged column for ``rows``."""
        values, counts = self._ragged[name]
        if len(rows) == len(counts) and (len(rows) == 0 or _is_arange(rows)):
            return values, counts  # every row, in order
        return gather_ragged(values, counts, rows)

    def has(self, name: str) -> bool:
        return name in self._columns or name in self._ragged or name in self._strings

    # ------------------------------------------------------------------ writing
    def store(
        self,
        paths: Sequence[str],
        size: NDArray[np.int64],
        mtime_ns: NDArray[np.int64],
        ctime_ns: NDArray[np.int64] | None = None,
        *,
        columns: Mapping[str, NDArray[Any]] | None = None,
        strings: Mapping[str, Sequence[str]] | None = None,
        ragged: Mapping[str, tuple[NDArray[Any], NDArray[np.int64]]] | None = None,
    ) -> bool:
        """Replace the table with these records and write it (atomically).

        ``size``, ``mtime_ns``, ``ctime_ns``: each file's stat numbers, made before its
        content was read (a file edited since then is not fresh next time); without
        ``ctime_ns`` the records are stored with ``-1`` there, never fresh for a
        :meth:`lookup` that gives ctimes.
        ``columns``: name -> ``(N, ...)`` numeric array; ``strings``: name -> ``N`` strings;
        ``ragged``: name -> ``(values (T, ...), counts (N,))``. Returns False (and keeps the
        in-memory table) when the cache folder cannot be written.
        """
        n = len(paths)
        blob = _encode(paths)
        arrays: dict[str, NDArray[Any]] = {
            "__n__": np.asarray(n, dtype=np.int64),
            "__paths__": np.frombuffer(blob, dtype=np.uint8),
            "__size__": np.asarray(size, dtype=np.int64),
            "__mtime__": np.asarray(mtime_ns, dtype=np.int64),
            "__ctime__": (
                np.full(n, -1, dtype=np.int64)
                if ctime_ns is None
                else np.asarray(ctime_ns, dtype=np.int64)
            ),
        }
        if any(arrays[k].shape != (n,) for k in ("__size__", "__mtime__", "__ctime__")):
            raise ValueError("store: one size, mtime and ctime per path")
        for k, v in (columns or {}).items():
            arrays["c:" + k] = np.asarray(v)
        for k, s in (strings or {}).items():
            arrays["s:" + k] = encode_strings(s)
        for k, (vals, counts) in (ragged or {}).items():
            arrays["rv:" + k] = np.asarray(vals)
            arrays["rc:" + k] = np.asarray(counts, dtype=np.int64)
        self._n, self._paths, self._paths_blob = n, list(paths), blob
        self.size, self.mtime_ns = arrays["__size__"], arrays["__mtime__"]
        self.ctime_ns = arrays["__ctime__"]
        self._columns = {k[2:]: v for k, v in arrays.items() if k.startswith("c:")}
        self._strings = {k: list(s) for k, s in (strings or {}).items()}
        self._ragged = {k: (arrays["rv:" + k], arrays["rc:" + k]) for k in (ragged or {})}
        try:
            with atomic_open(self.file, "wb") as f:
                np.savez(f, **arrays)  # type: ignore[arg-type]
        except OSError:
            return False
        return True

    def clear(self) -> None:
        """Delete the cache file."""
        with contextlib.suppress(OSError):
            self.file.unlink()
