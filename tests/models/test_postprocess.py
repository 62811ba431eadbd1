"""NMS and thresholds on hand-made boxes."""

from __future__ import annotations

import torch

from detforge.models.postprocess import postprocess


def _output() -> torch.Tensor:
    rows = [
        [0, 0, 10, 10, 0.9, 0.0],  # class 0, best
        [1, 1, 10, 10, 0.8, 0.0],  # class 0, IoU 0.81 with the first -> suppressed
        [1, 1, 10, 10, 0.0, 0.7],  # class 1: survives class-aware NMS
        [50, 50, 60, 60, 0.1, 0.0],  # below conf
        [30, 30, 40, 40, 0.3, 0.2],  # separate box, class 0
    ]
    return torch.tensor([rows], dtype=torch.float32)


def test_nms_class_aware() -> None:
    (det,) = postprocess(_output(), conf=0.25, iou=0.7)
    assert det.scores.tolist() == pytest_approx([0.9, 0.7, 0.3])
    assert det.classes.tolist() == [0, 1, 0]
    assert det.boxes[1].tolist() == [1, 1, 10, 10]
    boxes, _scores, classes = det  # unpacks as a tuple
    assert boxes.shape == (3, 4) and classes.dtype == torch.int64


def test_nms_agnostic_and_max_det_and_conf() -> None:
    (det,) = postprocess(_output(), conf=0.25, iou=0.7, agnostic=True)
    assert det.scores.tolist() == pytest_approx([0.9, 0.3])
    (det,) = postprocess(_output(), conf=0.25, iou=0.7, max_det=1)
    assert det.scores.tolist() == pytest_approx([0.9])
    (det,) = postprocess(_output(), conf=0.05, iou=0.7)
    assert len(det.scores) == 4
    (det,) = postprocess(_output(), conf=0.95)
    assert det.boxes.shape == (0, 4)


def test_multi_label_keeps_second_class() -> None:
    (det,) = postprocess(_output(), conf=0.15, iou=0.7, multi_label=True)
    # the box at 30..40 yields class 0 (0.3) and class 1 (0.2)
    pairs = sorted(
        zip(det.classes.tolist(), [round(s, 3) for s in det.scores.tolist()], strict=True)
    )
    assert pairs == [(0, 0.3), (0, 0.9), (1, 0.2), (1, 0.7)]


def test_batch_of_two_is_per_image() -> None:
    out = torch.cat([_output(), torch.zeros(1, 5, 6)])
    dets = postprocess(out)
    assert len(dets) == 2 and len(dets[1].scores) == 0


def pytest_approx(values: list[float]) -> object:
    import pytest

    return pytest.approx(values, abs=1e-6)
