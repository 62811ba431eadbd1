"""Darknet's thresholds, per-class NMS kinds and input rule, on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from detforge.models.darknet.decode import correct_boxes
from detforge.models.darknet.nms import darknet_detections, nms_per_class
from detforge.models.darknet.preprocess import darknet_input, letterbox_size


def _rows(boxes: list[list[float]], obj: list[float], cls: list[list[float]]) -> torch.Tensor:
    return torch.tensor([[*b, o, *c] for b, o, c in zip(boxes, obj, cls, strict=True)])


def test_iou_nms_is_per_class_and_strictly_greater() -> None:
    # two 0.2 x 0.2 boxes shifted by 0.0667: IoU = 0.0133 / (0.08 - 0.0133) = 0.5 (> 0.45)
    a, b = [0.5, 0.5, 0.2, 0.2], [0.5 + 0.2 / 3, 0.5, 0.2, 0.2]
    far = [0.9, 0.9, 0.1, 0.1]
    rows = _rows([a, b, far, a], [0.9, 0.8, 0.9, 0.95], [[1, 0], [1, 0], [1, 0], [0, 1]])
    d = darknet_detections(rows, 100, 200, 416, 416)
    assert d.classes.tolist() == [1, 0, 0]  # b suppressed by a in class 0; class 1 separate
    assert d.scores.tolist() == pytest.approx([0.95, 0.9, 0.9])
    np.testing.assert_allclose(d.boxes[0], [40, 80, 60, 120], atol=1e-4)  # xyxy image pixels
    # with nms above their IoU both stay
    assert len(darknet_detections(rows, 100, 200, 416, 416, nms=0.51).scores) == 4


def test_thresholds() -> None:
    rows = _rows([[0.5, 0.5, 0.1, 0.1]] * 3, [0.25, 0.5, 0.9], [[1.0], [0.4], [0.3]])
    d = darknet_detections(rows, 10, 10, 32, 32, thresh=0.25)
    # obj 0.25 is not > 0.25; 0.5 * 0.4 = 0.2 <= 0.25; 0.9 * 0.3 = 0.27 kept
    assert d.scores.tolist() == pytest.approx([0.27])


def test_greedy_and_diou_nms() -> None:
    boxes = np.array([[0.5, 0.5, 0.4, 0.4], [0.6, 0.5, 0.4, 0.4]])
    probs = np.array([[0.9], [0.8]])
    iou = (0.3 * 0.4) / (2 * 0.16 - 0.3 * 0.4)  # 0.6
    c = 0.5**2 + 0.4**2  # enclosing box diagonal squared
    d = 0.1**2
    greedy = iou - (d / c) ** 0.6
    diou = iou - (d / c) ** 0.3
    for kind, beta, value in [("greedynms", 0.6, greedy), ("diounms", 0.3, diou),
                              ("default", 0.6, iou)]:  # fmt: skip
        kept = nms_per_class(boxes, probs, value - 1e-6, kind, beta)
        assert kept[1, 0] == 0.0, kind  # overlap just above the threshold: suppressed
        kept = nms_per_class(boxes, probs, value + 1e-6, kind, beta)
        assert kept[1, 0] == 0.8, kind


def test_letterbox_input_and_box_correction() -> None:
    image = np.zeros((2, 4, 3), np.uint8)
    image[:, 2:] = 255  # right half white
    assert letterbox_size(4, 2, 8, 8) == (8, 4)
    x = darknet_input(image, 8, 8, letter_box=True)[0, 0]
    assert torch.all(x[:2] == 0.5) and torch.all(x[6:] == 0.5)  # grey bands, rows 0-1, 6-7
    # align-corners bilinear across 4 -> 8 columns: position c * 3/7
    cols = torch.tensor([min(max(c * 3 / 7 - 1, 0), 1) for c in range(8)])
    torch.testing.assert_close(x[2], cols)
    # a box covering the whole image maps back to the whole image
    boxes = torch.tensor([[0.5, 0.5, 1.0, 0.5]])
    torch.testing.assert_close(correct_boxes(boxes, 4, 2, 8, 8, True),
                               torch.tensor([[0.5, 0.5, 1.0, 1.0]]))  # fmt: skip
    assert torch.equal(correct_boxes(boxes, 4, 2, 8, 8, False), boxes)
    plain = darknet_input(image, 8, 8)[0, 0]
    torch.testing.assert_close(plain[0], cols)  # plain resize: stretched, no bands
