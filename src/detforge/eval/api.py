"""``evaluate(gt, pred)``: both protocols on two :class:`Dataset` objects, one result dict."""

from __future__ import annotations

import math
from pathlib import PurePath
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detforge.data.boxes import BoxFormat, convert_boxes
from detforge.data.dataset import Dataset
from detforge.errors import DetforgeError

PROTOCOLS = ("coco", "darknet", "all")
ARRAY_KEYS = ("curves",)
"""Keys holding lists of numpy arrays in the result; :func:`jsonable` leaves them out, and every
numpy array (``coco.precision``, ``recall_array``, ``scores``); ``darknet.precision`` is a number
and stays."""
MAX_UNMATCHED_SHARE = 0.01
"""Largest share of predictions that may fit no ground-truth image or class before
:func:`evaluate` refuses to score (above it the number would be confidently wrong)."""


def _stem(p: str) -> str:
    return PurePath(str(p).replace("\\", "/")).stem


def align_images(gt: Dataset, pred: Dataset) -> NDArray[np.int64]:
    """``(pred.num_images,)`` gt row of each prediction image (``-1`` when none).

    By ``images.id`` when that gt image has the same file stem (or the prediction image has no
    path), else by file stem.
    """
    if pred.images is gt.images:
        return np.arange(gt.num_images, dtype=np.int64)
    order = np.argsort(gt.images.id, kind="stable")
    sid = gt.images.id[order]
    out = np.full(pred.num_images, -1, dtype=np.int64)
    if not len(sid):
        return out
    pos = np.minimum(np.searchsorted(sid, pred.images.id), len(sid) - 1)
    cand = np.where(sid[pos] == pred.images.id, order[pos], -1)
    gt_stems = [_stem(p) for p in gt.images.path.tolist()]
    by_stem: dict[str, int] = {}
    for i, s in enumerate(gt_stems):
        by_stem.setdefault(s, i)
    for i, (c, p) in enumerate(zip(cand.tolist(), pred.images.path.tolist(), strict=True)):
        s = _stem(p) if p else ""
        if c >= 0 and (not s or s == gt_stems[c]):
            out[i] = c
        else:
            out[i] = by_stem.get(s, -1) if s else -1
    return out


def align_classes(gt: Dataset, pred: Dataset) -> NDArray[np.int64]:
    """``(pred.num_classes,)`` gt class of each prediction class, by name (``-1`` if absent)."""
    if pred.class_names == gt.class_names:
        return np.arange(gt.num_classes, dtype=np.int64)
    idx = {n: k for k, n in enumerate(gt.class_names)}
    return np.array([idx.get(n, -1) for n in pred.class_names], dtype=np.int64)


def check_ground_truth(gt: Dataset) -> None:
    """A one-line DetforgeError when ``gt`` cannot be scored like the reference tools would:
    a COCO file without ``annotations`` (an image-info / test-dev file: no ground truth), or
    with boxes its reader left out for another reason than a zero width or height (negative
    size, not finite, huge: ``meta["unscorable_boxes"]``, see
    :func:`detforge.formats.coco.read_coco`), which pycocotools would use as written."""
    source = gt.meta.get("source")
    if gt.meta.get("coco_image_info"):
        raise DetforgeError(
            "no 'annotations' key: this looks like an image-info/test file without ground "
            "truth; evaluate against an instances file with annotations",
            path=source,
        )
    bad = gt.meta.get("unscorable_boxes") or []
    if bad:
        raise DetforgeError(
            f"{len(bad)} ground-truth box(es) cannot be scored (first: {bad[0]}); fix them "
            "(see detforge check): pycocotools would use them as written",
            path=source,
        )


def evaluate(
    gt: Dataset,
    pred: Dataset,
    *,
    protocol: str = "all",
    iou: float = 0.5,
    points: int = 0,
    conf: float = 0.25,
    every: int = 1,
    ignore_unmatched: bool = False,
) -> dict[str, Any]:
    """Evaluate predictions ``pred`` (boxes with ``score``) against ground truth ``gt``.

    Args:
        protocol: ``"coco"`` (pycocotools' numbers), ``"darknet"`` (``detector map``) or
            ``"all"``.
        iou: Darknet IoU threshold (a detection needs IoU strictly greater).
        points: Darknet AP rule: ``0`` area under the curve, ``11`` or ``101`` points.
        conf: Darknet confidence threshold for P/R/F1/TP/FP/FN and average IoU.
        every: evaluate 1 image in ``every`` (rows ``0, every, 2*every, ...`` of ``gt``).
        ignore_unmatched: score the rest when more than :data:`MAX_UNMATCHED_SHARE` of the
            predictions fit no ground-truth image or class (else a DetforgeError says how
            many, with an example; fewer are a warning in ``result["unmatched"]``).

    When ``pred.meta["split"]`` names the split the predictions were made on (from a
    provenance sidecar) and ``gt`` holds several splits, only that split is scored.

    Returns:
        ``{"images", "gt_boxes", "pred_boxes", "unmatched", "coco": {"stats": {12 names},
        "per_class": [...], "precision", "recall_array", "scores"}, "darknet": {"mAP", ...,
        "per_class": [...], "curves"}}``. The numpy entries (:data:`ARRAY_KEYS`) are dropped
        by :func:`jsonable`.
    """
    if protocol not in PROTOCOLS:
        raise DetforgeError(f"unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")
    if points != 0 and points < 2:
        raise DetforgeError(f"--points must be 0 (area under the curve), 11 or 101, not {points}")
    if every < 1:
        raise DetforgeError(f"--every must be a positive integer, not {every}")
    for name, value in (("iou", iou), ("conf", conf)):
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise DetforgeError(f"--{name} must be a number from 0 to 1, not {value}")
    check_ground_truth(gt)
    row_of = align_images(gt, pred)
    cls_of = align_classes(gt, pred)
    b_img = row_of[pred.boxes.image] if pred.num_boxes else np.zeros(0, dtype=np.int64)
    b_cls = cls_of[pred.boxes.cls] if pred.num_boxes else np.zeros(0, dtype=np.int64)
    unmatched = _unmatched(pred, row_of, cls_of, (b_img < 0) | (b_cls < 0))
    check_unmatched(unmatched, ignore=ignore_unmatched, source=pred.meta.get("source"))

    split = pred.meta.get("split")
    keep_rows = _rows_to_score(gt, split, every)
    new_row = np.full(gt.num_images + 1, -1, dtype=np.int64)
    new_row[keep_rows] = np.arange(len(keep_rows))
    if len(keep_rows) != gt.num_images:
        gt = gt.select(keep_rows)
    b_img = new_row[b_img]  # -1 stays -1 (index -1 is the extra slot)
    keep = np.flatnonzero((b_img >= 0) & (b_cls >= 0))
    p_boxes = pred.boxes if len(keep) == pred.num_boxes else pred.boxes.take(keep)
    p_img, p_cls, p_score = b_img[keep], b_cls[keep], p_boxes.score
    if len(p_score) and not np.isfinite(p_score).all():
        bad = int((~np.isfinite(p_score)).sum())
        raise DetforgeError(
            f"{bad} predictions have no finite score; predictions need a confidence per box "
            "(ground truth given as predictions?)"
        )

    result: dict[str, Any] = {
        "images": gt.num_images,
        "every": every,
        "gt_boxes": gt.num_boxes,
        "pred_boxes": len(keep),
        "classes": list(gt.class_names),
        "unmatched": unmatched,
        "notes": list(pred.meta.get("notes") or []),
    }
    if split:
        result["split"] = split
    if pred.meta.get("darknet_valid"):
        result["darknet_valid"] = True
    if protocol in ("coco", "all"):
        result["coco"] = _coco(gt, p_boxes.coords, p_boxes.format, p_img, p_cls, p_score)
    if protocol in ("darknet", "all"):
        result["darknet"] = _darknet(
            gt, p_boxes.coords, p_boxes.format, p_img, p_cls, p_score, iou, conf, points
        )
    return result


def _unmatched(
    pred: Dataset, row_of: NDArray[np.int64], cls_of: NDArray[np.int64], lost: NDArray[np.bool_]
) -> dict[str, Any]:
    """The reader's ``meta["unmatched"]`` plus the boxes whose image or class ``align_*``
    found no place for (``lost``); ``total`` counts every prediction."""
    unmatched = dict(pred.meta.get("unmatched") or {"images": [], "boxes": 0, "classes": []})
    if lost.any():
        unmatched["boxes"] = int(unmatched.get("boxes", 0)) + int(lost.sum())
        extra = sorted({str(p) for p in pred.images.path[np.flatnonzero(row_of < 0)].tolist()})
        unmatched["images"] = sorted(set(unmatched.get("images", [])) | set(extra))
        names = {pred.class_names[k] for k in np.flatnonzero(cls_of < 0).tolist()}
        unmatched["classes"] = sorted(set(map(str, unmatched.get("classes", []))) | names)
    unmatched["total"] = max(int(unmatched.get("total", 0)), pred.num_boxes)
    return unmatched


def _rows_to_score(gt: Dataset, split: str | None, every: int) -> NDArray[np.int64]:
    """GT rows scored: those of ``split`` when ``gt`` holds it among others, 1 in ``every``."""
    restrict = bool(split) and split in gt.splits() and len(gt.splits()) > 1
    base = np.flatnonzero(gt.images.split == split) if restrict else np.arange(gt.num_images)
    return base[::every].astype(np.int64)


def check_unmatched(unmatched: dict[str, Any], *, ignore: bool = False, source: Any = None) -> None:
    """Refuse (one-line DetforgeError) when more than :data:`MAX_UNMATCHED_SHARE` of the
    predictions fit no ground-truth image or class, unless ``ignore``."""
    lost = int(unmatched.get("boxes", 0))
    total = max(int(unmatched.get("total", 0)), lost, 1)
    if ignore or lost <= MAX_UNMATCHED_SHARE * total:
        return
    examples = []
    if unmatched.get("images"):
        examples.append(f"image {unmatched['images'][0]!r} is not in the ground truth")
    if unmatched.get("classes"):
        examples.append(f"class {unmatched['classes'][0]!r} is not in the ground truth")
    raise DetforgeError(
        f"{lost} of {total} predictions ({100 * lost / total:.1f}%) fit no ground-truth image or "
        f"class ({'; '.join(examples) or 'see the ids'}): wrong ground truth or split? "
        "(--ignore-unmatched scores the rest)",
        path=source,
    )


def _convert(
    gt: Dataset, coords: NDArray[np.float64], fmt: BoxFormat, img: NDArray[np.int64], dst: BoxFormat
) -> NDArray[np.float64]:
    if fmt is dst:
        return coords
    return convert_boxes(
        coords, fmt, dst, widths=gt.images.width[img], heights=gt.images.height[img]
    )


def _coco(
    gt: Dataset,
    coords: NDArray[np.float64],
    fmt: BoxFormat,
    img: NDArray[np.int64],
    cls: NDArray[np.int64],
    score: NDArray[np.float64],
) -> dict[str, Any]:
    from detforge.eval.coco import STAT_NAMES, coco_evaluate, per_class

    if (fmt.normalized and len(coords)) or (gt.boxes.format.normalized and gt.num_boxes):
        from detforge.formats.common import ensure_sizes

        gt = ensure_sizes(gt)
    pos = np.empty(gt.num_images, dtype=np.int64)
    pos[np.argsort(gt.images.id, kind="stable")] = np.arange(gt.num_images)
    g_xywh = gt.coords_as(BoxFormat.XYWH_PIXEL)
    r = coco_evaluate(
        gt_image=pos[gt.boxes.image],
        gt_cls=gt.boxes.cls,
        gt_xywh=g_xywh,
        gt_area=gt.boxes.area,
        gt_crowd=gt.boxes.crowd,
        dt_image=pos[img],
        dt_cls=cls,
        dt_xywh=_convert(gt, coords, fmt, img, BoxFormat.XYWH_PIXEL),
        dt_score=score,
        num_images=gt.num_images,
        num_classes=gt.num_classes,
    )
    return {
        "stats": {k: float(v) for k, v in zip(STAT_NAMES, r.stats, strict=True)},
        "per_class": per_class(r, gt.class_names),
        "precision": r.precision,
        "recall_array": r.recall,
        "scores": r.scores,
    }


def _darknet(
    gt: Dataset,
    coords: NDArray[np.float64],
    fmt: BoxFormat,
    img: NDArray[np.int64],
    cls: NDArray[np.int64],
    score: NDArray[np.float64],
    iou: float,
    conf: float,
    points: int,
) -> dict[str, Any]:
    from detforge.eval.darknet import darknet_evaluate

    if (not fmt.normalized and len(coords)) or (not gt.boxes.format.normalized and gt.num_boxes):
        from detforge.formats.common import ensure_sizes

        gt = ensure_sizes(gt)
    out = darknet_evaluate(
        gt_image=gt.boxes.image,
        gt_cls=gt.boxes.cls,
        gt_box=gt.coords_as(BoxFormat.CXCYWH_NORM).astype(np.float32),
        gt_difficult=gt.boxes.difficult | gt.boxes.crowd,
        dt_image=img,
        dt_cls=cls,
        dt_box=_convert(gt, coords, fmt, img, BoxFormat.CXCYWH_NORM).astype(np.float32),
        dt_prob=score.astype(np.float32),
        num_classes=gt.num_classes,
        iou_thresh=iou,
        conf_thresh=conf,
        points=points,
    )
    for row in out["per_class"]:
        row["name"] = gt.class_names[row["class"]]
    return out


def _clean(x: Any) -> Any:
    if isinstance(x, dict):
        return {
            k: _clean(v)
            for k, v in x.items()
            if k not in ARRAY_KEYS and not isinstance(v, np.ndarray)
        }
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, float | np.floating):
        f = float(x)
        return f if math.isfinite(f) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def jsonable(result: dict[str, Any]) -> dict[str, Any]:
    """The result without numpy arrays, NaN as ``None``: ready for ``json.dumps``."""
    out: dict[str, Any] = _clean(result)
    return out
