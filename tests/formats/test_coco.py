"""COCO instances JSON: read_coco / write_coco, checked against pycocotools' own reading."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from detforge.data.boxes import BoxFormat
from detforge.data.dataset import make_dataset
from detforge.errors import DetforgeError
from detforge.formats.coco import coco_category_ids, read_coco, write_coco


def coco_doc() -> dict[str, Any]:
    return {
        "info": {"description": "tiny"},
        "licenses": [{"id": 1, "name": "x"}],
        "images": [
            {"id": 42, "file_name": "b.jpg", "width": 200, "height": 100},
            {"id": 7, "file_name": "a.jpg", "width": 50, "height": 40},
            {"id": 9, "file_name": "empty.jpg", "width": 10, "height": 10},
        ],
        "categories": [{"id": 18, "name": "dog"}, {"id": 3, "name": "car"}],
        "annotations": [
            {"id": 1, "image_id": 42, "category_id": 18, "bbox": [10.5, 20.25, 30, 40],
             "area": 999.5, "iscrowd": 0},
            {"id": 2, "image_id": 7, "category_id": 3, "bbox": [1, 2, 3, 4], "area": 12,
             "iscrowd": 1},
            {"id": 3, "image_id": 42, "category_id": 3, "bbox": [0, 0, 200, 100],
             "iscrowd": 0},
        ],
    }  # fmt: skip


def test_read_keeps_ids_crowd_area_and_exact_boxes(tmp_path: Path) -> None:
    (tmp_path / "annotations").mkdir()
    (tmp_path / "val2017").mkdir()
    path = tmp_path / "annotations" / "instances_val2017.json"
    path.write_text(json.dumps(coco_doc()))
    ds = read_coco(path)
    assert ds.class_names == ("car", "dog")  # category ids in increasing order: 3, 18
    assert ds.source_classes == (("car", 3), ("dog", 18))
    assert coco_category_ids(ds) == [3, 18]
    assert ds.images.id.tolist() == [42, 7, 9]
    assert ds.images.path.tolist() == [
        str(tmp_path / "val2017" / n) for n in ("b.jpg", "a.jpg", "empty.jpg")
    ]
    assert set(ds.images.split.tolist()) == {"valid"}
    assert ds.boxes.format is BoxFormat.XYWH_PIXEL
    rows = {tuple(c): (int(i), int(k), bool(cr), a) for c, i, k, cr, a in zip(
        ds.boxes.coords.tolist(), ds.boxes.image, ds.boxes.cls, ds.boxes.crowd, ds.boxes.area,
        strict=True)}  # fmt: skip
    assert rows[(10.5, 20.25, 30.0, 40.0)][:3] == (0, 1, False)
    assert rows[(10.5, 20.25, 30.0, 40.0)][3] == 999.5
    assert rows[(1.0, 2.0, 3.0, 4.0)][:3] == (1, 0, True)
    assert np.isnan(rows[(0.0, 0.0, 200.0, 100.0)][3])  # no area field -> NaN
    assert ds.meta["coco_info"] == {"description": "tiny"}


def test_read_errors_name_the_problem(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    doc = coco_doc()
    doc["annotations"][0]["category_id"] = 5
    p.write_text(json.dumps(doc))
    with pytest.raises(DetforgeError, match="category_id 5"):
        read_coco(p)
    doc = coco_doc()
    doc["annotations"][0]["image_id"] = 1234
    p.write_text(json.dumps(doc))
    with pytest.raises(DetforgeError, match="image ids"):
        read_coco(p)
    p.write_text('[{"image_id": 1}]')
    with pytest.raises(DetforgeError, match="not a COCO instances file"):
        read_coco(p)
    p.write_text('{"images": [')
    with pytest.raises(DetforgeError, match="not valid JSON"):
        read_coco(p)
    with pytest.raises(DetforgeError, match="not found"):
        read_coco(tmp_path / "missing.json")


def test_write_round_trips_and_pycocotools_reads_it(tmp_path: Path) -> None:
    src = tmp_path / "src.json"
    src.write_text(json.dumps(coco_doc()))
    ds = read_coco(src, split="val")
    out = write_coco(ds, tmp_path / "out", images="none")
    assert list(out) == ["valid"]
    path = out["valid"]
    assert path == tmp_path / "out" / "annotations" / "instances_val.json"
    doc = json.loads(path.read_text())
    assert {c["id"]: c["name"] for c in doc["categories"]} == {3: "car", 18: "dog"}
    assert doc["info"] == {"description": "tiny"} and doc["licenses"] == [{"id": 1, "name": "x"}]
    back = read_coco(path)
    assert back.class_names == ds.class_names
    assert back.images.id.tolist() == [42, 7, 9]
    assert np.array_equal(back.boxes.coords, ds.boxes.coords)
    assert back.boxes.crowd.tolist() == ds.boxes.crowd.tolist()
    # boxes are stored by image: ann 1 and 3 (image 42), then ann 2; a missing area -> w*h.
    assert back.boxes.area.tolist() == [999.5, 200.0 * 100.0, 12.0]

    # pycocotools reads it, and GT-as-detections scores AP 1 (crowd ignored).
    pycoco = pytest.importorskip("pycocotools.coco")
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = pycoco.COCO(str(path))
        res = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
                "score": 1.0} for a in doc["annotations"] if not a["iscrowd"]]  # fmt: skip
        e = COCOeval(gt, gt.loadRes(res), "bbox")
        e.evaluate()
        e.accumulate()
        e.summarize()
    assert e.stats[1] == pytest.approx(1.0, abs=1e-12)


def test_write_from_normalized_boxes_uses_sizes_and_default_ids(tmp_path: Path) -> None:
    img = tmp_path / "pics" / "p.jpg"
    img.parent.mkdir()
    img.write_bytes(b"not really an image")
    ds = make_dataset(
        ["cat", "dog"],
        paths=[str(img)],
        widths=[200],
        heights=[100],
        splits=["train"],
        box_image=[0],
        box_cls=[1],
        box_coords=[[0.5, 0.5, 0.5, 0.2]],
        box_format=BoxFormat.CXCYWH_NORM,
    )
    out = write_coco(ds, tmp_path / "out", images="copy")
    doc = json.loads(out["train"].read_text())
    assert [c["id"] for c in doc["categories"]] == [1, 2]
    (ann,) = doc["annotations"]
    assert ann["bbox"] == [50.0, 40.0, 100.0, 20.0]
    assert ann["area"] == 2000.0 and ann["category_id"] == 2 and ann["iscrowd"] == 0
    assert (tmp_path / "out" / "train" / "p.jpg").read_bytes() == b"not really an image"
    assert doc["images"][0]["file_name"] == "p.jpg"
    back = read_coco(out["train"])
    assert back.images.path.tolist() == [str(tmp_path / "out" / "train" / "p.jpg")]
    assert back.images.split.tolist() == ["train"]


def test_write_matches_categories_by_name_after_class_changes(tmp_path: Path) -> None:
    from dataclasses import replace

    src = tmp_path / "src.json"
    src.write_text(json.dumps(coco_doc()))
    ds = read_coco(src)
    # Reorder and extend the classes: car keeps 3, dog keeps 18, a new class gets 19.
    changed = replace(ds, class_names=("dog", "car", "bird"))
    doc = json.loads(write_coco(changed, tmp_path / "o", images="none")[""].read_text())
    assert [(c["name"], c["id"]) for c in doc["categories"]] == [
        ("dog", 18),
        ("car", 3),
        ("bird", 19),
    ]


def test_write_has_no_float_noise_from_normalized_boxes(tmp_path: Path) -> None:
    # 0.287011 * 1280 is 367.37408000000005 in float64; the file holds what the label held
    ds = make_dataset(
        ["cat"], paths=[str(tmp_path / "p.jpg")], widths=[1280], heights=[640],
        box_image=[0], box_cls=[0], box_coords=[[0.5, 0.5, 0.287011, 0.376563]],
        box_format=BoxFormat.CXCYWH_NORM,
    )  # fmt: skip
    assert 0.287011 * 1280 != 367.37408  # the noise this test is about
    out = write_coco(ds, tmp_path / "out", images="none")
    text = next(iter(out.values())).read_text()
    (ann,) = json.loads(text)["annotations"]
    assert ann["bbox"] == [456.31296, 199.49984, 367.37408, 241.00032]
    assert "0000000" not in text and "9999999" not in text


@pytest.mark.parametrize("name", ["../../../../etc/hostname", "/etc/hostname", "sub/../../x.jpg"])
def test_file_name_outside_the_images_folder_is_refused(tmp_path: Path, name: str) -> None:
    doc = coco_doc()
    doc["images"][1]["file_name"] = name
    (tmp_path / "imgs").mkdir()
    js = tmp_path / "instances.json"
    js.write_text(json.dumps(doc))
    with pytest.raises(DetforgeError, match=r"image #1 \(id 7\): file_name .* is not a path "
                       "inside the images folder") as info:  # fmt: skip
        read_coco(js, images_dir=tmp_path / "imgs")
    assert info.value.path == str(js) and "\n" not in str(info.value)
    doc["images"][1]["file_name"] = "sub/../a.jpg"  # stays inside: fine
    js.write_text(json.dumps(doc))
    assert read_coco(js, images_dir=tmp_path / "imgs").num_images == 3


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("bbox", [10, 10, 20, 20, 5], "'bbox' must be 4 numbers .*\\[10, 10, 20, 20, 5\\]"),
        ("bbox", [10, 10], "'bbox' must be 4 numbers"),
        ("bbox", ["10", "10", "20", "20"], "'bbox' must be 4 numbers"),
        ("bbox", [True, 10, 20, 20], "'bbox' must be 4 numbers .*true"),
        ("iscrowd", "yes", "'iscrowd' must be 0 or 1, not \"yes\""),
        ("iscrowd", 2, "'iscrowd' must be 0 or 1"),
        ("area", -5, "'area' must be a number >= 0, not -5"),
        ("area", "12", "'area' must be a number >= 0"),
    ],
)
def test_malformed_annotation_fields_name_the_annotation(
    tmp_path: Path, field: str, value: object, message: str
) -> None:
    doc = coco_doc()
    doc["annotations"][1][field] = value
    js = tmp_path / "instances.json"
    js.write_text(json.dumps(doc))
    with pytest.raises(DetforgeError, match=f"annotation #1 \\(id 2\\): {message}") as info:
        read_coco(js)
    assert info.value.path == str(js) and "\n" not in str(info.value)


def test_boxes_eval_cannot_score_and_a_missing_annotations_key_are_marked(
    tmp_path: Path,
) -> None:
    doc = coco_doc()
    doc["annotations"][0]["bbox"] = [10, 10, 0, 0]  # zero size: legal COCO, left out as ever
    js = tmp_path / "instances.json"
    js.write_text(json.dumps(doc))
    ds = read_coco(js)
    assert [b.code for b in ds.meta["invalid_boxes"]] == ["box-zero-size"]
    assert not ds.meta.get("unscorable_boxes") and ds.meta["coco_image_info"] == []
    for bbox, why in (([10, 10, -5, 20], "negative width"), ([1, 1, 1e308, 2], "beyond 1e+07")):
        doc["annotations"][0]["bbox"] = bbox
        js.write_text(json.dumps(doc))
        (entry,) = read_coco(js).meta["unscorable_boxes"]
        assert entry.record == "annotation #0 (id 1)" and entry.path == str(js)
        assert entry.detail.startswith("'dog' box bbox=[") and why in entry.detail
    del doc["annotations"]
    js.write_text(json.dumps(doc))
    assert read_coco(js).meta["coco_image_info"] == [str(js)]  # the file, named by eval
