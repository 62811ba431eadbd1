"""The trainer's view of the data pipeline: a training loader, a validation loader, and one
call per epoch that sets the sampler/augmentation epoch and switches mosaic off near the end.

The loaders themselves are ``detforge.train.dataloader.create_dataloader``; this module only maps
:class:`~detforge.train.config.TrainConfig` onto it, so tests can hand the trainer any object
with the same three members.
"""

from __future__ import annotations

from collections.abc import Iterable, Sized
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from detforge.train.config import TrainConfig
    from detforge.train.ddp import DistInfo
    from detforge.train.setup import TrainingData


class SizedBatches(Sized, Iterable[dict[str, Any]], Protocol):
    """Anything iterable over training-batch dicts with a length (a ``DataLoader``)."""


@dataclass
class Loaders:
    """``train``: augmented, shuffled, sharded; ``val``: the validation images letterboxed by
    the inference rule (rank 0 iterates all of them)."""

    train: SizedBatches
    val: Iterable[dict[str, Any]]

    def set_epoch(self, epoch: int, *, mosaic: bool) -> None:
        """Seed this epoch's shuffling/augmentation and switch mosaic on or off."""
        from detforge.train.data import DetectionDataset
        from detforge.train.dataloader import set_epoch

        loader: Any = self.train
        if hasattr(loader, "sampler"):
            set_epoch(loader, epoch)
        ds = getattr(loader, "dataset", None)
        if isinstance(ds, DetectionDataset):
            ds.set_mosaic(mosaic)


def create_loaders(cfg: TrainConfig, data: TrainingData, *, batch: int, info: DistInfo) -> Loaders:
    """The training and validation loaders for ``cfg`` at per-process ``batch``."""
    from detforge.train.data import AugmentConfig
    from detforge.train.dataloader import create_dataloader

    hyp = AugmentConfig(
        hsv_h=cfg.hsv_h, hsv_s=cfg.hsv_s, hsv_v=cfg.hsv_v, degrees=cfg.degrees,
        translate=cfg.translate, scale=cfg.scale, flipud=cfg.flipud, fliplr=cfg.fliplr,
        mosaic=cfg.mosaic,
    )  # fmt: skip
    show = cfg.progress if info.is_main else False
    train = create_dataloader(
        data.train, imgsz=cfg.imgsz, batch_size=batch, augment=True, hyp=hyp,
        workers=cfg.workers, seed=cfg.seed, rank=info.rank, world_size=info.world_size,
        cache=cfg.cache, drop_last=data.train.num_images > 2 * batch * info.world_size,
        show_progress=show,
    )  # fmt: skip
    if not info.is_main:  # only rank 0 validates
        return Loaders(train=train, val=[])
    val = create_dataloader(
        data.val, imgsz=cfg.imgsz, batch_size=batch * 2, augment=False,
        workers=min(cfg.workers, 2), seed=cfg.seed, cache=cfg.cache, show_progress=show,
    )  # fmt: skip
    return Loaders(train=train, val=val)
