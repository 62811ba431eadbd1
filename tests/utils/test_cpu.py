"""usable_cores: the CPU affinity first, os.cpu_count() second, never 0."""

from __future__ import annotations

import os

import pytest

from detforge.utils import cpu


def test_usable_cores_follows_the_affinity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    assert cpu.usable_cores() == 3
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert cpu.usable_cores() == 1


def test_torch_threads_sets_and_restores() -> None:
    import torch

    before = torch.get_num_threads()
    with cpu.torch_threads(None):
        assert torch.get_num_threads() == before
    target = 1 if before != 1 else 2
    with pytest.raises(RuntimeError), cpu.torch_threads(target):
        assert torch.get_num_threads() == target
        raise RuntimeError("restored on errors too")
    assert torch.get_num_threads() == before
