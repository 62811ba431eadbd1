"""The [yolo]-head loss on a one-truth toy case, against values computed by hand from
Darknet's yolo_layer.c rules (and torchvision's IoU losses as an independent reference)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from detforge.train.darknet_loss import DarknetYoloLoss, YoloLossSpec, unsupported_keys  # noqa: E402

LN2 = math.log(2.0)


def kl(t: float, x: float) -> float:
    """KL(t || sigmoid(x)) = BCE(x, t) - H(t)."""
    p = 1 / (1 + math.exp(-x))
    return (
        -(t * math.log(p) + (1 - t) * math.log(1 - p)) + t * math.log(t) + (1 - t) * math.log(1 - t)
    )


KL_XY = kl(0.6, 0.0) + kl(0.4, 0.0)  # the toy case's x and y terms at logit 0
# 64x64 input, one head of stride 32 (2x2 grid), anchors 16x16 and 32x32, one class.
# The truth: centre (0.3, 0.7), size 0.5 x 0.5 (32 x 32 px) -> cell col 0, row 1; its shape IoU
# with the anchors is 0.25 and 1, so anchor 1 is the positive.
TRUTH_XYXY = [0.05 * 64, 0.45 * 64, 0.55 * 64, 0.95 * 64]


def _batch() -> dict:
    return {
        "img": torch.zeros(1, 3, 64, 64, dtype=torch.uint8),
        "batch_idx": torch.tensor([0]),
        "cls": torch.tensor([0]),
        "bboxes": torch.tensor([TRUTH_XYXY]),
    }


def _spec(**kw: object) -> YoloLossSpec:
    base = dict(classes=1, anchors=((16.0, 16.0), (32.0, 32.0)), mask=(0, 1), ignore_thresh=0.7)
    base.update(kw)
    return YoloLossSpec(**base)  # type: ignore[arg-type]


def _raw(cls_logit: float = 0.0) -> torch.Tensor:
    raw = torch.zeros(1, 2 * 6, 2, 2)
    raw.view(1, 2, 6, 2, 2)[:, :, 5] = cls_logit
    return raw.requires_grad_(True)


def test_mse_box_objectness_and_class_by_hand() -> None:
    raw = _raw()
    loss, items = DarknetYoloLoss([_spec()])([raw], _batch())
    # box (mse): scale = 2 - 0.25 = 1.75; tx = 0.3*2 - 0 = 0.6, ty = 0.7*2 - 1 = 0.4 vs
    # sigmoid(0) = 0.5 (KL terms); tw = th = ln(0.5 * 64 / 32) = 0 vs 0; iou_normalizer 0.75
    box = 0.75 * 1.75 * KL_XY
    # objectness: 8 predictions at sigmoid(0): 7 towards 0, 1 towards 1, each ln 2 (none is
    # ignored: the best IoU of a prediction with the truth is 0.68 < 0.7)
    obj = 8 * LN2
    cls = LN2  # the positive's class: BCE(0.5, 1)
    assert float(loss.detach()) == pytest.approx(box + obj + cls, rel=1e-6)
    assert items.tolist() == pytest.approx([box, cls, obj], rel=1e-6)
    loss.backward()
    g = raw.grad.view(2, 6, 2, 2)  # (anchor, entry, row, col)
    # Darknet's deltas are minus these gradients: obj delta = target - sigmoid
    assert float(g[1, 4, 1, 0]) == pytest.approx(-(1 - 0.5))
    assert float(g[0, 4, 0, 0]) == pytest.approx(0.5)
    assert float(g[1, 5, 1, 0]) == pytest.approx(-(1 - 0.5))
    assert float(g[0, 5, 1, 0]) == 0.0  # no class term away from positives
    # w: delta = scale * (tw - w) * iou_normalizer = 0 here; x: scale * (tx - sigmoid(x)) * 0.75
    assert float(g[1, 2, 1, 0]) == pytest.approx(0.0, abs=1e-7)
    assert float(g[1, 0, 1, 0]) == pytest.approx(-0.75 * 1.75 * (0.6 - 0.5), rel=1e-5)
    assert float(g[1, 1, 1, 0]) == pytest.approx(-0.75 * 1.75 * (0.4 - 0.5), rel=1e-5)


def test_ignore_thresh_needs_iou_and_a_confident_class() -> None:
    # prediction of anchor 0 in the truth's cell: box centre (0.25, 0.75), 0.25 x 0.25, inside
    # the truth: IoU 0.0625 / 0.25 = 0.25. With ignore_thresh 0.2 it is left alone.
    _, items = DarknetYoloLoss([_spec(ignore_thresh=0.2)])([_raw()], _batch())
    assert float(items[2]) == pytest.approx(7 * LN2, rel=1e-6)
    # ... but only while a class probability exceeds 0.25: sigmoid(-5) = 0.0067 does not
    _, items = DarknetYoloLoss([_spec(ignore_thresh=0.2)])([_raw(-5.0)], _batch())
    assert float(items[2]) == pytest.approx(8 * LN2, rel=1e-6)
    assert float(items[1]) == pytest.approx(math.log1p(math.exp(5.0)), rel=1e-6)


def test_iou_thresh_adds_every_anchor_above_it() -> None:
    # anchor 0's shape IoU with the truth is 0.25 > 0.213: it becomes a positive too, with
    # tw = th = ln(0.5 * 64 / 16) = ln 2
    _, items = DarknetYoloLoss([_spec(iou_thresh=0.213)])([_raw()], _batch())
    box = 0.75 * 1.75 * KL_XY + 0.75 * 1.75 * (KL_XY + 0.5 * 2 * LN2**2)
    assert items.tolist() == pytest.approx([box, 2 * LN2, 8 * LN2], rel=1e-6)
    # not above it: only the best anchor
    _, items = DarknetYoloLoss([_spec(iou_thresh=0.3)])([_raw()], _batch())
    assert float(items[1]) == pytest.approx(LN2, rel=1e-6)


def test_ciou_giou_diou_box_terms() -> None:
    from torchvision.ops import (
        complete_box_iou_loss,
        distance_box_iou_loss,
        generalized_box_iou_loss,
    )

    # positive prediction: centre ((0 + 0.5) / 2, (1 + 0.5) / 2) = (0.25, 0.75), size 0.5 x 0.5
    # truth (0.3, 0.7, 0.5, 0.5): intersection 0.45^2 = 0.2025, union 0.2975, IoU 0.680672;
    # centre distance^2 0.005, enclosing diagonal^2 2 * 0.55^2 = 0.605, equal aspect ratios
    iou = 0.2025 / 0.2975
    by_hand = {"iou": 1 - iou, "diou": 1 - (iou - 0.005 / 0.605), "ciou": 1 - (iou - 0.005 / 0.605)}
    pred = torch.tensor([[0.0, 0.5, 0.5, 1.0]])
    truth = torch.tensor([[0.05, 0.45, 0.55, 0.95]])
    reference = {
        "giou": float(generalized_box_iou_loss(pred, truth)),
        "diou": float(distance_box_iou_loss(pred, truth)),
        "ciou": float(complete_box_iou_loss(pred, truth)),
    }
    for kind in ("iou", "giou", "diou", "ciou"):
        _, items = DarknetYoloLoss([_spec(iou_loss=kind, iou_normalizer=0.07)])([_raw()], _batch())
        want = by_hand.get(kind, reference.get(kind))
        assert float(items[0]) == pytest.approx(0.07 * want, rel=1e-5), kind
        if kind in reference:
            assert float(items[0]) == pytest.approx(0.07 * reference[kind], rel=1e-5), kind


def test_normalizers_label_smoothing_and_scale_x_y() -> None:
    spec = _spec(obj_normalizer=2.0, cls_normalizer=3.0, label_smooth_eps=0.1, scale_x_y=1.05)
    raw = _raw()
    with torch.no_grad():
        raw.view(1, 2, 6, 2, 2)[0, 1, 0, 1, 0] = 2.0  # x logit of the positive
    _, items = DarknetYoloLoss([spec])([raw], _batch())
    y = 1 * 0.9 + 0.05  # Darknet's smoothing: y (1 - eps) + eps / 2
    bce = -(y * math.log(0.5) + (1 - y) * math.log(0.5))
    assert float(items[1]) == pytest.approx(3.0 * bce, rel=1e-6)
    assert float(items[2]) == pytest.approx(2.0 * 8 * LN2, rel=1e-6)
    # x = sigmoid * s - (s - 1) / 2 with s = 1.05: the KL target is (tx + 0.025) / 1.05
    box = 1.05 * (kl((0.6 + 0.025) / 1.05, 2.0) + kl((0.4 + 0.025) / 1.05, 0.0))
    assert float(items[0]) == pytest.approx(0.75 * 1.75 * box, rel=1e-6)


def test_truth_in_another_heads_mask_and_empty_batch() -> None:
    # the best anchor (index 1) belongs to the other head: this head has only negatives
    spec = _spec(mask=(0,))
    raw = torch.zeros(1, 6, 2, 2, requires_grad=True)
    _, items = DarknetYoloLoss([spec])([raw], _batch())
    assert items.tolist() == pytest.approx([0.0, 0.0, 4 * LN2], rel=1e-6)
    empty = _batch()
    empty.update(batch_idx=torch.zeros(0, dtype=torch.long), cls=torch.zeros(0, dtype=torch.long),
                 bboxes=torch.zeros(0, 4))  # fmt: skip
    loss, items = DarknetYoloLoss([_spec()])([_raw()], empty)
    assert float(loss.detach()) == pytest.approx(8 * LN2, rel=1e-6)


def test_spec_from_cfg_options() -> None:
    options = {"mask": "3,4,5", "anchors": "10,14, 23,27, 37,58, 81,82, 135,169, 344,319",
               "classes": "3", "num": "6", "iou_loss": "ciou", "iou_normalizer": "0.07",
               "scale_x_y": "1.05", "ignore_thresh": ".7", "iou_thresh": "0.213",
               "max_delta": "5", "truth_thresh": "1"}  # fmt: skip
    spec = YoloLossSpec.from_options(options)
    assert spec.mask == (3, 4, 5) and spec.anchors[5] == (344.0, 319.0) and spec.classes == 3
    assert (spec.iou_loss, spec.iou_normalizer, spec.ignore_thresh) == ("ciou", 0.07, 0.7)
    assert spec.cls_normalizer == 1.0 and spec.obj_normalizer == 1.0
    assert unsupported_keys(options) == ["max_delta=5"]
