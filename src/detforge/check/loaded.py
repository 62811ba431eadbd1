"""Check datasets whose labels are not text lines (COCO JSON, Pascal VOC) through their readers.

The reader gives a :class:`~detforge.data.dataset.Dataset`; its boxes are normalized by the
image sizes the annotations state and run through the same checks as Darknet lines
(:func:`~detforge.check.labels.check_boxes`), its images through the same integrity checks,
and the stated sizes are compared with the real ones (``image-size-mismatch``). Findings
about a VOC box name its XML file; COCO box findings name the image.

Boxes and image sizes the reader left out by the one validity rule
(:mod:`detforge.data.validity`: non-finite, huge, negative or zero size as written, e.g. VOC's
``xmin == xmax`` click without a drag) are reported from ``ds.meta["invalid_boxes"]`` with
their file and record.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detforge.check.dataset import (
    check_class_counts,
    check_group_leaks,
    check_identical,
    check_label_map_names,
    check_names,
    check_split_overlap,
)
from detforge.check.files import cached_images, full_digests, store_images
from detforge.check.findings import Finding, finding, severity_counts, sort_findings
from detforge.check.images import ImageInfo, image_findings, oriented_size
from detforge.check.labels import BoxVerdict, check_boxes
from detforge.check.limits import DEFAULT_LIMITS, CheckLimits
from detforge.check.rows import LabelRows
from detforge.data.boxes import BoxFormat, convert_boxes
from detforge.data.dataset import Dataset, per_image
from detforge.data.validity import stated_size_matches
from detforge.errors import DetforgeError


@dataclass(eq=False)
class LoadedScan:
    """A checked dataset that came from a reader; ``rows.file`` indexes ``ds.images``."""

    ds: Dataset
    infos: list[ImageInfo]
    rows: LabelRows
    verdict: BoxVerdict
    findings: list[Finding] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    size_mismatch: list[int] = field(default_factory=list)
    """Images whose stated size is not their real size (``--fix`` leaves them out)."""


def _where(ds: Dataset) -> list[str]:
    """The file each image's findings name: its VOC XML file (``meta["xml_paths"]``), else
    the image (COCO box findings name the image)."""
    paths = [str(p) for p in ds.images.path]
    xmls = per_image(ds, "xml_paths")
    if xmls is None:
        return paths
    return [str(x) or p for x, p in zip(xmls, paths, strict=True)]


# Over 80 lines on purpose: the check's passes in order, as scan_darknet.
def scan_loaded(
    source: str | os.PathLike[str],
    *,
    fmt: str,
    deep: bool = False,
    label_map: str | os.PathLike[str] | None = None,
    group_by: str | None = None,
    cache: bool = True,
    limits: CheckLimits = DEFAULT_LIMITS,
    ds: Dataset | None = None,
) -> LoadedScan:
    """Read ``source`` with its format's reader and check everything (module docstring);
    ``limits``: thresholds of the heuristic warnings; ``ds``: ``source`` already read (its
    images must be files: TFRecords extracted)."""
    from detforge.formats.detect import read_any

    t0 = time.perf_counter()
    if ds is None:
        ds = read_any(source, format=fmt)
    src = Path(source)
    paths = [str(p) for p in ds.images.path]
    where = _where(ds)
    table = cached_images(str(src), paths, deep, cache)
    infos = table.infos
    findings = image_findings(paths, infos, tiny=limits.tiny_image_px)
    sizes = np.asarray([oriented_size(i) for i in infos], dtype=np.int64).reshape(-1, 2)
    stated_w, stated_h = ds.images.width.copy(), ds.images.height.copy()
    mismatched: list[int] = []
    for i, info in enumerate(infos):
        sw, sh = int(stated_w[i]), int(stated_h[i])
        if info.problem or sw <= 0 or sh <= 0:
            continue
        if not stated_size_matches((sw, sh), (info.width, info.height), info.orientation):
            mismatched.append(i)  # --fix cannot tell which size the boxes were drawn on
            findings.append(
                finding(
                    "image-size-mismatch",
                    f"the annotation says {sw} x {sh} px but the image is {sizes[i][0]} x "
                    f"{sizes[i][1]}; boxes were drawn on another version of the image -- "
                    "re-annotate or fix the stated size",
                    path=where[i],
                )
            )
    w = np.where(stated_w > 0, stated_w, sizes[:, 0])
    h = np.where(stated_h > 0, stated_h, sizes[:, 1])
    img = ds.boxes.image
    xyxy = None
    if ds.boxes.format is not BoxFormat.CXCYWH_NORM:
        xyxy = convert_boxes(ds.boxes.coords, ds.boxes.format, BoxFormat.XYXY_PIXEL)
    known = (w[img] > 0) & (h[img] > 0)
    if xyxy is None:
        norm = ds.boxes.coords.copy()
    else:
        wb, hb = np.maximum(w[img], 1), np.maximum(h[img], 1)
        norm = np.column_stack(
            [
                (xyxy[:, 0] + xyxy[:, 2]) / 2 / wb,
                (xyxy[:, 1] + xyxy[:, 3]) / 2 / hb,
                (xyxy[:, 2] - xyxy[:, 0]) / wb,
                (xyxy[:, 3] - xyxy[:, 1]) / hb,
            ]
        )
    findings += invalid_box_findings(ds)
    voc_zero = np.zeros(len(img), dtype=bool)  # the reader already left out invalid boxes
    rows = LabelRows(
        file=img.astype(np.int64),
        line=np.zeros(len(img), dtype=np.int64),
        cls=ds.boxes.cls.astype(np.float64),
        coords=norm,
        int_text=np.ones(len(img), dtype=bool),
    )
    skip = voc_zero | ~known  # already reported, or no size to normalize by
    sel = np.flatnonzero(~skip)
    desc = _describe(ds, fmt, xyxy)
    sub = LabelRows(
        rows.file[sel],
        rows.line[sel],
        rows.cls[sel],
        norm[sel],
        rows.int_text[sel],
        describe=None if desc is None else [desc[j] for j in sel.tolist()],
    )
    v, box_findings = check_boxes(
        sub,
        where,
        num_classes=ds.num_classes,
        widths=w,
        heights=h,
        near_iou=limits.near_duplicate_iou,
    )
    findings += box_findings
    bad, clip, dup = skip.copy(), np.zeros_like(skip), np.zeros_like(skip)
    bad[sel] |= v.bad
    clip[sel], dup[sel] = v.clip, v.duplicate
    reason = np.where(voc_zero, "box-zero-size", "").astype(object)
    if v.reason is not None:
        reason[sel] = v.reason
    verdict = BoxVerdict(bad=bad, clip=clip, duplicate=dup, reason=reason)
    findings += check_names(list(ds.class_names), path=str(src), lines=False)
    kept = ~verdict.bad & ~verdict.duplicate
    findings += check_class_counts(
        ds.boxes.cls[kept],
        list(ds.class_names),
        path=str(src),
        imbalance=limits.imbalance_ratio,
    )
    if label_map is not None:
        findings += _label_map(label_map, list(ds.class_names))
    splits = [str(s) for s in ds.images.split]
    findings += check_split_overlap(paths, splits)
    if len(set(splits)) > 1:
        findings += check_identical(paths, splits, full_digests(paths, splits, table))
        if group_by:
            from detforge.data.split import group_keys

            findings += check_group_leaks(paths, splits, group_keys(paths, group_by)[0])
    store_images(table, paths, deep)
    findings = sort_findings(findings)
    counts = severity_counts(findings)
    summary: dict[str, Any] = {
        "source": str(src),
        "format": fmt,
        "images": ds.num_images,
        "splits": {s: splits.count(s) for s in dict.fromkeys(splits)},
        "boxes": int(kept.sum()),
        "classes": ds.num_classes,
        "errors": counts["error"],
        "warnings": counts["warning"],
        "infos": counts["info"],
        "deep": deep,
        "cached_files": table.reused,
        "files": len(paths),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    if table.note:
        summary["notes"] = [table.note]
    return LoadedScan(ds, infos, rows, verdict, findings, summary, mismatched)


def invalid_box_findings(ds: Dataset) -> list[Finding]:
    """One error finding per box or image size the reader left out
    (:mod:`detforge.data.validity`), naming its file and record."""
    from detforge.data.validity import CODES as RULE
    from detforge.data.validity import invalid_boxes

    return [
        finding(
            b.code,
            f"{b.record}: {b.detail}: {RULE[b.code]} -- fix or delete it (--fix and "
            "convert --skip-bad leave it out)",
            path=b.path,
        )
        for b in invalid_boxes(ds)
    ]


def _describe(ds: Dataset, fmt: str, xyxy: NDArray[np.float64] | None) -> list[str] | None:
    """Each box as its source writes it: VOC 1-based corners, COCO ``[x, y, w, h]``."""
    if xyxy is None:
        return None
    names = [ds.class_names[c] for c in ds.boxes.cls.tolist()]
    if fmt == "voc":
        return [
            f"{n!r} box xmin={b[0] + 1:g} ymin={b[1] + 1:g} xmax={b[2]:g} ymax={b[3]:g}"
            for n, b in zip(names, xyxy.tolist(), strict=True)
        ]
    return [
        f"{n!r} box bbox=[{b[0]:g}, {b[1]:g}, {b[2] - b[0]:g}, {b[3] - b[1]:g}]"
        for n, b in zip(names, xyxy.tolist(), strict=True)
    ]


def _label_map(path: str | os.PathLike[str], names: list[str]) -> list[Finding]:
    from detforge.formats.labelmap import read_label_map

    try:
        mapping = read_label_map(path)
    except DetforgeError as exc:
        return [finding("read-error", exc.message, path=os.fspath(path), line=exc.line)]
    return check_label_map_names(mapping, names, path=os.fspath(path))
