"""Box geometry for the detector: anchors, distance <-> box codecs and (C)IoU.

Conventions used throughout ``detforge.models`` and ``detforge.train``:

* boxes are ``xyxy`` (x1, y1, x2, y2), continuous coordinates, x to the right, y down;
* an *anchor point* is the centre of one feature-map cell, in **grid units** of its level
  (``(col + 0.5, row + 0.5)``); multiply by the level's stride to get input pixels;
* a *distance* is ``ltrb``: the distances from an anchor point to the box's left, top, right
  and bottom sides (all >= 0 for a box containing the point), in the same units as the point.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


def make_anchors(
    shapes: Sequence[tuple[int, int]],
    strides: Sequence[int],
    *,
    offset: float = 0.5,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    """Anchor points and strides of all levels, flattened in row-major order per level.

    Args:
        shapes: ``(H_i, W_i)`` of each level's feature map.
        strides: the stride (input pixels per cell) of each level.

    Returns:
        ``points`` (A, 2) ``(x, y)`` cell centres in grid units of their level and
        ``stride`` (A, 1), with ``A = sum(H_i * W_i)``.
    """
    points, stride_list = [], []
    for (h, w), s in zip(shapes, strides, strict=True):
        # integer ranges, then cast: keeps ONNX Range ops valid for float16 exports
        sx = torch.arange(w, device=device).to(dtype) + offset
        sy = torch.arange(h, device=device).to(dtype) + offset
        yy, xx = torch.meshgrid(sy, sx, indexing="ij")
        pts = torch.stack((xx, yy), -1).reshape(-1, 2)
        points.append(pts)
        stride_list.append(torch.ones_like(pts[:, :1]) * float(s))  # trace-friendly (ONNX)
    return torch.cat(points), torch.cat(stride_list)


def dist2bbox(distance: Tensor, points: Tensor) -> Tensor:
    """``ltrb`` distances (..., 4) from ``points`` (..., 2) -> ``xyxy`` boxes (..., 4)."""
    lt, rb = distance.chunk(2, -1)
    return torch.cat((points - lt, points + rb), -1)


def bbox2dist(points: Tensor, boxes: Tensor, max_dist: float) -> Tensor:
    """``xyxy`` boxes (..., 4) -> ``ltrb`` distances (..., 4) from ``points`` (..., 2).

    Distances are clamped to ``[0, max_dist - 0.01]`` so that a DFL target always has two
    valid neighbouring bins (``max_dist`` is ``reg_max - 1``).
    """
    x1y1, x2y2 = boxes.chunk(2, -1)
    return torch.cat((points - x1y1, x2y2 - points), -1).clamp_(0, max_dist - 0.01)


def box_iou_pairwise(a: Tensor, b: Tensor, *, ciou: bool = False, eps: float = 1e-7) -> Tensor:
    """IoU (or Complete-IoU) of matching rows of ``a`` and ``b`` (both (..., 4) xyxy) -> (...).
    See :func:`box_iou_kind`."""
    return box_iou_kind(a, b, "ciou" if ciou else "iou", eps=eps)


IOU_KINDS = ("iou", "giou", "diou", "ciou")


def box_iou_kind(a: Tensor, b: Tensor, kind: str = "iou", *, eps: float = 1e-7) -> Tensor:
    """IoU, Generalized-, Distance- or Complete-IoU of matching rows of ``a`` and ``b`` (both
    (..., 4) xyxy, any one unit) -> (...).

    GIoU = IoU - (C - U) / C with ``C`` the area of the smallest enclosing box and ``U`` the
    union (Rezatofighi et al., 2019); DIoU = IoU - rho^2 / c^2, where ``rho`` is the distance
    between the box centres and ``c`` the diagonal of the enclosing box; CIoU = DIoU -
    alpha * v with ``v = 4 / pi^2 * (atan(w_b / h_b) - atan(w_a / h_a))^2`` and
    ``alpha = v / (1 - IoU + v)`` (``alpha`` carries no gradient, as in the paper's
    implementation) (Zheng et al., 2020).
    """
    if kind not in IOU_KINDS:
        raise ValueError(f"unknown IoU kind {kind!r}")
    ax1, ay1, ax2, ay2 = a.unbind(-1)
    bx1, by1, bx2, by2 = b.unbind(-1)
    wa, ha = ax2 - ax1, (ay2 - ay1).clamp(min=eps)
    wb, hb = bx2 - bx1, (by2 - by1).clamp(min=eps)
    iw = (torch.minimum(ax2, bx2) - torch.maximum(ax1, bx1)).clamp(min=0)
    ih = (torch.minimum(ay2, by2) - torch.maximum(ay1, by1)).clamp(min=0)
    inter = iw * ih
    union = wa * ha + wb * hb - inter + eps
    iou = inter / union
    if kind == "iou":
        return iou
    cw = torch.maximum(ax2, bx2) - torch.minimum(ax1, bx1)
    ch = torch.maximum(ay2, by2) - torch.minimum(ay1, by1)
    if kind == "giou":
        area = cw * ch + eps
        return iou - (area - union) / area
    c2 = cw.pow(2) + ch.pow(2) + eps
    rho2 = ((bx1 + bx2 - ax1 - ax2).pow(2) + (by1 + by2 - ay1 - ay2).pow(2)) / 4
    if kind == "diou":
        return iou - rho2 / c2
    v = (4 / math.pi**2) * (torch.atan(wb / hb) - torch.atan(wa / ha)).pow(2)
    with torch.no_grad():
        alpha = v / (v - iou + (1 + eps))
    return iou - (rho2 / c2 + v * alpha)


def points_in_boxes(points: Tensor, boxes: Tensor, *, eps: float = 1e-9) -> Tensor:
    """Which points lie strictly inside which boxes.

    Args:
        points: (A, 2) ``(x, y)``.
        boxes: (B, M, 4) ``xyxy`` in the same units.

    Returns:
        (B, M, A) bool.
    """
    b, m, _ = boxes.shape
    lt, rb = boxes.view(-1, 1, 4).chunk(2, -1)  # (B*M, 1, 2)
    deltas = torch.cat((points[None] - lt, rb - points[None]), -1)  # (B*M, A, 4)
    return deltas.amin(-1).gt(eps).view(b, m, -1)
