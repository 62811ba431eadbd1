"""Crash safety of ``train`` (issue: every crash point is recoverable).

``kill -9`` at seeded random moments of a real ``detforge train`` process (set-up, steps,
validation, checkpoint writes), each followed by ``--resume`` (or a fresh start into the
same folder when no epoch was saved yet): after every kill ``weights/last.pt`` and
``weights/best.pt`` load, and the finished run has one metrics row per epoch, ``best.pt``
from the best epoch and no temporary files. In-process, a "death" injected into each of the
checkpoint writes (before the rename, its temporary file left half-written, as SIGKILL leaves
it) shows the same for the exact moments a random kill rarely hits.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import detforge
from detforge.models.checkpoint import load_checkpoint
from detforge.train.runs import read_metrics_csv
from detforge.train.trainer import train

from ._tiny import one_torch_thread, tiny_config, tiny_data  # noqa: F401 (autouse fixture)

# enough epochs that a resume is still running when the seeded kill comes (~0.3 s an epoch)
EPOCHS = 12
FAST = [
    "--imgsz", "64", "--batch", "4", "--workers", "0", "--mosaic", "0", "--close-mosaic", "0",
    "--warmup-min-iters", "2", "--no-plots", "--no-tensorboard", "--no-progress", "--no-check",
    "--cache", "ram", "--epochs", str(EPOCHS),
]  # fmt: skip


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    src = str(Path(detforge.__file__).resolve().parents[1])
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _argv(data: Path, run: Path) -> list[str]:
    head = [sys.executable, "-m", "detforge", "train"]
    if (run / "weights" / "last.pt").is_file():
        return [*head, "--resume", str(run)]
    return [*head, str(data), "--out", str(run), "--exist-ok", *FAST]


def _starts(run: Path) -> int:
    """How many starts reached their first step (each logs its 'steps/epoch' line)."""
    log = run / "train.log"
    return log.read_text(encoding="utf-8").count("steps/epoch") if log.is_file() else 0


def _assert_loadable(run: Path) -> dict[str, Any] | None:
    last = None
    for name in ("last.pt", "best.pt"):
        p = run / "weights" / name
        if p.exists():
            ck = load_checkpoint(p)  # raises on a torn file
            if name == "last.pt":
                last = ck
    return last


@pytest.mark.slow
def test_kill_9_at_random_moments_then_resume(tmp_path: Path) -> None:
    data = tiny_data(tmp_path / "ds")
    run = tmp_path / "run"
    rng = random.Random(1234)
    kills = 0
    for attempt in range(3):
        before = _starts(run)
        proc = subprocess.Popen(_argv(data, run), env=_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip
        if attempt == 0:  # somewhere in start-up or the first epoch
            time.sleep(rng.uniform(0.5, 4.0))
        else:  # somewhere in training, validation or the checkpoint writes
            t0 = time.monotonic()
            while _starts(run) == before and proc.poll() is None and time.monotonic() - t0 < 60:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 2.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        _, err = proc.communicate(timeout=60)
        assert "Traceback" not in err, err
        last = _assert_loadable(run)
        if last is not None and last["extra"]["finished"]:
            break
    assert kills >= 2  # the seeded delays really interrupt the runs
    while last is None or not last["extra"]["finished"]:  # resume (or start) to the end
        done = subprocess.run(_argv(data, run), env=_env(), capture_output=True, text=True,
                              timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        last = _assert_loadable(run)
    assert last is not None and last["extra"]["epochs_done"] == EPOCHS
    rows = read_metrics_csv(run / "metrics.csv")
    assert [r["epoch"] for r in rows] == list(range(1, EPOCHS + 1))
    assert [r["epoch"] for r in last["extra"]["metrics"]] == list(range(1, EPOCHS + 1))
    fit = [r["fitness"] for r in rows]
    best_epoch = fit.index(max(fit)) + 1  # the first of equal bests, as training keeps it
    assert last["extra"]["best_epoch"] == best_epoch
    best = load_checkpoint(run / "weights" / "best.pt")
    assert best["epoch"] + 1 == best_epoch
    assert not [p for p in run.rglob("*") if p.name.endswith(".tmp")]
    copy = load_checkpoint(data.parent / "backup" / "obj_last.pt")  # the .data's backup=
    assert copy["extra"]["epochs_done"] == EPOCHS


class _Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, no ``except Exception`` catches it."""


FITNESS = (0.1, 0.3, 0.2)
"""Validation fitness of epochs 1, 2, 3 in the in-process test: epoch 2 is the best."""


@pytest.mark.parametrize("die_at", [1, 2, 3, 4, 5])
def test_death_inside_a_checkpoint_write_is_recoverable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, die_at: int
) -> None:
    """Each epoch writes weights/last.pt, then (when it is the best so far) copies it to
    weights/best.pt. With FITNESS the writes are: 1 last.pt of epoch 1, 2 its best.pt copy,
    3 last.pt of epoch 2, 4 its best.pt copy, 5 last.pt of epoch 3; ``die_at`` picks the one
    that dies before its rename, its temporary file left half written."""
    from detforge.train.reporter import Reporter

    def validate(self: Reporter, batches: Any, device: Any, epoch: int) -> dict[str, float]:
        f = FITNESS[epoch]
        return {"val/mAP50": f, "val/mAP50-95": f, "fitness": f}

    monkeypatch.setattr(Reporter, "validate", validate)
    data = tiny_data(tmp_path / "ds")
    run = tmp_path / "run"
    cfg = tiny_config(data, run, epochs=3, val_every=1)
    real = os.replace
    calls = [0]

    def dying(src: Any, dst: Any) -> None:
        if Path(dst).parent.name == "weights":
            calls[0] += 1
            if calls[0] == die_at:
                p = Path(dst)
                half = Path(src).read_bytes()[: Path(src).stat().st_size // 2]
                (p.parent / f".{p.name}.dead1234.tmp").write_bytes(half)
                raise _Killed
        real(src, dst)

    monkeypatch.setattr(os, "replace", dying)
    with pytest.raises(_Killed):
        train(cfg)
    monkeypatch.setattr(os, "replace", real)
    last = _assert_loadable(run)
    assert (last is None) == (die_at == 1)
    if die_at == 2:
        assert not (run / "weights" / "best.pt").exists()  # the copy the kill cut short
    if die_at == 4:  # last.pt says epoch 2 is the best, best.pt still holds epoch 1
        assert last is not None and last["extra"]["best_epoch"] == 2
        assert load_checkpoint(run / "weights" / "best.pt")["epoch"] == 0
    if last is None:  # died before the first epoch was committed: start again
        res = train(tiny_config(data, run, epochs=3, val_every=1, exist_ok=True))
    else:
        res = train(tiny_config(data, run, epochs=3, val_every=1, resume=str(run)))
    assert res.epochs_done == 3 and [r["epoch"] for r in res.metrics] == [1, 2, 3]
    assert [r["epoch"] for r in read_metrics_csv(run / "metrics.csv")] == [1, 2, 3]
    assert [r["fitness"] for r in res.metrics] == list(FITNESS)
    assert res.best_epoch == 2 and res.best_fitness == 0.3
    best = load_checkpoint(run / "weights" / "best.pt")
    assert best["epoch"] == 1 and best["best_fitness"] == 0.3
    assert not [p for p in run.rglob("*") if p.name.endswith(".tmp")]
