"""``evaluate(gt, pred)``: both protocols on two :class:`Dataset` objects, one result dict."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import PurePath
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detforge.data.boxes import BoxFormat, convert_boxes, cxcywh_to_xyxy
from detforge.data.dataset import Dataset, per_image, source_of
from detforge.data.validity import invalid_boxes, left_out_note, of_images, wholly_outside
from detforge.errors import DetforgeError, clip

PROTOCOLS = ("coco", "darknet", "all")
ARRAY_KEYS = ("curves",)
"""Keys holding lists of numpy arrays in the result; :func:`jsonable` leaves them out, and every
numpy array (``coco.precision``, ``recall_array``, ``scores``); ``darknet.precision`` is a number
and stays."""
MAX_POINTS = 100_000
"""Most recall points of Darknet's ``--points N`` rule (101 is COCO's; far more only costs
memory: every class samples all of them)."""
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
    no images or no classes (nothing to score; darknet's mAP would divide by zero), a COCO
    file without ``annotations`` (an image-info / test-dev file: no ground truth), or with
    boxes its reader left out of ``gt``'s images for another reason than a zero width or
    height (negative size, not finite, huge: ``meta["unscorable_boxes"]``, see
    :func:`detforge.formats.coco.read_coco`), which pycocotools would use as written."""
    source = source_of(gt)
    if gt.num_images == 0:
        raise DetforgeError("the ground truth has no images: nothing to evaluate", path=source)
    if gt.num_classes == 0:
        raise DetforgeError(
            "the ground truth has no classes (no names file, empty 'categories'): mAP over no "
            "classes is no number",
            path=source,
        )
    info_file = _image_info_file(gt)
    if info_file is not None:
        raise DetforgeError(
            "no 'annotations' key: this looks like an image-info/test file without ground "
            "truth; evaluate against an instances file with annotations",
            path=info_file,
        )
    bad = of_images(gt, gt.meta.get("unscorable_boxes") or [])
    if bad:
        raise DetforgeError(
            f"{len(bad)} ground-truth box(es) cannot be scored (first: {bad[0].record}: "
            f"{bad[0].detail}); fix them (see detforge check): pycocotools would use them as "
            "written",
            path=bad[0].path,
        )


def _image_info_file(gt: Dataset) -> str | None:
    """The first COCO file without ``annotations`` (``meta["coco_image_info"]``) that an
    image of ``gt`` came from (``meta["json_paths"]``; any such file when they are unknown):
    in a folder of per-split files only the split read from that file has no ground truth."""
    info = [str(f) for f in gt.meta.get("coco_image_info") or ()]
    files = per_image(gt, "json_paths")
    if files is None:
        return info[0] if info else None
    held = set(files)
    return next((f for f in info if f in held), None)


def refuse_no_boxes(gt: Dataset) -> None:
    """A one-line DetforgeError for ``eval`` when ``gt`` has images but not one box: every
    class's AP would be a made-up number (Darknet 0 %, COCO -1), so this is the wrong ground
    truth (labels not found, the wrong split) rather than something to score. Training's
    validation, ``map`` and reports still score such a split (:func:`evaluate` allows it)."""
    if gt.num_images and not gt.num_boxes:
        left_out = len(invalid_boxes(gt))
        why = f" ({left_out} invalid box(es) left out, see detforge check)" if left_out else ""
        raise DetforgeError(
            f"the ground truth has {gt.num_images} image(s) but no boxes{why}: no AP can be "
            "computed; are the label files beside the images (see detforge check), or is "
            "this the wrong split?",
            path=source_of(gt),
        )


def check_points(points: int) -> None:
    """A one-line DetforgeError unless ``points`` is a Darknet AP rule: ``0`` (area under the
    curve) or ``N`` recall points, ``2 <= N <=`` :data:`MAX_POINTS` (11 VOC2007, 101 COCO)."""
    if points != 0 and not 2 <= points <= MAX_POINTS:
        raise DetforgeError(
            f"--points must be 0 (area under the curve), 11 or 101 (or another N from 2 to "
            f"{MAX_POINTS}), not {points}"
        )


def outside_image(gt: Dataset) -> NDArray[np.bool_]:
    """``(M,)`` which boxes of ``gt`` lie wholly outside their image: no part of them inside
    (at or beyond an edge; ``detforge check`` reports them, as ``coord-above-one``,
    ``coord-negative`` or ``box-outside-image``). Pixel boxes on an image of unknown size
    (``0``) are judged not outside."""
    b = gt.boxes
    if not len(b):
        return np.zeros(0, dtype=bool)
    # normalized boxes as fractions of a 1 x 1 image, pixel boxes against the image's size
    xyxy = convert_boxes(b.coords, b.format, BoxFormat.XYXY_PIXEL, widths=1.0, heights=1.0)
    w = h = np.ones(len(b))
    if not b.format.normalized:
        w = gt.images.width[b.image].astype(np.float64)
        h = gt.images.height[b.image].astype(np.float64)
    return wholly_outside(xyxy, w, h) & (w > 0) & (h > 0)


def outside_note(gt: Dataset, outside: NDArray[np.bool_]) -> str | None:
    """The one line (without ``note: ``) saying how many boxes of ``gt`` lie wholly outside
    their image while scored as truths (``outside``: :func:`outside_image` of the counted
    boxes), naming the first one's file (and line); ``None`` when there are none. The scoring
    rule stays darknet's (and pycocotools'): truths no detection inside the image matches."""
    bad = np.flatnonzero(outside)
    if not len(bad):
        return None
    return (
        f"{len(bad)} ground-truth box(es) lie wholly outside their image and count as misses, "
        f"as darknet's 'detector map' counts them (no detection inside the image can match "
        f"them; first: {_where_box(gt, int(bad[0]))}); see detforge check"
    )


def _where_box(gt: Dataset, j: int) -> str:
    """Where box ``j`` of ``gt`` is written: ``label.txt:LINE: 'line'`` for a Darknet or
    Ultralytics label file, else the annotation file (VOC XML, COCO JSON, record file) and
    the box as that format writes it."""

    i = int(gt.boxes.image[j])
    image = str(gt.images.path[i])
    name = clip(str(gt.class_names[int(gt.boxes.cls[j])]), 40)
    x1, y1, x2, y2 = convert_boxes(
        gt.boxes.coords[j : j + 1], gt.boxes.format, BoxFormat.XYXY_PIXEL, widths=1.0, heights=1.0
    )[0].tolist()
    if gt.boxes.format is BoxFormat.CXCYWH_NORM:
        found = _outside_label_line(image)
        if found:
            return found
        cx, cy, w, h = gt.boxes.coords[j].tolist()
        return f"{image}: {name!r} box cx={cx:g} cy={cy:g} w={w:g} h={h:g}"
    size = f"in the {int(gt.images.width[i])}x{int(gt.images.height[i])} image"
    xmls, jsons = per_image(gt, "xml_paths"), per_image(gt, "json_paths")
    if xmls is not None:  # VOC
        box = f"xmin={x1 + 1:g} ymin={y1 + 1:g} xmax={x2:g} ymax={y2:g}"
        return f"{xmls[i] or image}: {name!r} box {box} {size}"
    if jsons is not None:  # COCO: the image's own JSON in a folder of per-split files
        box = ", ".join(f"{v:g}" for v in (x1, y1, x2 - x1, y2 - y1))
        return f"{jsons[i]}: image {PurePath(image).name!r}: {name!r} box bbox=[{box}] {size}"
    source = str(gt.meta.get("source") or image)
    box = ", ".join(f"{v:g}" for v in (x1, y1, x2, y2))
    return f"{source}: image {image!r}: {name!r} box x1,y1,x2,y2=[{box}] px {size}"


def _outside_label_line(image: str) -> str | None:
    """``label.txt:LINE: 'line'`` for the first line of ``image``'s label file whose box lies
    wholly outside the image (``None`` when there is no such file or line)."""
    from detforge.formats.darknet.labels import (
        find_label_path,
        is_label_number,
        split_label_fields,
    )
    from detforge.utils.textfile import read_regular_file

    label = find_label_path(image)
    if label is None:
        return None
    try:
        text = read_regular_file(label).decode("utf-8", "replace")
    except OSError:
        return None
    for n, raw in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        parts = split_label_fields(raw)
        if len(parts) != 5 or not all(map(is_label_number, parts)):
            continue
        box = np.array([[float(v) for v in parts[1:]]])
        if (box[0, 2:] > 0).all() and wholly_outside(cxcywh_to_xyxy(box), 1.0, 1.0)[0]:
            return f"{label}:{n}: {clip(' '.join(parts))!r}"
    return None


def classes_by_index(
    own: Sequence[str], theirs: Sequence[str], *, what: Any, data: Any
) -> tuple[tuple[str, ...], str | None]:
    """``(names, note)``: ``theirs`` (the dataset's class names) in place of ``own`` (a
    model's or a prediction file's), class k as class k (``--classes-by-index``, Darknet's
    rule: it never reads names), and a note listing each renamed class; ``own`` and ``None``
    when they agree. Different class counts are a DetforgeError naming ``what`` and
    ``data``."""
    a, b = [str(n) for n in own], [str(n) for n in theirs]
    if a == b:
        return tuple(own), None
    if len(a) != len(b):
        raise DetforgeError(
            f"--classes-by-index needs as many classes in {what} as in the dataset "
            f"({len(a)} and {len(b)})",
            path=data,
        )
    pairs = [f"{clip(x)!r} as {clip(y)!r}" for x, y in zip(a, b, strict=True) if x != y]
    shown = ", ".join(pairs[:5]) + (f" and {len(pairs) - 5} more" if len(pairs) > 5 else "")
    return tuple(theirs), f"note: scoring by class index (--classes-by-index): {shown}"


def refuse_other_classes(
    model_names: Sequence[str],
    data_names: Sequence[str],
    *,
    model: Any,
    data: Any,
    names_option: Any = None,
) -> None:
    """A one-line, bounded DetforgeError when a model's classes are not the dataset's, name
    for name and in order (a model predicts class indices; scored against other classes the
    numbers would be wrong): ``val`` and ``map`` refuse before predicting anything.
    ``names_option``: the ``--names`` file the model's names came from, if any (the message
    then says a Darknet model takes the dataset's names without it)."""
    m, d = [str(n) for n in model_names], [str(n) for n in data_names]
    if m == d:
        return
    in_m, in_d = set(m), set(d)
    only_m = [n for n in m if n not in in_d]
    only_d = [n for n in d if n not in in_m]
    parts = []
    if only_m:
        parts.append(f"only the model has {_few(only_m)}")
    if only_d:
        parts.append(f"only the dataset has {_few(only_d)}")
    if not parts:
        k = next((k for k, (a, b) in enumerate(zip(m, d, strict=False)) if a != b), None)
        if k is None:  # one list starts the other (a name repeated)
            parts.append("the same names, some repeated")
        else:
            parts.append(f"class {k} is {_few([m[k]])} in the model, {_few([d[k]])} in the dataset")
    advice = "evaluate on the dataset the model was trained for"
    if len(m) == len(d):
        advice = f"{advice}, or pass --classes-by-index if class k is the same class in both"
        if names_option is not None:
            advice = f"leave out --names {names_option} to take the dataset's names, or {advice}"
    raise DetforgeError(
        f"the model's classes differ from the dataset's ({model}: {len(m)}, the dataset: "
        f"{len(d)}; {'; '.join(parts)}); {advice}",
        path=data,
    )


def _few(names: Sequence[str], show: int = 5) -> str:
    """``'a', 'b', 'c' and 7 more``: at most ``show`` names, each clipped, on one line."""

    text = ", ".join(repr(clip(n, 40)) for n in names[:show])
    return text + (f" and {len(names) - show} more" if len(names) > show else "")


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
        ``{"images", "gt_images", "pred_images", "every", "gt_boxes", "pred_boxes",
        "unmatched", "notes", "gt_outside_image",
        "coco": {"stats": {12 names}, "per_class": [...], "precision", "recall_array",
        "scores"}, "darknet": {"mAP", ..., "per_class": [...], "curves"}}``. ``images``: the
        ground-truth images scored, 1 in ``every`` of the ``gt_images`` (all of ``gt``, or of
        the predictions' split); ``pred_images``: how many of them hold a scored prediction;
        ``gt_boxes``, ``pred_boxes``: the boxes on the scored images. The numpy entries
        (:data:`ARRAY_KEYS`) are dropped by :func:`jsonable`. ``gt_outside_image`` counts the
        scored truths lying wholly outside their image (:func:`outside_image`; still scored,
        as darknet and pycocotools score them), and ``notes`` then says so
        (:func:`outside_note`); ``notes`` also counts the boxes the reader left out of the
        scored images (:func:`~detforge.data.validity.left_out_note`).
    """
    if protocol not in PROTOCOLS:
        raise DetforgeError(f"unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")
    check_points(points)
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
    of_split = _rows_to_score(gt, split)
    keep_rows = of_split[::every]
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
        "gt_images": len(of_split),
        "pred_images": len(np.unique(p_img)),
        "every": every,
        "gt_boxes": gt.num_boxes,
        "pred_boxes": len(keep),
        "classes": list(gt.class_names),
        "unmatched": unmatched,
        "notes": list(pred.meta.get("notes") or []),
    }
    if protocol != "coco" and gt.num_boxes and not gt.boxes.format.normalized:
        from detforge.formats.common import ensure_sizes

        gt = ensure_sizes(gt)  # Darknet's boxes are fractions of the image: read unknown sizes
    # Crowd regions are ignored by both protocols; difficult truths only by Darknet's.
    counted = ~gt.boxes.crowd & (~gt.boxes.difficult if protocol == "darknet" else True)
    outside = outside_image(gt) & counted
    result["gt_outside_image"] = int(outside.sum())
    for note in (outside_note(gt, outside), left_out_note(gt)):  # never silently
        if note:
            result["notes"].append(note)
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


def _rows_to_score(gt: Dataset, split: str | None) -> NDArray[np.int64]:
    """GT rows to score (before ``every``): those of ``split`` when ``gt`` holds it among
    others, else all."""
    restrict = bool(split) and split in gt.splits() and len(gt.splits()) > 1
    base = np.flatnonzero(gt.images.split == split) if restrict else np.arange(gt.num_images)
    return base.astype(np.int64)


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
