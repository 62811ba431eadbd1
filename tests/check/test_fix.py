"""``--fix``: a repaired copy that re-checks clean, every change recorded, the source untouched."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from detforge.check import check_dataset, fix_dataset
from detforge.errors import DetforgeError
from detforge.formats.darknet import read_darknet

FAULTY = (
    "0 0.5 0.5 0.2 0.2\n"  # 1 kept
    "0 0.5 0.5 0.2 0.2\n"  # 2 duplicate: dropped
    "1 0.5 0.5\n"  # 3 unparseable: dropped
    "7 0.5 0.5 0.2 0.2\n"  # 4 class out of range: dropped
    "0 0.5 0.5 0 0.2\n"  # 5 zero width: dropped
    "0 0.9 0.5 0.4 0.2\n"  # 6 past the right border: clipped to x 0.7..1.0
    "1.0 0.3 0.3 0.1 0.1\n"  # 7 class written as 1.0: kept as 1
)


def _tree_digest(root: Path) -> dict[str, tuple[str, int]]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out[str(p)] = (hashlib.sha1(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
    return out


def test_fix_repairs_records_and_never_touches_the_source(make_darknet, tmp_path: Path) -> None:
    data = make_darknet(
        {"a": FAULTY, "b": "1 0.5 0.5 0.2 0.2\n", "c": "0 0.2 0.2 0.1 0.1\n", "d": None},
        names="cat\ndog house\n",
        splits={"train": ["a", "b", "c", "d"], "valid": ["b"]},
        classes=3,
    )
    img = data.parent / "img"
    (img / "c.jpg").write_bytes((img / "c.jpg").read_bytes()[:150])  # truncated
    before = _tree_digest(data.parent)
    assert check_dataset(data).errors
    out = tmp_path / "fixed"
    fixed = fix_dataset(data, out)
    assert _tree_digest(data.parent) == before
    again = check_dataset(fixed.data_file)
    assert again.errors == []
    assert {f.code for f in again.findings} <= {"box-near-duplicate", "label-missing"}
    # the repaired labels, read back by the strict reader
    ds = read_darknet(fixed.data_file)
    assert ds.class_names == ("cat", "dog_house")
    assert sorted(Path(p).name for p in ds.images.path) == ["a.jpg", "b.jpg", "d.jpg"]
    assert ds.split("valid").num_images == 0  # b stays in train only
    a = next(i for i, p in enumerate(ds.images.path) if p.endswith("a.jpg"))
    sel = ds.boxes.image == a
    np.testing.assert_allclose(
        ds.boxes.coords[sel],
        [[0.5, 0.5, 0.2, 0.2], [0.85, 0.5, 0.3, 0.2], [0.3, 0.3, 0.1, 0.1]],
        atol=1e-6,
    )
    assert ds.boxes.cls[sel].tolist() == [0, 0, 1]
    # unchanged images are linked, not copied
    out_a = next(p for p in ds.images.path if p.endswith("a.jpg"))
    assert os.path.samefile(out_a, img / "a.jpg")
    log = json.loads((out / "fixes.json").read_text())
    changes = {(c["action"], c["reason"], c["line"]) for c in log["changes"]}
    assert {
        ("drop-box", "box-duplicate", 2),
        ("drop-line", "unparseable", 3),
        ("drop-box", "class-out-of-range", 4),
        ("drop-box", "box-zero-size", 5),
        ("clip-box", "box-outside-image", 6),
        ("rewrite-class", "class-not-integer", 7),
        ("drop-image", "image-truncated", None),
        ("drop-list-entry", "split-overlap", None),
        ("rename-class", "name-whitespace", 2),
        ("set-classes", "classes-mismatch", 1),
    } <= changes
    assert fixed.counts()["drop-box"] == 3


def test_fix_refuses_unsafe_output_folders(make_darknet, tmp_path: Path) -> None:
    data = make_darknet({"a": "0 0.5 0.5 0.2 0.2\n"})
    with pytest.raises(DetforgeError, match="never writes where its input lives"):
        fix_dataset(data, data.parent)
    with pytest.raises(DetforgeError, match="never writes where its input lives"):
        fix_dataset(data, tmp_path)  # contains the dataset
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("keep me")
    with pytest.raises(DetforgeError, match="not empty"):
        fix_dataset(data, busy)
    assert (busy / "x").read_text() == "keep me"


def test_fix_records_each_repeated_list_entry_it_drops(
    make_darknet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from detforge.cli.main import main

    data = make_darknet({"a0": "0 0.5 0.5 0.2 0.2\n", "b": "1 0.5 0.5 0.2 0.2\n"})
    lst = data.parent / "train.txt"
    lst.write_text(f"img/a0.jpg\n./img/a0.jpg\nimg/b.jpg\n{data.parent / 'img' / 'a0.jpg'}\n")
    out = tmp_path / "fixed"
    assert main(["check", str(data), "--fix", str(out)]) == 0
    assert "2 drop-list-entry" in capsys.readouterr().out
    log = json.loads((out / "fixes.json").read_text())
    dropped = [
        (c["reason"], c["path"], c["line"])
        for c in log["changes"]
        if c["action"] == "drop-list-entry"
    ]
    assert dropped == [("list-duplicate", str(lst), 2), ("list-duplicate", str(lst), 4)]
    assert read_darknet(out / "obj.data").num_images == 2


def test_names_file_without_names_is_names_missing_and_fix_records_invented_names(
    make_darknet, tmp_path: Path
) -> None:
    """A names file of blank lines only used to read as 0 classes: every box 'out of range',
    'set classes=0', and --fix wrote classes=0, which its own re-check refused."""
    data = make_darknet({"a": "0 0.5 0.5 0.2 0.2\n", "b": "1 0.5 0.5 0.2 0.2\n"}, classes=2)
    names = data.parent / "obj.names"
    names.write_text("\n\n\n")
    report = check_dataset(data)
    assert [(f.code, f.path, f.line) for f in report.findings] == [("names-missing", str(data), 3)]
    assert report.findings[0].message == f"names file {names} has no class names"
    fixed = fix_dataset(data, tmp_path / "fixed")
    assert check_dataset(fixed.data_file).errors == []
    assert read_darknet(fixed.data_file).class_names == ("class_0", "class_1")
    record = json.loads((tmp_path / "fixed" / "fixes.json").read_text())
    assert record["boxes"] == {"kept": 2, "input": 2}
    assert record["changes"] == [
        {
            "action": "write-names",
            "reason": "names-missing",
            "path": str(names),
            "line": None,
            "detail": "class_0..class_1 (2 names: classes=2)",
        }
    ]


def test_fix_keeps_eval_and_map_and_records_the_data_keys_it_leaves_out(
    make_darknet, tmp_path: Path
) -> None:
    """--fix used to drop eval=coco (Darknet's COCO-style mAP), map=, difficult= and unknown
    keys from the copy's .data without a word in fixes.json."""
    data = make_darknet({"a": "0 0.5 0.5 0.2 0.2\n", "b": "1 0.5 0.5 0.2 0.2\n"})
    (data.parent / "coco.map").write_text("0\n1\n")
    with open(data, "a") as f:
        f.write("eval = coco\nmap = coco.map\ndifficult = train.txt\nbakup = backup/\n")
    fixed = fix_dataset(data, tmp_path / "fixed")
    text = fixed.data_file.read_text()
    assert "eval = coco\n" in text
    assert f"map = {data.parent / 'coco.map'}\n" in text
    assert "difficult" not in text and "bakup" not in text
    record = json.loads((tmp_path / "fixed" / "fixes.json").read_text())
    assert [(c["action"], c["reason"], c["line"], c["detail"]) for c in record["changes"]] == [
        ("drop-key", "difficult-not-carried", 6, f"difficult = {data.parent / 'train.txt'}"),
        ("drop-key", "data-unknown-key", 7, "bakup = backup/"),
    ]
    assert all(c["path"] == str(data) for c in record["changes"])
    assert check_dataset(fixed.data_file).errors == []


def test_a_label_file_with_a_byte_order_mark_is_label_bom_and_fix_writes_it_without(
    make_darknet, tmp_path: Path
) -> None:
    """Darknet's fscanf stops at a BOM and trains the image with no boxes; detforge's
    readers skip it, so check passed the file without a word and --fix dropped the BOM
    without recording it."""
    data = make_darknet({"a": "0 0.5 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.1\n", "b": "1 0.5 0.5 0.2 0.2\n"})
    label = data.parent / "img" / "a.txt"
    label.write_bytes(b"\xef\xbb\xbf" + label.read_bytes())
    before = _tree_digest(data.parent)
    report = check_dataset(data)
    bom = [f for f in report.findings if f.code == "label-bom"]
    assert [(f.path, f.line, f.severity) for f in bom] == [(str(label), 1, "error")]
    assert "Darknet's reader stops at it and trains this image with no boxes" in bom[0].message
    assert not any(f.code.startswith("label-") and f.code != "label-bom" for f in report.findings)
    out = tmp_path / "fixed"
    fixed = fix_dataset(data, out)
    assert _tree_digest(data.parent) == before
    written = next(out.rglob("a.txt")).read_bytes()
    assert not written.startswith(b"\xef\xbb\xbf")
    ds = read_darknet(fixed.data_file)
    assert ds.num_boxes == 3  # both boxes of a kept
    log = json.loads((out / "fixes.json").read_text())
    assert [(c["action"], c["reason"], c["line"]) for c in log["changes"]] == [
        ("rewrite-label", "label-bom", 1)
    ]
    assert not [f for f in check_dataset(fixed.data_file).findings if f.code == "label-bom"]


def test_fix_records_a_split_it_empties(make_darknet, tmp_path: Path) -> None:
    """Every valid image also in train: the copy has no valid split, and fixes.json said
    only that each image left valid (a drop-split change now says the split is gone)."""
    data = make_darknet(
        {"a": "0 0.5 0.5 0.2 0.2\n", "b": "0 0.5 0.5 0.2 0.2\n"},
        splits={"train": ["a", "b"], "valid": ["b"]},
    )
    out = tmp_path / "fixed"
    fixed = fix_dataset(data, out)
    log = json.loads((out / "fixes.json").read_text())
    split_changes = [c for c in log["changes"] if c["action"] == "drop-split"]
    line = next(n for n, t in enumerate(data.read_text().splitlines(), 1) if t.startswith("valid"))
    assert split_changes == [
        {
            "action": "drop-split",
            "reason": "split-emptied",
            "path": str(data),
            "line": line,
            "detail": "every image listed in valid was left out (see the changes above): "
            "the copy has no valid split",
        }
    ]
    assert "valid" not in read_darknet(fixed.data_file).splits()


def test_fix_writes_lists_darknet_reads_as_written(make_darknet, tmp_path: Path) -> None:
    data = make_darknet({"a": "0 0.5 0.5 0.2 0.2\n", "b": "0 0.5 0.5 0.2 0.2\n"}, names="cat\n")
    lst = data.parent / "train.txt"
    lst.write_text("# made by hand\nimg/a.jpg  \n\nimg/b.jpg\n")
    before = _tree_digest(data.parent)
    out = tmp_path / "fixed"
    fixed = fix_dataset(data, out)
    assert _tree_digest(data.parent) == before
    log = json.loads((out / "fixes.json").read_text())
    keys = ("action", "reason", "path", "line", "detail")
    changes = [tuple(c[k] for k in keys) for c in log["changes"]]
    assert changes == [
        ("rewrite-list-line", "list-line", str(lst), 1, "Darknet lists have no comments"),
        ("rewrite-list-line", "list-line", str(lst), 2, "spaces around the path"),
        ("rewrite-list-line", "list-line", str(lst), 3, "a blank line"),
    ]
    written = (out / "train.txt").read_text().splitlines()
    assert len(written) == 2 and all(s == s.strip() and s and s[0] != "#" for s in written)
    assert read_darknet(fixed.data_file).num_images == 2
    assert check_dataset(fixed.data_file).findings == []
