"""Darknet's detection filtering and per-class NMS (``box.c``: ``do_nms_sort``, ``diounms_sort``).

``darknet_detections(rows, image_w, image_h, ...)`` takes one image's decoded rows (N, 5 + C)
(see :mod:`detforge.models.darknet.decode`) and returns what ``darknet detector test`` reports:

1. keep rows with objectness ``> thresh``; class score = objectness x class probability,
   zeroed when ``<= thresh``;
2. per class, in decreasing score, a kept box zeroes the class score of every later box whose
   overlap with it is ``> nms``: IoU (``default``), DIoU with exponent 0.6 (``greedynms``),
   or DIoU with exponent ``beta_nms`` (``diounms``); boxes are compared in image-relative
   ``cx, cy, w, h``;
3. every (box, class) with a non-zero score is one detection (a box may count for several
   classes).

Boxes come back as xyxy pixels of the original image, not clipped.

How (``nms_per_class``): the overlaps do not depend on the class, so the pairs of boxes that
overlap by more than ``nms`` are found once (``_edges``: DIoU <= IoU, and IoU ``> nms`` needs
areas within a factor ``nms`` and x and y overlaps of ``nms`` x the larger side, so few pairs are
compared), then every class's greedy pass runs at once over those pairs (``_scan``). The result
is the same, bit for bit, as the plain loop (``_per_class_loop``), which still serves a
threshold below 0, non-finite or near-zero-size boxes and floods with too many overlapping pairs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch
from numpy.typing import NDArray

from detforge.models.darknet.decode import correct_boxes

Index = NDArray[np.intp]
_PAIRS_AT_ONCE = 1 << 20  # candidate pairs whose overlap is computed in one go
_MAX_EDGES = 1 << 22  # more overlapping pairs than this (dense floods): the per-class loop
_SCAN_AT_ONCE = 1 << 22  # (pair, class) entries one scan round holds
_FEW = 32  # up to this many (box, class) scores: the per-class loop (cheaper when few)
# IoU NMS of up to _LOOP_MAX scores in at most _FEW_CLASSES classes: the per-class loop too
# (torchvision's C++ nms per class: 0.34 ms against 1.14 ms for one photo's yolov4-tiny rows,
# 169 above 0.25 in one class; the pair search pays off with many classes or floods)
_FEW_CLASSES = 4
_LOOP_MAX = 512


class DarknetDetections(NamedTuple):
    """``boxes`` (K, 4) float32 xyxy image pixels, ``scores`` (K,), ``classes`` (K,) int64;
    sorted by decreasing score."""

    boxes: NDArray[np.float32]
    scores: NDArray[np.float32]
    classes: NDArray[np.int64]


def _overlap(
    a: NDArray[np.float64], b: NDArray[np.float64], kind: str, beta: float
) -> NDArray[np.float64]:
    """Overlap of boxes ``a`` and ``b``, cx, cy, w, h, row by row: (M, 4) each, or (4,) with (M, 4).

    ``default``: IoU in the arithmetic of torchvision's ``nms`` (areas from the corners);
    otherwise Darknet's ``box_diounms`` (its ``box_iou`` minus ``(d / c) ** beta``, beta 0.6
    for ``greedynms``), in float64. Symmetric, bit for bit: ``_overlap(a, b) == _overlap(b, a)``."""
    ax1, ay1 = a[..., 0] - a[..., 2] / 2, a[..., 1] - a[..., 3] / 2
    ax2, ay2 = a[..., 0] + a[..., 2] / 2, a[..., 1] + a[..., 3] / 2
    bx1, by1 = b[..., 0] - b[..., 2] / 2, b[..., 1] - b[..., 3] / 2
    bx2, by2 = b[..., 0] + b[..., 2] / 2, b[..., 1] + b[..., 3] / 2
    iw = np.minimum(ax2, bx2) - np.maximum(ax1, bx1)
    ih = np.minimum(ay2, by2) - np.maximum(ay1, by1)
    if kind == "default":
        inter = np.fmax(iw, 0.0) * np.fmax(ih, 0.0)  # fmax: std::max(0, NaN) is 0
        union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(inter / union, dtype=np.float64)
    inter = np.where((iw < 0) | (ih < 0), 0.0, iw * ih)
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where((inter == 0) | (union == 0), 0.0, inter / union)
    cw = np.maximum(ax2, bx2) - np.minimum(ax1, bx1)
    ch = np.maximum(ay2, by2) - np.minimum(ay1, by1)
    c = cw * cw + ch * ch
    d = (a[..., 0] - b[..., 0]) ** 2 + (a[..., 1] - b[..., 1]) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.power(d / c, 0.6 if kind == "greedynms" else beta)
    return np.asarray(np.where(c == 0, iou, iou - term), dtype=np.float64)


def _ranges(starts: Index, lens: Index) -> Index:
    """The index ranges ``[starts[i], starts[i] + lens[i])`` one after another."""
    ends = np.cumsum(lens)
    return np.repeat(starts - (ends - lens), lens) + np.arange(ends[-1] if len(ends) else 0)


def _sweep(x1: NDArray[np.float64], reach: NDArray[np.float64], idx: Index) -> Iterator[Index]:
    """Pairs (2, M) of boxes of ``idx``, in chunks: sorted by ``x1``, each box with the next
    ones whose ``x1`` is below its ``reach``; each pair comes once."""
    o = idx[np.argsort(x1[idx], kind="stable")]
    cnt = np.maximum(np.searchsorted(x1[o], reach[o], side="left") - np.arange(1, len(o) + 1), 0)
    ends = np.cumsum(cnt)
    p0 = 0
    while p0 < len(o):
        done = int(ends[p0 - 1]) if p0 else 0
        p1 = max(int(np.searchsorted(ends, done + _PAIRS_AT_ONCE, side="right")), p0 + 1)
        if ends[p1 - 1] > done:
            pos = np.arange(p0, p1)
            yield np.stack([o[np.repeat(pos, cnt[p0:p1])], o[_ranges(pos + 1, cnt[p0:p1])]])
        p0 = p1


def _edges(boxes: NDArray[np.float64], nms: float, kind: str, beta: float) -> Index | None:
    """Pairs (2, E) ``a < b`` of boxes (N, 4) cx, cy, w, h whose overlap is ``> nms`` (>= 0);
    None when there are more than ``_MAX_EDGES``. The caller checks ``_regular(boxes)``.

    DIoU <= IoU, and IoU ``> nms`` needs (intersection <= smaller box, union >= larger box):
    w, h > 0; smaller area / larger area ``> nms``, and an intersection wider than ``nms`` x the
    wider box and taller than ``nms`` x the taller one. Boxes are binned by log area (bins as
    wide as that ratio), and only boxes in the same or neighbouring bins whose x and y ranges
    overlap that much are compared; bounds are 1e-6 looser, for rounding."""
    x1, x2 = boxes[:, 0] - boxes[:, 2] / 2, boxes[:, 0] + boxes[:, 2] / 2
    y1, y2 = boxes[:, 1] - boxes[:, 3] / 2, boxes[:, 1] + boxes[:, 3] / 2
    w, h = boxes[:, 2], boxes[:, 3]
    t = min(nms, 1.0) * (1 - 1e-6) if nms >= 1e-3 else 0.0
    idx = np.flatnonzero((w > 0) & (h > 0))
    bin_of = np.full(len(boxes), -1, np.int64)
    if len(idx):
        logs = np.log(w[idx] * h[idx])
        span = float(logs.max() - logs.min())
        width = max(-np.log(t) if t > 0 else np.inf, span / 64, 1e-5)
        bin_of[idx] = 0 if width > span else (logs - logs.min()) // width
    out: list[Index] = []
    total = 0
    for k in np.unique(bin_of[idx]):
        for a, b in _sweep(x1, x2 - t * w, np.flatnonzero((bin_of == k) | (bin_of == k + 1))):
            keep = (bin_of[a] == k) | (bin_of[b] == k)  # two boxes in bin k + 1: its turn
            keep &= np.minimum(x2[a], x2[b]) - np.maximum(x1[a], x1[b]) > t * np.maximum(w[a], w[b])
            keep &= np.minimum(y2[a], y2[b]) - np.maximum(y1[a], y1[b]) > t * np.maximum(h[a], h[b])
            a, b = a[keep], b[keep]
            keep = _overlap(boxes[a], boxes[b], kind, beta) > nms
            total += int(keep.sum())
            if total > _MAX_EDGES:
                return None
            out.append(np.sort(np.stack([a[keep], b[keep]]), axis=0))
    return np.concatenate(out, 1) if out else np.zeros((2, 0), np.intp)


def _regular(boxes: NDArray[np.float64]) -> bool:
    """Finite boxes, each w and h 0, negative or at least 1e-6 of its centre's coordinate: the
    rounding of the corners is far below ``_edges``' 1e-6 slack."""
    if not np.isfinite(boxes).all():
        return False
    size, centre = boxes[:, 2:], np.abs(boxes[:, :2])
    return bool(np.all((size <= 0) | (size >= 1e-6 * centre)))


def _scan(edges: Index, out: NDArray[np.float64]) -> None:
    """Darknet's greedy pass for every class at once, zeroing suppressed entries of ``out``
    (N, C) in place, given the box pairs ``edges`` (2, E) whose overlap is ``> nms``.

    In a class, the pair's box with the higher score (the lower index on a tie, as the stable
    sort) comes first; a box is kept when no kept box before it overlaps it. Rounds: boxes with
    nothing left before them are kept, the boxes they overlap are suppressed, which leaves
    others with nothing before them; each pair is looked at a bounded number of times."""
    n = len(out)
    if not edges.shape[1]:
        return
    live = np.flatnonzero(out.max(0) > 0)
    step = max(1, _SCAN_AT_ONCE // max(edges.shape[1], 1))
    for s in range(0, len(live), step):
        cols = live[s : s + step]
        p = out[:, cols]
        pa, pb = p[edges[0]], p[edges[1]]
        k = len(cols)
        flat = np.flatnonzero((pa > 0) & (pb > 0))  # (pair, class) entries, row-major
        a_first = (pa >= pb).ravel()[flat]
        e, c = np.divmod(flat, k)
        a, b = edges[0, e] * k + c, edges[1, e] * k + c
        src, dst = np.where(a_first, a, b), np.where(a_first, b, a)
        gone = _suppressed(src, dst, n * k)
        p[gone // k, gone % k] = 0.0
        out[:, cols] = p


def _suppressed(src: Index, dst: Index, size: int) -> Index:
    """Nodes (< ``size``) the greedy pass suppresses over the edges src -> dst (src first).

    A round costs the edges still open (their source undecided), not ``size``."""
    waiting = np.bincount(dst, minlength=size)  # earlier boxes not known to be suppressed
    state = np.zeros(size, np.int8)  # 0 undecided, 1 kept, 2 suppressed
    kept = src[waiting[src] == 0]
    while kept.size:
        state[kept] = 1
        hit = dst[state[src] == 1]
        state[hit[state[hit] == 0]] = 2
        from_src = state[src]
        freed = dst[from_src == 2]
        np.subtract.at(waiting, freed, 1)
        src, dst = src[from_src == 0], dst[from_src == 0]
        kept = freed[(waiting[freed] == 0) & (state[freed] == 0)]
    return np.flatnonzero(state == 2)


def _greedy(b: NDArray[np.float64], nms: float, kind: str, beta: float) -> NDArray[np.bool_]:
    """Which of the score-sorted boxes ``b`` (n, 4) survive; work grows with the kept ones."""
    n = len(b)
    alive = np.ones(n, dtype=bool)
    i = 0
    while i < n:
        rest = np.flatnonzero(alive[i + 1 :]) + i + 1
        if not rest.size:
            break
        alive[rest[_overlap(b[i], b[rest], kind, beta) > nms]] = False
        nxt = np.flatnonzero(alive[i + 1 :])
        if not nxt.size:
            break
        i = i + 1 + int(nxt[0])
    return alive


def _per_class_loop(
    boxes: NDArray[np.float64], out: NDArray[np.float64], nms: float, kind: str, beta: float
) -> None:
    """The plain pass, class after class, zeroing suppressed entries of ``out`` (N, C) in place:
    ``default`` in torchvision's C++ ``nms``, which suppresses exactly the boxes Darknet's loop
    does (IoU strictly greater than ``nms`` with a higher-scoring kept box), DIoU in ``_greedy``."""
    for k in np.flatnonzero(out.max(0) > 0):
        col = out[:, k]
        order = np.flatnonzero(col > 0)
        order = order[np.argsort(-col[order], kind="stable")]
        if kind == "default":
            from torchvision.ops import nms as tv_nms

            b = torch.from_numpy(boxes[order])
            xyxy = torch.cat([b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2], 1)
            kept = np.zeros(len(order), dtype=bool)
            kept[tv_nms(xyxy, torch.from_numpy(col[order]), nms).numpy()] = True
        else:
            kept = _greedy(boxes[order], nms, kind, beta)
        col[order[~kept]] = 0.0


def nms_per_class(
    boxes: NDArray[np.float64],
    probs: NDArray[np.float64],
    nms: float,
    kind: str = "default",
    beta: float = 0.6,
) -> NDArray[np.float64]:
    """Darknet per-class NMS of boxes (N, 4) cx, cy, w, h (float64): ``probs`` (N, C) with the
    suppressed entries set to 0 (a copy). ``kind``: ``default`` / ``greedynms`` / ``diounms``."""
    out = probs.copy()
    if not len(out) or not out.size:
        return out
    count = np.count_nonzero(out > 0)
    few_classes = np.count_nonzero(out.max(0) > 0) <= _FEW_CLASSES and count <= _LOOP_MAX
    many = count > _FEW and not (kind == "default" and few_classes)
    edges = _edges(boxes, nms, kind, beta) if many and nms >= 0 and _regular(boxes) else None
    if edges is None:
        _per_class_loop(boxes, out, nms, kind, beta)
    else:
        _scan(edges, out)
    return out


def darknet_detections(
    rows: torch.Tensor,
    image_w: int,
    image_h: int,
    net_w: int,
    net_h: int,
    *,
    letter_box: bool = False,
    thresh: float = 0.25,
    nms: float = 0.45,
    nms_kind: str = "default",
    beta_nms: float = 0.6,
) -> DarknetDetections:
    """One image's decoded rows (N, 5 + C) -> its detections (see the module docstring)."""
    r = rows.detach().to("cpu", torch.float32).numpy()
    r = r[r[:, 4] > thresh]
    boxes_t = correct_boxes(torch.from_numpy(r[:, :4]), image_w, image_h, net_w, net_h, letter_box)
    boxes = boxes_t.numpy().astype(np.float64)
    probs = (r[:, 4:5] * r[:, 5:]).astype(np.float64)
    # float32 product, as Darknet computes it, then the threshold
    probs = np.where(probs > thresh, probs, 0.0)
    if nms > 0 and len(boxes):
        probs = nms_per_class(boxes, probs, nms, nms_kind, beta_nms)
    det, cls = np.nonzero(probs)
    scores = probs[det, cls]
    order = np.argsort(-scores, kind="stable")
    det, cls, scores = det[order], cls[order], scores[order]
    b = boxes[det]
    xyxy = np.stack(
        [
            (b[:, 0] - b[:, 2] / 2) * image_w,
            (b[:, 1] - b[:, 3] / 2) * image_h,
            (b[:, 0] + b[:, 2] / 2) * image_w,
            (b[:, 1] + b[:, 3] / 2) * image_h,
        ],
        1,
    )
    return DarknetDetections(
        xyxy.reshape(-1, 4).astype(np.float32), scores.astype(np.float32), cls.astype(np.int64)
    )
