"""DetectionLoss: exact predictions, empty batches, gradients, overfitting one batch."""

from __future__ import annotations

import math

import pytest
import torch

from detforge.models.box_ops import make_anchors
from detforge.models.yolo import create_model
from detforge.train.loss import DetectionLoss, pad_targets

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class _Spec:
    num_classes = 2
    reg_max = 16
    strides = (8, 16, 32)


def _perfect_outputs(gt: torch.Tensor, size: int = 64) -> list[torch.Tensor]:
    """Raw maps whose decoded box at every anchor is exactly ``gt`` (xyxy pixels)."""
    r, c = 16, 2
    outs = []
    for s in (8, 16, 32):
        n = size // s
        pts, _ = make_anchors([(n, n)], [s])
        dist = torch.cat((pts - gt[:2] / s, gt[2:] / s - pts), 1).clamp(0, r - 1.01)  # (n*n, 4)
        left = dist.floor().long()
        wr = dist - left
        logits = torch.full((n * n, 4, r), -1e4)
        idx = torch.arange(n * n)[:, None].expand(-1, 4)
        side = torch.arange(4)[None].expand(n * n, -1)
        logits[idx, side, left] = torch.log((1 - wr).clamp(min=1e-12))
        logits[idx, side, left + 1] = torch.log(wr.clamp(min=1e-12))
        cls = torch.full((n * n, c), -6.0)
        cls[:, 1] = 6.0
        raw = torch.cat((logits.view(n * n, 4 * r), cls), 1).t().reshape(1, 4 * r + c, n, n)
        outs.append(raw)
    return outs


def test_box_loss_is_zero_for_exact_predictions() -> None:
    gt = torch.tensor([16.0, 16.0, 48.0, 40.0])
    batch = {
        "batch_idx": torch.tensor([0]),
        "cls": torch.tensor([1]),
        "bboxes": gt[None],
    }
    loss, items = DetectionLoss(_Spec())(_perfect_outputs(gt), batch)  # type: ignore[arg-type]
    assert items[0].item() < 1e-4  # CIoU loss of an exact box
    assert math.isfinite(loss.item()) and loss.item() > 0  # class and DFL terms remain


def test_finite_without_targets_and_gradients_flow() -> None:
    torch.manual_seed(0)
    model = create_model("n", 2).train()
    x = torch.rand(2, 3, 64, 64)
    empty = {
        "batch_idx": torch.zeros(0, dtype=torch.long),
        "cls": torch.zeros(0, dtype=torch.long),
        "bboxes": torch.zeros(0, 4),
    }
    loss_fn = DetectionLoss(model)
    loss, items = loss_fn(model(x), empty)
    assert math.isfinite(loss.item()) and items[0] == 0 and items[2] == 0 and items[1] > 0
    loss.backward()
    assert model.head.cls[0][-1].weight.grad.abs().sum() > 0  # type: ignore[index,union-attr]
    model.zero_grad()
    batch = {
        "batch_idx": torch.tensor([0, 1]),
        "cls": torch.tensor([0, 1]),
        "bboxes": torch.tensor([[8.0, 8.0, 40.0, 56.0], [30.0, 20.0, 60.0, 44.0]]),
    }
    loss, items = loss_fn(model(x), batch)
    assert (items > 0).all() and loss.requires_grad
    loss.backward()
    stem = model.backbone.stem.conv.weight.grad  # type: ignore[union-attr]
    box_out = model.head.box[0][-1].weight.grad  # type: ignore[index,union-attr]
    assert stem is not None and stem.abs().sum() > 0 and box_out.abs().sum() > 0


@pytest.mark.slow
def test_overfitting_one_batch_lowers_loss_and_detects_the_boxes() -> None:
    from torchvision.ops import box_iou

    from detforge.models.postprocess import postprocess

    torch.manual_seed(0)
    model = create_model("n", 3).train()
    x = torch.rand(2, 3, 64, 64)
    gt = torch.tensor([[4.0, 4.0, 30.0, 36.0], [34.0, 30.0, 62.0, 60.0], [10, 12, 50, 44]])
    batch = {"batch_idx": torch.tensor([0, 0, 1]), "cls": torch.tensor([0, 2, 1]), "bboxes": gt}
    loss_fn = DetectionLoss(model)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    history = []
    for _ in range(50):
        loss, _ = loss_fn(model(x), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(loss.item())
    assert history[-1] < 0.4 * history[0]
    assert min(history[-5:]) < min(history[:5])
    # the eval decode agrees with the loss's box convention: decoding the trained maps (batch
    # statistics, as after 50 steps the running ones lag behind) finds every box and class
    with torch.no_grad():
        feats = model.neck(model.backbone(x))
        dets = postprocess(model.decode(model.head.forward_split(feats)), conf=0.3, iou=0.5)
    for img, idx in ((0, [0, 1]), (1, [2])):
        boxes, _, classes = dets[img]
        iou = box_iou(gt[idx], boxes)  # (truth, detections)
        best = iou.argmax(1)
        assert (iou.max(1).values > 0.5).all()
        assert classes[best].tolist() == batch["cls"][idx].tolist()


def test_pad_targets() -> None:
    labels, boxes, mask = pad_targets(
        torch.tensor([2, 0, 2]), torch.tensor([5, 6, 7]), torch.arange(12.0).view(3, 4), 3
    )
    assert labels.tolist() == [[6, 0], [0, 0], [5, 7]]
    assert mask.tolist() == [[True, False], [False, False], [True, True]]
    assert boxes[2, 1].tolist() == [8.0, 9.0, 10.0, 11.0]
