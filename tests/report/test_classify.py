"""Per-image error kinds, counts, worst-first order and label suspects, on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from detforge.predict.draw import match_boxes
from detforge.report.classify import (
    BACKGROUND,
    DUPLICATE,
    IGNORED,
    LOCALISATION,
    TP,
    WRONG_CLASS,
    Suspect,
    classify_image,
    error_counts,
    image_suspects,
    rank_suspects,
    worst_order,
)

# Four truths in a row: A, C, D of class 0 and B of class 1 (10 x 10 px each).
GT = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10], [60, 0, 70, 10]], float)
GT_CLS = np.array([0, 1, 0, 0])
PRED = np.array([
    [0, 0, 10, 10],      # p0 0.90 class 0 on A: IoU 1 -> TP (A)
    [1, 0, 11, 10],      # p1 0.80 class 0 on A again: IoU 90/110 = 0.818, A taken -> duplicate
    [20, 0, 30, 10],     # p2 0.70 class 0 on B (class 1): IoU 1 -> wrong class
    [40, 0, 44, 10],     # p3 0.60 class 0 on C: IoU 40/100 = 0.4 -> localisation
    [100, 100, 110, 110],  # p4 0.95 class 1, touches nothing -> background
    [60, 0, 70, 10],     # p5 0.20 class 0 on D -> TP (D), found at 0.2
], float)  # fmt: skip
PRED_CLS = np.array([0, 0, 0, 0, 1, 0])
PRED_SC = np.array([0.9, 0.8, 0.7, 0.6, 0.95, 0.2])


def test_every_kind_on_one_image() -> None:
    e = classify_image(GT, GT_CLS, PRED, PRED_CLS, PRED_SC)
    assert e.pred_kind.tolist() == [TP, DUPLICATE, WRONG_CLASS, LOCALISATION, BACKGROUND, TP]
    assert e.pred_gt.tolist() == [0, 0, 1, 2, -1, 3]
    assert e.found_at.tolist() == [0.9, 0.0, 0.0, 0.2]
    assert e.near_at.tolist() == [0.9, 0.7, 0.6, 0.2]  # best score overlapping by IoU >= 0.1
    # The true positives are those of the matcher `detforge show` draws with.
    tp, found = match_boxes(GT, GT_CLS, PRED, PRED_CLS, PRED_SC, iou=0.5)
    assert (e.pred_kind == TP).tolist() == tp.tolist()
    assert (e.found_at > 0).tolist() == found.tolist()


@pytest.mark.parametrize(
    ("conf", "fp", "fn"),
    [(0.25, 4, 3), (0.1, 4, 2), (0.85, 1, 3), (0.99, 0, 4)],
)
def test_error_counts_at_thresholds(conf: float, fp: int, fn: int) -> None:
    e = classify_image(GT, GT_CLS, PRED, PRED_CLS, PRED_SC)
    assert error_counts(e.pred_kind, PRED_SC, e.found_at, np.zeros(4, bool), conf) == (fp, fn)


def test_higher_score_wins_and_ties_keep_input_order() -> None:
    g = np.array([[0, 0, 10, 10]], float)
    p = np.array([[0, 0, 10, 10], [0, 0, 10, 12]], float)  # IoU 1 and 100/120
    e = classify_image(g, [0], p, [0, 0], [0.6, 0.9])
    assert e.pred_kind.tolist() == [DUPLICATE, TP] and e.found_at.tolist() == [0.9]
    e = classify_image(g, [0], p, [0, 0], [0.5, 0.5])
    assert e.pred_kind.tolist() == [TP, DUPLICATE]


def test_iou_threshold_is_inclusive_and_localisation_floor() -> None:
    g = np.array([[0, 0, 10, 10]], float)
    half = np.array([[0, 0, 20, 10]], float)  # IoU exactly 0.5
    assert classify_image(g, [0], half, [0], [0.9]).pred_kind.tolist() == [TP]
    far = np.array([[0, 0, 10, 0.5]], float)  # IoU 0.05 < 0.1
    assert classify_image(g, [0], far, [0], [0.9]).pred_kind.tolist() == [BACKGROUND]


def test_ignored_truths_are_neither_found_nor_missed() -> None:
    g = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], float)
    ign = np.array([True, False])
    p = np.array([[0, 0, 10, 10]], float)
    e = classify_image(g, [0, 0], p, [0], [0.9], gt_ignore=ign)
    assert e.pred_kind.tolist() == [IGNORED]
    assert error_counts(e.pred_kind, [0.9], e.found_at, ign, 0.25) == (0, 1)


def test_no_boxes() -> None:
    e = classify_image(np.zeros((0, 4)), [], PRED[:2], [0, 0], [0.9, 0.3])
    assert e.pred_kind.tolist() == [BACKGROUND, BACKGROUND] and len(e.found_at) == 0
    e = classify_image(GT, GT_CLS, np.zeros((0, 4)), [], [])
    assert e.found_at.tolist() == [0, 0, 0, 0]
    assert error_counts(e.pred_kind, [], e.found_at, np.zeros(4, bool), 0.25) == (0, 4)


def test_kinds_do_not_depend_on_the_threshold() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        xy = rng.uniform(0, 60, (6, 2))
        g = np.c_[xy, xy + 15]  # six 15 x 15 truths, some overlapping
        p = g[rng.integers(0, 6, 9)] + rng.normal(0, 3, (9, 4))
        gc, pc, ps = rng.integers(0, 2, 6), rng.integers(0, 2, 9), rng.uniform(0, 1, 9)
        full = classify_image(g, gc, p, pc, ps)
        for t in (0.2, 0.5, 0.8):
            keep = ps >= t
            part = classify_image(g, gc, p[keep], pc[keep], ps[keep])
            assert part.pred_kind.tolist() == full.pred_kind[keep].tolist()
            assert ((part.found_at > 0) == (full.found_at >= t)).all()


def test_worst_order() -> None:
    # sums 0, 2, 2, 1: the tie goes to the image with more misses, then to the earlier one
    assert worst_order([0, 2, 1, 1], [0, 0, 1, 0]).tolist() == [2, 1, 3, 0]
    assert worst_order([1, 1], [0, 0]).tolist() == [0, 1]


def test_label_suspects() -> None:
    # image 0: truth C (class 1) under a confident class-0 prediction -> other_class 0.85
    g = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]], float)
    p = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]], float)
    e = classify_image(g, [0, 0, 1], p, [0, 0, 0], [0.9, 0.8, 0.85])
    s0 = image_suspects(0, e, [0, 0, 0], [0.9, 0.8, 0.85], np.zeros(3, bool))
    assert s0 == [Suspect(0, 2, 2, "other_class", 0.85, 0)]
    # image 1: C has no detection while A (0.9) and B (0.7) are found -> not_detected 0.7;
    # and a confident prediction where nothing is labelled -> unlabelled 0.95
    p1 = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [100, 0, 110, 10]], float)
    e1 = classify_image(g, [0, 0, 0], p1, [0, 0, 1], [0.9, 0.7, 0.95])
    s1 = image_suspects(1, e1, [0, 0, 1], [0.9, 0.7, 0.95], np.zeros(3, bool))
    assert s1 == [
        Suspect(1, 2, -1, "not_detected", 0.7, -1),
        Suspect(1, -1, 2, "unlabelled", 0.95, 1),
    ]
    ranked = rank_suspects(s0 + s1)
    assert [s.kind for s in ranked] == ["unlabelled", "other_class", "not_detected"]
    # a weak contradiction is no suspect; a lone truth has no neighbours to vouch for the detector
    assert image_suspects(0, e, [0, 0, 0], [0.9, 0.8, 0.85], np.zeros(3, bool), high=0.9) == []
    lone = classify_image(g[:1], [0], np.zeros((0, 4)), [], [])
    assert image_suspects(2, lone, [], [], np.zeros(1, bool)) == []
