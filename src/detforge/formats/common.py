"""Small helpers the format writers share: image sizes, unique file names (the one rule for
naming outputs after images, ``predict`` included), crowd boxes, images listed twice."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from detforge.data.dataset import Dataset
from detforge.errors import DetforgeError
from detforge.utils.io import current_umask, short_name


def ensure_sizes(ds: Dataset) -> Dataset:
    """``ds`` with every unknown (``0``) image size read from the image header.

    Pixel formats (VOC, COCO, TFRecord) need sizes; a boxed image whose size cannot be read
    is a :class:`DetforgeError` naming it. Unboxed unreadable images keep size ``0``.
    """
    missing = np.flatnonzero((ds.images.width <= 0) | (ds.images.height <= 0))
    if not len(missing):
        return ds
    from detforge.data.imagesize import read_sizes

    ws, hs, errors = read_sizes([str(p) for p in ds.images.path[missing]])
    boxed = set(np.unique(ds.boxes.image).tolist())
    for i, msg in errors.items():
        if int(missing[i]) in boxed:
            raise DetforgeError(
                f"image size unknown and the image is unreadable ({msg}); pixel formats need "
                "the size of every labelled image",
                path=str(ds.images.path[missing[i]]),
            )
    width, height = ds.images.width.copy(), ds.images.height.copy()
    width[missing], height[missing] = ws, hs
    return replace(ds, images=replace(ds.images, width=width, height=height))


NAME_MAX = 255
"""Longest file name (bytes) the common file systems take (ext4, APFS, NTFS in UTF-16 units)."""


def _fit_name(name: str, key: str) -> str:
    """``name`` itself when it and its ``.txt`` label name fit :data:`NAME_MAX` bytes; else its
    stem cut to fit, followed by ``_`` and 8 hex digits of a hash of ``key`` (the full path), so
    shortened names stay unique."""
    stem, suffix = os.path.splitext(name)
    size = len(stem.encode("utf-8", "surrogateescape"))
    ext = max(len(suffix.encode("utf-8", "surrogateescape")), len(".txt"))
    if size + ext <= NAME_MAX:
        return name
    tag = hashlib.sha1(key.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    budget = NAME_MAX - ext - len(tag) - 1 - 8  # room for a clash counter ("_12345")
    short = stem.encode("utf-8", "surrogateescape")[:budget].decode("utf-8", "ignore")
    return f"{short}_{tag}{suffix if len(suffix) <= 16 else ''}"


def unique_file_names(paths: Sequence[str]) -> list[str]:
    """A file name per path whose *stem* is unique (case-insensitively) within the list.

    Label files are named by stem, so ``a.jpg`` and ``a.png`` clash too. The base name is kept
    when its stem is unique; a clash gets the parent folder's name prefixed, then a counter, so
    ``a/img.jpg`` and ``b/img.jpg`` become ``a_img.jpg`` and ``b_img.jpg``. A name (or its
    label name) longer than :data:`NAME_MAX` bytes is shortened with a hash (:func:`_fit_name`).
    The names depend only on ``paths`` and their order. Every writer that names files after
    images uses it: the dataset writers, ``predict`` (its output stems,
    :attr:`detforge.predict.sources.Source.names`) and ``show``
    (:func:`detforge.predict.gallery.render_dataset`).
    """
    slashed = [p.replace("\\", "/").rstrip("/") for p in paths]
    names = [p.rpartition("/")[2] or f"image{i}" for i, p in enumerate(slashed)]
    names = [_fit_name(n, p) for n, p in zip(names, slashed, strict=True)]
    stems = [os.path.splitext(n)[0].lower() for n in names]
    counts: dict[str, int] = {}
    for s in stems:
        counts[s] = counts.get(s, 0) + 1
    taken: set[str] = set()
    out = []
    for p, n, s in zip(slashed, names, stems, strict=True):
        if counts[s] == 1 and s not in taken:  # the common case: nothing to rename
            taken.add(s)
            out.append(n)
            continue
        parent = p.rpartition("/")[0].rpartition("/")[2]
        cand = _fit_name(f"{parent}_{n}" if parent else n, p)
        stem, suffix = os.path.splitext(cand)
        k = 1
        while os.path.splitext(cand)[0].lower() in taken:
            cand = f"{stem}_{k}{suffix}"
            k += 1
        taken.add(os.path.splitext(cand)[0].lower())
        out.append(cand)
    return out


def drop_crowd(ds: Dataset) -> tuple[Dataset, int]:
    """Remove crowd boxes (for formats that cannot hold them); returns ``(ds, how_many)``."""
    n = int(ds.boxes.crowd.sum())
    if not n:
        return ds, 0
    keep = np.flatnonzero(~ds.boxes.crowd)
    return replace(ds, boxes=ds.boxes.take(keep)), n


ONE_RECORD_PER_IMAGE = frozenset({"coco", "voc", "tfrecord"})
"""Targets where an image is one record (a COCO image entry, a VOC XML file, a TF example):
an image listed twice in a split is written once."""


def settle_repeated_entries(ds: Dataset, to: str) -> tuple[Dataset, str | None]:
    """What becomes of images listed twice in one split (a Darknet list's oversampling, in
    ``ds.meta["repeated_entries"]``) when ``ds`` is written as ``to``, and the note that says
    so. For :data:`ONE_RECORD_PER_IMAGE` targets each image is written once (the entries are
    merged, :func:`~detforge.data.lists.one_entry_per_image`); Darknet and Ultralytics keep
    every entry (each trains once per entry). Either way the record is consumed, so a second
    call returns ``(ds, None)``."""
    from detforge.data.lists import one_entry_per_image, repeated_note

    if "repeated_entries" not in ds.meta:
        return ds, None
    if to in ONE_RECORD_PER_IMAGE:
        note = repeated_note(ds, f"were merged: {to} holds each image once")
        ds, _ = one_entry_per_image(ds)
    elif to == "darknet":
        note = repeated_note(ds, "are kept: Darknet trains on each entry (oversampling)")
    else:  # image folders: an image listed twice becomes two files
        note = repeated_note(
            ds,
            f"are kept as extra copies of the image (oversampling, as in the list): {to} "
            "reads image folders, which cannot name a file twice",
        )
    meta = {k: v for k, v in ds.meta.items() if k != "repeated_entries"}
    return replace(ds, meta=meta), note


def split_file_name(split: str) -> str:
    """The name a split gets in frameworks that say ``val``: ``valid`` -> ``val``."""
    return "val" if split == "valid" else (split or "all")


@contextlib.contextmanager
def staged_dir(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``final``; on success it replaces ``final``.

    Writers fill many small files (labels, XML) into the stage without a rename per file,
    then the whole folder appears at once; an interruption leaves ``final`` as it was and
    removes the stage.
    """
    target = Path(final)
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(
        tempfile.mkdtemp(prefix=f".{short_name(target.name)}.", suffix=".tmp", dir=target.parent)
    )
    os.chmod(stage, 0o777 & ~current_umask())  # mkdtemp makes 0700; outputs honour the umask
    try:
        yield stage
        if target.exists():
            trash = Path(
                tempfile.mkdtemp(
                    prefix=f".{short_name(target.name)}.", suffix=".old", dir=target.parent
                )
            )
            os.replace(target, trash / target.name)
            os.replace(stage, target)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(stage, target)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
