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
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from numpy.typing import NDArray

from detforge.models.darknet.decode import correct_boxes


class DarknetDetections(NamedTuple):
    """``boxes`` (K, 4) float32 xyxy image pixels, ``scores`` (K,), ``classes`` (K,) int64;
    sorted by decreasing score."""

    boxes: NDArray[np.float32]
    scores: NDArray[np.float32]
    classes: NDArray[np.int64]


def _overlap(
    a: NDArray[np.float64], b: NDArray[np.float64], kind: str, beta: float
) -> NDArray[np.float64]:
    """Overlap of box ``a`` (4,) with boxes ``b`` (M, 4), both cx, cy, w, h."""
    ax1, ay1, ax2, ay2 = a[0] - a[2] / 2, a[1] - a[3] / 2, a[0] + a[2] / 2, a[1] + a[3] / 2
    bx1, by1 = b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2
    bx2, by2 = b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2
    iw = np.minimum(ax2, bx2) - np.maximum(ax1, bx1)
    ih = np.minimum(ay2, by2) - np.maximum(ay1, by1)
    inter = np.where((iw < 0) | (ih < 0), 0.0, iw * ih)
    union = a[2] * a[3] + b[:, 2] * b[:, 3] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where((inter == 0) | (union == 0), 0.0, inter / union)
    if kind == "default":
        return iou
    cw = np.maximum(ax2, bx2) - np.minimum(ax1, bx1)
    ch = np.maximum(ay2, by2) - np.minimum(ay1, by1)
    c = cw * cw + ch * ch
    d = (a[0] - b[:, 0]) ** 2 + (a[1] - b[:, 1]) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.power(d / c, 0.6 if kind == "greedynms" else beta)
    return np.where(c == 0, iou, iou - term)


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


def nms_per_class(
    boxes: NDArray[np.float64],
    probs: NDArray[np.float64],
    nms: float,
    kind: str = "default",
    beta: float = 0.6,
) -> NDArray[np.float64]:
    """Darknet per-class NMS: ``probs`` (N, C) with suppressed entries set to 0 (a copy).

    ``default`` (plain IoU) runs in torchvision's C++ NMS, which suppresses exactly the boxes
    Darknet's loop does (IoU strictly greater than ``nms`` with a higher-scoring kept box)."""
    out = probs.copy()
    if not len(out):
        return out
    for k in np.flatnonzero(out.max(0) > 0):
        col = out[:, k]
        order = np.flatnonzero(col > 0)
        order = order[np.argsort(-col[order], kind="stable")]
        if kind == "default":
            import torch
            from torchvision.ops import nms as tv_nms

            b = torch.from_numpy(boxes[order])
            xyxy = torch.cat([b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2], 1)
            scores = torch.from_numpy(col[order])
            kept = np.zeros(len(order), dtype=bool)
            kept[tv_nms(xyxy, scores, nms).numpy()] = True
        else:
            kept = _greedy(boxes[order], nms, kind, beta)
        col[order[~kept]] = 0.0
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
    r = rows.detach().to("cpu", torch.float32)
    keep = r[:, 4] > thresh
    r = r[keep]
    boxes_t = correct_boxes(r[:, :4], image_w, image_h, net_w, net_h, letter_box)
    boxes = boxes_t.numpy().astype(np.float64)
    probs = (r[:, 4:5] * r[:, 5:]).numpy().astype(np.float64)
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
