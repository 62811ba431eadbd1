"""The conventions of docs/cli.md, pinned in-process: argument order, where outputs go and
their numbering, wrong inputs that point at the fix, one help vocabulary."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from detforge.cli.common import order_model_data
from detforge.cli.main import build_parser, main
from detforge.cli.paths import nearest_path
from detforge.data.synthetic import generate_shapes_dataset
from detforge.errors import DetforgeError
from detforge.predict.draw import score_text
from detforge.utils.outputs import claim_file, results_dir, run_name


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12-image Darknet dataset (obj.data with results = results)."""
    return generate_shapes_dataset(tmp_path_factory.mktemp("conv") / "ds", num_images=12, seed=3)


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


# -- argument order -------------------------------------------------------------------------


def test_model_first_and_the_orders_map_also_reads() -> None:
    assert order_model_data(["best.pt", "obj.data"]) == ("best.pt", "obj.data", None)
    assert order_model_data(["obj.data", "best.pt"]) == ("best.pt", "obj.data", None)  # old map
    assert order_model_data(["m.onnx", "coco/"]) == ("m.onnx", "coco/", None)
    assert order_model_data(["yolo.weights", "data/"]) == ("yolo.weights", "data/", None)
    # Darknet's own order, and a pretrained .conv.N file
    assert order_model_data(["obj.data", "y.cfg", "y.weights"]) == (
        "y.weights",
        "obj.data",
        "y.cfg",
    )
    assert order_model_data(["obj.data", "y.cfg", "y.conv.29"]) == (
        "y.conv.29",
        "obj.data",
        "y.cfg",
    )
    for bad in (["a.data", "b.data"], ["a.pt", "b.pt"], ["a.data", "b.pt", "c.pt"]):
        with pytest.raises(DetforgeError, match="expected MODEL DATA") as e:
            order_model_data(bad)
        assert "\n" not in str(e.value)


def test_map_refuses_two_datasets_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["map", "a.data", "b.data"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "expected MODEL DATA" in err


def test_val_and_predict_say_the_model_comes_first(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = tmp_path / "best.pt"
    ckpt.write_bytes(b"not read: the order is checked first")
    for cmd in ("val", "predict"):
        assert main([cmd, str(shapes), str(ckpt)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1
        assert f"the model comes first: detforge {cmd} {ckpt} {shapes}" in err


def test_every_model_taking_command_puts_the_model_first() -> None:
    parsers = _subparsers()
    for name in ("val", "predict", "map", "export"):
        first = next(a for a in parsers[name]._actions if not a.option_strings)
        assert first.dest == "weights", name


# -- outputs --------------------------------------------------------------------------------


def test_results_dir_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert run_name("data/obj.data") == "obj" and run_name("data/obj.data:test") == "obj"
    assert run_name("photos/") == "photos" and run_name(None) == "exp"
    assert results_dir("predict", source="photos/") == Path("runs/predict/photos")
    Path("runs/predict/photos").mkdir(parents=True)
    assert results_dir("predict", source="photos/") == Path("runs/predict/photos-2")
    assert results_dir("predict", source="photos/", exist_ok=True) == Path("runs/predict/photos")
    assert results_dir("map", base="res", source="x.data") == Path("res/map")
    assert results_dir("map", out="mine") == Path("mine")
    Path("mine").mkdir()
    assert results_dir("map", out="mine") == Path("mine-2")
    Path("f").write_text("x")
    with pytest.raises(DetforgeError, match="names a folder"):
        results_dir("map", out="f")
    assert claim_file("new.json", exist_ok=False) == Path("new.json")
    with pytest.raises(DetforgeError, match="--exist-ok"):
        claim_file("f", exist_ok=False)
    assert claim_file("f", exist_ok=True) == Path("f")


def _gt_as_predictions(data: Path, folder: Path) -> Path:
    """The valid split's own labels as 'class cx cy w h conf' prediction files."""
    folder.mkdir()
    for line in (data.parent / "valid.txt").read_text().split():
        img = data.parent / line
        rows = (
            img.with_suffix(".txt").read_text().split("\n")
            if img.with_suffix(".txt").exists()
            else []
        )
        (folder / f"{img.stem}.txt").write_text("".join(f"{r} 0.9\n" for r in rows if r.strip()))
    return folder


def test_eval_writes_into_results_eval_numbered_and_says_so(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pred = _gt_as_predictions(shapes, tmp_path / "pred")
    results = shapes.parent / "results"
    for expect in ("eval", "eval-2"):
        assert main(["eval", str(shapes), str(pred), "--protocol", "darknet"]) == 0
        assert capsys.readouterr().out.endswith(f"results: {results / expect}/\n")
        metrics = json.loads((results / expect / "metrics.json").read_text())
        assert metrics["darknet"]["mAP"] > 0.5  # a class without valid boxes scores 0
    # --json FILE is never replaced silently
    js = tmp_path / "m.json"
    js.write_text("mine")
    assert main(["eval", str(shapes), str(pred), "--json", str(js)]) == 2
    assert "--exist-ok" in capsys.readouterr().err and js.read_text() == "mine"


def test_show_numbers_runs_and_prints_the_folder(
    shapes: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    for expect in ("obj", "obj-2"):
        assert main(["show", str(shapes), "--split", "valid", "--limit", "2"]) == 0
        assert capsys.readouterr().out.endswith(f"pictures: runs/show/{expect}/\n")
        assert len(list((tmp_path / "runs" / "show" / expect).glob("*.jpg"))) == 2
    # --from is the spelling; the old --format still parses but is not in --help
    parser = build_parser()
    a = parser.parse_args(["show", "x", "--from", "voc"])
    b = parser.parse_args(["show", "x", "--format", "voc"])
    assert a.format == b.format == "voc"
    assert "--format" not in _subparsers()["show"].format_help()


# -- wrong inputs -----------------------------------------------------------------------------


def test_typo_path_suggests_the_nearest_file(
    shapes: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = shapes.with_name("obj.dat")
    assert nearest_path(typo) == str(shapes)
    assert nearest_path(shapes.parent.with_name("dss") / "obj.data") == str(shapes)
    assert nearest_path(shapes) is None
    assert main(["info", str(typo)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"did you mean {str(shapes)!r}?" in err
    assert main(["stats", str(shapes.parent.with_name("dss"))]) == 2
    assert "did you mean" in capsys.readouterr().err
    # an error about an argument itself names just that argument
    assert main(["eval", str(shapes), str(shapes.parent / "predss.json")]) == 2
    err = capsys.readouterr().err
    assert "predss.json: predictions not found" in err and "(reading" not in err


def test_inner_file_errors_name_the_argument(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "obj.data"
    data.write_text("classes = 1\ntrain = train.txt\nnames = obj.names\n")
    (tmp_path / "obj.names").write_text("a\n")
    assert main(["info", str(data)]) == 2
    err = capsys.readouterr().err.strip()
    assert "train.txt" in err and str(data) in err


def test_reading_suffix_only_for_files_read_through_the_argument(
    shapes: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """'(reading X)' was added to any error about a file outside the one existing argument:
    to outputs (export's best.onnx beside best.pt, a runs/ or --out that is a file) and to a
    .cfg found beside a .weights, none of which was read through X."""
    monkeypatch.chdir(tmp_path)

    def error(argv: list[str]) -> str:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        return err

    # kept: a list the .data names, naming an image that is not there; a listed image's label
    (tmp_path / "imgs").mkdir()
    shutil.copy(next(shapes.parent.rglob("*.jpg")), tmp_path / "imgs" / "a.jpg")
    (tmp_path / "imgs" / "a.txt").write_text("0 0.5 0.5 0.2\n")
    Path("train.txt").write_text("imgs/gone.jpg\n")
    Path("obj.names").write_text("a\n")
    Path("obj.data").write_text("classes = 1\ntrain = train.txt\nnames = obj.names\n")
    err = error(["info", "obj.data"])
    assert "train.txt:1: image not found" in err and err.endswith("(reading obj.data)"), err
    Path("list.txt").write_text("imgs/a.jpg\n")
    err = error(["info", "list.txt"])
    assert "a.txt:1: expected 5 values" in err and err.endswith("(reading list.txt)"), err
    # dropped: outputs, and a file found beside a model rather than named by it
    Path("best.pt").write_text("not read: the output is claimed first")
    Path("best.onnx").write_text("mine")
    err = error(["export", "best.pt"])
    assert "best.onnx: the ONNX file would replace" in err and "(reading" not in err, err
    Path("y.weights").write_bytes(b"\0" * 20)
    Path("y.cfg").write_text("[net]\nwidth=64\n")
    err = error(["export", "y.weights"])
    assert "y.cfg:1:" in err and "(reading" not in err, err
    Path("runs").write_text("a file where the results folder goes")
    err = error(["show", str(shapes), "--limit", "1"])
    assert "runs: is an existing file" in err and "(reading" not in err, err
    Path("st").write_text("a file")
    err = error(["stats", str(shapes), "--out", "st/plots"])
    assert "st: is an existing file" in err and "(reading" not in err, err
    err = error(["lists", "imgs", "-o", "st/all.txt"])
    assert "st: is an existing file" in err and "(reading" not in err, err


def test_reached_through_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from detforge.cli.paths import reached_through

    monkeypatch.chdir(tmp_path)
    for name in ("obj.data", "best.pt", "y.weights", "in.cfg"):
        Path(name).write_text("x")
    Path("imgs").mkdir()
    assert reached_through("lists/train.txt", ["obj.data"]) == "obj.data"
    assert reached_through("/elsewhere/a.txt", ["imgs"]) == "imgs"  # e.g. a data.yaml's path:
    assert reached_through("obj.data", ["obj.data"]) is None  # the argument itself
    assert reached_through("imgs/a.txt", ["imgs"]) is None  # a file in it
    assert reached_through("names.txt", ["obj.data"], named=["names.txt"]) is None  # an option
    assert reached_through("out", ["obj.data"], named=["out/sub/x.json"]) is None  # above one
    assert reached_through("runs/show/obj", ["obj.data"]) is None  # the default results
    for model in ("best.pt", "y.weights", "in.cfg"):  # name no other files
        assert reached_through("y.names", [model]) is None
    assert reached_through("a.txt", ["obj.data", "imgs"]) is None  # which one?
    assert reached_through("a.txt", ["obj.data", "missing"]) == "obj.data"


def test_voc_folder_given_as_darknet_points_at_convert(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    voc = tmp_path / "voc"
    assert main(["convert", str(shapes), str(voc), "--to", "voc"]) == 0
    capsys.readouterr()
    assert main(["split", str(voc), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "Pascal VOC" in err and f"detforge convert {voc} OUT --to darknet" in err
    assert not (tmp_path / "s").exists()
    assert main(["info", str(voc / "JPEGImages")]) == 2
    err = capsys.readouterr().err
    assert "Pascal VOC" in err and f"detforge info {voc}" in err
    assert main(["info", str(voc)]) == 0  # the dataset itself is read as VOC
    assert main(["stats", str(voc / "JPEGImages")]) == 2
    assert f"detforge stats {voc}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("to", "kind"), [("coco", "COCO"), ("ultralytics", "Ultralytics"), ("tfrecord", "TFRecord")]
)
def test_other_layouts_given_to_split_point_at_convert(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], to: str, kind: str
) -> None:
    out = tmp_path / to
    assert main(["convert", str(shapes), str(out), "--to", to]) == 0
    capsys.readouterr()
    assert main(["split", str(out), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert kind in err and f"detforge convert {out} OUT --to darknet" in err, err


def test_a_typo_split_lists_the_valid_ones(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["val", "a.pt", "b.data"], ["predict", "a.pt", "b.data"], ["map", "a.pt", "b"],
                 ["eval", "g", "p"], ["show", "g"], ["report", "g"]):  # fmt: skip
        with pytest.raises(SystemExit) as e:
            main([*argv, "--split", "tset"])
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert "train, valid (or val), test" in err and "did you mean 'test'" in err


def test_classes_mistake_is_reported_before_the_model_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.predict.helpers import random_checkpoint

    ckpt = random_checkpoint(tmp_path / "m.pt")

    def no_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded before --classes was checked")

    monkeypatch.setattr("detforge.predict.api.load", no_load)
    assert main(["predict", str(ckpt), str(tmp_path / "nowhere"), "--classes", "zebra"]) == 2
    assert "neither a class name" in capsys.readouterr().err


# -- one vocabulary -------------------------------------------------------------------------


def test_defaults_are_written_one_way_in_every_help() -> None:
    for name, parser in _subparsers().items():
        for a in parser._actions:
            if not a.option_strings or a.help in (None, argparse.SUPPRESS):
                continue
            assert "(default" not in a.help, (name, a.option_strings, a.help)
            flag = isinstance(a, (argparse._StoreConstAction, argparse._HelpAction))
            if not flag and a.default not in (None, [], False, argparse.SUPPRESS):
                assert "[" in a.help, (name, a.option_strings, a.help)


def test_help_uses_detforges_run_layout() -> None:
    from detforge.cli.main import COMMANDS, _load

    for name in COMMANDS:
        mod = _load(name)
        text = getattr(mod, "DESCRIPTION", "") + _subparsers()[name].format_help()
        assert "runs/train/exp" not in text and "exp/weights" not in text, name
    assert "a third of the run" in _subparsers()["train"].format_help()


def test_low_scores_never_read_as_zero() -> None:
    for s in (0.9, 0.25, 0.01, 0.0099, 0.004, 0.0005, 0.00012, 3e-6):
        text = score_text(s)
        assert float(text) > 0 and abs(float(text) - s) <= max(0.005, s * 0.5), (s, text)
    assert score_text(0.25) == "0.25" and score_text(0.004) == "0.004"
    assert np.isclose(float(score_text(0.00012)), 0.0001)


def test_exit_codes(
    shapes: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import detforge.cli.info

    assert main(["info", str(shapes)]) == 0
    assert main(["info", str(tmp_path / "none.data")]) == 2  # an input error: one line
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as e:  # a usage error
        main(["info", str(shapes), "--no-such-option"])
    assert e.value.code == 2
    bad = tmp_path / "bad"
    shutil.copytree(shapes.parent, bad)
    label = sorted((bad / "images" / "train").glob("*.txt"))[0]
    label.write_text("7 0.5 0.5 0.2 0.2\n")  # a class the names file does not have
    assert main(["check", str(bad / "obj.data")]) == 1  # ran, and found something
    capsys.readouterr()

    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(detforge.cli.info, "run", interrupted)
    assert main(["info", str(shapes)]) == 130
    assert "interrupted" in capsys.readouterr().err
