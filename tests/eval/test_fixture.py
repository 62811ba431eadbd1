"""The COCO fixture (real val2014 GT + detections) reproduces pycocotools' printed stats."""

from __future__ import annotations

import json
from pathlib import Path

from detforge.eval import evaluate, read_predictions
from detforge.formats.coco import read_coco


def test_fixture_reproduces_expected_stats_exactly(ref_data: Path) -> None:
    d = ref_data / "coco-fixture"
    gt = read_coco(d / "gt.json")
    pred = read_predictions(d / "dets.json", gt)
    res = evaluate(gt, pred, protocol="coco")
    expected = json.loads((d / "expected.json").read_text())["stats"]
    assert res["coco"]["stats"] == expected  # bit-identical floats, all 12 keys
    assert res["unmatched"]["boxes"] == 0
    assert res["images"] == 100 and res["gt_boxes"] == 830 and res["pred_boxes"] == 734
