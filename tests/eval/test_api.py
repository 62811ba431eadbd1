"""``eval`` on a COCO folder of per-split JSON files (``annotations/instances_<split>.json``):
what :mod:`detforge.eval.api` says about the ground truth names the JSON file of the split
scored, and a file without ``annotations`` stops only its own split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detforge.cli.main import main
from tests.formats.fmt_helpers import SPLIT_STEMS, make_split_sources

IMAGE_INFO = (
    "no 'annotations' key: this looks like an image-info/test file without ground truth; "
    "evaluate against an instances file with annotations"
)


def _coco_folder(root: Path, edit: str, change: object) -> tuple[Path, Path]:
    """:func:`make_split_sources`' COCO folder with ``change`` applied to the JSON of split
    ``edit`` (``train``, ``val``, ``test``); returns the folder and that file."""
    coco = make_split_sources(root)["coco"]
    js = coco / "annotations" / f"instances_{edit}.json"
    doc = json.loads(js.read_text())
    change(doc)  # type: ignore[operator]
    js.write_text(json.dumps(doc))
    return coco, js


def _eval(root: Path, coco: Path, split: str) -> list[str]:
    """``detforge eval COCO PRED --split SPLIT`` with the good box predicted on the split's
    image; its arguments."""
    pred = root / f"pred_{split}"
    pred.mkdir(exist_ok=True)
    (pred / f"{SPLIT_STEMS[split]}.txt").write_text("0 0.2 0.4 0.2 0.4 0.9\n")
    return ["eval", str(coco), str(pred), "--protocol", "darknet", "--split", split]


@pytest.mark.parametrize(("info", "other"), [("train", "valid"), ("valid", "train")])
def test_a_file_without_annotations_refuses_only_its_split_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], info: str, other: str
) -> None:
    """Whether any split was refused, and which file was named, followed the last JSON read
    (instances_val.json): 'train' of a folder whose val file has no annotations was refused
    naming instances_val.json, and with train's file without annotations 'train' was refused
    for having no boxes, again naming instances_val.json."""
    short = {"valid": "val"}.get(info, info)
    coco, js = _coco_folder(tmp_path, short, lambda doc: doc.pop("annotations"))
    assert main(_eval(tmp_path, coco, info)) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"detforge eval: error: {js}: {IMAGE_INFO}\n"
    assert main(_eval(tmp_path, coco, other)) == 0
    out, err = capsys.readouterr()
    assert out.startswith("scored: 1 ground-truth image (1 with predictions), 1 ground-truth")
    assert "mean average precision (mAP@0.50) = 1.000000" in out and err == ""


def test_no_boxes_and_outside_boxes_name_the_json_of_the_split_scored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both named instances_val.json (the last file read) for an image of instances_train.json."""
    coco, js = _coco_folder(tmp_path, "train", lambda doc: doc.update(annotations=[]))
    assert main(_eval(tmp_path, coco, "train")) == 2
    assert capsys.readouterr().err == (
        f"detforge eval: error: {js}: the ground truth has 1 image(s) but no boxes: no AP can "
        "be computed; are the label files beside the images (see detforge check), or is this "
        "the wrong split?\n"
    )
    far = {"id": 9, "image_id": 1, "category_id": 1, "bbox": [120, 10, 20, 20], "iscrowd": 0}
    coco, js = _coco_folder(tmp_path / "2", "train", lambda doc: doc["annotations"].append(far))
    assert main(_eval(tmp_path, coco, "train")) == 0
    notes = [x for x in capsys.readouterr().out.splitlines() if "wholly outside" in x]
    assert notes == [
        "note: 1 ground-truth box(es) lie wholly outside their image and count as misses, as "
        "darknet's 'detector map' counts them (no detection inside the image can match them; "
        f"first: {js}: image 'a.jpg': 'cat' box bbox=[120, 10, 20, 20] in the 100x50 image); "
        "see detforge check"
    ]
