"""``detforge convert`` refuses what check calls errors: one line, exit 2, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detforge.cli.main import main
from tests.formats.fmt_helpers import make_split_sources


def _jpg(path: Path, size: tuple[int, int]) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (30, 60, 90)).save(path)
    return path


def _coco(tmp_path: Path, image: dict[str, object], bbox: list[float]) -> Path:
    js = tmp_path / "x.json"
    doc = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 132, "height": 145}, image],
        "annotations": [{"id": 1, "image_id": 2, "category_id": 1, "bbox": bbox}],
        "categories": [{"id": 1, "name": "thing"}],
    }
    js.write_text(json.dumps(doc))
    return js


def _one_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("name", ["../../../../etc/hostname", "/etc/hostname"])
def test_coco_file_name_leading_out_of_images_dir_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    _jpg(tmp_path / "imgs" / "a.jpg", (132, 145))
    js = _coco(tmp_path, {"id": 2, "file_name": name, "width": 100, "height": 100}, [1, 1, 9, 9])
    argv = ["convert", str(js), str(tmp_path / "out"), "--to", "darknet",
            "--images-dir", str(tmp_path / "imgs")]  # fmt: skip
    assert main(argv) == 2
    err = _one_error(capsys)
    assert "x.json" in err and "image #1 (id 2)" in err and name in err
    assert not (tmp_path / "out").exists()


def test_a_listed_file_that_is_not_an_image_is_not_linked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ok = _jpg(tmp_path / "d" / "a.jpg", (40, 30))
    secret = tmp_path / "d" / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    (tmp_path / "d" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (tmp_path / "d" / "obj.names").write_text("thing\n")
    (tmp_path / "list.txt").write_text(f"{ok}\n{secret}\n")
    assert main(["convert", str(tmp_path / "list.txt"), str(tmp_path / "out"), "--to",
                 "ultralytics"]) == 2  # fmt: skip
    assert "passwd is not a readable image (image-not-image" in _one_error(capsys)
    assert not (tmp_path / "out").exists()


def test_coco_box_past_the_image_and_stated_size_mismatch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"  # OUT may not lie in the folder of the source's images
    src.mkdir()
    _jpg(src / "a.jpg", (132, 145))
    _jpg(src / "b.jpg", (132, 145))
    js = _coco(src, {"id": 2, "file_name": "b.jpg", "width": 132, "height": 145},
               [100, 100, 500, 500])  # fmt: skip
    argv = ["convert", str(js), str(tmp_path / "out"), "--to", "voc"]
    assert main(argv) == 2
    err = _one_error(capsys)
    assert "image id 2" in err and "bbox=[100, 100, 500, 500]: coord-above-one" in err
    assert main([*argv, "--clip-boxes"]) == 0
    xml = (tmp_path / "out" / "Annotations" / "b.xml").read_text()
    assert "<xmax>132</xmax>" in xml and "<ymax>145</ymax>" in xml
    js = _coco(src, {"id": 2, "file_name": "b.jpg", "width": 1320, "height": 145},
               [10, 10, 50, 50])  # fmt: skip
    argv = ["convert", str(js), str(tmp_path / "out2"), "--to", "darknet"]
    assert main(argv) == 2
    assert "says 1320 x 145 px but the image" in _one_error(capsys)
    assert main([*argv, "--trust-size", "image"]) == 0
    label = (tmp_path / "out2" / "train" / "b.txt").read_text().split()
    assert [round(float(v), 4) for v in label[1:]] == [0.2652, 0.2414, 0.3788, 0.3448]


def test_voc_xml_naming_another_image_keeps_each_image_once(
    ref_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    src = tmp_path / "voc"
    for stem in ("BloodImage_00000", "BloodImage_00001"):
        (src / "Annotations").mkdir(parents=True, exist_ok=True)
        (src / "JPEGImages").mkdir(exist_ok=True)
        shutil.copy(ref_data / "bccd" / "JPEGImages" / f"{stem}.jpg", src / "JPEGImages")
        text = (ref_data / "bccd" / "Annotations" / f"{stem}.xml").read_text()
        (src / "Annotations" / f"{stem}.xml").write_text(
            text.replace("BloodImage_00000.jpg", "BloodImage_00001.jpg")
        )
    assert main(["convert", str(src), str(tmp_path / "out"), "--to", "darknet"]) == 0
    listed = (tmp_path / "out" / "train.txt").read_text().split()
    assert sorted(Path(p).name for p in listed) == ["BloodImage_00000.jpg", "BloodImage_00001.jpg"]
    assert "BloodImage_00000.xml says BloodImage_00001.jpg" in capsys.readouterr().out


def test_tfrecord_named_like_no_split_becomes_training_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from detforge.formats.detect import read_any, write_any
    from tests.formats.fmt_helpers import make_image_dataset

    ds = make_image_dataset(tmp_path, num_images=3, num_classes=2, negatives=0, splits=())
    written = write_any(ds, tmp_path / "tf", to="tfrecord").files[0]
    renamed = written.rename(tmp_path / "tf" / "x.record")
    assert main(["convert", str(renamed), str(tmp_path / "dk"), "--to", "darknet"]) == 0
    data = (tmp_path / "dk" / "obj.data").read_text()
    assert "train = " in data and "x = " not in data
    back = read_any(tmp_path / "dk" / "obj.data")
    assert back.num_boxes == ds.num_boxes and back.splits() == ["train"]


def test_undecodable_embedded_image_is_an_error_naming_the_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from detforge.formats.tfrecord.example import encode_example
    from detforge.formats.tfrecord.framing import read_records, write_sharded
    from detforge.formats.tfrecord.tfod import example_from_image
    from tests.formats.fmt_helpers import make_image_dataset

    ds = make_image_dataset(tmp_path, num_images=2, num_classes=2, negatives=0, fmt="jpg",
                            splits=("train",))  # fmt: skip
    from detforge.formats.detect import write_any

    rec = write_any(ds, tmp_path / "tf", to="tfrecord").files[0]
    payloads = list(read_records(rec))
    cut = example_from_image(
        encoded=Path(ds.images.path[1]).read_bytes()[:150], image_format="jpeg", width=1,
        height=1, filename="cut.jpg", source_id="1", xyxy_norm=[[0.1, 0.1, 0.2, 0.2]],
        labels=[1], texts=["cls_0"], difficult=[0], truncated=[0],
    )  # fmt: skip
    write_sharded(rec, iter([payloads[0], encode_example(cut)]), shards=1)
    assert main(["convert", str(tmp_path / "tf"), str(tmp_path / "out"), "--to", "coco"]) == 2
    err = _one_error(capsys)
    assert "train.record: record 2" in err and "not a readable image (image-" in err
    assert not (tmp_path / "out").exists()


def test_coco_folder_refuses_the_left_out_boxes_of_every_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """instances_train.json's zero-size boxes stop convert as instances_val.json's do (they
    were dropped silently: only the last JSON's left-out boxes were kept); --skip-bad lists
    all 3 (2 of train, 1 of valid)."""
    coco = make_split_sources(tmp_path / "src")["coco"]
    argv = ["convert", str(coco), str(tmp_path / "out"), "--to", "darknet"]
    assert main(argv) == 2
    assert _one_error(capsys) == (
        "detforge convert: error: 3 invalid box(es) or image size(s) (box-zero-size), first: "
        f"{coco}/annotations/instances_train.json: annotation #1 (id 2): box-zero-size: 'cat' "
        "box bbox=[5, 5, 0, 10]; fix them (see detforge check) or pass --skip-bad to convert "
        "without them"
    )
    assert main([*argv, "--skip-bad"]) == 0
    out = capsys.readouterr().out
    assert [x.split(": annotation")[0] for x in out.splitlines() if "left out" in x] == [
        f"note: left out: {coco}/annotations/instances_{s}.json" for s in ("train",) * 2 + ("val",)
    ]
    assert "converted 3 images, 3 boxes" in out


def test_coco_folder_names_the_json_that_lists_a_missing_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An image of instances_train.json that is not there was said to be listed in
    instances_val.json (the last JSON read named every image)."""
    coco = make_split_sources(tmp_path / "src")["coco"]
    (coco / "train" / "a.jpg").unlink()
    argv = ["convert", str(coco), str(tmp_path / "out"), "--to", "darknet", "--skip-bad"]
    assert main(argv) == 2
    image = coco / "train" / "a.jpg"
    assert _one_error(capsys) == (
        f"detforge convert: error: {coco}/annotations/instances_train.json: image id 1 "
        f"({image}): image {image} not found; cannot link it"
    )
    assert not (tmp_path / "out").exists()
