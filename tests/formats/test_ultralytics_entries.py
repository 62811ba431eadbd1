"""An image an Ultralytics YAML names twice is never dropped in silence: named again in its split
it is another entry (listed in ``meta["repeated_entries"]``), named in two splits it is in both
(a leak that ``info`` and ``check`` report)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from detforge.cli.main import main
from detforge.data.lists import RepeatedEntry
from detforge.formats.ultralytics import read_ultralytics


def _dataset(root: Path) -> Path:
    """``a`` twice in the train list, ``b`` in train and in val."""
    (root / "images" / "train").mkdir(parents=True)
    (root / "labels" / "train").mkdir(parents=True)
    for k, (stem, text) in enumerate((("a", "0 0.5 0.5 0.2 0.2\n"), ("b", ""))):
        Image.new("RGB", (16, 12), (k * 99, 0, 0)).save(root / "images" / "train" / f"{stem}.jpg")
        (root / "labels" / "train" / f"{stem}.txt").write_text(text)
    (root / "train.txt").write_text(
        "images/train/a.jpg\nimages/train/b.jpg\n./images/train/a.jpg\n"
    )
    (root / "val.txt").write_text("images/train/b.jpg\n")
    y = root / "data.yaml"
    y.write_text(f"path: {root}\ntrain: train.txt\nval: val.txt\nnames: [cat]\n")
    return y


def test_every_entry_is_kept_and_the_repeats_are_listed(tmp_path: Path) -> None:
    y = _dataset(tmp_path / "ds")
    ds = read_ultralytics(y)
    names = [Path(p).name for p in ds.images.path]
    assert list(zip(names, ds.images.split.tolist(), strict=True)) == [
        ("a.jpg", "train"),
        ("b.jpg", "train"),
        ("a.jpg", "train"),
        ("b.jpg", "valid"),  # was dropped: "the first split wins" hid the leak
    ]
    assert ds.boxes_per_image().tolist() == [1, 0, 1, 0]
    train = str(tmp_path / "ds" / "train.txt")
    (rep,) = ds.meta["repeated_entries"]
    assert rep == RepeatedEntry(str(ds.images.path[2]), train, 3, train, 1)


def test_info_reports_the_leak_and_counts_the_repeat_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DETFORGE_CACHE", str(tmp_path / "cache"))
    y = _dataset(tmp_path / "ds")
    assert main(["info", str(y), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["splits"]["train"]["images"] == 2 and info["splits"]["valid"]["images"] == 1
    assert info["duplicate_entries"] == 1
    assert [(lk["kind"], Path(lk["path_b"]).name) for lk in info["leaks"]] == [
        ("same path", "b.jpg")
    ]
    assert main(["info", str(y)]) == 0
    out = capsys.readouterr().out
    assert "WARNING: 1 file(s) in two splits" in out
    assert "duplicate list entries counted once: 1" in out
    # and check, from the same resolver, names it as well
    assert main(["check", str(y)]) == 1
    assert "split-overlap" in capsys.readouterr().out
