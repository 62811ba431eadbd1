"""The gallery's per-image records: ground truth, each model's predictions with their error
kind (:mod:`detforge.report.classify`), error counts at the default threshold, the worst-first
order and the likely label mistakes.

Coordinates are xyxy pixels of the full image, rounded to 0.1 px; scores to 1e-4.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from detforge.data.boxes import BoxFormat
from detforge.data.dataset import Dataset
from detforge.report.classify import (
    Suspect,
    classify_image,
    error_counts,
    image_suspects,
    rank_suspects,
    worst_order,
)

I64 = NDArray[np.int64]


def _starts(image_col: I64, n: int) -> I64:
    """``(n+1,)`` first box row of each image (boxes are sorted by image)."""
    return np.searchsorted(image_col, np.arange(n + 1)).astype(np.int64)


def gt_records(gt: Dataset) -> list[dict[str, Any]]:
    """Per image: ``{"w", "h", "split", "g": [[cls, x1, y1, x2, y2, ignore], ...]}``."""
    xyxy = gt.coords_as(BoxFormat.XYXY_PIXEL) if gt.num_boxes else np.zeros((0, 4))
    ign = gt.boxes.crowd | gt.boxes.difficult
    st = _starts(gt.boxes.image, gt.num_images)
    out = []
    for i in range(gt.num_images):
        a, b = int(st[i]), int(st[i + 1])
        boxes = [
            [int(c), *(round(float(v), 1) for v in xyxy[k]), int(ig)]
            for k, c, ig in zip(range(a, b), gt.boxes.cls[a:b].tolist(), ign[a:b].tolist(),
                                strict=True)
        ]  # fmt: skip
        out.append({
            "w": int(gt.images.width[i]), "h": int(gt.images.height[i]),
            "split": str(gt.images.split[i]), "g": boxes,
        })  # fmt: skip
    return out


def model_records(
    gt: Dataset, pred: Dataset, *, iou: float, conf: float, high: float = 0.5
) -> tuple[list[dict[str, Any]], list[Suspect]]:
    """Per gallery image of one model: ``{"p": [[cls, x1, y1, x2, y2, score, kind, gt], ...],
    "f": [found_at per truth], "fp": N, "fn": N}`` (counts at ``conf``) and the image's
    suspects, ranked. ``pred`` shares ``gt``'s image table; classes are matched by name."""
    from detforge.eval.api import align_classes, align_images

    row_of = align_images(gt, pred)
    cls_of = align_classes(gt, pred)
    g_xyxy = gt.coords_as(BoxFormat.XYXY_PIXEL) if gt.num_boxes else np.zeros((0, 4))
    ign = gt.boxes.crowd | gt.boxes.difficult
    if pred.num_boxes:
        img = row_of[pred.boxes.image]
        cls = cls_of[pred.boxes.cls]
        keep = np.flatnonzero((img >= 0) & (cls >= 0))
        p_xyxy = pred.coords_as(BoxFormat.XYXY_PIXEL)[keep]
        p_img, p_cls, p_sc = img[keep], cls[keep], pred.boxes.score[keep]
        order = np.argsort(p_img, kind="stable")
        p_xyxy, p_img, p_cls, p_sc = p_xyxy[order], p_img[order], p_cls[order], p_sc[order]
    else:
        p_xyxy, p_img = np.zeros((0, 4)), np.zeros(0, dtype=np.int64)
        p_cls, p_sc = np.zeros(0, dtype=np.int64), np.zeros(0)
    gs, ps = _starts(gt.boxes.image, gt.num_images), _starts(p_img, gt.num_images)
    records: list[dict[str, Any]] = []
    suspects: list[Suspect] = []
    for i in range(gt.num_images):
        ga, gb, pa, pb = int(gs[i]), int(gs[i + 1]), int(ps[i]), int(ps[i + 1])
        err = classify_image(
            g_xyxy[ga:gb], gt.boxes.cls[ga:gb], p_xyxy[pa:pb], p_cls[pa:pb], p_sc[pa:pb],
            gt_ignore=ign[ga:gb], iou=iou,
        )  # fmt: skip
        fp, fn = error_counts(err.pred_kind, p_sc[pa:pb], err.found_at, ign[ga:gb], conf)
        boxes = [
            [int(p_cls[k]), *(round(float(v), 1) for v in p_xyxy[k]), round(float(p_sc[k]), 4),
             int(err.pred_kind[k - pa]), int(err.pred_gt[k - pa])]
            for k in range(pa, pb)
        ]  # fmt: skip
        records.append({
            "p": boxes, "f": [round(float(v), 4) for v in err.found_at], "fp": fp, "fn": fn,
        })  # fmt: skip
        suspects += image_suspects(
            i, err, p_cls[pa:pb], p_sc[pa:pb], ign[ga:gb], conf=conf, high=high
        )
    return records, rank_suspects(suspects)


def gallery_order(records: list[dict[str, Any]]) -> I64:
    """Worst image first by the first model's ``fp + fn`` (original order without a model)."""
    fp = [r["fp"] for r in records]
    fn = [r["fn"] for r in records]
    return worst_order(fp, fn)
