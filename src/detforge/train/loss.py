"""Detection loss: BCE classification against task-aligned soft targets, CIoU box loss and
distribution-focal loss (DFL, Li et al. 2020 "Generalized Focal Loss") on the positives.

``DetectionLoss(model)(raw_outputs, batch) -> (loss, items)``; see the training batch contract
in ``docs/architecture.md``. Box and DFL terms are weighted per anchor by the sum of its soft
target scores; all three terms are normalised by the total of the target scores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from detforge.models.box_ops import bbox2dist, box_iou_pairwise, dist2bbox, make_anchors
from detforge.train.assigner import assign


def pad_targets(
    batch_idx: Tensor, cls: Tensor, bboxes: Tensor, batch_size: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Flat targets -> padded per-image tensors.

    ``batch_idx`` (T,), ``cls`` (T,), ``bboxes`` (T, 4) -> ``labels`` (B, M) int64,
    ``boxes`` (B, M, 4), ``mask`` (B, M) bool, with ``M`` the most boxes in one image.
    """
    device = bboxes.device
    batch_idx = batch_idx.long().to(device)
    counts = torch.bincount(batch_idx, minlength=batch_size) if batch_idx.numel() else None
    m = int(counts.max()) if counts is not None else 0
    labels = torch.zeros(batch_size, m, dtype=torch.long, device=device)
    boxes = torch.zeros(batch_size, m, 4, dtype=bboxes.dtype, device=device)
    mask = torch.zeros(batch_size, m, dtype=torch.bool, device=device)
    if m:
        order = torch.argsort(batch_idx, stable=True)
        bi = batch_idx[order]
        assert counts is not None
        starts = torch.cumsum(counts, 0) - counts
        slot = torch.arange(bi.numel(), device=device) - starts[bi]
        labels[bi, slot] = cls.long().to(device)[order]
        boxes[bi, slot] = bboxes[order]
        mask[bi, slot] = True
    return labels, boxes, mask


def dfl_loss(logits: Tensor, target: Tensor) -> Tensor:
    """DFL: cross-entropy towards the two bins around each continuous target distance.

    ``logits`` (N, 4, R); ``target`` (N, 4) distances in cells in ``[0, R - 1)``.
    Returns (N,) mean over the four sides.
    """
    n, _, r = logits.shape
    left = target.long()
    right = left + 1
    wl = right.to(target.dtype) - target
    wr = 1 - wl
    flat = logits.reshape(-1, r)
    ce_l = F.cross_entropy(flat, left.view(-1), reduction="none").view(n, 4)
    ce_r = F.cross_entropy(flat, right.view(-1), reduction="none").view(n, 4)
    return (ce_l * wl + ce_r * wr).mean(-1)


class DetectionLoss:
    """Loss of a :class:`~detforge.models.yolo.Detector` (or anything with ``num_classes``,
    ``reg_max`` and ``strides``; DDP wrappers are unwrapped).

    ``box``, ``cls``, ``dfl`` are the gains of the three terms. Calling it returns
    ``(loss, items)``: ``loss`` the scalar ``(box*l_box + cls*l_cls + dfl*l_dfl) * B`` to
    back-propagate, ``items`` the detached (3,) ``[l_box, l_cls, l_dfl]`` (gains applied,
    not multiplied by ``B``).

    ``world_size > 1`` (one process of a ``torchrun`` job; every rank must call the loss at
    every step) normalises by the target-score sum of the *global* batch, all-reduced over the
    default process group, and scales the loss so that DDP's gradient averaging gives exactly
    the gradient one process would get on the whole global batch: with ``N`` ranks of ``B``
    images, ``items = S_rank * N / T_global`` and ``loss = items.sum() * B * N``. The mean of
    ``items`` over ranks is then the one-process value.
    """

    names = ("box", "cls", "dfl")
    """Names of the three ``items``, as ``metrics.csv`` columns ``train/<name>``."""

    def __init__(
        self,
        model: nn.Module,
        *,
        box: float = 7.5,
        cls: float = 0.5,
        dfl: float = 1.5,
        topk: int = 10,
        alpha: float = 0.5,
        beta: float = 6.0,
        world_size: int = 1,
    ) -> None:
        net = model  # unwrap DistributedDataParallel (.module) and torch.compile (._orig_mod)
        while not hasattr(net, "reg_max"):
            inner = getattr(net, "module", None) or getattr(net, "_orig_mod", None)
            if not isinstance(inner, nn.Module):
                raise TypeError(f"DetectionLoss needs a Detector, got {type(model).__name__}")
            net = inner
        self.num_classes = int(net.num_classes)  # type: ignore[arg-type]
        self.reg_max = int(net.reg_max)  # type: ignore[arg-type]
        self.strides: tuple[int, ...] = tuple(net.strides)  # type: ignore[arg-type]
        self.gains = (box, cls, dfl)
        self.topk, self.alpha, self.beta = topk, alpha, beta
        self.world_size = world_size
        self._anchors: dict[tuple[Any, ...], tuple[Tensor, Tensor]] = {}

    def _anchor_points(self, feats: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        shapes = [(int(f.shape[2]), int(f.shape[3])) for f in feats]
        key = (tuple(shapes), feats[0].device)
        if key not in self._anchors:
            self._anchors[key] = make_anchors(shapes, self.strides, device=feats[0].device)
        return self._anchors[key]

    def __call__(
        self, outputs: Sequence[Tensor], batch: Mapping[str, Any]
    ) -> tuple[Tensor, Tensor]:
        r, c = self.reg_max, self.num_classes
        b = int(outputs[0].shape[0])
        flat = torch.cat([o.flatten(2) for o in outputs], 2).transpose(1, 2)  # (B, A, 4R + C)
        pred_distri, pred_logits = torch.split(flat.float(), [4 * r, c], 2)
        points, stride = self._anchor_points(outputs)  # (A, 2) cells, (A, 1)
        a = points.shape[0]
        proj = torch.arange(r, device=flat.device, dtype=torch.float32)
        dist = pred_distri.view(b, a, 4, r).softmax(3) @ proj  # (B, A, 4) cells
        pred_boxes = dist2bbox(dist, points[None])  # (B, A, 4) cells of each level

        device = flat.device
        labels, gt_boxes, mask = pad_targets(
            batch["batch_idx"].to(device),
            batch["cls"].to(device),
            batch["bboxes"].to(device).float(),
            b,
        )
        target = assign(
            pred_logits.detach().sigmoid(),
            pred_boxes.detach() * stride,
            points * stride,
            labels,
            gt_boxes,
            mask,
            topk=self.topk,
            alpha=self.alpha,
            beta=self.beta,
        )
        score_sum = self._score_sum(target.scores)
        l_cls = (
            F.binary_cross_entropy_with_logits(pred_logits, target.scores, reduction="sum")
            / score_sum
        )
        fg = target.fg
        if fg.any():
            weight = target.scores.sum(-1)[fg]  # (P,)
            t_boxes = target.boxes / stride  # (B, A, 4) in cells
            iou = box_iou_pairwise(pred_boxes[fg], t_boxes[fg], ciou=True)
            l_box = ((1.0 - iou) * weight).sum() / score_sum
            t_dist = bbox2dist(points[None].expand(b, -1, -1)[fg], t_boxes[fg], r - 1)
            l_dfl = (dfl_loss(pred_distri[fg].view(-1, 4, r), t_dist) * weight).sum() / score_sum
        else:
            zero = pred_distri.sum() * 0.0
            l_box, l_dfl = zero, zero
        parts = torch.stack((l_box * self.gains[0], l_cls * self.gains[1], l_dfl * self.gains[2]))
        return parts.sum() * (b * self.world_size), parts.detach()

    def _score_sum(self, scores: Tensor) -> Tensor:
        """The normaliser: this batch's target-score sum, or in DDP the global sum / ranks."""
        total = scores.detach().sum()
        if self.world_size == 1:
            return total.clamp(min=1.0)
        import torch.distributed as dist

        total = total.clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total.clamp(min=1.0) / self.world_size
