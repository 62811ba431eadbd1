"""--time-budget: the LR schedule is fitted to the epochs that fit, training ends by plan (not
cut mid-epoch), and the log reports the plan's real moves only. A fake clock makes every
epoch take the same time."""

from __future__ import annotations

from pathlib import Path

from detforge.train.trainer import train

from ._tiny import one_torch_thread, tiny_config, tiny_data  # noqa: F401 (autouse fixture)


def test_budget_fits_the_schedule_and_stops_by_plan(tmp_path: Path) -> None:
    clock = {"t": 0.0}

    def tick() -> float:  # one second per reading: every epoch costs the same
        clock["t"] += 1.0
        return clock["t"]

    data = tiny_data(tmp_path / "ds")
    cfg = tiny_config(data, tmp_path / "run", epochs=50, time_budget=120.0)
    res = train(cfg, clock=tick)
    assert 3 <= res.epochs_done < 50
    assert res.stop_reason == "time budget of 120 s used"  # by plan, after a whole epoch
    assert clock["t"] <= 120.0 + 20.0  # within about one epoch of the budget
    # The epoch the budget made the last one was validated (val_every=100 never came), so
    # the run has a best checkpoint and its last metrics row has validation numbers.
    assert res.best_weights.is_file() and "val/mAP50-95" in res.metrics[-1]
    log = (res.run_dir / "train.log").read_text()
    moves = [line for line in log.splitlines() if "epochs fit" in line]
    assert moves and len(moves) <= 2, moves
    assert f"--time-budget: {res.epochs_done} of 50 epochs fit" in moves[-1]
