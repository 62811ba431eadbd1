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
    assert notes[0] == notes[2]  # map and eval read the same split: the same line
