"""``detforge convert`` in-process: every target, pipeline, errors as one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from detforge.cli.main import main
from detforge.formats.detect import read_any
from detforge.formats.labelmap import read_label_map
from tests.formats.fmt_helpers import (
    assert_same_dataset,
    make_image_dataset,
    make_oversampled_list,
)

PIPELINE = """model { faster_rcnn { num_classes: 90 } }
train_config { batch_size: 64 fine_tune_checkpoint: "zoo/model.ckpt-5000" num_steps: 4000 }
train_input_reader { tf_record_input_reader { input_path: "x" } label_map_path: "y" }
eval_input_reader { tf_record_input_reader { input_path: "x" } label_map_path: "y" }
eval_config { num_examples: 8000 }
"""


def test_convert_chain_voc_darknet_ultralytics(
    ref_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = ref_data / "bccd"
    # BCCD has two clicks without a drag (xmin == xmax): refused, then left out under --skip-bad
    assert main(["convert", str(src), str(tmp_path / "dk"), "--to", "darknet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "2 invalid box(es) or image size(s) (box-zero-size)" in err[0]
    assert not (tmp_path / "dk").exists()
    argv = ["convert", str(src), str(tmp_path / "dk"), "--to", "darknet", "--skip-bad"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "converted 364 images, 4886 boxes, 3 classes (train 205, valid 87, test 72)" in out
    assert out.count("note: left out: ") == 2 and "BloodImage_00338.xml: object" in out
    assert main(["convert", str(tmp_path / "dk" / "obj.data"), str(tmp_path / "ul"), "--to",
                 "ultralytics"]) == 0  # fmt: skip
    voc = read_any(src)
    assert_same_dataset(voc, read_any(tmp_path / "ul" / "data.yaml"), atol=1e-6)


def test_convert_to_tfrecord_with_pipeline_and_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ds = make_image_dataset(tmp_path, num_images=6, num_classes=3, negatives=1, fmt="jpg")
    from detforge.formats.detect import write_any

    voc = write_any(ds, tmp_path / "voc", to="voc").path
    (tmp_path / "pipeline.config").write_text(PIPELINE)
    args = ["convert", str(voc), str(tmp_path / "tf"), "--to", "tfrecord", "--shards", "2",
            "--pipeline", str(tmp_path / "pipeline.config")]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "warning: num_steps 4000 is not above the fine-tune checkpoint's step 5000" in out
    assert "batch_size 64" in out
    cfg = (tmp_path / "tf" / "pipeline.config").read_text()
    tf = (tmp_path / "tf").resolve()
    assert "num_classes: 3" in cfg and "batch_size: 8" in cfg
    assert "num_examples: 2" in cfg  # the 2 valid images of the 6
    assert f'input_path: "{tf}/train.record-?????-of-00002"' in cfg
    assert f'input_path: "{tf}/val.record-?????-of-00002"' in cfg
    assert f'label_map_path: "{tf}/label_map.pbtxt"' in cfg
    assert read_label_map(tf / "label_map.pbtxt") == {1: "cls_0", 2: "cls_1", 3: "cls_2"}
    # And back to COCO, images extracted from the records and linked.
    assert main(["convert", str(tf), str(tmp_path / "coco"), "--to", "coco"]) == 0
    back = read_any(tmp_path / "coco")
    assert_same_dataset(ds, back)
    assert all(Path(p).is_file() for p in back.images.path)


def test_tfrecord_to_darknet_folder_reads_each_image_once(tmp_path: Path) -> None:
    """The images extracted from the records stayed in OUT/source_images/<split>/ beside the
    ones linked into OUT/<split>/: the Darknet output read as a folder (detforge info OUT,
    convert OUT) had every image twice, the copies as unlabelled negatives. They are removed
    once every image is linked or copied into place."""
    from detforge.formats.detect import write_any

    ds = make_image_dataset(tmp_path, num_images=5, num_classes=3, negatives=1)
    tf = write_any(ds, tmp_path / "tf", to="tfrecord").path.parent
    for mode in ("link", "copy"):
        out = tmp_path / f"dk-{mode}"
        assert main(["convert", str(tf), str(out), "--to", "darknet", "--images", mode]) == 0
        assert not (out / "source_images").exists()
        assert_same_dataset(ds, read_any(out))
        assert_same_dataset(ds, read_any(out / "obj.data"))


def test_label_map_mismatch_and_bad_input_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ds = make_image_dataset(tmp_path, num_images=3, num_classes=2, negatives=0)
    from detforge.formats.darknet import write_darknet
    from detforge.formats.detect import write_any

    data = write_darknet(ds, tmp_path / "dk")  # Darknet class ids are fixed by obj.names
    (tmp_path / "lm.pbtxt").write_text(
        "item { id: 1 name: 'cls_1' }\nitem { id: 2 name: 'cls_0' }\n"
    )
    args = ["convert", str(data), str(tmp_path / "tf"), "--to", "tfrecord", "--label-map",
            str(tmp_path / "lm.pbtxt")]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "NaN loss" in err and "Traceback" not in err
    assert not (tmp_path / "tf" / "train.record").exists()
    # VOC names its classes, so there the label map just fixes the order.
    voc = write_any(ds, tmp_path / "voc", to="voc").path
    args[1] = str(voc)
    assert main(args) == 0
    assert read_label_map(tmp_path / "tf" / "label_map.pbtxt") == {1: "cls_1", 2: "cls_0"}
    assert main(["convert", str(voc), str(voc), "--to", "darknet"]) == 2
    assert "never writes where its input lives" in capsys.readouterr().err
    assert main(["convert", str(voc / "Annotations"), str(tmp_path), "--to", "voc"]) == 2
    assert "never writes where its input lives" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "nope"), str(tmp_path / "o"), "--to", "voc"]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["convert", str(voc), str(tmp_path / "o"), "--to", "voc", "--images", "x"]) == 2
    assert "--images must be link, copy or none" in capsys.readouterr().err


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "--pipeline" in out and "--images" in out


def test_coco_json_with_images_elsewhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    from detforge.data.dataset import make_dataset
    from detforge.formats.detect import write_any

    (tmp_path / "imgs").mkdir()
    for k in range(3):
        Image.new("RGB", (30 + k, 20)).save(tmp_path / "imgs" / f"p{k}.png")
    ds = make_dataset(
        ["cat", "dog"],
        paths=[str(tmp_path / "imgs" / f"p{k}.png") for k in range(3)],
        widths=[30, 31, 32],
        heights=[20, 20, 20],
        splits="train",
        box_image=[0, 2],
        box_cls=[1, 0],
        box_coords=[[0.5, 0.5, 0.5, 0.5], [0.4, 0.4, 0.2, 0.2]],
    )
    js = write_any(ds, tmp_path / "coco", to="coco", images="none").files[0]
    args = ["convert", str(js), str(tmp_path / "out"), "--to", "ultralytics"]
    assert main(args) == 2  # file names are relative to a folder the JSON does not know
    assert "not found" in capsys.readouterr().err
    assert main([*args, "--images", str(tmp_path / "imgs")]) == 0
    linked = sorted(p.name for p in (tmp_path / "out" / "images" / "train").iterdir())
    assert linked == ["p0.png", "p1.png", "p2.png"]
    assert_same_dataset(ds, read_any(tmp_path / "out" / "data.yaml"))


def test_oversampled_list_is_one_image_per_coco_record_and_kept_for_darknet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    lst = make_oversampled_list(tmp_path / "src")
    first = f"first: {tmp_path / 'src' / 'a.jpg'}, line 3 of {lst} (first on line 1)"
    assert main(["convert", str(lst), str(tmp_path / "coco"), "--to", "coco"]) == 0
    out = capsys.readouterr().out
    assert "converted 2 images, 2 boxes, 1 classes (train 2)" in out
    merged = "were merged: coco holds each image once"
    assert f"note: 2 duplicate list entries (an image listed again in its split) {merged}" in out
    assert f"{merged}; {first}\n" in out
    doc = json.loads((tmp_path / "coco" / "annotations" / "instances_train.json").read_text())
    assert [im["file_name"] for im in doc["images"]] == ["a.jpg", "b.jpg"]
    assert len(doc["annotations"]) == 2
    assert main(["convert", str(lst), str(tmp_path / "dk"), "--to", "darknet"]) == 0
    out = capsys.readouterr().out
    assert "converted 4 images, 4 boxes" in out
    assert f"are kept: Darknet trains on each entry (oversampling); {first}" in out
    assert out.count("duplicate list entries") == 1
    listed = (tmp_path / "dk" / "train.txt").read_text().splitlines()
    assert [Path(p).name for p in listed] == ["a.jpg", "b.jpg", "a.jpg", "a.jpg"]


def test_label_map_with_a_name_twice_is_one_line_naming_it(
    ref_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lm = tmp_path / "lm.pbtxt"
    lm.write_text("item { id: 1 name: 'raccoon' }\nitem { id: 2 name: 'raccoon' }\n")
    src = ref_data / "raccoon-tfrecord" / "test.record"
    args = ["convert", str(src), str(tmp_path / "dk"), "--to", "darknet", "--label-map", str(lm)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{lm}:2: class name 'raccoon' appears twice" in err


def test_label_map_as_a_class_list_or_a_yaml_list(
    ref_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = ref_data / "raccoon-tfrecord" / "test.record"
    names = tmp_path / "classes.txt"
    names.write_text("raccoon\n")  # id 1, the id the records use
    args = ["convert", str(src), str(tmp_path / "dk"), "--to", "darknet", "--label-map"]
    assert main([*args, str(names)]) == 0
    assert (tmp_path / "dk" / "obj.names").read_text() == "raccoon\n"
    capsys.readouterr()
    yaml = tmp_path / "classes.yaml"
    yaml.write_text("- raccoon\n")
    assert main(["convert", str(src), str(tmp_path / "dk2"), "--to", "darknet", "--label-map",
                 str(yaml)]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err == (
        f"detforge convert: error: {yaml}:1: '- raccoon' is not a class name (it looks like a "
        "YAML list item); expected a TF label map (item { id: 1 name: 'cat' }) or a class list, "
        "one name a line (the k-th name is id k)\n"
    )
    assert not (tmp_path / "dk2").exists()
