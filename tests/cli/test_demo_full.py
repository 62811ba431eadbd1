"""The whole demo, every step, end to end (training cut to a few seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detforge.cli import demo
from detforge.cli.main import main


def test_data_steps_find_planted_faults_and_convert(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    steps = "generate,check,convert,stats"
    assert main(["demo", "--out", str(out), "--images", "20", "--steps", steps]) == 0
    clean = json.loads((out / "check.json").read_text())
    assert clean["summary"]["errors"] == 0
    broken = json.loads((out / "check" / "broken.json").read_text())
    codes = {f["code"] for f in broken["findings"] if f["severity"] == "error"}
    assert {"coord-negative", "box-zero-size", "class-out-of-range"} <= codes
    assert all(f["line"] is not None for f in broken["findings"] if f["severity"] == "error")
    fixes = json.loads((out / "check" / "fixed" / "fixes.json").read_text())
    assert len(fixes["changes"]) >= 4
    # The generated dataset itself was never modified by planting the faults.
    assert main(["check", str(out / "dataset" / "obj.data")]) == 0
    for fmt in ("ultralytics", "coco", "voc", "tfrecord"):
        assert any((out / "convert" / fmt).iterdir())
    assert (out / "convert" / "darknet-from-coco" / "obj.data").is_file()
    assert len(list((out / "stats").glob("*.png"))) >= 1


@pytest.mark.slow
def test_every_step_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--images", "20", "--train-seconds", "6"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    for name, _, _ in demo.STEPS:
        assert f"] {name}:" in printed and f"-- {name} done" in printed
    assert (out / "train" / "weights" / "best.pt").is_file()
    assert (out / "val-test.json").is_file()
    assert (out / "eval" / "metrics.json").is_file()
    assert (out / "export" / "model.onnx").is_file()
    assert list((out / "show").glob("grid_*.jpg"))
    assert (out / "report" / "index.html").as_uri() in printed
