"""What rank 0 shows and writes about a run: progress, validation, checkpoints, metrics, plots.

* progress: a tqdm bar on a terminal; elsewhere (nohup, CI, a log file) a line every 30 s
  (``utils/progress.Ticker``): epoch, batch, losses, images/s, ETA of the epoch and the run;
* :meth:`Reporter.end_epoch`: ``metrics.csv``, then ``weights/last.pt`` (the commit point,
  carrying the metrics rows), ``weights/best.pt`` as its copy, the Darknet ``backup=``
  copies, ``results.png``, TensorBoard, the one-line epoch summary;
* :meth:`Reporter.final_plots`: the best weights on the validation split -- confusion
  matrix, PR and F1 curves (``eval/plots.py``) -- and the labels plots (``data/stats_plots``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detforge.train.runs import RunLog, RunPaths
from detforge.utils.progress import Clock, Ticker, eta_seconds, format_duration, stderr_is_tty

if TYPE_CHECKING:
    import torch

    from detforge.train.config import TrainConfig
    from detforge.train.ddp import DistInfo
    from detforge.train.optim import ModelEMA
    from detforge.train.setup import TrainingData
    from detforge.train.state import RunState


class Reporter:
    """Everything rank 0 shows or writes about a run (a no-op on other ranks).

    ``rows``: the metrics rows of the epochs already done (a resumed run's, reconciled with
    its ``last.pt``); ``backup``: ``(last, best)`` copies to keep in a ``.data``'s
    ``backup=`` folder, or ``None``.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        run: RunPaths,
        data: TrainingData,
        info: DistInfo,
        log: RunLog,
        *,
        eval_model: torch.nn.Module,
        clock: Clock,
        rows: list[dict[str, Any]] | None = None,
        backup: tuple[Path, Path] | None = None,
        loss_names: tuple[str, ...] = ("box", "cls", "dfl"),
    ) -> None:
        from detforge.train.tb import create_writer

        self.cfg, self.run, self.data, self.info, self.log = cfg, run, data, info, log
        self.eval_model, self.clock, self.backup = eval_model, clock, backup
        self.main = info.is_main
        self.loss_names = loss_names
        """The loss terms' names: ``metrics.csv`` columns ``train/<name>``."""
        self.rows: list[dict[str, Any]] = list(rows or [])
        self.tb = create_writer(run.root, enabled=self.main and cfg.tensorboard, note=log)
        tty = stderr_is_tty()
        self.show_bar = self.main and (cfg.progress if cfg.progress is not None else tty)
        self.lines = self.main and cfg.progress is None and not tty
        self.ticker = Ticker(log, clock=clock)
        self.committed = 0
        """Epochs that ``weights/last.pt`` holds."""

    # ------------------------------------------------------------------ progress
    def bar(self, loader: Iterable[Any], epoch: int, total: int) -> Any:
        if not self.show_bar:
            return loader
        import sys

        from tqdm import tqdm

        return tqdm(
            loader, total=total, desc=f"epoch {epoch + 1}/{self.cfg.epochs}", unit="batch",
            file=sys.stderr, dynamic_ncols=True, leave=False,
        )  # fmt: skip

    def step(
        self, bar: Any, losses: torch.Tensor, *, epoch: int, batch: int, total: int,
        planned: int, images: int, elapsed: float, wait: float,
    ) -> None:  # fmt: skip
        """After ``batch`` (0-based) of ``total`` of ``epoch``: the bar's text, or a progress
        line when one is due. ``images``/``elapsed``/``wait``: this epoch's so far."""
        if not (self.show_bar or self.lines):
            return
        pairs = zip(self.loss_names, losses, strict=True)
        terms = " ".join(f"{k} {float(v):.3f}" for k, v in pairs)
        ips = images * self.info.world_size / max(elapsed, 1e-9)
        text = f"{terms} | {ips:.1f} img/s | data wait {wait / max(elapsed, 1e-9):.0%}"
        if self.show_bar:
            bar.set_postfix_str(text, refresh=True)
            return

        def line() -> str:
            left = eta_seconds(batch + 1, total, elapsed)
            per_epoch = elapsed * total / (batch + 1)
            run_left = left + per_epoch * max(planned - epoch - 1, 0)
            return (
                f"epoch {epoch + 1}/{planned} batch {batch + 1}/{total}: {text} | ETA epoch "
                f"{format_duration(left)}, run {format_duration(run_left)}"
            )

        self.ticker(line)

    # ------------------------------------------------------------------ validation
    def validate(self, batches: Iterable[Any], device: torch.device, epoch: int) -> dict[str, Any]:
        """Validate the EMA (or raw) model; returns the metric columns of ``metrics.csv``."""
        from detforge.train.preview import draw_preview
        from detforge.train.validate import fitness, run_validation

        res = run_validation(
            self.eval_model, self.data.val, batches, device=device, conf=self.cfg.conf,
            iou=self.cfg.iou, max_det=self.cfg.max_det,
            preview=self.cfg.preview_images if self.cfg.plots else 0,
            progress=None if self.lines else False,
        )  # fmt: skip
        if res.preview:
            draw_preview(
                self.run.root / "preview" / f"epoch_{epoch + 1:03d}.jpg",
                [p[0] for p in res.preview],
                [p[1] for p in res.preview],
                [p[2] for p in res.preview],
                self.data.class_names,
                title=f"epoch {epoch + 1}",
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
        """The csv, ``last.pt`` (the commit point), ``best.pt`` as its copy when the epoch is
        the best, the backup copies, plots, TensorBoard and the one-line epoch summary."""
        from detforge.models.checkpoint import save_checkpoint
        from detforge.train.runs import copy_atomic, plot_results, write_metrics_csv

        self.rows.append(_plain(row))
        kwargs: dict[str, Any] = {
            "model": model, "ema": ema, "optimizer": opt, "epoch": state.epoch,
            "best_fitness": None if not math.isfinite(state.best_fitness) else state.best_fitness,
            "class_names": self.data.class_names, "config": self.cfg.to_dict(),
            "extra": {**state.extra(float(row["time_s"])), "metrics": self.rows},
        }  # fmt: skip
        # the csv first: killed between the two, a resume drops its extra row (reconcile_rows);
        # after the commit point a finished run would never get its last row back
        write_metrics_csv(self.run.metrics, self.rows)
        save_checkpoint(self.run.last, **kwargs)
        self.committed = state.epoch + 1
        if best:  # a copy: killed before it ends, --resume makes it (repair_best)
            copy_atomic(self.run.last, self.run.best)
        if self.backup is not None:
            try:
                copy_atomic(self.run.last, self.backup[0])
                if best:
                    copy_atomic(self.run.best, self.backup[1])
            except OSError as exc:  # the run's own weights are safe; only the copy failed
                self.log(f"backup= {self.backup[0].parent}: cannot write a copy "
                         f"({exc.strerror or exc}); no more copies there this run")  # fmt: skip
                self.backup = None
        if self.cfg.plots:
            plot_results(self.run.root / "results.png", self.rows)
        self.tb.add_many({k: v for k, v in row.items() if k != "epoch"}, int(row["epoch"]))
        self.tb.flush()
        val = (
            f", mAP50 {row['val/mAP50']:.3f}, mAP50-95 {row['val/mAP50-95']:.3f}"
            if "val/mAP50" in row
            else ""
        )
        self.log(
            f"epoch {row['epoch']}/{self.cfg.epochs}: "
            + " ".join(f"{k} {row[f'train/{k}']:.3f}" for k in self.loss_names)
            + f"{val}, "
            f"{row['images_per_s']:.1f} img/s, data wait {row['data_wait']:.0%}"
            + (" (best)" if best else "")
        )

    # ------------------------------------------------------------------ end of training
    def final_plots(self, batches: Iterable[Any], device: torch.device) -> list[Path]:
        """The best weights on the validation split: ``confusion_matrix.png``,
        ``pr_curves.png``, ``pr_curves_per_class.png``, ``f1_curve.png`` in the run folder
        (IoU 0.5, confidence 0.25, as ``detforge eval --plots``), and the labels plots of the
        validation split in ``labels/``. Returns the files written."""
        from detforge.data.stats import compute_stats
        from detforge.data.stats_plots import plot_stats
        from detforge.eval.plots import write_plots
        from detforge.models.checkpoint import load_checkpoint
        from detforge.train.validate import predict_batches, predictions_dataset

        if not (self.main and self.cfg.plots and self.run.best.is_file()):
            return []
        gt = self.data.val
        written = plot_stats(compute_stats(gt), gt.class_names, self.run.root / "labels")
        if gt.num_boxes == 0:
            return written
        ck = load_checkpoint(self.run.best)
        net = copy.deepcopy(self.eval_model)
        net.load_state_dict(ck["ema"] if ck.get("ema") is not None else ck["model"])
        preds, _ = predict_batches(
            net, batches, device=device, conf=self.cfg.conf, iou=self.cfg.iou,
            max_det=self.cfg.max_det, progress=None if self.lines else False,
        )  # fmt: skip
        write_plots({}, gt, predictions_dataset(gt, preds), self.run.root, iou=0.5, conf=0.25)
        names = ("confusion_matrix.png", "pr_curves.png", "pr_curves_per_class.png", "f1_curve.png")
        return [*written, *(self.run.root / n for n in names)]

    def close(self) -> None:
        self.tb.close()


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with numpy/torch numbers as Python ones (``last.pt`` stores the rows, and
    ``torch.load(weights_only=True)`` refuses numpy scalars)."""
    return {k: v if v is None or type(v) in (bool, int, str) else float(v) for k, v in row.items()}
