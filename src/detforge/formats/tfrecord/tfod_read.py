"""Reading TF Object Detection API records into a :class:`~detforge.data.Dataset` (the
feature keys and conventions are in :mod:`detforge.formats.tfrecord.tfod`).

By default a damaged file is an error naming the file, record number (1-based, as
``detforge check`` reports it) and byte offset. ``skip_bad=True`` salvages instead: records
with a bad checksum, records that are not valid examples, and the cut-off tail of an
interrupted write are left out and listed in ``meta["skipped_records"]``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detforge.data.boxes import BoxFormat, xyxy_to_cxcywh
from detforge.data.dataset import Dataset, canonical_split, make_dataset
from detforge.data.validity import InvalidBox, box_codes, screen_boxes, size_ok
from detforge.errors import DetforgeError
from detforge.formats.labelmap import label_map_names
from detforge.formats.tfrecord.example import (
    Feature,
    bytes_values,
    decode_example,
    float_values,
    int64_values,
)
from detforge.formats.tfrecord.framing import expand_record_paths, iter_records
from detforge.formats.tfrecord.tfod import class_problems, split_from_record_name
from detforge.utils.progress import progress


@dataclass
class _Record:
    """One parsed example, committed to the dataset only when all of it is valid."""

    example: dict[str, Feature]
    filename: str
    xyxy: NDArray[np.float64]  # (K, 4) normalized corners
    labels: list[int]  # 1-based
    difficult: list[int]
    truncated: list[int]
    image_id: int | None
    width: int
    height: int
    new_names: dict[int, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _text(example: dict[str, Feature], key: str) -> str:
    vals = bytes_values(example, key)
    return vals[0].decode("utf-8", "replace") if vals else ""


def _scalar(example: dict[str, Feature], key: str) -> int:
    vals = int64_values(example, key)
    return vals[0] if vals else 0


def _parse(
    data: bytes,
    tag: str,
    *,
    label_map: dict[int, str] | None,
    id_by_name: dict[str, int],
    names_by_id: dict[int, str],
) -> _Record:
    """Decode one record; raises :class:`DetforgeError` (without a path) saying what is wrong.
    ``tag`` names the record in messages (``file record N``)."""
    ex = decode_example(data)
    filename = _text(ex, "image/filename")
    where = f"{tag} ({filename})" if filename else tag
    box = [
        np.asarray(float_values(ex, f"image/object/bbox/{k}"), np.float64)
        for k in ("xmin", "ymin", "xmax", "ymax")
    ]
    labels = int64_values(ex, "image/object/class/label")
    texts = [v.decode("utf-8", "replace") for v in bytes_values(ex, "image/object/class/text")]
    k = len(box[0])
    if any(len(b) != k for b in box) or (labels and len(labels) != k) or len(texts) not in (0, k):
        raise DetforgeError(
            f"{where}: {k} xmin values but ymin/xmax/ymax/class/label/class/text have "
            f"{[len(b) for b in box[1:]] + [len(labels), len(texts)]}; the lists must agree"
        )
    if len(labels) != k:  # as check's tfrecord-example: the TF OD API needs class/label
        raise DetforgeError(f"{where}: {k} boxes but no image/object/class/label")
    rec = _Record(
        example=ex,
        filename=filename,
        xyxy=np.stack(box, axis=1) if k else np.zeros((0, 4)),
        labels=[],
        difficult=[],
        truncated=[],
        image_id=None,
        width=_scalar(ex, "image/width"),
        height=_scalar(ex, "image/height"),
    )
    problems, rec.new_names = class_problems(
        labels, texts, names_by_id, label_map=label_map is not None
    )
    if problems:
        j, problem = problems[0]
        raise DetforgeError(f"{where}: box {j + 1}: {problem}")
    rec.labels = list(labels)
    d = int64_values(ex, "image/object/difficult")[:k]
    t = int64_values(ex, "image/object/truncated")[:k]
    rec.difficult = d + [0] * (k - len(d))
    rec.truncated = t + [0] * (k - len(t))
    source_id = _text(ex, "image/source_id")
    rec.image_id = int(source_id) if source_id.strip().isdigit() else None
    return rec


# Over 80 lines on purpose: one streaming pass over the records, one block per feature.
def read_tfod(
    source: str | os.PathLike[str],
    *,
    label_map: dict[int, str] | None = None,
    extract_images_to: str | os.PathLike[str] | None = None,
    skip_bad: bool = False,
) -> Dataset:
    """Read TF OD API records (a file, a shard, or a folder of them) into a :class:`Dataset`.

    ``label_map`` (``{id: name}``, see :mod:`detforge.formats.labelmap`) fixes the class names
    and order; without it names come from the records' ``(label, text)`` pairs. With
    ``extract_images_to`` the embedded images are written there (``<split>/<file name>``) and
    become the dataset's image paths; otherwise paths are the records' ``image/filename``.
    Boxes come out in ``CXCYWH_NORM``. Corrupt or truncated records raise
    :class:`DetforgeError` naming the file, record number and byte offset -- or, with
    ``skip_bad``, are left out and listed in ``meta["skipped_records"]`` as
    ``{"path", "record" (1-based), "offset", "kind", "reason"}`` (``kind``: ``crc``,
    ``truncated``, ``header-crc``, ``length`` -- see
    :class:`~detforge.formats.tfrecord.framing.RecordScan` -- or ``example``). Per image,
    ``meta["records"]`` is the ``(record file, record number)`` it came from.
    """
    files = expand_record_paths(source)
    names_by_id: dict[int, str] = dict(label_map or {})
    id_by_name = {v: k for k, v in names_by_id.items()}
    out_root = Path(extract_images_to) if extract_images_to is not None else None
    acc = _Columns()
    skipped: list[dict[str, Any]] = []
    taken: set[str] = set()
    for file in files:
        split = split_from_record_name(file.name)
        records = progress(iter_records(file), desc=f"reading {file.name}", unit="rec")
        for scan, data in records:
            tag = f"record {scan.number}"
            try:
                if not scan.ok:
                    raise DetforgeError(f"{tag} at byte offset {scan.offset}: {scan.error}")
                rec = _parse(
                    data, tag, label_map=label_map, id_by_name=id_by_name, names_by_id=names_by_id
                )
                path = rec.filename or f"record{len(acc.paths)}.jpg"
                if out_root is not None:
                    path = _extract(rec.example, out_root / (split or "all"), path, taken)
            except DetforgeError as exc:
                if not skip_bad:
                    raise DetforgeError(
                        f"{exc.message} -- 'detforge check --fix OUT' salvages the intact records",
                        path=file,
                    ) from None
                reason = exc.message.removeprefix(f"{tag}: ").removeprefix(f"{tag} ")
                skipped.append(
                    {
                        "path": str(file),
                        "record": scan.number,
                        "offset": scan.offset,
                        "kind": scan.kind or "example",
                        "reason": reason,
                    }
                )
                continue
            for lab, text in rec.new_names.items():
                names_by_id.setdefault(lab, text)
            acc.add(rec, path, split)
            acc.records.append((str(file), scan.number))
            acc.warnings += [f"{file.name} {w}" for w in rec.warnings]
    if label_map is not None:  # every id read is in it (class_problems)
        names = label_map_names(names_by_id)
    else:
        top = max([*names_by_id, *acc.labels], default=0)
        names = [names_by_id.get(i, f"class{i}") for i in range(1, top + 1)]
    xyxy = np.concatenate(acc.coords, axis=0) if acc.coords else np.zeros((0, 4))
    meta: dict[str, Any] = {
        "source": str(source),
        "format": "tfrecord",
        "warnings": acc.warnings,
        "records": acc.records,
    }
    if skip_bad:
        meta["skipped_records"] = skipped
    widths, heights = list(acc.widths), list(acc.heights)
    bad_sizes = []
    for i, (w, h) in enumerate(zip(widths, heights, strict=True)):
        if not (size_ok(w) and size_ok(h)):
            rec_file, number = acc.records[i]
            at = (str(acc.paths[i]), canonical_split(acc.splits[i]))
            bad_sizes.append(
                InvalidBox("image-size-impossible", rec_file, f"record {number}", f"{w} x {h}", *at)
            )
            widths[i] = heights[i] = 0
    meta["invalid_boxes"] = bad_sizes
    ds = make_dataset(
        names,
        paths=acc.paths,
        widths=widths,
        heights=heights,
        splits=acc.splits,
        image_ids=acc.ids,
        box_image=acc.box_image,
        box_cls=np.asarray(acc.labels, dtype=np.int64) - 1,
        box_coords=xyxy_to_cxcywh(xyxy),
        box_format=BoxFormat.CXCYWH_NORM,
        difficult=np.asarray(acc.difficult, dtype=bool),
        truncated=np.asarray(acc.truncated, dtype=bool),
        meta=meta,
    )

    def where(j: int) -> tuple[str, str, str]:
        rec_file, number = acc.records[acc.box_image[j]]
        x1, y1, x2, y2 = xyxy[j].tolist()
        return rec_file, f"record {number}", f"xmin={x1:g} ymin={y1:g} xmax={x2:g} ymax={y2:g}"

    with np.errstate(invalid="ignore", over="ignore"):
        written = np.column_stack([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]])
    return screen_boxes(ds, box_codes(written), where=where)


class _Columns:
    """The dataset's columns, grown one committed record at a time."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.widths: list[int] = []
        self.heights: list[int] = []
        self.splits: list[str] = []
        self.ids: list[int] = []
        self.box_image: list[int] = []
        self.labels: list[int] = []
        self.coords: list[NDArray[np.float64]] = []
        self.difficult: list[int] = []
        self.truncated: list[int] = []
        self.warnings: list[str] = []
        self.records: list[tuple[str, int]] = []  # per image: (record file, record number)

    def add(self, rec: _Record, path: str, split: str) -> None:
        n = len(self.paths)
        self.paths.append(path)
        self.widths.append(rec.width)
        self.heights.append(rec.height)
        self.splits.append(split)
        self.ids.append(rec.image_id if rec.image_id is not None else n)
        self.box_image.extend([n] * len(rec.labels))
        self.labels.extend(rec.labels)
        self.coords.append(rec.xyxy)
        self.difficult.extend(rec.difficult)
        self.truncated.extend(rec.truncated)


def _extract(ex: dict[str, Feature], folder: Path, filename: str, taken: set[str]) -> str:
    """Write the record's image into ``folder`` under a name not yet ``taken``."""
    from detforge.utils.io import atomic_write_bytes

    enc = bytes_values(ex, "image/encoded")
    if not enc:
        raise DetforgeError(f"the record for {filename} has no image/encoded bytes")
    name = Path(filename.replace("\\", "/")).name or "image.jpg"
    stem, suffix = os.path.splitext(name)
    k = 1
    while str(folder / name).lower() in taken:
        name = f"{stem}_{k}{suffix}"
        k += 1
    taken.add(str(folder / name).lower())
    atomic_write_bytes(folder / name, enc[0])
    return str(folder / name)
