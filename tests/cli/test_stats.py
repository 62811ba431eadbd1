"""``detforge stats`` in-process: table and plots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detforge.cli.main import main
from tests.formats.fmt_helpers import make_oversampled_list


def test_stats_table_json_and_plots(
    ref_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["stats", str(ref_data / "raccoon-tfrecord"), "--out", str(tmp_path), "--exist-ok"])
        == 0
    )
    out = capsys.readouterr().out
    assert "images" in out and "raccoon" in out and "Aspect ratio" in out
    doc = json.loads((tmp_path / "stats.json").read_text())
    assert doc["class_names"] == ["raccoon"]
    assert doc["splits"][0]["images"] == 40 and doc["splits"][0]["boxes"] == 44
    for name in ("class_histogram", "boxes_per_image", "box_sizes", "aspect_ratios"):
        png = (tmp_path / f"{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 5000


def test_stats_bad_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", str(tmp_path / "missing.yaml")]) == 2
    assert capsys.readouterr().err.startswith("detforge stats: error:")


def test_stats_counts_repeated_list_entries_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lst = make_oversampled_list(tmp_path / "src")
    assert main(["stats", str(lst), "--out", str(tmp_path / "st")]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[2].split() == ["images", "4"]  # as Darknet trains: a.jpg 3 times
    note = (
        "2 duplicate list entries (an image listed again in its split) are counted as images, "
        f"as training samples each entry; first: {tmp_path / 'src' / 'a.jpg'}, line 3 of {lst} "
        "(first on line 1)"
    )
    assert f"note: {note}\n" in out
    doc = json.loads((tmp_path / "st" / "stats.json").read_text())
    assert doc["splits"][0]["images"] == 4 and doc["notes"] == [note]


def test_stats_says_when_an_image_in_two_splits_is_counted_in_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    root = tmp_path / "ds"
    (root / "img").mkdir(parents=True)
    for s in ("a", "b", "c"):
        Image.new("RGB", (64, 48)).save(root / "img" / f"{s}.jpg")
        (root / "img" / f"{s}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (root / "obj.names").write_text("cat\n")
    (root / "train.txt").write_text("img/a.jpg\nimg/b.jpg\n")
    (root / "valid.txt").write_text("./img/a.jpg\nimg/c.jpg\n")
    data = root / "obj.data"
    data.write_text("classes = 1\ntrain = train.txt\nvalid = valid.txt\nnames = obj.names\n")
    assert main(["info", str(data), "--json"]) == 0
    info_all = json.loads(capsys.readouterr().out)["splits"]["all"]["images"]
    assert main(["stats", str(data), "--out", str(tmp_path / "st")]) == 0
    out = capsys.readouterr().out
    note = (
        "1 image(s) are in more than one split (a leak: see detforge info or check); "
        "'all' counts them once per split, as info does (1 extra)"
    )
    assert out.count(note) == 1 and f"note: {note}\n" in out
    doc = json.loads((tmp_path / "st" / "stats.json").read_text())
    assert doc["splits"][-1]["split"] == "all"
    assert doc["splits"][-1]["images"] == info_all == 4
    assert doc["notes"] == [note]


def test_stats_of_an_empty_list_prints_zeros(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "obj.names").write_text("a\n")
    (tmp_path / "list.txt").write_text("")
    data = tmp_path / "obj.data"
    data.write_text("classes=1\ntrain=list.txt\nnames=obj.names\n")
    assert main(["stats", str(data), "--out", str(tmp_path / "st")]) == 0
    out = capsys.readouterr().out
    assert "\nimages                   0\n" in out and "classes without boxes: a" in out
    doc = json.loads((tmp_path / "st" / "stats.json").read_text())
    assert [(s["split"], s["images"], s["boxes"]) for s in doc["splits"]] == [("all", 0, 0)]
