from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from detforge.data.dataset import make_dataset
from detforge.data.lists import (
    RepeatedEntry,
    first_entries,
    list_images,
    one_entry_per_image,
    repeated_entries,
    repeated_note,
    scan_images,
    shuffle_paths,
    take_every,
)
from detforge.data.validity import InvalidBox
from detforge.errors import DetforgeError


def _touch(p: Path) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"")


def test_scan_matches_find_sort(tmp_path: Path) -> None:
    for rel in [
        "b/2.jpg",
        "b/2.txt",
        "a/10.PNG",
        "a/9.jpeg",
        "c.bmp",
        "z/y/x/deep.webp",
        ".hidden/h.jpg",
        "a/.h.jpg",
        "notes.md",
        "ü/é.jpg",
    ]:
        _touch(tmp_path / rel)
    os.symlink(tmp_path / "a", tmp_path / "link_to_a")  # not followed (no loops)
    got = list_images([tmp_path])
    find = subprocess.run(
        f"cd {tmp_path} && find . -type f -not -name '*.txt' -not -name '*.md' "
        "-not -path '*/.*' | LC_ALL=C sort",
        shell=True,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert got == [os.path.normpath(tmp_path / f) for f in find]
    assert list_images([tmp_path], max_depth=0) == [str(tmp_path / "c.bmp")]
    assert len(list(scan_images(tmp_path, include_hidden=True))) == len(got) + 2
    assert list_images([tmp_path / "b", tmp_path / "b"]) == [str(tmp_path / "b" / "2.jpg")]
    with pytest.raises(DetforgeError):
        list_images([tmp_path / "missing"])


def test_every_matches_sed() -> None:
    lines = [f"{i}.jpg" for i in range(1, 24)]
    for n in (1, 2, 3, 10, 23, 30):
        sed = subprocess.run(
            ["sed", f"0~{n}!d"],
            input="\n".join(lines) + "\n",
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert take_every(lines, n) == sed
    with pytest.raises(DetforgeError):
        take_every(lines, 0)


def test_shuffle_reproducible() -> None:
    lines = [str(i) for i in range(100)]
    a, b, c = (
        shuffle_paths(lines, seed=1),
        shuffle_paths(lines, seed=1),
        shuffle_paths(lines, seed=2),
    )
    assert a == b and a != c and sorted(a) == sorted(lines) and a != lines


def test_first_entries_counts_an_image_listed_twice_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    a = str(tmp_path / "a.jpg")
    paths = [a, str(tmp_path / "b.jpg"), "a.jpg", a, str(tmp_path / "x" / ".." / "a.jpg")]
    assert first_entries(paths) == [0, 1]  # any spelling of the same path
    # per group (split): the same image in two splits is a leak, not a duplicate
    assert first_entries(paths, ["train", "train", "valid", "train", "valid"]) == [0, 1, 2]
    assert first_entries([]) == []


def test_an_image_through_a_link_to_its_folder_is_one_image(tmp_path: Path) -> None:
    """``real/a.jpg``, ``lnk/a.jpg`` (lnk -> real) and ``real/../real/a.jpg``: one image,
    listed once by ``list_images`` over both folders, the first spelling kept."""
    for name in ("a.jpg", "b.jpg"):
        _touch(tmp_path / "real" / name)
    os.symlink(tmp_path / "real", tmp_path / "lnk")
    a = str(tmp_path / "real" / "a.jpg")
    paths = [str(tmp_path / "lnk" / "a.jpg"), a, str(tmp_path / "real/../real/a.jpg")]
    assert first_entries(paths) == [0]
    assert repeated_entries(paths) == [(1, 0), (2, 0)]
    assert first_entries(paths, ["train", "valid", "valid"]) == [0, 1]  # a leak, not a repeat
    got = list_images([tmp_path / "real", tmp_path / "lnk"])
    assert got == [str(tmp_path / "lnk" / n) for n in ("a.jpg", "b.jpg")]  # "lnk" sorts first
    assert list_images([tmp_path / "lnk"]) == got  # one root: every image as found


def test_repeated_entries_point_at_the_first_and_collapse_per_split(tmp_path: Path) -> None:
    a, b = str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg")
    bad = InvalidBox("box-zero-size", "a.txt", "box 2", "0 0.5 0.5 0 0.2")  # listed per entry
    paths = [a, b, a, str(tmp_path / "x" / ".." / "b.jpg"), a]
    splits = ["train", "train", "train", "train", "valid"]
    assert repeated_entries(paths, splits) == [(2, 0), (3, 1)]  # a in valid is a leak
    assert repeated_entries(paths) == [(2, 0), (3, 1), (4, 0)]
    ds = make_dataset(
        ["cat"],
        paths=paths,
        splits=splits,
        box_image=[0, 2, 4],
        box_cls=[0, 0, 0],
        box_coords=[[0.5, 0.5, 0.2, 0.2]] * 3,
        meta={
            "label_paths": ["a.txt", "b.txt", "a2.txt", "b2.txt", "a3.txt"],
            "repeated_entries": [RepeatedEntry(a, "t.txt", 3, "t.txt", 1)],
            "invalid_boxes": [bad, bad, InvalidBox("box-zero-size", "b.txt", "box 1", "0 0")],
        },
    )
    note = repeated_note(ds, "are counted")
    assert note == (
        "2 duplicate list entries (an image listed again in its split) are counted; "
        f"first: {a}, line 3 of t.txt (first on line 1)"
    )
    one, dropped = one_entry_per_image(ds)
    assert dropped == 2 and one.images.path.tolist() == [a, b, a]
    assert one.images.split.tolist() == ["train", "train", "valid"]
    assert one.meta["label_paths"] == ["a.txt", "b.txt", "a3.txt"]  # follow the images
    assert one.boxes.image.tolist() == [0, 2] and "repeated_entries" not in one.meta
    assert [x.path for x in one.meta["invalid_boxes"]] == ["a.txt", "b.txt"]  # each box once
    assert repeated_note(one, "are counted") is None
    # without the reader's record (a dataset built in Python) nothing is said
    assert repeated_note(make_dataset(["cat"], paths=[a, a]), "x") is None
    other = RepeatedEntry(a, "valid.txt", None, "train.txt", 7)
    assert other.where() == f"{a}, valid.txt (first on line 7 of train.txt)"
