from __future__ import annotations

import json
from pathlib import Path

import pytest

from detforge.cli.main import main
from tests.predict.helpers import random_checkpoint, self_labelled_darknet

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("map")
    ckpt = random_checkpoint(root / "m.pt")
    return ckpt, self_labelled_darknet(root / "data", ckpt)


def test_map_predict_json_eval_and_val_agree(
    setup: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ckpt, data = setup
    monkeypatch.chdir(tmp_path)
    assert main(["map", str(ckpt), str(data)]) == 0
    results = data.parent / "results" / "map"  # the .data file's results= folder, + map
    assert capsys.readouterr().out.endswith(f"results: {results}/\n")
    got = json.loads((results / "metrics.json").read_text())
    for name in ("metrics.json", "predictions.json"):
        assert (results / name).is_file()
    assert list(results.glob("*.png"))
    ap = got["coco"]["stats"]
    assert 0.2 < ap["AP50"] <= 1.0  # the labels are the model's own jittered detections

    # predict --save-json on the same split, then 'detforge eval' reads it directly ...
    js = tmp_path / "dets.json"
    argv = ["predict", str(ckpt), f"{data}:valid", "--conf", "0.001", "--save-json", str(js)]
    assert main(argv) == 0
    assert main(["eval", str(data), str(js), "--json", str(tmp_path / "e.json")]) == 0
    # ... and 'detforge show' matches the same ids.
    look = tmp_path / "look"
    argv = ["show", str(data), "--split", "valid", "--pred", str(js), "--out", str(look)]
    assert main(argv) == 0
    assert "match no image" not in capsys.readouterr().err
    assert len(list(look.glob("img*.jpg"))) == 4
    ev = json.loads((tmp_path / "e.json").read_text())
    # ... and 'detforge val' computes the same numbers.
    argv = ["val", str(ckpt), str(data), "--json", str(tmp_path / "v.json")]
    assert main(argv) == 0
    va = json.loads((tmp_path / "v.json").read_text())
    for key, value in va["coco"]["stats"].items():
        assert ev["coco"]["stats"][key] == pytest.approx(value, abs=1e-9), key
        assert ap[key] == pytest.approx(value, abs=1e-9), key
    assert ev["darknet"]["mAP"] == pytest.approx(got["darknet"]["mAP"], abs=1e-9)


def test_map_errors(
    setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt, data = setup
    assert main(["map", str(ckpt), str(data), "--split", "test", "--out", str(tmp_path)]) == 2
    assert "no 'test' list" in capsys.readouterr().err
    assert main(["map", str(tmp_path / "x.pt"), str(data)]) == 2
    capsys.readouterr()
    assert main(["map", str(ckpt), str(data), "--nms-iou", "0", "--out", str(tmp_path)]) == 2
    assert "--nms-iou must be above 0 and at most 1, not 0.0" in capsys.readouterr().err


def test_map_val_and_eval_all_say_which_boxes_are_not_scored(
    setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The fixture's jittered labels include boxes of zero or negative size, which the reader
    leaves out (never scored): map and val say so in the line eval prints, instead of
    dropping them silently."""
    ckpt, data = setup
    outs = []
    for argv in (["map", str(ckpt), str(data), "--out", str(tmp_path / "m")],
                 ["val", str(ckpt), str(data)],
                 ["eval", str(data), str(tmp_path / "m" / "predictions.json")]):  # fmt: skip
        assert main(argv) == 0
        outs.append(capsys.readouterr().out)
    notes = [[x for x in out.splitlines() if x.startswith("note: ")] for out in outs]
    assert all(len(n) == 1 and "box-zero-size" in n[0] for n in notes), notes
    # map, val and eval read the same split: the same line (val counted the boxes of every
    # split, here twice the valid list's, as its .data lists the same images for train)
    assert notes[0] == notes[1] == notes[2]


def test_map_val_and_eval_note_boxes_outside_their_image(
    setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A label line wholly outside its image (cx = 1.5) stays a truth, as darknet's 'detector
    map' counts it, and map, val and eval each say so in one line naming the file and line."""
    ckpt, _ = setup
    data = self_labelled_darknet(tmp_path / "data", ckpt)
    label = data.parent / "images" / "img1.txt"
    line = len(label.read_text().splitlines()) + 1
    with label.open("a") as f:
        f.write("2 1.5 0.5 0.1 0.1\n")
    runs = [["map", str(ckpt), str(data), "--out", str(tmp_path / "m"), "--no-plots"],
            ["val", str(ckpt), str(data), "--json", str(tmp_path / "v.json")],
            ["eval", str(data), str(tmp_path / "m" / "predictions.json"),
             "--json", str(tmp_path / "e.json")]]  # fmt: skip
    for argv in runs:
        assert main(argv) == 0
        out = capsys.readouterr().out
        notes = [x for x in out.splitlines() if "wholly outside" in x]
        assert len(notes) == 1, (argv[0], out)
        assert notes[0].startswith("note: 1 ground-truth box(es) lie wholly outside their image")
        assert f"first: {label}:{line}: '2 1.5 0.5 0.1 0.1'" in notes[0], notes[0]
        assert "count as misses" in notes[0] and "see detforge check" in notes[0]
    for name in ("m/metrics.json", "v.json", "e.json"):
        got = json.loads((tmp_path / name).read_text())
        assert got["gt_outside_image"] == 1
        assert any("wholly outside" in n for n in got["notes"]), name
        assert got["darknet"]["truths"] == got["gt_boxes"]  # still scored as a truth


def test_map_and_val_refuse_other_classes_in_one_line(
    setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """map printed a warning and then predict_dataset's error (different counts), or only a
    warning while scoring other classes by index (same count); val listed every name."""
    ckpt, data = setup
    many = random_checkpoint(tmp_path / "many.pt", num_classes=40)

    def other(names: str) -> str:
        (tmp_path / "o.names").write_text(names)
        d = tmp_path / "o.data"
        k = len(names.split())
        d.write_text(f"classes = {k}\nvalid = {data.parent / 'valid.txt'}\nnames = o.names\n")
        return str(d)

    cases = [
        ("map", ckpt, "ant\nbee\ncow\ndeer\n", "only the dataset has 'deer'"),
        ("map", ckpt, "bee\nant\ncow\n", "class 0 is 'ant' in the model, 'bee' in the dataset"),
        ("val", many, "ant\nbee\ncow\n",
         "only the model has 'class0', 'class1', 'class2', 'class3', 'class4' and 35 more; "
         "only the dataset has 'ant', 'bee', 'cow'"),
    ]  # fmt: skip
    for command, model, names, message in cases:
        argv = [command, str(model), other(names)]
        assert main([*argv, "--out" if command == "map" else "--json", str(tmp_path / "x")]) == 2
        out, err = capsys.readouterr()
        assert out == "" and len(err.strip().splitlines()) == 1, err
        assert err.startswith(f"detforge {command}: error: {argv[2]}: the model's classes differ")
        assert message in err and "warning" not in err
        assert len(err) - len(argv[1]) - len(argv[2]) < 300  # bounded, whatever the names
        assert not (tmp_path / "x").exists()


def test_classes_by_index_scores_class_k_as_class_k(
    setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same labels under other names (ant, bee, cow -> bee, ant, cow): refused by name,
    scored by index with --classes-by-index, to the same numbers per index as under the
    model's own names; with another class count the option is refused in one line."""
    ckpt, data = setup
    names = data.parent / "other.names"
    names.write_text("bee\nant\ncow\n")
    other = tmp_path / "o.data"
    other.write_text(f"classes = 3\nvalid = {data.parent / 'valid.txt'}\nnames = {names}\n")
    for command in ("map", "val"):
        argv = [command, str(ckpt), str(other)]
        out_opt = ["--out", str(tmp_path / f"{command}-x")] if command == "map" else []
        assert main([*argv, *out_opt]) == 2
        assert "or pass --classes-by-index if class k is" in capsys.readouterr().err
        runs = {}
        for d in (data, other):
            js = tmp_path / f"{command}-{d.stem}.json"
            opt = ["--out", str(tmp_path / f"{command}-{d.stem}"), "--no-plots"]
            if command == "val":
                opt = ["--json", str(js)]
            assert main([command, str(ckpt), str(d), "--classes-by-index", *opt]) == 0
            err = capsys.readouterr().err
            if d == other:
                assert (
                    "note: scoring by class index (--classes-by-index): 'ant' as 'bee', "
                    "'bee' as 'ant'\n" in err
                )
            else:
                assert "--classes-by-index" not in err  # the names agree: nothing to say
            if command == "map":
                js = tmp_path / f"{command}-{d.stem}" / "metrics.json"
            runs[d] = json.loads(js.read_text())
        own, renamed = runs[data]["darknet"], runs[other]["darknet"]
        assert renamed["mAP"] == pytest.approx(own["mAP"], abs=1e-12)
        ap_own = [c["AP"] for c in own["per_class"]]
        ap_renamed = [c["AP"] for c in renamed["per_class"]]
        assert ap_renamed == pytest.approx(ap_own, abs=1e-12)
        assert [c["name"] for c in renamed["per_class"]] == ["bee", "ant", "cow"]
    many = random_checkpoint(tmp_path / "many.pt", num_classes=4)
    argv = ["val", str(many), str(other), "--classes-by-index"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == (f"detforge val: error: {other}: --classes-by-index needs as many classes "
                   f"in {many} as in the dataset (4 and 3)\n")  # fmt: skip
    # eval of a COCO results file made under the model's names scores its category ids
    # as the dataset's classes (COCO's rule), whatever the dataset calls them
    js = tmp_path / "dets.json"
    argv = ["predict", str(ckpt), f"{data}:valid", "--conf", "0.001", "--save-json", str(js)]
    assert main(argv) == 0
    capsys.readouterr()
    scores = []
    for d in (data, other):
        out = tmp_path / f"e-{d.stem}.json"
        assert main(["eval", str(d), str(js), "--json", str(out)]) == 0
        scores.append(json.loads(out.read_text())["darknet"]["mAP"])
    assert scores[1] == pytest.approx(scores[0], abs=1e-12)
    assert scores[0] == pytest.approx(runs[data]["darknet"]["mAP"], abs=1e-9)  # val's own
