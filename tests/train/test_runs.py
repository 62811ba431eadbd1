"""Run folder naming, metrics.csv, results.png and the predictions-vs-truth preview."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from detforge.train.runs import (
    draw_preview,
    next_run_dir,
    plot_results,
    read_metrics_csv,
    write_metrics_csv,
)


def test_next_run_dir_counts_up(tmp_path: Path) -> None:
    base = tmp_path / "runs" / "train"
    assert next_run_dir(base) == base
    base.mkdir(parents=True)
    assert next_run_dir(base) == tmp_path / "runs" / "train-2"
    (tmp_path / "runs" / "train-2").mkdir()
    assert next_run_dir(base) == tmp_path / "runs" / "train-3"


def test_metrics_csv_round_trip_and_plot(tmp_path: Path) -> None:
    rows = [
        {"epoch": 1, "train/box": 2.5, "train/cls": 1.25, "train/dfl": 1.0, "lr": 0.01},
        {"epoch": 2, "train/box": 2.0, "train/cls": 1.0, "train/dfl": 0.9, "lr": 0.005,
         "val/mAP50": 0.5, "val/mAP50-95": 0.25},
    ]  # fmt: skip
    write_metrics_csv(tmp_path / "metrics.csv", rows)
    text = (tmp_path / "metrics.csv").read_text().splitlines()
    assert text[0] == "epoch,train/box,train/cls,train/dfl,lr,val/mAP50,val/mAP50-95"
    assert text[1] == "1,2.5,1.25,1,0.01,,"
    back = read_metrics_csv(tmp_path / "metrics.csv")
    assert back[1]["val/mAP50"] == 0.5 and back[0]["val/mAP50"] is None and back[0]["epoch"] == 1
    plot_results(tmp_path / "results.png", back)
    with Image.open(tmp_path / "results.png") as im:
        assert im.size[0] > 6 * im.size[1] / 2  # six panels side by side
    assert not list(tmp_path.glob(".*tmp*"))


def test_preview_draws_predictions_left_truth_right(tmp_path: Path) -> None:
    img = np.full((64, 64, 3), 255, dtype=np.uint8)
    pred = (np.array([[10.0, 10, 30, 30]]), np.array([0.9]), np.array([0]))
    truth = (np.array([[40.0, 40, 60, 60]]), np.array([1]))
    draw_preview(tmp_path / "p.jpg", [img, img], [pred, pred], [truth, truth], ["a", "b"])
    sheet = np.asarray(Image.open(tmp_path / "p.jpg").convert("RGB")).astype(int)
    assert sheet.shape == (2 * (64 + 4), 64 * 2 + 4, 3)
    left, right = sheet[:64, :64], sheet[:64, 68:132]
    # the prediction box edge (x=10) is drawn only on the left, the truth edge (x=40) only right
    assert (np.abs(left[20, 10] - 255) > 60).any() and not (np.abs(right[20, 10] - 255) > 60).any()
    assert (np.abs(right[50, 40] - 255) > 60).any() and not (np.abs(left[50, 40] - 255) > 60).any()
