"""NaN/inf losses: skipped and logged; repeated ones roll back with a lower LR; persistent
ones stop training with a diagnosis."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from detforge.errors import DetforgeError
from detforge.formats.darknet import read_darknet
from detforge.train.runs import read_metrics_csv
from detforge.train.trainer import train

from ._tiny import one_torch_thread, tiny_config, tiny_data  # noqa: F401 (autouse fixture)


def _nan_on(calls: set[int]):  # type: ignore[no-untyped-def]
    n = [0]

    def hook(step: int, loss: torch.Tensor) -> torch.Tensor:
        n[0] += 1
        return loss * float("nan") if n[0] in calls else loss

    return hook


def test_nan_steps_are_skipped_and_their_images_logged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tiny_data(tmp_path / "ds")
    cfg = tiny_config(data, tmp_path / "run", epochs=2, progress=True)
    res = train(cfg, loss_hook=_nan_on({2, 4}))
    assert res.epochs_done == 2 and res.stop_reason == "finished"
    bar = capsys.readouterr().err  # the progress bar: losses, speed, share waiting for data
    assert "epoch 2/2" in bar and "img/s" in bar and "data wait" in bar and "box " in bar
    log = (tmp_path / "run" / "train.log").read_text()
    lines = [ln for ln in log.splitlines() if ln.startswith("NaN/inf loss")]
    assert len(lines) == 2 and "step skipped" in lines[0]
    train_paths = {str(p) for p in read_darknet(data).split("train").images.path}
    logged = lines[0].split("images: ")[1].split(", ")
    assert len(logged) == 4 and set(logged) <= train_paths
    rows = read_metrics_csv(tmp_path / "run" / "metrics.csv")
    assert rows[-1]["nan_steps"] == 2
    assert "rolled back" not in log  # never two in a row


def test_persistent_nan_rolls_back_then_stops_with_a_diagnosis(tmp_path: Path) -> None:
    data = tiny_data(tmp_path / "ds")
    always = _nan_on(set(range(3, 100)))  # epoch 1 is fine, then every step is NaN
    with pytest.raises(DetforgeError) as info:
        train(tiny_config(data, tmp_path / "run", epochs=5), loss_hook=always)
    msg = str(info.value)
    assert "training stopped" in msg and "1 rollback" in msg and "detforge check" in msg
    log = (tmp_path / "run" / "train.log").read_text()
    assert "rolled back to the last good checkpoint, LR x0.5" in log
    assert log.count("NaN/inf loss at step 2 ") == 4  # the step counter never advanced


def test_lr_auto_runs_the_range_test_first(tmp_path: Path) -> None:
    data = tiny_data(tmp_path / "ds")
    notes: list[str] = []
    cfg = tiny_config(data, tmp_path / "run", epochs=1, lr="auto", lr_find_steps=12)
    train(cfg, note=notes.append)
    line = next(n for n in notes if n.startswith("--lr auto"))
    resolved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["resolved"]
    assert resolved["lr"] > 0 and (f"{resolved['lr']:.3g}" in line or "default" in line)
