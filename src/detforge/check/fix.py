"""``--fix OUT``: write a repaired copy of a Darknet dataset, never touching the source.

What the repair does (each change is recorded in ``OUT/fixes.json`` with its finding code):

* label lines that cannot be parsed, boxes with a bad class id or geometry (zero size,
  negative or > 1 coordinates, smaller than a pixel) and exact duplicate boxes are dropped;
  class ids written as ``1.0`` are written as ``1``;
* boxes reaching past the border are clipped to the image (dropped if nothing is left);
* images that are missing, empty, truncated, undecodable, not images or in an unsupported
  format, and images whose label file is unreadable, are left out of the lists;
* an image listed twice in one list is listed once (a ``drop-list-entry`` change names each
  dropped list line); an image in two splits stays only in the earliest (train, then
  valid, then test);
* list lines Darknet reads as other paths (blank, ``#``, spaces around the path, a byte
  order mark) are not in the copy's lists (``rewrite-list-line``);
* class names: empty -> ``class_k``, whitespace -> ``_``, duplicates get ``_k``; no names
  (a missing or blank names file) -> ``class_0``.. (``write-names``); ``classes=`` is set to
  the number of names;
* the ``.data`` file's ``eval=`` and ``map=`` are kept; ``difficult=`` and unknown keys are
  left out (``drop-key``);
* TFRecords are salvaged: the images of the intact records are extracted, records with a bad
  checksum or that are not valid examples are dropped, and a file cut off by an interrupted
  write keeps every record before the cut (``drop-record`` changes name file and record).

The copy is written by :func:`detforge.formats.darknet.write_darknet`: ``OUT/<split>/`` holds
the images (hard-linked, else symlinked, else copied) with their rewritten labels, plus the
lists, ``obj.names`` and ``obj.data``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from detforge.check.darknet import DarknetScan, scan_darknet
from detforge.check.dataset import fixed_names, split_rank
from detforge.check.images import oriented_size
from detforge.check.loaded import LoadedScan, scan_loaded
from detforge.check.rows import LabelRows
from detforge.data.dataset import make_dataset
from detforge.formats.darknet import (
    DataFile,
    PathMap,
    read_data_file,
    write_darknet,
    write_data_file,
)
from detforge.utils.io import atomic_write_text


@dataclass
class FixReport:
    """What :func:`fix_dataset` wrote: the new ``.data`` file and every change made."""

    data_file: Path
    changes: list[dict[str, Any]]

    def counts(self) -> dict[str, int]:
        """Number of changes per action."""
        out: dict[str, int] = {}
        for c in self.changes:
            out[c["action"]] = out.get(c["action"], 0) + 1
        return out


def _scan_folders(scan: DarknetScan) -> list[str]:
    """The folders of the source's images and label files (OUT may not be, contain or lie
    inside one)."""
    folders = {os.path.dirname(os.path.abspath(p)) for p in scan.images if p}
    folders.update(os.path.dirname(os.path.abspath(p)) for p in scan.label_paths if p)
    return sorted(folders)


def repair_scan(
    scan: DarknetScan,
    out_dir: str | os.PathLike[str],
    *,
    earlier: Sequence[dict[str, Any]] = (),
    origin_of: Mapping[str, tuple[str, int]] | None = None,
) -> FixReport:
    """Write the repaired copy of an already scanned dataset to ``out_dir``.

    ``earlier``: changes made before the scan (listed first in ``fixes.json``); ``where``:
    image path -> ``(file, line)`` to report instead of the path (images extracted from
    records).
    """
    assert scan.rows is not None and scan.verdict is not None
    changes: list[dict[str, Any]] = list(earlier)

    def note(action: str, reason: str, path: str | None, line: int | None, detail: str) -> None:
        if origin_of is not None and path is not None and path in origin_of:
            path, line = origin_of[path]
        changes.append(
            {"action": action, "reason": reason, "path": path, "line": line, "detail": detail}
        )

    n_img = len(scan.images)
    drop_img = np.zeros(n_img, dtype=bool)
    for i, info in enumerate(scan.infos):
        if info.problem:
            drop_img[i] = True
            note("drop-image", info.problem, scan.images[i], None, info.detail)
    for i, (lp, text) in enumerate(zip(scan.label_paths, scan.label_texts, strict=True)):
        if lp and text is None and not drop_img[i]:
            drop_img[i] = True
            note("drop-image", "label-unreadable", scan.images[i], None, f"label file {lp}")
    # --- list duplicates were already collapsed by the scan: record each dropped line
    for found in scan.findings:
        if found.code == "list-duplicate":
            detail = found.message.partition(";")[0]
            note("drop-list-entry", found.code, found.path, found.line, detail)
        elif found.code == "list-line":  # the copy's lists are written from the paths read
            detail = found.message.partition(":")[0]
            note("rewrite-list-line", found.code, found.path, found.line, detail)
    # --- one split per image, earliest first
    split_of: dict[int, str] = {}
    for i, s in sorted(
        zip(scan.entry_image, scan.entry_split, strict=True), key=lambda t: split_rank(t[1])
    ):
        if drop_img[i]:
            continue
        if i in split_of:
            if split_of[i] != s:
                note(
                    "drop-list-entry",
                    "split-overlap",
                    scan.images[i],
                    None,
                    f"kept in {split_of[i]}, removed from {s}",
                )
            continue
        split_of[i] = s
    df = scan.data_file
    for s in sorted(set(scan.entry_split) - set(split_of.values()), key=split_rank):
        where_ = (str(df.path), df.lines.get(s)) if df is not None else (scan.source, None)
        note("drop-split", "split-emptied", *where_,
             f"every image listed in {s} was left out (see the changes above): the copy has "
             f"no {s} split")  # fmt: skip
    # --- names
    raw_names = scan.names
    if raw_names is None:  # names-missing: invented, and said so
        k = scan.num_classes
        why = f"classes={k}"
        if k is None:
            k = int(scan.rows.cls.max()) + 1 if len(scan.rows) else 1
            why = "the largest class id in the labels + 1"
        raw_names = [f"class_{j}" for j in range(k)]
        at = scan.names_path or (df.names if df is not None else None)
        note("write-names", "names-missing", at, None, f"class_0..class_{k - 1} ({k} names: {why})")
    names = fixed_names(raw_names)
    names_file = scan.names_path or ""
    by_line = names_file.endswith((".names", ".txt"))  # a YAML or label map has no name lines
    for j, (a, b) in enumerate(zip(raw_names, names, strict=True)):
        if a != b:
            stripped = a.strip()
            reason = "name-empty" if not stripped else "name-duplicate"
            if stripped and (stripped != a or any(ch.isspace() for ch in stripped)):
                reason = "name-whitespace"
            line = j + 1 if by_line else None
            note("rename-class", reason, scan.names_path, line, f"{a!r} -> {b!r}")
    if df is not None and df.classes is not None and df.classes != len(names):
        note(
            "set-classes",
            "classes-mismatch",
            str(df.path),
            df.lines.get("classes"),
            f"classes={df.classes} -> {len(names)}",
        )
    # --- boxes
    rows, v = scan.rows, scan.verdict
    keep = ~v.bad & ~v.duplicate
    coords = rows.coords.copy()
    if v.clip.any():
        c = coords[v.clip]
        x1 = np.clip(c[:, 0] - c[:, 2] / 2, 0, 1)
        x2 = np.clip(c[:, 0] + c[:, 2] / 2, 0, 1)
        y1 = np.clip(c[:, 1] - c[:, 3] / 2, 0, 1)
        y2 = np.clip(c[:, 1] + c[:, 3] / 2, 0, 1)
        coords[v.clip] = np.column_stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1])
    wh = np.asarray(
        [oriented_size(scan.infos[i]) for i in rows.file.tolist()], dtype=np.float64
    ).reshape(-1, 2)
    w_img, h_img = wh[:, 0], wh[:, 1]
    vanished = keep & v.clip & ((coords[:, 2] * w_img < 1) | (coords[:, 3] * h_img < 1))
    keep &= ~vanished
    where = [lp or img for lp, img in zip(scan.label_paths, scan.images, strict=True)]
    for j in range(len(rows)):
        f, ln = int(rows.file[j]), int(rows.line[j])
        if drop_img[f]:
            continue
        if vanished[j]:
            note(
                "drop-box",
                "box-outside-image",
                where[f],
                ln,
                "less than a pixel left after clipping",
            )
        elif not keep[j]:
            why = str(v.reason[j]) if v.reason is not None and v.reason[j] else "bad-box"
            note("drop-box", why, where[f], ln, "see the finding for this box")
        elif v.clip[j]:
            note("clip-box", "box-outside-image", where[f], ln, "clipped to the image")
        elif rows.cls_text and not rows.int_text[j]:
            note(
                "rewrite-class",
                "class-not-integer",
                where[f],
                ln,
                f"{rows.cls_text[j]} -> {int(rows.cls[j])}",
            )
    parsed = {
        (int(f), int(ln)) for f, ln in zip(rows.file.tolist(), rows.line.tolist(), strict=True)
    }
    for f, text in enumerate(scan.label_texts):
        if text is None or drop_img[f]:
            continue
        if text.startswith("\ufeff"):
            note("rewrite-label", "label-bom", where[f], 1, "written without the byte order mark")
        for ln, raw in enumerate(text.splitlines(), 1):
            if raw.strip() and (f, ln) not in parsed:
                note("drop-line", "unparseable", where[f], ln, raw.strip()[:80])
    # --- write
    kept_images = sorted(split_of)
    remap = np.full(n_img, -1, dtype=np.int64)
    remap[kept_images] = np.arange(len(kept_images))
    sel = keep & (remap[rows.file] >= 0)
    ds = make_dataset(
        names,
        paths=[scan.images[i] for i in kept_images],
        splits=[split_of[i] for i in kept_images],
        box_image=remap[rows.file[sel]],
        box_cls=rows.cls[sel].astype(np.int64),
        box_coords=coords[sel],
        meta={"source": scan.source},
    )
    out = Path(out_dir)
    data_path = write_darknet(ds, out, images="link")
    if scan.data_file is not None:
        _carry_data_keys(scan.data_file, data_path, note)
    record = {
        "source": scan.source,
        "out": str(data_path),
        "images": {"kept": len(kept_images), "dropped": int(drop_img.sum())},
        "boxes": {"kept": int(sel.sum()), "input": len(rows)},
        "changes": changes,
    }
    atomic_write_text(out / "fixes.json", json.dumps(record, indent=1) + "\n")
    return FixReport(data_file=data_path, changes=changes)


def _carry_data_keys(
    df: DataFile, data_path: Path, note: Callable[[str, str, str, int | None, str], None]
) -> None:
    """Keep the source ``.data`` file's ``eval=`` and ``map=`` in the copy's; the keys it
    cannot keep are ``drop-key`` changes: ``difficult=`` (it pairs lines of the original
    ``valid`` list, which the copy renames and may shorten) and unknown keys."""
    if df.eval is not None or df.map is not None:
        out = read_data_file(data_path)
        out.eval, out.map = df.eval, df.map
        write_data_file(data_path, out)
    dropped = [("difficult", df.difficult, "difficult-not-carried")] if df.difficult else []
    dropped += [(k, v, "data-unknown-key") for k, v in df.extra.items()]
    for key, value, why in dropped:
        note("drop-key", why, str(df.path), df.lines.get(key), f"{key} = {value}")


def _as_scan(loaded: LoadedScan) -> DarknetScan:
    """View a reader-checked dataset as a :class:`DarknetScan` so one repair serves both."""
    paths = [str(p) for p in loaded.ds.images.path]
    index: dict[str, int] = {}
    for p in paths:
        index.setdefault(p, len(index))
    remap = np.asarray([index[p] for p in paths], dtype=np.int64)
    first = {index[p]: i for i, p in reversed(list(enumerate(paths)))}
    n = len(index)
    infos = [loaded.infos[first[i]] for i in range(n)]
    for i in loaded.size_mismatch:
        j = int(remap[i])
        infos[j] = infos[j]._replace(problem="image-size-mismatch", detail="stated size differs")
    r = loaded.rows
    rows = LabelRows(remap[r.file] if len(r) else r.file, r.line, r.cls, r.coords, r.int_text)
    return DarknetScan(
        source=str(loaded.summary.get("source", "")),
        names=list(loaded.ds.class_names),
        images=list(index),
        entry_image=remap.tolist(),
        entry_split=[str(s) for s in loaded.ds.images.split],
        infos=infos,
        label_paths=[""] * n,
        label_texts=[None] * n,
        rows=rows,
        verdict=loaded.verdict,
    )


def fix_dataset(
    source: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    path_map: PathMap = (),
    cache: bool = True,
    label_map: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
) -> FixReport:
    """Check ``source`` and write a repaired Darknet copy to the new folder ``out_dir``.

    ``out_dir`` follows :mod:`detforge.utils.outdir` (new, empty or an earlier detforge
    output replaced only with ``overwrite``).

    ``source`` is anything :func:`detforge.check.check_dataset` reads; see the module
    docstring for every repair. ``label_map``: a TF label map for TFRecords (default: a
    ``.pbtxt`` beside them).
    """
    from detforge.formats.detect import detect_format
    from detforge.utils.outdir import output_dir, prepare_output_dir

    prepare_output_dir(out_dir, overwrite=overwrite, read_folders=[source])
    fmt = detect_format(source)
    if fmt == "tfrecord":
        with output_dir(
            out_dir, command="check --fix", overwrite=overwrite, read_folders=[source]
        ) as o:
            return _salvage_records(source, o, label_map=label_map)
    earlier: list[dict[str, Any]] = []
    if fmt in ("darknet", "ultralytics"):
        scan = scan_darknet(source, path_map=path_map, cache=cache, reuse=False)
    else:
        loaded = scan_loaded(source, fmt=fmt, cache=cache)
        earlier = invalid_changes(loaded)
        scan = _as_scan(loaded)
    with output_dir(
        out_dir,
        command="check --fix",
        overwrite=overwrite,
        read_folders=[source],
        file_folders=_scan_folders(scan),
    ) as o:
        return repair_scan(scan, o, earlier=earlier)


def invalid_changes(loaded: LoadedScan) -> list[dict[str, Any]]:
    """The boxes (and stated image sizes) the reader left out, as ``fixes.json`` changes."""
    from detforge.data.validity import invalid_boxes

    return [
        {
            "action": "read-size" if b.code == "image-size-impossible" else "drop-box",
            "reason": b.code,
            "path": b.path,
            "line": None,
            "detail": f"{b.record}: {b.detail}",
        }
        for b in invalid_boxes(loaded.ds)
    ]


_RECORD_CODES = {"truncated": "tfrecord-truncated", "example": "tfrecord-example"}


def _salvage_records(
    source: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    label_map: str | os.PathLike[str] | None,
) -> FixReport:
    """TFRecords: extract the intact records' images into a hidden scratch folder in
    ``out_dir`` (removed at the end, or by the next run after a kill), check them like any
    loaded dataset and write the repaired Darknet copy; the damaged records become
    ``drop-record`` changes."""
    from detforge.formats.labelmap import find_label_map, read_label_map
    from detforge.formats.tfrecord.framing import expand_record_paths
    from detforge.formats.tfrecord.tfod_read import read_tfod

    out = Path(out_dir)
    if label_map is None:
        label_map = find_label_map(expand_record_paths(source)[0].parent)
    mapping = read_label_map(label_map) if label_map is not None else None
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".records-", suffix=".tmp", dir=out))
    try:
        ds = read_tfod(source, label_map=mapping, extract_images_to=scratch, skip_bad=True)
        dropped = [
            {
                "action": "drop-record",
                "reason": _RECORD_CODES.get(s["kind"], "tfrecord-crc"),
                "path": s["path"],
                "line": s["record"],
                "detail": s["reason"],
            }
            for s in ds.meta["skipped_records"]
        ]
        records = dict(zip(ds.images.path.tolist(), ds.meta["records"], strict=True))
        loaded = scan_loaded(source, fmt="tfrecord", cache=False, ds=ds)
        report = repair_scan(
            _as_scan(loaded), out, earlier=dropped + invalid_changes(loaded), origin_of=records
        )
        _copy_links_into(out, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return report


def _copy_links_into(out: Path, scratch: Path) -> None:
    """Replace symlinks under ``out`` that point into ``scratch`` (where hard links failed)
    with copies, before ``scratch`` is removed."""
    root = str(scratch.resolve()) + os.sep
    for p in out.rglob("*"):
        if p.is_symlink() and os.path.realpath(p).startswith(root):
            target = os.path.realpath(p)
            p.unlink()
            shutil.copy2(target, p)
