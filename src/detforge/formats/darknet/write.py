"""Write a :class:`~detforge.data.dataset.Dataset` as a Darknet dataset (re-exported by
:mod:`detforge.formats.darknet`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from detforge.data.boxes import BoxFormat
from detforge.data.dataset import SPLITS, Dataset
from detforge.errors import DetforgeError
from detforge.formats.common import unique_file_names
from detforge.formats.darknet.files import (
    DataFile,
    write_data_file,
    write_image_list,
    write_names,
)
from detforge.formats.darknet.labels import format_label_lines
from detforge.utils.io import ImageMode, atomic_write_text, place_file


def write_darknet(
    ds: Dataset, out_dir: str | os.PathLike[str], *, images: ImageMode = "link"
) -> Path:
    """Write ``ds`` as a Darknet dataset in ``out_dir`` and return the ``obj.data`` path.

    Layout: ``out_dir/<split>/<image>`` with its ``.txt`` label beside it (an empty file for an
    image without boxes), ``<split>.txt`` lists, ``obj.names``, ``obj.data`` and the
    ``backup/`` and ``results/`` folders Darknet writes to. Images without a split go to
    ``train``. All paths written are absolute (Darknet resolves relative ones against its
    working directory). ``images``: ``link`` (hard link, else symlink, else copy), ``copy``,
    or ``none`` (labels and lists only; the lists name where the images would be).
    Boxes are written normalized, 6 decimals; pixel boxes need known image sizes. An image
    listed twice in a split with the same boxes (a Darknet list's oversampling) is written
    once and named twice in the list.
    """
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if ds.boxes.format is not BoxFormat.CXCYWH_NORM:
        try:
            ds = ds.with_format(BoxFormat.CXCYWH_NORM)
        except ValueError as exc:
            raise DetforgeError(str(exc)) from None
    split_of = [s or "train" for s in ds.images.split.tolist()]
    src_paths = ds.images.path.tolist()
    lists: dict[str, list[str]] = {}
    starts = np.concatenate([[0], np.cumsum(ds.boxes_per_image())]).tolist()
    by_split: dict[str, list[int]] = {}
    for i, s in enumerate(split_of):
        by_split.setdefault(s, []).append(i)
    for s, idx in by_split.items():
        again = _repeats(ds, idx, starts)
        fresh = [i for i in idx if i not in again]
        written: dict[int, str] = {}
        for i, name in zip(fresh, unique_file_names([src_paths[i] for i in fresh]), strict=True):
            dst = out / s / name
            place_file(src_paths[i], dst, images)
            a, b = starts[i], starts[i + 1]
            text = format_label_lines(ds.boxes.cls[a:b], ds.boxes.coords[a:b])
            atomic_write_text(dst.with_suffix(".txt"), text)
            written[i] = str(dst)
        lists[s] = [written[again.get(i, i)] for i in idx]
    return write_data_files(out, lists, ds.class_names)


def _repeats(ds: Dataset, idx: list[int], starts: list[int]) -> dict[int, int]:
    """Images of one split (``idx``) that repeat an earlier one -- the same file with the same
    boxes, a list entry given twice for oversampling -- mapped to that earlier image: the list
    names the one copy again, as the source list did."""
    from detforge.data.lists import repeated_entries

    out: dict[int, int] = {}
    for k, f in repeated_entries([str(ds.images.path[i]) for i in idx]):
        i, j = idx[k], idx[f]
        a, b, c, d = starts[i], starts[i + 1], starts[j], starts[j + 1]
        same = np.array_equal(ds.boxes.cls[a:b], ds.boxes.cls[c:d]) and np.array_equal(
            ds.boxes.coords[a:b], ds.boxes.coords[c:d]
        )
        if same:
            out[i] = j
    return out


def write_data_files(out: Path, lists: dict[str, list[str]], class_names: Sequence[str]) -> Path:
    """Write ``OUT/<split>.txt`` for each entry of ``lists`` (split -> image paths),
    ``OUT/obj.names`` and ``OUT/obj.data`` (canonical splits as its ``train``/``valid``/``test``
    keys, other split names kept as extra keys), and create the ``backup`` and ``results``
    folders it points to (Darknet needs them to exist). Returns the ``obj.data`` path.

    Darknet evaluates (``detector map``, the mAP during training) the ``valid=`` list and
    ignores ``test=``; a dataset with a test split but no valid one gets ``valid`` and
    ``test`` naming the same list (read back as the test split)."""
    df = DataFile(path=out / "obj.data", classes=len(class_names))
    for s, entries in lists.items():
        list_path = out / f"{s}.txt"
        write_image_list(list_path, entries)
        if s in SPLITS:
            setattr(df, s, str(list_path))
        else:
            df.extra[s] = str(list_path)
    if df.valid is None and df.test is not None:
        df.valid = df.test  # Darknet's detector map reads valid= only (else the train list)
    write_names(out / "obj.names", class_names)
    df.names = str(out / "obj.names")
    for folder in ("backup", "results"):
        (out / folder).mkdir(exist_ok=True)
        setattr(df, folder, str(out / folder))
    write_data_file(df.path, df)
    return df.path
