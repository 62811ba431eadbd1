"""Ultralytics YAML datasets: hand-written layouts in, our YAML out."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from detforge.errors import DetforgeError
from detforge.formats.ultralytics import (
    read_ultralytics,
    ultralytics_label_path,
    write_ultralytics,
)
from tests.formats.fmt_helpers import make_image_dataset


def _touch_image(p: Path) -> None:
    from PIL import Image

    p.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 6)).save(p)


def _layout(root: Path) -> None:
    for split, stems in (("train", ["a", "b"]), ("val", ["c"])):
        for s in stems:
            _touch_image(root / "images" / split / f"{s}.jpg")
    (root / "labels" / "train").mkdir(parents=True)
    (root / "labels" / "val").mkdir(parents=True)
    (root / "labels" / "train" / "a.txt").write_text("1 0.5 0.5 0.25 0.125\n0 0.1 0.2 0.1 0.2\n")
    (root / "labels" / "val" / "c.txt").write_text("2 0.5 0.5 1 1\n")  # b has no file: negative


def test_reads_documented_layout_with_relative_path(tmp_path: Path) -> None:
    root = tmp_path / "datasets" / "toy"
    _layout(root)
    y = tmp_path / "cfg" / "toy.yaml"
    y.parent.mkdir()
    y.write_text(
        "path: ../datasets/toy\ntrain: images/train\nval: images/val\ntest:\n"
        "names:\n  0: person\n  1: bicycle\n  2: car\n"
    )
    ds = read_ultralytics(y)
    assert ds.class_names == ("person", "bicycle", "car")
    assert [Path(p).name for p in ds.images.path] == ["a.jpg", "b.jpg", "c.jpg"]
    assert ds.images.split.tolist() == ["train", "train", "valid"]
    assert ds.boxes_per_image().tolist() == [2, 0, 1]
    np.testing.assert_array_equal(ds.boxes.coords[0], [0.5, 0.5, 0.25, 0.125])


def test_list_files_and_name_lists(tmp_path: Path) -> None:
    _layout(tmp_path)
    (tmp_path / "train.txt").write_text("./images/train/a.jpg\nimages/train/b.jpg\n")
    (tmp_path / "d.yaml").write_text(
        "train: train.txt\nval: [images/val]\nnames: [p, q, r]\nnc: 3\n"
    )
    ds = read_ultralytics(tmp_path / "d.yaml")
    assert ds.num_images == 3 and ds.num_boxes == 3 and ds.class_names == ("p", "q", "r")


@pytest.mark.parametrize(
    ("yaml_text", "label", "msg"),
    [
        ("train: images/train\nnames: {0: a}\n", "0 0.5 0.5 0.1 0.1\n", "class id 1"),
        ("train: images/train\nnames: [a, b]\nnc: 3\n", "", "disagrees"),
        ("train: images/nope\nnames: [a, b]\n", "", "neither a folder"),
        ("train: images/train\n", "", "needs 'names'"),
        ("train: images/train\nnames: [a, b]\n", "0 0.5 0.5 0.1\n", "got 4 values"),
        ("train: [unclosed\n", "", "not valid YAML"),
    ],
)
def test_errors_name_the_problem(tmp_path: Path, yaml_text: str, label: str, msg: str) -> None:
    _layout(tmp_path)
    if label:
        (tmp_path / "labels" / "train" / "b.txt").write_text(label)
    (tmp_path / "d.yaml").write_text(yaml_text)
    with pytest.raises(DetforgeError, match=msg):
        read_ultralytics(tmp_path / "d.yaml")


def test_writer_layout_and_yaml(tmp_path: Path) -> None:
    ds = make_image_dataset(tmp_path, num_images=6, num_classes=3, negatives=2)
    y = write_ultralytics(ds, tmp_path / "out")
    data = yaml.safe_load(y.read_text())
    assert data["path"] == str((tmp_path / "out").resolve())
    assert (data["train"], data["val"], data["test"]) == (
        "images/train",
        "images/val",
        "images/test",
    )
    assert data["names"] == {0: "cls_0", 1: "cls_1", 2: "cls_2"} and data["nc"] == 3
    labels = sorted((tmp_path / "out" / "labels").rglob("*.txt"))
    assert len(labels) == 6 and sum(1 for p in labels if p.read_text() == "") == 2
    # Stems stay unique within a split even when source names clash (two "same.png").
    one = make_image_dataset(tmp_path / "one", num_images=4, num_classes=2, splits=("train",))
    write_ultralytics(one, tmp_path / "out1")
    stems = sorted(p.stem for p in (tmp_path / "out1" / "images" / "train").iterdir())
    assert stems == ["d0_same", "d1_same", "img_000", "img_003"]
    assert ultralytics_label_path("/d/images/x/images/a.b.jpg") == "/d/images/x/labels/a.b.txt"


def test_segmentation_polygons_read_as_their_boxes(tmp_path: Path) -> None:
    _layout(tmp_path)
    (tmp_path / "labels" / "train" / "b.txt").write_text(
        "1 0.1 0.2 0.5 0.2 0.5 0.6 0.1 0.6\n0 0.5 0.5 0.2 0.2\n"
    )
    (tmp_path / "d.yaml").write_text("train: images/train\nval: images/val\nnames: [a, b, c]\n")
    ds = read_ultralytics(tmp_path / "d.yaml")
    b = ds.select([1])
    assert b.boxes.cls.tolist() == [1, 0]
    np.testing.assert_allclose(b.boxes.coords, [[0.3, 0.4, 0.4, 0.4], [0.5, 0.5, 0.2, 0.2]])
    assert "polygons" in ds.meta["notes"][0]
    (tmp_path / "labels" / "train" / "b.txt").write_text("1 0.1 0.2 0.5 0.2 0.5 0.6\n0 1 2 3\n")
    with pytest.raises(DetforgeError, match="got 4 values") as info:
        read_ultralytics(tmp_path / "d.yaml")
    assert info.value.line == 2


def test_reader_and_checker_resolve_the_yaml_alike(tmp_path: Path) -> None:
    """A folder, a Windows-written list (BOM, CRLF, backslashes), one image file and an extra
    split key: the reader and ``detforge check`` name the same images with the same splits."""
    from detforge.check.darknet import scan_darknet

    _layout(tmp_path)
    _touch_image(tmp_path / "images" / "test" / "t.jpg")
    _touch_image(tmp_path / "images" / "extra" / "e.jpg")
    (tmp_path / "val.txt").write_bytes("\ufeffimages\\val\\c.jpg\r\n# note\r\n".encode())
    (tmp_path / "d.yaml").write_text(
        "path: .\ntrain: images/train\nval: val.txt\ntest: images/test/t.jpg\n"
        "extra: images/extra\nnames: [p, q, r]\n"
    )
    want = {
        str(tmp_path / "images" / "train" / "a.jpg"): "train",
        str(tmp_path / "images" / "train" / "b.jpg"): "train",
        str(tmp_path / "images" / "val" / "c.jpg"): "valid",
        str(tmp_path / "images" / "test" / "t.jpg"): "test",
        str(tmp_path / "images" / "extra" / "e.jpg"): "extra",
    }
    ds = read_ultralytics(tmp_path / "d.yaml")
    assert dict(zip(ds.images.path.tolist(), ds.images.split.tolist(), strict=True)) == want
    scan = scan_darknet(tmp_path / "d.yaml", cache=False)
    checked = {scan.images[i]: s for i, s in zip(scan.entry_image, scan.entry_split, strict=True)}
    assert checked == want
    assert not [f for f in scan.findings if f.code in ("list-missing", "read-error")]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_pipe_named_like_a_label_is_an_error_not_a_hang(tmp_path: Path) -> None:
    """A FIFO where a label file should be: one error naming it, at once (a plain open()
    waited for a writer forever; the fuzz suite reached such a pipe through '..' paths)."""
    import signal

    root = tmp_path / "toy"
    _layout(root)
    os.mkfifo(root / "labels" / "train" / "b.txt")
    y = tmp_path / "toy.yaml"
    y.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames: [a, b, c]\n")

    def hung(*_: object) -> None:
        raise TimeoutError("reading the dataset waited on the pipe")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)  # a regression hangs: fail this test instead of the suite
    try:
        with pytest.raises(DetforgeError, match="not a regular file") as err:
            read_ultralytics(y)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert str(root / "labels" / "train" / "b.txt") in str(err.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_read_regular_file_refuses_pipes_and_folders_at_once(tmp_path: Path) -> None:
    import errno

    from detforge.utils.textfile import read_regular_file

    (tmp_path / "f.txt").write_bytes(b"0 0.5 0.5 1 1\r\n")
    assert read_regular_file(tmp_path / "f.txt") == b"0 0.5 0.5 1 1\r\n"
    os.mkfifo(tmp_path / "p.txt")
    with pytest.raises(OSError) as err:
        read_regular_file(tmp_path / "p.txt")
    assert err.value.errno == errno.EINVAL
    with pytest.raises(IsADirectoryError):
        read_regular_file(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_regular_file(tmp_path / "missing.txt")


@pytest.mark.parametrize(
    ("names", "where"),
    [
        (
            "names:\n  0: cat\n  1: dog\n  2: cat\n",
            ":5: class name 'cat' appears twice (lines 3 and 5)",
        ),
        ("names: [cat, cat, dog]\n", ":2: class name 'cat' appears twice (lines 2 and 2)"),
    ],
)
def test_duplicate_class_names_are_refused_by_info_and_convert_and_found_by_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], names: str, where: str
) -> None:
    from detforge.cli.main import main

    _layout(tmp_path)
    (tmp_path / "data.yaml").write_text("train: images/train\n" + names)
    yp = str(tmp_path / "data.yaml")
    with pytest.raises(DetforgeError, match="appears twice"):
        read_ultralytics(yp)
    capsys.readouterr()
    for argv in (["info", yp], ["convert", yp, str(tmp_path / "voc"), "--to", "voc"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"{yp}{where}" in err[0], err
        assert err[0].startswith(f"detforge {argv[0]}: error: ")
    assert not (tmp_path / "voc").exists()
    assert main(["check", yp]) == 1
    assert "name-duplicate" in capsys.readouterr().out
