"""The LR range test on a problem whose stable range is known by hand."""

from __future__ import annotations

import math
from pathlib import Path

from detforge.train.lr_find import lr_range_test, plot_lr_find, suggest_lr


def test_range_test_on_a_quadratic_recommends_a_stable_lr(tmp_path: Path) -> None:
    # Gradient descent on f(x) = x^2 / 2 from x = 1: x <- (1 - lr) x, stable for lr < 2.
    x = [1.0]

    def step(lr: float) -> float:
        loss = 0.5 * x[0] ** 2 + 0.01
        x[0] = (1.0 - lr) * x[0]
        return loss

    res = lr_range_test(step, start=1e-4, end=100.0, steps=80)
    assert res.stopped_early  # it diverged once lr > 2
    assert max(res.lrs) < 100.0
    assert math.isfinite(res.suggestion) and 1e-4 < res.suggestion < 2.0
    plot_lr_find(tmp_path / "lr.png", res)
    assert (tmp_path / "lr.png").stat().st_size > 1000


def test_suggest_lr_needs_enough_points() -> None:
    assert all(math.isnan(v) for v in suggest_lr([1e-3, 1e-2], [1.0, 0.5]))
