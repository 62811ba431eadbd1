"""DDP loss normalisation: N ranks of B images give one process's gradient on N x B images."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from detforge.models.yolo import create_model
from detforge.train.loss import DetectionLoss

SIZE = 64


def _batch() -> dict[str, torch.Tensor]:
    """Four images; image 2 has no objects, image 0 two (xyxy pixels)."""
    g = torch.Generator().manual_seed(1)
    return {
        "img": torch.rand(4, 3, SIZE, SIZE, generator=g),
        "batch_idx": torch.tensor([0, 0, 1, 3]),
        "cls": torch.tensor([0, 1, 1, 0]),
        "bboxes": torch.tensor(
            [
                [4.0, 6.0, 30.0, 40.0],
                [30.0, 30.0, 60.0, 50.0],
                [10.0, 10.0, 50.0, 58.0],
                [20.0, 2.0, 44.0, 20.0],
            ]
        ),
    }


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_model("n", num_classes=2)
    model.train()
    for m in model.modules():  # batch statistics would differ per rank on CPU (no SyncBN)
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
    return model


def _grads(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def _part(batch: dict[str, torch.Tensor], rank: int) -> dict[str, torch.Tensor]:
    keep = (batch["batch_idx"] // 2) == rank
    return {
        "img": batch["img"][2 * rank : 2 * rank + 2],
        "batch_idx": batch["batch_idx"][keep] - 2 * rank,
        "cls": batch["cls"][keep],
        "bboxes": batch["bboxes"][keep],
    }


def _rank(rank: int, port: int, out: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        model = _model()
        part = _part(_batch(), rank)
        loss, items = DetectionLoss(model, world_size=2)(model(part["img"]), part)
        loss.backward()
        grads = _grads(model)
        dist.all_reduce(grads)  # what DDP does: the mean of the ranks' gradients
        dist.all_reduce(items)
        torch.save({"grads": grads / 2, "items": items / 2}, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_two_ranks_give_the_one_process_gradient(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    model = _model()
    batch = _batch()
    loss, items = DetectionLoss(model)(model(batch["img"]), batch)
    loss.backward()
    one = _grads(model)

    mp.spawn(_rank, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    ddp = torch.load(tmp_path / "rank0.pt", weights_only=True)
    torch.testing.assert_close(ddp["items"], items, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(ddp["grads"], one, rtol=1e-4, atol=1e-6)
    # Without the global normaliser, each rank would divide by its own target-score sum.
    assert not torch.allclose(one, torch.zeros_like(one))
