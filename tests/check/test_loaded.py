"""Reader-backed checks: the real BCCD VOC folder and small COCO files."""

from __future__ import annotations

import json
from pathlib import Path

from detforge.check import check_dataset, fix_dataset


def test_bccd_real_findings(ref_data: Path, tmp_path: Path) -> None:
    report = check_dataset(ref_data / "bccd")
    assert report.summary["format"] == "voc" and report.summary["images"] == 364
    zero = report.by_code("box-zero-size")
    assert sorted(Path(f.path).name for f in zero) == [
        "BloodImage_00338.xml",
        "BloodImage_00343.xml",
    ]
    assert "xmin=504 xmax=504" in next(f.message for f in zero if "00338" in f.path)
    assert [f.code for f in report.errors] == ["box-zero-size", "box-zero-size"]
    near = report.by_code("box-near-duplicate")
    assert len(near) >= 5 and all("IoU 0.9" in f.message for f in near)
    fixed = fix_dataset(ref_data / "bccd", tmp_path / "bccd-fixed")
    again = check_dataset(fixed.data_file)
    assert again.errors == [] and again.summary["boxes"] == report.summary["boxes"]
    assert fixed.counts() == {"drop-box": 2}


def test_coco_boxes_sizes_and_missing_images(tmp_path: Path, jpeg) -> None:
    jpeg(tmp_path / "a.jpg", size=(100, 50))
    jpeg(tmp_path / "b.jpg", size=(80, 80))
    coco = {
        "images": [
            {"id": 1, "file_name": "a.jpg", "width": 100, "height": 50},
            {"id": 2, "file_name": "b.jpg", "width": 60, "height": 80},
            {"id": 3, "file_name": "c.jpg", "width": 10, "height": 10},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [90, 10, 20, 20], "area": 400},
            {"id": 3, "image_id": 1, "category_id": 2, "bbox": [10, 10, 0, 20], "area": 0},
        ],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
    }
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(coco))
    report = check_dataset(gt)
    got = {(f.code, Path(f.path).name) for f in report.findings}
    assert got == {
        ("box-outside-image", "a.jpg"),
        ("box-zero-size", "gt.json"),  # the JSON names the record: annotation #2 (id 3)
        ("image-size-mismatch", "b.jpg"),
        ("image-missing", "c.jpg"),
        ("class-no-boxes", "gt.json"),  # the only dog box has zero width
    }
    out = tmp_path.parent / f"{tmp_path.name}-fixed"  # not in the folder of the images
    fixed = fix_dataset(gt, out)
    log = (out / "fixes.json").read_text()
    assert '"reason": "image-size-mismatch"' in log and '"reason": "image-missing"' in log
    again = check_dataset(fixed.data_file)
    assert again.errors == [] and again.summary["images"] == 1
    (zero,) = report.by_code("box-zero-size")
    assert zero.message.startswith("annotation #2 (id 3): 'dog' box bbox=[10, 10, 0, 20]: ")
    assert '"reason": "box-zero-size"' in log
    gt.write_text("{not json")
    broken = check_dataset(gt)
    assert [f.code for f in broken.findings] == ["read-error"]


def test_voc_findings_name_the_xml_file_the_reader_read(tmp_path: Path, jpeg) -> None:
    """An XML named unlike its image (``Annotations/x.xml`` for ``a.jpg``): findings named the
    image, as no ``Annotations/a.xml`` was there to guess; they name the XML read for it."""
    (tmp_path / "Annotations").mkdir()
    jpeg(tmp_path / "JPEGImages" / "a.jpg", size=(80, 80))
    (tmp_path / "Annotations" / "x.xml").write_text(
        "<annotation><filename>a.jpg</filename><size><width>100</width><height>50</height>"
        "</size><object><name>cat</name><bndbox><xmin>11</xmin><ymin>11</ymin><xmax>30</xmax>"
        "<ymax>30</ymax></bndbox></object></annotation>"
    )
    (mismatch,) = check_dataset(tmp_path).by_code("image-size-mismatch")
    assert mismatch.path == str(tmp_path / "Annotations" / "x.xml")
    assert mismatch.message.startswith("the annotation says 100 x 50 px but the image is 80 x 80")
