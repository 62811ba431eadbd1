"""From the detector's eval output to per-image detections: score threshold, batched NMS,
``max_det``. Boxes stay in input pixels; :func:`detforge.data.letterbox.unletterbox_boxes`
maps them back to the original image.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class Detections(NamedTuple):
    """Detections of one image (also unpacks as ``boxes, scores, classes``).

    ``boxes`` (K, 4) float ``xyxy`` in input pixels, ``scores`` (K,) float in [0, 1],
    ``classes`` (K,) int64 0-based, sorted by decreasing score.
    """

    boxes: Tensor
    scores: Tensor
    classes: Tensor


def postprocess(
    output: Tensor,
    *,
    conf: float = 0.25,
    iou: float = 0.7,
    max_det: int = 300,
    agnostic: bool = False,
    multi_label: bool = False,
    max_nms: int = 30000,
) -> list[Detections]:
    """Per-image detections from the eval output ``(B, A, 4 + C)`` (boxes xyxy + class probs).

    Args:
        conf: keep candidates whose class probability is >= ``conf``.
        iou: NMS IoU threshold: a box is suppressed by a higher-scoring box of the same class
            (any class with ``agnostic=True``) overlapping it by more than ``iou``.
        max_det: keep at most this many detections per image (highest scores).
        multi_label: one candidate per (anchor, class) above ``conf`` instead of only the best
            class per anchor (slightly higher mAP at a low ``conf``, e.g. for evaluation).
        max_nms: at most this many highest-scoring candidates enter NMS (bounds the time).
    """
    from torchvision.ops import batched_nms

    if output.ndim != 3 or output.shape[-1] < 5:
        raise ValueError(f"postprocess expects (B, A, 4 + C), got {tuple(output.shape)}")
    results = []
    for pred in output:
        boxes, probs = pred[:, :4], pred[:, 4:]
        if multi_label:
            anchor_idx, cls = (probs >= conf).nonzero(as_tuple=True)
            scores = probs[anchor_idx, cls]
            boxes = boxes[anchor_idx]
        else:
            scores, cls = probs.max(1)
            keep = scores >= conf
            boxes, scores, cls = boxes[keep], scores[keep], cls[keep]
        if scores.numel() > max_nms:
            top = scores.topk(max_nms).indices
            boxes, scores, cls = boxes[top], scores[top], cls[top]
        groups = torch.zeros_like(cls) if agnostic else cls
        keep = batched_nms(boxes.float(), scores.float(), groups, iou)[:max_det]
        results.append(Detections(boxes[keep], scores[keep], cls[keep].long()))
    return results
