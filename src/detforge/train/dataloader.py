"""Batches of :class:`~detforge.train.data.DetectionDataset` samples: :func:`collate` (the
training batch contract of docs/architecture.md), :func:`create_dataloader` (sharded,
seeded) and :func:`set_epoch`.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from detforge.data.dataset import Dataset
from detforge.errors import DetforgeError
from detforge.train.data import AugmentConfig, DetectionDataset
from detforge.utils.cpu import usable_cores


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack samples into the training batch of docs/architecture.md.

    ``img`` ``(B, 3, H, W)`` uint8, ``batch_idx`` ``(T,)`` int64, ``cls`` ``(T,)`` int64,
    ``bboxes`` ``(T, 4)`` float32 xyxy pixels, ``paths``, ``orig_shape``, ``ratio_pad`` lists.
    """
    bad = [s for s in samples if "error" in s]
    if bad:
        return bad[0]
    h, w = samples[0]["img"].shape[:2]
    img = torch.empty((len(samples), 3, h, w), dtype=torch.uint8)
    view = img.numpy()  # one copy per image, HWC -> CHW; sources may be read-only cache views
    for k, s in enumerate(samples):
        view[k] = np.asarray(s["img"]).transpose(2, 0, 1)
    counts = [len(s["cls"]) for s in samples]
    return {
        "img": img,
        "batch_idx": torch.repeat_interleave(
            torch.arange(len(samples), dtype=torch.int64), torch.tensor(counts, dtype=torch.int64)
        ),
        "cls": torch.from_numpy(np.concatenate([s["cls"] for s in samples]).astype(np.int64)),
        "bboxes": torch.from_numpy(
            np.concatenate([s["bboxes"] for s in samples]).astype(np.float32).reshape(-1, 4)
        ),
        "paths": [s["path"] for s in samples],
        "orig_shape": [s["orig_shape"] for s in samples],
        "ratio_pad": [s["ratio_pad"] for s in samples],
    }


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: distinct seeds for ``random``/``numpy`` globals, 1 thread."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    torch.set_num_threads(1)


def create_dataloader(
    ds: Dataset,
    *,
    imgsz: int = 640,
    batch_size: int = 16,
    augment: bool = False,
    hyp: AugmentConfig | None = None,
    workers: int = 0,
    shuffle: bool | None = None,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    cache: str = "auto",
    cache_dir: str | os.PathLike[str] | None = None,
    drop_last: bool = False,
    pin_memory: bool | None = None,
    exif_transpose: bool = True,
    show_progress: bool | None = None,
) -> DetectionLoader:
    """A DataLoader of :func:`collate` batches over ``ds`` (one split, any box format).

    ``shuffle`` (default: ``augment``) uses a ``DistributedSampler`` seeded by ``seed`` --
    also for one process, so ``N`` ranks with batch ``B`` see the same global batches as one
    process with ``N * B``; call :func:`set_epoch` before each epoch. Unshuffled loaders shard
    whole images across ranks without padding (for evaluation); their samples follow the
    inference rule (each image letterboxed alone into the ``imgsz`` square).
    ``workers > 0`` starts persistent worker processes; each caches nothing itself (the RAM
    cache is filled once here, before the workers fork).
    """
    shuffle = augment if shuffle is None else shuffle
    data = DetectionDataset(
        ds,
        imgsz=imgsz,
        augment=augment,
        hyp=hyp,
        cache=cache,
        cache_dir=cache_dir,
        copies=world_size,
        seed=seed,
        exif_transpose=exif_transpose,
        show_progress=show_progress,
    )
    data.errors_as_samples = True
    n = len(data)
    workers = max(0, min(workers, usable_cores()))
    common: dict[str, Any] = {
        "num_workers": workers,
        "collate_fn": collate,
        "pin_memory": torch.cuda.is_available() if pin_memory is None else pin_memory,
        "worker_init_fn": seed_worker,
        "persistent_workers": workers > 0,
        "generator": torch.Generator().manual_seed(seed + rank),
    }
    sampler: Any
    if shuffle:
        sampler = torch.utils.data.DistributedSampler(
            data, num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=drop_last
        )
    else:
        sampler = list(range(rank, n, world_size))
    return DetectionLoader(
        data, batch_size=batch_size, sampler=sampler, drop_last=drop_last, **common
    )


class DetectionLoader(torch.utils.data.DataLoader[dict[str, Any]]):
    """A DataLoader that re-raises a sample's :class:`DetforgeError` (an unreadable image) as
    itself in the main process, with its path, instead of a worker traceback."""

    def __iter__(self) -> Iterator[dict[str, Any]]:  # type: ignore[override]
        for batch in super().__iter__():
            if "error" in batch:
                raise DetforgeError(
                    batch["error"], path=batch["error_path"], line=batch["error_line"]
                )
            yield batch


def set_epoch(loader: torch.utils.data.DataLoader[Any], epoch: int) -> None:
    """Tell the loader's sampler and dataset which epoch starts (call before iterating)."""
    if isinstance(loader.sampler, torch.utils.data.DistributedSampler):
        loader.sampler.set_epoch(epoch)
    if isinstance(loader.dataset, DetectionDataset):
        loader.dataset.set_epoch(epoch)
