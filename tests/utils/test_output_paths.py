"""A file where a results folder must be made (``runs`` a file, ``--out a/b`` with ``a`` a
file, a ``.data`` file's ``results=`` naming a file): one line naming that file, exit 2, the
file left as it was -- never a ``NotADirectoryError`` traceback (:func:`results_dir`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from detforge.cli.main import main
from detforge.utils.io import WriteError
from detforge.utils.outputs import results_dir
from tests.predict.helpers import random_checkpoint, self_labelled_darknet


def test_results_dir_names_the_file_in_the_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("runs").write_text("keep")
    for exist_ok in (False, True):
        with pytest.raises(WriteError, match=r"not a folder.*move that file away") as err:
            results_dir("show", source="data/obj.data", exist_ok=exist_ok)
        assert err.value.path == "runs"
    blk = tmp_path / "blk"
    blk.write_text("keep")
    for out in (blk / "x", blk / "x" / "y"):
        with pytest.raises(WriteError, match="give another --out") as err:
            results_dir("report", out=out)
        assert err.value.path == str(blk)
    with pytest.raises(WriteError, match=r"correct results= in the \.data file") as err:
        results_dir("map", base=blk)  # results= names a file
    assert err.value.path == str(blk)
    with pytest.raises(WriteError, match="correct results=") as err:
        results_dir("map", base=blk / "res")  # ... or a folder inside one
    assert err.value.path == str(blk)
    # the folder itself a file: numbered past it, but --exist-ok cannot write into it
    Path("res").mkdir()
    Path("res/map").write_text("keep")
    assert results_dir("map", base="res") == Path("res/map-2")
    with pytest.raises(WriteError, match="not a folder") as err:
        results_dir("map", base="res", exist_ok=True)
    assert err.value.path == str(Path("res/map"))
    assert results_dir("map", base=tmp_path / "new" / "deep") == tmp_path / "new" / "deep" / "map"
    assert [p.read_text() for p in (Path("runs"), blk, Path("res/map"))] == ["keep"] * 3


@pytest.fixture(scope="module")
def model_and_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("blocked")
    ckpt = random_checkpoint(root / "m.pt")
    return ckpt, self_labelled_darknet(root / "data", ckpt, n=2)


def _with_results(data: Path, results: str, name: str) -> Path:
    """A copy ``name.data`` of ``data`` (same lists) whose ``results=`` is ``results`` (or
    gone)."""
    text = re.sub(r"(?m)^results\s*=.*\n", "", data.read_text())
    copy = data.with_name(f"{name}.data")
    copy.write_text(text + (f"results = {results}\n" if results else ""))
    return copy


def _one_line_error(capsys: pytest.CaptureFixture[str], named: Path | str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("detforge map: error: ") and f"{named}: is an existing file" in err, err
    return err


@pytest.mark.usefixtures("one_torch_thread")
def test_map_with_a_file_where_its_results_folder_goes(
    model_and_data: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ckpt, data = model_and_data
    monkeypatch.chdir(tmp_path)
    blk = tmp_path / "blk"
    blk.write_text("keep")
    # results= an existing file, or a folder inside one
    for k, results in enumerate((str(blk), f"{blk}/sub")):
        assert main(["map", str(ckpt), str(_with_results(data, results, f"map{k}"))]) == 2
        assert "correct results= in the .data file" in _one_line_error(capsys, blk)
    # no results=: runs/map/<name>, with runs a file
    Path("runs").write_text("keep")
    assert main(["map", str(ckpt), str(_with_results(data, "", "nores"))]) == 2
    _one_line_error(capsys, "runs")
    # --out inside a file
    assert main(["map", str(ckpt), str(data), "--out", str(blk / "x")]) == 2
    assert "give another --out" in _one_line_error(capsys, blk)
    assert blk.read_text() == "keep" and Path("runs").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blk", "runs"]


@pytest.mark.usefixtures("one_torch_thread")
def test_eval_out_inside_a_file(
    model_and_data: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt, data = model_and_data
    preds = tmp_path / "p.json"
    argv = ["predict", str(ckpt), f"{data}:valid", "--save-json", str(preds)]
    assert main([*argv, "--out", str(tmp_path / "pr")]) == 0
    capsys.readouterr()
    blk = tmp_path / "blk"
    blk.write_text("keep")
    for argv in (
        ["eval", str(data), str(preds), "--out", str(blk / "x")],
        ["eval", str(_with_results(data, str(blk), "eval")), str(preds), "--plots"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert f"detforge eval: error: {blk}: is an existing file, not a folder" in err, err
    assert blk.read_text() == "keep"
