"""Darknet datasets: read one into a :class:`~detforge.data.dataset.Dataset`.

A Darknet dataset is images with same-named ``.txt`` labels (``class cx cy w h`` per line,
normalized by the image size), image lists (one path per line), a ``.names`` file and a
``.data`` file tying them together. The small files are handled in
:mod:`detforge.formats.darknet.files` and what a source names in
:mod:`detforge.formats.darknet.sources`; see their docstrings for the path rules:
relative paths resolve against the folder of the file naming them, ``path_map`` rewrites
prefixes (``G:/data`` -> ``/mnt/data``).

Label files are found by :func:`label_path_candidates`: same folder and stem, then Darknet's
``/JPEGImages/`` -> ``/labels/``, then Ultralytics' last ``/images/`` -> ``/labels/``. An image
without a label file is a *negative* (no objects), counted in ``ds.meta["no_label_file"]``,
never an error; a label file that is there but cannot be read (a folder, a FIFO, a broken or
self-referencing symbolic link) is a :class:`DetforgeError` naming it, never a negative.

Image sizes are read from file headers (:mod:`detforge.data.imagesize`) and, with
``cache=True``, remembered in the index cache (:mod:`detforge.data.cache`) together with the
parsed labels, so a second load only stats files.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from detforge.data.boxes import BoxFormat
from detforge.data.cache import FileIndexCache
from detforge.data.dataset import Dataset, canonical_split, make_dataset
from detforge.data.imagesize import read_sizes as read_image_sizes
from detforge.data.lists import RepeatedEntry, repeated_entries
from detforge.errors import DetforgeError
from detforge.formats.darknet.files import PathMap, missing_hint, read_names
from detforge.formats.darknet.index import FileStats, read_files, stat_images, use_threads
from detforge.formats.darknet.labels import parse_label_files
from detforge.formats.darknet.sources import DATA_SPLITS, Sources, resolve_sources
from detforge.utils.filestat import native_available

Missing = Literal["error", "skip", "keep"]


def read_darknet(
    source: str | os.PathLike[str],
    *,
    path_map: PathMap = (),
    read_sizes: bool = True,
    cache: bool = True,
    missing: Missing = "error",
    cache_dir: Path | None = None,
    workers: int | None = None,
    split: str | None = None,
) -> Dataset:
    """Read a Darknet dataset from a ``.data`` file, an image list or a folder of images.

    Splits come from the ``.data`` keys (``train``/``valid``/``test``), from a list's file name
    (``val.txt`` -> ``valid``) or from a folder's sub-folders named like splits (in the first
    two levels: ``train/x.jpg``, Ultralytics' ``images/val/x.jpg``).
    Class names come from the ``names`` file, a ``*.names``/``classes.txt`` beside the list or
    folder, else ``"0".."K-1"`` for the largest class id seen.

    ``missing``: what to do with a listed image that does not exist -- ``"error"`` (a
    :class:`DetforgeError` naming the list file and line), ``"skip"`` it (counted in
    ``meta["missing_images"]``), or ``"keep"`` it with size 0. Unreadable image headers leave
    size 0 and are reported in ``meta["size_errors"]`` (path -> message). Malformed label lines
    and class ids beyond the names raise :class:`DetforgeError` with file and line.

    Boxes are ``CXCYWH_NORM`` as stored. ``meta`` also holds ``label_paths`` (per image, ``""``
    for none), ``no_label_file`` (count of images without one) and ``notes`` (strings).
    An image listed twice in one split is two images, as Darknet trains on it twice; each
    repeat is listed in ``meta["repeated_entries"]``
    (:class:`~detforge.data.lists.RepeatedEntry`, only when there are any).

    ``split``: read only this key of a ``.data`` file (``"valid"``; an error when it has none).
    Image ids are the position of each image in the whole dataset (train, valid, test lists
    in that order), with or without ``split`` and ``missing="skip"``: the ids every command
    writes into prediction files and ``convert --to coco`` writes as COCO ids.
    What the source names is resolved by
    :func:`~detforge.formats.darknet.sources.resolve_sources`.

    ``workers``: threads for the stat pass, label reads and header reads. By default each pass
    starts in this thread and switches to threads only when its first files show slow storage
    (network or cold disks); on a warm local disk threads cost CPU time and save none.
    """
    src = Path(source)
    found = resolve_sources(src, path_map=path_map, splits=None if split is None else [split])
    names = _class_names(found)
    meta: dict[str, Any] = {"source": str(src), "notes": found.notes}
    if found.data_file is not None:
        meta["data_file"] = found.data_file
    paths, splits, st, kept = _stat_sources(found, missing, meta, workers)
    repeated = _repeated_entries(found, paths, splits, kept)
    if repeated:
        meta["repeated_entries"] = repeated
    ids = kept.astype(np.int64) + _images_before(src, split, found, path_map)  # keep their places
    n = len(paths)
    store = FileIndexCache.for_source(src, kind="darknet", cache_dir=cache_dir) if cache else None
    if store is not None and store.damaged:
        meta["notes"].append(store.damaged)
    rows, fresh, widths, heights = _cached(store, paths, st)
    box_image, box_cls, box_xy = _labels(store, rows, fresh, st, workers)
    stale = n - int(fresh.sum())

    size_errors: dict[str, str] = {}
    sizes_read = 0
    if read_sizes:
        need = np.flatnonzero((widths <= 0) & (st.size >= 0))
        if len(need):
            ws, hs, errs = _read_sizes([paths[i] for i in need.tolist()], st.size[need], workers)
            widths[need], heights[need] = ws, hs
            sizes_read = len(need) - len(errs)
            size_errors = {paths[int(need[k])]: m for k, m in errs.items()}

    if names is None:
        k = int(box_cls.max()) + 1 if len(box_cls) else 0
        names = [str(i) for i in range(k)]
        if k:
            meta["notes"].append(f"{src}: no names file found; classes are called 0..{k - 1}")
    bad = np.flatnonzero((box_cls < 0) | (box_cls >= len(names)))
    if len(bad):
        _raise_bad_class(int(box_image[bad[0]]), int(box_cls[bad[0]]), st.label_paths, len(names))
    meta.update(
        label_paths=st.label_paths,
        no_label_file=int(np.count_nonzero(st.label_rule == 0)),
        size_errors=size_errors,
    )
    ds = make_dataset(
        names,
        paths=paths,
        widths=widths,
        heights=heights,
        splits=splits,
        image_ids=ids,
        box_image=box_image,
        box_cls=box_cls,
        box_coords=box_xy,
        box_format=BoxFormat.CXCYWH_NORM,
        meta=meta,
    )
    if store is not None and (stale or sizes_read or len(store) != n):
        _store(store, ds, st)
    data_file = found.data_file
    if data_file is not None and data_file.difficult is not None:
        from detforge.formats.darknet.difficult import add_difficult_truths

        ds = add_difficult_truths(ds, data_file, path_map)
    from detforge.data.validity import screen_label_boxes

    return screen_label_boxes(ds, st.label_paths)


def _stat_sources(
    found: Sources, missing: Missing, meta: dict[str, Any], workers: int | None
) -> tuple[list[str], list[str], FileStats, NDArray[np.int64]]:
    """Stat every named image and its label candidates; relative entries not found are looked
    up where Darknet runs (:meth:`Sources.relocate`); images still missing are handled as
    ``missing`` says. Returns the paths, splits and stats of the images kept, and their
    indices into ``found.paths``."""
    paths, splits = found.paths, found.splits
    st = stat_images(paths, workers)
    absent = np.flatnonzero(st.size < 0)
    if len(absent):
        moved = found.relocate(absent.tolist())
        if moved:
            again = stat_images([paths[i] for i in moved], workers)
            for name in (
                "size",
                "mtime_ns",
                "ctime_ns",
                "label_rule",
                "label_size",
                "label_mtime_ns",
                "label_ctime_ns",
            ):
                getattr(st, name)[moved] = getattr(again, name)
            for k, i in enumerate(moved):
                st.label_paths[i] = again.label_paths[k]
            absent = np.flatnonzero(st.size < 0)
    if not len(absent):
        return paths, splits, st, np.arange(len(paths), dtype=np.int64)
    if missing == "error":
        _raise_missing(found, int(absent[0]), len(absent))
    meta["missing_images"] = [paths[i] for i in absent.tolist()]
    if missing != "skip":
        return paths, splits, st, np.arange(len(paths), dtype=np.int64)
    keep = st.size >= 0
    kept = np.flatnonzero(keep)
    idx = kept.tolist()
    kept_stats = FileStats(
        size=st.size[keep],
        mtime_ns=st.mtime_ns[keep],
        label_paths=[st.label_paths[i] for i in idx],
        label_rule=st.label_rule[keep],
        label_size=st.label_size[keep],
        label_mtime_ns=st.label_mtime_ns[keep],
        ctime_ns=st.ctime_ns[keep],
        label_ctime_ns=st.label_ctime_ns[keep],
    )
    return [paths[i] for i in idx], [splits[i] for i in idx], kept_stats, kept


def _repeated_entries(
    found: Sources, paths: list[str], splits: list[str], kept: NDArray[np.int64]
) -> list[RepeatedEntry]:
    """Every entry that names an image an earlier entry of its split names (kept: Darknet
    trains on it once per entry), with its list file and line
    (:func:`~detforge.data.lists.repeated_entries`: any spelling of an image, a link to its
    folder included)."""
    origins = [found.origins[i] for i in kept.tolist()]
    out = []
    for i, f in repeated_entries(paths, splits):
        (file, line), (first_file, first_line) = origins[i], origins[f]
        out.append(RepeatedEntry(paths[i], file, line, first_file, first_line))
    return out


I64 = NDArray[np.int64]


def _cached(
    store: FileIndexCache | None, paths: list[str], st: FileStats
) -> tuple[I64, NDArray[np.bool_], I64, I64]:
    """``(rows, fresh, widths, heights)``: each image's row in the index cache, whether it (and
    its label file, found by the same rule) is unchanged since, and the sizes stored there
    (``0`` where not fresh)."""
    n = len(paths)
    widths = np.zeros(n, dtype=np.int64)
    heights = np.zeros(n, dtype=np.int64)
    fresh = np.zeros(n, dtype=bool)
    rows = np.full(n, -1, dtype=np.int64)
    if store is not None and len(store) and store.has("label_rule") and store.has("label_ctime"):
        rows, fresh = store.lookup(paths, st.size, st.mtime_ns, st.ctime_ns)
        r = np.where(fresh, rows, 0)
        fresh &= (
            (store.column("label_size")[r] == st.label_size)
            & (store.column("label_mtime")[r] == st.label_mtime_ns)
            & (store.column("label_ctime")[r] == st.label_ctime_ns)
            & (store.column("label_rule")[r] == st.label_rule)
        )
        widths[fresh] = store.column("width")[rows[fresh]]
        heights[fresh] = store.column("height")[rows[fresh]]
    return rows, fresh, widths, heights


def _labels(
    store: FileIndexCache | None,
    rows: I64,
    fresh: NDArray[np.bool_],
    st: FileStats,
    workers: int | None,
) -> tuple[I64, I64, NDArray[np.float64]]:
    """``(box_image, box_cls, box_xy)``: the boxes of fresh images from the cache, the others'
    label files read and parsed."""
    fresh_idx = np.flatnonzero(fresh)
    parts_img: list[I64] = []
    parts_cls: list[I64] = []
    parts_xy: list[NDArray[np.float64]] = []
    if len(fresh_idx) and store is not None:
        cvals, fc = store.ragged("cls", rows[fresh_idx])
        xvals, _ = store.ragged("coords", rows[fresh_idx])
        parts_img.append(np.repeat(fresh_idx, fc))
        parts_cls.append(cvals)
        parts_xy.append(xvals)
    to_read = np.flatnonzero(~fresh & (st.label_rule != 0)).tolist()
    if to_read:
        lps = [st.label_paths[i] for i in to_read]
        blobs = read_files(
            lps,
            st.label_size[to_read].tolist(),
            workers=workers,
            desc="labels" if len(to_read) >= 2000 else "",
        )
        c, xy, counts = parse_label_files(blobs, lps)
        parts_img.append(np.repeat(np.asarray(to_read, dtype=np.int64), counts))
        parts_cls.append(c)
        parts_xy.append(xy)
    return (
        np.concatenate(parts_img) if parts_img else np.zeros(0, dtype=np.int64),
        np.concatenate(parts_cls) if parts_cls else np.zeros(0, dtype=np.int64),
        np.concatenate(parts_xy) if parts_xy else np.zeros((0, 4), dtype=np.float64),
    )


def _store(store: FileIndexCache, ds: Dataset, st: FileStats) -> None:
    """Remember sizes, label-file stats and boxes of every image in the index cache."""
    store.store(
        ds.images.path.tolist(),
        st.size,
        st.mtime_ns,
        st.ctime_ns,
        columns={
            "width": ds.images.width,
            "height": ds.images.height,
            "label_rule": st.label_rule,
            "label_size": st.label_size,
            "label_mtime": st.label_mtime_ns,
            "label_ctime": st.label_ctime_ns,
        },
        ragged={
            "cls": (ds.boxes.cls, ds.boxes_per_image()),
            "coords": (ds.boxes.coords, ds.boxes_per_image()),
        },
    )


_PROBE_SIZES = 256  # image headers read in this thread before deciding on threads
_SLOW_HEADER_S = 100e-6


def _read_sizes(
    paths: list[str], file_sizes: NDArray[np.int64], workers: int | None
) -> tuple[NDArray[np.int64], NDArray[np.int64], dict[int, str]]:
    """:func:`read_image_sizes`. Without the C helper, threads only where the first headers
    show slow storage (:func:`~detforge.formats.darknet.index.use_threads`) unless ``workers``
    is given."""
    desc = "image sizes" if len(paths) >= 2000 else None
    if native_available():  # reads in C, which probes the storage itself
        return read_image_sizes(paths, workers=workers, desc=desc, file_sizes=file_sizes)
    if workers is not None or len(paths) <= _PROBE_SIZES:
        return read_image_sizes(paths, workers=workers or 1, desc=desc)
    t0 = time.perf_counter()
    w0, h0, e0 = read_image_sizes(paths[:_PROBE_SIZES], workers=1)
    w = use_threads(time.perf_counter() - t0, _PROBE_SIZES, _SLOW_HEADER_S)
    w1, h1, e1 = read_image_sizes(paths[_PROBE_SIZES:], workers=w, desc=desc)
    e0.update({i + _PROBE_SIZES: m for i, m in e1.items()})
    return np.concatenate([w0, w1]), np.concatenate([h0, h1]), e0


def _class_names(found: Sources) -> list[str] | None:
    """The names file's names; ``0..classes-1`` for a ``.data`` file with ``classes=`` only;
    ``None`` (derived from the labels) otherwise."""
    names = read_names(found.names_path) if found.names_path is not None else None
    k = found.declared_classes
    if names is None and found.data_file is not None and k is not None:
        names = [str(i) for i in range(k)]
        found.notes.append(f"{found.source}: no 'names' key; classes are called 0..{k - 1}")
    if k is not None and names is not None and k != len(names):
        found.notes.append(
            f"{found.source}: classes = {k} but the names file has {len(names)} names"
        )
    return names


def _raise_missing(found: Sources, i: int, count: int) -> None:
    paths = found.paths
    f, line = found.origins[i]
    raise DetforgeError(
        f"image not found: {paths[i]}"
        + (f" ({count} listed images are missing)" if count > 1 else "")
        + missing_hint(paths[i])
        + (
            f"; relative entries are resolved against the list's folder "
            f"({found.list_dirs[i]}), then against the folder Darknet would run from"
            if found.list_dirs[i]
            else ""
        ),
        path=f,
        line=line,
    )


def _raise_bad_class(image: int, cls: int, label_paths: list[str], k: int) -> None:
    path = label_paths[image]
    line = None
    try:
        from detforge.utils.textfile import read_regular_file

        text = read_regular_file(path).decode("utf-8", errors="replace")
        for n, raw in enumerate(text.splitlines(), start=1):
            parts = raw.split()
            if parts and parts[0].lstrip("\ufeff") == str(cls):
                line = n
                break
    except OSError:
        pass
    raise DetforgeError(
        f"class id {cls} is outside the {k} class names (valid ids: 0..{k - 1}); fix the label "
        "or the names file ('detforge check' lists every such line)",
        path=path,
        line=line,
    )


def _images_before(src: Path, split: str | None, found: Sources, path_map: PathMap) -> int:
    """How many images the ``.data`` lists before ``split`` name (0 for a whole read)."""
    df = found.data_file
    if split is None or df is None:
        return 0
    key = canonical_split(split)
    before = [k for k in DATA_SPLITS[: DATA_SPLITS.index(key)] if getattr(df, k) is not None]
    if not before:
        return 0
    return len(resolve_sources(src, path_map=path_map, strict=False, splits=before).paths)
