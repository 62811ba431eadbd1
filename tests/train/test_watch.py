"""Training you can watch anywhere, and find afterwards: progress lines off a terminal
(fake clock), Ctrl-C's message with the exact --resume command (also in train.log), the run
folder's end-of-training plots, and the copies a .data's backup= asks for."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from detforge.cli.main import main
from detforge.models.checkpoint import load_checkpoint
from detforge.train import trainer
from detforge.train.session import backup_paths
from detforge.train.trainer import train

from ._tiny import one_torch_thread, tiny_config, tiny_data  # noqa: F401 (autouse fixture)

LINE = re.compile(
    r"^epoch [12]/2 batch [12]/2: box \d+\.\d{3} cls \d+\.\d{3} dfl \d+\.\d{3} \| \d+\.\d "
    r"img/s \| data wait \d+% \| ETA epoch \S+, run \S+$"
)


def test_progress_lines_at_a_steady_interval_off_a_terminal(tmp_path: Path) -> None:
    t = [0.0]

    def clock() -> float:  # 10 s per reading: a line is due about every third reading
        t[0] += 10.0
        return t[0]

    notes: list[str] = []
    cfg = tiny_config(tiny_data(tmp_path / "ds"), tmp_path / "run", progress=None)
    train(cfg, clock=clock, note=notes.append)  # pytest's stderr is no terminal
    lines = [n for n in notes if n.startswith("epoch ") and " batch " in n]
    assert lines and all(LINE.match(n) for n in lines), lines
    log = (tmp_path / "run" / "train.log").read_text()
    assert all(n in log for n in lines)  # nohup users find them in train.log too

    quiet: list[str] = []
    cfg = tiny_config(tiny_data(tmp_path / "ds"), tmp_path / "run2", progress=False)
    train(cfg, clock=clock, note=quiet.append)  # --no-progress: no lines
    assert quiet and not [n for n in quiet if n.startswith("epoch ") and " batch " in n]


def test_ctrl_c_says_where_it_stopped_and_how_to_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tiny_data(tmp_path / "ds")
    run = tmp_path / "my run"
    calls = [0]
    real = trainer.train_step

    def interrupted(*a: Any, **kw: Any) -> Any:
        calls[0] += 1
        if calls[0] == 4:  # epoch 2, batch 2 (2 batches per epoch)
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(trainer, "train_step", interrupted)
    argv = ["train", str(data), "--out", str(run), "--epochs", "3", "--imgsz", "64",
            "--batch", "4", "--workers", "0", "--mosaic", "0", "--close-mosaic", "0",
            "--no-plots", "--no-tensorboard", "--no-progress", "--no-check",
            "--warmup-min-iters", "2"]  # fmt: skip
    assert main(argv) == 130
    out, err = capsys.readouterr()
    assert "interrupted" in err
    msg = next(ln for ln in out.splitlines() if ln.startswith("interrupted"))
    assert "in epoch 2/3 at batch 2/2" in msg and "holds epoch 1 of 3" in msg
    cmd = msg.split("Continue with: ")[1]
    assert cmd == f"detforge train --resume '{run}'"
    assert msg in (run / "train.log").read_text()

    monkeypatch.setattr(trainer, "train_step", real)
    assert main(shlex.split(cmd)[1:]) == 0  # the printed command, as a shell would split it
    assert load_checkpoint(run / "weights" / "last.pt")["extra"]["epochs_done"] == 3


def test_interrupt_before_any_epoch_says_nothing_to_resume(tmp_path: Path) -> None:
    notes: list[str] = []

    def hook(step: int, loss: Any) -> Any:
        raise KeyboardInterrupt

    cfg = tiny_config(tiny_data(tmp_path / "ds"), tmp_path / "run")
    with pytest.raises(KeyboardInterrupt):
        train(cfg, loss_hook=hook, note=notes.append)
    assert "in epoch 1/2 at batch 1/2" in notes[-1] and "nothing is saved" in notes[-1]


def test_run_folder_has_weights_metrics_and_end_of_training_plots(tmp_path: Path) -> None:
    data = tiny_data(tmp_path / "ds")
    res = train(tiny_config(data, tmp_path / "run", epochs=1, plots=True))
    run = res.run_dir
    assert res.best_weights == run / "weights" / "best.pt"
    for name in ("weights/best.pt", "weights/last.pt", "metrics.csv", "results.png",
                 "confusion_matrix.png", "pr_curves.png", "f1_curve.png",
                 "labels/class_histogram.png", "labels/box_sizes.png",
                 "preview/epoch_001.jpg"):  # fmt: skip
        assert (run / name).is_file(), name
    # the .data's backup= (relative to the .data, as its other paths) gets detforge's copies
    assert load_checkpoint(data.parent / "backup" / "obj_best.pt")["epoch"] == 0


def test_backup_never_overwrites_a_file_detforge_did_not_write(tmp_path: Path) -> None:
    data = tiny_data(tmp_path / "ds")
    notes: list[str] = []
    cfg = tiny_config(data, tmp_path / "run")
    pair = backup_paths(cfg, notes.append)
    assert pair == (data.parent / "backup" / "obj_last.pt", data.parent / "backup" / "obj_best.pt")
    foreign = data.parent / "backup" / "obj_best.pt"
    foreign.write_bytes(b"a user's file")
    assert backup_paths(cfg, notes.append) is None
    assert "not a detforge checkpoint" in notes[-1]
    train(cfg)
    assert foreign.read_bytes() == b"a user's file"
    assert not (data.parent / "backup" / "obj_last.pt").exists()


def test_a_failing_backup_copy_is_a_note_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from detforge.train import runs

    real = runs.copy_atomic

    def full_disk(src: Path, dst: Path) -> None:
        if dst.parent.name == "backup":
            raise OSError(28, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(runs, "copy_atomic", full_disk)
    notes: list[str] = []
    res = train(tiny_config(tiny_data(tmp_path / "ds"), tmp_path / "run"), note=notes.append)
    assert res.epochs_done == 2 and (res.run_dir / "weights" / "last.pt").is_file()
    failed = [n for n in notes if "cannot write a copy" in n]
    assert len(failed) == 1 and "No space left on device" in failed[0]
