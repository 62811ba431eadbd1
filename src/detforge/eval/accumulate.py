"""pycocotools' ``COCOeval.accumulate``, computed from true positives only.

Given the greedy matching of :mod:`detforge.eval.matching`, builds the ``precision``, ``recall``
and ``scores`` arrays exactly as pycocotools does (same integers, same float operations), but
without materialising per-detection cumulative sums for every (threshold, area range,
maxDets) combination; see :func:`accumulate`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


def _recall_counts(npig: I64, rec_thrs: F64) -> I64:
    """``(K, A, R)`` smallest integer ``j`` with ``float64(j / npig) >= rec_thrs[r]``.

    pycocotools searches ``rc = tp / npig`` with ``searchsorted(side='left')``; because the
    float division is monotone in ``tp``, that search equals finding the first cumulative
    true-positive count ``>= j``, which is exact in integers.
    """
    n = np.maximum(npig, 1)[..., None]
    j0 = np.ceil(rec_thrs * n).astype(np.int64)
    cands = np.clip(j0[..., None] + np.arange(-2, 3), 0, None)
    ok = cands / n[..., None] >= rec_thrs[:, None]
    return np.asarray(np.take_along_axis(cands, ok.argmax(-1)[..., None], -1)[..., 0])


# Over 80 lines on purpose: one numeric kernel mirroring pycocotools' accumulate step by step.
def accumulate(
    *,
    rec_thrs: F64,
    max_dets: tuple[int, ...],
    num_iou_thrs: int,
    num_area_rngs: int,
    num_classes: int,
    d_cls: I64,
    d_score: F64,
    rank: I64,
    d_out: NDArray[np.bool_],
    cand: I64,
    match: NDArray[np.int32],
    g_ign: NDArray[np.bool_],
    a_of_c: I64,
    npig: I64,
) -> tuple[F64, F64, F64]:
    """pycocotools' ``accumulate`` from the matching, touching only matched detections.

    Between two true positives precision can only fall, so the monotone precision at any
    sampled recall is the maximum of the precision *at true positives* from there on; and the
    detection pycocotools samples for recall threshold ``r > 0`` is the ``need[r]``-th true
    positive. So only the true positives' ``(tp, fp)`` counts are needed: ``tp`` is their rank
    and ``fp`` = (detections not out of the area range so far) - (matched ones among them),
    from one dense cumulative count per area range and sparse counts over matched detections.

    Args: the COCO parameters ``rec_thrs (R,)``, ``max_dets (M,)`` and the counts ``T`` of
    IoU thresholds and ``A`` of area ranges; then (D kept detections grouped by class and
    image, score descending; ``C = T*A`` combinations): ``d_cls, d_score, rank (D,)``;
    ``d_out (A, D)`` detection area outside the range; ``cand (Dc,)`` detections that have
    candidate pairs and ``match (C, Dc)`` their matched ground truth or -1; ``g_ign (A, G)``;
    ``a_of_c (C,)``; ``npig (K, A)`` non-ignored ground truth counts.

    Returns ``precision (T,R,K,A,M)``, ``recall (T,K,A,M)``, ``scores (T,R,K,A,M)``.
    """
    K, A, T = num_classes, num_area_rngs, num_iou_thrs
    R, M, C = len(rec_thrs), len(max_dets), len(a_of_c)
    precision = -np.ones((T, R, K, A, M))
    recall = -np.ones((T, K, A, M))
    scores = -np.ones((T, R, K, A, M))
    need = _recall_counts(npig, rec_thrs)[:, a_of_c, :].transpose(1, 0, 2)  # (C, K, R)
    idx = need - 1
    idx[..., 0] = 0  # recall 0 samples the first detection: the max over all TPs
    npig_c = npig[:, a_of_c].T  # (C, K)
    t_of_c = np.arange(C) // A

    # Detections come grouped by (class, image) in score order, so a stable sort by (class,
    # -score) yields pycocotools' order: class, score desc, then image, then rank.
    acc = np.lexsort((-d_score, d_cls))
    acc_pos = np.empty(len(acc), dtype=np.int64)
    acc_pos[acc] = np.arange(len(acc))
    perm = np.argsort(acc_pos[cand], kind="stable")
    ci_all, cj_all = np.nonzero(match[:, perm] >= 0)  # sorted by (combination, acc order)
    d_all = cand[perm][cj_all]
    g_all = match[ci_all, perm[cj_all]].astype(np.int64)
    a_all = a_of_c[ci_all]
    tp_all = ~g_ign[a_all, g_all]
    in_all = ~d_out[a_all, d_all]
    seg_all = ci_all * K + d_cls[d_all]
    pos_all = acc_pos[d_all]
    rank_all = rank[d_all]
    for mi, max_det in enumerate(max_dets):
        in_m = rank[acc] < max_det
        sel = acc[in_m]
        n = len(sel)
        pos_of_acc = np.cumsum(in_m) - 1
        cls_sel = d_cls[sel]
        seg_start = np.searchsorted(cls_sel, np.arange(K))
        nseg = np.searchsorted(cls_sel, np.arange(K), side="right") - seg_start
        sel_score = d_score[sel]
        # F(a, x): detections inside area range a among the first x of ``sel``.
        inside = [np.flatnonzero(~d_out[ai, sel]) for ai in range(A)]

        e = np.flatnonzero(rank_all < max_det)
        seg, tp, inr = seg_all[e], tp_all[e], in_all[e]
        pos, a = pos_of_acc[pos_all[e]], a_all[e]
        heads = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1]]) if len(seg) else e[:0]
        lens = np.diff(np.r_[heads, len(seg)])
        tcum = np.cumsum(tp, dtype=np.int64)
        mcum = np.cumsum(inr, dtype=np.int64)
        m_incl = mcum - np.repeat((mcum - inr)[heads], lens)
        t_incl = tcum - np.repeat((tcum - tp)[heads], lens)
        w = np.flatnonzero(tp)
        j = t_incl[w].astype(np.float64)
        k_w = seg[w] % K
        fp = -m_incl[w]
        for ai in range(A):
            aw = np.flatnonzero(a[w] == ai)
            fp[aw] += np.searchsorted(inside[ai], pos[w][aw], side="right")
            fp[aw] -= np.searchsorted(inside[ai], seg_start[k_w[aw]], side="left")
        pr = j / (fp.astype(np.float64) + j + np.spacing(1))
        tp_pos = pos[w]

        n_tp = np.bincount(seg[w], minlength=C * K).reshape(C, K)
        t_start = (np.cumsum(n_tp.ravel()) - n_tp.ravel()).reshape(C, K)
        valid = idx < n_tp[..., None]
        at = t_start[..., None] + np.minimum(idx, n_tp[..., None])
        bnd = np.concatenate([at, (t_start + n_tp)[..., None]], axis=2)
        pr_ext = np.concatenate([pr, [-np.inf]])
        blocks = np.maximum.reduceat(pr_ext, bnd.ravel()).reshape(C, K, R + 1)[..., :R]
        blocks[~valid] = -np.inf
        mono = np.maximum.accumulate(blocks[..., ::-1], axis=-1)[..., ::-1]
        q = np.where(valid, mono, 0.0)
        ss = np.zeros((C, K, R))
        if len(tp_pos):
            ss = np.where(valid, sel_score[tp_pos[np.minimum(at, len(tp_pos) - 1)]], 0.0)
        first = sel_score[np.minimum(seg_start, max(n - 1, 0))] if n else np.zeros(K)
        ss[..., 0] = np.where(nseg > 0, first, 0.0)[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            rc = np.where(nseg[None, :] > 0, n_tp / npig_c, 0.0)
        ci, ki = np.nonzero(npig_c > 0)
        t_c, a_c = t_of_c[ci], a_of_c[ci]
        precision[t_c, :, ki, a_c, mi] = q[ci, ki]
        scores[t_c, :, ki, a_c, mi] = ss[ci, ki]
        recall[t_c, ki, a_c, mi] = rc[ci, ki]
    return precision, recall, scores
