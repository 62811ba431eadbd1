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
