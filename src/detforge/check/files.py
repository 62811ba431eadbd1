"""Per-file reads for the checker, backed by the dataset index cache.

Image header results (:class:`~detforge.check.images.ImageInfo`, with a content digest) and
label file contents are stored per path in two tables of
:class:`detforge.data.cache.FileIndexCache` (kinds ``check-images`` and ``check-labels``) and
reused while the file's size, mtime and ctime are unchanged (why the ctime:
:mod:`detforge.utils.filestat`): a re-check of an unchanged dataset costs one ``stat`` per
file, and the tables are rewritten only when something changed. Every stored stat was made
before the content it vouches for was read (a ``stat`` before, or the ``fstat`` of the read),
so a file written meanwhile is read again next time.

Label files are located from folder listings (one ``listdir`` per folder instead of a ``stat``
per candidate path) with the rules of :func:`detforge.formats.darknet.label_path_candidates`.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from detforge.check.dataset import file_digest
from detforge.check.findings import RULES_VERSION, Finding, finding
from detforge.check.images import ImageInfo, inspect_images
from detforge.data.cache import FileIndexCache
from detforge.utils.filestat import Stamps, stat_many
from detforge.utils.progress import progress

_NO_STAT = (-1, -1, -1)


def read_text_stat(
    path: str, *, keep_bom: bool = False
) -> tuple[str | None, str, tuple[int, int, int]]:
    """``(text, "", stat)`` or ``(None, why, stat)`` for a small text file (UTF-8, BOM ok:
    dropped, or with ``keep_bom`` kept as ``"\ufeff"`` for the caller to report);
    ``stat`` is ``(size, mtime_ns, ctime_ns)`` from the ``fstat`` made before the read
    (``-1`` each if none)."""
    try:  # O_NONBLOCK: a FIFO named like a label must not hang the check
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        return None, exc.strerror or str(exc), _NO_STAT
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None, "it is not a regular file", _NO_STAT
        chunks = [os.read(fd, 1 << 16)]
        while len(chunks[-1]) == 1 << 16:
            chunks.append(os.read(fd, 1 << 20))
    except OSError as exc:
        return None, exc.strerror or str(exc), _NO_STAT
    finally:
        os.close(fd)
    got = (st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    data = b"".join(chunks) if len(chunks) > 1 else chunks[0]
    if b"\0" in data:
        return None, "it contains NUL bytes (a binary file, not text)", got
    try:
        return data.decode("utf-8" if keep_bom else "utf-8-sig"), "", got
    except UnicodeDecodeError as exc:
        return None, f"it is not UTF-8 text ({exc.reason} at byte {exc.start})", got


def read_text(path: str) -> tuple[str | None, str]:
    """``(text, "")`` or ``(None, why)``: :func:`read_text_stat` without the stat."""
    text, why, _ = read_text_stat(path)
    return text, why


def locate_labels(images: list[str], exists: list[bool]) -> list[str]:
    """The label file of each image (``""`` when none): same stem ``.txt``, then the first
    ``/JPEGImages/`` -> ``/labels/``, then the last ``/images/`` -> ``/labels/``."""
    listing: dict[str, frozenset[str]] = {}
    sep = os.sep

    def has(path: str) -> bool:
        folder, _, name = path.rpartition(sep)
        names = listing.get(folder)
        if names is None:
            try:
                names = frozenset(os.listdir(folder or sep))
            except OSError:
                names = frozenset()
            listing[folder] = names
        return name in names

    out = []
    for p, ok in zip(images, exists, strict=True):
        if not ok:
            out.append("")
            continue
        dot, slash = p.rfind("."), p.rfind(sep)
        stem = p[:dot] if dot > slash + 1 else p
        folder = p[:slash]
        names = listing.get(folder)
        if names is None:
            has(stem + ".txt")
            names = listing[folder]
        if stem[slash + 1 :] + ".txt" in names:
            out.append(stem + ".txt")
            continue
        found = ""
        norm = stem.replace("\\", "/") if sep != "/" else stem
        if "/JPEGImages/" in norm:
            cand = norm.replace("/JPEGImages/", "/labels/", 1) + ".txt"
            found = cand if has(cand) else ""
        if not found and "/images/" in norm:
            head, _, rest = norm.rpartition("/images/")
            cand = f"{head}/labels/{rest}.txt"
            found = cand if has(cand) else ""
        out.append(found)
    return out


@dataclass(eq=False)
class ImageTable:
    """Image infos of a dataset plus what is needed to store them back into the cache."""

    infos: list[ImageInfo]
    size: NDArray[np.int64]
    mtime: NDArray[np.int64]
    ctime: NDArray[np.int64]
    cache: FileIndexCache | None
    reused: int
    changed: bool
    note: str | None = None
    """Set when the cache file was damaged and is being rebuilt."""


def cached_images(
    src: str,
    images: list[str],
    deep: bool,
    use_cache: bool,
    *,
    stats: Stamps | None = None,
) -> ImageTable:
    """Image infos, reusing fresh cache records (``deep`` needs records made with ``deep``).

    ``stats`` is ``stat_many(images, ctime=True)`` when the caller already has it (made before
    any image is read); else it is made here."""
    n = len(images)
    infos: list[ImageInfo | None] = [None] * n
    cache = (
        FileIndexCache.for_source(src, kind=f"check-images-r{RULES_VERSION}") if use_cache else None
    )
    note = cache.damaged if cache is not None else None
    warm = cache is not None and len(cache) > 0 and cache.has("problem")
    size, mtime, ctime = stats if stats is not None else stat_many(images, ctime=True)
    reused = 0
    if cache is not None and warm:
        rows, fresh = cache.lookup(images, size, mtime, ctime)
        if deep:
            fresh &= cache.column("deep")[np.where(rows >= 0, rows, 0)].astype(bool)
        w = cache.column("width").tolist()
        h = cache.column("height").tolist()
        o = cache.column("orientation").tolist()
        fmt, prob, det = cache.strings("format"), cache.strings("problem"), cache.strings("detail")
        dig = cache.strings("digest")
        for i in np.flatnonzero(fresh).tolist():
            r = int(rows[i])
            infos[i] = ImageInfo(w[r], h[r], fmt[r], o[r], prob[r], det[r], dig[r])
        reused = int(fresh.sum())
    # not fresh: read, and so is every path the stat did not find a regular file at (the read
    # tells a missing file from a folder, a FIFO or one it may not open)
    todo = [i for i in range(n) if infos[i] is None]
    for i, info in zip(todo, inspect_images([images[i] for i in todo], deep=deep), strict=True):
        infos[i] = info
    done = [x for x in infos if x is not None]
    changed = bool(todo) or n != len(cache or ())
    return ImageTable(done, size, mtime, ctime, cache, reused, changed=changed, note=note)


def full_digests(paths: list[str], splits: list[str], table: ImageTable) -> list[str]:
    """Content digests good for ``split-identical-image``: every file whose ``(size, head
    digest)`` also occurs in another split is hashed in full (and the table updated)."""
    digests = [i.digest for i in table.infos]
    seen: dict[tuple[int, str], set[str]] = {}
    sizes = table.size.tolist()
    for d, s, sp in zip(digests, sizes, splits, strict=True):
        if d:
            seen.setdefault((s, d), set()).add(sp)
    for i, (d, s) in enumerate(zip(digests, sizes, strict=True)):
        if d.startswith("head:") and len(seen.get((s, d), ())) > 1:
            full = file_digest(paths[i])
            digests[i] = full
            table.infos[i] = table.infos[i]._replace(digest=full)
            table.changed = True
    return digests


def store_images(table: ImageTable, images: list[str], deep: bool) -> None:
    """Write the image table to its cache when anything changed."""
    if table.cache is None or not table.changed:
        return
    infos = table.infos
    table.cache.store(
        images,
        table.size,
        table.mtime,
        table.ctime,
        columns={
            "width": np.asarray([i.width for i in infos], dtype=np.int64),
            "height": np.asarray([i.height for i in infos], dtype=np.int64),
            "orientation": np.asarray([i.orientation for i in infos], dtype=np.int64),
            "deep": np.full(len(images), deep, dtype=bool),
        },
        strings={
            "format": [i.format for i in infos],
            "problem": [i.problem for i in infos],
            "detail": [i.detail for i in infos],
            "digest": [i.digest for i in infos],
        },
    )


LabelStats = tuple[list[str], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]
"""``(label paths, size, mtime_ns, ctime_ns)`` of the label files that exist."""


def label_texts(
    src: str, label_paths: list[str], use_cache: bool, *, notes: list[str] | None = None
) -> tuple[list[str | None], list[Finding], int, LabelStats]:
    """Contents of the label files (``None`` for none/unreadable), findings, how many came
    from the cache, and the ``stat`` results of the existing ones. A damaged cache file is
    noted in ``notes``."""
    present = [p for p in label_paths if p]
    texts: dict[str, str] = {}
    errors: dict[str, str] = {}
    # texts as read, a byte order mark kept (parse_label_texts reports it): the rules version
    # names the cache, so texts cached without it are read again
    kind = f"check-labels-r{RULES_VERSION}"
    cache = FileIndexCache.for_source(src, kind=kind) if use_cache else None
    if cache is not None and cache.damaged and notes is not None:
        notes.append(cache.damaged)
    reused = 0
    warm = cache is not None and len(cache) > 0 and cache.has("text")
    if warm:
        size, mtime, ctime = stat_many(present, ctime=True)
    else:  # a first check: the reads below give the stat numbers (their fstat)
        size, mtime, ctime = (np.full(len(present), -1, dtype=np.int64) for _ in range(3))
    if cache is not None and warm:
        rows, fresh = cache.lookup(present, size, mtime, ctime)
        stored, err = cache.strings("text"), cache.strings("error")
        for i in np.flatnonzero(fresh).tolist():
            r = int(rows[i])
            if err[r]:
                errors[present[i]] = err[r]
            else:
                texts[present[i]] = stored[r]
        reused = int(fresh.sum())
    todo = [p for p in present if p not in texts and p not in errors]
    where = {p: i for i, p in enumerate(present)} if not warm else {}
    for p in progress(todo, total=len(todo), desc="reading labels", unit="file"):
        text, why, got = read_text_stat(p, keep_bom=True)
        if not warm:
            size[where[p]], mtime[where[p]], ctime[where[p]] = got
        if text is None:
            errors[p] = why
        else:
            texts[p] = text
    if cache is not None and (todo or len(cache) != len(present)):
        cache.store(
            present,
            size,
            mtime,
            ctime,
            strings={
                "text": [texts.get(p, "") for p in present],
                "error": [errors.get(p, "") for p in present],
            },
        )
    findings = [
        finding(
            "label-unreadable",
            f"cannot read the label file: {why}; re-save it as UTF-8 text (--fix treats the "
            "image as unlabelled and drops it)",
            path=p,
        )
        for p, why in errors.items()
    ]
    out = [texts.get(p) if p else None for p in label_paths]
    return out, findings, reused, (present, size, mtime, ctime)
