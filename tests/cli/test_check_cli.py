"""``detforge check`` in-process: exit codes, human and JSON output, --fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from detforge.cli.main import main


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DETFORGE_CACHE", str(tmp_path / "cache"))


def _dataset(root: Path, labels: dict[str, str]) -> Path:
    (root / "img").mkdir(parents=True)
    for stem, text in labels.items():
        Image.new("RGB", (64, 48), (9, 99, 199)).save(root / "img" / f"{stem}.jpg")
        (root / "img" / f"{stem}.txt").write_text(text)
    (root / "obj.names").write_text("cat\ndog\n")
    (root / "train.txt").write_text("".join(f"img/{s}.jpg\n" for s in labels))
    data = root / "obj.data"
    data.write_text("classes = 2\ntrain = train.txt\nnames = obj.names\n")
    return data


def test_clean_dataset_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _dataset(tmp_path / "ds", {"a": "0 0.5 0.5 0.2 0.2\n", "b": "1 0.5 0.5 0.2 0.2\n"})
    assert main(["check", str(data)]) == 0
    out = capsys.readouterr().out
    assert "2 images (train 2), 2 label files, 2 boxes, 2 classes" in out
    assert "no problems found" in out


def test_errors_exit_1_with_grouped_output_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = "".join("0 0.5 0.5 0.2\n" for _ in range(7)) + "1 0.5 0.5 0.2 0.2\n"
    data = _dataset(tmp_path / "ds", {"a": bad})
    report = tmp_path / "out" / "report.json"
    assert main(["check", str(data), "--json", str(report), "--show", "2"]) == 1
    out = capsys.readouterr().out
    assert "ERROR label-fields (7): label line does not have 5 fields" in out
    assert "a.txt:1: 4 fields" in out and "a.txt:2: 4 fields" in out
    assert "... and 5 more" in out
    assert "class-no-boxes" in out  # 'cat' only appears on the bad lines
    doc = json.loads(report.read_text())
    assert doc["summary"]["errors"] == 7 and doc["summary"]["codes"]["label-fields"] == 7
    first = doc["findings"][0]
    assert set(first) == {"severity", "code", "path", "line", "message"}
    assert (first["code"], first["line"], first["severity"]) == ("label-fields", 1, "error")


def test_an_all_zero_jpg_is_called_so_even_from_an_older_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _dataset(tmp_path / "ds", {"a": "0 0.5 0.5 0.2 0.2\n"})
    (tmp_path / "ds" / "img" / "a.jpg").write_bytes(b"\0" * 4096)
    assert main(["check", str(data)]) == 1
    out = capsys.readouterr().out
    assert "ERROR image-not-image (1): file is not an image" in out
    assert (
        f"{tmp_path / 'ds' / 'img' / 'a.jpg'}: all 4096 bytes are zero (not an image: an "
        "interrupted copy or download?); replace it with the real image or remove it from the "
        "dataset (--fix drops the image from the lists)"
    ) in out
    # another detforge's words for the same unchanged file: the per-file image results and the
    # whole-check record of this run are not read by a version with other rules
    from detforge.check import files, resultcache
    from detforge.data import imageformats

    monkeypatch.setattr(imageformats, "not_image_detail", lambda head, size: "other words")
    assert main(["check", str(data)]) == 1
    assert "other words" not in capsys.readouterr().out  # same rules: cached
    for mod in (files, resultcache):
        monkeypatch.setattr(mod, "RULES_VERSION", files.RULES_VERSION + 1)
    assert main(["check", str(data)]) == 1
    assert "a.jpg: other words;" in capsys.readouterr().out


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "nothing.data")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not found" in err[0]
    data = _dataset(tmp_path / "ds", {"a": "0 0.5 0.5 0.2 0.2\n"})
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    assert main(["check", str(data), "--fix", str(tmp_path / "full")]) == 2
    assert main(["check", str(data), "--path-map", "nonsense"]) == 2
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    assert "--fix OUT" in capsys.readouterr().out


def test_json_never_replaces_a_file_without_exist_ok_nor_an_input_with_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _dataset(tmp_path / "ds", {"a": "0 0.5 0.5 0.2 0.2\n"})
    ds = data.parent
    inputs = [data, ds / "obj.names", ds / "train.txt", ds / "img" / "a.jpg", ds / "img" / "a.txt"]
    before = {p: p.read_bytes() for p in inputs}
    for target in inputs:
        for extra in ([], ["--exist-ok"]):
            assert main(["check", str(data), "--json", str(target), *extra]) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and str(target) in err[0], err
            assert ("--exist-ok" in err[0]) == (not extra), err  # which rule refused it
    assert {p: p.read_bytes() for p in inputs} == before
    mine = tmp_path / "findings.json"
    mine.write_text("an earlier file")
    assert main(["check", str(data), "--json", str(mine)]) == 2
    assert mine.read_text() == "an earlier file"
    assert main(["check", str(data), "--json", str(mine), "--exist-ok"]) == 0
    assert json.loads(mine.read_text())["summary"]["errors"] == 0


def test_fix_writes_a_copy_that_rechecks_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _dataset(tmp_path / "ds", {"a": "0 0.5 0.5 0.2 0.2\n0 nan 0.5 0.2 0.2\n"})
    out = tmp_path / "fixed"
    assert main(["check", str(data), "--fix", str(out)]) == 0
    text = capsys.readouterr().out
    assert "ERROR label-not-finite (1)" in text
    assert "re-check of the copy: 0 errors" in text
    assert (out / "fixes.json").is_file() and (out / "obj.data").is_file()
    assert main(["check", str(out / "obj.data")]) == 0


def test_warning_thresholds_move_and_switch_off(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a: two cats overlapping at IoU ~0.95; b: a cat and a dog. cat 3 boxes, dog 1; 64x48 px
    near = "0 0.5 0.5 0.2 0.2\n0 0.505 0.5 0.2 0.2\n"
    data = _dataset(tmp_path / "ds", {"a": near, "b": "0 0.2 0.2 0.1 0.1\n1 0.7 0.7 0.2 0.2\n"})
    report = tmp_path / "r.json"

    def codes(*opts: str) -> dict[str, int]:
        argv = ["check", str(data), "--json", str(report), "--exist-ok", *opts]
        assert main(argv) == 0  # warnings only
        return dict(json.loads(report.read_text())["summary"]["codes"])

    assert codes() == {"box-near-duplicate": 1}
    # same files, other limits: the cached result of the first check must not be reused
    moved = codes("--near-dup-iou", "0", "--imbalance", "3", "--tiny-px", "64")
    assert moved == {"class-imbalance": 1, "image-tiny": 2}
    assert codes("--near-dup-iou", "0.97") == {}
    out = capsys.readouterr().out
    assert "smaller than 64 px" in out and "(3x)" in out
    assert main(["check", str(data), "--near-dup-iou", "1.5"]) == 2
    assert "near-duplicate IoU must be in [0, 1]" in capsys.readouterr().err
