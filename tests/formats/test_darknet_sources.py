"""The one resolver of what a ``.data`` file / image list / folder names, and its four
consumers (reader, checker, trainer, predictor) agreeing on the same tricky datasets.

The expected image sets are written out by hand from Darknet's rules (``src/data.c``
``get_paths`` reads a list line by line, paths relative to the folder ``darknet`` runs from),
not computed by the resolver.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from detforge.check import check_dataset
from detforge.check.darknet import scan_darknet
from detforge.errors import DetforgeError
from detforge.formats.darknet import read_darknet
from detforge.formats.darknet.sources import resolve_sources
from detforge.formats.detect import read_ground_truth
from detforge.predict.sources import open_source
from detforge.train.setup import load_training_data


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DETFORGE_CACHE", str(tmp_path / "cache"))
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the working directory holds nothing of the dataset


def _image(path: Path, cls: int = 0) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 48), (120, 30, 200)).save(path)
    path.with_suffix(".txt").write_text(f"{cls} 0.5 0.5 0.25 0.25\n")
    return str(path)


def _consumers(source: Path, *, split: str, path_map: tuple[tuple[str, str], ...] = ()) -> dict:
    """What each consumer loads from ``source``: sorted image paths per consumer."""
    ds = read_darknet(source, path_map=path_map, cache=False)
    scan = scan_darknet(source, path_map=path_map, cache=False)
    bad = [f for f in scan.findings if f.severity == "error"]
    assert not bad, bad
    td = load_training_data(str(source), path_map=path_map, note=lambda _m: None)
    trained = {*td.train.images.path.tolist(), *td.val.images.path.tolist()}
    pred = open_source(source, split=split, path_map=path_map)
    gt, _ = read_ground_truth(source, split=split, path_map=path_map)
    return {
        "reader": sorted(ds.images.path.tolist()),
        "checker": sorted(scan.images),
        "trainer": sorted(trained),
        "predictor": sorted(pred.paths),
        "eval": sorted(gt.images.path.tolist()),
        "reader_split": sorted(ds.split(split).images.path.tolist()),
    }


def test_run_folder_relative_lists(tmp_path: Path) -> None:
    # darknet/ is where `./darknet detector train data/obj.data ...` runs; every path in the
    # .data file and the lists is relative to it, not to data/.
    run = tmp_path / "darknet"
    a = _image(run / "data" / "img" / "a.jpg")
    b = _image(run / "data" / "img" / "b.jpg")
    data = run / "data"
    (data / "train.txt").write_text("data/img/a.jpg\n")
    (data / "valid.txt").write_text("data/img/b.jpg\n")
    (data / "obj.names").write_text("thing\n")
    (data / "obj.data").write_text(
        "classes = 1\ntrain = data/train.txt\nvalid = data/valid.txt\nnames = data/obj.names\n"
    )
    got = _consumers(data / "obj.data", split="valid")
    assert got["reader"] == got["checker"] == got["trainer"] == sorted([a, b])
    assert got["predictor"] == got["eval"] == got["reader_split"] == [b]


def test_train_key_naming_a_folder(tmp_path: Path) -> None:
    a = _image(tmp_path / "ds" / "train" / "a.jpg")
    b = _image(tmp_path / "ds" / "train" / "sub" / "b.png")
    c = _image(tmp_path / "ds" / "val" / "c.jpg")
    (tmp_path / "ds" / "valid.txt").write_text("val/c.jpg\n")
    (tmp_path / "ds" / "obj.names").write_text("thing\n")
    data = tmp_path / "ds" / "obj.data"
    data.write_text("classes = 1\ntrain = train\nvalid = valid.txt\nnames = obj.names\n")
    got = _consumers(data, split="train")
    assert got["reader"] == got["checker"] == got["trainer"] == sorted([a, b, c])
    assert got["predictor"] == got["eval"] == got["reader_split"] == sorted([a, b])
    notes = resolve_sources(data).notes
    assert any("is a folder" in n for n in notes)


def test_crlf_bom_lists_and_path_maps(tmp_path: Path) -> None:
    a = _image(tmp_path / "moved" / "img" / "a.jpg")
    b = _image(tmp_path / "moved" / "img" / "b.jpg")
    c = _image(tmp_path / "moved" / "img" / "c.jpg")
    ds_dir = tmp_path / "ds"
    ds_dir.mkdir()
    # A list written on Windows: BOM, CRLF, backslashes, a drive the path map rewrites, a
    # comment and a blank line.
    (ds_dir / "train.txt").write_bytes(
        "\ufeffG:\\data\\img\\a.jpg\r\n# comment\r\n\r\nG:/data/img/b.jpg\r\n".encode()
    )
    (ds_dir / "valid.txt").write_bytes(b"G:\\data\\img\\c.jpg\r\n")
    (ds_dir / "obj.names").write_bytes("\ufeffthing\r\n".encode())
    data = ds_dir / "obj.data"
    data.write_bytes(
        b"classes = 1\r\ntrain = train.txt\r\nvalid = valid.txt\r\nnames = obj.names\r\n"
    )
    pm = (("G:/data", str(tmp_path / "moved")),)
    got = _consumers(data, split="valid", path_map=pm)
    assert got["reader"] == got["checker"] == got["trainer"] == sorted([a, b, c])
    assert got["predictor"] == got["eval"] == got["reader_split"] == [c]
    # ... and check tells that Darknet reads the BOM, the comment and the blank line as paths
    misread = [(f.code, f.line) for f in check_dataset(data, path_map=pm).findings
               if f.code == "list-line"]  # fmt: skip
    assert misread == [("list-line", 1), ("list-line", 2), ("list-line", 3)]


def test_missing_names_every_consumer_refuses(tmp_path: Path) -> None:
    _image(tmp_path / "ds" / "a.jpg")
    (tmp_path / "ds" / "train.txt").write_text("a.jpg\n")
    data = tmp_path / "ds" / "obj.data"
    data.write_text("classes = 1\ntrain = train.txt\nvalid = train.txt\nnames = gone.names\n")
    with pytest.raises(DetforgeError, match=r"names file .*gone\.names does not exist") as e:
        read_darknet(data, cache=False)
    assert e.value.line == 4
    report = check_dataset(data)
    assert [(f.code, f.line) for f in report.errors if f.code == "names-missing"] == [
        ("names-missing", 4)
    ]
    with pytest.raises(DetforgeError, match=r"names file .*gone\.names does not exist"):
        load_training_data(str(data), note=lambda _m: None)
    with pytest.raises(DetforgeError, match=r"names file .*gone\.names does not exist"):
        open_source(data, split="valid")
    with pytest.raises(DetforgeError, match=r"names file .*gone\.names does not exist"):
        read_ground_truth(data, split="valid")


def test_lenient_mode_reports_instead_of_raising(tmp_path: Path) -> None:
    _image(tmp_path / "ds" / "a.jpg")
    (tmp_path / "ds" / "train.txt").write_text("a.jpg\n")
    data = tmp_path / "ds" / "obj.data"
    data.write_text(
        "train = train.txt\nvalid = train.txt\ntest = nowhere.txt\nnames = gone.names\nbakup = x\n"
    )
    found = resolve_sources(data, strict=False)
    assert [(p.code, p.line) for p in found.problems] == [
        ("data-unknown-key", 5),
        ("split-overlap", 2),
        ("list-missing", 3),
        ("names-missing", 4),
    ]
    assert found.same_list == {"valid": "train"}
    assert found.splits == ["train", "valid"]  # the reused list is read for both keys
    with pytest.raises(DetforgeError, match=r"test list .*nowhere\.txt does not exist") as e:
        resolve_sources(data)
    assert e.value.line == 3


def test_folder_splits_from_the_first_two_levels(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    a = _image(root / "images" / "train" / "a.jpg")
    b = _image(root / "images" / "val" / "b.jpg")
    c = _image(root / "valid" / "c.jpg")
    d = _image(root / "x" / "y" / "train" / "d.jpg")  # third level: no split
    found = resolve_sources(root)
    assert dict(zip(found.paths, found.splits, strict=True)) == {
        a: "train",
        b: "valid",
        c: "valid",
        d: "",
    }
    scan = scan_darknet(root, cache=False)
    checked = {scan.images[i]: s for i, s in zip(scan.entry_image, scan.entry_split, strict=True)}
    assert checked == {a: "train", b: "valid", c: "valid", d: ""}
    ds = read_darknet(root, cache=False)
    assert dict(zip(ds.images.path, ds.images.split, strict=True)) == checked


def test_classes_must_count_the_names_for_readers_not_the_checker(tmp_path: Path) -> None:
    """``classes = 4`` with 3 names: every reader (read, train, predict, eval) refuses it
    naming the ``.data`` line; ``check`` still reports it as ``classes-mismatch``."""
    train = tmp_path / "train.txt"
    train.write_text(_image(tmp_path / "img" / "a.jpg") + "\n")
    (tmp_path / "obj.names").write_text("a\nb\nc\n")
    data = tmp_path / "obj.data"
    data.write_text(f"classes = 4\ntrain = {train}\nvalid = {train}\nnames = obj.names\n")
    for read in (
        lambda: read_darknet(data, cache=False),
        lambda: open_source(data, split="valid"),
        lambda: read_ground_truth(data, split="valid"),
        lambda: load_training_data(str(data), check=False, note=lambda _m: None),
    ):
        with pytest.raises(DetforgeError) as err:
            read()
        assert (err.value.path, err.value.line) == (str(data), 1)
        assert "classes = 4 but the names file" in err.value.message
    scan = scan_darknet(data, cache=False)
    assert "classes-mismatch" in {f.code for f in scan.findings}


def test_a_linked_folder_then_dotdot_reads_the_file_the_system_opens(tmp_path: Path) -> None:
    """A list entry ``link/../img/a.jpg`` (``link`` a link to another folder) names the image
    beside the link's target; read as text it was another image with other labels."""
    real = tmp_path / "store" / "sub"
    real.mkdir(parents=True)
    ds_dir = tmp_path / "ds"
    ds_dir.mkdir()
    os.symlink(real, ds_dir / "link")
    target = _image(tmp_path / "store" / "img" / "a.jpg", cls=0)
    _image(ds_dir / "img" / "a.jpg", cls=1)  # what the text 'link/..' would name
    (ds_dir / "train.txt").write_text("link/../img/a.jpg\n")
    (ds_dir / "obj.names").write_text("cat\ndog\n")
    data = ds_dir / "obj.data"
    data.write_text("classes = 2\ntrain = train.txt\nnames = obj.names\n")
    ds = read_darknet(data, cache=False)
    assert ds.images.path.tolist() == [target]
    assert ds.boxes.cls.tolist() == [0]  # the label beside the image the system opens
    assert scan_darknet(data, cache=False).images == [target]
    assert list(open_source(data, split="train").paths) == [target]
