"""Run state that survives a restart, and the per-epoch reporting of rank 0.

* :class:`RunState` -- epoch, optimizer step (which *is* the LR schedule's state), best
  fitness, NaN rollbacks; saved in each checkpoint's ``extra`` and restored by ``--resume``;
  :meth:`RunState.snapshot` / :meth:`RunState.restore` keep the in-memory "last good
  checkpoint" a NaN rollback returns to.
* :class:`Reporter` -- progress bar, validation, checkpoints, ``metrics.csv``,
  ``results.png``, TensorBoard and the preview picture.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detforge.errors import DetforgeError

if TYPE_CHECKING:
    import torch

    from detforge.train.config import TrainConfig
    from detforge.train.ddp import DistInfo
    from detforge.train.optim import ModelEMA
    from detforge.train.setup import TrainingData


def resume_checkpoint_path(run: str | Path) -> Path:
    """``RUN`` (a run folder) or ``RUN/last.pt`` -> the ``last.pt`` to resume from."""
    p = Path(run)
    ckpt = p / "last.pt" if p.is_dir() else p
    if not ckpt.is_file():
        raise DetforgeError(
            "nothing to resume: no last.pt here (was the run interrupted before its first "
            "epoch ended?); start a new run instead",
            path=ckpt,
        )
    return ckpt


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


class Reporter:
    """Everything rank 0 shows or writes about a run (a no-op on other ranks)."""

    def __init__(
        self,
        cfg: TrainConfig,
        run_dir: Path,
        data: TrainingData,
        info: DistInfo,
        log: Callable[[str], None],
        *,
        ema_or_model: torch.nn.Module,
    ) -> None:
        from detforge.train.runs import read_metrics_csv
        from detforge.train.tb import create_writer

        self.cfg, self.run_dir, self.data, self.info, self.log = cfg, run_dir, data, info, log
        self.eval_model = ema_or_model
        self.main = info.is_main
        self.rows: list[dict[str, Any]] = []
        if self.main and cfg.resume:
            self.rows = read_metrics_csv(run_dir / "metrics.csv")
        self.tb = create_writer(run_dir, enabled=self.main and cfg.tensorboard, note=log)
        self.show_bar = self.main and (cfg.progress if cfg.progress is not None else _tty())

    # ------------------------------------------------------------------ progress bar
    def bar(self, loader: Iterable[Any], epoch: int, total: int) -> Any:
        if not self.show_bar:
            return loader
        import sys

        from tqdm import tqdm

        return tqdm(
            loader, total=total, desc=f"epoch {epoch + 1}/{self.cfg.epochs}", unit="batch",
            file=sys.stderr, dynamic_ncols=True, leave=False,
        )  # fmt: skip

    def postfix(self, bar: Any, losses: torch.Tensor, ips: float, wait: float) -> None:
        if self.show_bar:
            box, cls_, dfl = (float(v) for v in losses)
            bar.set_postfix_str(
                f"box {box:.3f} cls {cls_:.3f} dfl {dfl:.3f} | {ips:.1f} img/s | "
                f"data wait {wait:.0%}",
                refresh=True,
            )

    # ------------------------------------------------------------------ validation
    def validate(self, batches: Iterable[Any], device: torch.device, epoch: int) -> dict[str, Any]:
        """Validate the EMA (or raw) model; returns the metric columns of ``metrics.csv``."""
        from detforge.train.runs import draw_preview
        from detforge.train.validate import fitness, run_validation

        res = run_validation(
            self.eval_model, self.data.val, batches, device=device, conf=self.cfg.conf,
            iou=self.cfg.iou, max_det=self.cfg.max_det,
            preview=self.cfg.preview_images if self.cfg.plots else 0, progress=False,
        )  # fmt: skip
        if res.preview:
            draw_preview(
                self.run_dir / "preview" / f"epoch_{epoch + 1:03d}.jpg",
                [p[0] for p in res.preview],
                [p[1] for p in res.preview],
                [p[2] for p in res.preview],
                self.data.class_names,
            )
        m, m50 = max(res.map50_95, 0.0), max(res.map50, 0.0)
        return {"val/mAP50": m50, "val/mAP50-95": m, "fitness": fitness(m50, m)}

    # ------------------------------------------------------------------ end of epoch
    def end_epoch(
        self,
        row: dict[str, Any],
        state: RunState,
        model: torch.nn.Module,
        opt: torch.optim.Optimizer,
        ema: ModelEMA | None,
        *,
        best: bool,
    ) -> None:
        """Checkpoints, csv, plots, TensorBoard and the one-line epoch summary."""
        from detforge.models.checkpoint import save_checkpoint
        from detforge.train.runs import plot_results, write_metrics_csv

        kwargs: dict[str, Any] = {
            "model": model, "ema": ema, "optimizer": opt, "epoch": state.epoch,
            "best_fitness": None if not math.isfinite(state.best_fitness) else state.best_fitness,
            "class_names": self.data.class_names, "config": self.cfg.to_dict(),
            "extra": state.extra(float(row["time_s"])),
        }  # fmt: skip
        save_checkpoint(self.run_dir / "last.pt", **kwargs)
        if best:
            save_checkpoint(self.run_dir / "best.pt", **kwargs)
        self.rows.append(row)
        write_metrics_csv(self.run_dir / "metrics.csv", self.rows)
        if self.cfg.plots:
            plot_results(self.run_dir / "results.png", self.rows)
        self.tb.add_many({k: v for k, v in row.items() if k != "epoch"}, int(row["epoch"]))
        self.tb.flush()
        val = (
            f", mAP50 {row['val/mAP50']:.3f}, mAP50-95 {row['val/mAP50-95']:.3f}"
            if "val/mAP50" in row
            else ""
        )
        self.log(
            f"epoch {row['epoch']}/{self.cfg.epochs}: box {row['train/box']:.3f} "
            f"cls {row['train/cls']:.3f} dfl {row['train/dfl']:.3f}{val}, "
            f"{row['images_per_s']:.1f} img/s, data wait {row['data_wait']:.0%}"
            + (" (best)" if best else "")
        )

    def close(self) -> None:
        self.tb.close()


def _tty() -> bool:
    import sys

    return sys.stderr.isatty()
