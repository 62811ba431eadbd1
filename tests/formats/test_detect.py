"""Format detection, read_any / write_any, crowd boxes."""

from __future__ import annotations

from pathlib import Path

import pytest

from detforge.data.boxes import BoxFormat
from detforge.data.dataset import Dataset, make_dataset
from detforge.errors import DetforgeError
from detforge.formats.common import settle_repeated_entries
from detforge.formats.detect import detect_format, load_class_list, read_any, write_any
from tests.formats.fmt_helpers import (
    make_image_dataset,
    make_oversampled_list,
    make_split_sources,
)


def test_detects_each_layout(tmp_path: Path, ref_data: Path) -> None:
    assert detect_format(ref_data / "bccd") == "voc"
    assert detect_format(ref_data / "raccoon-tfrecord") == "tfrecord"
    assert detect_format(ref_data / "raccoon-tfrecord" / "test.record") == "tfrecord"
    for name, fmt in [
        ("a.data", "darknet"),
        ("train.txt", "darknet"),
        ("d.yaml", "ultralytics"),
        ("instances_val.json", "coco"),
        ("x.tfrecord-00000-of-00002", "tfrecord"),
    ]:
        (tmp_path / name).write_text("")
        assert detect_format(tmp_path / name) == fmt
    (tmp_path / "odd.bin").write_text("")
    with pytest.raises(DetforgeError, match="cannot tell the format"):
        detect_format(tmp_path / "odd.bin")
    with pytest.raises(DetforgeError, match="not found"):
        detect_format(tmp_path / "missing")
    (tmp_path / "c" / "annotations").mkdir(parents=True)
    (tmp_path / "c" / "annotations" / "instances_train.json").write_text("{}")
    assert detect_format(tmp_path / "c") == "coco"
    (tmp_path / "plain").mkdir()
    assert detect_format(tmp_path / "plain") == "darknet"


def _three_boxes(tmp_path: Path, name: str, **flags: list[bool]) -> Dataset:
    """One 20x10 image (a.png, written) with three boxes of class ``name`` and the per-box
    ``flags`` (crowd, difficult, truncated)."""
    from PIL import Image

    Image.new("RGB", (20, 10)).save(tmp_path / "a.png")
    return make_dataset(
        [name],
        paths=[str(tmp_path / "a.png")],
        widths=[20],
        heights=[10],
        splits=["valid"],
        box_image=[0, 0, 0],
        box_cls=[0, 0, 0],
        box_coords=[[1, 1, 4, 4], [2, 2, 8, 6], [0, 0, 20, 10]],
        box_format=BoxFormat.XYWH_PIXEL,
        **flags,
    )


def test_crowd_boxes_dropped_and_counted_where_format_cannot_hold_them(tmp_path: Path) -> None:
    ds = _three_boxes(tmp_path, "person", crowd=[False, True, False])
    res = write_any(ds, tmp_path / "voc", to="voc", images="none")
    assert res.dropped_crowd == 1 and "crowd" in res.notes[0]
    assert read_any(res.path).num_boxes == 2
    res = write_any(ds, tmp_path / "coco", to="coco", images="none")
    assert res.dropped_crowd == 0
    back = read_any(tmp_path / "coco")
    assert back.boxes.crowd.tolist() == [False, True, False]


def test_label_map_fixes_voc_class_order(tmp_path: Path) -> None:
    ds = make_image_dataset(tmp_path, num_images=4, num_classes=3, negatives=0)
    out = write_any(ds, tmp_path / "voc", to="voc", images="none").path
    (out / "labels.txt").unlink()
    (tmp_path / "order.names").write_text("cls_2\ncls_1\ncls_0\n")
    assert load_class_list(tmp_path / "order.names") == ["cls_2", "cls_1", "cls_0"]
    back = read_any(out, label_map=tmp_path / "order.names")
    assert back.class_names == ("cls_2", "cls_1", "cls_0")
    assert sorted(back.class_names[c] for c in back.boxes.cls) == sorted(
        ds.class_names[c] for c in ds.boxes.cls
    )


def test_unknown_target_is_an_error(tmp_path: Path) -> None:
    ds = make_dataset(["a"], paths=["x.jpg"])
    with pytest.raises(DetforgeError, match="unknown target format"):
        write_any(ds, tmp_path, to="yolo")


def test_pipe_or_device_source_is_one_error_and_never_opened(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "x.data"
    os.mkfifo(fifo)  # opening it for reading would block forever
    for source in (fifo, Path(os.devnull)):
        with pytest.raises(DetforgeError, match="not a regular file or folder") as err:
            detect_format(source)
        assert err.value.path == str(source)
        with pytest.raises(DetforgeError, match="not a regular file or folder"):
            read_any(source)


@pytest.mark.parametrize(
    ("to", "images", "note"),
    [
        ("coco", 2, "were merged: coco holds each image once"),
        ("voc", 2, "were merged: voc holds each image once"),
        ("tfrecord", 2, "were merged: tfrecord holds each image once"),
        ("darknet", 4, "are kept: Darknet trains on each entry"),
        ("ultralytics", 4, "are kept as extra copies of the image"),
    ],
)
def test_repeated_list_entries_written_once_per_record_or_kept(
    tmp_path: Path, to: str, images: int, note: str
) -> None:
    lst = make_oversampled_list(tmp_path / "src")
    ds = read_any(lst)
    res = write_any(ds, tmp_path / to, to=to, images="copy")
    (said,) = [n for n in res.notes if "duplicate list" in n]
    assert said.startswith(f"2 duplicate list entries (an image listed again in its split) {note}")
    assert said.endswith(f"first: {tmp_path / 'src' / 'a.jpg'}, line 3 of {lst} (first on line 1)")
    back = read_any(tmp_path / to if to == "tfrecord" else res.path)
    assert back.num_images == images and back.num_boxes == images
    if to == "coco":
        assert sorted(back.images.path.tolist()) == [
            str(tmp_path / "coco" / "train" / n) for n in ("a.jpg", "b.jpg")
        ]
    # Darknet's list names a.jpg three times again; the other formats hold no list to repeat
    assert ("repeated_entries" in back.meta) == (to == "darknet")
    # the note is given once (convert settles the entries before write_any sees them)
    settled, first = settle_repeated_entries(ds, to)
    assert first == said and settle_repeated_entries(settled, to) == (settled, None)


def test_class_lists_refuse_a_name_given_twice(tmp_path: Path) -> None:
    (tmp_path / "order.txt").write_text("cat\n\ndog\n cat \n")
    with pytest.raises(DetforgeError) as e:
        load_class_list(tmp_path / "order.txt")
    assert e.value.path == str(tmp_path / "order.txt") and e.value.line == 4
    assert "'cat' appears twice (lines 1 and 4)" in e.value.message
    (tmp_path / "lm.pbtxt").write_text("item { id: 1 name: 'cat' }\nitem { id: 2 name: 'cat' }\n")
    with pytest.raises(DetforgeError) as e:
        load_class_list(tmp_path / "lm.pbtxt")
    assert e.value.path == str(tmp_path / "lm.pbtxt") and e.value.line == 2


def test_a_coco_folder_is_its_source_and_each_image_keeps_its_json(tmp_path: Path) -> None:
    """``meta["source"]`` was the last JSON read (instances_val.json) for the images of every
    file; it is the folder, and ``json_paths`` names each image's own file."""
    coco = make_split_sources(tmp_path)["coco"]
    ds = read_any(coco)
    ann = coco / "annotations"
    assert ds.meta["source"] == str(coco)
    got = list(zip(ds.images.split.tolist(), ds.meta["json_paths"], strict=True))
    files = {"test": "test", "train": "train", "valid": "val"}
    assert got == [(s, str(ann / f"instances_{f}.json")) for s, f in files.items()]
    assert read_any(ann / "instances_val.json").meta["source"] == str(ann / "instances_val.json")


def test_coco_masks_and_keypoints_left_out_are_counted(tmp_path: Path) -> None:
    """COCO segmentation masks and keypoints vanished in every conversion (detforge writes
    boxes only) without a word; the note counts them, over every JSON of a folder."""
    import json

    coco = make_split_sources(tmp_path)["coco"]
    for short, extra in (("train", {"segmentation": [[10, 10, 30, 10, 30, 30]]}),
                         ("val", {"segmentation": {"counts": "abc", "size": [50, 100]},
                                  "keypoints": [12, 12, 2], "num_keypoints": 1})):  # fmt: skip
        jf = coco / "annotations" / f"instances_{short}.json"
        doc = json.loads(jf.read_text())
        doc["annotations"][0].update(extra)
        doc["annotations"][1]["segmentation"] = []  # an empty mask is no loss
        jf.write_text(json.dumps(doc))
    ds = read_any(coco)
    for to in ("darknet", "coco"):
        res = write_any(ds, tmp_path / to, to=to, images="none")
        assert res.notes == [
            "left out 2 segmentation mask(s) and 1 keypoint set(s) of the COCO annotations "
            f"(first: {coco / 'annotations' / 'instances_train.json'}, annotation id 1): "
            "detforge converts boxes only"
        ]
    plain = read_any(make_split_sources(tmp_path / "plain")["coco"])
    assert write_any(plain, tmp_path / "plain-dk", to="darknet", images="none").notes == []


def test_difficult_and_truncated_flags_a_format_cannot_hold_are_counted(tmp_path: Path) -> None:
    """VOC's difficult boxes became ordinary Darknet/Ultralytics/COCO boxes (and truncated
    flags vanished) without a word; VOC and TFRecord keep both flags, so no note there."""
    ds = _three_boxes(
        tmp_path, "cat", difficult=[True, True, False], truncated=[False, True, False]
    )
    for to in ("darknet", "ultralytics", "coco"):
        res = write_any(ds, tmp_path / to, to=to, images="none")
        assert res.notes == [
            f"wrote 2 difficult box(es) as ordinary boxes and left out 1 truncated flag(s): "
            f"{to} cannot mark them"
        ]
    for to in ("voc", "tfrecord"):
        assert write_any(ds, tmp_path / to, to=to).notes == []


def test_voc_pose_occluded_and_parts_left_out_are_counted(tmp_path: Path) -> None:
    """VOC's <pose>, <occluded> and person-layout <part> boxes vanished in every conversion,
    VOC to VOC included (write_voc writes pose Unspecified), without a word."""
    voc = make_split_sources(tmp_path)["voc"]
    xmls = sorted((voc / "Annotations").glob("*.xml"))
    first = xmls[0].read_text()
    extra = (
        "<pose>Left</pose><occluded>1</occluded>"
        "<part><name>head</name><bndbox><xmin>2</xmin><ymin>2</ymin><xmax>5</xmax>"
        "<ymax>5</ymax></bndbox></part><part><name>hand</name><bndbox><xmin>1</xmin>"
        "<ymin>1</ymin><xmax>3</xmax><ymax>3</ymax></bndbox></part>"
    )
    assert first.count("<object>") >= 1
    xmls[0].write_text(first.replace("<pose>Unspecified</pose>", "", 1).replace(
        "<object>", "<object>" + extra, 1))  # fmt: skip
    last = xmls[-1].read_text()  # Unspecified, an empty pose and occluded 0 are no loss
    xmls[-1].write_text(last.replace("<object>", "<object><occluded>0</occluded>", 1))
    ds = read_any(voc)
    assert ds.num_boxes == read_any(make_split_sources(tmp_path / "p")["voc"]).num_boxes
    for to in ("darknet", "voc", "coco"):
        res = write_any(ds, tmp_path / to, to=to, images="none")
        assert res.notes == [
            f"left out 1 pose value(s), 1 occluded flag(s), 2 part box(es) of the VOC "
            f"annotations (first: {xmls[0]}): detforge converts boxes with their difficult and "
            "truncated flags only"
        ]
    plain = read_any(make_split_sources(tmp_path / "plain")["voc"])
    assert write_any(plain, tmp_path / "plain-dk", to="darknet", images="none").notes == []


def test_category_ids_a_format_cannot_keep_are_said(tmp_path: Path) -> None:
    """COCO category id 7 became Darknet class 0 and came back as COCO id 1 without a word."""
    import json

    coco = make_split_sources(tmp_path)["coco"]
    for jf in (coco / "annotations").glob("*.json"):
        doc = json.loads(jf.read_text())
        doc["categories"] = [{"id": 7, "name": "cat"}]
        for a in doc["annotations"]:
            a["category_id"] = 7
        jf.write_text(json.dumps(doc))
    ds = read_any(coco)
    expected = {
        "darknet": "0..0",
        "ultralytics": "0..0",
        "voc": "by name",
        "tfrecord": "1..1 in the label map",
    }
    for to, numbered in expected.items():
        res = write_any(ds, tmp_path / to, to=to, images="none" if to != "tfrecord" else "link")
        assert res.notes == [
            f"the source's category ids (7) are not kept: {to} numbers the 1 class(es) {numbered}, "
            "so converting back to COCO gives ids 1..1"
        ], to
    assert write_any(ds, tmp_path / "coco", to="coco", images="none").notes == []
    plain = read_any(make_split_sources(tmp_path / "plain")["coco"])  # id 1: nothing lost
    assert write_any(plain, tmp_path / "plain-dk", to="darknet", images="none").notes == []
