"""PNG plots of an evaluation: PR curves, the F1-confidence curve, a confusion matrix.

The curves use the Darknet protocol's matching (IoU strictly greater than ``iou``, a truth's
first detection in score order is the true positive). The confusion matrix matches, per image,
predictions with ``score > conf`` to ground truth of *any* class one-to-one by decreasing IoU
(``> iou``); unmatched truths go to the ``background`` column, unmatched predictions to the
``background`` row. matplotlib is imported here only (no pyplot, no global state).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detforge.data.boxes import BoxFormat, box_iou
from detforge.data.dataset import Dataset

F64 = NDArray[np.float64]


def f1_curve(
    curves: list[tuple[F64, F64, F64]], gt_counts: list[int], grid: F64
) -> tuple[F64, F64]:
    """Per-class F1 at each confidence in ``grid`` (detections with ``prob > c``), averaged
    over classes with ground truth. Returns ``(mean_f1 (G,), per_class (K, G))``."""
    per = np.zeros((len(curves), len(grid)))
    for k, (prec, rec, prob) in enumerate(curves):
        if not len(prob):
            continue
        n = np.searchsorted(-prob, -grid, side="left")  # count of prob > c (prob descending)
        ok = n > 0
        p = np.where(ok, prec[np.maximum(n - 1, 0)], 0.0)
        r = np.where(ok, rec[np.maximum(n - 1, 0)], 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            per[k] = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
    has = np.asarray(gt_counts) > 0
    mean = per[has].mean(axis=0) if has.any() else np.zeros(len(grid))
    return mean, per


def confusion_matrix(
    gt: Dataset, pred: Dataset, *, iou: float = 0.5, conf: float = 0.25
) -> NDArray[np.int64]:
    """``(K+1, K+1)`` counts, rows = true class (last: background), columns = predicted."""
    K = gt.num_classes
    cm = np.zeros((K + 1, K + 1), dtype=np.int64)
    g_xyxy = gt.coords_as(BoxFormat.XYXY_PIXEL) if gt.num_boxes else np.zeros((0, 4))
    keep = np.flatnonzero(pred.boxes.score > conf)
    p = pred.boxes.take(keep)
    p_xyxy = pred.coords_as(BoxFormat.XYXY_PIXEL)[keep] if len(keep) else np.zeros((0, 4))
    g_start = np.searchsorted(gt.boxes.image, np.arange(gt.num_images + 1))
    p_start = np.searchsorted(p.image, np.arange(gt.num_images + 1))
    for i in range(gt.num_images):
        gs, ge, ps, pe = g_start[i], g_start[i + 1], p_start[i], p_start[i + 1]
        gc, pc = gt.boxes.cls[gs:ge], p.cls[ps:pe]
        if ge == gs or pe == ps:
            np.add.at(cm, (gc, np.full(len(gc), K)), 1)
            np.add.at(cm, (np.full(len(pc), K), pc), 1)
            continue
        m = box_iou(g_xyxy[gs:ge], p_xyxy[ps:pe])
        gi, pj = np.nonzero(m > iou)
        order = np.argsort(-m[gi, pj], kind="stable")
        g_used = np.zeros(ge - gs, dtype=bool)
        p_used = np.zeros(pe - ps, dtype=bool)
        for a, b in zip(gi[order].tolist(), pj[order].tolist(), strict=True):
            if not g_used[a] and not p_used[b]:
                g_used[a] = p_used[b] = True
                cm[gc[a], pc[b]] += 1
        np.add.at(cm, (gc[~g_used], np.full(int((~g_used).sum()), K)), 1)
        np.add.at(cm, (np.full(int((~p_used).sum()), K), pc[~p_used]), 1)
    return cm


CONFUSION_CLASSES = 40
"""Classes a confusion matrix shows (plot and report); the others are summed into one row
and column (:func:`top_confusion`)."""
PR_PANELS = 60
"""Per-class PR panels drawn: those of the classes with the most ground-truth boxes."""


def top_confusion(cm: NDArray[np.int64], limit: int) -> tuple[list[int], NDArray[np.int64]]:
    """The part of a ``(K+1, K+1)`` :func:`confusion_matrix` that a reader can look at.

    With ``K <= limit`` classes, ``(all class ids, cm)``. With more, the ``limit`` classes
    holding the most boxes in ``cm`` (row plus column sum; ties by class id), in id order, and
    the matrix over those classes, then one row and column summing every other class, then
    background: ``(S+2, S+2)``. Every count stays in the matrix, so row and column totals of
    the shown classes and of background are those of ``cm``.
    """
    k = cm.shape[0] - 1
    if k <= limit:
        return list(range(k)), cm
    weight = cm[:k, :].sum(axis=1) + cm[:, :k].sum(axis=0)
    shown = np.sort(np.argsort(-weight, kind="stable")[:limit])
    group = np.full(k + 1, limit, dtype=np.int64)  # every other class: row/column ``limit``
    group[shown] = np.arange(limit)
    group[k] = limit + 1  # background stays last
    onehot = np.zeros((k + 1, limit + 2), dtype=np.int64)
    onehot[np.arange(k + 1), group] = 1
    return shown.tolist(), onehot.T @ cm @ onehot


def _monotone(prec: F64) -> F64:
    """The precision envelope AP uses: ``max(prec[i:])`` at each ``i`` (same shape as ``prec``)."""
    return np.maximum.accumulate(prec[::-1])[::-1]


def _pr_figures(
    dk: dict[str, Any], names: list[str], gts: list[int], iou: float
) -> tuple[Any, Any]:
    """The PR figures from the Darknet result ``dk``: all classes on one axes with the mean in
    bold, and one small panel per class. Curves are the monotone envelope, as AP uses it;
    the mean is sampled on 101 recall points. Returns ``(all_classes_fig, per_class_fig)``."""
    from matplotlib.figure import Figure

    curves = dk["curves"]
    fig = Figure(figsize=(7, 6))
    ax = fig.add_subplot(1, 1, 1)
    rgrid = np.linspace(0.0, 1.0, 101)
    sampled = []
    for k, (prec, rec, _) in enumerate(curves):
        if len(rec):
            mono = _monotone(prec)
            lbl = f"{names[k]} {dk['per_class'][k]['AP']:.3f}" if len(names) <= 20 else None
            ax.plot(np.r_[0.0, rec], np.r_[mono[0], mono], lw=1, label=lbl, drawstyle="steps-pre")
            first = np.searchsorted(rec, rgrid, side="left")
            sampled.append(np.where(first < len(rec), mono[np.minimum(first, len(rec) - 1)], 0))
        elif gts[k] > 0:
            sampled.append(np.zeros(len(rgrid)))
    if sampled:
        ax.plot(rgrid, np.mean(sampled, axis=0), lw=3, color="C0", label="all classes")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
    ax.set_title(f"PR curves (IoU > {iou:g}); mAP = {dk['mAP']:.3f}")
    if ax.get_legend_handles_labels()[0]:  # none without curves (matplotlib would warn)
        ax.legend(fontsize=7, loc="lower left")

    panels = _most_boxes(gts, PR_PANELS)
    cols = min(5, max(1, len(panels)))
    rows = max(1, (len(panels) + cols - 1) // cols)
    per_fig = Figure(figsize=(2.6 * cols, 2.3 * rows))
    if len(panels) < len(names):
        per_fig.suptitle(
            f"the {len(panels)} classes with the most ground-truth boxes (of {len(names)})"
        )
    for at, k in enumerate(panels):
        prec, rec, _ = curves[k]
        axk = per_fig.add_subplot(rows, cols, at + 1)
        if len(rec):
            mono = _monotone(prec)
            axk.plot(np.r_[0.0, rec], np.r_[mono[0], mono], lw=1.2, drawstyle="steps-pre")
        axk.set(xlim=(0, 1), ylim=(0, 1.02))
        axk.set_title(f"{names[k]}: AP {dk['per_class'][k]['AP']:.3f}", fontsize=8)
        axk.tick_params(labelsize=6)
    per_fig.tight_layout()
    return fig, per_fig


def _most_boxes(gts: list[int], limit: int) -> list[int]:
    """Class ids, in id order: all of them, or the ``limit`` with the most ground-truth boxes
    ``gts`` (ties by class id)."""
    if len(gts) <= limit:
        return list(range(len(gts)))
    return sorted(np.argsort(-np.asarray(gts), kind="stable")[:limit].tolist())


def _f1_figure(grid: F64, mean_f1: F64, per: F64, best: int) -> Any:
    """Per-class F1 curves (grey) on the confidence ``grid``, their mean (bold) and a dashed
    line at ``grid[best]``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 5))
    ax = fig.add_subplot(1, 1, 1)
    for row in per:
        ax.plot(grid, row, lw=0.6, color="0.7")
    ax.plot(grid, mean_f1, lw=2.5, color="C0", label="all classes")
    ax.axvline(grid[best], color="C3", ls="--", lw=1)
    ax.set(xlabel="confidence threshold", ylabel="F1", xlim=(0, 1), ylim=(0, 1.02))
    ax.set_title(f"best F1 {mean_f1[best]:.3f} at confidence > {grid[best]:.2f}")
    ax.legend(loc="lower left")
    return fig


def _confusion_figure(cm: NDArray[np.int64], names: list[str], iou: float, conf: float) -> Any:
    """The ``(K+1, K+1)`` matrix ``cm`` shown column-normalised (each predicted class sums to
    1), with the raw counts written in the cells when there are at most 30 labels; beyond
    :data:`CONFUSION_CLASSES` classes the others are summed into one (:func:`top_confusion`)."""
    from matplotlib.figure import Figure

    shown, cm = top_confusion(cm, CONFUSION_CLASSES)
    others = len(names) - len(shown)
    labels = [names[k] for k in shown] + ([f"{others} other classes"] if others else [])
    labels.append("background")
    size = max(5.0, 0.35 * len(labels) + 2)
    fig = Figure(figsize=(size, size))
    ax = fig.add_subplot(1, 1, 1)
    tot = cm.sum(axis=0, keepdims=True)
    norm = np.divide(cm, tot, out=np.zeros(cm.shape), where=tot > 0)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(len(labels))
    ax.set_xticks(ticks, labels, rotation=90, fontsize=7)
    ax.set_yticks(ticks, labels, fontsize=7)
    ax.set(xlabel="predicted", ylabel="true")
    if len(labels) <= 30:
        for (a, b), v in np.ndenumerate(cm):
            if v:
                ax.text(b, a, str(v), ha="center", va="center", fontsize=6)
    ax.set_title(f"confusion matrix (conf > {conf:g}, IoU > {iou:g})")
    fig.tight_layout()
    return fig


def write_plots(
    result: dict[str, Any], gt: Dataset, pred: Dataset, out: Path, *, iou: float, conf: float
) -> dict[str, Any]:
    """Write ``pr_curves.png``, ``pr_curves_per_class.png``, ``f1_curve.png`` and
    ``confusion_matrix.png`` into ``out``.

    ``pred`` shares ``gt``'s image table (as :func:`~detforge.eval.read_predictions` returns
    it); ``result["every"]`` images are subsampled like the metrics. Returns ``{"best_conf",
    "best_f1", "confusion_matrix"}`` (also stored in ``result``).
    """
    from detforge.utils.plotting import save_figure

    every = int(result.get("every", 1))
    if every > 1:
        kept = np.arange(0, gt.num_images, every)
        gt, pred = gt.select(kept), pred.select(kept)
    dk = result.get("darknet")
    if dk is None:
        from detforge.eval.api import evaluate

        dk = evaluate(gt, pred, protocol="darknet", iou=iou, conf=conf)["darknet"]
    names = list(gt.class_names)
    gts = [r["gt"] for r in dk["per_class"]]

    pr_fig, per_class_fig = _pr_figures(dk, names, gts, iou)
    save_figure(pr_fig, out / "pr_curves.png", dpi=110)
    save_figure(per_class_fig, out / "pr_curves_per_class.png", dpi=110)

    grid = np.linspace(0.0, 1.0, 101)
    mean_f1, per = f1_curve(dk["curves"], gts, grid)
    # The highest threshold that keeps the best F1 (below the detector's own cut-off the
    # curve is flat, and the lowest point of that plateau would be a useless suggestion).
    best = len(mean_f1) - 1 - int(np.argmax(mean_f1[::-1]))
    save_figure(_f1_figure(grid, mean_f1, per, best), out / "f1_curve.png", dpi=110)

    cm = confusion_matrix(gt, pred, iou=iou, conf=conf)
    save_figure(_confusion_figure(cm, names, iou, conf), out / "confusion_matrix.png", dpi=110)

    extra = {
        "best_conf": float(grid[best]),
        "best_f1": float(mean_f1[best]),
        "confusion_matrix": cm.tolist(),
    }
    result["plots"] = extra
    return extra
