"""Tiny synthetic datasets and configs shared by the trainer tests (CPU, seconds per run)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from detforge.data.synthetic import generate_shapes_dataset
from detforge.train.config import TrainConfig


def tiny_data(root: Path, *, num_images: int = 10, seed: int = 0) -> Path:
    """A 64x64 shapes dataset (train/valid only); returns its ``obj.data``."""
    return generate_shapes_dataset(
        root, num_images=num_images, imgsz=(64, 64), seed=seed, splits=(0.8, 0.2, 0.0),
        max_objects=2, negatives=0.0,
    )  # fmt: skip


def tiny_config(data: Path, out: Path, **kw: Any) -> TrainConfig:
    """A config that runs an epoch of ``tiny_data`` in about a second."""
    base: dict[str, Any] = dict(
        data=str(data), out=str(out), imgsz=64, batch=4, epochs=2, workers=0, cache="ram",
        mosaic=0.0, close_mosaic=0, warmup_min_iters=2, warmup_epochs=1.0, val_every=100,
        plots=False, tensorboard=False, check=False, progress=False, nan_skip_limit=2,
        nan_rollbacks=1,
    )  # fmt: skip
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Run the module's training with one intra-op thread: on a shared 2-core machine two
    spinning OpenMP threads per process are many times slower than one; restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
