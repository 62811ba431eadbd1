from __future__ import annotations

import json
from pathlib import Path

import pytest

from detforge.cli.main import main
from detforge.data.synthetic import generate_shapes_dataset, render_shapes


def test_info_counts_match_the_generator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DETFORGE_CACHE", str(tmp_path / "cache"))
    data = generate_shapes_dataset(tmp_path / "ds", num_images=30, seed=5, negatives=0.2)
    _, ref = render_shapes(30, seed=5, negatives=0.2)
    assert main(["info", str(data), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    per_img = ref.boxes_per_image()
    for split in ("train", "valid", "test", "all"):
        m = (ref.images.split == split) if split != "all" else per_img >= 0
        d = info["splits"][split]
        assert d["images"] == int(m.sum())
        assert d["negatives"] == int((per_img[m] == 0).sum())
        assert d["labelled"] == int((per_img[m] > 0).sum())
        assert d["boxes"] == int(per_img[m].sum())
    assert info["splits"]["all"]["no_label_file"] == 3  # 6 negatives, every other has no .txt
    for k, name in enumerate(ref.class_names):
        assert info["splits"]["all"]["per_class"][name] == int((ref.boxes.cls == k).sum())
    assert info["sizes"]["min"] == [160, 128] and info["leaks"] == []
    assert main(["info", str(data)]) == 0
    text = capsys.readouterr().out
    assert "circle" in text and "negative" in text and "160x128" in text


def test_info_counts_an_image_listed_twice_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = generate_shapes_dataset(tmp_path / "ds", num_images=20, seed=2)
    assert main(["info", str(data), "--json"]) == 0
    before = json.loads(capsys.readouterr().out)
    train = data.parent / "train.txt"
    first = train.read_text().splitlines()[0]
    with open(train, "a") as f:
        f.write(f"{first}\n./{first}\n")  # the same image twice more, spelled two ways
    for source in (data, train):
        assert main(["info", str(source), "--json"]) == 0
        info = json.loads(capsys.readouterr().out)
        assert info["splits"]["train"] == before["splits"]["train"]  # was counted 3 times
        assert info["duplicate_entries"] == 2
    assert main(["info", str(data)]) == 0
    assert "duplicate list entries counted once: 2" in capsys.readouterr().out


def test_info_refuses_a_label_file_it_cannot_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = generate_shapes_dataset(tmp_path / "ds", num_images=12, seed=2)
    first = (data.parent / "train.txt").read_text().splitlines()[0]
    label = (data.parent / first).with_suffix(".txt")
    label.unlink(missing_ok=True)
    label.mkdir()  # was: read as an unlabelled image, exit 0
    assert main(["info", str(data)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(label) in err[0] and "cannot read label file" in err[0]


def test_info_bad_data_file_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "obj.data"
    bad.write_text("classes = 2\r\ntrain: train.txt\r\n")
    assert main(["info", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{bad}:2:" in err[0] and "key = value" in err[0]
    assert main(["info", str(tmp_path / "missing.data")]) == 2
    assert "not found" in capsys.readouterr().err


VOC_KEYS = ("xmin", "ymin", "xmax", "ymax")


def test_info_reads_other_formats_voc(ref_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import xml.etree.ElementTree as ET
    from collections import Counter

    bccd = ref_data / "bccd"
    assert main(["info", str(bccd), "--json", "--no-leaks"]) == 0
    info = json.loads(capsys.readouterr().out)
    ref: Counter[str] = Counter()
    for xml in (bccd / "Annotations").glob("*.xml"):
        for obj in ET.parse(xml).getroot().iter("object"):
            x1, y1, x2, y2 = (float(obj.findtext(f"bndbox/{k}") or 0) for k in VOC_KEYS)
            if x2 > x1 and y2 > y1:  # clicks without a drag are not boxes (check, convert agree)
                ref[obj.findtext("name", "").strip()] += 1
    assert info["splits"]["all"]["images"] == 364
    assert info["splits"]["all"]["per_class"] == dict(ref)
    assert sum(ref.values()) == 4886
    assert [b["code"] for b in info["invalid_boxes"]] == ["box-zero-size"] * 2


def test_info_reports_unknown_keys_and_bom_lists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = generate_shapes_dataset(tmp_path / "ds", num_images=10, seed=1)
    root = data.parent
    (root / "valid.txt").write_bytes(b"\xef\xbb\xbf" + (root / "valid.txt").read_bytes())
    data.write_text(data.read_text() + "top = 5\neval = coco\n")
    assert main(["info", str(data)]) == 0
    out = capsys.readouterr().out
    assert "keys Darknet does not use, kept: top" in out
    assert f"{'valid':<8}{2:>9}" in out  # the BOM did not hide the first entry


def test_info_names_a_bad_box_once_for_an_image_listed_three_times(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader lists a left-out box once per list entry; ``info`` counts the image once,
    and so the box (data.lists.one_entry_per_image)."""
    from PIL import Image

    monkeypatch.setenv("DETFORGE_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "ds"
    (root / "img").mkdir(parents=True)
    for stem in ("a", "b"):
        Image.new("RGB", (64, 48)).save(root / "img" / f"{stem}.jpg")
    (root / "img" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0 0.2\n")  # one bad box
    (root / "img" / "b.txt").write_text("1 0.5 0.5 0.2 0.2\n")
    (root / "obj.names").write_text("cat\ndog\n")
    (root / "train.txt").write_text("img/a.jpg\nimg/b.jpg\nimg/a.jpg\n./img/a.jpg\n")
    data = root / "obj.data"
    data.write_text("classes = 2\ntrain = train.txt\nnames = obj.names\n")
    assert main(["info", str(data), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["duplicate_entries"] == 2
    assert info["splits"]["train"]["images"] == 2 and info["splits"]["train"]["boxes"] == 2
    assert [(b["code"], b["record"]) for b in info["invalid_boxes"]] == [("box-zero-size", "box 2")]
    assert main(["info", str(data)]) == 0
    out = capsys.readouterr().out
    assert "invalid boxes left out: 1 " in out and "left out: 3" not in out
    assert "duplicate list entries counted once: 2" in out
