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
    assert main(["report", str(data), "--out", str(out), "--title", "again", "--exist-ok"]) == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "view").iterdir()} == stamp
    assert "<title>again</title>" in (out / "index.html").read_text()


def test_findings_outside_the_gallery_link_to_the_file(tmp_path: Path) -> None:
    data = generate_shapes_dataset(tmp_path / "ds", num_images=20, seed=4)
    label = sorted((tmp_path / "ds" / "images" / "train").glob("*.txt"))[0]
    label.unlink()  # a 'label-missing' finding on a training image
    out = tmp_path / "reports" / "site"
    assert main(["report", str(data), "--split", "valid", "--out", str(out)]) == 0
    d = _data_js(out)
    assert {im["split"] for im in d["images"]} == {"valid"}
    train = [f for f in d["findings"] if f["path"] and "/train/" in f["path"]]
    assert train and all(f["image"] is None for f in train)
    for f in train:
        assert f["href"].startswith("../../ds/images/train/")
        assert (out / f["href"]).resolve() == Path(f["path"]).resolve()


def test_unreadable_image_is_a_placeholder_and_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = generate_shapes_dataset(tmp_path / "ds", num_images=20, seed=4)
    victim = sorted((tmp_path / "ds" / "images" / "train").glob("*.jpg"))[0]
    victim.write_bytes(victim.read_bytes()[:400])  # header intact, pixels cut off
    out = tmp_path / "site"
    assert main(["report", str(data), "--out", str(out), "--no-check"]) == 0
    assert "1 images could not be read" in capsys.readouterr().err
    bad = [im for im in _data_js(out)["images"] if im["error"]]
    assert len(bad) == 1 and bad[0]["view"] == "" and str(victim) in bad[0]["error"]


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
    capsys.readouterr()
    # a folder with other files is never written into; an empty one is fine
    other = tmp_path / "mine"
    other.mkdir()
    (other / "index.html").write_text("my own page")
    assert main(["report", str(data), "--out", str(other)]) == 0  # numbered: mine-2
    assert (tmp_path / "mine-2" / "index.html").is_file()
    assert main(["report", str(data), "--out", str(other), "--exist-ok"]) == 2
    assert "not an earlier detforge report" in capsys.readouterr().err
    assert (other / "index.html").read_text() == "my own page" and len(list(other.iterdir())) == 1
    (tmp_path / "empty").mkdir()
    assert main(["report", str(data), "--out", str(tmp_path / "empty"), "--no-check"]) == 0


def test_predictions_of_other_images_are_refused_unless_ignore_unmatched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The refusal names --ignore-unmatched, as eval's does: report has that option too; it is
    the one line printed (a warning about the same boxes came first)."""
    data = generate_shapes_dataset(tmp_path / "ds", num_images=10, seed=4)
    valid = sorted((tmp_path / "ds" / "images" / "valid").glob("*.jpg"))
    preds = tmp_path / "preds"
    preds.mkdir()
    (preds / f"{valid[0].stem}.txt").write_text("0 0.5 0.5 0.2 0.2 0.9\n")
    for k in range(3):  # another dataset's images
        (preds / f"elsewhere_{k}.txt").write_text("0 0.5 0.5 0.2 0.2 0.9\n")
    out = tmp_path / "site"
    argv = ["report", str(data), "--pred", str(preds), "--no-check", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err  # the refusal alone, no warning about the same boxes first
    assert err[0].startswith(f"detforge report: error: {preds}: 3 of 4 predictions (75.0%)")
    assert err[0].endswith("(--ignore-unmatched scores the rest)"), err
    assert not out.exists()
    assert main([*argv, "--ignore-unmatched"]) == 0
    model = _data_js(out)["models"][0]
    assert model["pred_boxes"] == 1 and model["unmatched"]["boxes"] == 3


@pytest.mark.parametrize("value", ["nan", "inf", "-0.1", "1.5"])
def test_out_of_range_high_is_a_usage_error(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = generate_shapes_dataset(tmp_path / "ds", num_images=10, seed=4)
    out = tmp_path / "site"
    with pytest.raises(SystemExit) as e:  # a usage error, before anything is read
        main(["report", str(data), "--high", value, "--out", str(out)])
    assert e.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(err) == 1 and "argument --high" in err[0] and value in err[0], err
    assert not out.exists()


def test_a_failed_report_leaves_nothing_new_behind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = generate_shapes_dataset(tmp_path / "ds", num_images=10, seed=4)
    not_a_run = tmp_path / "ds"  # a folder without metrics.csv: fails after the thumbnails
    out = tmp_path / "new" / "site"
    assert main(["report", str(data), "--run", str(not_a_run), "--out", str(out)]) == 2
    assert "no metrics.csv" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()  # nor the parent folder it made
    # into an earlier report: what it had stays (a person's file too), nothing is added
    site = tmp_path / "site"
    assert main(["report", str(data), "--out", str(site), "--no-check"]) == 0
    (site / "thumbs" / "mine.txt").write_text("keep me")
    for view in list((site / "view").iterdir())[:3]:
        view.unlink()  # made again by the next build, so new files of the failed run
    before = {p: p.read_bytes() for p in site.rglob("*") if p.is_file()}
    argv = ["report", str(data), "--run", str(not_a_run), "--out", str(site), "--exist-ok"]
    assert main(argv) == 2
    assert {p: p.read_bytes() for p in site.rglob("*") if p.is_file()} == before


def test_a_file_where_the_report_folder_goes_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--out rep/x`` with ``rep`` a file, or the default ``runs`` a file: exit 2, one line
    naming the file and what to do (it used to be a NotADirectoryError traceback)."""
    data = generate_shapes_dataset(tmp_path / "ds", num_images=10, seed=4)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for name in ("rep", "runs"):
        Path(name).write_text("keep")
    cases = [
        (["--out", "rep/x"], "rep", "give another --out"),
        (["--out", "rep/x/y", "--exist-ok"], "rep", "give another --out"),
        ([], "runs", "move that file away, or give --out DIR"),
    ]
    for extra, named, fix in cases:
        assert main(["report", str(data), "--no-check", *extra]) == 2, extra
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert err.startswith(f"detforge report: error: {named}: is an existing file"), err
        assert fix in err, err
    assert sorted(p.name for p in work.iterdir()) == ["rep", "runs"]
    assert Path("rep").read_text() == Path("runs").read_text() == "keep"


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and "detforge report data/obj.data --pred" in text


def test_data_script_is_json_without_nan_and_cannot_close_the_script() -> None:
    from detforge.report.page import data_script

    text = data_script({"a": float("nan"), "b": [1.5, float("inf")], "c": "</script><b>"})
    body = text.removeprefix("window.DETFORGE_REPORT = ").removesuffix(";\n")
    assert json.loads(body) == {"a": None, "b": [1.5, None], "c": "</script><b>"}
    assert "</script>" not in text
