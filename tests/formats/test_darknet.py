from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detforge.data.boxes import BoxFormat
from detforge.data.dataset import make_dataset
from detforge.data.lists import RepeatedEntry
from detforge.errors import DetforgeError
from detforge.formats import darknet
from detforge.formats.darknet import (
    apply_path_map,
    label_path_candidates,
    parse_label_text,
    read_darknet,
    read_data_file,
    read_image_list,
    read_names,
    write_darknet,
)
from detforge.formats.darknet import read as darknet_read
from detforge.formats.darknet.index import read_files, stat_images
from tests.formats.fmt_helpers import make_oversampled_list


def _img(path: Path, size: tuple[int, int] = (40, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (10, 20, 30)).save(path)
    return path


def test_data_file_all_keys_crlf_bom_and_unknown(tmp_path: Path) -> None:
    d = tmp_path / "set"
    d.mkdir()
    (d / "obj.data").write_bytes(
        "\ufeffclasses= 4\r\n# a comment\r\ntrain  = lists/train.txt\r\nvalid = /abs/val.txt\r\n"
        "test=t.txt\r\nnames = obj.names\r\nbackup = backup/\r\nresults=res\r\neval=coco\r\n"
        "map = map.txt\r\n\r\ntop = 5\r\n".encode()
    )
    df = read_data_file(d / "obj.data")
    assert df.classes == 4
    assert df.train == str(d / "lists" / "train.txt")  # relative to the .data folder
    assert df.valid == "/abs/val.txt"
    assert df.test == str(d / "t.txt") and df.names == str(d / "obj.names")
    assert df.backup == str(d / "backup") and df.results == str(d / "res")
    assert df.eval == "coco" and df.map == str(d / "map.txt")
    assert df.extra == {"top": "5"}
    assert df.lines["train"] == 3 and df.lines["top"] == 12
    out = tmp_path / "copy.data"
    darknet.write_data_file(out, df)
    again = read_data_file(out)
    assert again.train == df.train and again.extra == {"top": "5"} and again.eval == "coco"


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("classes=2\ntrain train.txt\n", 2, "key = value"),
        ("classes = two\n", 1, "whole number"),
        ("train = a\ntrain = b\n", 2, "twice"),
        ("classes = 1\nvalid = \n", 2, "valid = has no value"),
        ("names=\n", 1, "names = has no value"),
        ("classes = 0\n", 1, "between 1 and"),
        ("classes = -1\n", 1, "between 1 and"),
        ("classes = 99999999999999999999\n", 1, "between 1 and"),
    ],
)
def test_data_file_errors_name_the_line(tmp_path: Path, text: str, line: int, needle: str) -> None:
    p = tmp_path / "x.data"
    p.write_text(text)
    with pytest.raises(DetforgeError) as e:
        read_data_file(p)
    assert e.value.line == line and e.value.path == str(p) and needle in e.value.message


def test_relative_paths_ignore_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "ds"
    _img(root / "imgs" / "a.jpg")
    (root / "imgs" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (root / "lists").mkdir()
    (root / "lists" / "train.txt").write_text("../imgs/a.jpg\n")
    (root / "obj.data").write_text("classes=1\ntrain=lists/train.txt\nnames=obj.names\n")
    (root / "obj.names").write_text("cat\n")
    monkeypatch.chdir(tmp_path)  # somewhere else entirely
    ds = read_darknet(root / "obj.data", cache=False)
    assert ds.images.path.tolist() == [str(root / "imgs" / "a.jpg")]
    assert ds.images.width.tolist() == [40] and ds.images.height.tolist() == [30]
    assert ds.class_names == ("cat",) and ds.num_boxes == 1


def test_path_map_windows_paths(tmp_path: Path) -> None:
    pm = [("G:/data", str(tmp_path / "mnt"))]
    assert apply_path_map(r"G:\data\x\a.jpg", pm) == f"{tmp_path}/mnt/x/a.jpg"
    assert apply_path_map("g:/data/x/a.jpg", pm) == f"{tmp_path}/mnt/x/a.jpg"
    assert apply_path_map("G:/database/a.jpg", pm) == "G:/database/a.jpg"  # folder boundary
    assert apply_path_map("/other/a.jpg", pm) == "/other/a.jpg"
    assert apply_path_map("G:/data/x/a.jpg", [("G:\\data\\", "/mnt/d/")]) == "/mnt/d/x/a.jpg"
    assert apply_path_map("/home/u/ds/a.jpg", [("/home/u", "/srv")]) == "/srv/ds/a.jpg"
    assert apply_path_map("/home/U/ds/a.jpg", [("/home/u", "/srv")]) == "/home/U/ds/a.jpg"
    _img(tmp_path / "mnt" / "x" / "a.jpg")
    _img(tmp_path / "mnt" / "x" / "b.jpg")
    (tmp_path / "mnt" / "x" / "b.txt").write_text("0 0.5 0.5 1 1\r\n")
    lst = tmp_path / "train.txt"
    lst.write_bytes(b"G:\\data\\x\\a.jpg\r\n\r\n# comment\r\nG:/data/x/b.jpg\r\n")
    (tmp_path / "obj.data").write_bytes(
        b"classes = 1\r\ntrain = G:/data/../train.txt\r\nnames = G:\\data\\obj.names\r\n"
    )
    (tmp_path / "mnt" / "obj.names").write_text("thing\n")
    assert read_image_list(lst, path_map=pm) == [
        str(tmp_path / "mnt" / "x" / "a.jpg"),
        str(tmp_path / "mnt" / "x" / "b.jpg"),
    ]
    ds = read_darknet(tmp_path / "obj.data", path_map=pm, cache=False)
    assert ds.num_images == 2 and ds.num_boxes == 1 and ds.class_names == ("thing",)
    assert ds.meta["no_label_file"] == 1
    with pytest.raises(DetforgeError) as e:  # without the map: one clear error with a hint
        read_darknet(lst, cache=False)
    assert e.value.line == 1 and "--path-map" in e.value.message


def test_label_path_rules_in_order(tmp_path: Path) -> None:
    assert label_path_candidates("/d/JPEGImages/x/images/a.jpg") == [
        "/d/JPEGImages/x/images/a.txt",
        "/d/labels/x/images/a.txt",
        "/d/JPEGImages/x/labels/a.txt",
    ]
    # Darknet's rule
    _img(tmp_path / "voc" / "JPEGImages" / "a.jpg")
    (tmp_path / "voc" / "labels").mkdir()
    (tmp_path / "voc" / "labels" / "a.txt").write_text("1 0.5 0.5 0.5 0.5\n")
    # Ultralytics' rule: the last /images/ only
    _img(tmp_path / "images" / "y" / "images" / "b.png")
    (tmp_path / "images" / "y" / "labels").mkdir()
    (tmp_path / "images" / "y" / "labels" / "b.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    # same-folder label wins over the others
    _img(tmp_path / "images" / "y" / "images" / "c.png")
    (tmp_path / "images" / "y" / "images" / "c.txt").write_text("1 0.1 0.1 0.1 0.1\n")
    (tmp_path / "images" / "y" / "labels" / "c.txt").write_text("0 0.9 0.9 0.1 0.1\n")
    lst = tmp_path / "all.txt"
    lst.write_text("voc/JPEGImages/a.jpg\nimages/y/images/b.png\nimages/y/images/c.png\n")
    (tmp_path / "obj.names").write_text("a\nb\n")
    ds = read_darknet(lst, cache=False)
    assert ds.boxes.cls.tolist() == [1, 0, 1]
    assert ds.boxes.coords[2].tolist() == [0.1, 0.1, 0.1, 0.1]
    assert ds.meta["label_paths"][0].endswith("voc/labels/a.txt")


def test_missing_image_names_list_and_line(tmp_path: Path) -> None:
    _img(tmp_path / "a.jpg")
    lst = tmp_path / "valid.txt"
    lst.write_text("a.jpg\n\nnope.jpg\n")
    with pytest.raises(DetforgeError) as e:
        read_darknet(lst, cache=False)
    assert e.value.path == str(lst) and e.value.line == 3 and "nope.jpg" in e.value.message
    ds = read_darknet(lst, cache=False, missing="skip")
    assert ds.num_images == 1 and ds.images.split.tolist() == ["valid"]
    assert ds.meta["missing_images"] == [str(tmp_path / "nope.jpg")]


def test_missing_list_and_names_name_the_data_line(tmp_path: Path) -> None:
    (tmp_path / "obj.data").write_text("classes=1\n\ntrain = gone.txt\n")
    with pytest.raises(DetforgeError) as e:
        read_darknet(tmp_path / "obj.data")
    assert e.value.line == 3 and "gone.txt" in e.value.message


def test_parse_label_text_strict() -> None:
    cls, xy = parse_label_text("\ufeff0 0.5 0.5 0.1 0.2\r\n\r\n2 0.1 0.2 0.3 0.4\n")
    assert cls.tolist() == [0, 2] and xy.shape == (2, 4) and xy[1, 3] == 0.4
    for text, line in [
        ("0 0.5 0.5 0.1\n", 1),
        ("0 .5 .5 .1 .1\nx 1 1 1 1\n", 2),
        ("0 a b c d\n", 1),
        ("0 nan 1 1 1\n", 1),
    ]:
        with pytest.raises(DetforgeError) as e:
            parse_label_text(text, path="l.txt")
        assert e.value.line == line and e.value.path == "l.txt"


def test_bad_class_id_and_names(tmp_path: Path) -> None:
    _img(tmp_path / "a.jpg")
    (tmp_path / "a.txt").write_text("0 0.5 0.5 0.1 0.1\n3 0.5 0.5 0.1 0.1\n")
    (tmp_path / "x.names").write_text("a\nb\n\n")
    assert read_names(tmp_path / "x.names") == ["a", "b"]
    with pytest.raises(DetforgeError) as e:
        read_darknet(tmp_path, cache=False)
    assert e.value.path == str(tmp_path / "a.txt") and e.value.line == 2
    (tmp_path / "x.names").write_text("a\n\nb\n")
    with pytest.raises(DetforgeError) as e:
        read_names(tmp_path / "x.names")
    assert e.value.line == 2


def test_folder_source_splits_from_subfolders(tmp_path: Path) -> None:
    _img(tmp_path / "train" / "a.jpg")
    _img(tmp_path / "val" / "b.jpg")
    (tmp_path / "val" / "b.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    ds = read_darknet(tmp_path, cache=False)
    assert ds.images.split.tolist() == ["train", "valid"]
    assert ds.class_names == ("0",) and ds.meta["no_label_file"] == 1
    # Ultralytics layout: images/<split>/ with labels/<split>/
    y = tmp_path / "yolo"
    _img(y / "images" / "val" / "c.jpg")
    (y / "labels" / "val").mkdir(parents=True)
    (y / "labels" / "val" / "c.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    _img(y / "images" / "misc" / "d.jpg")
    ds = read_darknet(y, cache=False)
    assert ds.images.split.tolist() == ["", "valid"] and ds.boxes_per_image().tolist() == [0, 1]


def test_write_then_read_round_trip(tmp_path: Path) -> None:
    a = _img(tmp_path / "src" / "x" / "im.jpg", (100, 50))
    b = _img(tmp_path / "src" / "y" / "im.jpg", (60, 60))  # same base name
    ds = make_dataset(
        ["p", "q"],
        paths=[str(a), str(b)],
        widths=[100, 60],
        heights=[50, 60],
        splits=["train", "valid"],
        box_image=[0, 0],
        box_cls=[1, 0],
        box_coords=[[10, 5, 30, 25], [0, 0, 100, 50]],
        box_format=BoxFormat.XYXY_PIXEL,
    )
    data = write_darknet(ds, tmp_path / "out", images="copy")
    df = read_data_file(data)
    assert df.classes == 2 and df.valid is not None and os.path.isdir(str(df.backup))
    back = read_darknet(data, cache=False)
    assert back.images.split.tolist() == ["train", "valid"]
    assert np.allclose(back.coords_as(BoxFormat.XYXY_PIXEL), [[10, 5, 30, 25], [0, 0, 100, 50]])
    assert back.boxes_per_image().tolist() == [2, 0]
    assert (tmp_path / "out" / "valid" / "im.txt").read_text() == ""  # explicit negative
    assert a.read_bytes() == (tmp_path / "out" / "train" / "im.jpg").read_bytes()


def test_write_keeps_the_labels_of_images_sharing_a_stem_apart(tmp_path: Path) -> None:
    """x.jpg and x.png (other folders, one split) would both get x.txt: each its own name."""
    a = _img(tmp_path / "src" / "a" / "x.jpg")
    b = _img(tmp_path / "src" / "b" / "x.png")
    ds = make_dataset(
        ["p", "q"],
        paths=[str(a), str(b)],
        widths=[40, 40],
        heights=[30, 30],
        box_image=[0, 1],
        box_cls=[0, 1],
        box_coords=[[0.5, 0.5, 0.2, 0.2], [0.3, 0.3, 0.1, 0.1]],
        box_format=BoxFormat.CXCYWH_NORM,
    )
    back = read_darknet(write_darknet(ds, tmp_path / "out", images="copy"), cache=False)
    assert back.boxes.cls.tolist() == [0, 1]  # x.jpg's box was lost to x.png's label file
    assert np.allclose(back.boxes.coords, [[0.5, 0.5, 0.2, 0.2], [0.3, 0.3, 0.1, 0.1]])


def test_cache_reuses_and_notices_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(5):
        _img(tmp_path / "d" / f"{i}.png", (20 + i, 10))
        (tmp_path / "d" / f"{i}.txt").write_text(f"0 0.5 0.5 0.{i + 1} 0.1\n")
    cache_dir = tmp_path / "cache"
    first = read_darknet(tmp_path / "d", cache_dir=cache_dir)
    assert list(cache_dir.iterdir())
    assert not list((tmp_path / "d").glob("*.npz"))  # nothing written into the dataset
    calls: list[str] = []
    real = read_files

    def spy(ps, *a, **k):  # type: ignore[no-untyped-def]
        calls.extend(ps)
        return real(ps, *a, **k)

    monkeypatch.setattr(darknet_read, "read_files", spy)
    second = read_darknet(tmp_path / "d", cache_dir=cache_dir)
    assert calls == []
    assert np.array_equal(first.boxes.coords, second.boxes.coords)
    assert second.images.width.tolist() == [20, 21, 22, 23, 24]
    lab = tmp_path / "d" / "3.txt"
    lab.write_text("0 0.5 0.5 0.9 0.9\n0 0.1 0.1 0.1 0.1\n")
    os.utime(lab, ns=(1, 1))
    third = read_darknet(tmp_path / "d", cache_dir=cache_dir)
    assert calls == [str(lab)]
    assert third.boxes_per_image().tolist() == [1, 1, 1, 2, 1]
    assert third.boxes.coords[3].tolist() == [0.5, 0.5, 0.9, 0.9]


def test_threaded_stat_pass_matches_serial(tmp_path: Path) -> None:
    real = []
    for i in range(3):
        p = _img(tmp_path / f"r{i}.png")
        if i:
            p.with_suffix(".txt").write_text("0 0.5 0.5 0.1 0.1\n" * i)
        real.append(str(p))
    paths = [str(tmp_path / f"ghost{i}.jpg") for i in range(9000)]
    paths[10], paths[5000], paths[8999] = real
    par = stat_images(paths, workers=4)
    ser = stat_images(paths, workers=1)
    for name in ("size", "mtime_ns", "label_rule", "label_size", "label_mtime_ns"):
        assert np.array_equal(getattr(par, name), getattr(ser, name))
    assert par.label_paths == ser.label_paths
    assert (par.size >= 0).sum() == 3 and par.size[5000] > 0
    assert par.label_paths[10] == "" and par.label_paths[8999] == str(tmp_path / "r2.txt")
    assert par.label_size[8999] == 36


def test_sizes_read_later_are_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(3):
        _img(tmp_path / "d" / f"{i}.png", (10 + i, 5))
    cache_dir = tmp_path / "cache"
    assert read_darknet(
        tmp_path / "d", read_sizes=False, cache_dir=cache_dir
    ).images.width.tolist() == [0, 0, 0]
    assert read_darknet(tmp_path / "d", cache_dir=cache_dir).images.width.tolist() == [10, 11, 12]

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("sizes should come from the cache")

    monkeypatch.setattr(darknet_read, "read_image_sizes", boom)
    assert read_darknet(tmp_path / "d", cache_dir=cache_dir).images.width.tolist() == [10, 11, 12]


def test_data_key_may_name_a_folder(tmp_path: Path) -> None:
    _img(tmp_path / "val" / "a.jpg")
    _img(tmp_path / "val" / "sub" / "b.jpg")
    (tmp_path / "obj.data").write_text("classes = 1\nvalid = val\n")
    ds = read_darknet(tmp_path / "obj.data", cache=False)
    assert ds.images.split.tolist() == ["valid", "valid"] and ds.num_images == 2


def test_wrong_kind_of_file_as_list(tmp_path: Path) -> None:
    png = _img(tmp_path / "a.png")
    with pytest.raises(DetforgeError, match="binary file"):
        read_image_list(png)
    lab = tmp_path / "a.txt"
    lab.write_text("0 0.5 0.5 0.25 0.25\n")
    with pytest.raises(DetforgeError, match="is a Darknet label line") as e:
        read_darknet(lab, cache=False)
    assert e.value.line == 1
    odd = tmp_path / "odd.txt"
    odd.write_bytes("a\x85b.png\r\n".encode("latin-1"))  # \x85 is not a line break here
    # not UTF-8: the line names the file with exactly these bytes (as the OS decodes names)
    assert read_image_list(odd) == [os.fsdecode(bytes(tmp_path) + b"/a\x85b.png")]


def test_darknet_repo_layout_found_from_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The classic layout: paths in obj.data and train.txt are relative to the darknet folder."""
    dk = tmp_path / "darknet"
    _img(dk / "data" / "obj" / "img1.jpg")
    (dk / "data" / "obj" / "img1.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    _img(dk / "data" / "obj" / "img2.jpg")
    (dk / "data" / "train.txt").write_text("data/obj/img1.jpg\ndata/obj/img2.jpg\n")
    (dk / "data" / "obj.names").write_text("bird\n")
    (dk / "data" / "obj.data").write_text(
        "classes = 1\ntrain = data/train.txt\nnames = data/obj.names\nbackup = backup/\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    ds = read_darknet(dk / "data" / "obj.data", cache=False)
    assert ds.images.path.tolist() == [str(dk / "data" / "obj" / f"img{i}.jpg") for i in (1, 2)]
    assert ds.num_boxes == 1 and ds.class_names == ("bird",)
    assert any("Darknet resolves" in n for n in ds.meta["notes"])
    assert read_darknet(dk / "data" / "train.txt", cache=False).num_images == 2
    (dk / "data" / "train.txt").write_text("data/obj/img1.jpg\ndata/obj/gone.jpg\n")
    with pytest.raises(DetforgeError) as e:
        read_darknet(dk / "data" / "obj.data", cache=False)
    assert e.value.line == 2 and "relative entries" in e.value.message


def test_duplicate_class_name_names_both_lines(tmp_path: Path) -> None:
    (tmp_path / "x.names").write_text("person\ncar\nperson\n")
    with pytest.raises(DetforgeError) as e:
        read_names(tmp_path / "x.names")
    assert e.value.path == str(tmp_path / "x.names") and e.value.line == 3
    assert "'person' appears twice (lines 1 and 3)" in e.value.message


def test_repeated_list_entries_are_kept_and_listed_with_their_lines(tmp_path: Path) -> None:
    lst = make_oversampled_list(tmp_path)
    a = str(tmp_path / "a.jpg")
    for _ in range(2):  # the second read comes from the index cache
        ds = read_darknet(lst)
        assert ds.num_images == 4 and ds.num_boxes == 4  # Darknet trains on a.jpg 3 times
        assert ds.meta["repeated_entries"] == [
            RepeatedEntry(a, str(lst), 3, str(lst), 1),
            RepeatedEntry(a, str(lst), 5, str(lst), 1),
        ]
    lst.write_text("a.jpg\nb.jpg\n")
    assert "repeated_entries" not in read_darknet(lst).meta


def test_write_darknet_names_a_repeated_image_again(tmp_path: Path) -> None:
    ds = read_darknet(make_oversampled_list(tmp_path / "src"))
    data = write_darknet(ds, tmp_path / "out", images="copy")
    out = tmp_path / "out" / "train"
    assert (tmp_path / "out" / "train.txt").read_text().splitlines() == [
        str(out / n) for n in ("a.jpg", "b.jpg", "a.jpg", "a.jpg")
    ]
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "a.txt", "b.jpg", "b.txt"]
    back = read_darknet(data)
    assert back.num_images == 4 and len(back.meta["repeated_entries"]) == 2
    # the same file with other boxes is another image: both are written
    ds2 = make_dataset(
        ["cat"],
        paths=[str(tmp_path / "src" / "a.jpg")] * 2,
        box_image=[0, 1],
        box_cls=[0, 0],
        box_coords=[[0.5, 0.5, 0.2, 0.2], [0.4, 0.5, 0.2, 0.2]],
        box_format=BoxFormat.CXCYWH_NORM,
    )
    write_darknet(ds2, tmp_path / "out2", images="none")
    assert len(set((tmp_path / "out2" / "train.txt").read_text().splitlines())) == 2
