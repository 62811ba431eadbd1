"""What the report shows, as plain JSON-ready dicts: the dataset summary, the ``check``
findings and one evaluation per model (numbers from :func:`detforge.eval.evaluate`, so they
equal ``detforge eval`` on the same files).

Everything here is computed from :class:`Dataset` objects; nothing is read or written except
through the APIs called (``check_dataset`` reads the GT source).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detforge.data.dataset import Dataset

F64 = NDArray[np.float64]
SIZE_BINS = 24
"""Log-spaced bins of the box-size histogram."""


def _r(x: Any, nd: int = 4) -> Any:
    """``x`` rounded for JSON (NaN/inf -> ``None``)."""
    if x is None:
        return None
    v = float(x)
    return round(v, nd) if math.isfinite(v) else None


def _full(x: Any) -> float | None:
    """``x`` as a float at full precision (NaN/inf -> ``None``), as ``eval --json`` writes it."""
    v = float(x)
    return v if math.isfinite(v) else None


def _hist(values: F64, *, log: bool, bins: int = SIZE_BINS) -> dict[str, list[float]]:
    """``{"edges": (B+1,), "counts": (B,)}`` of positive ``values`` (log-spaced when ``log``)."""
    v = values[np.isfinite(values) & (values > 0)]
    if not len(v):
        return {"edges": [], "counts": []}
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        hi = lo * 1.01 + 1e-9
    edges = np.geomspace(lo, hi, bins + 1) if log else np.linspace(lo, hi, bins + 1)
    counts, _ = np.histogram(v, bins=edges)
    return {"edges": [_r(e) for e in edges], "counts": counts.tolist()}


def dataset_summary(ds: Dataset) -> dict[str, Any]:
    """Images, boxes and negatives per split and class, with box size / aspect histograms.

    Sizes are ``sqrt(w*h)`` in pixels (normalized units when an image size is unknown, as
    :func:`detforge.data.stats.compute_stats` decides); aspects are ``w / h``.
    """
    from detforge.data.stats import compute_stats

    out = []
    for st in compute_stats(ds):
        s = st.summary()
        s["size_hist"] = _hist(st.sizes, log=True)
        s["aspect_hist"] = _hist(st.aspects, log=True)
        out.append(s)
    return {"splits": out, "images": ds.num_images, "boxes": ds.num_boxes}


def findings_summary(
    report: Any, image_paths: list[str], out: Path | None = None
) -> list[dict[str, Any]]:
    """The ``check`` findings as dicts, each with ``image``: the gallery index of the image it
    concerns (matched by path, or a label file by its image's stem), else ``None``; and, when
    ``out`` is given and the file exists, ``href``: its path relative to ``out`` (a link that
    works while the report stays beside the data)."""
    index: dict[str, int] = {}
    stems: dict[str, int] = {}
    for i, p in enumerate(image_paths):
        ap = os.path.normpath(os.path.abspath(p))
        index[ap] = i
        stems.setdefault(os.path.splitext(ap)[0], i)
    result = []
    for f in report.findings:
        d = f.to_dict()
        img = href = None
        if f.path:
            ap = os.path.normpath(os.path.abspath(f.path))
            img = index.get(ap, stems.get(os.path.splitext(ap)[0]))
            if out is not None and os.path.isfile(ap):
                try:
                    href = Path(os.path.relpath(ap, os.path.abspath(out))).as_posix()
                except ValueError:  # another drive (Windows)
                    href = Path(ap).as_uri()
        d["image"] = img
        d["href"] = href
        result.append(d)
    return result


def _pr_sampled(prec: F64, rec: F64, grid: F64) -> list[float | None]:
    """Monotone precision envelope sampled at recall ``grid`` (as ``eval/plots.py`` draws it)."""
    if not len(rec):
        return []
    mono = np.maximum.accumulate(prec[::-1])[::-1]
    first = np.searchsorted(rec, grid, side="left")
    vals = np.where(first < len(rec), mono[np.minimum(first, len(rec) - 1)], 0.0)
    return [_r(v) for v in vals]


def model_evaluation(
    name: str,
    gt: Dataset,
    pred: Dataset,
    *,
    iou: float,
    conf: float,
    points: int = 0,
    ignore_unmatched: bool = False,
) -> dict[str, Any]:
    """One model's numbers: the 12 COCO stats, Darknet's mAP and totals, per-class rows, PR and
    F1-confidence curves (101 points) and the confusion matrix at ``conf`` as ``{"classes":
    [ids], "other": N, "matrix": [[...]]}``: rows and columns are those classes, then (when
    ``N > 0``) the ``N`` other classes summed, then background
    (:func:`~detforge.eval.plots.top_confusion`, at most
    :data:`~detforge.eval.plots.CONFUSION_CLASSES`: a table of thousands would hang the page).

    ``pred`` shares ``gt``'s image table (:func:`detforge.eval.read_predictions`); the call is
    :func:`detforge.eval.evaluate` with ``detforge eval``'s defaults, so the numbers are the same.
    """
    from detforge.eval.api import evaluate, jsonable
    from detforge.eval.plots import (
        CONFUSION_CLASSES,
        confusion_matrix,
        f1_curve,
        top_confusion,
    )

    res = evaluate(
        gt, pred, protocol="all", iou=iou, points=points, conf=conf,
        ignore_unmatched=ignore_unmatched,
    )  # fmt: skip
    clean = jsonable(res)
    dk = res["darknet"]
    grid = np.linspace(0.0, 1.0, 101)
    gts = [int(r["gt"]) for r in dk["per_class"]]
    mean_f1, per_f1 = f1_curve(dk["curves"], gts, grid)
    best = len(mean_f1) - 1 - int(np.argmax(mean_f1[::-1]))
    pr = [_pr_sampled(p, r, grid) for p, r, _ in dk["curves"]]
    shown, cm = top_confusion(confusion_matrix(gt, pred, iou=iou, conf=conf), CONFUSION_CLASSES)
    coco_rows = {int(r["class"]): r for r in clean["coco"]["per_class"]}
    rows = []
    for r in dk["per_class"]:  # raw rows: jsonable() drops keys named like numpy entries
        k = int(r["class"])
        c = coco_rows.get(k, {})
        rows.append({
            "class": k, "name": r["name"], "gt": int(r["gt"]), "detections": int(r["detections"]),
            "tp": int(r["tp"]), "fp": int(r["fp"]), "precision": _full(r["precision"]),
            "recall": _full(r["recall"]), "darknet_ap": _full(r["AP"]), "AP": c.get("AP"),
            "AP50": c.get("AP50"), "AP75": c.get("AP75"), "AR100": c.get("AR100"),
        })  # fmt: skip
    dclean = {
        k: (_full(v) if isinstance(v, float | np.floating) else v)
        for k, v in dk.items()
        if k not in ("per_class", "curves") and isinstance(v, int | float | str | np.number)
    }
    return {
        "name": name,
        "coco": clean["coco"]["stats"],
        "darknet": dclean,
        "per_class": rows,
        "unmatched": clean["unmatched"],
        "pred_boxes": clean["pred_boxes"],
        "pr": pr,
        "f1": {
            "mean": [_r(v) for v in mean_f1],
            "per_class": [[_r(v) for v in r] for r in per_f1],
            "best_conf": _r(grid[best]),
            "best_f1": _r(mean_f1[best]),
        },
        "confusion": {
            "classes": shown,
            "other": gt.num_classes - len(shown),
            "matrix": cm.tolist(),
        },
    }
