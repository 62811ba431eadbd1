"""The run folder: its name and layout, ``metrics.csv``, ``results.png``, ``train.log``,
the Darknet ``backup=`` copies, and what a crash may leave behind.

Layout of a run folder (``runs/train/<name>``; what Ultralytics users look for, in the same
places)::

    runs/train/obj-2/
        config.yaml            resolved options
        weights/last.pt        checkpoint after the last completed epoch (the commit point)
        weights/best.pt        checkpoint of the best validation fitness so far
        metrics.csv            one row per epoch: losses, LR, speed, validation metrics
        results.png            losses and metrics against epochs
        confusion_matrix.png, pr_curves.png, pr_curves_per_class.png, f1_curve.png
                               the best weights on the validation split (end of training)
        labels/*.png           what the validation labels hold (classes, box sizes, ...)
        preview/epoch_003.jpg  ground truth (left) next to predictions (right)
        events.*               TensorBoard scalars
        train.log              notes, progress lines, NaN reports, where an interrupt stopped

``metrics.csv`` keeps its name (not Ultralytics' ``results.csv``): its columns are detforge's
(``train/box``, ``val/mAP50`` ...), and a script written for Ultralytics' columns should fail
loudly rather than read the wrong ones.

Crash safety: every file is written to a temporary name and renamed (``utils/io.py``).
``last.pt`` -- which also carries the metrics rows -- is the commit point of an epoch, written
right after ``metrics.csv`` (so a kill between the two leaves the csv one row ahead, which a
resume drops, never a finished run one row short), and
``best.pt`` is only ever a copy of a committed ``last.pt``, so ``kill -9`` at any moment
leaves both loadable, and ``--resume`` finds everything it needs in ``last.pt``: it rebuilds
``metrics.csv`` (:func:`reconcile_rows`), redoes the ``best.pt`` copy a kill cut short
(:func:`repair_best`), and removes the temporary files a killed run left
(:func:`remove_stale_tmp`).
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detforge.errors import DetforgeError
from detforge.utils.io import atomic_open, atomic_write_text
from detforge.utils.outputs import RUNS, results_dir, run_name
from detforge.utils.outputs import next_run_dir as next_run_dir  # the one numbering rule

DEFAULT_ROOT = RUNS / "train"
"""Where runs go by default: ``runs/train/<dataset name>`` (numbered when it exists)."""


@dataclass(frozen=True)
class RunPaths:
    """The files of one run folder ``root``."""

    root: Path

    @property
    def weights(self) -> Path:
        return self.root / "weights"

    @property
    def last(self) -> Path:
        return self.weights / "last.pt"

    @property
    def best(self) -> Path:
        return self.weights / "best.pt"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.csv"

    @property
    def log(self) -> Path:
        return self.root / "train.log"

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"


def default_run_name(data: str) -> str:
    """``runs/train/<name>``: the dataset's name (``obj`` for ``obj.data``, a folder's name);
    the rule every command's output folder follows (:mod:`detforge.utils.outputs`)."""
    return run_name(data, default="train")


def new_run_dir(out: str, data: str, *, exist_ok: bool = False) -> Path:
    """The folder of a new run: ``out`` (or ``runs/train/<dataset name>``), numbered
    ``-2``, ``-3`` ... when it exists, unless ``exist_ok`` (then reused as it is); a file
    where it or a folder above it must go is an error naming that file
    (:func:`detforge.utils.outputs.results_dir`, the rule of every command). ``out`` ``""``
    is the config's "not set"."""
    return results_dir("train", out=out or None, exist_ok=exist_ok, name=default_run_name(data))


def remove_empty_run(root: Path) -> None:
    """Remove the folders a new run made under ``root`` (``weights/``, ``preview/``) and
    ``root`` itself while they are empty: a run refused during set-up leaves nothing behind.
    Files are never removed (a ``train.log`` written before the failure keeps the folder)."""
    for folder in (root / "weights", root / "preview", root):
        with contextlib.suppress(OSError):  # not empty, or not there
            folder.rmdir()


def resume_checkpoint_path(run: str | Path) -> Path:
    """``RUN`` (a run folder) or a checkpoint in it -> the ``last.pt`` to resume from."""
    p = Path(run)
    if p.is_dir():
        ckpt = RunPaths(p).last
        if not ckpt.is_file() and (p / "last.pt").is_file():  # runs before weights/
            ckpt = p / "last.pt"
    else:
        ckpt = p
    if not ckpt.is_file():
        raise DetforgeError(
            "nothing to resume: no weights/last.pt here (was the run interrupted before its "
            "first epoch ended?); start a new run instead",
            path=ckpt,
        )
    if not p.is_dir() and not RunPaths(run_dir_of(ckpt)).config.is_file():
        raise DetforgeError(
            "not a file of a detforge run (no config.yaml in its run folder): --resume takes "
            "a run folder such as runs/train/obj, or its weights/last.pt; to start a new run "
            "from a checkpoint, use --weights",
            path=p,
        )
    return ckpt


def run_dir_of(ckpt: Path) -> Path:
    """The run folder a checkpoint belongs to (``RUN/weights/last.pt`` -> ``RUN``)."""
    return ckpt.parent.parent if ckpt.parent.name == "weights" else ckpt.parent


def remove_stale_tmp(root: Path) -> list[Path]:
    """Delete the temporary files a killed run left in ``root``, ``weights/`` and ``preview/``.

    Only detforge's own temporary names (``.<name>.<random>.tmp`` from ``utils.io``) are
    touched. Returns what was removed.
    """
    gone = []
    for folder in (root, root / "weights", root / "preview"):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if p.name.startswith(".") and p.name.endswith(".tmp") and p.is_file():
                with contextlib.suppress(OSError):
                    p.unlink()
                    gone.append(p)
    return gone


def repair_best(run: RunPaths, ckpt: dict[str, Any]) -> bool:
    """Make ``best.pt`` the copy of ``last.pt`` (``ckpt``) when the last committed epoch was
    the best and a kill stopped the copy; returns whether it had to."""
    from detforge.models.checkpoint import load_checkpoint

    extra = ckpt.get("extra") or {}
    done = int(extra.get("epochs_done", int(ckpt["epoch"]) + 1))
    if int(extra.get("best_epoch", 0)) != done or done <= 0:
        return False
    if run.best.is_file():
        try:
            if int(load_checkpoint(run.best)["epoch"]) == int(ckpt["epoch"]):
                return False
        except DetforgeError:
            pass
    copy_atomic(run.last, run.best)
    return True


def copy_atomic(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` through a temporary file and a rename (synced to disk)."""
    with atomic_open(dst, "wb", fsync=True) as f, open(src, "rb") as fin:
        shutil.copyfileobj(fin, f, 1 << 20)


class RunLog:
    """Prints notes (rank 0) and appends them, progress lines and NaN reports to ``train.log``."""

    def __init__(self, path: Path, say: Callable[[str], None], *, enabled: bool) -> None:
        self.path, self.say, self.enabled = path, say, enabled

    def __call__(self, msg: str) -> None:
        if not self.enabled:
            return
        self.say(msg)
        self.append(msg)

    def append(self, msg: str) -> None:
        """Only into ``train.log`` (not printed)."""
        if self.enabled:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(msg.rstrip("\n") + "\n")

    def nan(self, step: int, epoch: int, paths: Any) -> None:
        """A skipped step: its images, so a bad file can be found."""
        self.append(
            f"NaN/inf loss at step {step} (epoch {epoch + 1}); step skipped; images: "
            + ", ".join(str(p) for p in paths)
        )


# ---------------------------------------------------------------------- metrics.csv
def write_metrics_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Write all ``rows`` (one dict per epoch) atomically; columns are the union, in order."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _fmt(row.get(k)) for k in columns})
    atomic_write_text(path, buf.getvalue())


def read_metrics_csv(path: Path) -> list[dict[str, Any]]:
    """Rows of a ``metrics.csv`` with numbers parsed back to ``float``/``int``."""
    if not path.is_file():
        return []
    with open(path, encoding="utf-8", newline="") as f:
        return [{k: _parse(v) for k, v in row.items()} for row in csv.DictReader(f)]


def reconcile_rows(ckpt: dict[str, Any], csv_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The metrics rows of the epochs ``ckpt`` (a ``last.pt``) holds, one per epoch.

    ``last.pt`` carries its rows since detforge wrote ``weights/``; older checkpoints fall back
    to ``metrics.csv``, keeping rows of epochs up to the checkpoint's only (a run killed
    after writing a row but before its checkpoint would otherwise repeat that epoch's row).
    """
    extra = ckpt.get("extra") or {}
    done = int(extra.get("epochs_done", int(ckpt.get("epoch", -1)) + 1))
    rows = extra.get("metrics")
    if not isinstance(rows, list):
        rows = csv_rows
    by_epoch = {int(r["epoch"]): dict(r) for r in rows if isinstance(r.get("epoch"), int)}
    return [by_epoch[e] for e in sorted(by_epoch) if e <= done]


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _parse(v: str | None) -> Any:
    if v is None or v == "":
        return None
    try:
        return int(v)
    except ValueError:
        pass
    try:
        return float(v)
    except ValueError:
        return v


METRIC_KEYS = ("val/mAP50", "val/mAP50-95")


def plot_results(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """``results.png``: one panel per training loss, per metric and for the LR, vs epoch."""
    from matplotlib.figure import Figure

    from detforge.utils.plotting import save_figure

    losses = [k for k in (rows[0] if rows else {}) if k.startswith("train/")]
    keys = [k for k in (*losses, *METRIC_KEYS, "lr") if any(_num(r.get(k)) for r in rows)]
    if not keys:
        return
    fig = Figure(figsize=(3.2 * len(keys), 3.0))
    axes = fig.subplots(1, len(keys), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=False):
        pts = [(r["epoch"], float(r[key])) for r in rows if _num(r.get(key))]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3)
        ax.set_title(key)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=90)


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(float(v))
