"""How many cores this process may use."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity where the OS reports one (``taskset``,
    container CPU sets, Slurm), else ``os.cpu_count()``; at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads in this thread (``None``: unchanged),
    then restore the previous count.

    For torch work beside another runtime: after a parallel op torch's OpenMP threads keep
    spinning for a while, and on a small machine they take the cores onnxruntime is about
    to use (yolov3-tiny at 416 on 2 cores: 38 ms per image instead of 31)."""
    if n is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    if before == n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
