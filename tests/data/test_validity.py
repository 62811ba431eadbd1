"""The one box rule (``detforge.data.validity``): what it refuses, that readers leave out
exactly those boxes, whatever order the file lists them in, and which image and split each
left-out entry belongs to."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from detforge.data.dataset import make_dataset
from detforge.data.validity import (
    MAX_COORD,
    InvalidBox,
    box_codes,
    invalid_boxes,
    left_out_note,
    screen_label_boxes,
)
from detforge.formats.coco import read_coco
from detforge.formats.detect import read_ground_truth
from tests.formats.fmt_helpers import make_split_sources


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


def test_entries_count_only_for_the_images_a_cut_dataset_holds() -> None:
    """A dataset read whole and cut to a split (or to some images) keeps the reader's whole
    list; :func:`invalid_boxes` and the note count what belongs to the images it holds, by
    path and split (x.jpg in two splits: its train box is not valid's)."""
    ds = make_dataset(
        ["cat"],
        paths=["x.jpg", "y.jpg", "x.jpg"],
        splits=["train", "valid", "valid"],
        box_image=[0, 0, 1, 2],
        box_cls=[0] * 4,
        box_coords=[[0.5, 0.5, 0, 0.2], [0.5, 0.5, 0.2, 0], [0.5, 0.5, 0, 0.1], [0.5] * 4],
    )
    ds = screen_label_boxes(ds, ["tr/x.txt", "va/y.txt", "va/x.txt"])
    assert ds.num_boxes == 1 and len(ds.meta["invalid_boxes"]) == 3
    note = (
        "{} ground-truth box(es) or image size(s){} the reader left out are not scored "
        "(first: {}: box-zero-size: {}; see detforge check)"
    )
    assert left_out_note(ds) == note.format(3, "", "tr/x.txt: box 1", "0 0.5 0.5 0 0.2")
    valid = ds.split("valid")
    assert [b.path for b in invalid_boxes(valid)] == ["va/y.txt"]
    assert left_out_note(valid) == note.format(
        1, " of the 'valid' split", "va/y.txt: box 1", "0 0.5 0.5 0 0.1"
    )
    assert left_out_note(ds.split("train")) == note.format(
        2, " of the 'train' split", "tr/x.txt: box 1", "0 0.5 0.5 0 0.2"
    )
    assert left_out_note(valid.select([1])) is None  # valid's x.jpg: nothing left out
    # an entry naming no image (a reader that cannot tell) belongs to every part
    unknown = InvalidBox("box-zero-size", "old.txt", "box 1", "0 0 0 0 0")
    listed = replace(valid, meta={**valid.meta, "invalid_boxes": [unknown]})
    assert invalid_boxes(listed.select([1])) == [unknown]


def test_voc_size_entries_belong_to_their_split(tmp_path: Path) -> None:
    """An impossible <size> in b.xml (the 'val' list) is valid's, with b's zero-size box."""
    voc = make_split_sources(tmp_path)["voc"]
    xml = voc / "Annotations" / "b.xml"
    xml.write_text(xml.read_text().replace("<width>100</width>", "<width>-5</width>"))
    valid, _ = read_ground_truth(voc, split="valid")
    assert [(b.code, b.path, b.split) for b in invalid_boxes(valid)] == [
        ("image-size-impossible", str(xml), "valid"),
        ("box-zero-size", str(xml), "valid"),
    ]
    train, _ = read_ground_truth(voc, split="train")
    assert {b.code for b in invalid_boxes(train)} == {"box-zero-size"}
    assert len(invalid_boxes(train)) == 2
