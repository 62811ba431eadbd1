"""Task-aligned assignment on hand-made anchors and boxes."""

from __future__ import annotations

import torch

from detforge.train.assigner import assign


def _grid(n: int = 8, stride: float = 8.0) -> torch.Tensor:
    """(n*n, 2) cell centres of an n x n grid in pixels (row-major)."""
    ys, xs = torch.meshgrid(torch.arange(n) + 0.5, torch.arange(n) + 0.5, indexing="ij")
    return torch.stack((xs, ys), -1).reshape(-1, 2) * stride


def test_positives_are_inside_and_best_aligned() -> None:
    pts = _grid()  # 64 anchors, centres 4, 12, ..., 60
    a = pts.shape[0]
    gt = torch.tensor([[[8.0, 8.0, 40.0, 40.0]]])  # contains centres 12..36: 4x4 = 16 anchors
    pred_scores = torch.full((1, a, 2), 0.5)
    pred_boxes = pts.repeat(1, 2).view(1, a, 4) + torch.tensor([-12.0, -12.0, 12.0, 12.0])
    # three anchors predict the truth exactly and confidently: they must be among the positives
    good = [18, 19, 27]  # (x, y) = (20, 20), (28, 20), (28, 28)
    pred_boxes[0, good] = gt[0, 0]
    pred_scores[0, good, 1] = 0.9
    out = assign(
        pred_scores,
        pred_boxes,
        pts,
        torch.tensor([[1]]),
        gt,
        torch.tensor([[True]]),
        topk=5,
    )
    fg = out.fg[0].nonzero().flatten().tolist()
    assert set(good) <= set(fg) and len(fg) == 5
    centres = pts[fg]
    assert ((centres > 8) & (centres < 40)).all()  # all inside the box
    assert (out.labels[0, fg] == 1).all()
    assert torch.equal(out.boxes[0, fg], gt[0, 0].expand(5, 4))
    # the best-aligned anchor's soft target equals the box's best IoU (1.0 here)
    assert torch.isclose(out.scores[0, fg, 1].max(), torch.tensor(1.0), atol=1e-4)
    assert (out.scores[0, fg, 0] == 0).all()
    bg = ~out.fg[0]
    assert (out.scores[0, bg] == 0).all() and (out.labels[0, bg] == 0).all()


def test_multi_assignment_goes_to_highest_iou() -> None:
    pts = torch.tensor([[20.0, 20.0], [100.0, 100.0]])
    gts = torch.tensor([[[0.0, 0.0, 40.0, 40.0], [10.0, 10.0, 30.0, 30.0]]])
    pred_scores = torch.full((1, 2, 3), 0.5)
    pred_boxes = torch.tensor([[[11.0, 11.0, 31.0, 31.0], [90.0, 90.0, 110.0, 110.0]]])
    out = assign(
        pred_scores,
        pred_boxes,
        pts,
        torch.tensor([[0, 2]]),
        gts,
        torch.tensor([[True, True]]),
        topk=10,
    )
    # anchor 0 lies in both boxes; its prediction overlaps the small box far better
    assert out.fg.tolist() == [[True, False]]
    assert out.gt_index[0, 0].item() == 1 and out.labels[0, 0].item() == 2
    assert torch.equal(out.boxes[0, 0], gts[0, 1])


def test_padding_rows_and_empty_images_are_ignored() -> None:
    pts = _grid(4, 16.0)
    a = pts.shape[0]
    gts = torch.tensor([[[0.0, 0.0, 64.0, 64.0]], [[0.0, 0.0, 64.0, 64.0]]])
    mask = torch.tensor([[False], [True]])  # image 0 has only a padding row
    out = assign(
        torch.full((2, a, 1), 0.5),
        pts.repeat(1, 2).view(1, a, 4).expand(2, -1, -1) + torch.tensor([-8.0, -8, 8, 8]),
        pts,
        torch.zeros(2, 1, dtype=torch.long),
        gts,
        mask,
    )
    assert not out.fg[0].any() and out.scores[0].sum() == 0
    assert out.fg[1].sum() == 10
    none = assign(
        torch.full((1, a, 1), 0.5),
        torch.zeros(1, a, 4),
        pts,
        torch.zeros(1, 0, dtype=torch.long),
        torch.zeros(1, 0, 4),
        torch.zeros(1, 0, dtype=torch.bool),
    )
    assert not none.fg.any() and none.scores.shape == (1, a, 1)


def test_per_image_mode_matches_batched() -> None:
    g = torch.Generator().manual_seed(0)
    pts = _grid(8, 8.0)
    a = pts.shape[0]
    xy = torch.rand(2, 5, 2, generator=g) * 40
    gts = torch.cat((xy, xy + 8 + torch.rand(2, 5, 2, generator=g) * 24), -1)
    mask = torch.tensor([[True] * 5, [True, False, True, True, False]])  # padding mid-row
    labels = torch.randint(0, 3, (2, 5), generator=g)
    scores = torch.rand(2, a, 3, generator=g)
    boxes = pts.repeat(1, 2).view(1, a, 4) + torch.rand(2, a, 4, generator=g) * 20 - 10
    boxes = torch.cat(
        (boxes[..., :2].minimum(boxes[..., 2:]), boxes[..., 2:].maximum(boxes[..., :2])), -1
    )
    full = assign(scores, boxes, pts, labels, gts, mask)
    split = assign(scores, boxes, pts, labels, gts, mask, max_elements=1)
    assert full.fg.sum() > 5
    for x, y in zip(full, split, strict=True):
        assert torch.equal(x, y)
