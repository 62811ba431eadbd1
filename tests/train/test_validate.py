"""Validation: perfect predictions scored 1.0 by the engine (the letterbox inverse is tested in
tests/data/test_letterbox.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from detforge.data.synthetic import generate_shapes_dataset
from detforge.formats.darknet import read_darknet
from detforge.train.dataloader import create_dataloader
from detforge.train.validate import predictions_dataset, run_validation


class _Oracle(nn.Module):
    """Eval-mode stand-in for a detector: returns prepared ``(B, A, 4 + C)`` outputs in turn."""

    def __init__(self, outputs: list[torch.Tensor]) -> None:
        super().__init__()
        self.outputs = outputs
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outputs.pop(0)


def _oracle_outputs(batches: list[dict[str, Any]], nc: int, noise: float) -> list[torch.Tensor]:
    outs = []
    for b in batches:
        n = int(b["img"].shape[0])
        per = [int((b["batch_idx"] == i).sum()) for i in range(n)]
        a = max(max(per), 1)
        out = torch.zeros(n, a, 4 + nc)
        for i in range(n):
            sel = b["batch_idx"] == i
            k = int(sel.sum())
            out[i, :k, :4] = b["bboxes"][sel] + noise
            out[i, torch.arange(k), 4 + b["cls"][sel]] = 0.9
        outs.append(out)
    return outs


def test_perfect_predictions_score_one(tmp_path: Path) -> None:
    data = generate_shapes_dataset(tmp_path / "ds", num_images=10, imgsz=(96, 64), seed=3)
    gt = read_darknet(data).split("valid")
    assert gt.num_boxes > 0
    loader = create_dataloader(gt, imgsz=64, batch_size=2, cache="none")
    batches = list(loader)
    model = _Oracle(_oracle_outputs(batches, gt.num_classes, 0.0))
    res = run_validation(model, gt, batches, device=torch.device("cpu"), preview=2)
    assert res.map50 == pytest.approx(1.0) and res.map50_95 > 0.95
    assert len(res.preview) == 2 and res.preview[0][0].shape[2] == 3
    # shifted by 40% of a box everywhere: nothing matches at IoU 0.5 any more
    model = _Oracle(_oracle_outputs(batches, gt.num_classes, 12.0))
    res = run_validation(model, gt, batches, device=torch.device("cpu"))
    assert res.map50 < 0.5


def test_predictions_dataset_keeps_gt_ids(tmp_path: Path) -> None:
    data = generate_shapes_dataset(tmp_path / "ds", num_images=6, imgsz=(64, 64), seed=1)
    gt = read_darknet(data)
    path = str(gt.images.path[2])
    pred = predictions_dataset(
        gt, {path: (np.array([[1.0, 2, 3, 4]]), np.array([0.5]), np.array([1]))}
    )
    assert pred.num_images == gt.num_images and list(pred.images.id) == list(gt.images.id)
    assert pred.boxes.image.tolist() == [2] and pred.boxes.score.tolist() == [0.5]
