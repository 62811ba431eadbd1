"""The training loop, read top to bottom as DETR's ``engine.py`` + ``main.py`` read:
:func:`train` sets up (``session.build_session``), then per epoch :func:`train_one_epoch`
and :func:`end_of_epoch`.

One optimizer step (:func:`train_step`): images to the device as float/255 -> forward
(autocast on CUDA) -> loss (times the world size, see ``ddp.py``) -> NaN guard -> backward ->
every ``accumulate`` batches: unscale, clip the gradient norm, step, EMA update, next LR. Each
``val_every`` epochs (and the last) rank 0 validates the EMA weights with the evaluation
engine, writes ``weights/best.pt`` and ``weights/last.pt``, a ``metrics.csv`` row,
``results.png``, TensorBoard scalars and the preview, and decides on early stopping; the
decision is broadcast. ``--time-budget`` re-plans the number of epochs after each one.

Time comes from ``clock`` (default ``time.perf_counter``), passed in, so tests drive it.
"""

from __future__ import annotations

import math
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detforge.data.dataset import Dataset
from detforge.errors import DetforgeError
from detforge.train.config import TrainConfig
from detforge.train.ddp import DistInfo, broadcast_object, dist_info_from_env
from detforge.utils.progress import Clock

if TYPE_CHECKING:
    import torch

    from detforge.train.session import Session

LossHook = Callable[[int, "torch.Tensor"], "torch.Tensor"]
"""``hook(step, loss) -> loss``: lets tests inject NaNs (or an interrupt) at chosen steps."""


@dataclass
class TrainResult:
    """Where the run is and how it ended."""

    run_dir: Path
    epochs_done: int
    best_fitness: float
    best_epoch: int
    stop_reason: str
    metrics: list[dict[str, Any]] = field(default_factory=list)

    @property
    def best_weights(self) -> Path:
        return self.run_dir / "weights" / "best.pt"


@dataclass
class Plan:
    """How far the run goes: ``planned`` epochs (lowered to what fits ``--time-budget``),
    ``told`` the plan last logged, and ``stop`` the reason to end early ('' to go on)."""

    t_start: float
    first_epoch: int
    planned: int
    told: int
    stop: str = ""


@dataclass
class EpochStats:
    """One epoch of training on this rank: summed loss items of the finite steps, counts,
    seconds waited for data and in all, and the last weight LR."""

    sums: torch.Tensor
    n_ok: int = 0
    n_img: int = 0
    t_wait: float = 0.0
    elapsed: float = 0.0
    lr: float = 0.0


def train(
    cfg: TrainConfig,
    *,
    dataset: Dataset | None = None,
    loss_hook: LossHook | None = None,
    note: Callable[[str], None] = print,
    clock: Clock = time.perf_counter,
) -> TrainResult:
    """Train as ``cfg`` says; returns the :class:`TrainResult` (rank 0's view).

    ``dataset`` replaces reading ``cfg.data`` (notebooks, tests); ``clock`` is the time source
    of speeds, ETAs and ``--time-budget``. Under ``torchrun`` every rank calls this; only rank
    0 writes files and prints. Ctrl-C (``KeyboardInterrupt``) is logged with where it stopped
    and the ``--resume`` command, then re-raised.
    """
    from detforge.train.ddp import destroy_process_group, init_process_group
    from detforge.train.session import build_session
    from detforge.utils.device import resolve_device

    cfg.validate()
    info = dist_info_from_env()
    device = resolve_device(cfg.device, local_rank=info.local_rank, distributed=info.distributed)
    init_process_group(info, device)
    say = note if info.is_main else (lambda _msg: None)
    try:
        s = build_session(cfg, info, device, dataset, say, clock)
        try:
            return fit(s, loss_hook)
        except KeyboardInterrupt:
            s.log(interrupt_message(s))
            raise
        finally:
            s.rep.close()
    finally:
        destroy_process_group(info)


def fit(s: Session, loss_hook: LossHook | None = None) -> TrainResult:
    """The epochs of a built session, then the end-of-training plots."""
    first = s.state.epoch + 1
    plan = Plan(t_start=s.clock(), first_epoch=first, planned=s.cfg.epochs, told=s.cfg.epochs)
    for epoch in range(first, s.cfg.epochs):
        if epoch >= plan.planned:
            break
        stats = train_one_epoch(s, epoch, plan, loss_hook)
        end_of_epoch(s, epoch, stats, plan)
        if plan.stop:
            s.log(f"stopping: {plan.stop}")
            break
    written = s.rep.final_plots(s.loaders.val, s.device)
    if written:
        s.log(f"plots of the best weights on the validation split: {s.run.root}")
    return TrainResult(s.run.root, s.state.epoch + 1, s.state.best_fitness, s.state.best_epoch,
                       plan.stop or "finished", s.rep.rows)  # fmt: skip


def train_one_epoch(
    s: Session, epoch: int, plan: Plan, loss_hook: LossHook | None = None
) -> EpochStats:
    """One pass over the training loader (stops early when ``--time-budget`` runs out)."""
    import torch

    cfg, clock = s.cfg, s.clock
    nb = len(s.loaders.train)
    total_steps = s.steps_per_epoch * plan.planned
    s.net.train()
    s.loaders.set_epoch(epoch, mosaic=epoch < plan.planned - cfg.close_mosaic)
    st = EpochStats(sums=torch.zeros(3, device=s.device))
    t0 = clock()
    bar = s.rep.bar(s.loaders.train, epoch, nb)
    t_fetch = clock()
    s.opt.zero_grad(set_to_none=True)
    for i, batch in enumerate(bar):
        st.t_wait += clock() - t_fetch
        s.position = (epoch, i, nb)
        st.lr = set_lr(s, total_steps)
        finite, items, n = train_step(s, batch, last_of_group=(i + 1) % cfg.accumulate == 0
                                      or i + 1 == nb, loss_hook=loss_hook)  # fmt: skip
        if finite:
            st.sums += items
            st.n_ok += 1
        nan_guard(s, finite, batch, epoch)
        st.n_img += n
        st.elapsed = clock() - t0
        s.rep.step(bar, st.sums / max(st.n_ok, 1), epoch=epoch, batch=i, total=nb,
                   planned=plan.planned, images=st.n_img, elapsed=st.elapsed,
                   wait=st.t_wait)  # fmt: skip
        t_fetch = clock()
        if cfg.time_budget and clock() - plan.t_start > cfg.time_budget:
            plan.stop = f"time budget of {cfg.time_budget:g} s reached"
            break
    st.elapsed = clock() - t0
    s.position = (epoch, nb, nb)
    return st


def set_lr(s: Session, total_steps: int) -> float:
    """Warmup, then the schedule, times the NaN-rollback scale; returns the weight LR."""
    from detforge.train import optim

    cfg = s.cfg
    base = optim.lr_factor(s.state.step, total_steps, schedule=cfg.schedule,
                           final=cfg.lr_final) * s.hp.lr * s.guard.lr_scale  # fmt: skip
    w_lr, b_lr, mom = optim.warmup_values(
        s.state.step, s.warmup, target_lr=base, bias_start_lr=s.bias_lr0,
        start_momentum=cfg.warmup_momentum, momentum=cfg.momentum,
    )  # fmt: skip
    optim.apply_lr(s.opt, weight_lr=w_lr, bias_lr=b_lr, momentum=mom)
    return w_lr


def train_step(
    s: Session, batch: dict[str, Any], *, last_of_group: bool, loss_hook: LossHook | None
) -> tuple[bool, torch.Tensor, int]:
    """Forward, loss, backward; an optimizer step when ``last_of_group`` (gradient
    accumulation). Returns ``(finite, detached (3,) loss items, images)``; a non-finite loss
    or gradient skips the update."""
    import torch

    cfg, info, device = s.cfg, s.info, s.device
    imgs = batch["img"].to(device, non_blocking=True).float() / 255.0
    with torch.autocast(device_type=device.type, enabled=s.use_amp):
        loss, items = s.loss_fn(s.net(imgs), batch)
    loss = loss * info.world_size
    if loss_hook is not None:
        loss = loss_hook(s.state.step, loss)
    finite = _all_finite(info, torch.isfinite(loss).all() & torch.isfinite(items).all())
    if finite:
        s.scaler.scale(loss).backward()
    if finite and last_of_group:
        s.scaler.unscale_(s.opt)
        norm = torch.nn.utils.clip_grad_norm_(
            s.model.parameters(), cfg.clip_grad if cfg.clip_grad > 0 else math.inf
        )
        finite = _all_finite(info, torch.isfinite(norm)) or s.use_amp
        if finite:
            s.scaler.step(s.opt)
            s.scaler.update()
            if s.ema is not None:
                s.ema.update(s.model)
    if last_of_group or not finite:
        s.opt.zero_grad(set_to_none=True)
    if finite and last_of_group:
        s.state.step += 1
    return finite, items.detach(), int(imgs.shape[0])


def nan_guard(s: Session, finite: bool, batch: dict[str, Any], epoch: int) -> None:
    """Log a skipped step; roll back or stop (``DetforgeError`` with a diagnosis) when the
    guard says so (``nan_guard.py``)."""
    paths = batch.get("paths", [])
    if not finite:
        s.log.nan(s.state.step, epoch, paths)
    action = s.guard.observe(finite, s.state.step, paths)
    if action == "rollback":
        s.state.restore(s.good, s.model, s.opt, s.ema)
        s.log(f"{s.cfg.nan_skip_limit} NaN/inf steps in a row: rolled back to the last "
              f"good checkpoint, LR x{s.guard.lr_scale:g}")  # fmt: skip
    elif action == "stop":
        raise DetforgeError(s.guard.diagnosis(s.hp.lr * s.guard.lr_scale))


def end_of_epoch(s: Session, epoch: int, st: EpochStats, plan: Plan) -> None:
    """The ``--time-budget`` re-plan, validation (rank 0), best epoch, patience, checkpoints
    and metrics, the rollback target. Sets ``plan.stop`` to end the run."""
    from detforge.train.ddp import all_reduce_sum

    cfg, info, state = s.cfg, s.info, s.state
    state.epoch, state.rollbacks = epoch, s.guard.rollbacks
    sums = all_reduce_sum(info, st.sums) / info.world_size  # mean over ranks, for the log
    if cfg.time_budget and not plan.stop:
        replan(s, epoch, plan)  # first: an epoch the budget makes the last one is validated
    last = epoch + 1 == plan.planned or bool(plan.stop)
    n_ok, elapsed = max(st.n_ok, 1), max(st.elapsed, 1e-9)
    row = {
        "epoch": epoch + 1,
        **{f"train/{k}": float(v) / n_ok for k, v in zip(s.rep.loss_names, sums, strict=True)},
        "lr": st.lr,
        "images_per_s": st.n_img * info.world_size / elapsed,
        "data_wait": st.t_wait / elapsed,
        "nan_steps": s.guard.total_bad,
        "time_s": s.clock() - plan.t_start + state.time_before,
    }
    if info.is_main and ((epoch + 1) % cfg.val_every == 0 or last):
        row.update(s.rep.validate(s.loaders.val, s.device, epoch))
        if row["fitness"] > state.best_fitness:
            state.best_fitness, state.best_epoch = row["fitness"], epoch + 1
    if info.is_main:
        patience_out = bool(cfg.patience) and epoch + 1 - state.best_epoch >= cfg.patience
        if patience_out and not plan.stop:
            plan.stop = f"no improvement for {cfg.patience} epochs (best epoch {state.best_epoch})"
        state.finished = last or bool(plan.stop)
        s.rep.end_epoch(row, state, s.model, s.opt, s.ema, best=state.best_epoch == epoch + 1)
    plan.stop = broadcast_object(info, plan.stop)
    s.good = state.snapshot(s.model, s.opt, s.ema)


def replan(s: Session, epoch: int, plan: Plan) -> None:
    """``--time-budget``: how many epochs fit at the pace so far; the LR schedule follows."""
    cfg = s.cfg
    spent = s.clock() - plan.t_start
    fits = int((cfg.time_budget - spent) / (spent / (epoch + 1 - plan.first_epoch)))
    new_plan = broadcast_object(s.info, min(cfg.epochs, epoch + 1 + max(fits, 0)))
    if abs(new_plan - plan.told) >= max(2, 0.05 * new_plan) or (
        new_plan != plan.told and fits < 3
    ):  # the plan follows every estimate; the log only its real moves (not +-1 jitter)
        s.log(f"--time-budget: {new_plan} of {cfg.epochs} epochs fit; LR schedule adjusted")
        plan.told = new_plan
    plan.planned = new_plan
    if plan.planned == epoch + 1:
        plan.stop = f"time budget of {cfg.time_budget:g} s used"


def interrupt_message(s: Session) -> str:
    """Where Ctrl-C stopped the run, what is saved, and the exact command to continue."""
    epoch, batch, nb = s.position
    done = s.rep.committed
    where = (
        "before the first batch"
        if epoch < 0
        else f"in epoch {epoch + 1}/{s.cfg.epochs} at batch {batch + 1}/{nb}"
        if batch < nb
        else f"after epoch {epoch + 1}/{s.cfg.epochs} (validating or saving)"
    )
    if done <= 0:
        return (f"interrupted {where}; no epoch was completed, so nothing is saved to resume: "
                "start the run again")  # fmt: skip
    cmd = f"detforge train --resume {shlex.quote(str(s.run.root))}"
    if s.info.distributed:
        cmd = f"torchrun --nproc_per_node {s.info.world_size} -m {cmd}"
    return (f"interrupted {where}; {s.run.last} holds epoch {done} of {s.cfg.epochs}. "
            f"Continue with: {cmd}")  # fmt: skip


def _all_finite(info: DistInfo, flag: torch.Tensor) -> bool:
    """Whether ``flag`` (a bool tensor) holds on every rank."""
    if not info.distributed:
        return bool(flag)
    import torch

    from detforge.train.ddp import all_reduce_sum

    bad = all_reduce_sum(info, (~flag.bool()).to(torch.float32).reshape(1))
    return bool(bad.item() == 0)
