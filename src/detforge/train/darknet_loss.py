"""The loss of Darknet's anchor-based ``[yolo]`` heads, with ``yolo_layer.c``'s semantics.

``DarknetYoloLoss(specs)(raw, batch) -> (loss, items)``. ``raw`` holds one tensor per head,
``(B, n * (5 + C), h, w)``: the input of each ``[yolo]`` layer (what
``DarknetNetwork.forward`` returns); ``batch`` follows the training batch contract
(``docs/architecture.md``). ``loss`` is summed over the batch (as detforge's own loss);
``items`` is a detached ``(3,)`` tensor ``[box, cls, obj]`` per image, for logging.

Rules, learned from AlexeyAB/darknet ``forward_yolo_layer`` / ``process_batch``:

* A truth (normalized to the network input) is matched, by the IoU of widths and heights
  alone, to the best of *all* the cfg's anchors; the head whose ``mask`` holds that anchor
  makes the grid cell containing the truth's centre a positive for that anchor. With
  ``iou_thresh < 1`` every other anchor of the head whose IoU (``iou_thresh_kind``) with the
  truth exceeds ``iou_thresh`` is a positive too.
* Objectness: every prediction is pushed towards 0, except those whose decoded box has an IoU
  above ``ignore_thresh`` with some truth of the image while one of its class probabilities
  exceeds 0.25 (Darknet's ``class_id_match``; that best IoU is ``best_match_iou``): those are
  left alone. Positives go to 1. With ``objectness_smooth=1`` those predictions are instead
  pulled towards ``best_match_iou`` (Darknet keeps the larger of the two deltas, ``-p`` and
  ``best_match_iou - p``), and a positive keeps the delta that rule gave it (target 0 or
  ``best_match_iou``): Darknet sets ``1 - p`` there only where that delta is exactly 0.
* Classes, at positives only: target 1 for the truths' classes there, 0 otherwise,
  smoothed to ``y (1 - eps) + eps / 2`` with ``label_smooth_eps``.
* Box, at positives: ``iou_loss=mse``: ``scale * (s KL(tx' || sigmoid(x)) + s KL(ty' || ...)
  + ((tw - w)^2 + (th - h)^2) / 2)`` with ``scale = 2 - w_truth * h_truth``,
  ``tx = cx * grid - col``, ``tx' = (tx + (s - 1) / 2) / s`` (``s = scale_x_y``) and
  ``tw = ln(w_truth * net_w / anchor_w)`` against the raw ``w``: the gradients on the raw
  outputs are exactly Darknet's deltas ``scale (tx - x_scaled)`` and ``scale (tw - w)``
  (``new_coords``: ``(tx - x)^2 / 2`` on the conv's logistic output);
  ``iou`` / ``giou`` / ``diou`` / ``ciou``: ``1 - IoU_kind(decoded box, truth)``. Both
  times ``iou_normalizer``; with ``iou_thresh < 1`` a cell's box terms are divided by the
  number of classes among its truths (Darknet's ``averages_yolo_deltas``).
* ``max_delta`` (``delta_yolo_box``, IoU losses only: the ``mse`` branch is never clipped):
  each (positive, truth) pair's box gradient on the raw ``x, y, w, h``, ``iou_normalizer``
  applied, has NaN/inf set to 0 and is clipped to ``[-max_delta, max_delta]`` per element,
  before the pairs of a cell are summed and averaged. The loss value is unchanged; the clip
  acts on the loss's own gradient, so a gradient scaler or accumulation factor applied to the
  loss afterwards scales the clipped gradient as a whole.
* Objectness and class terms are binary cross-entropies on the logits: their gradient is
  exactly Darknet's delta ``target - sigmoid``. With ``new_coords=1`` the conv already applied
  the logistic, and Darknet's delta passes back through it: there they are ``(p - target)^2 / 2``.
  Objectness times ``obj_normalizer``; ``cls_normalizer`` acts only with
  ``counters_per_class`` (below), as in Darknet (training notes a ``cls_normalizer`` without
  it: :func:`~detforge.models.darknet.loss_spec.ineffective_keys`).
* ``focal_loss=1`` (``delta_yolo_class``): a cell's first truth sets every class delta to
  ``(y - p) * 0.5 * g(pt)``, ``g(pt) = -(1 - pt)(2 pt ln pt + pt - 1)`` with ``pt`` the
  probability of its class, unsmoothed targets; ``g`` is a weight, not differentiated.
* ``counters_per_class=n0,n1,...`` (``get_classes_multipliers``): class ``c``'s multiplier
  ``max(n) / n_c`` (capped at ``max_delta``) multiplies its truths' box terms and the
  objectness of their positives (of a cell's last truth; with ``objectness_smooth``, of the
  first, where it sets the delta); of the class terms, a cell's first truth weighs its own
  class by ``multiplier x cls_normalizer`` and the others by 1 (by its focal weight with
  ``focal_loss``).
* ``truth_thresh < 1`` (``forward_yolo_layer``'s ``best_iou > truth_thresh`` branch): every
  prediction whose decoded box overlaps a truth (any class) more than that is pulled to it
  first: objectness target 1 (``objectness_smooth``: the IoU squared), class terms as a first
  truth (smooth: its class's target the IoU squared, weight its multiplier) and a box term in
  its own cell; the truths' own positives follow.
* A later truth at a cell already set (any of these keys): its class alone, target 1
  (smoothed), weight its multiplier (1 without ``counters_per_class``), as Darknet's early
  return. The rules' bookkeeping lives in :mod:`detforge.train.yolo_targets`.

Differences, by design: with the IoU losses the gradient of ``x, y`` flows through the
sigmoid and the grid (Darknet applies the IoU derivative to the logit directly) and that of
``w, h`` through the anchor's size (Darknet multiplies by ``exp(w)`` alone), so ``max_delta``
clips a gradient smaller than Darknet's delta and takes effect less often (with the stock
``iou_normalizer`` of 0.05-0.07 rarely, if ever). Everything else gives darknet's deltas:
``bench/darknet_loss_parity.py`` compares them with a real darknet build's, case by case.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from detforge.errors import DetforgeError
from detforge.models.box_ops import box_iou_kind
from detforge.models.darknet.loss_spec import YoloLossSpec, ineffective_keys
from detforge.train.yolo_targets import (
    BestIous,
    TruthHits,
    cell_multipliers,
    class_targets,
    class_weights,
    truth_hits,
)


def _entropy(t: Tensor) -> Tensor:
    """Binary entropy of targets in [0, 1] (the minimum of their cross-entropy)."""
    t = t.clamp(1e-12, 1 - 1e-12)
    return -(t * torch.log(t) + (1 - t) * torch.log(1 - t))


def _cxcywh_to_xyxy(b: Tensor) -> Tensor:
    xy, wh = b[..., :2], b[..., 2:4]
    return torch.cat([xy - wh / 2, xy + wh / 2], -1)


def wh_iou(wh1: Tensor, wh2: Tensor) -> Tensor:
    """IoU of boxes sharing a centre: ``(N, 2)`` x ``(K, 2)`` -> ``(N, K)``."""
    inter = torch.minimum(wh1[:, None, 0], wh2[None, :, 0]) * torch.minimum(
        wh1[:, None, 1], wh2[None, :, 1]
    )
    return inter / (wh1[:, None].prod(-1) + wh2[None].prod(-1) - inter)


@dataclass
class _Truths:
    """Targets of a batch: ``img`` (T,), ``cls`` (T,), ``box`` (T, 4) cxcywh normalized."""

    img: Tensor
    cls: Tensor
    box: Tensor


def batch_truths(batch: Mapping[str, Any], net_w: int, net_h: int, device: torch.device) -> _Truths:
    """The batch's targets, xyxy input pixels -> cxcywh relative to the network input."""
    xyxy = batch["bboxes"].to(device=device, dtype=torch.float32).reshape(-1, 4)
    scale = torch.tensor([net_w, net_h, net_w, net_h], dtype=torch.float32, device=device)
    r = xyxy / scale
    box = torch.stack(
        [(r[:, 0] + r[:, 2]) / 2, (r[:, 1] + r[:, 3]) / 2, r[:, 2] - r[:, 0], r[:, 3] - r[:, 1]], 1
    )
    keep = (box[:, 2] > 0) & (box[:, 3] > 0)
    img = batch["batch_idx"].to(device).long().reshape(-1)
    cls = batch["cls"].to(device).long().reshape(-1)
    return _Truths(img[keep], cls[keep], box[keep])


class DarknetYoloLoss:
    """Loss of a Darknet network's ``[yolo]`` heads (module docstring). ``specs[k]`` describes
    ``raw[k]``; the network input size is read from ``batch["img"]``."""

    names = ("box", "cls", "obj")
    """Names of the three ``items``, as ``metrics.csv`` columns ``train/<name>``."""

    def __init__(self, specs: Sequence[YoloLossSpec]) -> None:
        if not specs:
            raise DetforgeError("the network has no [yolo] head to train")
        self.specs = tuple(specs)

    def __call__(self, raw: Sequence[Tensor], batch: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
        if len(raw) != len(self.specs):
            raise ValueError(f"{len(raw)} head outputs for {len(self.specs)} [yolo] heads")
        net_h, net_w = (int(v) for v in batch["img"].shape[-2:])
        device = raw[0].device
        truths = batch_truths(batch, net_w, net_h, device)
        parts = torch.zeros(3, device=device)
        total = raw[0].new_zeros(())
        for p, spec in zip(raw, self.specs, strict=True):
            terms = self._head(p.float(), spec, truths, net_w, net_h)
            total = total + terms.sum()
            parts = parts + terms.detach()
        b = max(int(raw[0].shape[0]), 1)
        return total, parts / b

    def _head(self, raw: Tensor, spec: YoloLossSpec, t: _Truths, net_w: int, net_h: int) -> Tensor:
        """``[box, cls, obj]`` loss sums of one head."""
        b, _, gh, gw = raw.shape
        n, c = len(spec.mask), spec.classes
        if raw.shape[1] != n * (5 + c):
            raise DetforgeError(
                f"a [yolo] head with {n} anchors and classes={c} needs {n * (5 + c)} channels, "
                f"its input has {raw.shape[1]}"
            )
        p = raw.view(b, n, 5 + c, gh, gw).permute(0, 1, 3, 4, 2)  # (B, n, h, w, 5 + C)
        dev = raw.device
        net = torch.tensor([net_w, net_h], dtype=torch.float32, device=dev)
        all_anchors = torch.tensor(spec.anchors, dtype=torch.float32, device=dev) / net  # (A, 2)
        mask = torch.tensor(spec.mask, dtype=torch.long, device=dev)
        xy, obj_p, cls_p, pbox = self._decode(p, spec, all_anchors[mask])

        # --- which predictions are positives (image, anchor k, row, col) and for which truth
        pos_img, pos_k, pos_j, pos_i, pos_t = self._assign(spec, t, all_anchors, gw, gh)
        flat = ((pos_img * n + pos_k) * gh + pos_j) * gw + pos_i
        cells, inv = torch.unique(flat, return_inverse=True)
        ious = self._best_ious(pbox.detach(), cls_p.detach(), t, c)
        hits = truth_hits(spec, ious)  # truth_thresh: set before the truths' own positives

        # --- objectness: 0 everywhere, left alone where a confident prediction already fits
        cell_mult = cell_multipliers(
            spec, len(cells), inv, pos_t, class_weights(spec, t.cls[pos_t])
        )
        obj_t, obj_w = self._obj_targets(spec, obj_p.detach(), ious.matched, cells, cell_mult, hits)
        obj_l = self._prob_loss(p[..., 4], obj_p, obj_t, spec.new_coords)
        obj_loss = spec.obj_normalizer * (obj_l * obj_w).sum()

        # --- (prediction, truth) pairs: truth_thresh hits first (Darknet's order), then positives
        order = pos_t
        if hits is not None:
            flat = torch.cat([hits.flat, flat])
            pos_t = torch.cat([hits.truth, pos_t])
            order = torch.cat([torch.full_like(hits.truth, -1), order])
            cells, inv = torch.unique(flat, return_inverse=True)
            rest = flat
            pos_i, rest = rest % gw, rest // gw
            pos_j, rest = rest % gh, rest // gh
            pos_k, pos_img = rest % n, rest // n
        zero = raw.new_zeros(())
        if not len(pos_t):
            return torch.stack([zero, zero, obj_loss])
        mult = class_weights(spec, t.cls[pos_t])  # (P,)
        ci = cells
        cw_i, ci = ci % gw, ci // gw
        cj, ci = ci % gh, ci // gh
        ck, cb = ci % n, ci // n
        cls_logit, cls_prob = p[cb, ck, cj, cw_i, 5:], cls_p[cb, ck, cj, cw_i]
        first_target = None
        if hits is not None and spec.objectness_smooth:  # the class delta of a hit: its IoU^2
            first_target = torch.full((len(cells),), float("nan"), device=dev)
            first_target[inv[: len(hits.flat)]] = hits.iou**2
        cls_t, cls_w = class_targets(
            spec, cls_prob.detach(), inv, t.cls[pos_t], order, first_target
        )
        cls_l = self._prob_loss(cls_logit, cls_prob, cls_t, spec.new_coords)
        cls_loss = (cls_w * cls_l).sum()

        # --- box terms per (cell, truth) pair
        tb = t.box[pos_t]
        if spec.iou_loss == "mse":
            txy = tb[:, :2] * torch.tensor([gw, gh], device=dev) - torch.stack([pos_i, pos_j], 1)
            box_l = self._mse_box_loss(
                spec,
                tb,
                txy,
                all_anchors[mask[pos_k]],
                p[pos_img, pos_k, pos_j, pos_i],
                xy[pos_img, pos_k, pos_j, pos_i],
            )
            box_l = spec.iou_normalizer * mult * box_l
        else:
            anchor = all_anchors[mask[pos_k]]
            cell = torch.stack([pos_i, pos_j], 1).float()
            size = torch.tensor([gw, gh], dtype=torch.float32, device=dev)

            def pair_loss(rb: Tensor) -> Tensor:
                _, pb = self._decode_box(rb, spec, anchor, cell, size)
                iou = box_iou_kind(_cxcywh_to_xyxy(pb), _cxcywh_to_xyxy(tb), spec.iou_loss)
                return spec.iou_normalizer * mult * (1 - iou)

            box_l = _clip_grad(pair_loss, p[pos_img, pos_k, pos_j, pos_i, 0:4], spec.max_delta)
        if spec.iou_thresh < 1.0:  # Darknet averages a cell's accumulated box deltas
            classes_at = torch.zeros(len(cells), c, device=dev)
            classes_at[inv, t.cls[pos_t]] = 1.0
            box_l = box_l / classes_at.sum(1).clamp(min=1)[inv]
        return torch.stack([box_l.sum(), cls_loss, obj_loss])

    @staticmethod
    def _obj_targets(
        spec: YoloLossSpec,
        obj_p: Tensor,
        best: Tensor,
        cells: Tensor,
        cell_mult: Tensor,
        hits: TruthHits | None,
    ) -> tuple[Tensor, Tensor]:
        """Objectness targets and weights ``(B, n, h, w)`` (Darknet's ``process_batch``): the
        loss's gradient ``obj_normalizer * w * (p - target)`` is minus Darknet's delta.
        ``best``: each prediction's ``best_match_iou``; ``cells``: the truths' positives as
        flat indices into ``(B, n, h, w)``, ``cell_mult`` their weight where they get target 1
        (:func:`~detforge.train.yolo_targets.cell_multipliers`); ``hits``: the predictions over
        ``truth_thresh``, set first (target 1, or their IoU squared with ``objectness_smooth``)."""
        obj_t = torch.zeros_like(obj_p).contiguous()
        obj_w = torch.ones_like(obj_p).contiguous()
        over = best > spec.ignore_thresh
        smooth = spec.objectness_smooth
        norm = spec.obj_normalizer
        if not smooth:
            obj_w[over] = 0.0
        else:  # delta = norm * (0 - p), replaced by norm * (best_match_iou - p) where larger
            obj_t = torch.where(over & (norm * (best - obj_p) > norm * (0 - obj_p)), best, obj_t)
            obj_t = obj_t.contiguous()
        flat_t, flat_w = obj_t.view(-1), obj_w.view(-1)
        if hits is not None:
            flat_t[hits.flat] = hits.iou**2 if smooth else 1.0
            flat_w[hits.flat] = 1.0
        if not smooth:
            flat_t[cells] = 1.0
            flat_w[cells] = cell_mult
            return obj_t, obj_w
        # a positive keeps the delta set so far; only where it is exactly 0 does it get
        # norm * (1 - p)
        zero = norm * (flat_t[cells] - obj_p.reshape(-1)[cells]) == 0
        flat_t[cells[zero]] = 1.0
        flat_w[cells[zero]] = cell_mult[zero]
        return obj_t, obj_w

    @staticmethod
    def _decode(
        p: Tensor, spec: YoloLossSpec, anchors: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Decode one head's raw outputs ``p`` ``(B, n, h, w, 5 + C)`` with its ``(n, 2)``
        anchors (normalized w, h). Returns ``(xy, obj, cls, pbox)``: the centre offset in its
        cell ``(B, n, h, w, 2)`` (``scale_x_y`` applied), objectness ``(B, n, h, w)`` and class
        probabilities ``(B, n, h, w, C)``, and the boxes ``(B, n, h, w, 4)`` cxcywh normalized.
        With ``new_coords`` the conv already applied the logistic (Darknet's ``new_coords=1``).
        """
        _, _, gh, gw, _ = p.shape
        dev = p.device
        if spec.new_coords:
            obj_p, cls_p = p[..., 4], p[..., 5:]
        else:
            obj_p, cls_p = torch.sigmoid(p[..., 4]), torch.sigmoid(p[..., 5:])
        gy, gx = torch.meshgrid(
            torch.arange(gh, device=dev), torch.arange(gw, device=dev), indexing="ij"
        )
        grid = torch.stack([gx, gy], -1).float()
        size = torch.tensor([gw, gh], dtype=torch.float32, device=dev)
        xy, pbox = DarknetYoloLoss._decode_box(
            p[..., 0:4], spec, anchors[:, None, None, :], grid, size
        )
        return xy, obj_p, cls_p, pbox

    @staticmethod
    def _decode_box(
        raw: Tensor, spec: YoloLossSpec, anchor: Tensor, cell: Tensor, size: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Raw ``x, y, w, h`` ``(..., 4)`` -> the offset in the cell ``(..., 2)`` and the box
        ``(..., 4)`` cxcywh normalized; ``anchor`` (normalized w, h), ``cell`` (col, row) and
        ``size`` (grid w, h) broadcast against ``raw[..., :2]``."""
        s = spec.scale_x_y
        if spec.new_coords:
            xy = raw[..., 0:2] * s - 0.5 * (s - 1)
            wh = raw[..., 2:4] ** 2 * 4 * anchor
        else:
            xy = torch.sigmoid(raw[..., 0:2]) * s - 0.5 * (s - 1)
            wh = torch.exp(raw[..., 2:4]) * anchor
        return xy, torch.cat([(xy + cell) / size, wh], -1)

    @staticmethod
    def _mse_box_loss(
        spec: YoloLossSpec, tb: Tensor, txy: Tensor, anchor: Tensor, raw: Tensor, xy: Tensor
    ) -> Tensor:
        """Darknet's ``mse`` box term of each positive, ``(P,)``.

        ``tb`` ``(P, 4)`` truths cxcywh normalized; ``txy`` ``(P, 2)`` their centres in cell
        units relative to the positive's cell; ``anchor`` ``(P, 2)`` the positive's anchor
        (normalized w, h); ``raw`` ``(P, 5 + C)`` the positive's raw outputs; ``xy`` ``(P, 2)``
        its decoded offset in the cell. Scaled by ``2 - w * h`` as Darknet does.
        """
        s = spec.scale_x_y
        if spec.new_coords:
            twh = torch.sqrt(tb[:, 2:4] / (4 * anchor))
        else:
            twh = torch.log(tb[:, 2:4] / anchor)
        scale = 2 - tb[:, 2] * tb[:, 3]
        if spec.new_coords:
            dxy = 0.5 * ((txy - xy) ** 2).sum(1)
        else:  # Darknet's delta s (tx - x) on the logit: s x the gradient of this KL
            soft = (txy + 0.5 * (s - 1)) / s
            bce = F.binary_cross_entropy_with_logits(raw[:, 0:2], soft, reduction="none")
            dxy = s * (bce - _entropy(soft)).sum(1)
        return scale * (dxy + 0.5 * ((twh - raw[:, 2:4]) ** 2).sum(1))

    @staticmethod
    def _prob_loss(logit: Tensor, prob: Tensor, target: Tensor, new_coords: bool) -> Tensor:
        """BCE on logits (gradient = Darknet's delta), or half squared error on probabilities
        when the conv applied the logistic itself (``new_coords``)."""
        if new_coords:
            return 0.5 * (prob - target) ** 2
        return F.binary_cross_entropy_with_logits(logit, target, reduction="none")

    @staticmethod
    def _assign(
        spec: YoloLossSpec, t: _Truths, all_anchors: Tensor, gw: int, gh: int
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Positives of this head: ``(image, mask index, row, col, truth index)`` each (P,)."""
        dev = all_anchors.device
        empty = torch.zeros(0, dtype=torch.long, device=dev)
        if not len(t.img):
            return empty, empty, empty, empty, empty
        valid = (t.cls >= 0) & (t.cls < spec.classes)
        shape_iou = wh_iou(t.box[:, 2:4], all_anchors)  # (T, A)
        best = shape_iou.argmax(1)  # first of equals, as Darknet's strict '>'
        mask = torch.tensor(spec.mask, dtype=torch.long, device=dev)
        hit = best[:, None] == mask[None, :]  # (T, n)
        if spec.iou_thresh < 1.0:
            zeros = torch.zeros_like(t.box[:, :2])
            tbox = _cxcywh_to_xyxy(torch.cat([zeros, t.box[:, 2:4]], 1))
            abox = _cxcywh_to_xyxy(torch.cat([torch.zeros_like(all_anchors), all_anchors], 1))
            kind_iou = box_iou_kind(
                tbox[:, None, :].expand(-1, len(mask), -1),
                abox[mask][None, :, :].expand(len(tbox), -1, -1),
                spec.iou_thresh_kind,
            )
            hit = hit | (kind_iou > spec.iou_thresh)
        hit &= valid[:, None]
        ti, k = torch.nonzero(hit, as_tuple=True)
        col = (t.box[ti, 0] * gw).long().clamp(0, gw - 1)
        row = (t.box[ti, 1] * gh).long().clamp(0, gh - 1)
        return t.img[ti], k, row, col, ti

    @staticmethod
    def _best_ious(pbox: Tensor, cls_p: Tensor, t: _Truths, classes: int) -> BestIous:
        """Each prediction's best IoU with a truth of its image (class ids in range): with a
        class probability above 0.25 (Darknet's ``best_match_iou``, ``class_id_match``) and
        with any truth (``best_iou``, and which truth: the first of equals)."""
        b = pbox.shape[0]
        shape = pbox.shape[:-1]
        matched = torch.zeros(shape, device=pbox.device)
        best_any = torch.zeros(shape, device=pbox.device)
        which = torch.full(shape, -1, dtype=torch.long, device=pbox.device)
        confident = (cls_p > 0.25).any(-1)
        valid = (t.cls >= 0) & (t.cls < classes)
        for img in range(b):
            sel = torch.nonzero((t.img == img) & valid).flatten()
            if not len(sel):
                continue
            boxes = _cxcywh_to_xyxy(t.box[sel])  # (M, 4)
            pb = _cxcywh_to_xyxy(pbox[img]).reshape(-1, 1, 4)  # (P, 1, 4)
            iou = box_iou_kind(pb.expand(-1, len(boxes), -1), boxes[None].expand(len(pb), -1, -1))
            best, arg = iou.max(1)
            best = best.view(shape[1:])
            matched[img] = torch.where(confident[img], best, torch.zeros_like(best))
            best_any[img] = best
            which[img] = torch.where(best > 0, sel[arg].view(shape[1:]), -1)
        return BestIous(matched, best_any, which)


def _clip_grad(fn: Callable[[Tensor], Tensor], x: Tensor, limit: float | None) -> Tensor:
    """``fn(x)`` ``(P,)`` for rows ``x`` ``(P, k)`` that each term depends on alone, with the
    gradient of each term on its row set to 0 where NaN/inf and clipped to ``[-limit, limit]``
    (Darknet's ``fix_nan_inf`` + ``clip_value``). The value is ``fn(x)``; gradients applied to
    the result later (sums, averages, a gradient scaler) multiply the clipped gradient."""
    if limit is None or not (torch.is_grad_enabled() and x.requires_grad):
        return fn(x)
    leaf = x.detach().requires_grad_(True)
    with torch.enable_grad():
        value = fn(leaf)
        (grad,) = torch.autograd.grad(value.sum(), leaf)
    grad = torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0).clamp(-limit, limit)
    return value.detach() + (x * grad).sum(-1) - (x.detach() * grad).sum(-1)


def darknet_step_lr(learning_rate: float, batch: int) -> float:
    """The SGD learning rate for a loss summed over the batch that steps like Darknet's
    ``learning_rate`` (Darknet divides the summed gradient by its ``batch``)."""
    return learning_rate / max(batch, 1)


__all__ = [
    "DarknetYoloLoss",
    "YoloLossSpec",
    "batch_truths",
    "darknet_step_lr",
    "ineffective_keys",
    "wh_iou",
]
