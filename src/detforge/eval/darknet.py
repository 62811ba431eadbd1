"""The Darknet protocol, identical to AlexeyAB Darknet's ``detector map``.

``validate_detector_map`` (``src/detector.c``) rules reproduced here:

* boxes are float32 ``[cx, cy, w, h]`` normalized; IoU is Darknet's float32 ``box_iou``;
* images are processed in list order and, inside an image, detections in their given order;
  a detection (``prob > 0``) is matched to the truth of its class with the highest IoU that is
  *strictly greater* than the IoU threshold (the first such truth on equal IoU), without regard
  to other detections (a truth can be hit several times; only the first hit in score order
  counts later);
* an unmatched detection overlapping a *difficult* truth of its class is dropped from the AP
  computation (it still counts as FP at ``--conf``);
* at the confidence threshold (``prob > conf``): a matched detection is a TP when no earlier
  detection of the same image (any confidence) matched the same truth; otherwise an FP.
  Average IoU = the sum of the TPs' IoUs / (TP + FP), all in float32;
* for AP, detections of all classes are sorted by probability (descending, stable: Darknet's
  ``qsort`` on glibc keeps ties in order), a truth's first detection is a TP, later ones FPs;
  precision ``tp/(tp+fp)`` and recall ``tp/n_truth`` in double;
* ``points=0``: area under the monotone PR curve over every rank, including Darknet's final
  ``recall[0] * precision`` term; ``points=N``: mean of the best precision at recall
  ``>= i/(N-1)``; mAP = sum of class APs / number of classes in the names file.

Difficult truths do not count as truths. Crowd regions from COCO are treated as difficult.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from detforge.eval.iou import darknet_iou

I64 = NDArray[np.int64]
F32 = NDArray[np.float32]
F64 = NDArray[np.float64]


def _best_truth(
    d_img: I64, d_cls: I64, d_box: F32, t_img: I64, t_cls: I64, t_box: F32, thr: np.float32
) -> tuple[I64, F32]:
    """For each detection the index of its best truth (IoU > thr, first on ties) or -1."""
    n_cls = int(max(d_cls.max(initial=-1), t_cls.max(initial=-1))) + 1
    n_img = int(max(d_img.max(initial=-1), t_img.max(initial=-1))) + 1
    t_key = t_img * n_cls + t_cls
    t_order = np.argsort(t_key, kind="stable")
    t_sorted = t_key[t_order]
    d_key = d_img * n_cls + d_cls
    lo = np.searchsorted(t_sorted, d_key, side="left")
    cnt = np.searchsorted(t_sorted, d_key, side="right") - lo
    best = np.full(len(d_img), -1, dtype=np.int64)
    best_iou = np.zeros(len(d_img), dtype=np.float32)
    tot = int(cnt.sum())
    if not tot:
        return best, best_iou
    del n_img
    det = np.repeat(np.arange(len(d_img)), cnt)
    first = np.cumsum(cnt) - cnt
    tru = t_order[np.repeat(lo - first, cnt) + np.arange(tot)]
    iou = darknet_iou(d_box[det], t_box[tru])
    ok = iou > thr
    det, tru, iou = det[ok], tru[ok], iou[ok]
    order = np.lexsort((tru, -iou, det))
    det, tru, iou = det[order], tru[order], iou[order]
    head = np.ones(len(det), dtype=bool)
    head[1:] = det[1:] != det[:-1]
    best[det[head]] = tru[head]
    best_iou[det[head]] = iou[head]
    return best, best_iou


def _first_of(keys: I64) -> NDArray[np.bool_]:
    """``True`` at the first occurrence of each key (keys ``< 0`` never count)."""
    out = np.zeros(len(keys), dtype=bool)
    ok = np.flatnonzero(keys >= 0)
    if len(ok):
        _, first = np.unique(keys[ok], return_index=True)
        out[ok[first]] = True
    return out


def _seq_sum(x: F64) -> float:
    """Left-to-right float64 sum (C's ``+=`` loop), not numpy's pairwise sum."""
    return float(np.cumsum(x)[-1]) if len(x) else 0.0


def _class_ap(prec: F64, rec: F64, points: int) -> float:
    """AP of one class from its own ranks (see the module docstring for the rules)."""
    n = len(prec)
    if n == 0:
        return 0.0
    mono = np.maximum.accumulate(prec[::-1])[::-1]  # max(prec[j:])
    if points == 0:
        j = np.arange(n - 2, -1, -1)
        terms = np.concatenate([(rec[j + 1] - rec[j]) * mono[j], [rec[0] * mono[0]]])
        return _seq_sum(terms)
    cur = np.arange(points) * 1.0 / (points - 1)
    first = np.searchsorted(rec, cur, side="left")  # rec is non-decreasing
    vals = np.where(first < n, mono[np.minimum(first, n - 1)], 0.0)
    vals = np.maximum(vals, 0.0)
    return _seq_sum(vals) / points


def _match(
    gt_image: I64,
    gt_cls: I64,
    gt_box: F32,
    gt_difficult: NDArray[np.bool_],
    dt_image: I64,
    dt_prob: F32,
    dt_cls: I64,
    dt_box: F32,
    thr: np.float32,
) -> tuple[I64, F32, I64, F32, NDArray[np.bool_], I64]:
    """Darknet's matching pass.

    Boxes and probabilities are cast to float32. Keeps detections with ``prob > 0`` in
    processing order (images in list order, detections in given order) and matches each to
    its best non-difficult truth of its class (IoU > thr); an unmatched one overlapping a
    difficult truth of its class is marked dropped.
    Returns ``(d_cls, d_prob, best, best_iou, dropped, t_idx)``: the kept detections' class
    and probability, each one's truth index into ``t_idx`` (``-1``: none) and IoU with it,
    the dropped mask, and the non-difficult truths' positions in unique truth order.
    """
    gt_box = np.asarray(gt_box, dtype=np.float32)
    dt_box = np.asarray(dt_box, dtype=np.float32)
    prob = np.asarray(dt_prob, dtype=np.float32)
    keep = np.flatnonzero(prob > 0)
    keep = keep[np.argsort(dt_image[keep], kind="stable")]
    d_img, d_cls, d_box, d_prob = dt_image[keep], dt_cls[keep], dt_box[keep], prob[keep]
    normal = ~np.asarray(gt_difficult, dtype=bool)
    t_idx = np.flatnonzero(normal)
    t_idx = t_idx[np.argsort(gt_image[t_idx], kind="stable")]  # unique truth order
    f_idx = np.flatnonzero(~normal)
    best, best_iou = _best_truth(
        d_img, d_cls, d_box, gt_image[t_idx], gt_cls[t_idx], gt_box[t_idx], thr
    )
    dropped = np.zeros(len(d_img), dtype=bool)
    if len(f_idx):
        um = np.flatnonzero(best < 0)
        hit, _ = _best_truth(
            d_img[um], d_cls[um], d_box[um], gt_image[f_idx], gt_cls[f_idx], gt_box[f_idx], thr
        )
        dropped[um[hit >= 0]] = True
    return d_cls, d_prob, best, best_iou, dropped, t_idx


def _per_class(
    s_cls: I64,
    s_prob: F32,
    s_tp: NDArray[np.bool_],
    truth_count: I64,
    tp_k: I64,
    fp_k: I64,
    points: int,
) -> tuple[list[dict[str, Any]], list[tuple[F64, F64, F64]], F64]:
    """Per-class rows, PR curves and APs.

    ``s_*`` are the kept detections sorted by probability (descending, stable) with ``s_tp``
    marking a truth's first detection; ``truth_count``/``tp_k``/``fp_k`` are ``(K,)`` counts
    (the last two at ``--conf``). Precision/recall curves are float64 over each class's ranks;
    the ``--conf`` precision/recall in the rows are float32, as Darknet prints them.
    Returns ``(per_class, curves [(precision, recall, prob)], aps (K,))``.
    """
    K = len(truth_count)
    per_class: list[dict[str, Any]] = []
    curves: list[tuple[F64, F64, F64]] = []
    aps = np.zeros(K)
    for k in range(K):
        mine = s_cls == k
        tp = np.cumsum(s_tp[mine]).astype(np.float64)
        n = np.arange(1, len(tp) + 1, dtype=np.float64)
        prec = tp / n
        rec = tp / float(truth_count[k]) if truth_count[k] > 0 else np.zeros(len(tp))
        aps[k] = _class_ap(prec, rec, points)
        curves.append((prec, rec, s_prob[mine].astype(np.float64)))
        t32, f32_ = np.float32(tp_k[k]), np.float32(fp_k[k])
        with np.errstate(divide="ignore", invalid="ignore"):
            cp = t32 / (t32 + f32_)
            cr = t32 / (t32 + np.float32(truth_count[k] - tp_k[k]))
        per_class.append(
            {
                "class": k,
                "AP": float(aps[k]),
                "gt": int(truth_count[k]),
                "detections": int(mine.sum()),
                "tp": int(tp_k[k]),
                "fp": int(fp_k[k]),
                "precision": float(cp),
                "recall": float(cr),
            }
        )
    return per_class, curves, aps


def darknet_evaluate(
    *,
    gt_image: I64,
    gt_cls: I64,
    gt_box: F32,
    gt_difficult: NDArray[np.bool_],
    dt_image: I64,
    dt_cls: I64,
    dt_box: F32,
    dt_prob: F32,
    num_classes: int,
    iou_thresh: float = 0.5,
    conf_thresh: float = 0.25,
    points: int = 0,
) -> dict[str, Any]:
    """Darknet ``detector map`` numbers.

    Boxes are ``(N, 4)`` cxcywh normalized (cast to float32); ``gt_image``/``dt_image`` are
    image positions in list order; detections of one image are processed in array order.
    Returns ``{"mAP", "iou_thresh", "points", "conf_thresh", "precision", "recall", "f1",
    "tp", "fp", "fn", "avg_iou", "per_class": [...], "curves": [(precision, recall, prob)]}``.
    """
    if points not in (0,) and points < 2:
        raise ValueError("points must be 0 (area under the curve) or >= 2")
    K = int(num_classes)
    thr = np.float32(iou_thresh)
    conf = np.float32(conf_thresh)
    d_cls, d_prob, best, best_iou, dropped, t_idx = _match(
        gt_image, gt_cls, gt_box, gt_difficult, dt_image, dt_prob, dt_cls, dt_box, thr
    )
    truth_count = np.bincount(gt_cls[t_idx], minlength=K)[:K]
    n_truth = len(t_idx)

    # At --conf: TP when this is the first detection (processing order) to hit its truth.
    first_hit = _first_of(np.where(dropped, -1, best))
    above = d_prob > conf
    tp_c = above & first_hit
    fp_c = above & ~tp_c
    tp_t, fp_t = int(tp_c.sum()), int(fp_c.sum())
    iou_sum = np.cumsum(np.where(tp_c, best_iou, np.float32(0)), dtype=np.float32)
    avg_iou = float(iou_sum[-1]) if len(iou_sum) else 0.0
    if tp_t + fp_t > 0:
        avg_iou = float(np.float32(avg_iou) / np.float32(tp_t + fp_t))
    tp_k = np.bincount(d_cls[tp_c], minlength=K)[:K]
    fp_k = np.bincount(d_cls[fp_c], minlength=K)[:K]

    # AP: kept detections sorted by probability; a truth's first detection is the TP.
    kept = np.flatnonzero(~dropped)
    kept = kept[np.argsort(-d_prob[kept], kind="stable")]
    per_class, curves, aps = _per_class(
        d_cls[kept], d_prob[kept], _first_of(best[kept]), truth_count, tp_k, fp_k, points
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        p32 = np.float32(tp_t) / (np.float32(tp_t) + np.float32(fp_t))
        r32 = np.float32(tp_t) / (np.float32(tp_t) + np.float32(n_truth - tp_t))
        f1 = np.float32(2) * p32 * r32 / (p32 + r32)
    return {
        "mAP": _seq_sum(aps) / K if K else 0.0,
        "iou_thresh": float(iou_thresh),
        "points": int(points),
        "conf_thresh": float(conf_thresh),
        "precision": float(p32),
        "recall": float(r32),
        "f1": float(f1),
        "tp": tp_t,
        "fp": fp_t,
        "fn": n_truth - tp_t,
        "avg_iou": avg_iou,
        "detections": len(kept),
        "truths": n_truth,
        "per_class": per_class,
        "curves": curves,
    }
