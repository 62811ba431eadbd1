"""Ground truth the reference tools score but a user should hear about (boxes wholly outside
their image, boxes the reader left out of the split scored), ground truth nothing can be
scored against (no images, no classes), and the model/dataset class check of ``val`` and
``map``."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from PIL import Image

from detforge.cli.main import main
from detforge.data.boxes import BoxFormat
from detforge.data.dataset import make_dataset
from detforge.errors import DetforgeError
from detforge.eval.api import outside_image, refuse_other_classes
from tests.eval.test_cli import darknet_set
from tests.formats.fmt_helpers import SPLIT_STEMS, make_split_sources

OUTSIDE = "ground-truth box(es) lie wholly outside their image and count as misses"


def test_outside_image_rule_for_normalized_and_pixel_boxes() -> None:
    norm = make_dataset(
        ["a"],
        paths=["x.jpg"],
        box_image=[0] * 5,
        box_cls=[0] * 5,
        box_coords=[
            [1.5, 0.5, 0.2, 0.2],  # centre beyond the right edge: wholly outside
            [1.1, 0.5, 0.2, 0.2],  # left edge exactly on the border: nothing inside
            [0.95, 0.5, 0.2, 0.2],  # partly past the border: inside
            [-0.2, 0.5, 0.2, 0.2],  # left of the image
            [0.5, 0.5, 0.2, 0.2],
        ],
    )
    assert outside_image(norm).tolist() == [True, True, False, True, False]
    pixel = make_dataset(
        ["a"],
        paths=["x.jpg", "y.jpg"],
        widths=[100, 0],  # y.jpg: size unknown, nothing can be judged
        heights=[50, 0],
        box_image=[0, 0, 0, 1],
        box_cls=[0] * 4,
        box_coords=[[120, 10, 20, 20], [90, 10, 20, 20], [10, 50, 5, 5], [500, 500, 5, 5]],
        box_format=BoxFormat.XYWH_PIXEL,
    )
    assert outside_image(pixel).tolist() == [True, False, True, False]


def _pred_folder(root: Path) -> Path:
    pred = root / "pred"
    pred.mkdir()
    (pred / "a.txt").write_text("0 0.25 0.5 0.2 0.4 0.9\n")
    (pred / "b.txt").write_text("0 0.5 0.5 0.4 0.4 0.8\n")
    return pred


def test_eval_notes_darknet_boxes_outside_the_image_and_still_scores_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = darknet_set(tmp_path)
    label = tmp_path / "img" / "a.txt"
    label.write_text("0 0.25 0.5 0.2 0.4\n\n1 1.5 0.5 0.2 0.4\n")  # line 3: beyond the width
    out = tmp_path / "m.json"
    assert main(["eval", str(data), str(_pred_folder(tmp_path)), "--json", str(out)]) == 0
    stdout = capsys.readouterr().out
    notes = [x for x in stdout.splitlines() if OUTSIDE in x]
    assert len(notes) == 1, stdout
    assert notes[0].startswith("note: 1 ground-truth box(es)")
    assert f"first: {label}:3: '1 1.5 0.5 0.2 0.4'" in notes[0] and "detforge check" in notes[0]
    m = json.loads(out.read_text())
    assert m["gt_outside_image"] == 1 and m["notes"] == [notes[0].removeprefix("note: ")]
    # darknet's rule is kept: the box is a truth (a miss), so 'dog' has AP 0 and FN counts it
    dk = m["darknet"]
    assert dk["truths"] == m["gt_boxes"] == 3 and dk["fn"] == 1
    assert [c["gt"] for c in dk["per_class"]] == [2, 1] and dk["mAP"] == 0.5


def test_eval_notes_coco_and_voc_boxes_outside_the_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gt = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 50},
                   {"id": 2, "file_name": "b.jpg", "width": 100, "height": 50}],
        "annotations": [
            {"id": 7, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "iscrowd": 0},
            {"id": 8, "image_id": 2, "category_id": 1, "bbox": [120, 10, 20, 20], "iscrowd": 0},
            # a crowd region is ignored by both protocols: not a miss, not counted
            {"id": 9, "image_id": 2, "category_id": 1, "bbox": [130, 10, 20, 20], "iscrowd": 1},
        ],
        "categories": [{"id": 1, "name": "cat"}],
    }  # fmt: skip
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    dets = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "score": 0.9}]
    (tmp_path / "dets.json").write_text(json.dumps(dets))
    out = tmp_path / "m.json"
    argv = ["eval", str(tmp_path / "gt.json"), str(tmp_path / "dets.json"), "--json", str(out)]
    assert main(argv) == 0
    note = next(x for x in capsys.readouterr().out.splitlines() if OUTSIDE in x)
    assert note.startswith("note: 1 ground-truth box(es)")
    assert f"first: {tmp_path / 'gt.json'}: image 'b.jpg': 'cat' box bbox=[120, 10, 20, 20]" in note
    m = json.loads(out.read_text())
    assert m["gt_outside_image"] == 1 and m["coco"]["stats"]["AR100"] == pytest.approx(0.5)

    voc = _voc_with_a_box_beyond_the_width(tmp_path, stated_size=True)
    dets[0]["image_id"] = 0
    (tmp_path / "dets.json").write_text(json.dumps(dets))
    assert main(["eval", str(voc), str(tmp_path / "dets.json")]) == 0
    note = next(x for x in capsys.readouterr().out.splitlines() if OUTSIDE in x)
    xml = voc / "Annotations" / "a.xml"
    assert f"first: {xml}: 'cat' box xmin=121 ymin=11 xmax=140 ymax=30 in the 100x50" in note


def test_no_note_when_every_box_touches_the_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = darknet_set(tmp_path)
    (tmp_path / "img" / "a.txt").write_text("0 0.95 0.5 0.2 0.4\n")  # partly past the border
    out = tmp_path / "m.json"
    assert main(["eval", str(data), str(_pred_folder(tmp_path)), "--json", str(out)]) == 0
    assert "wholly outside" not in capsys.readouterr().out
    assert json.loads(out.read_text())["gt_outside_image"] == 0


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: (darknet_set(p), (p / "valid.txt").write_text(""))[0],
         "obj.data: the ground truth has no images: nothing to evaluate"),
        (lambda p: (p / "g.json").write_text('{"images": [], "annotations": [], '
                                             '"categories": []}') and p / "g.json",
         "g.json: the ground truth has no images"),
        (lambda p: (p / "g.json").write_text(
            '{"images": [{"id": 1, "file_name": "a.jpg", "width": 9, "height": 9}], '
            '"annotations": [], "categories": []}') and p / "g.json",
         "g.json: the ground truth has no classes"),
    ],
)  # fmt: skip
def test_ground_truth_with_nothing_to_score_exits_2_before_any_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: object, message: str
) -> None:
    """These printed a mAP of 0 (no images, or no classes: darknet divides by zero), and with
    --plots a matplotlib traceback."""
    gt = make(tmp_path)  # type: ignore[operator]
    (tmp_path / "dets.json").write_text("[]")
    argv = ["eval", str(gt), str(tmp_path / "dets.json"), "--plots", "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def _boxless_gt(tmp_path: Path) -> Path:
    """One class, one image listed, no label file: images but no boxes."""
    (tmp_path / "img").mkdir()
    Image.new("RGB", (20, 20)).save(tmp_path / "img" / "a.jpg")
    (tmp_path / "o.names").write_text("cat\n")
    (tmp_path / "v.txt").write_text("img/a.jpg\n")
    (tmp_path / "o.data").write_text("classes = 1\nvalid = v.txt\nnames = o.names\n")
    (tmp_path / "dets.json").write_text("[]")
    return tmp_path / "o.data"


def test_plots_without_any_curve_warn_nothing(tmp_path: Path) -> None:
    """One class, no boxes, no predictions: the PR plot has nothing to put in a legend
    (matplotlib warned on stderr). ``eval`` refuses such a GT, training's validation plots it."""
    from detforge.eval.api import evaluate
    from detforge.eval.plots import write_plots
    from detforge.formats.detect import read_ground_truth
    from detforge.formats.predictions import read_predictions

    gt, _ = read_ground_truth(_boxless_gt(tmp_path))
    pred = read_predictions(tmp_path / "dets.json", gt)
    result = evaluate(gt, pred, protocol="all", iou=0.5, conf=0.25)
    (tmp_path / "o").mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_plots(result, gt, pred, tmp_path / "o", iou=0.5, conf=0.25)
    assert (tmp_path / "o" / "pr_curves.png").stat().st_size > 1000


def test_eval_refuses_ground_truth_without_boxes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It printed Darknet mAP 0.00 % beside COCO -1.000 and no word on why."""
    data = _boxless_gt(tmp_path)
    argv = ["eval", str(data), str(tmp_path / "dets.json"), "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith(
        f"detforge eval: error: {data}: the ground truth has 1 image(s) but no boxes: "
    )
    assert not (tmp_path / "o").exists()


def test_refuse_other_classes_is_one_bounded_line() -> None:
    refuse_other_classes(["a", "b"], ("a", "b"), model="m.pt", data="d.data")  # the same: fine
    many = [f"class{i}" for i in range(40)] + ["x" * 10_000]
    with pytest.raises(DetforgeError) as info:
        refuse_other_classes(many, ["cat", "dog"], model="m.pt", data="d.data")
    text = str(info.value)
    assert text.startswith("d.data: the model's classes differ from the dataset's (m.pt: 41, ")
    assert "only the model has 'class0', 'class1', 'class2', 'class3', 'class4' and 36 more" in text
    assert "only the dataset has 'cat', 'dog'" in text
    assert "\n" not in text and len(text) < 400
    with pytest.raises(DetforgeError, match="class 0 is 'b' in the model, 'a' in the dataset"):
        refuse_other_classes(["b", "a"], ["a", "b"], model="m.pt", data="d.data")
    with pytest.raises(DetforgeError) as info:
        refuse_other_classes(["motorbike"], ["car"], model="m", data="d", names_option="c.names")
    assert "leave out --names c.names to take the dataset's names" in str(info.value)
    assert "or pass --classes-by-index if class k is the same class in both" in str(info.value)
    long_name = ["y" * 5000 + "\n"]
    with pytest.raises(DetforgeError) as info:
        refuse_other_classes(long_name, ["cat"], model="m.pt", data="d.data")
    assert "\n" not in str(info.value) and len(str(info.value)) < 300


def test_outside_boxes_of_images_not_scored_are_not_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--every 2 scores images a and c: the outside box of b is no miss and not in the note."""
    data = darknet_set(tmp_path)
    (tmp_path / "img" / "b.txt").write_text("0 0.5 1.5 0.4 0.4\n")
    pred = _pred_folder(tmp_path)
    out = tmp_path / "m.json"
    assert main(["eval", str(data), str(pred), "--every", "2", "--json", str(out)]) == 0
    assert "wholly outside" not in capsys.readouterr().out
    assert json.loads(out.read_text())["gt_outside_image"] == 0
    assert main(["eval", str(data), str(pred), "--json", str(out), "--exist-ok"]) == 0
    assert json.loads(out.read_text())["gt_outside_image"] == 1


def test_outside_boxes_found_when_the_annotation_states_no_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A VOC file without <size>: Darknet's protocol reads the image's size anyway, and with
    it the box beyond the width is found (it was judged only where a size was stated)."""
    voc = _voc_with_a_box_beyond_the_width(tmp_path, stated_size=False)
    dets = [{"image_id": 0, "category_id": 1, "bbox": [10, 10, 20, 20], "score": 0.9}]
    (tmp_path / "dets.json").write_text(json.dumps(dets))
    out = tmp_path / "m.json"
    assert main(["eval", str(voc), str(tmp_path / "dets.json"), "--json", str(out)]) == 0
    note = next(x for x in capsys.readouterr().out.splitlines() if OUTSIDE in x)
    assert "box xmin=121 ymin=11 xmax=140 ymax=30 in the 100x50 image" in note
    assert json.loads(out.read_text())["gt_outside_image"] == 1


def _voc_with_a_box_beyond_the_width(tmp_path: Path, *, stated_size: bool) -> Path:
    """A VOC dataset of one 100x50 image with two 'cat' boxes, the second wholly beyond the
    width (xmin 121); ``stated_size``: the XML has its <size>."""
    voc = tmp_path / "voc"
    (voc / "Annotations").mkdir(parents=True)
    (voc / "JPEGImages").mkdir()
    Image.new("RGB", (100, 50)).save(voc / "JPEGImages" / "a.jpg")
    obj = "<object><name>cat</name><bndbox><xmin>{}</xmin><ymin>11</ymin><xmax>{}</xmax>"
    obj += "<ymax>30</ymax></bndbox></object>"
    size = "<size><width>100</width><height>50</height></size>" if stated_size else ""
    (voc / "Annotations" / "a.xml").write_text(
        f"<annotation><filename>a.jpg</filename>{size}{obj.format(11, 30)}"
        f"{obj.format(121, 140)}</annotation>"
    )
    return voc


LEFT_OUT = (
    "note: {n} ground-truth box(es) or image size(s) of the {split!r} split the reader left "
    "out are not scored (first: {first}; see detforge check)"
)
FIRST_LEFT_OUT = {  # the first zero-size box of 'train' and of 'valid', as each reader says
    "voc": (
        "voc/Annotations/{stem}.xml: object 2: box-zero-size: 'cat' box xmin=40 xmax=40 "
        "ymin=11 ymax=30"
    ),
    "coco": (
        "coco/annotations/instances_{short}.json: annotation #1 (id 2): box-zero-size: 'cat' "
        "box bbox=[5, 5, 0, 10]"
    ),
    "ultralytics": "ul/labels/{short}/{stem}.txt: box 2: box-zero-size: 0 0.5 0.5 0 0.2",
}


@pytest.mark.parametrize("fmt", ["voc", "coco", "ultralytics"])
def test_left_out_note_counts_the_boxes_of_the_split_scored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    """train holds 2 zero-size boxes, valid 1, test none: each split's note counts its own (it
    counted all 3, for any split), as the first line of the notes in the console and JSON."""
    gt = make_split_sources(tmp_path)[fmt]
    for split, n in (("train", 2), ("valid", 1), ("test", 0), (None, 1)):
        stem = SPLIT_STEMS[split or "valid"]
        pred = tmp_path / f"pred_{split}"
        pred.mkdir()
        (pred / f"{stem}.txt").write_text("0 0.2 0.4 0.2 0.4 0.9\n")  # the good box
        out = tmp_path / f"{split}.json"
        argv = ["eval", str(gt), str(pred), "--protocol", "darknet", "--json", str(out)]
        assert main(argv + (["--split", split] if split else [])) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0] == (
            "scored: 1 ground-truth image (1 with predictions), 1 ground-truth box, 1 prediction"
        )
        short = {None: "val", "valid": "val"}.get(split, split)
        first = f"{tmp_path}/" + FIRST_LEFT_OUT[fmt].format(stem=stem, short=short)
        notes = [LEFT_OUT.format(n=n, split=split or "valid", first=first)] if n else []
        assert [x for x in lines if x.startswith("note: ")] == notes
        metrics = json.loads(out.read_text())
        assert metrics["notes"] == [x.removeprefix("note: ") for x in notes]
        assert metrics["darknet"]["mAP"] == 1.0


def test_coco_boxes_eval_cannot_score_refuse_only_their_split(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A negative width in instances_train.json stops eval of 'train' naming that file, not of
    'valid' (each split of a COCO folder is its own JSON file)."""
    coco = make_split_sources(tmp_path)["coco"]
    js = coco / "annotations" / "instances_train.json"
    doc = json.loads(js.read_text())
    doc["annotations"].append({"id": 9, "image_id": 1, "category_id": 1, "bbox": [5, 5, -5, 9]})
    js.write_text(json.dumps(doc))
    pred = tmp_path / "pred"
    pred.mkdir()
    for stem in ("a", "b"):
        (pred / f"{stem}.txt").write_text("0 0.2 0.4 0.2 0.4 0.9\n")
    assert main(["eval", str(coco), str(pred), "--split", "train"]) == 2
    assert capsys.readouterr().err == (
        f"detforge eval: error: {js}: 1 ground-truth box(es) cannot be scored (first: "
        "annotation #3 (id 9): 'cat' box bbox=[5, 5, -5, 9]: a box has a negative width or "
        "height); fix them (see detforge check): pycocotools would use them as written\n"
    )
    argv = ["eval", str(coco), str(pred), "--split", "valid", "--ignore-unmatched"]
    assert main(argv) == 0
    assert "cannot be scored" not in capsys.readouterr().err
