"""Check TF Object Detection API TFRecords record by record.

Each record's framing is verified (length CRC, data CRC); a file that ends inside a record is
reported as an interrupted write (``tfrecord-truncated``), a bad data CRC as ``tfrecord-crc``
(scanning goes on: the length was trustworthy), a bad length CRC ends the file's scan (the
framing cannot be resynchronised). Every payload is parsed as a ``tf.train.Example``; its
embedded image is checked like an image file (truncated JPEG, size vs ``image/width`` and
``image/height``), its boxes (normalized ``xmin, ymin, xmax, ymax``) with the same checks as
Darknet lines, and its ``class/label`` (1-based) and ``class/text`` against the label map, or
without one against the earlier records (the reader's rule,
:func:`~detforge.formats.tfrecord.tfod.class_problems`).

Findings name the record file; ``line`` is the 1-based record number.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from detforge.check.dataset import (
    check_class_counts,
    check_identical,
    check_names,
)
from detforge.check.findings import CheckReport, Finding, finding, severity_counts, sort_findings
from detforge.check.images import inspect_bytes
from detforge.check.labels import check_boxes
from detforge.check.limits import DEFAULT_LIMITS, CheckLimits
from detforge.check.rows import LabelRows
from detforge.data.validity import CODES as RULE
from detforge.data.validity import box_codes, size_ok
from detforge.errors import DetforgeError
from detforge.formats.labelmap import find_label_map
from detforge.formats.tfrecord.example import (
    bytes_values,
    decode_example,
    float_values,
    int64_values,
)
from detforge.formats.tfrecord.framing import expand_record_paths, iter_records
from detforge.formats.tfrecord.tfod import class_problems, split_from_record_name


def scan_frames(path: str | os.PathLike[str]) -> Iterator[tuple[int, bytes | None, Finding | None]]:
    """Yield ``(record number (1-based), payload or None, finding or None)`` for a file."""
    p = os.fspath(path)
    for scan, data in iter_records(p):
        if scan.ok:
            yield scan.number, data, None
            continue
        if scan.kind == "truncated":
            msg = f"{scan.error} -- --fix keeps them, or regenerate the file"
            yield scan.number, None, finding("tfrecord-truncated", msg, path=p, line=scan.number)
        elif scan.kind == "crc":
            msg = f"{scan.error} (--fix drops it)"
            yield scan.number, None, finding("tfrecord-crc", msg, path=p, line=scan.number)
        else:
            msg = f"{scan.error} -- --fix keeps the records before it, or regenerate the file"
            yield scan.number, None, finding("tfrecord-crc", msg, path=p, line=scan.number)


class _Acc:
    """Per-record outputs gathered for the bulk box checks."""

    def __init__(self) -> None:
        self.where: list[str] = []
        self.line: list[int] = []
        self.cls: list[float] = []
        self.coords: list[list[float]] = []
        self.widths: list[int] = []
        self.heights: list[int] = []


def _check_example(
    data: bytes,
    path: str,
    no: int,
    names: dict[int, str],
    label_map: bool,
    deep: bool,
    acc: _Acc,
) -> tuple[list[Finding], str]:
    """Findings of one record and a digest of its image bytes. ``names``: class ids -> names,
    the label map's (``label_map``) or else those earlier records taught (updated here)."""
    out: list[Finding] = []

    def bad(code: str, msg: str) -> None:
        out.append(finding(code, msg, path=path, line=no))

    try:
        ex = decode_example(data)
        enc = bytes_values(ex, "image/encoded")
        width = (int64_values(ex, "image/width") or [0])[0]
        height = (int64_values(ex, "image/height") or [0])[0]
        name = (bytes_values(ex, "image/filename") or [b""])[0].decode("utf-8", "replace")
        box = [float_values(ex, f"image/object/bbox/{k}") for k in ("xmin", "ymin", "xmax", "ymax")]
        labels = int64_values(ex, "image/object/class/label")
        texts = [t.decode("utf-8", "replace") for t in bytes_values(ex, "image/object/class/text")]
    except DetforgeError as exc:
        bad("tfrecord-example", f"not a valid tf.train.Example: {exc.message}")
        return out, ""
    tag = f"record {no}" + (f" ({name})" if name else "")
    if len(enc) != 1 or width <= 0 or height <= 0:
        bad(
            "tfrecord-example",
            f"{tag}: needs one image/encoded and positive image/width and image/height "
            f"(found {len(enc)} images, {width} x {height})",
        )
        return out, ""
    info = inspect_bytes(enc[0], deep=deep)
    if info.problem:
        bad(info.problem, f"{tag}: embedded image: {info.detail}")
    elif (info.width, info.height) != (width, height):
        bad(
            "image-size-mismatch",
            f"{tag}: image/width x height say {width} x {height} but the image is "
            f"{info.width} x {info.height}; normalized boxes are then wrong -- regenerate it",
        )
    k = len(box[0])
    if any(len(b) != k for b in box) or len(labels) != k or (texts and len(texts) != k):
        bad(
            "tfrecord-example",
            f"{tag}: {k} xmin values but ymin/xmax/ymax/class/label/class/text have "
            f"{[len(b) for b in box[1:]] + [len(labels), len(texts)]}; the lists must agree",
        )
        return out, ""
    problems, learned = class_problems(labels, texts, names, label_map=label_map)
    for j, problem in problems:
        bad("tfrecord-class", f"{tag}: box {j + 1}: {problem}")
    if not problems:  # as the reader, which takes a record's names only when it takes it
        names.update(learned)
    if not (size_ok(width) and size_ok(height)):
        bad(
            "image-size-impossible",
            f"{tag}: image/width x height {width} x {height}: {RULE['image-size-impossible']}",
        )
        return out, ""
    x1, y1, x2, y2 = (np.asarray(b, dtype=np.float64) for b in box)
    with np.errstate(invalid="ignore", over="ignore"):
        codes = box_codes(np.column_stack([x1, y1, x2 - x1, y2 - y1]).reshape(-1, 4))
    for j in range(k):
        if codes[j]:
            bad(
                str(codes[j]),
                f"{tag}: box {j + 1} xmin={x1[j]:g} ymin={y1[j]:g} xmax={x2[j]:g} "
                f"ymax={y2[j]:g}: {RULE[str(codes[j])]} (readers leave it out)",
            )
            continue
        acc.where.append(path)
        acc.line.append(no)
        acc.cls.append(float(min(max(labels[j] - 1, 0), 2**31)))
        acc.coords.append([(x1[j] + x2[j]) / 2, (y1[j] + y2[j]) / 2, x2[j] - x1[j], y2[j] - y1[j]])
        acc.widths.append(width)
        acc.heights.append(height)
    return out, hashlib.blake2b(enc[0], digest_size=16).hexdigest()


# Over 80 lines on purpose: one streaming pass over the records with its per-record checks.
def check_tfrecords(
    source: str | os.PathLike[str],
    *,
    label_map: str | os.PathLike[str] | None = None,
    deep: bool = False,
    limits: CheckLimits = DEFAULT_LIMITS,
) -> CheckReport:
    """Check a TFRecord file, a shard set or a folder of records (see the module docstring);
    ``limits``: thresholds of the heuristic warnings."""
    from detforge.formats.labelmap import read_label_map

    t0 = time.perf_counter()
    files = [str(p) for p in expand_record_paths(source)]
    findings: list[Finding] = []
    found = find_label_map(Path(files[0]).parent)
    lm = Path(label_map) if label_map is not None else Path(found) if found else None
    mapping: dict[int, str] | None = None
    if lm is not None:
        try:
            mapping = read_label_map(lm)
        except DetforgeError as exc:
            findings.append(finding("read-error", exc.message, path=str(lm), line=exc.line))
    acc = _Acc()
    seen = dict(mapping or {})  # class names by id: the label map's, or the records'
    rec_paths: list[str] = []
    rec_splits: list[str] = []
    digests: list[str] = []
    n_records = 0
    for file in files:
        split = split_from_record_name(Path(file).name)
        for no, data, problem in scan_frames(file):
            n_records += 1
            if problem is not None:
                findings.append(problem)
                continue
            assert data is not None
            got, digest = _check_example(data, file, no, seen, mapping is not None, deep, acc)
            findings += got
            rec_paths.append(f"{file}:{no}")
            rec_splits.append(split)
            digests.append(digest)
    # the boxes of one record form one "file" of the bulk check; line = record number
    n = len(acc.line)
    key = {k: i for i, k in enumerate(dict.fromkeys(zip(acc.where, acc.line, strict=True)))}
    file_idx = np.asarray([key[k] for k in zip(acc.where, acc.line, strict=True)], dtype=np.int64)
    rows = LabelRows(
        file=file_idx,
        line=np.asarray(acc.line, dtype=np.int64),
        cls=np.asarray(acc.cls, dtype=np.float64),
        coords=np.asarray(acc.coords, dtype=np.float64).reshape(n, 4),
        int_text=np.ones(n, dtype=bool),
    )
    where = [w for w, _ in key]
    ws = np.zeros(len(key), dtype=np.int64)
    hs = np.zeros(len(key), dtype=np.int64)
    ws[file_idx], hs[file_idx] = acc.widths, acc.heights
    _, box_findings = check_boxes(
        rows,
        where,
        num_classes=None,
        widths=ws,
        heights=hs,
        lines_are_boxes=False,
        near_iou=limits.near_duplicate_iou,
    )
    findings += box_findings
    names: list[str] | None = None
    if mapping:
        names = [mapping.get(i, "") for i in range(1, max(mapping) + 1)]
        findings += check_names(names, path=str(lm), lines=False)
        findings += check_class_counts(
            rows.cls.astype(np.int64), names, path=str(lm), imbalance=limits.imbalance_ratio
        )
    if len(set(rec_splits)) > 1:
        findings += check_identical(rec_paths, rec_splits, digests)
    findings = sort_findings(findings)
    counts = severity_counts(findings)
    summary = {
        "source": os.fspath(source),
        "format": "tfrecord",
        "files": len(files),
        "records": n_records,
        "images": len(rec_paths),
        "boxes": n,
        "classes": None if names is None else len(names),
        "label_map": None if lm is None else str(lm),
        "errors": counts["error"],
        "warnings": counts["warning"],
        "infos": counts["info"],
        "deep": deep,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return CheckReport(findings, summary)
