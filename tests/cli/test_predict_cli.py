from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import detforge
from detforge.cli.main import main
from tests.predict.helpers import random_checkpoint, scenes

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_checkpoint(tmp_path_factory.mktemp("model") / "m.pt")


def test_images_sharing_a_stem_get_distinct_outputs(tmp_path: Path, ckpt: Path) -> None:
    """a/x.jpg, b/x.png and b/X.jpg: three label files and three pictures, none written over
    another, not even on a case-insensitive file system (x.txt and X.txt are one file there)."""
    src = tmp_path / "src"
    for rel, im in zip(("a/x.jpg", "b/x.png", "b/X.jpg"), scenes(3, seed=4), strict=True):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(im).save(src / rel)
    out = tmp_path / "out"
    argv = ["predict", str(ckpt), str(src), "--out", str(out), "--conf", "0.3", "--save-txt",
            "--save-images", "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    assert sorted(p.name for p in (out / "labels").glob("*.txt")) == [
        "a_x.txt", "b_X.txt", "b_x_1.txt"
    ]  # fmt: skip
    assert sorted(p.name for p in out.glob("*.jpg")) == ["a_x.jpg", "b_X.jpg", "b_x_1.jpg"]
    ref = detforge.load(ckpt, device="cpu").predict(src, conf=0.3)  # sorted: a/x, b/X, b/x
    for name, pred in zip(("a_x", "b_X", "b_x_1"), ref, strict=True):
        assert len((out / "labels" / f"{name}.txt").read_text().splitlines()) == len(pred)


@pytest.mark.parametrize(("out", "expect"), [("x/..", "../proj-2"), (".", "../proj-2"),
                                             ("x/", "x-2")])  # fmt: skip
def test_out_spelled_with_dots_or_a_slash(
    tmp_path: Path,
    ckpt: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    out: str,
    expect: str,
) -> None:
    """An existing --out spelled ``x/..``, ``.`` or ``x/`` is numbered by its real name: no
    folder ``..-2`` inside x, no traceback for ``.``."""
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(scenes(1, seed=2)[0]).save(src / "p.png")
    (tmp_path / "proj" / "x").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "proj")
    assert main(["predict", str(ckpt), str(src), "--out", out, "--save-txt"]) == 0
    said = capsys.readouterr().out.strip().splitlines()[-1]
    dest = (tmp_path / "proj" / expect).resolve()
    assert said == f"labels: {dest if out != 'x/' else expect}/labels/"
    assert (dest / "labels" / "p.txt").is_file()
    assert os.listdir(tmp_path / "proj" / "x") == []


def test_predict_folder_writes_txt_json_images(tmp_path: Path, ckpt: Path) -> None:
    src = tmp_path / "photos"
    src.mkdir()
    for i, im in enumerate(scenes(3, seed=3)):
        Image.fromarray(im).save(src / f"p{i}.png")
    out, js = tmp_path / "out", tmp_path / "dets.json"
    argv = ["predict", str(ckpt), str(src), "--out", str(out), "--conf", "0.3", "--save-txt",
            "--save-json", str(js), "--save-images"]  # fmt: skip
    assert main(argv) == 0
    assert sorted(p.name for p in out.glob("*.jpg")) == ["p0.jpg", "p1.jpg", "p2.jpg"]
    assert Image.open(out / "p0.jpg").size == (160, 120)
    ref = detforge.load(ckpt, device="cpu").predict(src, conf=0.3)
    records = json.loads(js.read_text())
    assert sum(len(p) for p in ref) == len(records) > 0
    for i, pred in enumerate(ref):
        text = (out / "labels" / f"p{i}.txt").read_text()
        rows = np.array([line.split() for line in text.splitlines()], dtype=float).reshape(-1, 6)
        assert rows.shape == (len(pred), 6)
        b = pred.boxes.astype(np.float64)
        expect = np.column_stack([
            pred.classes, (b[:, 0] + b[:, 2]) / 320, (b[:, 1] + b[:, 3]) / 240,
            (b[:, 2] - b[:, 0]) / 160, (b[:, 3] - b[:, 1]) / 120, pred.scores,
        ])  # fmt: skip
        np.testing.assert_allclose(rows, expect, atol=2e-6)
        mine = [r for r in records if r["image_id"] == i]  # the position in the source
        assert len(mine) == len(pred)
        # full precision: the float32 values the model computed, exactly, without float64 noise
        xywh = np.column_stack([b[:, :2], b[:, 2:] - b[:, :2]]).astype(np.float32)
        assert np.array_equal(np.float32([r["bbox"] for r in mine]), xywh)
        assert np.array_equal(np.float32([r["score"] for r in mine]), pred.scores)
        assert all(len(repr(v)) <= 12 for r in mine for v in r["bbox"])
    side = json.loads((tmp_path / "dets.meta.json").read_text())
    assert side["images"] == [[i, str(src / f"p{i}.png")] for i in range(3)]
    assert side["split"] is None and side["model"] == str(ckpt) and side["written_by"]
    assert json.loads((out / "labels.meta.json").read_text())["images"] == side["images"]


def test_predict_classes_filter(
    tmp_path: Path, ckpt: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "a.png"
    Image.fromarray(scenes(1, seed=3)[0]).save(src)
    every = detforge.load(ckpt, device="cpu").predict(src, conf=0.2)[0]
    assert len(set(every.classes.tolist())) > 1  # so the filter has something to remove
    js = tmp_path / "d.json"
    assert main(["predict", str(ckpt), str(src), "--conf", "0.2", "--save-json", str(js),
                 "--classes", "bee", "0"]) == 0  # fmt: skip
    got = json.loads(js.read_text())
    assert 0 < len(got) == int(np.isin(every.classes, [0, 1]).sum()) < len(every)
    assert {r["category_id"] for r in got} <= {1, 2}
    assert main(["predict", str(ckpt), str(src), "--classes", "zebra"]) == 2
    assert "neither a class name" in capsys.readouterr().err


def test_predict_video_counts_frames(tmp_path: Path, ckpt: Path) -> None:
    import av

    video = tmp_path / "clip.mp4"
    with av.open(str(video), mode="w") as c:
        s = c.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = 160, 120, "yuv420p"
        for im in scenes(10):
            for pkt in s.encode(av.VideoFrame.from_ndarray(im, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    out = tmp_path / "out"
    argv = ["predict", str(ckpt), str(video), "--every", "3", "--out", str(out), "--save-txt",
            "--save-images", "--conf", "0.3"]  # fmt: skip
    assert main(argv) == 0
    labels = sorted(p.name for p in (out / "labels").iterdir())
    assert labels == [f"clip_{i:06d}.txt" for i in (0, 3, 6, 9)]
    with av.open(str(out / "clip.mp4")) as c:
        frames = list(c.decode(c.streams.video[0]))
        assert len(frames) == 4 and (frames[0].width, frames[0].height) == (160, 120)


def test_predict_bad_input_exits_2(
    tmp_path: Path, ckpt: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["predict", str(tmp_path / "none.pt"), str(tmp_path)]) == 2
    assert "weights file not found" in capsys.readouterr().err
    assert main(["predict", str(ckpt), str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "source not found" in err and len(err.strip().splitlines()) == 1
    # an input side of 100000 px (30 GB per image) was a RuntimeError traceback from torch
    Image.fromarray(scenes(1)[0]).save(tmp_path / "a.png")
    assert main(["predict", str(ckpt), str(tmp_path / "a.png"), "--imgsz", "100000"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "detforge predict: error: the input size must be a multiple of 32 from 32 to 8192 "
        "(e.g. 416, 640), got 100000"
    ]


def test_predict_corrupt_image_is_one_line(
    tmp_path: Path, ckpt: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "imgs"
    src.mkdir()
    Image.fromarray(scenes(1)[0]).save(src / "a.png")
    (src / "b.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    # the other images are still predicted; the bad one is named in one warning, exit 1
    assert main(["predict", str(ckpt), str(src), "--save-txt", "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "b.jpg" in err and "cannot decode" in err
    assert err.startswith("warning: 1 images could not be read and have no predictions, e.g. ")
    assert sorted(p.name for p in (tmp_path / "o" / "labels").iterdir()) == ["a.txt"]
    # none readable: one error line, exit 2
    (src / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n cut")
    assert main(["predict", str(ckpt), str(src), "--save-txt", "--out", str(tmp_path / "n")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no image could be read; the first: " in err, err


def test_predict_never_overwrites_inputs(tmp_path: Path, ckpt: Path) -> None:
    src = tmp_path / "ds"
    (src / "images").mkdir(parents=True)
    (src / "labels").mkdir()
    Image.fromarray(scenes(1)[0]).save(src / "images" / "a.jpg", quality=95)
    (src / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    before = (src / "images" / "a.jpg").read_bytes()
    # Annotated pictures into the image folder, or predicted labels over the label folder.
    # An existing --out is numbered (images-2), so only --exist-ok could reach the inputs.
    argv = ["predict", str(ckpt), str(src / "images"), "--exist-ok"]
    assert main([*argv, "--out", str(src / "images")]) == 2
    assert main([*argv, "--out", str(src), "--save-txt"]) == 2
    assert (src / "images" / "a.jpg").read_bytes() == before
    assert (src / "labels" / "a.txt").read_text() == "0 0.5 0.5 0.2 0.2\n"


def test_predict_on_coco_named_images_writes_coco_ids(tmp_path: Path, ckpt: Path) -> None:
    from pycocotools.coco import COCO

    src = tmp_path / "val2017"
    src.mkdir()
    ids = [139, 285]
    for i, im in zip(ids, scenes(2, seed=4), strict=True):
        Image.fromarray(im).save(src / f"{i:012d}.png")
    gt = {
        "images": [{"id": i, "file_name": f"{i:012d}.png", "width": 160, "height": 120}
                   for i in ids],
        "annotations": [{"id": 1, "image_id": 139, "category_id": 2, "bbox": [10, 10, 40, 30],
                         "area": 1200, "iscrowd": 0}],
        "categories": [{"id": k + 1, "name": n} for k, n in enumerate(["ant", "bee", "cow"])],
    }  # fmt: skip
    gt_path = tmp_path / "instances_val2017.json"
    gt_path.write_text(json.dumps(gt))
    js = tmp_path / "dets.json"
    assert main(["predict", str(ckpt), str(src), "--conf", "0.3", "--save-json", str(js)]) == 0
    records = json.loads(js.read_text())
    assert {r["image_id"] for r in records} == set(ids)
    COCO(str(gt_path)).loadRes(str(js))  # pycocotools accepts the ids as they are
    out = tmp_path / "e.json"
    argv = ["eval", str(gt_path), str(js), "--images-dir", str(src), "--json", str(out)]
    assert main(argv) == 0
    assert json.loads(out.read_text())["unmatched"]["boxes"] == 0
