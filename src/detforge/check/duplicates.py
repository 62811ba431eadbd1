"""Exact and near-duplicate boxes, found in bulk over all label files at once.

Exact duplicates: rows equal in file, class and all four coordinates (a lexicographic sort,
then neighbours compared). Near duplicates: same file and class, IoU >= a threshold; all
same-group pairs are enumerated with array arithmetic (no Python loop per file), in chunks so
an image with thousands of boxes stays bounded in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from detforge.check.findings import Finding, finding

if TYPE_CHECKING:
    from detforge.check.rows import LabelRows


def where(
    paths: Sequence[str], file: NDArray[np.int64], line: NDArray[np.int64], i: int
) -> dict[str, Any]:
    """``{"path": ..., "line": ...}`` of row ``i`` (``line`` ``None`` when ``<= 0``)."""
    ln = int(line[i])
    return {"path": paths[int(file[i])], "line": ln if ln > 0 else None}


def box_text(rows: LabelRows, i: int) -> str:
    """``class 1 box (cx 0.5, cy 0.5, w 0.1, h 0.2)`` to locate a box that has no line."""
    if rows.describe is not None:
        return rows.describe[i]
    c = rows.coords[i]
    return f"class {rows.cls[i]:g} box (cx {c[0]:.4f}, cy {c[1]:.4f}, w {c[2]:.4f}, h {c[3]:.4f})"


def exact_duplicates(
    rows: LabelRows, valid: NDArray[np.bool_]
) -> tuple[NDArray[np.bool_], NDArray[np.int64]]:
    """``(is_repeat (K,), index of the first equal row (K,))`` among ``valid`` rows."""
    k = len(rows)
    is_dup = np.zeros(k, dtype=bool)
    first = np.arange(k, dtype=np.int64)
    idx = np.flatnonzero(valid)
    if len(idx) < 2:
        return is_dup, first
    keys = np.column_stack([rows.file[idx].astype(np.float64), rows.cls[idx], rows.coords[idx]])
    order = np.lexsort(keys.T[::-1])  # sort by file, cls, coords; stable keeps line order
    sk = keys[order]
    same = np.all(sk[1:] == sk[:-1], axis=1)
    if not same.any():
        return is_dup, first
    # group starts: position of the first row of each run of equal keys
    start = np.concatenate([[True], ~same])
    run_first = np.maximum.accumulate(np.where(start, np.arange(len(sk)), 0))
    sorted_idx = idx[order]
    is_dup[sorted_idx[1:][same]] = True
    first[sorted_idx] = sorted_idx[run_first]
    return is_dup, first


def _pairs_within_groups(group: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """All index pairs ``i < j`` with ``group[i] == group[j]``, for ``group`` sorted ascending."""
    n = len(group)
    if n < 2:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    _, starts, counts = np.unique(group, return_index=True, return_counts=True)
    ends = np.repeat(starts + counts, counts)
    partners = ends - 1 - np.arange(n)
    total = int(partners.sum())
    i = np.repeat(np.arange(n, dtype=np.int64), partners)
    offs = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(partners) - partners, partners)
    return i, i + offs + 1


def near_duplicates(
    rows: LabelRows,
    paths: Sequence[str],
    valid: NDArray[np.bool_],
    thr: float,
    by_line: bool,
) -> list[Finding]:
    """``box-near-duplicate`` for same-file, same-class pairs with IoU >= ``thr``."""
    idx = np.flatnonzero(valid)
    if len(idx) < 2:
        return []
    key = rows.file[idx] * 100003 + rows.cls[idx].astype(np.int64)
    order = np.argsort(key, kind="stable")
    idx, key = idx[order], key[order]
    out: list[Finding] = []
    # chunk by groups so one image with thousands of boxes stays bounded in memory
    a, b = _pairs_within_groups(key)
    c = rows.coords
    xyxy = np.column_stack([c[:, :2] - c[:, 2:] / 2, c[:, :2] + c[:, 2:] / 2])
    for s in range(0, len(a), 1 << 22):
        ia, ib = idx[a[s : s + (1 << 22)]], idx[b[s : s + (1 << 22)]]
        p, q = xyxy[ia], xyxy[ib]
        iw = np.clip(np.minimum(p[:, 2], q[:, 2]) - np.maximum(p[:, 0], q[:, 0]), 0, None)
        ih = np.clip(np.minimum(p[:, 3], q[:, 3]) - np.maximum(p[:, 1], q[:, 1]), 0, None)
        inter = iw * ih
        union = c[ia, 2] * c[ia, 3] + c[ib, 2] * c[ib, 3] - inter
        iou = inter / np.where(union > 0, union, 1)
        for j in np.flatnonzero(iou >= thr):
            first, second = (
                (ia[j], ib[j]) if rows.line[ia[j]] <= rows.line[ib[j]] else (ib[j], ia[j])
            )
            ln = int(rows.line[first])
            if ln > 0 and by_line:
                this, other = "box", f"line {ln}"
            else:
                this, other = box_text(rows, int(second)), box_text(rows, int(first))
            out.append(
                finding(
                    "box-near-duplicate",
                    f"{this} overlaps {other} of the same class with IoU {iou[j]:.2f}; "
                    "probably one object labelled twice: delete one of them",
                    **where(paths, rows.file, rows.line, int(second)),
                )
            )
    return out
