"""The ``.data`` key ``difficult=`` read as Darknet's ``validate_detector_map`` does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detforge.data.boxes import BoxFormat
from detforge.data.dataset import make_dataset
from detforge.errors import DetforgeError
from detforge.eval.api import evaluate
from detforge.formats.darknet import read_darknet


def _voc_like(tmp_path: Path, difficult_lines: int = 2) -> Path:
    """VOC layout as darknet's scripts/voc_label_difficult.py writes it: the difficult list
    names JPEGImages/difficult_<id>.jpg (no such image), whose labels are labels/difficult_<id>.txt.
    """
    jpg, lab = tmp_path / "JPEGImages", tmp_path / "labels"
    jpg.mkdir()
    lab.mkdir()
    for i in ("a", "b"):
        Image.new("RGB", (100, 100)).save(jpg / f"{i}.jpg")
    (lab / "a.txt").write_text("0 0.25 0.25 0.2 0.2\n")
    (lab / "b.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (lab / "difficult_a.txt").write_text("0 0.75 0.75 0.2 0.2\n")  # no difficult_b.txt
    (tmp_path / "valid.txt").write_text(f"{jpg / 'a.jpg'}\n{jpg / 'b.jpg'}\n")
    entries = [f"{jpg / 'difficult_a.jpg'}", f"{jpg / 'difficult_b.jpg'}", "extra.jpg"]
    (tmp_path / "difficult.txt").write_text("\n".join(entries[:difficult_lines]) + "\n")
    (tmp_path / "obj.names").write_text("thing\n")
    data = tmp_path / "voc.data"
    data.write_text(
        "classes = 1\nvalid = valid.txt\ndifficult = difficult.txt\nnames = obj.names\n"
    )
    return data


def test_difficult_boxes_join_the_paired_valid_images(tmp_path: Path) -> None:
    ds = read_darknet(_voc_like(tmp_path, 3), cache=False)  # a longer list: extras ignored
    assert ds.meta["data_file"].difficult == str(tmp_path / "difficult.txt")
    assert ds.num_boxes == 3
    d = np.flatnonzero(ds.boxes.difficult)
    assert len(d) == 1 and ds.images.path[ds.boxes.image[d[0]]].endswith("a.jpg")
    np.testing.assert_allclose(ds.boxes.coords[d[0]], [0.75, 0.75, 0.2, 0.2])
    assert any("1 difficult boxes from 1 label files for 2 valid images" in n
               for n in ds.meta["notes"])  # fmt: skip


def test_detection_on_a_difficult_truth_is_not_a_false_positive(tmp_path: Path) -> None:
    # image a: truth at (.25,.25), difficult truth at (.75,.75); detections on both, the one on
    # the difficult truth scored higher; image b's truth is never found (2 truths in all).
    # Darknet drops the detection on the difficult truth: one TP, precision 1 at recall 1/2,
    # AP 0.5. Without the difficult list it is an FP ranked first: precision 1/2 at recall 1/2,
    # AP 0.25.
    gt = read_darknet(_voc_like(tmp_path), cache=False).split("valid")
    a = int(np.flatnonzero([p.endswith("a.jpg") for p in gt.images.path])[0])
    pred = make_dataset(
        gt.class_names,
        paths=gt.images.path.tolist(),
        image_ids=gt.images.id,
        box_image=[a, a],
        box_cls=[0, 0],
        box_coords=[[0.75, 0.75, 0.2, 0.2], [0.25, 0.25, 0.2, 0.2]],
        box_format=BoxFormat.CXCYWH_NORM,
        score=[0.9, 0.8],
    )
    res = evaluate(gt, pred, protocol="darknet")["darknet"]
    assert res["mAP"] == pytest.approx(0.5)
    plain = gt.select(np.arange(gt.num_images))
    keep = np.flatnonzero(~plain.boxes.difficult)
    no_dif = make_dataset(
        gt.class_names,
        paths=gt.images.path.tolist(),
        image_ids=gt.images.id,
        box_image=gt.boxes.image[keep],
        box_cls=gt.boxes.cls[keep],
        box_coords=gt.boxes.coords[keep],
    )
    assert evaluate(no_dif, pred, protocol="darknet")["darknet"]["mAP"] == pytest.approx(0.25)


def test_short_difficult_list_is_an_error_naming_the_data_line(tmp_path: Path) -> None:
    data = _voc_like(tmp_path, 1)
    with pytest.raises(DetforgeError, match="difficult list has 1 entries") as exc:
        read_darknet(data, cache=False)
    assert exc.value.line == 3


def test_written_obj_data_names_the_evaluation_list_valid(tmp_path: Path) -> None:
    from detforge.formats.darknet import read_data_file, write_darknet

    imgs = []
    for name in ("a", "b", "c"):
        p = tmp_path / "src" / f"{name}.jpg"
        p.parent.mkdir(exist_ok=True)
        Image.new("RGB", (20, 20)).save(p)
        imgs.append(str(p))
    ds = make_dataset(["x"], paths=imgs, splits=["train", "test", "test"])
    data = write_darknet(ds, tmp_path / "out", images="copy")
    text = data.read_text()
    # darknet's detector map reads valid= (test= is ignored, falling back to the train list)
    assert f"valid = {tmp_path / 'out' / 'test.txt'}" in text
    df = read_data_file(data)
    assert df.valid == df.test
    back = read_darknet(data, cache=False)  # the shared list is read once, as the test split
    assert back.images.split.tolist() == ["train", "test", "test"]
    # an old file with test= only still reads as before
    old = tmp_path / "out" / "old.data"
    old.write_text("classes = 1\ntrain = train.txt\ntest = test.txt\n")
    assert read_darknet(old, cache=False).images.split.tolist() == ["train", "test", "test"]


def test_difficult_pairs_with_the_split_read(tmp_path: Path) -> None:
    # valid = test (what convert --to darknet writes): the full read labels it test, a read of
    # only the valid key labels it valid; the difficult boxes land on the same image either way
    data = _voc_like(tmp_path)
    text = data.read_text().replace("valid = valid.txt", "valid = valid.txt\ntest = valid.txt")
    data.write_text(text)
    full = read_darknet(data, cache=False)
    assert set(full.splits()) == {"test"} and int(full.boxes.difficult.sum()) == 1
    only = read_darknet(data, cache=False, split="valid")
    assert set(only.splits()) == {"valid"} and int(only.boxes.difficult.sum()) == 1
