"""Checking whole Darknet datasets: files, lists, names, splits, cache; and Ultralytics YAML."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from detforge.check import check_dataset

BOX = "0 0.5 0.5 0.2 0.2\n"


def _codes(report) -> set[tuple[str, str, int | None]]:
    return {(f.code, Path(f.path).name if f.path else "", f.line) for f in report.findings}


def test_clean_dataset_has_no_findings(make_darknet) -> None:
    data = make_darknet(
        {"a": BOX, "b": "1 0.3 0.3 0.1 0.1\n", "c": ""},
        splits={"train": ["a", "b"], "valid": ["c"]},
    )
    report = check_dataset(data)
    assert report.findings == []
    s = report.summary
    assert (s["images"], s["boxes"], s["classes"], s["label_files"]) == (3, 2, 2, 3)
    assert s["splits"] == {"train": 2, "valid": 1}


def test_names_and_classes_key(make_darknet) -> None:
    data = make_darknet({"a": BOX}, names="cat\n\ndog house\ncat\n\n", classes=5)
    found = _codes(check_dataset(data))
    assert ("name-empty", "obj.names", 2) in found
    assert ("name-whitespace", "obj.names", 3) in found
    assert ("name-duplicate", "obj.names", 4) in found
    assert ("classes-mismatch", "obj.data", 1) in found  # 4 names (trailing blank ignored)
    assert ("class-no-boxes", "obj.names", None) in found


def test_missing_lists_names_and_unknown_keys(make_darknet, tmp_path: Path) -> None:
    data = make_darknet({"a": BOX})
    data.write_text(
        "classes = 2\ntrain = train.txt\nvalid = nothere.txt\nnames = none.names\nbakup = backup/\n"
    )
    report = check_dataset(data)
    found = _codes(report)
    assert ("list-missing", "obj.data", 3) in found
    assert ("names-missing", "obj.data", 4) in found
    assert ("data-unknown-key", "obj.data", 5) in found
    assert {f.severity for f in report.findings if f.code == "list-missing"} == {"error"}


def test_file_level_findings(make_darknet, jpeg) -> None:
    data = make_darknet({"a": BOX, "b": None, "c": BOX, "d": BOX})
    img = data.parent / "img"
    (img / "c.txt").write_bytes(b"\x00\x01\x02binary")
    (img / "orphan.txt").write_text(BOX)
    (img / "d.jpg").write_bytes((img / "d.jpg").read_bytes()[:200])
    with open(data.parent / "train.txt", "a") as f:
        f.write("img/gone.jpg\n\nimg/a.jpg\n")
    report = check_dataset(data)
    found = _codes(report)
    assert ("label-missing", "b.jpg", None) in found
    assert ("label-unreadable", "c.txt", None) in found
    assert ("label-orphan", "orphan.txt", None) in found
    assert ("image-truncated", "d.jpg", None) in found
    assert ("image-missing", "train.txt", 5) in found
    assert ("list-duplicate", "train.txt", 7) in found
    sev = {f.code: f.severity for f in report.findings}
    assert sev["label-missing"] == "info" and sev["label-orphan"] == "warning"
    assert sev["image-missing"] == "error" and sev["label-unreadable"] == "error"


def test_a_list_given_as_the_source_reports_its_duplicate_entries(make_darknet) -> None:
    data = make_darknet({"a": BOX, "b": BOX})
    lst = data.parent / "train.txt"
    with open(lst, "a") as f:
        f.write("img/b.jpg\n./img/a.jpg\n")  # lines 3 and 4
    for source in (data, lst):  # the list itself was checked silently
        report = check_dataset(source)
        found = {c for c in _codes(report) if c[0] == "list-duplicate"}
        assert found == {("list-duplicate", "train.txt", 3), ("list-duplicate", "train.txt", 4)}
        assert report.summary["images"] == 2 and report.summary["splits"] == {"train": 2}
        text = [f.message for f in report.findings if f.code == "list-duplicate"]
        assert all("trained on twice as often" in t for t in text)


def test_a_repeat_in_the_valid_list_is_scored_twice_not_trained_on(make_darknet) -> None:
    data = make_darknet({"a": BOX, "b": BOX}, splits={"train": ["a"], "valid": ["b"]})
    with open(data.parent / "valid.txt", "a") as f:
        f.write("img/b.jpg\n")
    found = [f for f in check_dataset(data).findings if f.code == "list-duplicate"]
    assert len(found) == 1 and "it is scored twice in valid" in found[0].message


def test_an_image_listed_through_a_link_to_its_folder_is_a_duplicate(make_darknet) -> None:
    """img/a.jpg, then lnk/a.jpg (lnk -> img) and img/../img/b.jpg: the same images, so
    list-duplicate, worded with the spelling the list uses; the dataset has 2 images."""
    data = make_darknet({"a": BOX, "b": BOX})
    os.symlink(data.parent / "img", data.parent / "lnk")
    with open(data.parent / "train.txt", "a") as f:
        f.write("lnk/a.jpg\nimg/../img/b.jpg\n")  # lines 3 and 4
    report = check_dataset(data)
    dups = sorted(
        (f.line, f.message) for f in report.findings if f.code == "list-duplicate"
    )  # fmt: skip
    assert [line for line, _ in dups] == [3, 4]
    assert dups[0][1].startswith(f"{data.parent / 'lnk' / 'a.jpg'} is already listed on line 1")
    assert report.summary["images"] == 2 and report.summary["splits"] == {"train": 2}
    assert not [f for f in report.findings if f.code == "label-orphan"]


def test_split_leaks(make_darknet) -> None:
    labels = {f"clip{c}_f{i}": BOX for c in range(2) for i in range(2)}
    data = make_darknet(
        labels,
        splits={
            "train": ["clip0_f0", "clip1_f0", "clip0_f1"],
            "valid": ["clip0_f1", "clip1_f1"],
        },
    )
    img = data.parent / "img"
    shutil.copy(img / "clip0_f0.jpg", img / "copy.jpg")
    (img / "copy.txt").write_text(BOX)
    with open(data.parent / "valid.txt", "a") as f:
        f.write("img/copy.jpg\n")
    report = check_dataset(data, group_by=r"(clip\d+)_f")
    found = _codes(report)
    assert ("split-overlap", "clip0_f1.jpg", None) in found
    assert ("split-identical-image", "copy.jpg", None) in found
    leaks = [f for f in report.findings if f.code == "split-group-leak"]
    # clip0_f1 counts in train (its first split; the overlap is its own finding)
    assert [f.message.split("'")[1] for f in leaks] == ["clip1"]
    assert "1 images in train and 1 in valid" in leaks[0].message
    assert not any(f.code == "split-group-leak" for f in check_dataset(data).findings)


def test_class_imbalance(make_darknet) -> None:
    many = "".join(f"0 {0.1 + i * 0.0025:.4f} 0.5 0.001 0.2\n" for i in range(300))
    data = make_darknet({"a": many, "b": "1 0.5 0.5 0.2 0.2\n"}, names="a\nb\nc\n")
    found = _codes(check_dataset(data))
    assert ("class-no-boxes", "obj.names", None) in found
    # the 0.001-wide boxes are 0.064 px: dropped as sub-pixel, so they do not count
    assert ("class-imbalance", "obj.names", None) not in found
    wide = "".join(f"0 {0.1 + i * 0.0025:.4f} 0.5 0.05 0.2\n" for i in range(300))
    data = make_darknet({"a": wide, "b": "1 0.5 0.5 0.2 0.2\n"}, names="a\nb\nc\n")
    report = check_dataset(data)
    (imb,) = report.by_code("class-imbalance")
    assert "300 boxes" in imb.message and "only 1" in imb.message


def test_cache_reuses_unchanged_files_and_rereads_changed(make_darknet) -> None:
    data = make_darknet({f"i{k}": BOX for k in range(6)}, names="cat\n")
    first = check_dataset(data)
    assert first.summary["cached_files"] == 0 and first.findings == []
    second = check_dataset(data)
    assert second.summary["cached_files"] == second.summary["files"] == 12
    label = data.parent / "img" / "i3.txt"
    label.write_text(BOX + "0 0.5 0.5 0.2\n")
    st = label.stat()
    os.utime(label, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    third = check_dataset(data)
    assert _codes(third) == {("label-fields", "i3.txt", 2)}
    assert third.summary["cached_files"] == 11
    assert check_dataset(data, cache=False).summary["cached_files"] == 0


def test_folder_list_and_yaml_sources(make_darknet, tmp_path: Path) -> None:
    data = make_darknet({"a": BOX, "b": "3 0.5 0.5 0.2 0.2\n"})
    folder = check_dataset(data.parent / "img")
    assert folder.findings == [] and folder.summary["classes"] is None  # no names: no range
    shutil.copy(data.parent / "obj.names", data.parent / "img" / "obj.names")
    folder = check_dataset(data.parent / "img")
    assert _codes(folder) == {
        ("class-out-of-range", "b.txt", 1),
        ("class-no-boxes", "obj.names", None),  # 'dog' (1) has none
    }
    listed = check_dataset(data.parent / "train.txt")
    assert ("class-out-of-range", "b.txt", 1) in _codes(listed)
    assert listed.summary["classes"] == 2
    # Ultralytics layout: images/ and labels/ side by side, names in the YAML
    root = tmp_path / "ul"
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        shutil.copy(data.parent / "img" / "a.jpg", root / "images" / split / f"{split}.jpg")
    (root / "labels" / "train" / "train.txt").write_text(BOX + BOX)
    (root / "labels" / "val" / "val.txt").write_text("0 0.5 0.5 0.2\n")
    yml = root / "data.yaml"
    yml.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n  0: my cat\n")
    report = check_dataset(yml)
    assert report.summary["format"] == "ultralytics"
    assert _codes(report) == {
        ("box-duplicate", "train.txt", 2),
        ("label-fields", "val.txt", 1),
        ("name-whitespace", "data.yaml", None),
        ("split-identical-image", "val.jpg", None),
    }


def test_label_map_vs_names(make_darknet, tmp_path: Path) -> None:
    data = make_darknet({"a": BOX, "b": "1 0.5 0.5 0.2 0.2\n"})
    lm = tmp_path / "label_map.pbtxt"
    lm.write_text(
        "item { id: 1 name: 'cat' }\nitem { id: 2 name: 'dgo' }\nitem { id: 3 name: 'x' }\n"
    )
    found = check_dataset(data, label_map=lm).by_code("labelmap-mismatch")
    assert len(found) == 2
    assert "'dgo'" in found[0].message and "'dog'" in found[0].message
    assert "id 3" in found[1].message
    lm.write_text("item { id: 1 name: 'cat' }\nitem { id: 2 name: 'dog' }\n")
    assert check_dataset(data, label_map=lm).findings == []
    # a label map beside the .data file is compared without being asked
    (data.parent / "label_map.pbtxt").write_text("item { id: 1 name: 'cat' }\n")
    (auto,) = check_dataset(data).by_code("labelmap-mismatch")
    assert "class 1 'dog' needs id 2" in auto.message and auto.path.endswith("label_map.pbtxt")


def test_unchanged_dataset_reuses_the_last_result_until_anything_changes(
    make_darknet, jpeg
) -> None:
    data = make_darknet({"a": BOX, "b": None}, names="cat\n")
    first = check_dataset(data)
    assert _codes(first) == {("label-missing", "b.jpg", None)}
    again = check_dataset(data)
    assert again.findings == first.findings and again.summary["cached_files"] == 3
    # a new label file for the negative image (the folder's mtime changes)
    (data.parent / "img" / "b.txt").write_text("0 0.5 0.5 0.2\n")
    assert _codes(check_dataset(data)) == {("label-fields", "b.txt", 1)}
    # an edited names file
    (data.parent / "obj.names").write_text("cat\ndog\n")
    found = _codes(check_dataset(data))
    assert ("classes-mismatch", "obj.data", 1) in found
    # a replaced image (new size and mtime)
    img = data.parent / "img" / "a.jpg"
    jpeg(img, size=(20, 20))
    st = img.stat()
    os.utime(img, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert ("image-tiny", "a.jpg", None) in _codes(check_dataset(data))
    # other options are another check
    assert check_dataset(data, deep=True).summary["cached_files"] < 4


def test_valid_list_equal_to_train_and_windows_paths(make_darknet, tmp_path: Path) -> None:
    data = make_darknet({"a": BOX, "b": BOX}, names="cat\n")
    data.write_text("classes = 1\ntrain = train.txt\nvalid = ./train.txt\nnames = obj.names\n")
    report = check_dataset(data)
    (f,) = report.findings
    assert (f.code, f.line, f.severity) == ("split-overlap", 3, "error")
    assert "same list as train" in f.message
    (data.parent / "train.txt").write_text("G:\\data\\img\\a.jpg\n")
    (miss,) = check_dataset(data).by_code("image-missing")
    assert "--path-map" in miss.message and miss.line == 1
    mapped = check_dataset(data, path_map=[("G:/data", str(data.parent))])
    assert mapped.by_code("image-missing") == []


def test_a_pipe_named_like_a_label_is_reported_not_waited_on(make_darknet) -> None:
    data = make_darknet({"a": BOX, "b": None}, names="cat\n")
    os.mkfifo(data.parent / "img" / "b.txt")
    found = _codes(check_dataset(data))
    assert found == {("label-unreadable", "b.txt", None)}


def test_data_file_without_any_list_is_list_missing(make_darknet) -> None:
    """A .data file with no train=, valid= or test= used to check clean: '0 images', exit 0."""
    data = make_darknet({"a": BOX})
    data.write_text("classes = 2\nnames = obj.names\n")
    report = check_dataset(data)
    assert [(f.code, f.path, f.line, f.message) for f in report.errors] == [
        ("list-missing", str(data), None, "the .data file names no train=, valid= or test= list")
    ]


def test_list_lines_darknet_reads_as_other_paths(make_darknet) -> None:
    """Darknet's get_paths keeps every list line but its line end: a blank line, a '#' line,
    spaces around a path and a byte order mark name files that do not exist (it trains a
    blank 10x10 image for each). detforge reads the same list as the three images."""
    data = make_darknet({"a": BOX, "b": BOX, "c": BOX}, names="cat\n")
    lst = data.parent / "train.txt"
    lst.write_bytes(b"\xef\xbb\xbfimg/a.jpg\r\n\r\n# the second\r\nimg/b.jpg \r\n\timg/c.jpg\r\n")
    report = check_dataset(data)
    lines = sorted(
        (f.line, f.severity, f.message) for f in report.findings if f.code == "list-line"
    )
    assert [(n, sev) for n, sev, _ in lines] == [(n, "warning") for n in range(1, 6)]
    text = dict((n, m) for n, _, m in lines)
    assert text[1].startswith("the list starts with a byte order mark: Darknet reads it as part "
                              "of the first path, '\\ufeffimg/a.jpg', cannot load it")  # fmt: skip
    assert text[2].startswith("a blank line: Darknet reads it as an image path ('')")
    assert text[3].startswith("Darknet lists have no comments: it reads '# the second' as")
    assert text[4].startswith("spaces around the path: Darknet reads it with them, 'img/b.jpg '")
    assert text[5].startswith("spaces around the path: Darknet reads it with them, '\\timg/c.jpg'")
    assert all("trains a blank 10x10 image in its place" in m for m in text.values())
    assert report.summary["images"] == 3
    assert {f.code for f in report.findings} == {"list-line"}


def test_plain_lists_have_no_list_line_findings(make_darknet) -> None:
    data = make_darknet({"a": BOX, "b": BOX}, names="cat\n")
    (data.parent / "train.txt").write_bytes(b"img/a.jpg\r\nimg/b.jpg")  # CRLF, no final end
    assert check_dataset(data).findings == []
