from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detforge.cli.main import main
from detforge.predict.draw import FN_COLOR, FP_COLOR, TP_COLOR, class_color


def _dataset(root: Path) -> Path:
    """Two black 100x80 images; img0 has a 'bee' box at pixels (30, 20)-(70, 60) and a 'cow'
    box at (5, 5)-(25, 25); img1 has none."""
    root.mkdir()
    for i in range(2):
        Image.new("RGB", (100, 80)).save(root / f"img{i}.png")
    (root / "img0.txt").write_text("1 0.5 0.5 0.4 0.5\n2 0.15 0.1875 0.2 0.25\n")
    (root / "img1.txt").write_text("")
    (root / "classes.txt").write_text("ant\nbee\ncow\n")
    return root


def _close(px: np.ndarray, color: tuple[int, int, int], tol: int = 40) -> bool:
    return bool(np.abs(px.astype(int) - np.array(color)).max() <= tol)


def test_a_contact_sheet_never_replaces_a_picture(tmp_path: Path) -> None:
    """An image named grid_000 keeps its picture grid_000.jpg: the sheet of that number is
    grid_000-sheet.jpg (it replaced the picture, and show said it drew both images)."""
    data = _dataset(tmp_path / "ds")
    (data / "img1.png").rename(data / "grid_000.png")
    (data / "img1.txt").rename(data / "grid_000.txt")
    out = tmp_path / "out"
    assert main(["show", str(data), "--out", str(out), "--grid", "--grid-size", "1"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["grid_000-sheet.jpg", "grid_000.jpg", "grid_001.jpg", "img0.jpg"]
    assert Image.open(out / "grid_000.jpg").size == (100, 80)  # the picture, not a sheet


def test_show_ground_truth_boxes_at_label_pixels(tmp_path: Path) -> None:
    data = _dataset(tmp_path / "ds")
    out = tmp_path / "out"
    assert main(["show", str(data), "--out", str(out), "--line-width", "3", "--grid"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["grid_000.jpg", "img0.jpg", "img1.jpg"]
    arr = np.asarray(Image.open(out / "img0.jpg"))
    assert arr.shape == (80, 100, 3)
    for x, y in ((31, 45), (68, 45), (50, 59)):  # left, right, bottom edges of the bee box
        assert _close(arr[y, x], class_color(1)), (x, y, arr[y, x])
    assert _close(arr[15, 6], class_color(2))  # the cow box's left edge
    assert arr[45, 50].max() < 40  # inside the box: untouched black
    assert np.asarray(Image.open(out / "img1.jpg")).max() < 40  # no boxes, nothing drawn
    one = tmp_path / "one"
    assert (
        main(["show", str(data), "--out", str(one), "--limit", "1", "--random", "--seed", "3"]) == 0
    )
    assert len(list(one.glob("img*.jpg"))) == 1


def test_show_predictions_coloured_by_match(tmp_path: Path) -> None:
    data = _dataset(tmp_path / "ds")
    preds = [  # bee found exactly, a false 'ant', the cow missed; one below --conf
        {"image_id": "img0", "category_id": 2, "bbox": [30, 20, 40, 40], "score": 0.9},
        {"image_id": "img0", "category_id": 1, "bbox": [75, 50, 20, 20], "score": 0.8},
        {"image_id": "img0", "category_id": 3, "bbox": [5, 5, 20, 20], "score": 0.1},
    ]
    (tmp_path / "p.json").write_text(json.dumps(preds))
    out = tmp_path / "out"
    argv = ["show", str(data), "--pred", str(tmp_path / "p.json"), "--out", str(out),
            "--line-width", "3"]  # fmt: skip
    assert main(argv) == 0
    arr = np.asarray(Image.open(out / "img0.jpg"))
    gap = 4
    assert arr.shape[1] == 200 + gap and arr.shape[0] > 80  # side by side + legend
    assert _close(arr[45, 31], TP_COLOR)  # left: found bee
    assert _close(arr[15, 6], FN_COLOR)  # left: missed cow (its prediction is below --conf)
    assert _close(arr[45, 100 + gap + 31], TP_COLOR)  # right: matching prediction
    assert _close(arr[62, 100 + gap + 76], FP_COLOR)  # right: false positive
    assert arr[15, 100 + gap + 6].max() < 40  # the low-score cow prediction is not drawn


def test_show_unreadable_image_and_bad_split(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _dataset(tmp_path / "ds")
    out = tmp_path / "out"
    assert main(["show", str(data), "--split", "test", "--out", str(out)]) == 2
    assert "no split" in capsys.readouterr().err
    (data / "img1.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # header only, no pixels
    code = main(["show", str(data), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 1  # the other image is still drawn; the bad one is named
    assert "1 images could not be read" in captured.err and "img1.png" in captured.err
    assert (out / "img0.jpg").is_file() and not (out / "img1.jpg").exists()


def test_show_never_overwrites_inputs(tmp_path: Path) -> None:
    data = tmp_path / "ds"
    data.mkdir()
    Image.new("RGB", (40, 30), (9, 9, 9)).save(data / "a.jpg")
    (data / "a.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (data / "classes.txt").write_text("x\n")
    before = (data / "a.jpg").read_bytes()
    # an existing --out is numbered (ds-2); only --exist-ok could reach the inputs
    assert main(["show", str(data), "--out", str(data), "--exist-ok"]) == 2
    assert (data / "a.jpg").read_bytes() == before


def test_show_long_names_in_two_folders(tmp_path: Path) -> None:
    """Two images named by the longest stem a file system takes (251 bytes + '.jpg') in two
    folders: the second picture's name was that stem + '_2.jpg', 257 bytes, and show died
    with an OSError traceback. Pictures are named as every writer names files after images."""
    stem = "n" * 251
    lines = []
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        Image.new("RGB", (40, 30)).save(tmp_path / sub / f"{stem}.jpg")
        (tmp_path / sub / f"{stem}.txt").write_text("0 0.5 0.5 0.5 0.5\n")
        lines.append(str(tmp_path / sub / f"{stem}.jpg"))
    (tmp_path / "list.txt").write_text("".join(s + "\n" for s in lines))
    (tmp_path / "obj.names").write_text("x\n")
    (tmp_path / "obj.data").write_text("classes=1\ntrain=list.txt\nnames=obj.names\n")
    out = tmp_path / "out"
    assert main(["show", str(tmp_path / "obj.data"), "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 2 and all(len(n) <= 255 and n.endswith(".jpg") for n in names)
    assert names[0].startswith("a_nnn") and names[1].startswith("b_nnn")


@pytest.mark.parametrize(
    "option",
    [
        ["--line-width", "-5"],
        ["--line-width", "0"],
        ["--line-width", "101"],
        ["--conf", "nan"],
        ["--iou", "2"],
    ],
)
def test_show_refuses_out_of_range_options(
    option: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _dataset(tmp_path / "ds")
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:  # a usage error, before anything is read
        main(["show", str(data), "--out", str(out), *option])
    assert e.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(err) == 1 and f"argument {option[0]}" in err[0] and option[1] in err[0], err
    assert not out.exists()
