"""``detforge eval`` in-process: every prediction layout, outputs, and user mistakes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from detforge.cli.main import main


def darknet_set(root: Path) -> Path:
    """3 images 100x50 with labels, names, a valid list and a .data with results=."""
    (root / "img").mkdir(parents=True)
    labels = {
        "a": "0 0.25 0.5 0.2 0.4\n1 0.75 0.5 0.2 0.4\n",
        "b": "0 0.5 0.5 0.4 0.4\n",
        "c": "",
    }
    for stem, text in labels.items():
        Image.new("RGB", (100, 50)).save(root / "img" / f"{stem}.jpg")
        (root / "img" / f"{stem}.txt").write_text(text)
    (root / "obj.names").write_text("cat\ndog\n")
    (root / "valid.txt").write_text("".join(f"img/{s}.jpg\n" for s in labels))
    data = root / "obj.data"
    data.write_text("classes = 2\nvalid = valid.txt\nnames = obj.names\nresults = res\n")
    return data


def test_fixture_json_and_console(
    ref_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = ref_data / "coco-fixture"
    out = tmp_path / "m.json"
    assert main(["eval", str(d / "gt.json"), str(d / "dets.json"), "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["coco"]["stats"] == json.loads((d / "expected.json").read_text())["stats"]
    assert set(res) >= {"coco", "darknet", "unmatched", "images"}
    assert len(res["coco"]["per_class"]) == 80 and "precision" not in res["coco"]
    text = capsys.readouterr().out
    assert "maxDets=100 ] = 0.504" in text and "mean average precision (mAP@0.50)" in text


def test_txt_predictions_on_data_file_default_results_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = darknet_set(tmp_path)
    pred = tmp_path / "pred"
    pred.mkdir()
    # a: both objects found (+ one FP), b: wrong class, c: nothing; plus an unknown image.
    (pred / "a.txt").write_text(
        "0 0.25 0.5 0.2 0.4 0.9\n1 0.75 0.5 0.2 0.4 0.8\n0 0.9 0.1 0.1 0.1 0.3\n"
    )
    (pred / "b.txt").write_text("1 0.5 0.5 0.4 0.4 0.7\n")
    (pred / "zzz.txt").write_text("0 0.5 0.5 0.1 0.1 0.5\n")
    # 1 of 5 predictions is about no GT image: too many to score without being asked
    assert main(["eval", str(data), str(pred), "--plots"]) == 2
    err = capsys.readouterr().err
    assert "1 of 5 predictions (20.0%) fit no ground-truth" in err and "'zzz'" in err
    assert len(err.strip().splitlines()) == 1
    assert main(["eval", str(data), str(pred), "--plots", "--ignore-unmatched"]) == 0
    assert "warning: 1 of 5 predictions match no" in capsys.readouterr().out
    res_dir = tmp_path / "res" / "eval"  # <the .data file's results= folder>/eval, created
    m = json.loads((res_dir / "metrics.json").read_text())
    assert m["unmatched"]["boxes"] == 1 and m["unmatched"]["images"] == ["zzz"]
    dk = m["darknet"]
    assert [c["AP"] for c in dk["per_class"]] == [0.5, 1.0]  # cat: TP, FP(0.3) of 2 truths
    assert (dk["tp"], dk["fp"], dk["fn"]) == (2, 2, 1)
    for png in ("pr_curves.png", "pr_curves_per_class.png", "f1_curve.png", "confusion_matrix.png"):
        assert (res_dir / png).stat().st_size > 1000
    cm = m["plots"]["confusion_matrix"]
    assert cm[0][0] == 1 and cm[1][1] == 1 and cm[0][1] == 1  # b's cat predicted as dog
    preds = json.loads((res_dir / "predictions.json").read_text())
    assert len(preds) == 4 and preds[0]["bbox"] == pytest.approx([15.0, 15.0, 20.0, 20.0])


def test_comp4_predictions_and_every(tmp_path: Path) -> None:
    data = darknet_set(tmp_path)
    pred = tmp_path / "valid_out"
    pred.mkdir()
    # Darknet prints 1-based pixel corners: image a's cat is x 15..35, y 15..35.
    (pred / "comp4_det_test_cat.txt").write_text("a 0.9 16 16 36 36\nb 0.8 31 16 71 36\n")
    (pred / "comp4_det_test_dog.txt").write_text("a 0.7 66 16 86 36\n")
    out = tmp_path / "m.json"
    assert main(["eval", str(data), str(pred), "--json", str(out), "--protocol", "darknet"]) == 0
    dk = json.loads(out.read_text())["darknet"]
    assert dk["mAP"] == 1.0 and (dk["tp"], dk["fp"], dk["fn"]) == (3, 0, 0)
    # darknet.precision, overall and per class, as the docs list it (was dropped by --json)
    assert dk["precision"] == 1.0 and dk["recall"] == 1.0
    assert [c["precision"] for c in dk["per_class"]] == [1.0, 1.0]
    args = ["eval", str(data), str(pred), "--json", str(out), "--every", "2", "--plots"]
    assert main([*args, "--out", str(tmp_path / "o")]) == 2  # --json would replace m.json
    args.append("--exist-ok")
    assert main([*args, "--out", str(tmp_path / "o")]) == 0
    m = json.loads(out.read_text())
    assert m["images"] == 2 and m["gt_boxes"] == 2  # images a and c
    assert m["coco"]["stats"]["AP50"] == pytest.approx(1.0, abs=1e-12)
    cm = m["plots"]["confusion_matrix"]  # image b (2nd) left out of the plots too
    assert cm == [[1, 0, 0], [0, 1, 0], [0, 0, 0]]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing.json", "not found"),
        (lambda p: (p / "bad").mkdir() or p / "bad", "no .txt prediction files"),
        (lambda p: ((p / "five").mkdir(), (p / "five" / "a.txt").write_text("0 .5 .5 .1 .1\n"))
         and p / "five", "confidence column"),
        (lambda p: (p / "x.json").write_text('{"a": 1}') and p / "x.json", "results list"),
    ],
)  # fmt: skip
def test_bad_predictions_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: object, message: str
) -> None:
    data = darknet_set(tmp_path / "ds")
    pred = make(tmp_path)  # type: ignore[operator]
    assert main(["eval", str(data), str(pred)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_bad_options_exit_2(tmp_path: Path, ref_data: Path) -> None:
    d = ref_data / "coco-fixture"
    assert main(["eval", str(d / "gt.json"), str(d / "dets.json"), "--every", "0"]) == 2
    assert main(["eval", str(d / "gt.json"), str(d / "dets.json"), "--points", "1"]) == 2
    assert main(["eval", str(d / "gt.json"), str(d / "dets.json"), "--split", "train"]) == 2


@pytest.mark.parametrize("command", ["eval", "map"])
def test_huge_points_is_one_line_not_a_memory_error(
    ref_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """--points 100000000000 asked numpy for 745 GiB (a MemoryError traceback)."""
    d = ref_data / "coco-fixture"
    args = [str(d / "gt.json"), str(d / "dets.json")]
    if command == "map":  # refused before the model or data are read
        args = [str(tmp_path / "m.pt"), str(d / "gt.json"), "--out", str(tmp_path / "o")]
    assert main([command, *args, "--points", "100000000000"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1
    assert "--points must be 0 (area under the curve), 11 or 101 (or another N from 2 to" in err


def test_eval_does_not_import_torch(ref_data: Path, tmp_path: Path) -> None:
    d = ref_data / "coco-fixture"
    code = (
        "import sys; from detforge.cli.main import main; "
        f"rc = main(['eval', {str(d / 'gt.json')!r}, {str(d / 'dets.json')!r}, '--json', "
        f"{str(tmp_path / 'o.json')!r}]); assert rc == 0; "
        "assert 'torch' not in sys.modules, 'torch'"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    "option",
    [["--iou", "2"], ["--iou", "-1"], ["--iou", "nan"], ["--conf", "nan"], ["--conf", "2"]],
)
def test_thresholds_outside_0_1_are_usage_errors(
    ref_data: Path, capsys: pytest.CaptureFixture[str], option: list[str]
) -> None:
    d = ref_data / "coco-fixture"
    with pytest.raises(SystemExit) as info:
        main(["eval", str(d / "gt.json"), str(d / "dets.json"), *option])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option[0]}: expected a number from 0 to 1, got '{option[1]}'" in err


@pytest.mark.parametrize(
    ("name", "line", "where"),
    [
        ("a.txt", "0 nan 0.5 0.1 0.1 0.9", "a.txt:2: "),
        ("a.txt", "0 0.5 0.5 1e30 1e30 0.9", "a.txt:2: "),
        ("comp4_det_test_cat.txt", "a 0.9 nan 16 36 36", "comp4_det_test_cat.txt:2: "),
        ("comp4_det_test_cat.txt", "a 0.9 1e300 16 1e300 36", "comp4_det_test_cat.txt:2: "),
    ],
)
def test_unusable_prediction_values_stop_before_any_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, line: str, where: str
) -> None:
    data = darknet_set(tmp_path)
    pred = tmp_path / "pred"
    pred.mkdir()
    first = "a 0.9 16 16 36 36" if name.startswith("comp4") else "0 0.25 0.5 0.2 0.4 0.9"
    (pred / name).write_text(f"{first}\n{line}\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy RuntimeWarning (overflow) on the way
        assert main(["eval", str(data), str(pred), "--json", str(tmp_path / "m.json")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and where in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.json").exists() and not (tmp_path / "res").exists()


def test_results_json_with_a_huge_box_stops_before_any_result(
    ref_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = ref_data / "coco-fixture"
    dets = json.loads((d / "dets.json").read_text())
    dets[3]["bbox"] = [1e308, 1, 2, 3]
    bad = tmp_path / "dets.json"
    bad.write_text(json.dumps(dets))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        args = ["eval", str(d / "gt.json"), str(bad), "--out", str(tmp_path / "o")]
        assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and f"{bad}: result #3 (bbox [1e+308, 1, 2, 3]" in err
    assert not (tmp_path / "o").exists()


def test_mixed_layouts_and_a_folder_named_txt_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = darknet_set(tmp_path)
    pred = tmp_path / "pred"
    pred.mkdir()
    (pred / "a.txt").write_text("0 0.25 0.5 0.2 0.4 0.9\n1 0.75 0.5 0.2 0.4 0.8\n")
    (pred / "b.txt").write_text("0 0.5 0.5 0.4 0.4 0.9\n")
    (pred / "comp4_det_test_cat.txt").write_text("a 0.9 16 16 36 36\n")
    assert main(["eval", str(data), str(pred)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{pred}: mixed prediction formats: comp4_det_test_cat.txt " in err
    assert "a.txt a per-image" in err and len(err.splitlines()) == 1
    (pred / "comp4_det_test_cat.txt").unlink()
    (pred / "b.txt").unlink()
    (pred / "b.txt").mkdir()
    assert main(["eval", str(data), str(pred)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{pred / 'b.txt'}: a folder" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda gt: gt.pop("annotations"), "no 'annotations' key: this looks like an image-info"),
        (lambda gt: gt["annotations"][2].update(bbox=[10, 10, -5, 20]),
         "annotation #2 (id 82183): 'bottle' box bbox=[10, 10, -5, 20]: a box has a negative"),
        (lambda gt: gt["annotations"][2].update(bbox=[10, 10, 1e308, 1e308]),
         "annotation #2 (id 82183): 'bottle' box bbox=[10, 10, 1e+308, 1e+308]: a box value"),
        (lambda gt: gt["annotations"][2].update(iscrowd="yes"),
         "annotation #2 (id 82183): 'iscrowd' must be 0 or 1"),
    ],
)  # fmt: skip
def test_coco_ground_truth_that_cannot_be_scored_exits_2(
    ref_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: Any,
    message: str,
) -> None:
    d = ref_data / "coco-fixture"
    gt = json.loads((d / "gt.json").read_text())
    change(gt)
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    assert main(["eval", str(path), str(d / "dets.json")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and f"{path}: " in err and message in err
    assert len(err.strip().splitlines()) == 1


def test_zero_size_ground_truth_boxes_are_still_accepted(
    ref_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = ref_data / "coco-fixture"
    gt = json.loads((d / "gt.json").read_text())
    gt["annotations"][2]["bbox"] = [10, 10, 0, 0]
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    assert main(["eval", str(path), str(d / "dets.json")]) == 0
    assert "note: 1 ground-truth box(es)" in capsys.readouterr().out


@pytest.mark.parametrize("target", ["gt.json", "dets.json", "dets.meta.json"])
def test_json_never_overwrites_an_input_even_with_exist_ok(
    ref_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str
) -> None:
    for name in ("gt.json", "dets.json"):
        shutil.copy(ref_data / "coco-fixture" / name, tmp_path / name)
    (tmp_path / "dets.meta.json").write_text("{}")  # a sidecar (stale here): an input too
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    args = ["eval", str(tmp_path / "gt.json"), str(tmp_path / "dets.json")]
    assert main([*args, "--json", str(tmp_path / target), "--exist-ok"]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / target}: --json names one of this command's input files" in err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_out_never_overwrites_the_predictions(
    ref_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = ref_data / "coco-fixture"
    pred = tmp_path / "predictions.json"
    shutil.copy(d / "dets.json", pred)
    before = pred.read_bytes()
    assert main(["eval", str(d / "gt.json"), str(pred), "--out", str(tmp_path), "--exist-ok"]) == 2
    assert "names one of this command's input files" in capsys.readouterr().err
    assert pred.read_bytes() == before and not (tmp_path / "metrics.json").exists()
