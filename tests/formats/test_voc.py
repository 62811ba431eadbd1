"""Pascal VOC: the BCCD dataset, the pixel convention, safe XML parsing."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from detforge.data.boxes import BoxFormat
from detforge.data.dataset import make_dataset
from detforge.errors import DetforgeError
from detforge.formats.darknet import read_darknet, write_darknet
from detforge.formats.voc import format_voc_xml, parse_voc_xml, read_voc, write_voc


def _xml_boxes(xml: Path) -> list[tuple[str, float, float, float, float]]:
    """Reference: the raw 1-based VOC values, read with the standard library."""
    root = ET.parse(xml).getroot()
    out = []
    for obj in root.iter("object"):
        bb = obj.find("bndbox")
        assert bb is not None
        vals = [float(bb.findtext(k) or "nan") for k in ("xmin", "ymin", "xmax", "ymax")]
        out.append((obj.findtext("name") or "", vals[0], vals[1], vals[2], vals[3]))
    return out


@pytest.fixture(scope="module")
def bccd(ref_data: Path) -> Path:
    return ref_data / "bccd"


def test_bccd_reads_with_splits_flags_and_convention(bccd: Path) -> None:
    ds = read_voc(bccd)
    assert ds.num_images == 364 and ds.class_names == ("Platelets", "RBC", "WBC")
    counts = {s: ds.split(s).num_images for s in ds.splits()}
    assert counts == {"train": 205, "valid": 87, "test": 72}
    xml = bccd / "Annotations" / "BloodImage_00000.xml"
    i = [Path(p).name for p in ds.images.path].index("BloodImage_00000.jpg")
    mine = ds.select([i])
    ref = _xml_boxes(xml)
    assert [mine.class_names[c] for c in mine.boxes.cls] == [r[0] for r in ref]
    want = np.array([[r[1] - 1, r[2] - 1, r[3], r[4]] for r in ref])
    np.testing.assert_array_equal(mine.boxes.coords, want)
    trunc = [o.findtext("truncated") == "1" for o in ET.parse(xml).getroot().iter("object")]
    assert mine.boxes.truncated.tolist() == trunc and any(trunc)
    assert (mine.images.width[0], mine.images.height[0]) == (640, 480)


def test_bccd_voc_to_darknet_to_coco_matches_xml(bccd: Path, tmp_path: Path) -> None:
    from detforge.formats.coco import write_coco

    data = write_darknet(read_voc(bccd), tmp_path / "dk")  # images hard-linked
    dk = read_darknet(data, cache=False)
    jsons = write_coco(dk, tmp_path / "coco", images="none")
    checked = 0
    for split, js in jsons.items():
        coco = json.loads(Path(js).read_text())
        cats = {c["id"]: c["name"] for c in coco["categories"]}
        files = {im["id"]: Path(im["file_name"]).stem for im in coco["images"]}
        by_image: dict[str, list[tuple[str, list[float]]]] = {}
        for a in coco["annotations"]:
            by_image.setdefault(files[a["image_id"]], []).append(
                (cats[a["category_id"]], a["bbox"])
            )
        assert len(files) == {"train": 205, "valid": 87, "test": 72}[split]
        for stem, boxes in by_image.items():
            ref = _xml_boxes(bccd / "Annotations" / f"{stem}.xml")
            # clicks without a drag (xmin == xmax or ymin == ymax) are left out by the reader
            ref = [r for r in ref if r[3] > r[1] and r[4] > r[2]]
            assert len(ref) == len(boxes)
            for (name, bbox), (rname, xmin, ymin, xmax, ymax) in zip(boxes, ref, strict=True):
                assert name == rname
                want = [xmin - 1, ymin - 1, xmax - xmin + 1, ymax - ymin + 1]
                np.testing.assert_allclose(bbox, want, atol=1e-3)
                checked += 1
    assert checked == 4886  # 4,888 in the XML, 2 of them zero-size clicks (BCCD 00338, 00343)
    invalid = read_voc(bccd).meta["invalid_boxes"]
    assert sorted((Path(b.path).name, b.code) for b in invalid) == [
        ("BloodImage_00338.xml", "box-zero-size"),
        ("BloodImage_00343.xml", "box-zero-size"),
    ]


def test_pixel_convention_is_exactly_inverse(tmp_path: Path) -> None:
    ds = make_dataset(
        ["a", "b"],
        paths=[str(tmp_path / "x.jpg")],
        widths=[50],
        heights=[40],
        splits=["train"],
        box_image=[0, 0],
        box_cls=[0, 1],
        box_coords=np.array([[0, 0, 50, 40], [10, 5, 20.25, 17]], dtype=float),
        box_format=BoxFormat.XYXY_PIXEL,
    )
    out = write_voc(ds, tmp_path / "voc", images="none")
    text = (out / "Annotations" / "x.xml").read_text()
    # Whole image -> 1..W, 1..H (VOC's 1-based inclusive pixels); non-integers stay exact.
    assert "<xmin>1</xmin>" in text and "<xmax>50</xmax>" in text and "<ymax>40</ymax>" in text
    assert "<xmin>11</xmin>" in text and "<xmax>20.25</xmax>" in text
    back = read_voc(out)
    np.testing.assert_array_equal(back.boxes.coords, ds.boxes.coords)
    assert back.class_names == ("a", "b")  # from labels.txt, including the order
    assert (out / "ImageSets" / "Main" / "train.txt").read_text() == "x\n"


def test_unsafe_and_malformed_xml_are_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "Annotations" / "bomb.xml"
    bomb.parent.mkdir()
    bomb.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>\n'
        "<annotation><filename>&lol2;</filename></annotation>\n"
    )
    with pytest.raises(DetforgeError, match="unsafe XML"):
        parse_voc_xml(bomb)
    bomb.write_text("<annotation><object><name>a</name>")
    with pytest.raises(DetforgeError, match="malformed XML"):
        read_voc(tmp_path)
    bomb.write_text(
        format_voc_xml(
            filename="b.jpg", width=5, height=5, objects=[("a", [0.0, 0.0, 1.0, 1.0], False, False)]
        ).replace("<xmax>1</xmax>", "<xmax>one</xmax>")
    )
    with pytest.raises(DetforgeError, match="non-number") as info:
        read_voc(tmp_path)
    assert info.value.path == str(bomb)


def test_unlisted_annotations_are_kept_and_classes_checked(tmp_path: Path) -> None:
    ann = tmp_path / "Annotations"
    ann.mkdir()
    for stem in ("a", "b"):
        objs: list[tuple[str, list[float], bool, bool]] = [
            ("cat", [1.0, 2.0, 3.0, 4.0], True, False)
        ]
        (ann / f"{stem}.xml").write_text(
            format_voc_xml(filename=f"{stem}.jpg", width=9, height=9, objects=objs)
        )
    main = tmp_path / "ImageSets" / "Main"
    main.mkdir(parents=True)
    (main / "val.txt").write_text("a\n")
    ds = read_voc(tmp_path)
    assert ds.images.split.tolist() == ["valid", ""]
    assert ds.meta["warnings"] and ds.boxes.difficult.tolist() == [True, True]
    with pytest.raises(DetforgeError, match="not in the class list"):
        read_voc(tmp_path, class_names=["dog"])


def test_split_lists_with_underscores_but_not_class_lists(tmp_path: Path) -> None:
    ann = tmp_path / "Annotations"
    ann.mkdir()
    for stem in ("a", "b"):
        (ann / f"{stem}.xml").write_text(format_voc_xml(filename=f"{stem}.jpg", width=4,
                                                        height=4, objects=[]))  # fmt: skip
    main = tmp_path / "ImageSets" / "Main"
    main.mkdir(parents=True)
    (main / "train_clean_10.txt").write_text("a\n")
    (main / "cat_train.txt").write_text("a  1\nb -1\n")  # VOC per-class list: ignored
    ds = read_voc(tmp_path)
    assert ds.images.split.tolist() == ["train_clean_10", ""]


def _voc_with_images(root: Path, stems: list[str], filenames: list[str]) -> Path:
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    for k, (stem, filename) in enumerate(zip(stems, filenames, strict=True)):
        objs: list[tuple[str, list[float], bool, bool]] = [
            ("cat", [float(k), 0.0, float(k) + 5, 5.0], False, False)
        ]
        (root / "Annotations" / f"{stem}.xml").write_text(
            format_voc_xml(filename=filename, width=16, height=16, objects=objs)
        )
    return root


def test_the_image_named_like_the_xml_wins_over_a_stale_filename(tmp_path: Path) -> None:
    from PIL import Image

    root = _voc_with_images(tmp_path, ["a", "b"], ["b.jpg", "b.jpg"])  # a.xml copied from b
    for stem in ("a", "b"):
        Image.new("RGB", (16, 16)).save(root / "JPEGImages" / f"{stem}.jpg")
    ds = read_voc(root)
    assert [Path(p).name for p in ds.images.path] == ["a.jpg", "b.jpg"]
    assert ds.boxes.image.tolist() == [0, 1] and ds.boxes.coords[:, 0].tolist() == [0.0, 1.0]
    assert "a.xml says b.jpg, read as a.jpg" in ds.meta["warnings"][0]


def test_two_annotations_of_one_image_are_an_error_naming_both(tmp_path: Path) -> None:
    from PIL import Image

    root = _voc_with_images(tmp_path, ["a", "b"], ["b.jpg", "b.jpg"])
    Image.new("RGB", (16, 16)).save(root / "JPEGImages" / "b.jpg")  # no a.jpg
    with pytest.raises(DetforgeError, match=r"a\.xml and .*b\.xml both describe the image "
                       r".*b\.jpg") as info:  # fmt: skip
        read_voc(root)
    assert "\n" not in str(info.value)


def test_labels_txt_with_a_class_twice_is_an_error_naming_the_line(tmp_path: Path) -> None:
    ann = tmp_path / "Annotations"
    ann.mkdir()
    objs: list[tuple[str, list[float], bool, bool]] = [("cat", [1.0, 2.0, 3.0, 4.0], False, False)]
    (ann / "a.xml").write_text(format_voc_xml(filename="a.jpg", width=9, height=9, objects=objs))
    (tmp_path / "labels.txt").write_text("\ufeffcat\n\ndog\n")  # BOM and blank line: fine
    assert read_voc(tmp_path).class_names == ("cat", "dog")
    (tmp_path / "labels.txt").write_text("cat\ndog\ncat\n")
    with pytest.raises(DetforgeError) as e:
        read_voc(tmp_path)
    assert e.value.path == str(tmp_path / "labels.txt") and e.value.line == 3
    assert "class name 'cat' appears twice (lines 1 and 3)" in e.value.message
