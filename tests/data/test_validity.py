"""The one box rule (``detforge.data.validity``): what it refuses, and that readers leave out
exactly those boxes, whatever order the file lists them in."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from detforge.data.validity import MAX_COORD, box_codes
from detforge.formats.coco import read_coco


def test_codes_follow_the_rule() -> None:
    rows = [
        [1, 2, 3, 4],
        [1, 2, 0, 4],
        [1, 2, -3, 4],
        [1, np.nan, 3, 4],
        [1, 2, np.inf, 4],
        [1, 2, 3, MAX_COORD * 2],
    ]
    assert box_codes(rows).tolist() == [
        "",
        "box-zero-size",
        "box-zero-size",
        "box-not-finite",
        "box-not-finite",
        "box-coordinate-huge",
    ]


def test_coco_leaves_out_exactly_the_bad_annotations_in_any_order(tmp_path: Path) -> None:
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 100, "height": 100} for i in (1, 2)]
    bboxes = [[1, 1, 10, 10], [2, 2, 0, 5], [3, 3, 20, 20], [4, 4, 5, None], [5, 5, 6, 6]]
    anns = [  # alternating images: the reader re-orders boxes by image
        {"id": 10 + k, "image_id": 1 + k % 2, "category_id": 1, "bbox": b}
        for k, b in enumerate(bboxes)
    ]
    p = tmp_path / "gt.json"
    p.write_text(json.dumps({"images": images, "annotations": anns, "categories": [{"id": 1}]}))
    ds = read_coco(p)
    kept = sorted(map(tuple, ds.boxes.coords.tolist()))
    assert kept == [(1, 1, 10, 10), (3, 3, 20, 20), (5, 5, 6, 6)]
    left = [(b.record, b.code) for b in ds.meta["invalid_boxes"]]
    assert left == [
        ("annotation #1 (id 11)", "box-zero-size"),
        ("annotation #3 (id 13)", "box-not-finite"),
    ]
