"""The COCO detection protocol, numerically identical to pycocotools' ``COCOeval`` (bbox).

Semantics reproduced (``cocoeval.py`` of pycocotools 2.0.x):

* every ground-truth image and every category of the ground truth is evaluated; a detection
  keeps only the ``maxDets[-1] = 100`` highest-scoring detections per (image, category), ties
  in the order given (stable sort);
* IoU is pycocotools' float64 ``bbIou``; a crowd region counts intersection / detection area
  and may absorb any number of detections; crowd regions are ignored ground truth;
* area ranges ``all/small/medium/large`` use the annotation's ``area`` field (``w*h`` when
  missing) for ground truth and ``w*h`` for detections; unmatched detections outside the
  range and detections matched to ignored ground truth are ignored;
* per (category, area range, maxDets), detections of all images are sorted by score (stable:
  image id order, then rank within the image), precision is made monotone, sampled at the 101
  recall thresholds with ``searchsorted(side='left')``; categories without (non-ignored)
  ground truth get ``-1``; the 12 summary numbers average the entries ``> -1``.

Everything is vectorised: greedy matching walks the detection rank across all groups at once
(:mod:`detforge.eval.matching`), accumulation uses integer cumulative sums, an exact integer
form of the recall-threshold search, and ``maximum.reduceat`` for the monotone precision.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from detforge.eval.accumulate import accumulate
from detforge.eval.iou import coco_pair_iou
from detforge.eval.matching import greedy_match
from detforge.utils.progress import progress

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

STAT_NAMES: tuple[str, ...] = (
    "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl",
)  # fmt: skip
"""Names of pycocotools' 12 summary numbers, in ``COCOeval.stats`` order."""


@dataclass(frozen=True)
class CocoParams:
    """pycocotools' default bbox parameters (constructed the same way, for equal floats)."""

    iou_thrs: F64 = field(
        default_factory=lambda: np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1)
    )
    rec_thrs: F64 = field(
        default_factory=lambda: np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1)
    )
    max_dets: tuple[int, ...] = (1, 10, 100)
    area_rng: tuple[tuple[float, float], ...] = (
        (0**2, 1e5**2),
        (0**2, 32**2),
        (32**2, 96**2),
        (96**2, 1e5**2),
    )
    area_lbl: tuple[str, ...] = ("all", "small", "medium", "large")


@dataclass
class CocoResult:
    """Arrays shaped like pycocotools' ``COCOeval.eval``.

    ``precision`` and ``scores`` are ``(T, R, K, A, M)``, ``recall`` is ``(T, K, A, M)``
    (T IoU thresholds, R recall thresholds, K classes, A area ranges, M maxDets); ``stats`` is
    the ``(12,)`` summary in :data:`STAT_NAMES` order.
    """

    precision: F64
    recall: F64
    scores: F64
    stats: F64
    params: CocoParams


def _chunks(counts: I64, limit: int) -> Iterator[tuple[int, int]]:
    """Split ``range(len(counts))`` into runs whose ``counts`` sum to about ``limit``."""
    total = np.cumsum(counts)
    start = 0
    n = len(counts)
    while start < n:
        base = total[start - 1] if start else 0
        stop = int(np.searchsorted(total, base + limit, side="right"))
        stop = max(stop, start + 1)
        yield start, min(stop, n)
        start = stop


def _candidate_pairs(
    d_key: I64, d_xywh: F64, g_key: I64, g_xywh: F64, g_crowd: NDArray[np.bool_], min_iou: float
) -> tuple[I64, I64, F64]:
    """All (detection, ground truth) pairs of the same group with IoU ``>= min_iou``.

    ``g_key`` must be sorted. Pairs come out ordered by detection, then ground truth.
    """
    lo = np.searchsorted(g_key, d_key, side="left")
    cnt = np.searchsorted(g_key, d_key, side="right") - lo
    outs_d, outs_g, outs_v = [], [], []
    for s, e in _chunks(cnt, 1 << 21):
        c = cnt[s:e]
        tot = int(c.sum())
        if not tot:
            continue
        det = np.repeat(np.arange(s, e, dtype=np.int64), c)
        first = np.cumsum(c) - c
        gt = np.repeat(lo[s:e] - first, c) + np.arange(tot, dtype=np.int64)
        iou = coco_pair_iou(d_xywh[det], g_xywh[gt], g_crowd[gt])
        ok = iou >= min_iou
        outs_d.append(det[ok])
        outs_g.append(gt[ok])
        outs_v.append(iou[ok])
    if not outs_d:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)
    return np.concatenate(outs_d), np.concatenate(outs_g), np.concatenate(outs_v)


_BATCH = 1 << 19
"""Detections evaluated together: classes are independent, so they go in batches of about this
many detections, which keeps every temporary array small (and reused by the allocator)."""


def coco_evaluate(
    *,
    gt_image: I64,
    gt_cls: I64,
    gt_xywh: F64,
    gt_area: F64,
    gt_crowd: NDArray[np.bool_],
    dt_image: I64,
    dt_cls: I64,
    dt_xywh: F64,
    dt_score: F64,
    num_images: int,
    num_classes: int,
    params: CocoParams | None = None,
) -> CocoResult:
    """Evaluate detections against ground truth with pycocotools' bbox protocol.

    Image indices must be positions in *increasing image id* order (pycocotools' order) and
    class indices positions in increasing category id order. Boxes are ``[x, y, w, h]``
    pixels; ``gt_area`` is the annotation ``area`` (NaN -> ``w*h``); ``dt_score`` float64.
    """
    p = params or CocoParams()
    K = int(num_classes)
    T, R, A, M = len(p.iou_thrs), len(p.rec_thrs), len(p.area_rng), len(p.max_dets)
    precision = -np.ones((T, R, K, A, M))
    recall = -np.ones((T, K, A, M))
    scores = -np.ones((T, R, K, A, M))
    # Stable sorts by class keep the given order inside a class (pycocotools' tie order).
    d_order = np.argsort(dt_cls, kind="stable")
    g_order = np.argsort(gt_cls, kind="stable")
    d_at = np.searchsorted(dt_cls[d_order], np.arange(K + 1))
    g_at = np.searchsorted(gt_cls[g_order], np.arange(K + 1))
    bounds = [0]
    while bounds[-1] < K:
        k0 = bounds[-1]
        k1 = int(np.searchsorted(d_at, d_at[k0] + _BATCH, side="right")) - 1
        bounds.append(min(max(k1, k0 + 1), K))
    batches = list(itertools.pairwise(bounds))
    show = None if len(batches) > 2 else False  # a bar only for long evaluations on a TTY
    for k0, k1 in progress(
        batches, total=len(batches), desc="COCO eval", unit="batch", enabled=show
    ):
        di = d_order[d_at[k0] : d_at[k1]]
        gi = g_order[g_at[k0] : g_at[k1]]
        pr, rc, sc = _evaluate_classes(
            p,
            gt_image=gt_image[gi],
            gt_cls=gt_cls[gi] - k0,
            gt_xywh=gt_xywh[gi],
            gt_area=gt_area[gi],
            gt_crowd=gt_crowd[gi],
            dt_image=dt_image[di],
            dt_cls=dt_cls[di] - k0,
            dt_xywh=dt_xywh[di],
            dt_score=dt_score[di],
            num_images=int(num_images),
            num_classes=k1 - k0,
        )
        precision[:, :, k0:k1] = pr
        recall[:, k0:k1] = rc
        scores[:, :, k0:k1] = sc
    res = CocoResult(precision, recall, scores, np.zeros(12), p)
    res.stats = summarize(res)
    return res


def _evaluate_classes(
    p: CocoParams,
    *,
    gt_image: I64,
    gt_cls: I64,
    gt_xywh: F64,
    gt_area: F64,
    gt_crowd: NDArray[np.bool_],
    dt_image: I64,
    dt_cls: I64,
    dt_xywh: F64,
    dt_score: F64,
    num_images: int,
    num_classes: int,
) -> tuple[F64, F64, F64]:
    """:func:`coco_evaluate` for a batch of classes: ``precision, recall, scores`` arrays."""
    n_img, K = num_images, num_classes
    T, A = len(p.iou_thrs), len(p.area_rng)
    rng = np.asarray(p.area_rng, dtype=np.float64)

    # Ground truth grouped by (class, image); annotation order kept inside a group.
    g_key_all = gt_cls.astype(np.int64) * n_img + gt_image
    go = np.argsort(g_key_all, kind="stable")
    g_key, g_xywh, g_crowd = g_key_all[go], gt_xywh[go], gt_crowd[go].astype(bool)
    g_cls = gt_cls[go]
    g_area = gt_area[go].astype(np.float64)
    nan = ~np.isfinite(g_area)
    g_area[nan] = g_xywh[nan, 2] * g_xywh[nan, 3]
    g_ign = g_crowd[None, :] | (g_area[None, :] < rng[:, :1]) | (g_area[None, :] > rng[:, 1:])

    # Detections grouped by (class, image), score descending (stable), top maxDets[-1].
    d_key_all = dt_cls.astype(np.int64) * n_img + dt_image
    do = np.lexsort((-dt_score, d_key_all))
    d_key = d_key_all[do]
    idx = np.arange(len(do))
    first = np.ones(len(do), dtype=bool)
    first[1:] = d_key[1:] != d_key[:-1]
    rank = idx - np.maximum.accumulate(np.where(first, idx, 0))
    keep = rank < p.max_dets[-1]
    do, d_key, rank = do[keep], d_key[keep], rank[keep]
    d_xywh, d_score = dt_xywh[do], dt_score[do].astype(np.float64)
    d_cls = dt_cls[do]
    d_area = d_xywh[:, 2] * d_xywh[:, 3]
    d_out = (d_area[None, :] < rng[:, :1]) | (d_area[None, :] > rng[:, 1:])  # (A, D)

    # Greedy matching for every (threshold, area range) combination c = t * A + a.
    thr_c = np.repeat(np.minimum(p.iou_thrs, 1 - 1e-10), A)
    a_of_c = np.tile(np.arange(A), T)
    pd, pg, pv = _candidate_pairs(d_key, d_xywh, g_key, g_xywh, g_crowd, float(thr_c.min()))
    cand, pd_c = np.unique(pd, return_inverse=True)
    match = greedy_match(
        pair_det=pd_c.reshape(-1),
        pair_gt=pg,
        pair_iou=pv,
        det_rank=rank[cand],
        thresholds=thr_c,
        gt_ignore=g_ign[a_of_c],
        gt_crowd=g_crowd,
        num_dets=len(cand),
    )  # (C, len(cand))
    npig = np.stack([np.bincount(g_cls[~g_ign[a]], minlength=K) for a in range(A)], axis=1)
    return accumulate(
        rec_thrs=p.rec_thrs,
        max_dets=p.max_dets,
        num_iou_thrs=T,
        num_area_rngs=A,
        num_classes=K,
        d_cls=d_cls,
        d_score=d_score,
        rank=rank,
        d_out=d_out,
        cand=cand,
        match=match,
        g_ign=g_ign,
        a_of_c=a_of_c,
        npig=npig,
    )


def _summarize_one(
    r: CocoResult, ap: bool, iou_thr: float | None = None, area: str = "all", max_dets: int = 100
) -> float:
    """One line of pycocotools' ``summarize``: the mean of the entries ``> -1`` (else -1)."""
    p = r.params
    aind = [i for i, lbl in enumerate(p.area_lbl) if lbl == area]
    mind = [i for i, m in enumerate(p.max_dets) if m == max_dets]
    if ap:
        s = r.precision
        if iou_thr is not None:
            s = s[np.where(iou_thr == p.iou_thrs)[0]]
        s = s[:, :, :, aind, mind]
    else:
        s = r.recall
        if iou_thr is not None:
            s = s[np.where(iou_thr == p.iou_thrs)[0]]
        s = s[:, :, aind, mind]
    v = s[s > -1]
    return -1.0 if len(v) == 0 else float(np.mean(v))


def summarize(r: CocoResult) -> F64:
    """The 12 summary numbers (pycocotools' ``_summarizeDets``), ``(12,)``."""
    md = r.params.max_dets
    return np.array(
        [
            _summarize_one(r, True),
            _summarize_one(r, True, iou_thr=0.5, max_dets=md[2]),
            _summarize_one(r, True, iou_thr=0.75, max_dets=md[2]),
            _summarize_one(r, True, area="small", max_dets=md[2]),
            _summarize_one(r, True, area="medium", max_dets=md[2]),
            _summarize_one(r, True, area="large", max_dets=md[2]),
            _summarize_one(r, False, max_dets=md[0]),
            _summarize_one(r, False, max_dets=md[1]),
            _summarize_one(r, False, max_dets=md[2]),
            _summarize_one(r, False, area="small", max_dets=md[2]),
            _summarize_one(r, False, area="medium", max_dets=md[2]),
            _summarize_one(r, False, area="large", max_dets=md[2]),
        ]
    )


def per_class(r: CocoResult, class_names: tuple[str, ...]) -> list[dict[str, object]]:
    """Per-class ``AP`` (IoU .50:.95), ``AP50``, ``AP75`` and ``AR100`` (area all, 100 dets);
    ``None`` for a class without ground truth."""

    def mean(x: F64) -> float | None:
        v = x[x > -1]
        return None if len(v) == 0 else float(np.mean(v))

    t50 = np.where(r.params.iou_thrs == 0.5)[0]
    t75 = np.where(r.params.iou_thrs == 0.75)[0]
    out: list[dict[str, object]] = []
    for k, name in enumerate(class_names):
        out.append(
            {
                "class": k,
                "name": name,
                "AP": mean(r.precision[:, :, k, 0, -1]),
                "AP50": mean(r.precision[t50, :, k, 0, -1]),
                "AP75": mean(r.precision[t75, :, k, 0, -1]),
                "AR100": mean(r.recall[:, k, 0, -1]),
            }
        )
    return out
