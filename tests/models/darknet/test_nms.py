"""Darknet's thresholds, per-class NMS kinds and input rule, on hand-computed cases."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import cv2
import numpy as np
import pytest
import torch

from detforge.models.darknet import nms as nms_module
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


# --- floods against independent references -------------------------------------------------
#
# `_reference` is Darknet's `do_nms_sort` / `diounms_sort` (src/box.c) written out literally in
# Python floats (float64, as detforge computes): per class, sort by score (stable: the lower index
# first on a tie, as detforge), and every box still scoring zeroes every later box whose overlap
# with it is > nms. Overlaps: Darknet's `box_iou` and `box_diounms`, and for kind "default"
# torchvision's `nms` arithmetic (areas from the corners), which detforge's default kind has
# always used (it may differ from `box_iou` in the last bit, e.g. identical boxes at nms 1).


def _div(a: float, b: float) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(a) / np.float64(b))  # IEEE, where Python's / raises


Box = Sequence[float]


def _box_iou(a: Box, b: Box) -> float:
    def overlap(x1: float, w1: float, x2: float, w2: float) -> float:
        left = max(x1 - w1 / 2, x2 - w2 / 2)
        right = min(x1 + w1 / 2, x2 + w2 / 2)
        return right - left

    w, h = overlap(a[0], a[2], b[0], b[2]), overlap(a[1], a[3], b[1], b[3])
    inter = 0.0 if w < 0 or h < 0 else w * h
    union = a[2] * a[3] + b[2] * b[3] - inter
    return 0.0 if inter == 0 or union == 0 else inter / union


def _box_diounms(
    a: Box, b: Box, beta: float, pow: Callable[[float, float], float] = math.pow
) -> float:
    top, bot = min(a[1] - a[3] / 2, b[1] - b[3] / 2), max(a[1] + a[3] / 2, b[1] + b[3] / 2)
    left, right = min(a[0] - a[2] / 2, b[0] - b[2] / 2), max(a[0] + a[2] / 2, b[0] + b[2] / 2)
    w, h = right - left, bot - top
    c = w * w + h * h
    iou = _box_iou(a, b)
    if c == 0:
        return iou
    d = (a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1])
    return iou - pow(d / c, beta)


def _torchvision_iou(a: Box, b: Box) -> float:
    ax1, ay1, ax2, ay2 = a[0] - a[2] / 2, a[1] - a[3] / 2, a[0] + a[2] / 2, a[1] + a[3] / 2
    bx1, by1, bx2, by2 = b[0] - b[2] / 2, b[1] - b[3] / 2, b[0] + b[2] / 2, b[1] + b[3] / 2
    w = max(0.0, min(ax2, bx2) - max(ax1, bx1))
    h = max(0.0, min(ay2, by2) - max(ay1, by1))
    inter = w * h
    return _div(inter, (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter)


def _numpy_pow(x: float, y: float) -> float:
    return float(np.power(np.array([x]), y)[0])  # NumPy's vectorised pow, as detforge


def _overlap_fn(
    kind: str, beta: float, pow: Callable[[float, float], float] = math.pow
) -> Callable[[Box, Box], float]:
    if kind == "default":
        return _torchvision_iou
    return lambda a, b: _box_diounms(a, b, 0.6 if kind == "greedynms" else beta, pow)


def _overlaps(boxes: np.ndarray, kind: str, beta: float) -> list[list[float]]:
    """overlap(box i, box j) for every ordered pair, as Darknet calls it (i the earlier box)."""
    overlap, b = _overlap_fn(kind, beta), boxes.tolist()
    return [
        [overlap(bi, bj) if i != j else 0.0 for j, bj in enumerate(b)] for i, bi in enumerate(b)
    ]


def _reference(probs: np.ndarray, nms: float, overlaps: list[list[float]]) -> np.ndarray:
    out = probs.tolist()
    for k in range(probs.shape[1]):
        order = sorted(range(len(out)), key=lambda i: -out[i][k])
        for at, i in enumerate(order):
            if out[i][k] == 0:
                continue
            for j in order[at + 1 :]:
                if overlaps[i][j] > nms:
                    out[j][k] = 0.0
    return np.array(out).reshape(probs.shape)


def _flood(seed: int, n: int = 160, classes: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (n, 4) cx, cy, w, h and scores (n, classes): half on a 1/64 grid (exact arithmetic:
    shared edges, IoU exactly 0.5, zero widths/heights), half continuous, a tenth repeated
    (identical boxes); scores in eighths (ties), a third of the entries absent (0)."""
    rng = np.random.default_rng(seed)
    grid = np.c_[rng.integers(16, 48, (n, 2)), rng.integers(0, 20, (n, 2))] / 64
    cont = np.c_[rng.uniform(0.3, 0.7, (n, 2)), rng.uniform(0.02, 0.35, (n, 2))]
    boxes = np.where(rng.random((n, 1)) < 0.5, grid, cont)
    boxes[rng.integers(0, n, n // 10)] = boxes[rng.integers(0, n, n // 10)]
    probs = rng.integers(1, 8, (n, classes)) / 8
    probs[rng.random((n, classes)) < 0.33] = 0.0
    return boxes, probs


KINDS = [("default", 0.6), ("greedynms", 0.6), ("diounms", 0.8)]
NMS_VALUES = [0.0, 0.3, 0.45, 0.5, 0.7, 1.0]


@pytest.mark.parametrize("few_classes", [0, 4])  # 0: IoU too takes the pair search and scan
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(("kind", "beta"), KINDS)
def test_flood_matches_darknet_reference(
    monkeypatch: pytest.MonkeyPatch, seed: int, kind: str, beta: float, few_classes: int
) -> None:
    monkeypatch.setattr(nms_module, "_FEW_CLASSES", few_classes)
    boxes, probs = _flood(seed)
    overlaps = _overlaps(boxes, kind, beta)
    for nms in NMS_VALUES:
        ours = nms_per_class(boxes, probs, nms, kind, beta)
        ref = _reference(probs, nms, overlaps)
        assert np.array_equal(ours, ref), (kind, nms)
        if 0 < nms < 1:
            assert (ours == 0).sum() > (probs == 0).sum(), (kind, nms)  # it suppressed some


@pytest.mark.parametrize(("kind", "beta"), KINDS)
def test_plain_loop_fallback_matches_reference(
    monkeypatch: pytest.MonkeyPatch, kind: str, beta: float
) -> None:
    """Too many overlapping pairs to hold, a threshold below 0, non-finite boxes: the per-class
    loop, with the same results."""
    boxes, probs = _flood(2, n=100)
    overlaps = _overlaps(boxes, kind, beta)
    monkeypatch.setattr(nms_module, "_MAX_EDGES", 5)
    for nms in (-0.2, 0.0, 0.45, 1.0):
        assert np.array_equal(nms_per_class(boxes, probs, nms, kind, beta),
                              _reference(probs, nms, overlaps)), nms  # fmt: skip
    monkeypatch.undo()
    assert np.array_equal(nms_per_class(boxes, probs, -0.2, kind, beta),
                          _reference(probs, -0.2, overlaps))  # fmt: skip
    bad = boxes.copy()
    bad[3] = [np.nan, 0.5, 0.1, 0.1]
    bad[7] = [0.5, 0.5, np.inf, 0.1]
    ours = nms_per_class(bad, probs, 0.45, kind, beta)
    monkeypatch.setattr(nms_module, "_MAX_EDGES", 0)
    assert np.array_equal(ours, nms_per_class(bad, probs, 0.45, kind, beta))


def test_default_kind_matches_torchvision_and_opencv() -> None:
    from torchvision.ops import nms as tv_nms

    boxes, probs = _flood(3, n=300, classes=5)
    boxes = np.c_[np.random.default_rng(3).uniform(0.2, 0.8, (300, 2)), boxes[:, 2:] + 0.01]
    for nms in (0.3, 0.45, 0.6):
        ours = nms_per_class(boxes, probs, nms)
        for k in range(probs.shape[1]):
            sel = np.flatnonzero(probs[:, k] > 0)
            b = torch.from_numpy(boxes[sel])
            xyxy = torch.cat([b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2], 1)
            tv = sel[tv_nms(xyxy, torch.from_numpy(probs[sel, k]), nms).numpy()]
            assert sorted(tv) == sorted(np.flatnonzero(ours[:, k] > 0)), (nms, k)
            xywh = np.c_[boxes[sel, :2] - boxes[sel, 2:] / 2, boxes[sel, 2:]] * 1000
            cv = sel[np.asarray(cv2.dnn.NMSBoxes(xywh.tolist(), probs[sel, k].tolist(), 0.0, nms))]
            assert sorted(cv.reshape(-1)) == sorted(np.flatnonzero(ours[:, k] > 0)), (nms, k)


@pytest.mark.parametrize("few", [0, 32])  # 0: the pair search and scan; 32: the per-class loop
def test_overlap_ties_at_the_threshold_like_the_references(
    monkeypatch: pytest.MonkeyPatch, few: int
) -> None:
    """At nms equal to a pair's overlap the later box stays (strictly greater), one float step
    below it goes: detforge's overlap is the references' to the last bit (with NumPy's pow for
    DIoU, as detforge always used: ``math.pow`` differs from it in the last bit now and then)."""
    from torchvision.ops import nms as tv_nms

    monkeypatch.setattr(nms_module, "_FEW", few)
    monkeypatch.setattr(nms_module, "_FEW_CLASSES", 0)
    rng = np.random.default_rng(4)
    probs = np.array([[0.9], [0.8]])
    checked = 0
    for _ in range(150):
        a = np.r_[rng.uniform(0.3, 0.7, 2), rng.uniform(0.05, 0.4, 2)]
        b = np.r_[a[:2] + rng.uniform(-0.1, 0.1, 2), a[2:] * rng.uniform(0.7, 1.4, 2)]
        boxes = np.stack([a, b])
        for kind, beta in KINDS:
            value = _overlap_fn(kind, beta, _numpy_pow)(a.tolist(), b.tolist())
            if not 0 < value < 1:
                continue
            checked += 1
            assert nms_per_class(boxes, probs, value, kind, beta)[1, 0] == 0.8, kind
            below = float(np.nextafter(value, -1.0))
            assert nms_per_class(boxes, probs, below, kind, beta)[1, 0] == 0.0, kind
            if kind == "default":
                t = torch.from_numpy(np.c_[boxes[:, :2] - boxes[:, 2:] / 2,
                                           boxes[:, :2] + boxes[:, 2:] / 2])  # fmt: skip
                s = torch.tensor([0.9, 0.8], dtype=torch.float64)
                assert len(tv_nms(t, s, value)) == 2 and len(tv_nms(t, s, below)) == 1
    assert checked > 150


def test_darknet_detections_flood_same_as_plain_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole filter on a flood of decoded rows (80 classes, thresh 0.005): the same
    detections, bit for bit, as the per-class loop."""
    g = torch.Generator().manual_seed(5)
    rows = torch.rand(300, 85, generator=g)
    rows[:, 2:4] = rows[:, 2:4] * 0.4 + 0.02
    for kind, beta in KINDS:
        fast = darknet_detections(rows, 640, 480, 416, 416, thresh=0.005, nms_kind=kind,
                                  beta_nms=beta)  # fmt: skip
        with monkeypatch.context() as m:
            m.setattr(nms_module, "_MAX_EDGES", 0)
            slow = darknet_detections(rows, 640, 480, 416, 416, thresh=0.005, nms_kind=kind,
                                      beta_nms=beta)  # fmt: skip
        assert 1000 < len(fast.scores) < 300 * 80
        for field in ("boxes", "scores", "classes"):
            assert np.array_equal(getattr(fast, field), getattr(slow, field)), kind


def test_empty_inputs() -> None:
    for kind, beta in KINDS:
        assert nms_per_class(np.zeros((0, 4)), np.zeros((0, 3)), 0.45, kind, beta).shape == (0, 3)
        assert nms_per_class(np.ones((2, 4)), np.zeros((2, 0)), 0.45, kind, beta).shape == (2, 0)
        d = darknet_detections(torch.zeros(5, 7), 10, 10, 32, 32, nms_kind=kind)
        assert d.boxes.shape == (0, 4) and d.scores.shape == (0,) and d.classes.shape == (0,)
