"""predict / map / val / export take a Darknet .weights (+ .cfg) where they take a checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from detforge.cli.main import main
from detforge.models.darknet.model import detect, forward_rows, load_darknet
from detforge.models.darknet.preprocess import darknet_input
from tests.models.darknet.helpers import scenes, self_labelled_dataset, tiny_darknet

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(cfg, weights, obj.data): a Darknet dataset labelled with the network's own detections
    above 0.45, jittered, with class names 'doe' and 'stag'."""
    root = tmp_path_factory.mktemp("dkcli")
    cfg, weights = tiny_darknet(root / "model")
    rng = np.random.default_rng(0)
    data = self_labelled_dataset(
        load_darknet(cfg, weights), scenes(4, seed=2), root / "data", thresh=0.45,
        jitter=lambda boxes: rng.uniform(-2, 2, boxes.shape),
    )  # fmt: skip
    return cfg, weights, data


def test_predict_with_and_without_cfg(setup: tuple[Path, Path, Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    cfg, weights, data = setup
    out = tmp_path / "a"
    argv = ["predict", str(weights), str(data.parent / "img0.png"), "--cfg", str(cfg),
            "--save-txt", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    lines = (out / "labels" / "img0.txt").read_text().splitlines()
    assert "torch-darknet" in capsys.readouterr().out
    im = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(data.parent / "img0.png"))
    ref = detect(load_darknet(cfg, weights), im[:, :, :3])
    assert len(lines) == len(ref.scores) > 0
    # same-stem cfg beside the weights; names from the .data source; --classes by name
    js = tmp_path / "d.json"
    argv = ["predict", str(weights), str(data), "--save-json", str(js), "--classes", "stag"]
    assert main(argv) == 0
    assert {r["category_id"] for r in json.loads(js.read_text())} <= {2}
    lonely = tmp_path / "lonely.weights"
    lonely.write_bytes(weights.read_bytes())
    assert (
        main(["predict", str(lonely), str(data), "--save-txt", "--out", str(tmp_path / "b")]) == 2
    )
    assert "needs its network .cfg: pass --cfg" in capsys.readouterr().err


def test_map_in_darknet_order_and_val_agree(
    setup: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, weights, data = setup
    assert main(["map", str(data), str(cfg), str(weights), "--out", str(tmp_path / "m1"),
                 "--no-plots"]) == 0  # fmt: skip
    first = json.loads((tmp_path / "m1" / "metrics.json").read_text())
    assert "differ from the dataset" not in capsys.readouterr().err  # names taken from DATA
    assert main(["map", str(data), str(weights), "--cfg", str(cfg), "--out", str(tmp_path / "m2"),
                 "--no-plots"]) == 0  # fmt: skip
    second = json.loads((tmp_path / "m2" / "metrics.json").read_text())
    assert first["darknet"]["mAP"] == second["darknet"]["mAP"] > 0.3  # its own jittered boxes
    names = [c["name"] for c in first["darknet"]["per_class"]]
    assert names == ["doe", "stag"]
    js = tmp_path / "v.json"
    assert main(["val", str(weights), str(data), "--protocol", "all", "--json", str(js)]) == 0
    va = json.loads(js.read_text())
    assert va["darknet"]["mAP"] == pytest.approx(first["darknet"]["mAP"], abs=1e-12)
    assert va["coco"]["stats"]["AP50"] == pytest.approx(first["coco"]["stats"]["AP50"], abs=1e-12)
    assert main(["map", str(data), str(cfg), str(weights), "--cfg", str(cfg)]) == 2


def test_export_darknet_round_trip(setup: tuple[Path, Path, Path], tmp_path: Path) -> None:
    cfg, weights, data = setup
    out = tmp_path / "deploy"
    names = data.parent / "obj.names"
    argv = ["export", str(weights), "--format", "darknet", "--out", str(out), "--names", str(names)]
    assert main(argv) == 0
    assert (out / "tiny.names").read_text() == "doe\nstag\n"
    assert (out / "tiny.weights").read_bytes() == weights.read_bytes()
    again = load_darknet(out / "tiny.cfg", out / "tiny.weights")
    x = darknet_input(scenes(1)[0], 96, 64)
    np.testing.assert_array_equal(
        forward_rows(again, x), forward_rows(load_darknet(cfg, weights), x)
    )
    assert main(argv) == 2  # refuses to overwrite
    assert main(["export", str(weights), "--format", "darknet"]) == 2  # needs --out


def test_val_json_never_replaces_an_input(
    setup: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``val --json/--save-json FILE --exist-ok`` naming the cfg, the weights or a file of
    the dataset is refused before anything is written."""
    cfg, weights, data = setup
    names = data.parent / "obj.names"
    for option in ("--json", "--save-json"):
        for target in (cfg, weights, data, names):
            before = target.read_bytes()
            argv = ["val", str(weights), str(data), "--cfg", str(cfg), "--device", "cpu",
                    option, str(target), "--exist-ok"]  # fmt: skip
            assert main(argv) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and "input files" in err, err
            assert target.read_bytes() == before
