"""Hand-computed cases pinning each rule of Darknet's ``detector map`` (AlexeyAB detector.c)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from detforge.data.boxes import BoxFormat
from detforge.data.dataset import Dataset, make_dataset
from detforge.eval import evaluate

Box = tuple[float, float, float, float]


def ds(
    names: Sequence[str],
    n_img: int,
    boxes: Sequence[tuple[int, int, Box]],
    *,
    score: Sequence[float] | None = None,
    difficult: Sequence[bool] | None = None,
) -> Dataset:
    """``boxes``: ``(image, class, (cx, cy, w, h) normalized)`` on 100x100 images."""
    return make_dataset(
        names,
        paths=[f"img{i}.jpg" for i in range(n_img)],
        widths=[100] * n_img,
        heights=[100] * n_img,
        box_image=[b[0] for b in boxes],
        box_cls=[b[1] for b in boxes],
        box_coords=np.array([b[2] for b in boxes], dtype=np.float64).reshape(-1, 4),
        box_format=BoxFormat.CXCYWH_NORM,
        score=score,
        difficult=difficult,
    )


def dk(gt: Dataset, pred: Dataset, **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = evaluate(gt, pred, protocol="darknet", **kw)["darknet"]
    return out


def f32_iou(a: Box, b: Box) -> np.float32:
    """Darknet's box_iou written out with float32 scalars."""
    f = np.float32
    ax, ay, aw, ah = (f(v) for v in a)
    bx, by, bw, bh = (f(v) for v in b)
    two = f(2)
    w = min(ax + aw / two, bx + bw / two) - max(ax - aw / two, bx - bw / two)
    h = min(ay + ah / two, by + bh / two) - max(ay - ah / two, by - bh / two)
    inter = f(0) if (w < 0 or h < 0) else f(w * h)
    union = f(aw * ah + bw * bh - inter)
    return f(inter / union)


T1: Box = (0.25, 0.25, 0.2, 0.2)
T2: Box = (0.75, 0.75, 0.2, 0.2)
FAR: Box = (0.75, 0.2, 0.1, 0.1)


def test_area_under_curve_includes_final_segment_and_point_rules() -> None:
    # TP, FP, TP: precision 1, 1/2, 2/3; recall 1/2, 1/2, 1.
    gt = ds(["a"], 1, [(0, 0, T1), (0, 0, T2)])
    pred = ds(["a"], 1, [(0, 0, T1), (0, 0, FAR), (0, 0, T2)], score=[0.9, 0.8, 0.7])
    # points=0: (1 - 1/2) * 2/3 + 0 + the remaining area 1/2 * 1 (recent darknet adds it).
    assert dk(gt, pred)["mAP"] == 0.5 * (2 / 3) + 0.5
    # 11 points: recall >= 0..0.5 -> 1 (6 points); 0.6..1.0 -> 2/3 (5 points).
    assert dk(gt, pred, points=11)["mAP"] == pytest.approx((6 + 5 * (2 / 3)) / 11, abs=1e-15)
    assert dk(gt, pred, points=101)["mAP"] == pytest.approx((51 + 50 * (2 / 3)) / 101, abs=1e-15)


def test_iou_must_be_strictly_greater_than_threshold() -> None:
    gt = ds(["a"], 1, [(0, 0, (0.5, 0.5, 0.5, 0.5))])
    pred = ds(["a"], 1, [(0, 0, (0.5, 0.5, 0.5, 0.25))], score=[0.9])  # IoU exactly 0.5
    assert dk(gt, pred, iou=0.5)["mAP"] == 0.0
    assert dk(gt, pred, iou=0.49)["mAP"] == 1.0


def test_each_detection_takes_its_best_truth_without_reassignment() -> None:
    # d2 overlaps A (IoU .905) better than B (IoU .667): Darknet calls it a duplicate of A
    # (false positive) where COCO would have matched it to B.
    a, b = (0.3, 0.5, 0.4, 0.4), (0.4, 0.5, 0.4, 0.4)
    gt = ds(["a"], 1, [(0, 0, a), (0, 0, b)])
    pred = ds(["a"], 1, [(0, 0, a), (0, 0, (0.32, 0.5, 0.4, 0.4))], score=[0.9, 0.8])
    r = dk(gt, pred)
    assert r["mAP"] == 0.5  # precision 1, 1/2 at recall 1/2, 1/2
    assert (r["tp"], r["fp"], r["fn"]) == (1, 1, 1)
    coco = evaluate(gt, pred, protocol="coco")["coco"]["stats"]
    assert coco["AP50"] == pytest.approx(1.0, abs=1e-12)  # the COCO protocol differs here


def test_conf_threshold_is_strict_and_counts_precision_recall_f1_avg_iou() -> None:
    gt = ds(["a"], 1, [(0, 0, T1), (0, 0, T2)])
    pred = ds(
        ["a"], 1, [(0, 0, T1), (0, 0, T2), (0, 0, FAR), (0, 0, FAR)],
        score=[0.9, 0.25, 0.6, 0.1],
    )  # fmt: skip
    r = dk(gt, pred, conf=0.25)
    assert (r["tp"], r["fp"], r["fn"]) == (1, 1, 1)  # the 0.25 detection is not > 0.25
    assert r["precision"] == 0.5 and r["recall"] == 0.5 and r["f1"] == 0.5
    assert r["avg_iou"] == pytest.approx(0.5)  # IoU 1 of the TP / (TP + FP)
    r = dk(gt, pred, conf=0.2)
    assert (r["tp"], r["fp"], r["fn"]) == (2, 1, 0)
    # Darknet sums float32 IoUs (a box with itself is not exactly 1 in float32) / (TP + FP).
    total = np.float32(f32_iou(T1, T1)) + np.float32(f32_iou(T2, T2))
    assert r["avg_iou"] == float(total / np.float32(3))
    assert r["per_class"][0]["tp"] == 2 and r["per_class"][0]["fp"] == 1


def test_earlier_low_confidence_hit_makes_later_detection_a_false_positive_at_conf() -> None:
    # Processing order is the file order: the 0.1 detection hits T1 first, so at conf 0.25
    # the 0.9 detection of the same truth is counted FP; the AP list sorts by probability.
    shifted = (0.26, 0.25, 0.2, 0.2)
    gt = ds(["a"], 1, [(0, 0, T1)])
    pred = ds(["a"], 1, [(0, 0, T1), (0, 0, shifted)], score=[0.1, 0.9])
    r = dk(gt, pred)
    assert (r["tp"], r["fp"], r["fn"]) == (0, 1, 1)
    assert r["mAP"] == 1.0  # in probability order the 0.9 detection is the TP


def test_difficult_truths_drop_detections_from_ap_but_not_from_fp_at_conf() -> None:
    gt = ds(["a"], 1, [(0, 0, T1), (0, 0, T2)], difficult=[False, True])
    pred = ds(["a"], 1, [(0, 0, T2), (0, 0, T1)], score=[0.9, 0.8])
    r = dk(gt, pred)
    assert r["mAP"] == 1.0  # the detection on the difficult truth left the AP list
    assert (r["tp"], r["fp"], r["fn"]) == (1, 1, 0)
    assert r["truths"] == 1


def test_map_averages_over_every_class_of_the_names_file() -> None:
    gt = ds(["a", "b", "c"], 2, [(0, 0, T1), (1, 1, T2)])
    pred = ds(["a", "b", "c"], 2, [(0, 0, T1), (1, 1, FAR)], score=[0.9, 0.9])
    r = dk(gt, pred)
    assert [c["AP"] for c in r["per_class"]] == [1.0, 0.0, 0.0]
    assert r["mAP"] == 1 / 3


def test_equal_probabilities_keep_input_order() -> None:
    gt = ds(["a"], 1, [(0, 0, T1)])
    pred = ds(["a"], 1, [(0, 0, FAR), (0, 0, T1)], score=[0.5, 0.5])
    # FP then TP: precision 0, 1/2 at recall 0, 1 -> AP = 1 * 1/2.
    assert dk(gt, pred)["mAP"] == 0.5


def test_class_must_match_and_images_are_separate() -> None:
    gt = ds(["a", "b"], 2, [(0, 0, T1), (1, 1, T1)])
    pred = ds(["a", "b"], 2, [(0, 1, T1), (1, 1, T1)], score=[0.9, 0.95])
    r = dk(gt, pred)
    assert [c["AP"] for c in r["per_class"]] == [0.0, 1.0]
    assert [c["gt"] for c in r["per_class"]] == [1, 1]
