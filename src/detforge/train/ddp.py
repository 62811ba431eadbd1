"""Multi-process training with ``torchrun``: process group, rank facts, small collectives.

``torchrun --nproc_per_node N -m detforge train DATA ...`` starts N copies of the CLI with
``RANK``/``LOCAL_RANK``/``WORLD_SIZE`` set. The trainer then

* joins a process group (NCCL when every rank has a GPU, gloo on CPU),
* wraps the model in ``DistributedDataParallel`` (SyncBatchNorm on CUDA, where it exists),
* shards the training images with a ``DistributedSampler`` (each rank gets ``1/N``),
* multiplies the loss by ``N``: the loss is a sum over a batch and DDP *averages* gradients,
  so this makes one step of N ranks x B images equal one step of one process on N x B images,
* logs, validates and writes checkpoints on rank 0 only, broadcasting decisions (early stop,
  NaN rollback) so every rank takes the same path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: ``rank`` of ``world_size``, GPU ``local_rank`` on its node."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def dist_info_from_env(env: dict[str, str] | None = None) -> DistInfo:
    """Read ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` (as set by ``torchrun``)."""
    e = os.environ if env is None else env
    world = int(e.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return DistInfo()
    return DistInfo(
        rank=int(e.get("RANK", "0")),
        local_rank=int(e.get("LOCAL_RANK", "0")),
        world_size=world,
    )


def init_process_group(info: DistInfo, device: torch.device) -> None:
    """Join the default process group (NCCL on CUDA devices, gloo otherwise). No-op for 1."""
    if not info.distributed:
        return
    import datetime

    import torch.distributed as dist

    if dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(
        backend=backend,
        rank=info.rank,
        world_size=info.world_size,
        timeout=datetime.timedelta(minutes=30),
    )


def destroy_process_group(info: DistInfo) -> None:
    if not info.distributed:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.distributed:
        import torch.distributed as dist

        dist.barrier()


def broadcast_object(info: DistInfo, obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (a picklable value)."""
    if not info.distributed:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_sum(info: DistInfo, t: torch.Tensor) -> torch.Tensor:
    """Sum of ``t`` over ranks (in place on a copy; ``t`` itself is unchanged)."""
    if not info.distributed:
        return t
    import torch.distributed as dist

    out = t.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def wrap_model(model: torch.nn.Module, info: DistInfo, device: torch.device) -> torch.nn.Module:
    """``DistributedDataParallel(model)`` for several ranks (SyncBatchNorm on CUDA)."""
    if not info.distributed:
        return model
    import torch
    from torch.nn.parallel import DistributedDataParallel

    if device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # type: ignore[no-untyped-call]
        return DistributedDataParallel(model, device_ids=[device.index])
    return DistributedDataParallel(model)
