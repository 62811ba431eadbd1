"""Evaluation plots: files written, F1 curve and confusion matrix on hand-made cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from detforge.data.boxes import BoxFormat
from detforge.data.dataset import make_dataset
from detforge.eval.plots import confusion_matrix, top_confusion, write_plots


def _gt_pred():
    kw = dict(paths=["a.jpg", "b.jpg"], widths=[100, 100], heights=[100, 100],
              box_format=BoxFormat.XYXY_PIXEL)  # fmt: skip
    gt = make_dataset(["cat", "dog"], box_image=[0, 1], box_cls=[0, 1],
                      box_coords=[[10, 10, 50, 50], [20, 20, 60, 60]], **kw)  # fmt: skip
    # image 0: the cat found at 0.65; image 1: the dog called a cat at 0.9 (and missed).
    pred = make_dataset(["cat", "dog"], box_image=[0, 1], box_cls=[0, 0],
                        box_coords=[[10, 10, 50, 50], [20, 20, 60, 60]], score=[0.65, 0.9],
                        **kw)  # fmt: skip
    return gt, pred


def test_confusion_matrix_hand_counted() -> None:
    gt, pred = _gt_pred()
    cm = confusion_matrix(gt, pred, iou=0.5, conf=0.25)
    # rows true (cat, dog, background), columns predicted (cat, dog, background)
    np.testing.assert_array_equal(cm, [[1, 0, 0], [1, 0, 0], [0, 0, 0]])
    assert confusion_matrix(gt, pred, conf=0.7).tolist() == [[0, 0, 1], [1, 0, 0], [0, 0, 0]]


def test_top_confusion_sums_the_other_classes() -> None:
    # classes 0..3, background last; weights (row + column sums): 0: 2, 1: 7, 2: 0, 3: 9
    cm = np.array([
        [1, 0, 0, 0, 0],
        [0, 2, 0, 1, 1],
        [0, 0, 0, 0, 0],
        [0, 1, 0, 3, 2],
        [0, 0, 0, 1, 0],
    ])  # fmt: skip
    assert top_confusion(cm, 4) == ([0, 1, 2, 3], cm)
    shown, small = top_confusion(cm, 2)
    assert shown == [1, 3]  # id order; 0 and 2 summed as 'other'
    assert small.tolist() == [
        [2, 1, 0, 1],  # 1
        [1, 3, 0, 2],  # 3
        [0, 0, 1, 0],  # other (0 and 2)
        [0, 1, 0, 0],  # background
    ]  # fmt: skip
    assert small.sum() == cm.sum()


def test_best_f1_threshold_is_the_top_of_the_plateau(tmp_path: Path) -> None:
    gt, pred = _gt_pred()
    info = write_plots({}, gt, pred, tmp_path, iou=0.5, conf=0.25)
    # Only the cat counts: F1(cat) = 2PR/(P+R) with P=1/2, R=1 below 0.65 and dog F1 = 0.
    # Above 0.65 the cat is lost, so the best mean F1 holds for every threshold below it;
    # the suggestion is the highest of them on the 0.01 grid.
    assert abs(info["best_conf"] - 0.64) < 1e-9
    assert abs(info["best_f1"] - (2 * 0.5 * 1.0 / 1.5) / 2) < 1e-9
    for name in ("pr_curves.png", "pr_curves_per_class.png", "f1_curve.png",
                 "confusion_matrix.png"):  # fmt: skip
        assert (tmp_path / name).stat().st_size > 1000


def test_plots_of_a_thousand_classes_stay_readable_sizes(tmp_path: Path) -> None:
    """1,000 classes drew a 352-inch confusion matrix (38,000 px a side at 110 dpi, gigabytes
    of memory; beyond 2^16 px matplotlib refuses) and 200 rows of PR panels; the matrix
    shows CONFUSION_CLASSES classes and one row of the others summed, the panels the
    PR_PANELS classes with the most boxes."""
    from PIL import Image

    from detforge.eval.plots import CONFUSION_CLASSES, PR_PANELS

    k, n = 1000, 120
    names = [f"c{i}" for i in range(k)]
    kw = dict(paths=[f"{i}.jpg" for i in range(n)], widths=[100] * n, heights=[100] * n,
              box_format=BoxFormat.XYXY_PIXEL)  # fmt: skip
    cls = [i * 7 % k for i in range(n)]
    boxes = [[10, 10, 50, 50]] * n
    gt = make_dataset(names, box_image=list(range(n)), box_cls=cls, box_coords=boxes, **kw)
    pred = make_dataset(names, box_image=list(range(n)), box_cls=cls, box_coords=boxes,
                        score=[0.9] * n, **kw)  # fmt: skip
    info = write_plots({}, gt, pred, tmp_path, iou=0.5, conf=0.25)
    assert np.asarray(info["confusion_matrix"]).shape == (k + 1, k + 1)  # every count kept
    side = (0.35 * (CONFUSION_CLASSES + 2) + 2) * 110
    w, h = Image.open(tmp_path / "confusion_matrix.png").size
    assert w <= side + 1 and h <= side + 1, (w, h)
    w, h = Image.open(tmp_path / "pr_curves_per_class.png").size
    assert h <= 2.3 * 110 * (PR_PANELS // 5) + 1, (w, h)
