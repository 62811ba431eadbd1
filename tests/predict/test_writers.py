from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detforge.predict.writers import (
    VideoWriter,
    coco_results,
    darknet_lines,
    save_image,
    write_coco_results,
    write_darknet_txt,
)


def test_darknet_lines_hand_computed(tmp_path: Path) -> None:
    text = darknet_lines([[10, 20, 50, 60]], [2], [0.75], 200, 100)
    # cx = 30/200, cy = 40/100, w = 40/200, h = 40/100
    assert text == "2 0.150000 0.400000 0.200000 0.400000 0.750000\n"
    write_darknet_txt(tmp_path / "a.txt", np.zeros((0, 4)), [], [], 10, 10)
    assert (tmp_path / "a.txt").read_text() == ""


def test_coco_results_load_in_pycocotools(tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    gt = {
        "images": [{"id": 7, "width": 200, "height": 100, "file_name": "a.jpg"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 7,
                "category_id": 1,
                "bbox": [10, 20, 40, 40],
                "area": 1600,
                "iscrowd": 0,
            }
        ],
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
    }
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    recs = coco_results(7, [[10, 20, 50, 60], [0, 0, 5.5, 2.25]], [0, 1], [0.9, 0.123456789])
    write_coco_results(tmp_path / "res.json", recs)
    coco = COCO(str(tmp_path / "gt.json"))
    res = coco.loadRes(str(tmp_path / "res.json"))
    anns = res.loadAnns(res.getAnnIds(imgIds=[7]))
    assert [a["bbox"] for a in anns] == [[10, 20, 40, 40], [0, 0, 5.5, 2.25]]
    assert [a["category_id"] for a in anns] == [1, 2]  # 1-based by default
    assert anns[0]["area"] == pytest.approx(1600) and anns[1]["score"] == 0.12346
    mapped = coco_results(7, [[0, 0, 1, 1]], [1], [0.5], category_ids=[3, 9])
    assert mapped[0]["category_id"] == 9
    write_coco_results(tmp_path / "empty.json", [])
    assert json.loads((tmp_path / "empty.json").read_text()) == []


def test_save_image_atomic_and_suffix(tmp_path: Path) -> None:
    im = Image.new("RGB", (8, 6), (10, 200, 30))
    save_image(tmp_path / "out" / "a.png", im)
    assert np.asarray(Image.open(tmp_path / "out" / "a.png"))[0, 0].tolist() == [10, 200, 30]
    from detforge.errors import DetforgeError

    with pytest.raises(DetforgeError, match="suffix"):
        save_image(tmp_path / "a.gifx", im)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png"]


def test_video_writer_roundtrip(tmp_path: Path) -> None:
    import av

    out = tmp_path / "v" / "annotated.mp4"
    with VideoWriter(out, fps=12) as vw:
        for i in range(7):
            vw.write(np.full((33, 41, 3), i * 30, dtype=np.uint8))  # odd size -> padded
    with av.open(str(out)) as c:
        stream = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(stream)]
    assert len(frames) == 7 and frames[0].shape == (34, 42, 3)
    assert abs(float(frames[3][:33, :41].mean()) - 90) < 6
    assert [p.name for p in out.parent.iterdir()] == ["annotated.mp4"]
    with pytest.raises(RuntimeError), VideoWriter(tmp_path / "bad.mp4") as vw:
        vw.write(np.zeros((8, 8, 3), dtype=np.uint8))
        raise RuntimeError("interrupted")
    assert list(tmp_path.glob("*bad*")) == []
