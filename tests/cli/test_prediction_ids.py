"""Predictions know which images they are about: ids travel across predict / val / map / eval /
convert on every split, the sidecar picks or refuses the split, and ``predict --save-json`` +
``eval`` gives ``val``'s numbers exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from detforge.cli.main import main
from tests.predict.helpers import random_checkpoint, self_labelled_darknet

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SPLITS = ("train", "valid", "test")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A checkpoint and a 3-split Darknet dataset (2 images each) labelled with its own
    jittered detections, so every split scores well but not perfectly."""
    root = tmp_path_factory.mktemp("ids")
    ckpt = random_checkpoint(root / "m.pt")
    data = self_labelled_darknet(root / "data", ckpt, n=6)
    images = sorted((data.parent / "images").glob("*.png"))
    for k, split in enumerate(SPLITS):
        lines = [str(p) for p in images[2 * k : 2 * k + 2]]
        (data.parent / f"{split}.txt").write_text("\n".join(lines) + "\n")
    data.write_text(
        "classes = 3\ntrain = train.txt\nvalid = valid.txt\ntest = test.txt\n"
        "names = obj.names\nresults = results\n"
    )
    return ckpt, data


def _ids_by_path(data: Path) -> dict[str, int]:
    from detforge.formats.darknet import read_darknet

    ds = read_darknet(data)
    return dict(zip(map(str, ds.images.path), ds.images.id.tolist(), strict=True))


def _stats(res: dict) -> dict[str, float]:  # type: ignore[type-arg]
    out = {f"coco.{k}": v for k, v in res["coco"]["stats"].items()}
    out["darknet.mAP"] = res["darknet"]["mAP"]
    out["darknet.precision"] = res["darknet"]["precision"]
    for row in res["darknet"]["per_class"]:
        out[f"darknet.{row['name']}.AP"] = row["AP"]
        out[f"darknet.{row['name']}.precision"] = row["precision"]
    return out


@pytest.mark.parametrize("split", SPLITS)
def test_predict_then_eval_equals_val_and_ids_travel(
    setup: tuple[Path, Path], tmp_path: Path, split: str
) -> None:
    ckpt, data = setup
    want = _ids_by_path(data)  # the dataset's own ids: rows of the whole dataset
    dets = tmp_path / "dets.json"
    argv = ["predict", str(ckpt), f"{data}:{split}", "--conf", "0.001", "--save-json", str(dets)]
    assert main(argv) == 0
    side = json.loads((tmp_path / "dets.meta.json").read_text())
    assert side["split"] == split and side["dataset"] == str(data.resolve())
    listed = (data.parent / f"{split}.txt").read_text().split()
    assert side["images"] == [[want[p], p] for p in listed]
    records = json.loads(dets.read_text())
    assert {r["image_id"] for r in records} <= {want[p] for p in listed} and records

    # eval without --split scores the split the predictions were made on
    e_json, out = tmp_path / "e.json", tmp_path / "eval-out"
    assert main(["eval", str(data), str(dets), "--json", str(e_json), "--out", str(out)]) == 0
    ev = json.loads(e_json.read_text())
    assert ev["split"] == split and ev["unmatched"]["boxes"] == 0
    assert ev["images"] == 2

    v_json, v_dets = tmp_path / "v.json", tmp_path / "v_dets.json"
    argv = ["val", str(ckpt), str(data), "--split", split, "--json", str(v_json),
            "--save-json", str(v_dets)]  # fmt: skip
    assert main(argv) == 0
    va = json.loads(v_json.read_text())
    got, ref = _stats(ev), _stats(va)
    assert set(got) == set(ref)
    for key, value in ref.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key
    assert 0.1 < va["coco"]["stats"]["AP50"] <= 1.0  # not a degenerate case

    # the same image ids from val --save-json, eval --out, map and convert --to coco
    id_sets = {"predict": {r["image_id"] for r in records}}
    id_sets["val"] = {r["image_id"] for r in json.loads(v_dets.read_text())}
    id_sets["eval"] = {r["image_id"] for r in json.loads((out / "predictions.json").read_text())}
    m_out = tmp_path / "map"
    assert main(["map", str(data), str(ckpt), "--split", split, "--out", str(m_out),
                 "--no-plots"]) == 0  # fmt: skip
    id_sets["map"] = {r["image_id"] for r in json.loads((m_out / "predictions.json").read_text())}
    assert len({frozenset(v) for v in id_sets.values()}) == 1, id_sets
    conv = tmp_path / "coco"
    # the self-labelled dataset holds zero-size boxes: converted without them (--skip-bad)
    argv = ["convert", str(data), str(conv), "--to", "coco", "--images", "none", "--skip-bad"]
    assert main(argv) == 0
    sname = "val" if split == "valid" else split
    coco = json.loads((conv / "annotations" / f"instances_{sname}.json").read_text())
    by_stem = {Path(p).stem: i for p, i in want.items()}
    assert {Path(im["file_name"]).stem: im["id"] for im in coco["images"]} == {
        Path(p).stem: by_stem[Path(p).stem] for p in listed
    }
    # ... and eval of the same predictions against the converted COCO split agrees
    c_json = tmp_path / "c.json"
    gt_json = conv / "annotations" / f"instances_{sname}.json"
    assert main(["eval", str(gt_json), str(dets), "--json", str(c_json)]) == 0
    cv = json.loads(c_json.read_text())
    assert cv["coco"]["stats"]["AP"] == pytest.approx(ev["coco"]["stats"]["AP"], abs=1e-9)


def test_other_split_is_refused_and_python_api_scores_the_right_split(
    setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from detforge.eval import evaluate, read_predictions
    from detforge.formats.darknet import read_darknet

    ckpt, data = setup
    dets = tmp_path / "dets.json"
    argv = ["predict", str(ckpt), f"{data}:test", "--conf", "0.001", "--save-json", str(dets)]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["eval", str(data), str(dets), "--split", "valid"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "made on the 'test' split" in err and "--split test" in err

    # README's Python route: the whole dataset as GT; only the test split is scored
    gt = read_darknet(data)
    res = evaluate(gt, read_predictions(dets, gt))
    only = evaluate(gt.split("test"), read_predictions(dets, gt.split("test")))
    assert res["images"] == 2 and res["split"] == "test"
    assert res["coco"]["stats"] == only["coco"]["stats"]
    assert res["darknet"]["mAP"] == only["darknet"]["mAP"]

    # without the sidecar, the ids still are the dataset's: eval --split test matches them all
    (tmp_path / "dets.meta.json").unlink()
    out = tmp_path / "e.json"
    assert main(["eval", str(data), str(dets), "--split", "test", "--json", str(out)]) == 0
    ev = json.loads(out.read_text())
    assert ev["unmatched"]["boxes"] == 0
    assert ev["coco"]["stats"] == pytest.approx(only["coco"]["stats"], abs=1e-9)
    # ... and scored against another split they fit no image: exit 2, not a confident 0
    assert main(["eval", str(data), str(dets), "--split", "valid"]) == 2
    assert "fit no ground-truth image" in capsys.readouterr().err


def test_predict_txt_sidecar_matches_by_path(setup: tuple[Path, Path], tmp_path: Path) -> None:
    ckpt, data = setup
    out = tmp_path / "p"
    argv = ["predict", str(ckpt), f"{data}:valid", "--conf", "0.001", "--save-txt",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    side = json.loads((out / "labels.meta.json").read_text())
    assert side["split"] == "valid" and len(side["images"]) == 2
    res = tmp_path / "e.json"
    assert main(["eval", str(data), str(out / "labels"), "--json", str(res)]) == 0
    got = json.loads(res.read_text())
    assert got["split"] == "valid" and got["unmatched"]["boxes"] == 0
    assert np.isfinite(got["coco"]["stats"]["AP50"])


def test_report_scores_the_split_the_predictions_were_made_on(
    setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt, data = setup
    dets = tmp_path / "dets.json"
    argv = ["predict", str(ckpt), f"{data}:test", "--conf", "0.001", "--save-json", str(dets)]
    assert main(argv) == 0
    capsys.readouterr()
    argv = ["report", str(data), "--pred", str(dets), "--out", str(tmp_path / "r"), "--no-check"]
    assert main(argv) == 0
    assert "match no image" not in capsys.readouterr().err
