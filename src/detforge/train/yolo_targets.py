"""Which class, objectness and box deltas Darknet's ``[yolo]`` layer sets, and with what weight:
the bookkeeping of ``forward_yolo_layer`` / ``delta_yolo_class`` that
:class:`~detforge.train.darknet_loss.DarknetYoloLoss` turns into loss terms.

Conventions: a *pair* is one (prediction, truth) that sets deltas, a *cell* one prediction
(image, anchor, row, column) given as its flat index into ``(B, n, h, w)``; ``inv`` maps each
pair to its cell (``torch.unique(..., return_inverse=True)``); ``order`` is Darknet's order of
the pairs at a cell (smaller first).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from detforge.models.darknet.loss_spec import YoloLossSpec


class BestIous(NamedTuple):
    """Per prediction ``(B, n, h, w)``: ``matched`` the best IoU with a truth while one of its
    class probabilities exceeds 0.25, else 0 (Darknet's ``best_match_iou``); ``best`` the best
    IoU with any truth (``best_iou``) and ``truth`` that truth's index (-1: none overlaps)."""

    matched: Tensor
    best: Tensor
    truth: Tensor


class TruthHits(NamedTuple):
    """Predictions whose best IoU exceeds ``truth_thresh``: ``flat`` cell indices (H,),
    ``truth`` the truth each one is pulled to (H,), ``iou`` that IoU (H,)."""

    flat: Tensor
    truth: Tensor
    iou: Tensor


def truth_hits(spec: YoloLossSpec, ious: BestIous) -> TruthHits | None:
    """Darknet's ``best_iou > truth_thresh`` branch: every prediction overlapping a truth that
    much becomes a positive for it (objectness, class and box deltas), before the truths' own
    positives are set. None when ``truth_thresh >= 1`` (every stock cfg) or nothing is hit."""
    if spec.truth_thresh >= 1.0:
        return None
    best, truth = ious.best.reshape(-1), ious.truth.reshape(-1)
    flat = torch.nonzero((best > spec.truth_thresh) & (truth >= 0)).flatten()
    if not len(flat):
        return None
    return TruthHits(flat, truth[flat], best[flat])


def class_weights(spec: YoloLossSpec, cls: Tensor) -> Tensor:
    """Darknet's ``classes_multipliers`` of classes ``cls`` (P,); 1 without
    ``counters_per_class``."""
    if spec.class_multipliers is None:
        return torch.ones(len(cls), device=cls.device)
    table = torch.tensor(spec.class_multipliers, dtype=torch.float32, device=cls.device)
    return table[cls]


def cell_multipliers(
    spec: YoloLossSpec, cells: int, inv: Tensor, order: Tensor, mult: Tensor
) -> Tensor:
    """Each positive cell's objectness weight at target 1 ``(cells,)``: the multiplier of its
    last pair (each truth overwrites Darknet's delta); with ``objectness_smooth``, of its first
    (only a zero delta is set); 1 without ``counters_per_class``."""
    if spec.class_multipliers is None:
        return torch.ones(cells, device=mult.device)
    smooth = spec.objectness_smooth
    init = torch.iinfo(torch.long).max if smooth else torch.iinfo(torch.long).min
    chosen = torch.full((cells,), init, dtype=torch.long, device=mult.device)
    chosen = chosen.scatter_reduce(0, inv, order, "amin" if smooth else "amax")
    out = torch.ones(cells, device=mult.device)
    hit = order == chosen[inv]
    out[inv[hit]] = mult[hit]
    return out


def is_plain(spec: YoloLossSpec) -> bool:
    """Neither ``focal_loss``, ``counters_per_class`` nor ``truth_thresh < 1``: the class
    terms are detforge's plain form (:func:`class_targets`)."""
    return not spec.focal_loss and spec.class_multipliers is None and spec.truth_thresh >= 1.0


def class_targets(
    spec: YoloLossSpec,
    prob: Tensor,
    inv: Tensor,
    cls: Tensor,
    order: Tensor,
    first_target: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Class targets and weights ``(cells, C)`` (Darknet's ``delta_yolo_class``); ``prob`` the
    cells' class probabilities (detached), ``inv``/``cls``/``order`` each pair's cell, truth
    class and order; ``first_target`` (cells,): where not NaN, the target of the first pair's
    class (``truth_thresh`` with ``objectness_smooth``: its IoU squared, weight its multiplier).

    Plain (:func:`is_plain`): target 1 for the classes of the cell's truths, 0 otherwise
    (label smoothing applied), weight 1 (what the rules below give then). Otherwise: a
    cell's first pair sets every class, target its one-hot; with ``focal_loss`` unsmoothed and
    weighted ``0.5 g(pt)``, ``g(pt) = -(1 - pt)(2 pt ln pt + pt - 1)`` (``pt``: the probability
    of its class), else smoothed, weight 1 and ``multiplier x cls_normalizer`` on its class.
    Each later pair sets its own class only (Darknet's early return): smoothed target 1,
    weight its multiplier (1 without ``counters_per_class``)."""
    cells, c = len(prob), spec.classes
    eps = spec.label_smooth_eps
    if is_plain(spec):
        target = torch.zeros(cells, c, device=prob.device)
        target[inv, cls] = 1.0
        if eps:
            target = target * (1 - eps) + 0.5 * eps
        return target, torch.ones_like(target)
    first_order = torch.full((cells,), torch.iinfo(torch.long).max, device=prob.device)
    first_order = first_order.scatter_reduce(0, inv, order, "amin")
    first = order == first_order[inv]  # (P,): the first pair of its cell
    first_cls = torch.zeros(cells, dtype=torch.long, device=prob.device)
    first_cls[inv[first]] = cls[first]
    rows = torch.arange(cells, device=prob.device)
    target = torch.zeros(cells, c, device=prob.device)
    target[rows, first_cls] = 1.0
    if spec.focal_loss:
        pt = prob[rows, first_cls] + 1e-15
        focal = -(1 - pt) * (2 * pt * torch.log(pt) + pt - 1)
        weight = (0.5 * focal)[:, None].expand(cells, c).clone()
    else:
        if eps:
            target = target * (1 - eps) + 0.5 * eps
        weight = torch.ones(cells, c, device=prob.device)
        weight[rows, first_cls] = class_weights(spec, first_cls) * spec.cls_normalizer
    if first_target is not None:
        over = ~torch.isnan(first_target)
        target[rows[over], first_cls[over]] = first_target[over]
        weight[rows[over], first_cls[over]] = class_weights(spec, first_cls[over])
    later = ~first
    target[inv[later], cls[later]] = 1 - eps + 0.5 * eps if eps else 1.0
    weight[inv[later], cls[later]] = class_weights(spec, cls[later])
    return target, weight


__all__ = [
    "BestIous",
    "TruthHits",
    "cell_multipliers",
    "class_targets",
    "class_weights",
    "is_plain",
    "truth_hits",
]
