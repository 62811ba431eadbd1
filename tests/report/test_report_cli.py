"""``detforge report`` on the command line: outputs, the demo's report step, user mistakes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from detforge.cli.main import main
from detforge.data.synthetic import generate_shapes_dataset


def _data_js(site: Path) -> dict[str, Any]:
    text = (site / "assets" / "data.js").read_text(encoding="utf-8")
    m = re.fullmatch(r"window\.DETFORGE_REPORT = (.*);\n", text, flags=re.S)
    assert m is not None
    data: dict[str, Any] = json.loads(m.group(1))
    return data


def test_dataset_only_report_and_rebuild_reuses_pictures(tmp_path: Path) -> None:
    data = generate_shapes_dataset(tmp_path / "ds", num_images=20, seed=4)
    out = tmp_path / "site"
    assert main(["report", str(data), "--out", str(out)]) == 0
    d = _data_js(out)
    assert len(d["images"]) == 20 and d["models"] == [] and d["run"] is None
    assert [s["split"] for s in d["dataset"]["splits"]] == ["train", "valid", "test", "all"]
    assert all((out / im["view"]).is_file() for im in d["images"])
    # findings point at the gallery image they concern (negatives without a label file)
    missing = [f for f in d["findings"] if f["code"] == "label-missing"]
    assert missing and all(d["images"][f["image"]]["path"] == f["path"] for f in missing)
    stamp = {p: p.stat().st_mtime_ns for p in (out / "view").iterdir()}
    assert main(["report", str(data), "--out", str(out), "--title", "again"]) == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "view").iterdir()} == stamp
    assert "<title>again</title>" in (out / "index.html").read_text()


def test_demo_report_step_prints_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--images", "20", "--steps", "report"]) == 0
    index = out / "report" / "index.html"
    assert index.is_file() and index.as_uri() in capsys.readouterr().out


def test_user_mistakes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = generate_shapes_dataset(tmp_path / "ds", num_images=20, seed=4)
    out = str(tmp_path / "site")
    assert main(["report", str(data), "--pred", str(tmp_path), "--name", "a", "--name", "b",
                 "--out", out]) == 2  # fmt: skip
    assert "2 --name values for 1 --pred" in capsys.readouterr().err
    assert main(["report", str(data), "--run", str(tmp_path / "nope"), "--out", out]) == 2
    assert "--run: not a folder" in capsys.readouterr().err
    assert main(["report", str(data), "--run", str(tmp_path / "ds"), "--out", out]) == 2
    assert "no metrics.csv" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing.data"), "--out", out]) == 2


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and "detforge report data/obj.data --pred" in text
