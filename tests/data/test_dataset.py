from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from detforge.data.boxes import BoxFormat
from detforge.data.dataset import (
    canonical_split,
    concat_datasets,
    make_dataset,
    per_image,
    source_of,
)


def _tiny():
    return make_dataset(
        ["cat", "dog"],
        paths=["a.jpg", "b.jpg", "c.jpg"],
        widths=[100, 200, 50],
        heights=[50, 100, 50],
        splits=["train", "val", "train"],
        box_image=[2, 0, 0],
        box_cls=[1, 0, 1],
        box_coords=[[0.5, 0.5, 1.0, 1.0], [0.5, 0.5, 0.2, 0.2], [0.1, 0.1, 0.1, 0.1]],
    )


def test_boxes_sorted_by_image_and_split_canonical() -> None:
    ds = _tiny()
    assert ds.boxes.image.tolist() == [0, 0, 2]
    assert ds.boxes.cls.tolist() == [0, 1, 1]
    assert ds.images.split.tolist() == ["train", "valid", "train"]
    assert ds.splits() == ["train", "valid"]
    assert canonical_split("VAL") == "valid"


def test_select_reindexes_boxes() -> None:
    ds = _tiny()
    sub = ds.select([2, 0])
    assert sub.images.path.tolist() == ["c.jpg", "a.jpg"]
    assert sub.boxes.image.tolist() == [0, 1, 1]
    assert sub.boxes.cls.tolist() == [1, 0, 1]
    assert ds.split("val").num_images == 1
    assert ds.split("val").num_boxes == 0


def test_with_format_uses_each_image_size() -> None:
    ds = _tiny().with_format(BoxFormat.XYXY_PIXEL)
    np.testing.assert_allclose(ds.boxes.coords[2], [0, 0, 50, 50])
    np.testing.assert_allclose(ds.boxes.coords[0], [40, 20, 60, 30])
    back = ds.with_format(BoxFormat.CXCYWH_NORM)
    np.testing.assert_allclose(back.boxes.coords, _tiny().boxes.coords)


def test_with_format_needs_sizes() -> None:
    ds = make_dataset(
        ["x"], paths=["a.jpg"], box_image=[0], box_cls=[0], box_coords=[[0.5, 0.5, 0.1, 0.1]]
    )
    with pytest.raises(ValueError, match="image sizes are unknown"):
        ds.with_format(BoxFormat.XYXY_PIXEL)


def test_concat_offsets_images() -> None:
    ds = _tiny()
    both = concat_datasets([ds.split("train"), ds.split("valid")])
    assert both.num_images == 3 and both.num_boxes == 3
    assert both.images.path[both.boxes.image].tolist() == ["a.jpg", "a.jpg", "c.jpg"]


def test_source_classes_travel_with_the_dataset() -> None:
    src = (("car", 3), ("dog", 18))
    ds = make_dataset(
        ["car", "dog"],
        paths=["a.jpg", "b.jpg"],
        splits=["train", "valid"],
        box_image=[0, 1],
        box_cls=[1, 0],
        box_coords=[[0.5, 0.5, 0.1, 0.1]] * 2,
        source_classes=src,
    )
    assert ds.source_classes == src
    assert ds.split("valid").source_classes == src
    assert concat_datasets([ds.split("train"), ds.split("valid")]).source_classes == src
    other = make_dataset(["car", "dog"], paths=["c.jpg"], source_classes=(("car", 1), ("dog", 2)))
    assert concat_datasets([ds, other]).source_classes is None  # the parts disagree
    with pytest.raises(ValueError, match="repeats an id"):
        make_dataset(["a", "b"], paths=[], source_classes=(("a", 1), ("b", 1)))


def test_concat_stacks_what_each_part_left_out_and_per_image_lists() -> None:
    """One part per split (a COCO folder, one JSON each): every part's left-out boxes, notes
    and label paths stay (the last part's used to replace the others')."""
    ds = _tiny()
    train = replace(ds.split("train"), meta={
        "source": "instances_train.json", "invalid_boxes": ["t1", "t2"], "notes": ["n"],
        "label_paths": ["a.txt", "c.txt"], "coco_licenses": [{"id": 1}],
    })  # fmt: skip
    valid = replace(ds.split("valid"), meta={
        "source": "instances_val.json", "invalid_boxes": ["v1"], "coco_licenses": [{"id": 1}],
    })  # fmt: skip
    meta = concat_datasets([train, valid]).meta
    assert meta["invalid_boxes"] == ["t1", "t2", "v1"] and meta["notes"] == ["n"]
    assert "label_paths" not in meta  # one entry per image, and valid has none
    assert meta["source"] == "instances_val.json" and meta["coco_licenses"] == [{"id": 1}]
    valid = replace(valid, meta={**valid.meta, "label_paths": ["b.txt"]})
    assert concat_datasets([train, valid]).meta["label_paths"] == ["a.txt", "c.txt", "b.txt"]


def test_select_keeps_the_per_image_lists_of_the_images_it_keeps() -> None:
    """Each image's annotation file (``json_paths`` ...) follows it through select/split; a
    list not one entry per image is dropped (it belongs to other images)."""
    ds = replace(_tiny(), meta={
        "source": "coco", "json_paths": ["t.json", "v.json", "t.json"],
        "records": [("t.rec", 0), ("v.rec", 0), ("t.rec", 1)], "label_paths": ["a.txt"],
        "invalid_boxes": ["kept whole"],
    })  # fmt: skip
    sub = ds.select([2, 0])
    assert sub.meta["json_paths"] == ["t.json", "t.json"] and "label_paths" not in sub.meta
    assert sub.meta["records"] == [("t.rec", 1), ("t.rec", 0)]
    assert sub.meta["invalid_boxes"] == ["kept whole"] and ds.meta["json_paths"][1] == "v.json"
    assert per_image(ds.split("val"), "json_paths") == ["v.json"]
    assert per_image(ds, "label_paths") is None  # 1 entry for 3 images
    assert source_of(ds.split("train")) == "t.json" and source_of(ds) == "coco"
    assert source_of(replace(ds.split("val"), meta={"records": [("v.rec", 0)]})) == "v.rec"
    assert source_of(replace(ds, meta={})) is None


def test_concat_stacks_each_files_image_info_flag_and_json_paths() -> None:
    """A COCO folder whose val file has no annotations: that file is listed, train's is not
    (the last file's flag stood for every file)."""
    ds = _tiny()
    train = replace(ds.split("train"), meta={
        "source": "t.json", "json_paths": ["t.json"] * 2, "coco_image_info": [],
    })  # fmt: skip
    valid = replace(ds.split("valid"), meta={
        "source": "v.json", "json_paths": ["v.json"], "coco_image_info": ["v.json"],
    })  # fmt: skip
    meta = concat_datasets([train, valid]).meta
    assert meta["coco_image_info"] == ["v.json"]
    assert meta["json_paths"] == ["t.json", "t.json", "v.json"]
