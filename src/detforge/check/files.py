"""Per-file reads for the checker, backed by the dataset index cache.

Image header results (:class:`~detforge.check.images.ImageInfo` plus a content digest when
one was needed) and label file contents are stored per path in two tables of
:class:`detforge.data.cache.FileIndexCache` (kinds ``check-images`` and ``check-labels``) and
reused while the file's size and mtime are unchanged: a re-check of an unchanged dataset costs
one ``stat`` per file.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from detforge.check.findings import Finding, finding
from detforge.check.images import ImageInfo, inspect_images
from detforge.data.cache import FileIndexCache, stat_files


def read_text(path: str) -> tuple[str | None, str]:
    """``(text, "")`` or ``(None, why)`` for a small text file (UTF-8, BOM ok)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        return None, exc.strerror or str(exc)
    if b"\0" in data:
        return None, "it contains NUL bytes (a binary file, not text)"
    try:
        return data.decode("utf-8-sig"), ""
    except UnicodeDecodeError as exc:
        return None, f"it is not UTF-8 text ({exc.reason} at byte {exc.start})"


def cached_images(
    src: str, images: list[str], deep: bool, use_cache: bool
) -> tuple[list[ImageInfo], list[str], NDArray[np.int64], FileIndexCache | None, int]:
    """Image infos and digests, reusing fresh cache records; returns the cache and reuse count."""
    size, mtime = stat_files(images)
    n = len(images)
    infos: list[ImageInfo | None] = [None] * n
    digests = [""] * n
    cache = FileIndexCache.for_source(src, kind="check-images") if use_cache else None
    reused = 0
    if cache is not None and len(cache) and cache.has("problem"):
        rows, fresh = cache.lookup(images, size, mtime)
        if deep:
            fresh &= cache.column("deep")[np.where(rows >= 0, rows, 0)].astype(bool)
        w, h, o = cache.column("width"), cache.column("height"), cache.column("orientation")
        fmt, prob, det = cache.strings("format"), cache.strings("problem"), cache.strings("detail")
        dig = cache.strings("digest")
        for i in np.flatnonzero(fresh).tolist():
            r = int(rows[i])
            infos[i] = ImageInfo(int(w[r]), int(h[r]), fmt[r], int(o[r]), prob[r], det[r])
            digests[i] = dig[r]
        reused = int(fresh.sum())
    todo = [i for i in range(n) if infos[i] is None]
    missing = ImageInfo(0, 0, "", 1, "image-missing", "no such file")
    present = [i for i in todo if size[i] >= 0]
    for i in todo:
        if size[i] < 0:
            infos[i] = missing
    for i, info in zip(
        present, inspect_images([images[i] for i in present], deep=deep), strict=True
    ):
        infos[i] = info
    return [x if x is not None else missing for x in infos], digests, size, cache, reused


def store_images(
    cache: FileIndexCache | None,
    images: list[str],
    infos: list[ImageInfo],
    digests: list[str],
    deep: bool,
) -> None:
    if cache is None:
        return
    size, mtime = stat_files(images)
    cache.store(
        images,
        size,
        mtime,
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
            "digest": digests,
        },
    )


def label_texts(
    src: str, label_paths: list[str], use_cache: bool
) -> tuple[list[str | None], list[Finding], int]:
    """Contents of the label files (``None`` for none/unreadable), findings and reuse count."""
    present = [p for p in label_paths if p]
    size, mtime = stat_files(present)
    texts: dict[str, str | None] = {}
    errors: dict[str, str] = {}
    cache = FileIndexCache.for_source(src, kind="check-labels") if use_cache else None
    reused = 0
    if cache is not None and len(cache) and cache.has("text"):
        rows, fresh = cache.lookup(present, size, mtime)
        stored, err = cache.strings("text"), cache.strings("error")
        for i in np.flatnonzero(fresh).tolist():
            r = int(rows[i])
            if err[r]:
                errors[present[i]] = err[r]
            else:
                texts[present[i]] = stored[r]
        reused = int(fresh.sum())
    for p in present:
        if p not in texts and p not in errors:
            text, why = read_text(p)
            if text is None:
                errors[p] = why
            else:
                texts[p] = text
    if cache is not None:
        cache.store(
            present,
            size,
            mtime,
            strings={
                "text": [texts.get(p) or "" for p in present],
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
    return [texts.get(p) if p else None for p in label_paths], findings, reused
