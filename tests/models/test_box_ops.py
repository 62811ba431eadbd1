"""Box ops against hand-computed values."""

from __future__ import annotations

import math

import torch

from detforge.models.box_ops import (
    bbox2dist,
    box_iou_pairwise,
    dist2bbox,
    make_anchors,
    points_in_boxes,
)


def test_ciou_of_offset_squares_matches_hand_value() -> None:
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0]])
    # IoU 1/7; enclosing box 3x3 -> c^2 = 18; centre distance^2 = 2; same aspect -> v = 0
    expected = 1 / 7 - 2 / 18
    assert math.isclose(box_iou_pairwise(a, b, ciou=True).item(), expected, abs_tol=1e-6)
    assert math.isclose(box_iou_pairwise(a, b).item(), 1 / 7, abs_tol=1e-6)


def test_ciou_with_aspect_term_matches_hand_value() -> None:
    a = torch.tensor([[0.0, 0.0, 4.0, 2.0]])
    b = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    iou = 4 / 8
    rho2_over_c2 = 1.0 / (4**2 + 2**2)
    v = 4 / math.pi**2 * (math.atan(2 / 2) - math.atan(4 / 2)) ** 2
    alpha = v / (1 - iou + v)
    expected = iou - rho2_over_c2 - alpha * v
    assert math.isclose(box_iou_pairwise(a, b, ciou=True).item(), expected, abs_tol=1e-6)


def test_ciou_identical_is_one_and_disjoint_negative() -> None:
    a = torch.tensor([[3.0, 4.0, 10.0, 12.0], [0.0, 0.0, 1.0, 1.0]])
    b = torch.tensor([[3.0, 4.0, 10.0, 12.0], [5.0, 5.0, 6.0, 6.0]])
    out = box_iou_pairwise(a, b, ciou=True)
    assert math.isclose(out[0].item(), 1.0, abs_tol=1e-5)
    assert out[1].item() < 0


def test_dist2bbox_and_bbox2dist_are_inverse() -> None:
    pts = torch.tensor([[5.0, 5.0], [2.5, 7.5]])
    boxes = torch.tensor([[1.0, 2.0, 9.0, 6.5], [0.5, 3.0, 4.0, 10.0]])
    dist = bbox2dist(pts, boxes, 15)
    assert torch.allclose(dist, torch.tensor([[4.0, 3.0, 4.0, 1.5], [2.0, 4.5, 1.5, 2.5]]))
    assert torch.allclose(dist2bbox(dist, pts), boxes)
    # distances are clamped just below max_dist
    far = bbox2dist(torch.tensor([[50.0, 50.0]]), torch.tensor([[0.0, 0.0, 100.0, 51.0]]), 15)
    assert torch.allclose(far, torch.tensor([[14.99, 14.99, 14.99, 1.0]]))


def test_make_anchors_layout() -> None:
    pts, st = make_anchors([(2, 3), (1, 1)], [8, 16])
    assert pts.shape == (7, 2) and st.shape == (7, 1)
    assert pts[:3].tolist() == [[0.5, 0.5], [1.5, 0.5], [2.5, 0.5]]  # row-major, x first
    assert pts[3].tolist() == [0.5, 1.5]
    assert pts[6].tolist() == [0.5, 0.5] and st[:, 0].tolist() == [8] * 6 + [16]


def test_points_in_boxes() -> None:
    pts = torch.tensor([[1.0, 1.0], [5.0, 5.0], [2.0, 1.0]])
    boxes = torch.tensor([[[0.0, 0.0, 2.0, 2.0], [4.0, 4.0, 6.0, 6.0]]])
    inside = points_in_boxes(pts, boxes)
    # the point on the right edge of box 0 is not strictly inside
    assert inside.tolist() == [[[True, False, False], [False, True, False]]]
