"""Training end to end on CPU: a tiny model learns to detect generated shapes; its run folder
holds every promised output; ``detforge val`` reproduces its validation numbers; fine-tuning
from its weights starts at epoch 0 and keeps what it learned."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from detforge.cli.main import main
from detforge.data.synthetic import generate_shapes_dataset
from detforge.train.runs import read_metrics_csv
from detforge.train.trainer import TrainResult, train

from ._tiny import one_torch_thread, tiny_config  # noqa: F401 (autouse fixture)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TrainResult]:
    root = tmp_path_factory.mktemp("learn")
    data = generate_shapes_dataset(
        root / "ds", num_images=40, imgsz=(64, 64), classes=("square",), seed=0,
        splits=(0.8, 0.2, 0.0), negatives=0.0, max_objects=1,
    )  # fmt: skip
    cfg = tiny_config(
        data, root / "run", epochs=40, batch=8, optimizer="sgd", lr=0.05, lr_final=0.1,
        warmup_min_iters=10, val_every=10, plots=True, tensorboard=True, check=True,
    )  # fmt: skip
    return data, train(cfg)


@pytest.mark.slow
def test_tiny_model_learns_to_detect_shapes(trained: tuple[Path, TrainResult]) -> None:
    _, res = trained
    rows = res.metrics
    assert res.epochs_done == 40 and [r["epoch"] for r in rows] == list(range(1, 41))
    maps = [r["val/mAP50"] for r in rows if r.get("val/mAP50") is not None]
    assert len(maps) == 4
    assert max(maps) > 0.25, f"no detection learned: mAP50 per validation {maps}"

    run = res.run_dir
    for name in ("last.pt", "best.pt"):
        ck = torch.load(run / "weights" / name, weights_only=True)
        assert ck["class_names"] == ["square"] and ck["model_args"]["scale"] == "n"
    assert (run / "config.yaml").read_text().startswith("data: ")
    assert len(read_metrics_csv(run / "metrics.csv")) == 40
    with Image.open(run / "results.png") as im:
        assert im.size[0] > 600
    previews = sorted((run / "preview").glob("epoch_*.jpg"))
    assert [p.name for p in previews] == ["epoch_010.jpg", "epoch_020.jpg", "epoch_030.jpg",
                                          "epoch_040.jpg"]  # fmt: skip
    assert list(run.glob("events.out.tfevents.*"))
    assert "training n on 32 images (1 classes)" in (run / "train.log").read_text()


@pytest.mark.slow
def test_val_cli_reproduces_the_training_validation(
    trained: tuple[Path, TrainResult], tmp_path: Path
) -> None:
    data, res = trained
    best = max((r for r in res.metrics if r.get("fitness") is not None), key=lambda r: r["fitness"])
    out = tmp_path / "val.json"
    assert main(["val", str(res.run_dir / "weights" / "best.pt"), str(data), "--json", str(out),
                 "--device", "cpu"]) == 0  # fmt: skip
    report: dict[str, Any] = json.loads(out.read_text())
    assert report["coco"]["stats"]["AP"] == pytest.approx(best["val/mAP50-95"], abs=1e-6)
    assert report["coco"]["stats"]["AP50"] == pytest.approx(best["val/mAP50"], abs=1e-6)
    assert "darknet" in report  # same report as 'detforge eval' (both protocols by default)


@pytest.mark.slow
def test_fine_tune_starts_at_epoch_zero_and_keeps_the_weights(
    trained: tuple[Path, TrainResult], tmp_path: Path
) -> None:
    data, res = trained
    best_map50 = max(r["val/mAP50"] for r in res.metrics if r.get("val/mAP50") is not None)
    cfg = tiny_config(
        data, tmp_path / "ft", epochs=3, batch=8, optimizer="sgd", lr=0.01,
        weights=str(res.run_dir / "weights" / "best.pt"), val_every=1, warmup_epochs=1.0,
    )  # fmt: skip
    ft = train(cfg)
    assert ft.epochs_done == 3 and [r["epoch"] for r in ft.metrics] == [1, 2, 3]
    log = (tmp_path / "ft" / "train.log").read_text()
    assert "best.pt: " in log and "tensors loaded; starting at epoch 0" in log
    assert "4 steps/epoch, warmup 4 steps" in log  # warmup is on for fine-tuning too
    assert ft.metrics[0]["val/mAP50"] > 0.5 * best_map50  # the learned weights were loaded
