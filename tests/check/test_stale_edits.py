"""An edit that keeps a file's size and sets its mtime back (``touch -d``, ``os.utime``, a copy
tool that keeps times) is seen by every cache ``detforge check`` and ``info`` use: the
per-file label and image tables, the whole-result record and the dataset index key on the
ctime too, which no user can set back."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from tests.check.conftest import MakeDataset

from detforge.check.darknet import scan_darknet
from detforge.cli.main import main

GOOD = "0 0.5 0.5 0.2 0.2\n"
BAD = "7 0.5 0.5 0.2 0.2\n"  # the same size; class 7 of 2 names: class-out-of-range
DOG = "1 0.5 0.5 0.2 0.2\n"  # the same size, another class


def _rewrite_keeping_size_and_mtime(path: Path, data: bytes) -> None:
    before = os.stat(path)
    assert len(data) == before.st_size
    time.sleep(0.05)  # past the file system's timestamp tick: the ctime moves
    path.write_bytes(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # touch -d
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def _check(data: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = main(["check", str(data)])
    return rc, capsys.readouterr().out


@pytest.mark.usefixtures("stat_backend")
def test_check_sees_a_label_edit_with_the_mtime_set_back(
    make_darknet: MakeDataset, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_darknet({"a": GOOD, "b": DOG})
    label = data.parent / "img" / "a.txt"
    rc, out = _check(data, capsys)
    assert rc == 0 and "no problems found" in out
    rc, out = _check(data, capsys)
    assert rc == 0 and "4 of 4 files from cache" in out  # the caches answer
    _rewrite_keeping_size_and_mtime(label, BAD.encode())
    rc, out = _check(data, capsys)
    assert rc == 1, out
    assert "class-out-of-range" in out and f"{label}:1" in out  # the new finding shows
    assert _check(data, capsys)[0] == 1  # and stays (the caches now hold the new file)
    _rewrite_keeping_size_and_mtime(label, GOOD.encode())
    rc, out = _check(data, capsys)
    assert rc == 0 and "class-out-of-range" not in out  # and vanishes again


@pytest.mark.usefixtures("stat_backend")
def test_the_per_file_caches_alone_see_it(make_darknet: MakeDataset) -> None:
    """Without the whole-result record (``reuse=False``): the label and image tables."""
    data = make_darknet({"a": GOOD, "b": DOG, "c": GOOD})
    label, image = data.parent / "img" / "a.txt", data.parent / "img" / "b.jpg"
    assert scan_darknet(data, reuse=False).findings == []
    again = scan_darknet(data, reuse=False)
    assert again.findings == [] and again.summary["cached_files"] == again.summary["files"] == 6
    _rewrite_keeping_size_and_mtime(label, BAD.encode())
    scan = scan_darknet(data, reuse=False)
    assert [(f.code, f.path) for f in scan.findings] == [("class-out-of-range", str(label))]
    assert scan.summary["cached_files"] == 5  # only the edited label file was read again
    # an image cut off at its end marker, the same size, the mtime set back
    jpeg = bytearray(image.read_bytes())
    assert jpeg[-2:] == b"\xff\xd9"
    jpeg[-2:] = b"\x00\x00"
    _rewrite_keeping_size_and_mtime(image, bytes(jpeg))
    codes = {(f.code, f.path) for f in scan_darknet(data, reuse=False).findings}
    assert ("image-truncated", str(image)) in codes
    # and through the whole-result record too
    codes = {(f.code, f.path) for f in scan_darknet(data).findings}
    assert ("image-truncated", str(image)) in codes


def test_a_label_written_during_the_check_is_not_reused(
    make_darknet: MakeDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stored result is keyed on the stat numbers taken before each file was read, so a
    label file rewritten after the check read it (same size, mtime set back) is read again."""
    from detforge.check.files import label_texts as real

    data = make_darknet({"a": GOOD, "b": DOG, "c": GOOD})
    label = data.parent / "img" / "a.txt"

    def read_then_edit(*args: Any, **kwargs: Any) -> Any:
        got = real(*args, **kwargs)
        _rewrite_keeping_size_and_mtime(label, BAD.encode())
        return got

    monkeypatch.setattr("detforge.check.darknet.label_texts", read_then_edit)
    assert scan_darknet(data).findings == []  # what the file held when it was read
    monkeypatch.setattr("detforge.check.darknet.label_texts", real)
    assert [(f.code, f.path) for f in scan_darknet(data).findings] == [
        ("class-out-of-range", str(label))
    ]


def test_info_sees_a_label_edit_with_the_mtime_set_back(
    make_darknet: MakeDataset, capsys: pytest.CaptureFixture[str]
) -> None:
    """``info`` reads through the dataset index cache (``read_darknet``)."""
    data = make_darknet({"a": GOOD, "b": GOOD})

    def per_class() -> dict[str, int]:
        assert main(["info", str(data), "--json"]) == 0
        counts: dict[str, int] = json.loads(capsys.readouterr().out)["splits"]["all"]["per_class"]
        return counts

    assert per_class() == {"cat": 2, "dog": 0}
    assert per_class() == {"cat": 2, "dog": 0}  # from the index cache
    _rewrite_keeping_size_and_mtime(data.parent / "img" / "a.txt", DOG.encode())
    assert per_class() == {"cat": 1, "dog": 1}
