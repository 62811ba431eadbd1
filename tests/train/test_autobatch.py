"""--batch auto: the memory fit, and the CPU default."""

from __future__ import annotations

import torch
from torch import nn

from detforge.train.autobatch import CPU_DEFAULT_BATCH, auto_batch, fit_batch


def test_fit_batch_extrapolates_linearly() -> None:
    # 100 MB fixed + 10 MB per image; 1000 MB budget -> (1000 - 100) / 10 = 90 images
    mb = 2**20
    pts = [(b, float((100 + 10 * b) * mb)) for b in (1, 2, 4, 8)]
    assert fit_batch(pts, budget=1000.0 * mb) == 90
    assert fit_batch(pts, budget=1000.0 * mb, max_batch=64) == 64
    assert fit_batch([(4, 40.0 * mb)], budget=100.0 * mb) == 10
    assert fit_batch(pts, budget=50.0 * mb) == 1  # never below one image


def test_cpu_picks_the_default_and_says_so() -> None:
    batch, reason = auto_batch(nn.Conv2d(3, 3, 1), imgsz=64, device=torch.device("cpu"))
    assert batch == CPU_DEFAULT_BATCH and "CPU" in reason
