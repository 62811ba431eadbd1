"""Image lists from folders: streaming scans, sorting, ``--every N`` and shuffling.

These are the guide's shell recipes done right:

* ``find DIR -type f -not -name '*.txt' | sort``  -> :func:`scan_images` + ``sorted``
* ``sed '0~N!d'`` (keep lines N, 2N, 3N, ...)       -> :func:`take_every`
* ``shuf``                                         -> :func:`shuffle_paths` (seeded)

Scans use ``os.scandir`` one folder at a time and yield paths as they are found, so a folder
of a million files costs one list of a million strings (the sorted output) and nothing more.
Sorting is by code point, which for UTF-8 names equals ``LC_ALL=C sort``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from detforge.data.imageformats import IMAGE_EXTENSIONS
from detforge.errors import DetforgeError


def _norm_exts(extensions: Iterable[str] | None) -> frozenset[str]:
    if extensions is None:
        return frozenset(IMAGE_EXTENSIONS)
    return frozenset(e.lower() if e.startswith(".") else "." + e.lower() for e in extensions)


def scan_images(
    root: str | os.PathLike[str],
    *,
    extensions: Iterable[str] | None = None,
    max_depth: int | None = None,
    include_hidden: bool = False,
) -> Iterator[str]:
    """Yield image files under ``root`` (unsorted; recursion depth-first).

    ``extensions``: suffixes to keep (default :data:`IMAGE_EXTENSIONS`, case-insensitive);
    ``.txt`` is never yielded. ``max_depth=0`` scans ``root`` only. Names starting with ``.``
    are skipped unless ``include_hidden``. Symlinked folders are not followed (no loops);
    symlinked files are listed; dangling and looping links are not. Paths are ``root`` joined
    with the names found.
    """
    exts = _norm_exts(extensions) - {".txt"}
    top = os.fspath(root)
    if not os.path.isdir(top):
        raise DetforgeError(
            "folder not found" if not os.path.exists(top) else "not a folder", path=top
        )
    stack: list[tuple[str, int]] = [(top, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            it = os.scandir(folder)
        except OSError as exc:
            raise DetforgeError(f"cannot list folder: {exc.strerror}", path=folder) from None
        subdirs = []
        descend = max_depth is None or depth < max_depth
        with it:
            for entry in it:
                name = entry.name
                if name[0] == "." and not include_hidden:
                    continue
                dot = name.rfind(".")
                if dot > 0 and name[dot:].lower() in exts and _is_file(entry):
                    yield entry.path
                elif descend and entry.is_dir(follow_symlinks=False):
                    subdirs.append(entry.path)
        stack.extend((d, depth + 1) for d in reversed(sorted(subdirs)))


def _is_file(entry: os.DirEntry[str]) -> bool:
    """Whether ``entry`` is a file or a link to one; a link to nothing, or a loop of links
    (``x.jpg -> x.jpg``), is not (like a dangling link, it holds no image)."""
    try:
        return entry.is_file()
    except OSError:
        return False


def list_images(
    roots: Sequence[str | os.PathLike[str]],
    *,
    extensions: Iterable[str] | None = None,
    max_depth: int | None = None,
    include_hidden: bool = False,
) -> list[str]:
    """All images under ``roots``, sorted by code point, duplicates removed."""
    out: list[str] = []
    for r in roots:
        out.extend(
            scan_images(
                r, extensions=extensions, max_depth=max_depth, include_hidden=include_hidden
            )
        )
    out.sort()
    if len(roots) > 1:
        out = [p for i, p in enumerate(out) if i == 0 or out[i - 1] != p]
    return out


def take_every(paths: Sequence[str], n: int) -> list[str]:
    """Entries ``n, 2n, 3n, ...`` (1-based), exactly ``sed '0~n!d'``; ``n=1`` keeps all."""
    if n < 1:
        raise DetforgeError(f"--every must be 1 or more, got {n}")
    return list(paths[n - 1 :: n])


def shuffle_paths(paths: Sequence[str], *, seed: int = 0) -> list[str]:
    """A reproducible permutation of ``paths`` (numpy PCG64 seeded with ``seed``)."""
    order = np.random.default_rng(seed).permutation(len(paths))
    return [paths[i] for i in order.tolist()]


def first_entries(paths: Sequence[str], groups: Sequence[str] | None = None) -> list[int]:
    """Indices of the first entry of each image in ``paths``, in order: an image listed twice
    (any spelling of its path: ``os.path.abspath``, ``normcase``) is one image. With
    ``groups`` (per entry, e.g. its split) entries of different groups never collapse: the
    same image in two splits is a leak, reported as such, not a duplicate. The rule of
    ``split`` (all sources one pool) and ``info`` (per split)."""
    seen: set[tuple[str, str]] = set()
    keep: list[int] = []
    for i, p in enumerate(paths):
        key = ("" if groups is None else groups[i], os.path.normcase(os.path.abspath(p)))
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return keep
