"""Image lists from folders: streaming scans, sorting, ``--every N`` and shuffling.

These are the guide's shell recipes done right:

* ``find DIR -type f -not -name '*.txt' | sort``  -> :func:`scan_images` + ``sorted``
* ``sed '0~N!d'`` (keep lines N, 2N, 3N, ...)       -> :func:`take_every`
* ``shuf``                                         -> :func:`shuffle_paths` (seeded)

An image listed twice in one split: :func:`first_entries` and :func:`repeated_entries` find
the repeats (any spelling of a path), :class:`RepeatedEntry` says where one is written (the
Darknet reader lists them: Darknet trains on such an image once per entry, so readers keep
every entry), :func:`one_entry_per_image` collapses a dataset to one entry per image, and
:func:`repeated_note` is the line ``stats`` and ``convert`` print about them.

Scans use ``os.scandir`` one folder at a time and yield paths as they are found, so a folder
of a million files costs one list of a million strings (the sorted output) and nothing more.
Sorting is by code point, which for UTF-8 names equals ``LC_ALL=C sort``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from detforge.data.imageformats import IMAGE_EXTENSIONS
from detforge.errors import DetforgeError

if TYPE_CHECKING:
    from detforge.data.dataset import Dataset


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
    """All images under ``roots``, sorted by code point, each image once: roots that overlap
    (``data`` and ``data/sub``, or a link to a folder beside the folder) list it under the
    spelling that sorts first (:func:`first_entries`)."""
    out: list[str] = []
    for r in roots:
        out.extend(
            scan_images(
                r, extensions=extensions, max_depth=max_depth, include_hidden=include_hidden
            )
        )
    out.sort()
    if len(roots) > 1:
        out = [out[i] for i in first_entries(out)]
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


def _first_of(paths: Sequence[str], groups: Sequence[str] | None) -> list[int]:
    """Per entry, the index of the first entry naming the same image in the same group
    (the same image: :mod:`detforge.utils.paths`)."""
    from detforge.utils.paths import identity_keys, surely_distinct

    if surely_distinct(paths):  # the common case, without resolving each path
        return list(range(len(paths)))
    seen: dict[tuple[str, str], int] = {}
    out: list[int] = []
    for i, key in enumerate(identity_keys(paths)):
        out.append(seen.setdefault(("" if groups is None else groups[i], key), i))
    return out


def first_entries(paths: Sequence[str], groups: Sequence[str] | None = None) -> list[int]:
    """Indices of the first entry of each image in ``paths``, in order: an image listed twice
    (any spelling of its path, a link to its folder included: :mod:`detforge.utils.paths`)
    is one image. With
    ``groups`` (per entry, e.g. its split) entries of different groups never collapse: the
    same image in two splits is a leak, reported as such, not a duplicate. The rule of
    ``split`` (all sources one pool) and ``info`` (per split)."""
    return [i for i, f in enumerate(_first_of(paths, groups)) if f == i]


def repeated_entries(
    paths: Sequence[str], groups: Sequence[str] | None = None
) -> list[tuple[int, int]]:
    """``(entry, first)`` for every entry that :func:`first_entries` leaves out: it names the
    image that entry ``first`` named before it (in the same group)."""
    return [(i, f) for i, f in enumerate(_first_of(paths, groups)) if f != i]


@dataclass(frozen=True)
class RepeatedEntry:
    """A list entry naming an image that an earlier entry of the same split names. Legal in
    Darknet (it trains on the image once per entry: oversampling), so readers keep both and
    list each one in ``ds.meta["repeated_entries"]`` for the commands to say so."""

    path: str
    file: str
    """The list file of the repeated entry."""
    line: int | None
    first_file: str
    first_line: int | None

    def where(self) -> str:
        """``PATH, line 5 of LIST (first on line 2)``, for messages."""
        at = f"line {self.line} of {self.file}" if self.line is not None else self.file
        if self.first_file == self.file:
            first = f"first on line {self.first_line}"
        else:
            first = f"first on line {self.first_line} of {self.first_file}"
        return f"{self.path}, {at} ({first})"


def one_entry_per_image(ds: Dataset) -> tuple[Dataset, int]:
    """``ds`` with each image once per split (:func:`first_entries`, the first entry kept) and
    how many entries were left out; the per-image ``meta`` lists (``label_paths`` ...) follow
    the images (``select``), ``meta["invalid_boxes"]`` names each left-out box once (the
    reader listed it once per entry) and ``meta["repeated_entries"]`` is dropped (nothing is
    repeated any more)."""
    keep = first_entries(ds.images.path.tolist(), ds.images.split.tolist())
    dropped = ds.num_images - len(keep)
    if not dropped:
        return ds, 0
    out = ds.select(keep)
    meta = {k: v for k, v in out.meta.items() if k != "repeated_entries"}
    if meta.get("invalid_boxes"):
        meta["invalid_boxes"] = list(dict.fromkeys(meta["invalid_boxes"]))
    return replace(out, meta=meta), dropped


def repeated_note(ds: Dataset, effect: str) -> str | None:
    """One line on the repeated list entries a reader found in ``ds`` (its
    ``meta["repeated_entries"]``), counted in ``ds`` as it is now: ``"3 duplicate list entries
    (an image listed again in its split) <effect>; first: <where>"``. ``None`` when there are
    none."""
    found: Sequence[RepeatedEntry] = ds.meta.get("repeated_entries") or ()
    if not found:
        return None
    n = len(repeated_entries(ds.images.path.tolist(), ds.images.split.tolist()))
    if not n:
        return None
    entries = "entry" if n == 1 else "entries"
    return (
        f"{n} duplicate list {entries} (an image listed again in its split) {effect}; "
        f"first: {found[0].where()}"
    )
