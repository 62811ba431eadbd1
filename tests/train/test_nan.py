"""NaN/inf losses: skipped and logged; repeated ones roll back with a lower LR; persistent
ones stop training with a diagnosis."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

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


def test_nan_steps_are_skipped_and_their_images_logged(tmp_path: Path) -> None:
    data = tiny_data(tmp_path / "ds")
    res = train(tiny_config(data, tmp_path / "run", epochs=2), loss_hook=_nan_on({2, 4}))
    assert res.epochs_done == 2 and res.stop_reason == "finished"
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
