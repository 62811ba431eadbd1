"""``detforge anchors`` in-process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detforge.cli.main import main
from detforge.data.anchors import kmeans_anchors


def _folder(tmp_path: Path) -> list[tuple[float, float]]:
    rng = np.random.default_rng(3)
    sizes = []
    for i in range(12):
        Image.new("RGB", (64, 48)).save(tmp_path / f"im{i:02d}.jpg")
        wh = rng.uniform(0.05, 0.9, size=(3, 2))
        (tmp_path / f"im{i:02d}.txt").write_text(
            "".join(f"0 0.5 0.5 {w:.6f} {h:.6f}\n" for w, h in wh)
        )
        sizes += [(round(w, 6), round(h, 6)) for w, h in wh]
    return sizes


def test_prints_darknet_anchors_and_mean_iou(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sizes = np.array(_folder(tmp_path)) * [320, 416]
    assert main(["anchors", str(tmp_path), "--num", "4", "--imgsz", "320,416", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    ref = kmeans_anchors(sizes, 4, seed=2)
    assert f"anchors = {ref.darknet_text()}" in out
    assert f"mean IoU = {100 * ref.mean_iou:.2f}%" in out
    assert "36 boxes, 4 anchors at 320x416" in out


def test_bad_imgsz_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _folder(tmp_path)
    assert main(["anchors", str(tmp_path), "--imgsz", "abc"]) == 2
    assert "--imgsz expects W or W,H" in capsys.readouterr().err
    assert main(["anchors", str(tmp_path), "--num", "99"]) == 2
    assert "cannot make 99 anchors" in capsys.readouterr().err
