from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from detforge.cli.main import main
from detforge.formats.darknet import read_image_list


def _folder(tmp_path: Path) -> Path:
    root = tmp_path / "frames"
    for cam in ("cam1", "cam2"):
        (root / cam).mkdir(parents=True)
        for i in range(12):
            (root / cam / f"f{i:03d}.jpg").write_bytes(b"")
            (root / cam / f"f{i:03d}.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    return root


def test_lists_equals_find_sort_and_sed(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    out = tmp_path / "out" / "all.txt"
    assert main(["lists", str(root), "-o", str(out)]) == 0
    find = subprocess.run(
        f"find {root} -type f -not -name '*.txt' | LC_ALL=C sort",
        shell=True,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.read_text() == find
    every = tmp_path / "every.txt"
    assert main(["lists", str(root), "-o", str(every), "--every", "5"]) == 0
    sed = subprocess.run(["sed", "0~5!d"], input=find, capture_output=True, text=True).stdout
    assert every.read_text() == sed and len(sed.split()) == 4


def test_lists_shuffle_relative_and_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _folder(tmp_path)
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    assert main(["lists", str(root), "-o", str(a), "--shuffle", "--seed", "3"]) == 0
    assert main(["lists", str(root), "-o", str(b), "--shuffle", "--seed", "3"]) == 0
    assert a.read_text() == b.read_text()
    lines = a.read_text().split()
    plain = tmp_path / "plain.txt"
    assert main(["lists", str(root), "-o", str(plain)]) == 0
    assert sorted(lines) == plain.read_text().split() and lines != sorted(lines)
    rel = tmp_path / "lists" / "rel.txt"
    assert main(["lists", str(root / "cam2"), "-o", str(rel), "--relative"]) == 0
    assert rel.read_text().startswith("../frames/cam2/f000.jpg\n")
    assert read_image_list(rel) == [str(root / "cam2" / f"f{i:03d}.jpg") for i in range(12)]
    capsys.readouterr()
    assert main(["lists", str(root / "cam1"), "-o", "-", "--every", "6"]) == 0
    captured = capsys.readouterr()
    assert captured.out.split() == [
        str(root / "cam1" / "f005.jpg"),
        str(root / "cam1" / "f011.jpg"),
    ]
    assert "12 images" in captured.err


def test_lists_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lists", str(tmp_path / "nope"), "-o", str(tmp_path / "x.txt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "folder not found" in err[0] and "nope" in err[0]
    assert main(["lists", str(tmp_path), "-o", str(tmp_path / "x.txt"), "--every", "0"]) == 2


def test_lists_refuses_a_negative_max_depth(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.jpg").write_bytes(b"x")
    with pytest.raises(SystemExit) as e:  # was: silently 0 images
        main(["lists", str(tmp_path), "-o", "-", "--max-depth", "-1"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "argument --max-depth: expected a whole number >= 0, got '-1'" in err
    assert main(["lists", str(tmp_path), "-o", "-", "--max-depth", "0"]) == 0
    assert capsys.readouterr().out.splitlines() == [str(tmp_path / "a.jpg")]


def test_lists_never_replaces_a_file_without_exist_ok_nor_an_input_with_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _folder(tmp_path)
    (root / "cam1" / "notes.md").write_text("mine")  # any file in a scanned folder
    listed = tmp_path / "train.txt"
    listed.write_text(f"{root / 'cam2' / 'f000.jpg'}\n")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    label_dir = tmp_path / "labels"  # the Ultralytics-style label of a listed image
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "x.jpg").write_bytes(b"")
    label_dir.mkdir()
    (label_dir / "x.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    cases = [
        ([str(root)], root / "cam1" / "f003.jpg"),
        ([str(root)], root / "cam1" / "f003.txt"),
        ([str(root)], root / "cam1" / "notes.md"),
        ([str(tmp_path / "images")], label_dir / "x.txt"),
        ([str(listed)], listed),
        ([str(listed)], root / "cam2" / "f000.jpg"),
        ([str(listed)], root / "cam2" / "f000.txt"),
    ]
    for sources, target in cases:
        before = target.read_bytes()
        for extra in ([], ["--exist-ok"]):
            assert main(["lists", *sources, "-o", str(target), *extra]) == 2, target
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and str(target) in err[0], err
        assert target.read_bytes() == before
    old = outside / "all.txt"
    old.write_text("an earlier list\n")
    assert main(["lists", str(root), "-o", str(old)]) == 2
    assert "--exist-ok" in capsys.readouterr().err and old.read_text() == "an earlier list\n"
    assert main(["lists", str(root), "-o", str(old), "--exist-ok"]) == 0
    assert len(old.read_text().split()) == 24


def test_lists_thins_an_existing_list_like_sed(tmp_path: Path) -> None:
    entries = [f"frames/f{i:03d}.jpg" for i in range(1, 26)]
    src = tmp_path / "train.txt"
    body = "\r\n".join(["# made on Windows", *entries[:3], "", *entries[3:]]) + "\r\n"
    src.write_bytes(b"\xef\xbb\xbf" + body.encode())
    out = tmp_path / "train_10.txt"
    assert main(["lists", str(src), "-o", str(out), "--every", "10"]) == 0
    sed = subprocess.run(
        ["sed", "0~10!d"], input="\n".join(entries) + "\n", capture_output=True, text=True
    ).stdout.split()
    assert out.read_text().split() == [str(tmp_path / e) for e in sed]
    win = tmp_path / "win.txt"
    win.write_text("G:\\data\\a.jpg\nG:/data/b.jpg\n")
    mapped = tmp_path / "mapped.txt"
    assert main(["lists", str(win), "-o", str(mapped), "--path-map", "G:/data=/mnt/d"]) == 0
    assert mapped.read_text() == "/mnt/d/a.jpg\n/mnt/d/b.jpg\n"
    assert main(["lists", str(win), str(tmp_path), "-o", str(mapped)]) == 2


def test_lists_writes_repeated_entries_and_counts_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    img = tmp_path / "img"
    img.mkdir()
    for s in ("a", "b", "c"):
        (img / f"{s}.jpg").write_bytes(b"x")
    (tmp_path / "a.txt").write_text("img/a.jpg\nimg/b.jpg\n./img/a.jpg\n")
    (tmp_path / "b.txt").write_text(f"img/c.jpg\n{img / 'b.jpg'}\n")
    out = tmp_path / "out.txt"
    argv = ["lists", str(tmp_path / "a.txt"), str(tmp_path / "b.txt"), "-o", str(out)]
    assert main(argv) == 0
    assert [Path(p).name for p in read_image_list(out)] == [
        "a.jpg",
        "b.jpg",
        "a.jpg",
        "c.jpg",
        "b.jpg",
    ]
    note = (
        "note: 2 entries name an image already written on an earlier line; kept (Darknet "
        f"trains on each entry); first: {img / 'a.jpg'}, line 3 (first on line 1)\n"
    )
    assert capsys.readouterr().out.endswith(note)
    assert main([*argv[:-2], "-o", "-"]) == 0
    assert note in capsys.readouterr().err
    assert main(["lists", str(tmp_path / "b.txt"), "-o", str(tmp_path / "o2.txt")]) == 0
    assert "note:" not in capsys.readouterr().out


def test_lists_sees_an_image_through_a_link_to_its_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Folders ``img`` and ``lnk`` (a link to img): each image once; lists naming one image
    as ``lnk/a.jpg`` and ``img/a.jpg``: written twice as given, and counted as a repeat."""
    img = tmp_path / "img"
    img.mkdir()
    for s in ("a", "b"):
        (img / f"{s}.jpg").write_bytes(b"x")
    os.symlink(img, tmp_path / "lnk")
    out = tmp_path / "out.txt"
    assert main(["lists", str(img), str(tmp_path / "lnk"), "-o", str(out)]) == 0
    assert read_image_list(out) == [str(img / "a.jpg"), str(img / "b.jpg")]  # "img" < "lnk"
    assert capsys.readouterr().out == f"2 images -> {out}\n"
    (tmp_path / "a.txt").write_text("lnk/a.jpg\nimg/b.jpg\nimg/a.jpg\n")
    assert main(["lists", str(tmp_path / "a.txt"), "-o", str(tmp_path / "o2.txt")]) == 0
    assert read_image_list(tmp_path / "o2.txt") == [
        str(tmp_path / "lnk" / "a.jpg"), str(img / "b.jpg"), str(img / "a.jpg")
    ]  # fmt: skip
    assert capsys.readouterr().out.endswith(f"first: {img / 'a.jpg'}, line 3 (first on line 1)\n")


def test_lists_refuses_a_data_file_or_a_label_file_given_as_a_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both used to be read as image lists: 'lists obj.data' wrote '<dir>/classes = 2' as an
    image path, 'lists a.txt' wrote '<dir>/0 0.5 0.5 0.2 0.2', exit 0."""
    (tmp_path / "obj.data").write_text("classes = 1\ntrain = train.txt\n")
    (tmp_path / "a.txt").write_text("\n0 0.5 0.5 0.2 0.2\n")
    out = tmp_path / "out.txt"
    assert main(["lists", str(tmp_path / "obj.data"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"detforge lists: error: {tmp_path / 'obj.data'}: a .data file, not an image list; "
        "give the lists it names (train = ..., valid = ...)\n"
    )
    assert main(["lists", str(tmp_path / "a.txt"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"detforge lists: error: {tmp_path / 'a.txt'}:2: '0 0.5 0.5 0.2 0.2' is a Darknet label "
        "line (class cx cy w h): this is a label file, not an image list\n"
    )
    assert not out.exists()
