"""Per-image error classification and likely label mistakes (pure numpy, no I/O).

Predictions of one image are matched greedily in order of decreasing score (ties keep their
input order), as COCO and ``detforge show`` do: a prediction takes the unmatched ground-truth
box of its class with the highest IoU when that IoU is ``>= iou``. Every other prediction is a
false positive of one kind, decided in this order:

* ``duplicate``     -- a box of its class with IoU ``>= iou`` exists but a higher-scoring
  prediction already took it;
* ``wrong_class``   -- a box of *another* class has IoU ``>= iou`` with it;
* ``localisation``  -- the best box of its class overlaps with ``loc_iou <= IoU < iou``;
* ``background``    -- nothing of its class overlaps by ``loc_iou``.

A prediction that only matches an *ignored* truth (crowd / difficult) is ``ignored`` and is
neither a TP nor an FP. Because the kind of a prediction depends only on higher-scoring
predictions, the kinds do not change when a confidence threshold removes lower-scoring ones:
at threshold ``t`` the visible predictions are those with ``score >= t`` (same kinds), and a
truth is a miss (FN) when ``found_at < t`` (the score of the prediction that matched it, ``0``
if none). The report's score slider relies on this.

Boxes are ``(K, 4)`` xyxy in pixels of the same image; scores are in ``[0, 1]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from detforge.data.boxes import box_iou

TP, BACKGROUND, WRONG_CLASS, DUPLICATE, LOCALISATION, IGNORED = range(6)
KINDS: tuple[str, ...] = ("tp", "background", "wrong_class", "duplicate", "localisation", "ignored")
"""Name of each prediction kind code (index = code)."""

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


@dataclass(frozen=True)
class ImageErrors:
    """Classification of one image's predictions and truths.

    ``pred_kind (K,)`` int8 kind code (:data:`KINDS`); ``pred_gt (K,)`` the truth a prediction
    matched or is judged against (``-1`` for background); ``found_at (M,)`` score of the
    prediction that matched each truth (``0.0`` if none); ``near_at (M,)`` the highest score of
    any prediction, of any class, overlapping the truth with IoU ``>= loc_iou`` (``0.0`` if none).
    """

    pred_kind: NDArray[np.int8]
    pred_gt: I64
    found_at: F64
    near_at: F64


def classify_image(
    gt_boxes: ArrayLike,
    gt_classes: ArrayLike,
    pred_boxes: ArrayLike,
    pred_classes: ArrayLike,
    pred_scores: ArrayLike,
    *,
    gt_ignore: ArrayLike | None = None,
    iou: float = 0.5,
    loc_iou: float = 0.1,
) -> ImageErrors:
    """Classify the predictions and truths of one image (rules in the module docstring)."""
    g = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    gc = np.asarray(gt_classes, dtype=np.int64).reshape(-1)
    p = np.asarray(pred_boxes, dtype=np.float64).reshape(-1, 4)
    pc = np.asarray(pred_classes, dtype=np.int64).reshape(-1)
    ps = np.asarray(pred_scores, dtype=np.float64).reshape(-1)
    ign = (
        np.zeros(len(g), dtype=bool)
        if gt_ignore is None
        else np.asarray(gt_ignore, dtype=bool).reshape(-1)
    )
    kind = np.full(len(p), BACKGROUND, dtype=np.int8)
    which = np.full(len(p), -1, dtype=np.int64)
    found_at = np.zeros(len(g), dtype=np.float64)
    near_at = np.zeros(len(g), dtype=np.float64)
    if len(p) == 0 or len(g) == 0:
        return ImageErrors(kind, which, found_at, near_at)
    ious = box_iou(p, g)  # (K, M)
    same = pc[:, None] == gc[None, :]
    near = ious >= loc_iou
    near_at = np.where(near, ps[:, None], 0.0).max(axis=0)
    matched = np.zeros(len(g), dtype=bool)
    for i in np.argsort(-ps, kind="stable").tolist():
        own = np.where(same[i], ious[i], -1.0)
        free = np.where(matched | ign, -1.0, own)
        j = int(np.argmax(free))
        if free[j] >= iou:
            kind[i], which[i] = TP, j
            matched[j] = True
            found_at[j] = ps[i]
            continue
        crowd = np.where(ign, own, -1.0)
        j = int(np.argmax(crowd))
        if crowd[j] >= iou:
            kind[i], which[i] = IGNORED, j
            continue
        taken = np.where(matched, own, -1.0)
        j = int(np.argmax(taken))
        if taken[j] >= iou:
            kind[i], which[i] = DUPLICATE, j
            continue
        other = np.where(same[i] | ign, -1.0, ious[i])
        j = int(np.argmax(other))
        if other[j] >= iou:
            kind[i], which[i] = WRONG_CLASS, j
            continue
        j = int(np.argmax(own))
        if own[j] >= loc_iou:
            kind[i], which[i] = LOCALISATION, j
    return ImageErrors(kind, which, found_at, near_at)


def error_counts(
    pred_kind: ArrayLike, pred_scores: ArrayLike, found_at: ArrayLike, gt_ignore: ArrayLike,
    conf: float,
) -> tuple[int, int]:  # fmt: skip
    """``(false positives, false negatives)`` of one image at confidence threshold ``conf``
    (predictions with ``score >= conf`` are shown)."""
    k = np.asarray(pred_kind).reshape(-1)
    s = np.asarray(pred_scores, dtype=np.float64).reshape(-1)
    f = np.asarray(found_at, dtype=np.float64).reshape(-1)
    ign = np.asarray(gt_ignore, dtype=bool).reshape(-1)
    fp = int(((s >= conf) & (k != TP) & (k != IGNORED)).sum())
    fn = int(((f < conf) & ~ign).sum())
    return fp, fn


def worst_order(fp: ArrayLike, fn: ArrayLike) -> I64:
    """Image order, worst first: by ``fp + fn`` descending, then more misses first, then the
    original order."""
    a = np.asarray(fp, dtype=np.int64)
    b = np.asarray(fn, dtype=np.int64)
    return np.lexsort((np.arange(len(a)), -b, -(a + b))).astype(np.int64)


@dataclass(frozen=True)
class Suspect:
    """A label that a confident prediction contradicts.

    ``kind``: ``"other_class"`` (a prediction of ``pred_class`` with ``score`` sits on the
    truth ``gt`` and nothing of the truth's class found it), ``"not_detected"`` (no prediction
    of any class at ``conf`` overlaps the truth, while every other truth of the image is found;
    ``score`` = the lowest score those neighbours were found with) or ``"unlabelled"`` (a
    ``background`` prediction with ``score``: an object that may lack a label; ``gt = -1``).
    ``image`` and ``gt``/``pred`` are indices into the caller's per-image lists.
    """

    image: int
    gt: int
    pred: int
    kind: str
    score: float
    pred_class: int


def image_suspects(
    image: int,
    err: ImageErrors,
    pred_classes: ArrayLike,
    pred_scores: ArrayLike,
    gt_ignore: ArrayLike,
    *,
    conf: float = 0.25,
    high: float = 0.5,
) -> list[Suspect]:
    """Likely label mistakes of one image (see :class:`Suspect`); ``high`` is the score a
    contradicting prediction needs, ``conf`` the threshold for "found"."""
    pc = np.asarray(pred_classes, dtype=np.int64).reshape(-1)
    ps = np.asarray(pred_scores, dtype=np.float64).reshape(-1)
    ign = np.asarray(gt_ignore, dtype=bool).reshape(-1)
    out: list[Suspect] = []
    for j in np.flatnonzero(~ign & (err.found_at < conf)).tolist():
        cand = np.flatnonzero((err.pred_kind == WRONG_CLASS) & (err.pred_gt == j) & (ps >= high))
        if len(cand):
            i = int(cand[np.argmax(ps[cand])])
            out.append(Suspect(image, j, i, "other_class", float(ps[i]), int(pc[i])))
            continue
        others = np.flatnonzero(~ign)
        others = others[others != j]
        if len(others) and err.near_at[j] < conf and (err.found_at[others] >= conf).all():
            score = float(err.found_at[others].min())
            if score >= high:
                out.append(Suspect(image, j, -1, "not_detected", score, -1))
    for i in np.flatnonzero((err.pred_kind == BACKGROUND) & (ps >= high)).tolist():
        out.append(Suspect(image, -1, i, "unlabelled", float(ps[i]), int(pc[i])))
    return out


def rank_suspects(suspects: list[Suspect]) -> list[Suspect]:
    """Most confident contradiction first (ties: image, then truth order)."""
    return sorted(suspects, key=lambda s: (-s.score, s.image, s.gt, s.pred))
