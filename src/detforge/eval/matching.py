"""pycocotools' greedy detection-to-ground-truth matching, vectorised across groups.

pycocotools (``COCOeval.evaluateImg``) matches, separately for every (image, category) group,
every IoU threshold ``t`` and every area range ``a``, the detections in score order (stable):
each takes, among the ground truths still free (crowd regions never get used up) whose IoU is
``>= t``, the one with the highest IoU -- preferring ground truths that are not ignored for
``a`` (crowd, or ``area`` outside the range) and, among equal IoUs, the last one in the
annotation order. The greedy order only matters *within* a group, so this module walks the
detection rank ``r = 0, 1, ...`` and matches the ``r``-th detection of *every* group at once,
for all ``T x A`` (threshold, area range) combinations together.

Only candidate pairs with IoU ``>= min(thresholds)`` are passed in, so the work is
proportional to the number of overlapping (detection, ground truth) pairs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

I64 = NDArray[np.int64]


def greedy_match(
    *,
    pair_det: I64,
    pair_gt: I64,
    pair_iou: NDArray[np.float64],
    det_rank: I64,
    thresholds: NDArray[np.float64],
    gt_ignore: NDArray[np.bool_],
    gt_crowd: NDArray[np.bool_],
    num_dets: int,
) -> NDArray[np.int32]:
    """Match detections to ground truths for ``C`` (threshold, area range) combinations.

    Args:
        pair_det, pair_gt, pair_iou: ``(P,)`` candidate pairs (detection index, ground-truth
            index, IoU); both boxes belong to the same (image, category) group. Ground-truth
            indices must follow the annotation order within a group (ties go to the larger).
        det_rank: ``(D,)`` rank of each detection in its group (0 = highest score).
        thresholds: ``(C,)`` IoU threshold of each combination.
        gt_ignore: ``(C, G)`` whether each ground truth is ignored in each combination.
        gt_crowd: ``(G,)`` crowd flags (a crowd region can match any number of detections).
        num_dets: ``D``.

    Returns:
        ``(C, D)`` int32: the matched ground-truth index, or ``-1``.
    """
    n_comb, n_gt = gt_ignore.shape
    out = np.full((n_comb, num_dets), -1, dtype=np.int32)
    if not len(pair_det):
        return out
    rank = det_rank[pair_det]
    order = np.lexsort((pair_gt, pair_iou, pair_det, rank))
    p_det, p_gt, p_iou, p_rank = pair_det[order], pair_gt[order], pair_iou[order], rank[order]
    used = np.zeros((n_comb, n_gt), dtype=bool)
    keep_g = ~gt_ignore
    bounds = np.flatnonzero(np.diff(p_rank)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(p_rank)]])
    thr = thresholds[:, None]
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        g = p_gt[s:e]
        d = p_det[s:e]
        n = e - s
        seg = np.concatenate([[0], np.flatnonzero(d[1:] != d[:-1]) + 1])
        free = ~used[:, g]
        free |= gt_crowd[g]
        elig = p_iou[s:e] >= thr
        elig &= free
        # tier 2: eligible and not ignored; tier 1: eligible but ignored; 0: not eligible.
        kt = np.dtype(np.int32 if n < (1 << 29) else np.int64)  # keys go up to 3n
        tier: NDArray[np.signedinteger[Any]] = elig.astype(kt)
        tier += elig & keep_g[:, g]
        key = tier * n + np.arange(n, dtype=kt)
        best = np.maximum.reduceat(key, seg, axis=1)
        ci, si = np.nonzero(best >= n)
        if not len(ci):
            continue
        gsel = g[best[ci, si] % n]
        used[ci, gsel] = True
        out[ci, d[seg[si]]] = gsel
    return out
