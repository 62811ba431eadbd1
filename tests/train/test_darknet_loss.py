"""The [yolo]-head loss on a one-truth toy case, against values computed by hand from
Darknet's yolo_layer.c rules (and torchvision's IoU losses as an independent reference)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from detforge.errors import DetforgeError  # noqa: E402
from detforge.train.darknet_loss import DarknetYoloLoss, YoloLossSpec, ineffective_keys  # noqa: E402

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
    # cls_normalizer 3 has no effect without counters_per_class (delta_yolo_class)
    assert float(items[1]) == pytest.approx(bce, rel=1e-6)
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
               "max_delta": "5", "truth_thresh": "0.9", "objectness_smooth": "1",
               "focal_loss": "1", "counters_per_class": "100, 0, 3000"}  # fmt: skip
    spec = YoloLossSpec.from_options(options)
    assert spec.mask == (3, 4, 5) and spec.anchors[5] == (344.0, 319.0) and spec.classes == 3
    assert (spec.iou_loss, spec.iou_normalizer, spec.ignore_thresh) == ("ciou", 0.07, 0.7)
    assert spec.cls_normalizer == 1.0 and spec.obj_normalizer == 1.0
    assert spec.max_delta == 5.0 and spec.objectness_smooth
    assert ineffective_keys(options) == []  # every key has its effect
    # cls_normalizer acts only with counters_per_class, in Darknet and here: a note says so
    alone = {"anchors": "1,1", "classes": "2", "cls_normalizer": "2.0"}
    assert ineffective_keys(alone) == [
        "cls_normalizer=2.0 (Darknet applies it only with counters_per_class)"
    ]
    assert ineffective_keys({**alone, "counters_per_class": "1,2"}) == []
    assert ineffective_keys({**alone, "cls_normalizer": "1"}) == []
    assert spec.truth_thresh == 0.9
    # counts below 1 read as 1; multipliers max / count, capped at max_delta (parser.c)
    assert spec.focal_loss and spec.class_multipliers == (5.0, 5.0, 1.0)  # 30, 3000, 1 capped
    uncapped = {"anchors": "1,1", "classes": "3", "counters_per_class": "100, 0, 3000"}
    assert YoloLossSpec.from_options(uncapped).class_multipliers == (30.0, 3000.0, 1.0)
    plain = YoloLossSpec.from_options({"anchors": "10,14", "classes": "1"})
    assert plain.max_delta is None and not plain.objectness_smooth  # Darknet: FLT_MAX, 0
    assert not plain.focal_loss and plain.class_multipliers is None
    with pytest.raises(DetforgeError, match="counters_per_class has 2 values for classes=3"):
        YoloLossSpec.from_options({"anchors": "1,1", "classes": "3", "counters_per_class": "1,2"})
    with pytest.raises(DetforgeError, match="counters_per_class=1,x is not a list"):
        YoloLossSpec.from_options({"anchors": "1,1", "classes": "2", "counters_per_class": "1,x"})
    assert not YoloLossSpec.from_options(
        {"anchors": "1,1", "objectness_smooth": "0"}
    ).objectness_smooth
    with pytest.raises(DetforgeError, match="max_delta=0 must be > 0"):
        YoloLossSpec.from_options({"anchors": "10,14", "max_delta": "0"})


# --- max_delta: Darknet's delta_yolo_box clips, per (positive, truth) pair and only with the IoU
# losses, each of dx, dy, dw, dh (iou_normalizer applied) to [-max_delta, max_delta] before the
# pair's delta is accumulated into the cell (and, with iou_thresh < 1, averaged).
#
# The toy positive (anchor 1, col 0, row 1) decodes at raw 0 to the box x 0..0.5, y 0.5..1.0
# (centre (0.25, 0.75), 0.5 x 0.5); the truth is x 0.05..0.55, y 0.45..0.95. Overlaps:
# ox = px2 - 0.05 and oy = 0.95 - py1, both 0.45; I = 0.2025, U = 0.25 + 0.25 - I = 0.2975.
OX = OY = 0.45
I_, U_ = OX * OY, 0.2975
# d IoU / d cx = oy (U + I) / U^2 (dU = -dI); d cy: the same with the opposite sign (py1 moves)
DIOU_DCX = OY * (U_ + I_) / U_**2
# d IoU / d w: dI = oy / 2, dU = h - dI (h = 0.5); the same for h by symmetry
DIOU_DW = ((OY / 2) * U_ - I_ * (0.5 - OY / 2)) / U_**2
# the chain to the raw outputs at 0: cx = (sigmoid(x) + col) / 2 -> 0.25 / 2; w = 0.5 exp(w) -> 0.5
DCX_DX, DW_DRAW = 0.25 / 2, 0.5


def _iou_grads(max_delta: float | None, **kw: object) -> torch.Tensor:
    """Gradient on the positive's raw (x, y, w, h) with iou_loss=iou, iou_normalizer 10."""
    raw = _raw()
    spec = _spec(iou_loss="iou", iou_normalizer=10.0, max_delta=max_delta, **kw)
    loss, items = DarknetYoloLoss([spec])([raw], _batch())
    assert float(items[0]) == pytest.approx(10 * (1 - I_ / U_), rel=1e-5)  # value not clipped
    loss.backward()
    return raw.grad.view(2, 6, 2, 2)[1, 0:4, 1, 0]


def test_max_delta_clips_the_iou_box_delta_per_element() -> None:
    # Darknet's deltas (= minus our gradient): dx = 10 dIoU/dx = +3.18, dy = -3.18, dw = dh = +0.64
    delta = [
        10 * DIOU_DCX * DCX_DX,
        -10 * DIOU_DCX * DCX_DX,
        10 * DIOU_DW * DW_DRAW,
        10 * DIOU_DW * DW_DRAW,
    ]
    assert delta[0] > 3 and 0.5 < delta[2] < 1
    free = _iou_grads(None)
    assert free.tolist() == pytest.approx([-d for d in delta], rel=1e-4)
    # max_delta=1: x, y clipped to +-1 (signs kept); w, h below the limit unchanged
    clipped = _iou_grads(1.0)
    assert clipped.tolist() == pytest.approx([-1.0, 1.0, -delta[2], -delta[3]], rel=1e-4)
    # a limit above every delta changes nothing
    assert _iou_grads(5.0).tolist() == pytest.approx(free.tolist(), rel=1e-6)


def test_max_delta_clips_each_truth_before_accumulating_and_averaging() -> None:
    # two truths with the same box, classes 0 and 1, at the same positive: Darknet accumulates
    # two clipped deltas (2 x 1, not clip(2 x 3.18) = 1) ...
    spec = dict(classes=2, anchors=((16.0, 16.0), (32.0, 32.0)), mask=(0, 1), ignore_thresh=0.7,
                iou_loss="iou", iou_normalizer=10.0, max_delta=1.0)  # fmt: skip
    batch = _batch()
    batch.update(batch_idx=torch.tensor([0, 0]), cls=torch.tensor([0, 1]),
                 bboxes=torch.tensor([TRUTH_XYXY, TRUTH_XYXY]))  # fmt: skip
    dw = 10 * DIOU_DW * DW_DRAW
    for iou_thresh, classes_in_box in ((1.0, 1), (0.99, 2)):
        raw = torch.zeros(1, 2 * 7, 2, 2, requires_grad=True)
        loss, _ = DarknetYoloLoss([YoloLossSpec(**spec, iou_thresh=iou_thresh)])([raw], batch)  # type: ignore[arg-type]
        loss.backward()
        g = raw.grad.view(2, 7, 2, 2)[1, 0:4, 1, 0]
        # ... and with iou_thresh < 1 averages_yolo_deltas divides the sum by the 2 classes
        want = [-2.0, 2.0, -2 * dw, -2 * dw]
        assert g.tolist() == pytest.approx([v / classes_in_box for v in want], rel=1e-4)


def test_max_delta_leaves_mse_boxes_objectness_and_classes_alone() -> None:
    # Darknet clips only the IoU branch of delta_yolo_box: the mse delta scale (tw - w) * 0.75 =
    # 1.75 * 3 * 0.75 = 3.94 on w stays; the objectness delta 4 (1 - 0.5) = 2 is never clipped
    raw = _raw()
    with torch.no_grad():
        raw.view(1, 2, 6, 2, 2)[0, 1, 2, 1, 0] = -3.0
    loss, _ = DarknetYoloLoss([_spec(max_delta=1.0, obj_normalizer=4.0)])([raw], _batch())
    loss.backward()
    g = raw.grad.view(2, 6, 2, 2)
    assert float(g[1, 2, 1, 0]) == pytest.approx(-0.75 * 1.75 * 3.0, rel=1e-5)
    assert float(g[1, 4, 1, 0]) == pytest.approx(-4 * 0.5, rel=1e-6)
    assert float(g[0, 4, 0, 0]) == pytest.approx(4 * 0.5, rel=1e-6)


# --- objectness_smooth=1 (process_batch): every prediction's delta is norm (0 - p), replaced by
# norm (best_match_iou - p) when best_match_iou > ignore_thresh (best IoU with a truth, counted
# only while a class probability > 0.25); a positive keeps that delta and gets norm (1 - p) only
# where it is exactly 0.
#
# IoU of each toy prediction (sizes 0.25 for anchor 0, 0.5 for anchor 1) with the truth, by
# (row, col): anchor 0: (1, 0) inside the truth: 0.0625 / 0.25 = 0.25, the other cells 0;
# anchor 1: (1, 0) the positive 0.2025 / 0.2975; (0, 0) and (1, 1): overlap 0.45 x 0.05,
# 0.0225 / 0.4775; (0, 1): overlap 0.05 x 0.05, 0.0025 / 0.4975.
IOU_A1 = {
    (0, 0): 0.0225 / 0.4775,
    (1, 0): I_ / U_,
    (0, 1): 0.0025 / 0.4975,
    (1, 1): 0.0225 / 0.4775,
}
IOU_A0 = {(0, 0): 0.0, (1, 0): 0.25, (0, 1): 0.0, (1, 1): 0.0}


def _obj_grads(raw: torch.Tensor, spec: YoloLossSpec) -> torch.Tensor:
    loss, _ = DarknetYoloLoss([spec])([raw], _batch())
    loss.backward()
    return raw.grad.view(2, -1, 2, 2)[:, 4]  # (anchor, row, col)


def test_objectness_smooth_targets_on_logits() -> None:
    # class logit 0: probability 0.5 > 0.25, every prediction may match; p = 0.5 everywhere
    g = _obj_grads(_raw(), _spec(objectness_smooth=True, ignore_thresh=0.2))
    # above 0.2: anchor 0 (row 1, col 0) -> target 0.25; the positive -> its IoU 0.680672
    # (not 1: its delta 0.68 - 0.5 is not 0); the rest -> 0. Gradient = p - target.
    for (row, col), iou in IOU_A0.items():
        assert float(g[0, row, col]) == pytest.approx(0.5 - (iou if iou > 0.2 else 0.0), abs=1e-6)
    for (row, col), iou in IOU_A1.items():
        assert float(g[1, row, col]) == pytest.approx(0.5 - (iou if iou > 0.2 else 0.0), abs=1e-6)
    assert float(g[1, 1, 0]) == pytest.approx(0.5 - 0.2025 / 0.2975, rel=1e-5)
    # the same cells without objectness_smooth: ignored (0) and the positive to 1
    g = _obj_grads(_raw(), _spec(ignore_thresh=0.2))
    assert (float(g[0, 1, 0]), float(g[1, 1, 0])) == pytest.approx((0.0, -0.5), abs=1e-6)
    # ignore_thresh 0.7 (the stock cfgs'): the positive's IoU 0.68 is below it, so its delta
    # stays 0 - p: Darknet pushes it towards 0 like every other prediction
    g = _obj_grads(_raw(), _spec(objectness_smooth=True, ignore_thresh=0.7))
    assert g.flatten().tolist() == pytest.approx([0.5] * 8, abs=1e-6)
    # no class probability above 0.25 (sigmoid(-5)): best_match_iou is 0, nothing is smoothed
    g = _obj_grads(_raw(-5.0), _spec(objectness_smooth=True, ignore_thresh=0.2))
    assert g.flatten().tolist() == pytest.approx([0.5] * 8, abs=1e-6)


def test_objectness_smooth_with_new_coords_and_a_zero_delta() -> None:
    # new_coords=1: the conv's outputs are probabilities; raw x, y, w, h = 0.5 decode to the same
    # boxes as above (xy 0.5, wh 0.5^2 4 anchor = anchor); the loss is (p - target)^2 / 2
    def raw_with(obj: float, positive_obj: float, cls: float = 0.5) -> torch.Tensor:
        raw = torch.full((1, 2, 6, 2, 2), 0.5)
        raw[:, :, 4] = obj
        raw[:, :, 5] = cls
        raw[0, 1, 4, 1, 0] = positive_obj
        return raw.view(1, 12, 2, 2).requires_grad_(True)

    spec = _spec(objectness_smooth=True, new_coords=True, ignore_thresh=0.2, obj_normalizer=2.0)
    g = _obj_grads(raw_with(0.4, 0.3), spec)
    assert float(g[0, 1, 0]) == pytest.approx(2 * (0.4 - 0.25), rel=1e-5)
    assert float(g[1, 1, 0]) == pytest.approx(2 * (0.3 - 0.2025 / 0.2975), rel=1e-5)
    assert float(g[1, 0, 0]) == pytest.approx(2 * 0.4, rel=1e-6)
    # ignore_thresh 0.7: the positive's delta 2 (0 - p) is exactly 0 at p = 0, so Darknet sets
    # 2 (1 - p) = 2 there; at p = 0.3 it stays 2 (0 - 0.3)
    spec = _spec(objectness_smooth=True, new_coords=True, ignore_thresh=0.7, obj_normalizer=2.0)
    assert float(_obj_grads(raw_with(0.4, 0.0), spec)[1, 1, 0]) == pytest.approx(-2.0, rel=1e-6)
    assert float(_obj_grads(raw_with(0.4, 0.3), spec)[1, 1, 0]) == pytest.approx(0.6, rel=1e-6)
    # class probabilities 0.2 (not > 0.25): no prediction is smoothed, the positive included
    spec = _spec(objectness_smooth=True, new_coords=True, ignore_thresh=0.2)
    g = _obj_grads(raw_with(0.4, 0.3, cls=0.2), spec)
    assert (float(g[0, 1, 0]), float(g[1, 1, 0])) == pytest.approx((0.4, 0.3), rel=1e-6)


# --- focal_loss and counters_per_class (delta_yolo_class, get_classes_multipliers). Two classes;
# every raw output 0, so every probability is 0.5. With focal_loss the class deltas of a cell's
# first truth are (y - p) * 0.5 * g(pt), g(pt) = -(1 - pt)(2 pt ln pt + pt - 1), pt = 0.5 here.
FOCAL_W = 0.5 * -(1 - 0.5) * (2 * 0.5 * math.log(0.5) + 0.5 - 1)  # 0.298287


def _batch2(classes: list[int]) -> dict:
    """The toy truth, once per entry of ``classes`` (the same box: the same positive cell)."""
    return {
        "img": torch.zeros(1, 3, 64, 64, dtype=torch.uint8),
        "batch_idx": torch.zeros(len(classes), dtype=torch.long),
        "cls": torch.tensor(classes),
        "bboxes": torch.tensor([TRUTH_XYXY] * len(classes)),
    }


def _grads2(spec: YoloLossSpec, classes: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    raw = torch.zeros(1, 2 * 7, 2, 2, requires_grad=True)
    loss, items = DarknetYoloLoss([spec])([raw], _batch2(classes))
    loss.backward()
    assert raw.grad is not None
    return raw.grad.view(2, 7, 2, 2)[1, :, 1, 0], items  # the positive: anchor 1, row 1, col 0


def test_focal_loss_weighs_the_first_truths_class_deltas() -> None:
    g, items = _grads2(_spec(classes=2, focal_loss=True, label_smooth_eps=0.1), [0])
    # delta = (y - p) * FOCAL_W on every class, label smoothing not applied (Darknet's focal
    # branch ignores it); the gradient is minus the delta
    assert float(FOCAL_W) == pytest.approx(0.298287, abs=1e-6)
    assert (float(g[5]), float(g[6])) == pytest.approx((-0.5 * FOCAL_W, 0.5 * FOCAL_W), rel=1e-5)
    assert float(items[1]) == pytest.approx(2 * FOCAL_W * LN2, rel=1e-5)
    # objectness and box are unchanged by focal_loss
    assert float(g[4]) == pytest.approx(-0.5)
    assert float(g[0]) == pytest.approx(-0.75 * 1.75 * (0.6 - 0.5), rel=1e-5)


def test_counters_per_class_multiply_box_objectness_and_class_deltas() -> None:
    # counters 10, 40 -> multipliers 4 and 1; cls_normalizer 2
    spec = _spec(classes=2, class_multipliers=(4.0, 1.0), cls_normalizer=2.0)
    g, _ = _grads2(spec, [0])
    assert float(g[4]) == pytest.approx(-4 * 0.5)  # objectness: mult * (1 - p)
    assert float(g[0]) == pytest.approx(-4 * 0.75 * 1.75 * (0.6 - 0.5), rel=1e-5)  # box x
    # the truth's class: mult * cls_normalizer * (1 - p); the other class: (0 - p), unweighted
    assert (float(g[5]), float(g[6])) == pytest.approx((-8 * 0.5, 0.5), rel=1e-6)
    g, _ = _grads2(spec, [1])  # class 1: multiplier 1
    assert float(g[4]) == pytest.approx(-0.5)
    assert (float(g[5]), float(g[6])) == pytest.approx((0.5, -2 * 0.5), rel=1e-6)


def test_a_later_truth_at_the_same_cell_sets_its_class_alone() -> None:
    # truths class 1 then class 0 at one cell, multipliers (4, 1), cls_normalizer 2: the first
    # sets both classes (class 1: 1 * 2 * (1 - p), class 0: 0 - p); the second finds its class's
    # delta non-zero and sets it to mult * (1 - p) = 4 * 0.5 (Darknet's early branch)
    spec = _spec(classes=2, class_multipliers=(4.0, 1.0), cls_normalizer=2.0)
    g, _ = _grads2(spec, [1, 0])
    assert (float(g[5]), float(g[6])) == pytest.approx((-4 * 0.5, -2 * 0.5), rel=1e-6)
    assert float(g[4]) == pytest.approx(-4 * 0.5)  # objectness: the last truth's multiplier
    assert float(g[0]) == pytest.approx(-(1 + 4) * 0.75 * 1.75 * 0.1, rel=1e-5)  # both boxes
    g, _ = _grads2(spec, [0, 1])
    assert float(g[4]) == pytest.approx(-1 * 0.5)
    assert (float(g[5]), float(g[6])) == pytest.approx((-8 * 0.5, -1 * 0.5), rel=1e-6)
    # with focal_loss: the first truth's classes get the focal weight, the later one its mult
    spec = _spec(classes=2, class_multipliers=(4.0, 1.0), focal_loss=True)
    g, _ = _grads2(spec, [1, 0])
    assert (float(g[5]), float(g[6])) == pytest.approx((-4 * 0.5, -0.5 * FOCAL_W), rel=1e-5)
    # objectness_smooth: a positive's delta is set (mult * (1 - p)) only where the rule gave 0,
    # by the first truth; here ignore_thresh 0.7 leaves the rule's delta at 0 - p: no multiplier
    spec = _spec(classes=2, class_multipliers=(4.0, 1.0), objectness_smooth=True)
    g, _ = _grads2(spec, [0])
    assert float(g[4]) == pytest.approx(0.5)


@pytest.mark.parametrize("new_coords", [False, True])
@pytest.mark.parametrize("iou_loss", ["mse", "ciou"])
def test_every_option_together_gives_finite_losses_and_gradients(
    new_coords: bool, iou_loss: str
) -> None:
    """Random outputs, truths of three classes crowding a 4x4 grid (several per cell), with
    focal_loss, counters_per_class, iou_thresh, truth_thresh, objectness_smooth and label
    smoothing at once."""
    gen = torch.Generator().manual_seed(0)
    spec = _spec(classes=3, focal_loss=True, class_multipliers=(1.0, 2.5, 7.0), iou_thresh=0.2,
                 objectness_smooth=True, label_smooth_eps=0.1, iou_loss=iou_loss,
                 new_coords=new_coords, max_delta=5.0, ignore_thresh=0.3,
                 truth_thresh=0.4)  # fmt: skip
    raw = torch.randn(2, 2 * 8, 4, 4, generator=gen)
    if new_coords:
        raw = raw.sigmoid()
    raw.requires_grad_(True)
    xy = torch.rand(12, 2, generator=gen) * 40
    batch = {
        "img": torch.zeros(2, 3, 64, 64, dtype=torch.uint8),
        "batch_idx": torch.tensor([0] * 7 + [1] * 5),
        "cls": torch.randint(0, 3, (12,), generator=gen),
        "bboxes": torch.cat([xy, xy + 8 + torch.rand(12, 2, generator=gen) * 16], 1),
    }
    loss, items = DarknetYoloLoss([spec])([raw], batch)
    loss.backward()
    assert raw.grad is not None
    assert torch.isfinite(loss) and torch.isfinite(items).all() and torch.isfinite(raw.grad).all()
    assert float(items[0]) > 0 and float(items[1]) > 0


def test_truth_thresh_makes_every_prediction_over_it_a_positive() -> None:
    # truth_thresh 0.2: anchor 0 in the truth's cell (IoU 0.25) and the positive (0.680672)
    # are over it. Anchor 0 gets objectness and class target 1 and a box term (tw = ln 2);
    # the positive also keeps its own: its box delta is accumulated twice (both pairs)
    raw = _raw()
    loss, _ = DarknetYoloLoss([_spec(truth_thresh=0.2)])([raw], _batch())
    loss.backward()
    assert raw.grad is not None
    g = raw.grad.view(2, 6, 2, 2)
    assert (float(g[0, 4, 1, 0]), float(g[0, 5, 1, 0])) == pytest.approx((-0.5, -0.5))
    assert float(g[0, 0, 1, 0]) == pytest.approx(-0.75 * 1.75 * 0.1, rel=1e-5)
    assert float(g[0, 2, 1, 0]) == pytest.approx(-0.75 * 1.75 * LN2, rel=1e-5)
    assert float(g[1, 0, 1, 0]) == pytest.approx(-2 * 0.75 * 1.75 * 0.1, rel=1e-5)
    assert (float(g[1, 4, 1, 0]), float(g[1, 5, 1, 0])) == pytest.approx((-0.5, -0.5))
    assert float(g[0, 4, 0, 0]) == pytest.approx(0.5)  # IoU 0: pushed to 0 as before
    assert float(g[0, 5, 0, 0]) == 0.0
    # truth_thresh 1 (the stock cfgs'): no such positives
    raw = _raw()
    loss, _ = DarknetYoloLoss([_spec(truth_thresh=1.0)])([raw], _batch())
    loss.backward()
    assert raw.grad is not None
    assert float(raw.grad.view(2, 6, 2, 2)[0, 4, 1, 0]) == pytest.approx(0.5)


def test_truth_thresh_with_objectness_smooth_targets_the_iou_squared() -> None:
    raw = _raw()
    loss, _ = DarknetYoloLoss([_spec(truth_thresh=0.2, objectness_smooth=True)])([raw], _batch())
    loss.backward()
    assert raw.grad is not None
    g = raw.grad.view(2, 6, 2, 2)
    # anchor 0: objectness and class pulled to IoU^2 = 0.0625
    assert (float(g[0, 4, 1, 0]), float(g[0, 5, 1, 0])) == pytest.approx((0.4375, 0.4375))
    # the positive: objectness keeps the hit's delta (not 0), 0.680672^2; its class is then
    # set again by the truth's own positive (Darknet's early return): target 1
    iou = 0.2025 / 0.2975
    assert float(g[1, 4, 1, 0]) == pytest.approx(0.5 - iou**2, abs=1e-6)
    assert float(g[1, 5, 1, 0]) == pytest.approx(-0.5)


def test_spec_errors_name_the_cfg_file_and_line() -> None:
    """train's [yolo] loss keys said '[yolo] 2: max_delta=-1 must be > 0', no file, no line."""
    from detforge.models.darknet.cfg import parse_cfg_text

    text = "[net]\nwidth=32\nheight=32\n[convolutional]\nfilters=6\n[yolo]\nanchors=1,1\n" \
           "classes=1\nmax_delta=-1\n"  # fmt: skip
    section = next(s for s in parse_cfg_text(text, path="x.cfg").layers if s.name == "yolo")
    with pytest.raises(DetforgeError) as e:
        YoloLossSpec.of_section(section)
    assert (e.value.path, e.value.line) == ("x.cfg", 9)
    assert e.value.message == "[yolo]: max_delta=-1 must be > 0"
