"""Darknet's calc_anchors k-means (``detforge.data.anchors``)."""

from __future__ import annotations

import numpy as np
import pytest

from detforge.data.anchors import kmeans_anchors, mean_best_iou, wh_iou
from detforge.errors import DetforgeError

POINTS = [(1, 1), (2, 2), (6, 6), (5, 5), (10, 10)]


def test_hand_computed_two_clusters() -> None:
    # Round 1 from centres (1,1), (10,10): (2,2) -> IoU 1/4 vs 4/100 -> first; (6,6) -> 1/36 vs
    # 36/100 -> second; (5,5) -> 1/25 vs 25/100 -> second. New centres (1.5,1.5), (7,7).
    # Round 2 assigns the same way, so k-means stops after one update.
    res = kmeans_anchors(POINTS, 2, init=[(10, 10), (1, 1)])
    np.testing.assert_allclose(res.anchors, [[1.5, 1.5], [7.0, 7.0]])  # sorted by area
    assert res.rounds == 1 and res.boxes == 5
    expected = (1 / 2.25 + 2.25 / 4 + 36 / 49 + 25 / 49 + 49 / 100) / 5
    assert res.mean_iou == pytest.approx(expected, abs=1e-12)
    assert res.darknet_text() == "2,2, 7,7"


def test_mean_iou_matches_torchvision_box_iou() -> None:
    torch = pytest.importorskip("torch")
    from torchvision.ops import box_iou

    rng = np.random.default_rng(5)
    wh = rng.uniform(4, 300, size=(400, 2))
    res = kmeans_anchors(wh, 6, seed=1)
    boxes = torch.tensor(np.c_[np.zeros((400, 2)), wh])
    anchors = torch.tensor(np.c_[np.zeros((6, 2)), res.anchors])
    ref = box_iou(boxes, anchors).max(dim=1).values.mean().item()
    assert res.mean_iou == pytest.approx(ref, abs=1e-9)
    # a fixed point: every anchor is the mean of the boxes closest to it
    closest = box_iou(boxes, anchors).argmax(dim=1).numpy()
    for j in range(6):
        np.testing.assert_allclose(res.anchors[j], wh[closest == j].mean(axis=0))


def test_seeded_and_sorted() -> None:
    rng = np.random.default_rng(0)
    wh = rng.uniform(1, 100, size=(200, 2))
    a = kmeans_anchors(wh, 5, seed=7)
    b = kmeans_anchors(wh, 5, seed=7)
    np.testing.assert_array_equal(a.anchors, b.anchors)
    area = a.anchors.prod(axis=1)
    assert np.all(np.diff(area) >= 0)
    assert a.mean_iou == pytest.approx(mean_best_iou(wh, a.anchors))


def test_empty_cluster_keeps_its_centre_and_k1_is_the_mean() -> None:
    # (100,100) never wins a box: it stays where it was
    res = kmeans_anchors([(1, 1), (2, 2)], 2, init=[(100, 100), (1, 1)])
    np.testing.assert_allclose(res.anchors, [[1.5, 1.5], [100, 100]])
    # as in Darknet, assignments start at centre 0: when the first pass leaves every box there,
    # k-means has "converged" without moving any centre
    still = kmeans_anchors([(1, 1), (2, 2)], 2, init=[(1, 1), (100, 100)])
    np.testing.assert_allclose(still.anchors, [[1, 1], [100, 100]])
    assert still.rounds == 0
    one = kmeans_anchors(POINTS, 1)
    np.testing.assert_allclose(one.anchors, [[4.8, 4.8]])
    assert wh_iou([(2, 4)], [(4, 2)])[0, 0] == pytest.approx(4 / 12)


def test_too_few_boxes_is_an_error() -> None:
    with pytest.raises(DetforgeError, match="cannot make 3 anchors"):
        kmeans_anchors([(1, 1), (0, 5)], 3)


def test_letterboxed_box_sizes_hand_computed() -> None:
    from detforge.data.anchors import dataset_box_sizes
    from detforge.data.boxes import BoxFormat
    from detforge.data.dataset import make_dataset

    # a 640x480 and a 300x600 image; at 416x416 letterboxed they scale by 0.65 and 416/600
    ds = make_dataset(
        ["a"], paths=["p.jpg", "q.jpg"], widths=[640, 300], heights=[480, 600],
        box_image=[0, 1], box_cls=[0, 0], box_coords=[[10, 20, 64, 48], [0, 0, 30, 60]],
        box_format=BoxFormat.XYWH_PIXEL,
    )  # fmt: skip
    got = dataset_box_sizes(ds, 416, 416, letter_box=True)
    np.testing.assert_allclose(got, [[41.6, 31.2], [30 * 416 / 600, 60 * 416 / 600]])
    # stretched, as Darknet's calc_anchors: normalized size times the input size
    stretched = dataset_box_sizes(ds, 416, 416)
    np.testing.assert_allclose(stretched, [[41.6, 41.6], [41.6, 41.6]])


@pytest.mark.parametrize("bad", ["nan,2", "inf,2", "1e400,2", "-1,2", "0,2", "1,2,3"])
def test_anchor_list_must_be_finite_positive_pairs(bad: str) -> None:
    """nan/inf/1e400 anchors passed 'min(values) <= 0' and were written into the cfg."""
    from detforge.data.anchors import parse_anchor_list

    with pytest.raises(DetforgeError, match="positive w,h pairs"):
        parse_anchor_list(bad, 1)
    assert parse_anchor_list(" 10.5,14,  23,27", 2) == "10.5,14, 23,27"


def test_sizes_without_area_or_larger_than_the_input_are_left_out_and_counted() -> None:
    """A 1e-300 label's IoUs would be 0 / 0 (NaN mean IoU) and a label 5x the image would
    become an anchor of 2,080 px: both are left out, counted, and the rest clusters as if
    they were not there."""
    from detforge.data.anchors import kmeans_anchors

    good = np.array([[10.0, 12.0], [30.0, 28.0], [60.0, 70.0], [12.0, 10.0], [58.0, 66.0]])
    bad = np.array([[1e-300, 1e-300], [2080.0, 2080.0], [np.nan, 3.0], [0.0, 5.0]])
    ref = kmeans_anchors(good, 2, seed=0)
    got = kmeans_anchors(np.concatenate([good, bad]), 2, seed=0, limit=(416.0, 416.0))
    assert got.left_out == 4 and got.boxes == 5 and np.isfinite(got.mean_iou)
    np.testing.assert_array_equal(got.anchors, ref.anchors)
    assert kmeans_anchors(good, 2, seed=0, limit=(40.0, 40.0)).left_out == 2
