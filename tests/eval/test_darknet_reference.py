"""The vectorised Darknet protocol against a literal, loop-by-loop transcription of
``validate_detector_map`` (AlexeyAB darknet, src/detector.c) on randomized cases.

The reference below follows the C control flow statement by statement (float32 where the C
code uses ``float``, Python floats where it uses ``double``), so any disagreement is a
deviation of the fast implementation from Darknet's rules.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from detforge.data.boxes import BoxFormat
from detforge.data.dataset import make_dataset
from detforge.eval import evaluate

f32 = np.float32


def box_iou(a: tuple[Any, ...], b: tuple[Any, ...]) -> np.float32:
    """box.c: overlap / box_intersection / box_union / box_iou, in float32."""

    def overlap(x1: Any, w1: Any, x2: Any, w2: Any) -> Any:
        left = max(x1 - w1 / f32(2), x2 - w2 / f32(2))
        right = min(x1 + w1 / f32(2), x2 + w2 / f32(2))
        return right - left

    w = overlap(a[0], a[2], b[0], b[2])
    h = overlap(a[1], a[3], b[1], b[3])
    inter = f32(0) if (w < 0 or h < 0) else w * h
    union = a[2] * a[3] + b[2] * b[3] - inter
    if inter == 0 or union == 0:
        return f32(0)
    return f32(inter / union)


def reference(
    truths: list[list[tuple[int, tuple[Any, ...]]]],
    difficult: list[list[tuple[int, tuple[Any, ...]]]],
    dets: list[list[tuple[int, Any, tuple[Any, ...]]]],
    classes: int,
    iou_thresh: Any,
    thresh: Any,
    map_points: int,
) -> dict[str, Any]:
    detections: list[dict[str, Any]] = []
    truth_classes_count = [0] * classes
    avg_iou = f32(0)
    tp_for_thresh = fp_for_thresh = 0
    tp_pc, fp_pc = [0] * classes, [0] * classes
    unique_truth_count = 0
    for image_index, truth in enumerate(truths):
        for cls, _ in truth:
            truth_classes_count[cls] += 1
        checkpoint = len(detections)
        for class_id, prob, box in dets[image_index]:
            if not prob > 0:
                continue
            detections.append({"p": prob, "class_id": class_id, "truth_flag": 0, "uti": -1})
            truth_index, max_iou = -1, f32(0)
            for j, (tcls, tbox) in enumerate(truth):
                cur = box_iou(box, tbox)
                if cur > iou_thresh and class_id == tcls and cur > max_iou:
                    max_iou = cur
                    truth_index = unique_truth_count + j
            if truth_index > -1:
                detections[-1]["truth_flag"] = 1
                detections[-1]["uti"] = truth_index
            else:
                for tcls, tbox in difficult[image_index]:
                    if box_iou(box, tbox) > iou_thresh and class_id == tcls:
                        detections.pop()
                        break
            if prob > thresh:
                found = any(
                    detections[z]["uti"] == truth_index
                    for z in range(checkpoint, len(detections) - 1)
                )
                if truth_index > -1 and not found:
                    avg_iou = f32(avg_iou + max_iou)
                    tp_for_thresh += 1
                    tp_pc[class_id] += 1
                else:
                    fp_for_thresh += 1
                    fp_pc[class_id] += 1
        unique_truth_count += len(truth)
    if tp_for_thresh + fp_for_thresh > 0:
        avg_iou = f32(avg_iou / f32(tp_for_thresh + fp_for_thresh))
    detections.sort(key=lambda d: -d["p"])  # glibc qsort (merge sort): stable
    n = len(detections)
    pr = [[{"tp": 0, "fp": 0, "precision": 0.0, "recall": 0.0} for _ in range(n)]
          for _ in range(classes)]  # fmt: skip
    truth_flags = [0] * unique_truth_count
    for rank in range(n):
        if rank > 0:
            for c in range(classes):
                pr[c][rank]["tp"] = pr[c][rank - 1]["tp"]
                pr[c][rank]["fp"] = pr[c][rank - 1]["fp"]
        d = detections[rank]
        if d["truth_flag"] == 1 and truth_flags[d["uti"]] == 0:
            truth_flags[d["uti"]] = 1
            pr[d["class_id"]][rank]["tp"] += 1
        else:
            pr[d["class_id"]][rank]["fp"] += 1
        for c in range(classes):
            tp, fp = pr[c][rank]["tp"], pr[c][rank]["fp"]
            fn = truth_classes_count[c] - tp
            pr[c][rank]["precision"] = tp / (tp + fp) if tp + fp > 0 else 0.0
            pr[c][rank]["recall"] = tp / (tp + fn) if tp + fn > 0 else 0.0
    aps = []
    for c in range(classes):
        ap = 0.0
        if n and map_points == 0:
            last_recall = pr[c][n - 1]["recall"]
            last_precision = pr[c][n - 1]["precision"]
            for rank in range(n - 2, -1, -1):
                delta = last_recall - pr[c][rank]["recall"]
                last_recall = pr[c][rank]["recall"]
                if pr[c][rank]["precision"] > last_precision:
                    last_precision = pr[c][rank]["precision"]
                ap += delta * last_precision
            ap += (last_recall - 0) * last_precision
        elif n:
            for point in range(map_points):
                cur_recall = point * 1.0 / (map_points - 1)
                cur_precision = 0.0
                for rank in range(n):
                    if pr[c][rank]["recall"] >= cur_recall:
                        cur_precision = max(cur_precision, pr[c][rank]["precision"])
                ap += cur_precision
            ap = ap / map_points
        aps.append(ap)
    total = 0.0
    for ap in aps:
        total += ap
    with np.errstate(divide="ignore", invalid="ignore"):
        p = f32(tp_for_thresh) / (f32(tp_for_thresh) + f32(fp_for_thresh))
        r = f32(tp_for_thresh) / (f32(tp_for_thresh) + f32(unique_truth_count - tp_for_thresh))
        f1 = f32(2) * p * r / (p + r)
    return {
        "mAP": total / classes,
        "aps": aps,
        "tp": tp_for_thresh,
        "fp": fp_for_thresh,
        "fn": unique_truth_count - tp_for_thresh,
        "avg_iou": float(avg_iou),
        "precision": float(p),
        "recall": float(r),
        "f1": float(f1),
        "tp_pc": tp_pc,
        "fp_pc": fp_pc,
    }


def same(a: float, b: float) -> bool:
    return (np.isnan(a) and np.isnan(b)) or a == b


def ds(names: list[str], paths: list[str], rows: list[Any], score: bool) -> Any:
    """GT (``(image, class, box, difficult)`` rows) or predictions (``(..., prob)`` rows)."""
    n = len(paths)
    return make_dataset(
        names, paths=paths, widths=[64] * n, heights=[48] * n,
        box_image=[r[0] for r in rows], box_cls=[r[1] for r in rows],
        box_coords=np.array([r[2] for r in rows]).reshape(-1, 4),
        box_format=BoxFormat.CXCYWH_NORM,
        difficult=None if score else [r[3] for r in rows],
        score=[r[3] for r in rows] if score else None,
    )  # fmt: skip


@pytest.mark.parametrize("seed", range(4))
def test_matches_literal_transcription(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for case in range(40):
        k = int(rng.integers(1, 4))
        n_img = int(rng.integers(1, 5))
        gt_rows, pred_rows = [], []
        truths: list[list[Any]] = [[] for _ in range(n_img)]
        diffs: list[list[Any]] = [[] for _ in range(n_img)]
        dets: list[list[Any]] = [[] for _ in range(n_img)]
        for i in range(n_img):
            for _ in range(int(rng.integers(0, 5))):
                box = tuple(
                    float(v) for v in np.r_[rng.uniform(0.2, 0.8, 2), rng.uniform(0.05, 0.4, 2)]
                )
                cls, hard = int(rng.integers(k)), bool(rng.random() < 0.15)
                gt_rows.append((i, cls, box, hard))
                (diffs if hard else truths)[i].append((cls, tuple(f32(v) for v in box)))
            own = [r for r in gt_rows if r[0] == i]
            for _ in range(int(rng.integers(0, 9))):
                if own and rng.random() < 0.7:
                    base = np.asarray(own[int(rng.integers(len(own)))][2])
                    box = tuple(float(v) for v in base + rng.normal(0, 0.03, 4))
                    box = (*box[:2], abs(box[2]) + 0.01, abs(box[3]) + 0.01)
                else:
                    box = tuple(
                        float(v) for v in np.r_[rng.uniform(0.2, 0.8, 2), rng.uniform(0.05, 0.4, 2)]
                    )
                cls = int(rng.integers(k))
                prob = float(rng.integers(0, 8)) / 8 if case % 2 else float(rng.random())
                pred_rows.append((i, cls, box, prob))
                dets[i].append((cls, f32(prob), tuple(f32(v) for v in box)))
        iou = [0.5, 0.3, 0.75][case % 3]
        conf = [0.25, 0.5][case % 2]
        points = [0, 11, 101][case % 3]
        names = [f"c{j}" for j in range(k)]
        paths = [f"im{j}.jpg" for j in range(n_img)]

        got = evaluate(ds(names, paths, gt_rows, False), ds(names, paths, pred_rows, True),
                       protocol="darknet",
                       iou=iou, conf=conf, points=points)["darknet"]  # fmt: skip
        ref = reference(truths, diffs, dets, k, f32(iou), f32(conf), points)
        where = f"seed {seed} case {case}"
        assert got["mAP"] == ref["mAP"], where
        assert [c["AP"] for c in got["per_class"]] == ref["aps"], where
        assert (got["tp"], got["fp"], got["fn"]) == (ref["tp"], ref["fp"], ref["fn"]), where
        assert [c["tp"] for c in got["per_class"]] == ref["tp_pc"], where
        assert [c["fp"] for c in got["per_class"]] == ref["fp_pc"], where
        assert got["avg_iou"] == ref["avg_iou"], where
        for key in ("precision", "recall", "f1"):
            assert same(got[key], ref[key]), (where, key)
