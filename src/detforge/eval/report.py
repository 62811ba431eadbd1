"""Console tables for an :func:`~detforge.eval.evaluate` result."""

from __future__ import annotations

import math
from typing import Any

_COCO_LINES = (
    ("AP", "Average Precision", "0.50:0.95", "all", 100),
    ("AP50", "Average Precision", "0.50", "all", 100),
    ("AP75", "Average Precision", "0.75", "all", 100),
    ("APs", "Average Precision", "0.50:0.95", "small", 100),
    ("APm", "Average Precision", "0.50:0.95", "medium", 100),
    ("APl", "Average Precision", "0.50:0.95", "large", 100),
    ("AR1", "Average Recall", "0.50:0.95", "all", 1),
    ("AR10", "Average Recall", "0.50:0.95", "all", 10),
    ("AR100", "Average Recall", "0.50:0.95", "all", 100),
    ("ARs", "Average Recall", "0.50:0.95", "small", 100),
    ("ARm", "Average Recall", "0.50:0.95", "medium", 100),
    ("ARl", "Average Recall", "0.50:0.95", "large", 100),
)


def _pct(x: Any) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "   -  "
    return f"{100 * float(x):6.2f}"


def format_coco(res: dict[str, Any]) -> str:
    """pycocotools' 12 summary lines, then per-class AP / AP50 / AR100 (percent)."""
    lines = ["COCO protocol (identical to pycocotools COCOeval, bbox)"]
    stats = res["stats"]
    for key, title, iou, area, md in _COCO_LINES:
        kind = "(AP)" if title.startswith("Average Precision") else "(AR)"
        lines.append(
            f" {title:<18} {kind} @[ IoU={iou:<9} | area={area:>6s} | maxDets={md:>3d} ] "
            f"= {stats[key]:0.3f}"
        )
    rows = res.get("per_class") or []
    if rows:
        width = max(5, *(len(str(r["name"])) for r in rows))
        lines.append("")
        lines.append(f" {'class':<{width}}  {'AP':>6}  {'AP50':>6}  {'AP75':>6}  {'AR100':>6}")
        for r in rows:
            lines.append(
                f" {r['name']:<{width}}  {_pct(r['AP'])}  {_pct(r['AP50'])}  "
                f"{_pct(r['AP75'])}  {_pct(r['AR100'])}"
            )
    return "\n".join(lines)


def format_darknet(res: dict[str, Any], *, valid_files: bool = False) -> str:
    """The numbers Darknet's ``detector map`` prints, in its layout. ``valid_files``: the
    detections came from ``detector valid`` files, so only the scoring is darknet's."""
    head = "Darknet protocol (identical to AlexeyAB darknet 'detector map')"
    if valid_files:
        head = "Darknet protocol ('detector map' scoring of 'detector valid' detections, see note)"
    lines = [head]
    for r in res["per_class"]:
        lines.append(
            f" class_id = {r['class']}, name = {r['name']}, ap = {100 * r['AP']:.2f}%   "
            f"\t (TP = {r['tp']}, FP = {r['fp']}) "
        )
    c = res["conf_thresh"]
    lines.append(
        f" for conf_thresh = {c:1.2f}, precision = {res['precision']:1.2f}, "
        f"recall = {res['recall']:1.2f}, F1-score = {res['f1']:1.2f} "
    )
    lines.append(
        f" for conf_thresh = {c:0.2f}, TP = {res['tp']}, FP = {res['fp']}, FN = {res['fn']}, "
        f"average IoU = {100 * res['avg_iou']:2.2f} % "
    )
    pts = res["points"]
    how = f"used {pts} Recall-points" if pts else "used Area-Under-Curve for each unique Recall"
    lines.append(f" IoU threshold = {100 * res['iou_thresh']:2.0f} %, {how} ")
    m = res["mAP"]
    lines.append(
        f" mean average precision (mAP@{res['iou_thresh']:0.2f}) = {m:f}, or {100 * m:2.2f} % "
    )
    return "\n".join(lines)


def _n(count: int, noun: str) -> str:
    """``1 image``, ``2 images``, ``1 box``, ``0 boxes``."""
    if count == 1:
        return f"1 {noun}"
    return f"{count} {noun}{'es' if noun.endswith(('s', 'x')) else 's'}"


def _images_scored(result: dict[str, Any]) -> str:
    """``3 ground-truth images (2 with predictions)``, or with ``every`` above 1 ``2 of 5
    ground-truth images (1 in every 2; 1 with predictions)``."""
    n, every = result["images"], int(result.get("every", 1))
    with_pred = f"{result['pred_images']} with predictions"
    if every == 1:
        return f"{_n(n, 'ground-truth image')} ({with_pred})"
    total = _n(result["gt_images"], "ground-truth image")
    return f"{n} of {total} (1 in every {every}; {with_pred})"


def format_report(result: dict[str, Any]) -> str:
    """Everything for the console: counts, unmatched predictions, both protocols."""
    um = result.get("unmatched") or {}
    head = f"scored: {_images_scored(result)}, {_n(result['gt_boxes'], 'ground-truth box')}, "
    head += _n(result["pred_boxes"], "prediction")
    if result.get("split"):
        head += f" (the {result['split']!r} split the predictions were made on)"
    parts = [head]
    for note in result.get("notes") or []:
        parts.append(f"note: {note}")
    if um.get("boxes"):
        imgs = um.get("images") or []
        cls = um.get("classes") or []
        total = um.get("total") or um["boxes"]
        msg = (
            f"warning: {um['boxes']} of {total} predictions match no ground-truth image or class, "
            "not scored"
        )
        if imgs:
            msg += f"; images: {', '.join(map(str, imgs[:5]))}{' ...' if len(imgs) > 5 else ''}"
        if cls:
            msg += f"; classes: {', '.join(map(str, cls[:5]))}{' ...' if len(cls) > 5 else ''}"
        parts.append(msg)
    if um.get("image_ids"):
        parts.append(f"note: results' image_id read as {um['image_ids']}")
    if "coco" in result:
        parts.append(format_coco(result["coco"]))
    if "darknet" in result:
        parts.append(
            format_darknet(result["darknet"], valid_files=bool(result.get("darknet_valid")))
        )
    return "\n\n".join(parts)
