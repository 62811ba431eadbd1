"""The console report's first line: what was scored, in plain words, with exact numbers."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from detforge.data.dataset import Dataset, make_dataset
from detforge.eval.api import evaluate
from detforge.eval.report import format_report


def _gt() -> Dataset:
    """Images a, b (valid) and c (train): a holds 2 boxes, b 1, c 1."""
    return make_dataset(
        ["cat"],
        paths=["a.jpg", "b.jpg", "c.jpg"],
        splits=["valid", "valid", "train"],
        box_image=[0, 0, 1, 2],
        box_cls=[0] * 4,
        box_coords=[[0.3, 0.3, 0.2, 0.2], [0.7, 0.7, 0.2, 0.2]] + [[0.5, 0.5, 0.2, 0.2]] * 2,
    )


def _pred(boxes_on: list[int], paths: tuple[str, ...] = ("a.jpg", "b.jpg", "c.jpg")) -> Dataset:
    """One prediction (the box 0.5 0.5 0.2 0.2, score 0.9) on each image row in
    ``boxes_on``."""
    return make_dataset(
        ["cat"],
        paths=list(paths),
        box_image=boxes_on,
        box_cls=[0] * len(boxes_on),
        box_coords=[[0.5, 0.5, 0.2, 0.2]] * len(boxes_on),
        score=[0.9] * len(boxes_on),
    )


def _head(gt: Dataset, pred: Dataset, **kw: Any) -> str:
    return format_report(evaluate(gt, pred, protocol="darknet", **kw)).splitlines()[0]


@pytest.mark.parametrize(
    ("boxes_on", "every", "head"),
    [
        ([0, 0, 1, 2], 1, "3 ground-truth images (3 with predictions), 4 ground-truth boxes, "
         "4 predictions"),
        # the predictions cover 1 of the 3 images (it said '3 images (1 in 1)')
        ([1], 1, "3 ground-truth images (1 with predictions), 4 ground-truth boxes, "
         "1 prediction"),
        ([], 1, "3 ground-truth images (0 with predictions), 4 ground-truth boxes, "
         "0 predictions"),
        # --every 2 scores a and c: b's prediction is not scored
        ([0, 1], 2, "2 of 3 ground-truth images (1 in every 2; 1 with predictions), "
         "3 ground-truth boxes, 1 prediction"),
        ([1], 3, "1 of 3 ground-truth images (1 in every 3; 0 with predictions), "
         "2 ground-truth boxes, 0 predictions"),
    ],
)  # fmt: skip
def test_head_counts_the_images_scored_and_those_with_predictions(
    boxes_on: list[int], every: int, head: str
) -> None:
    assert _head(_gt(), _pred(boxes_on), every=every, ignore_unmatched=True) == f"scored: {head}"


def test_head_of_the_split_the_predictions_were_made_on() -> None:
    """Predictions made on 'valid' (a and b) score that split of a two-split ground truth:
    its 2 images are what --every counts in."""
    pred = _pred([0], paths=("a.jpg", "b.jpg"))
    pred = replace(pred, meta={"split": "valid"})
    assert _head(_gt(), pred) == (
        "scored: 2 ground-truth images (1 with predictions), 3 ground-truth boxes, 1 "
        "prediction (the 'valid' split the predictions were made on)"
    )
    assert _head(_gt(), pred, every=2) == (
        "scored: 1 of 2 ground-truth images (1 in every 2; 1 with predictions), 2 ground-truth "
        "boxes, 1 prediction (the 'valid' split the predictions were made on)"
    )


def test_head_with_one_image_is_singular() -> None:
    gt = _gt().select([1])
    assert _head(gt, _pred([0], paths=("b.jpg",))) == (
        "scored: 1 ground-truth image (1 with predictions), 1 ground-truth box, 1 prediction"
    )


def test_predictions_on_images_outside_the_ground_truth_are_not_counted() -> None:
    """A prediction on z.jpg (no ground-truth image) is in the warning, not in the head."""
    pred = _pred([0, 1], paths=("a.jpg", "z.jpg"))
    lines = format_report(evaluate(_gt(), pred, protocol="darknet", ignore_unmatched=True))
    assert lines.splitlines()[0] == (
        "scored: 3 ground-truth images (1 with predictions), 4 ground-truth boxes, 1 prediction"
    )
    assert "warning: 1 of 2 predictions match no ground-truth image or class" in lines
