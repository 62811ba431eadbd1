"""Task-aligned assignment (TAL, Feng et al. 2021 "TOOD") of ground-truth boxes to anchors.

For each ground-truth box, the candidate anchors are those whose centre lies inside it; each
candidate's alignment metric is ``t = s**alpha * u**beta`` with ``s`` the predicted probability
of the box's class and ``u`` the CIoU (clamped at 0) of the predicted box with the truth.
The ``topk`` candidates by ``t`` become positives. An anchor claimed by several boxes keeps
the one it overlaps most (highest IoU). Targets are soft: the one-hot class of the assigned box
scaled by ``t`` normalised per box so that its best anchor gets that box's best IoU.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor

from detforge.models.box_ops import box_iou_pairwise, points_in_boxes


class Assignment(NamedTuple):
    """Per anchor: ``labels`` (B, A) int64, ``boxes`` (B, A, 4) xyxy (same units as the
    inputs), ``scores`` (B, A, C) soft targets (0 for background), ``fg`` (B, A) bool,
    ``gt_index`` (B, A) int64 index of the assigned box (0 for background)."""

    labels: Tensor
    boxes: Tensor
    scores: Tensor
    fg: Tensor
    gt_index: Tensor


@torch.no_grad()
def assign(
    pred_scores: Tensor,
    pred_boxes: Tensor,
    points: Tensor,
    gt_labels: Tensor,
    gt_boxes: Tensor,
    gt_mask: Tensor,
    *,
    topk: int = 10,
    alpha: float = 0.5,
    beta: float = 6.0,
    eps: float = 1e-9,
    max_elements: int = 1 << 25,
) -> Assignment:
    """Assign ground truth to anchors.

    Args:
        pred_scores: (B, A, C) class probabilities (after sigmoid), detached.
        pred_boxes: (B, A, 4) predicted ``xyxy`` boxes, in input pixels.
        points: (A, 2) anchor centres in input pixels.
        gt_labels: (B, M) int64 class ids (padding rows: any value).
        gt_boxes: (B, M, 4) ``xyxy`` in input pixels (padding rows: zeros).
        gt_mask: (B, M) bool, True for real boxes.
        max_elements: above this many (box, anchor) pairs for the whole batch, images are
            assigned one at a time with their own boxes only (bounds memory for crowded
            images, e.g. microscopy, at the same result).
    """
    b, a, c = pred_scores.shape
    m = gt_boxes.shape[1]
    device = pred_scores.device
    if b > 1 and b * m * a > max_elements:
        return _assign_per_image(
            pred_scores, pred_boxes, points, gt_labels, gt_boxes, gt_mask,
            topk=topk, alpha=alpha, beta=beta, eps=eps,
        )  # fmt: skip
    if m == 0:
        return Assignment(
            torch.zeros(b, a, dtype=torch.long, device=device),
            torch.zeros(b, a, 4, dtype=pred_boxes.dtype, device=device),
            torch.zeros_like(pred_scores),
            torch.zeros(b, a, dtype=torch.bool, device=device),
            torch.zeros(b, a, dtype=torch.long, device=device),
        )
    # candidates: anchor centre inside a real box -> (B, M, A)
    inside = points_in_boxes(points, gt_boxes) & gt_mask[:, :, None]
    # alignment metric, only computed on candidates
    overlaps = torch.zeros(b, m, a, dtype=pred_boxes.dtype, device=device)
    cls_scores = torch.zeros(b, m, a, dtype=pred_scores.dtype, device=device)
    bi, mi, ai = inside.nonzero(as_tuple=True)
    labels = gt_labels.long().clamp(0, c - 1)
    cls_scores[bi, mi, ai] = pred_scores[bi, ai, labels[bi, mi]]
    overlaps[bi, mi, ai] = (
        box_iou_pairwise(gt_boxes[bi, mi], pred_boxes[bi, ai], ciou=True)
        .clamp_(min=0)
        .to(overlaps.dtype)
    )
    metric = cls_scores.pow(alpha) * overlaps.pow(beta)  # (B, M, A), 0 off-candidate
    # top-k anchors per box (ties among zeros are dropped by the `inside` mask)
    k = min(topk, a)
    top_idx = metric.topk(k, dim=-1).indices  # (B, M, k)
    is_top = torch.zeros_like(inside)
    is_top.scatter_(-1, top_idx, True)
    pos = is_top & inside  # (B, M, A)
    # anchors claimed by several boxes keep the box they overlap most
    multi = pos.sum(1) > 1  # (B, A)
    if multi.any():
        best = overlaps.argmax(1)  # (B, A)
        best_onehot = torch.zeros_like(pos).scatter_(1, best[:, None, :], True)
        pos = torch.where(multi[:, None, :], best_onehot & inside, pos)
    fg = pos.any(1)  # (B, A)
    gt_index = pos.to(torch.uint8).argmax(1)  # (B, A)
    batch_ar = torch.arange(b, device=device)[:, None]
    t_labels = labels[batch_ar, gt_index]  # (B, A)
    t_boxes = gt_boxes[batch_ar, gt_index]  # (B, A, 4)
    # soft targets: metric normalised per box to that box's best IoU among its positives
    metric = metric * pos
    max_metric = metric.amax(-1, keepdim=True)  # (B, M, 1)
    max_iou = (overlaps * pos).amax(-1, keepdim=True)
    norm = (metric * max_iou / (max_metric + eps)).amax(1)  # (B, A)
    t_scores = torch.zeros_like(pred_scores)
    t_scores.scatter_(2, t_labels[..., None], 1.0)
    t_scores *= (norm * fg)[..., None].to(t_scores.dtype)
    return Assignment(t_labels * fg, t_boxes, t_scores, fg, gt_index * fg)


def _assign_per_image(
    pred_scores: Tensor,
    pred_boxes: Tensor,
    points: Tensor,
    gt_labels: Tensor,
    gt_boxes: Tensor,
    gt_mask: Tensor,
    **kwargs: Any,
) -> Assignment:
    """:func:`assign` one image at a time on its real boxes; ``gt_index`` mapped back."""
    parts = []
    for i in range(pred_scores.shape[0]):
        rows = gt_mask[i].nonzero().flatten()
        out = assign(
            pred_scores[i : i + 1],
            pred_boxes[i : i + 1],
            points,
            gt_labels[i : i + 1, rows],
            gt_boxes[i : i + 1, rows],
            gt_mask[i : i + 1, rows],
            max_elements=1 << 62,
            **kwargs,
        )
        index = rows[out.gt_index] * out.fg if rows.numel() else out.gt_index
        parts.append(out._replace(gt_index=index))
    return Assignment(*(torch.cat(t) for t in zip(*parts, strict=True)))
