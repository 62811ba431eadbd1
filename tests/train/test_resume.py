"""Resume: an interrupted run continued with --resume ends exactly where an uninterrupted run
ends; a finished run says so; --epochs extends it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from detforge.cli.main import main
from detforge.models.checkpoint import load_checkpoint
from detforge.train.runs import read_metrics_csv
from detforge.train.trainer import train

from ._tiny import one_torch_thread, tiny_config, tiny_data  # noqa: F401 (autouse fixture)


@pytest.mark.slow
def test_resume_equals_uninterrupted_and_finished_run_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tiny_data(tmp_path / "ds")
    full = train(tiny_config(data, tmp_path / "full", epochs=3))
    assert full.epochs_done == 3

    def interrupt(step: int, loss: torch.Tensor) -> torch.Tensor:
        if step == 4:  # first step of epoch 3 (2 steps per epoch)
            raise KeyboardInterrupt
        return loss

    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(data, cut, epochs=3), loss_hook=interrupt)
    assert load_checkpoint(cut / "weights" / "last.pt")["extra"]["epochs_done"] == 2

    assert main(["train", "--resume", str(cut)]) == 0
    a = torch.load(tmp_path / "full" / "weights" / "last.pt", weights_only=True)
    b = torch.load(cut / "weights" / "last.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 2 and a["extra"]["step"] == b["extra"]["step"] == 6
    for part in ("model", "ema"):
        for k, v in a[part].items():
            torch.testing.assert_close(b[part][k], v, rtol=1e-5, atol=1e-6, msg=f"{part}.{k}")
    mom_a = [s["momentum_buffer"] for s in a["optimizer"]["state"].values()]
    mom_b = [s["momentum_buffer"] for s in b["optimizer"]["state"].values()]
    for x, y in zip(mom_a, mom_b, strict=True):
        torch.testing.assert_close(y, x, rtol=1e-5, atol=1e-6)
    assert [r["epoch"] for r in read_metrics_csv(cut / "metrics.csv")] == [1, 2, 3]
    assert a["ema_updates"] == b["ema_updates"] == 6

    capsys.readouterr()
    assert main(["train", "--resume", str(cut)]) == 2
    err = capsys.readouterr().err
    assert "already finished" in err and "--epochs" in err and len(err.strip().splitlines()) == 1

    assert main(["train", "--resume", str(cut), "--epochs", "4"]) == 0
    c = load_checkpoint(cut / "weights" / "last.pt")
    assert c["extra"]["epochs_done"] == 4 and c["extra"]["step"] == 8
    assert [r["epoch"] for r in read_metrics_csv(cut / "metrics.csv")] == [1, 2, 3, 4]
