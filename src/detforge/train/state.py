"""Run state that survives a restart.

:class:`RunState` -- epoch, optimizer step (which *is* the LR schedule's state), best
fitness, NaN rollbacks; saved in each checkpoint's ``extra`` and restored by ``--resume``;
:meth:`RunState.snapshot` / :meth:`RunState.restore` keep the in-memory "last good
checkpoint" a NaN rollback returns to.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from detforge.train.optim import ModelEMA


@dataclass
class RunState:
    """Counters of a run; ``epoch`` is the last completed epoch (``-1`` before the first)."""

    epoch: int = -1
    step: int = 0
    best_fitness: float = -math.inf
    best_epoch: int = 0
    rollbacks: int = 0
    finished: bool = False
    time_before: float = 0.0

    def extra(self, time_s: float) -> dict[str, Any]:
        """Counters for the checkpoint's ``extra``; ``time_s``: training seconds so far."""
        return {
            "epochs_done": self.epoch + 1,
            "step": self.step,
            "best_epoch": self.best_epoch,
            "rollbacks": self.rollbacks,
            "finished": self.finished,
            "time_s": time_s,
        }

    @classmethod
    def from_checkpoint(
        cls,
        ckpt: dict[str, Any],
        model: torch.nn.Module,
        opt: torch.optim.Optimizer,
        ema: ModelEMA | None,
    ) -> RunState:
        """Restore model, optimizer and EMA from ``ckpt`` and return its counters."""
        model.load_state_dict(ckpt["model"])
        if ckpt.get("optimizer") is not None:
            opt.load_state_dict(ckpt["optimizer"])
        if ema is not None and ckpt.get("ema") is not None:
            ema.module.load_state_dict(ckpt["ema"])
            ema.updates = int(ckpt.get("ema_updates") or 0)
        extra = ckpt.get("extra") or {}
        best = ckpt.get("best_fitness")
        return cls(
            epoch=int(ckpt["epoch"]),
            step=int(extra.get("step", 0)),
            best_fitness=-math.inf if best is None else float(best),
            best_epoch=int(extra.get("best_epoch", 0)),
            rollbacks=int(extra.get("rollbacks", 0)),
            time_before=float(extra.get("time_s", 0.0)),
        )

    def snapshot(
        self, model: torch.nn.Module, opt: torch.optim.Optimizer, ema: ModelEMA | None
    ) -> dict[str, Any]:
        """Deep copies of model, optimizer and EMA state (the NaN rollback target)."""
        return {
            "model": copy.deepcopy(model.state_dict()),
            "optimizer": copy.deepcopy(opt.state_dict()),
            "ema": None if ema is None else copy.deepcopy(ema.state_dict()),
        }

    def restore(
        self,
        snap: dict[str, Any],
        model: torch.nn.Module,
        opt: torch.optim.Optimizer,
        ema: ModelEMA | None,
    ) -> None:
        model.load_state_dict(snap["model"])
        opt.load_state_dict(snap["optimizer"])
        if ema is not None and snap["ema"] is not None:
            ema.load_state_dict(snap["ema"])
