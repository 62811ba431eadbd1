"""The training loop. Read it top to bottom: :func:`train` sets up, :func:`_fit` loops.

One optimizer step: images to the device as float/255 -> forward (autocast on CUDA) -> loss
(times the world size, see ``ddp.py``) -> NaN guard -> backward -> every ``accumulate``
batches: unscale, clip the gradient norm, step, EMA update, next LR. Each ``val_every`` epochs
(and the last) rank 0 validates the EMA weights with the evaluation engine, writes
``last.pt``/``best.pt``, a ``metrics.csv`` row, ``results.png``, TensorBoard scalars and the
predictions-vs-truth preview, and decides on early stopping; the decision is broadcast.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detforge.data.dataset import Dataset
from detforge.errors import DetforgeError
from detforge.train.config import AUTO, TrainConfig, write_config
from detforge.train.ddp import DistInfo, broadcast_object, dist_info_from_env
from detforge.train.nan_guard import NanGuard

if TYPE_CHECKING:
    import torch

LossHook = Callable[[int, "torch.Tensor"], "torch.Tensor"]
"""``hook(step, loss) -> loss``: lets tests inject NaNs at chosen steps."""


@dataclass
class TrainResult:
    """Where the run is and how it ended."""

    run_dir: Path
    epochs_done: int
    best_fitness: float
    best_epoch: int
    stop_reason: str
    metrics: list[dict[str, Any]] = field(default_factory=list)


def train(
    cfg: TrainConfig,
    *,
    dataset: Dataset | None = None,
    loss_hook: LossHook | None = None,
    note: Callable[[str], None] = print,
) -> TrainResult:
    """Train as ``cfg`` says; returns the :class:`TrainResult` (rank 0's view).

    ``dataset`` replaces reading ``cfg.data`` (notebooks, tests). Under ``torchrun`` every rank
    calls this; only rank 0 writes files and prints.
    """
    from detforge.train.ddp import destroy_process_group, init_process_group
    from detforge.utils.device import resolve_device

    cfg.validate()
    info = dist_info_from_env()
    device = resolve_device(cfg.device, local_rank=info.local_rank, distributed=info.distributed)
    init_process_group(info, device)
    say = note if info.is_main else (lambda _msg: None)
    try:
        return _fit(cfg, info, device, dataset, loss_hook, say)
    finally:
        destroy_process_group(info)


def _fit(
    cfg: TrainConfig,
    info: DistInfo,
    device: torch.device,
    dataset: Dataset | None,
    loss_hook: LossHook | None,
    say: Callable[[str], None],
) -> TrainResult:
    import torch

    from detforge.models.checkpoint import load_checkpoint
    from detforge.models.yolo import create_model
    from detforge.train import optim
    from detforge.train.ddp import all_reduce_sum, wrap_model
    from detforge.train.loaders import create_loaders
    from detforge.train.loss import DetectionLoss
    from detforge.train.runs import next_run_dir
    from detforge.train.setup import load_training_data, load_weights_into
    from detforge.train.state import RunState, resume_checkpoint_path

    torch.manual_seed(cfg.seed)  # same init on every rank (DDP also broadcasts rank 0)
    # ------------------------------------------------------------------ run folder and resume
    ckpt: dict[str, Any] | None = None
    if cfg.resume:
        ckpt_path = resume_checkpoint_path(cfg.resume)
        run_dir = ckpt_path.parent
        ckpt = load_checkpoint(ckpt_path)
        done = int(ckpt["extra"].get("epochs_done", ckpt["epoch"] + 1))
        if done >= cfg.epochs:
            raise DetforgeError(
                f"this run already finished: {done} of {cfg.epochs} epochs are done "
                f"({run_dir}). To train longer, pass --resume {run_dir} --epochs N with N > "
                f"{done}; to start over from its weights use --weights {run_dir / 'best.pt'}"
            )
    else:
        run_dir = broadcast_object(info, next_run_dir(cfg.out or "runs/train"))
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    log = _RunLog(run_dir / "train.log", say, enabled=info.is_main)

    # ------------------------------------------------------------------ data, model, optimizer
    # rank 0 checks (and with --skip-bad writes the clean copy); the others read what it chose
    data = None
    if info.is_main:
        data = load_training_data(
            cfg.data, check=cfg.check, skip_bad=cfg.skip_bad, val_fraction=cfg.val_fraction,
            seed=cfg.seed, path_map=cfg.path_map, note=log, dataset=dataset,
            clean_dir=run_dir / "clean-data",
        )  # fmt: skip
    source = broadcast_object(info, data.source if data is not None else "")
    if data is None:
        data = load_training_data(
            source, check=False, val_fraction=cfg.val_fraction, seed=cfg.seed,
            path_map=cfg.path_map, note=log, dataset=dataset,
        )  # fmt: skip
    nc = len(data.class_names)
    model = create_model(
        cfg.model, nc, backbone=cfg.backbone, backbone_weights=cfg.backbone_weights
    )
    if cfg.weights:
        src = load_checkpoint(cfg.weights)
        got, total = load_weights_into(model, src["ema"] or src["model"])
        if got < total / 2:  # a new class count changes only the last class layers
            raise DetforgeError(
                f"only {got} of {total} weight tensors of the checkpoint fit a --model "
                f"{cfg.model} detector (it was built as {src['model_args']}); pass the "
                "--model/--backbone it was trained with",
                path=cfg.weights,
            )
        log(f"--weights {cfg.weights}: {got} of {total} tensors loaded; starting at epoch 0")
    model.to(device)
    # measured on rank 0 and shared, so every rank steps with the same batch and LR
    batch = broadcast_object(info, _resolve_batch(cfg, model, device, log) if info.is_main else 0)
    lr = broadcast_object(info, _resolve_lr(cfg, data, batch, device, log) if info.is_main else 0)
    global_batch = batch * cfg.accumulate * info.world_size
    hp = optim.scale_hparams(
        optimizer=cfg.optimizer, lr=lr, weight_decay=cfg.weight_decay,
        batch=global_batch, nominal_batch=cfg.nominal_batch,
    )  # fmt: skip
    opt = optim.create_optimizer(
        model, name=cfg.optimizer, lr=hp.lr, momentum=cfg.momentum, weight_decay=hp.weight_decay
    )
    ema = optim.ModelEMA(model, decay=cfg.ema_decay, tau=cfg.ema_tau) if cfg.ema else None
    use_amp = cfg.amp and device.type == "cuda"
    state = RunState()
    if ckpt is not None:
        state = RunState.from_checkpoint(ckpt, model, opt, ema)
        log(f"resuming {run_dir} at epoch {state.epoch + 1} of {cfg.epochs}")
    if info.is_main:
        write_config(run_dir / "config.yaml", cfg, {
            "amp": use_amp, "batch": batch, "lr": lr, "step_lr": hp.lr,
            "step_weight_decay": hp.weight_decay,
            "global_batch": global_batch, "world_size": info.world_size, "device": str(device),
            "train_images": data.train.num_images, "val_images": data.val.num_images,
            "left_out": data.left_out,
        })  # fmt: skip
    loaders = create_loaders(cfg, data, batch=batch, info=info)
    net = wrap_model(model, info, device)
    loss_fn = DetectionLoss(
        model, box=cfg.box, cls=cfg.cls, dfl=cfg.dfl, world_size=info.world_size
    )
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    nb = len(loaders.train)
    steps_per_epoch = max(nb // cfg.accumulate, 1)
    total_steps = steps_per_epoch * cfg.epochs
    warmup = min(max(round(cfg.warmup_epochs * steps_per_epoch), cfg.warmup_min_iters),
                 max(total_steps // 3, 1))  # fmt: skip
    guard = NanGuard(cfg.nan_skip_limit, cfg.nan_rollbacks, cfg.nan_lr_factor,
                     rollbacks=state.rollbacks)  # fmt: skip
    good = state.snapshot(model, opt, ema)  # the rollback target until the first epoch ends
    from detforge.train.state import Reporter

    rep = Reporter(cfg, run_dir, data, info, log, ema_or_model=ema.module if ema else model)
    if nb == 0:
        raise DetforgeError("the training loader yields no batches; add training images")
    t_start = time.perf_counter()
    stop, w_lr = "", 0.0
    planned = cfg.epochs  # lowered to what fits --time-budget once an epoch has been timed
    told = cfg.epochs  # the plan last logged
    # SGD's biases start warmup at a high LR; Adam's steps are already ~lr each, so not there
    bias_lr0 = cfg.warmup_bias_lr if cfg.optimizer == "sgd" else 0.0
    log(
        f"training {cfg.model} on {data.train.num_images} images ({nc} classes), "
        f"validating on {data.val.num_images}; batch {batch} x {cfg.accumulate} x "
        f"{info.world_size} process(es), {steps_per_epoch} steps/epoch, warmup {warmup} "
        f"steps, lr {hp.lr:.3g}, weight decay {hp.weight_decay:.3g}, {device}; run {run_dir}"
    )
    # ------------------------------------------------------------------ the loop
    first_epoch = state.epoch + 1
    for epoch in range(first_epoch, cfg.epochs):
        if epoch >= planned:
            break
        total_steps = steps_per_epoch * planned
        net.train()
        loaders.set_epoch(epoch, mosaic=epoch < planned - cfg.close_mosaic)
        sums = torch.zeros(3, device=device)
        n_ok, n_img, t_wait, t0 = 0, 0, 0.0, time.perf_counter()
        bar = rep.bar(loaders.train, epoch, nb)
        t_fetch = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        for i, batch_d in enumerate(bar):
            t_wait += time.perf_counter() - t_fetch
            # LR: warmup, then the schedule; times the NaN-rollback scale
            base = optim.lr_factor(state.step, total_steps, schedule=cfg.schedule,
                                   final=cfg.lr_final) * hp.lr * guard.lr_scale  # fmt: skip
            w_lr, b_lr, mom = optim.warmup_values(
                state.step, warmup, target_lr=base, bias_start_lr=bias_lr0,
                start_momentum=cfg.warmup_momentum, momentum=cfg.momentum,
            )  # fmt: skip
            optim.apply_lr(opt, weight_lr=w_lr, bias_lr=b_lr, momentum=mom)
            imgs = batch_d["img"].to(device, non_blocking=True).float() / 255.0
            with torch.autocast(device_type=device.type, enabled=use_amp):
                loss, items = loss_fn(net(imgs), batch_d)
            loss = loss * info.world_size
            if loss_hook is not None:
                loss = loss_hook(state.step, loss)
            finite = _all_finite(info, torch.isfinite(loss).all() & torch.isfinite(items).all())
            if finite:
                scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
            last_of_group = (i + 1) % cfg.accumulate == 0 or i + 1 == nb
            if finite and last_of_group:
                scaler.unscale_(opt)
                norm = torch.nn.utils.clip_grad_norm_(
                    model.parameters(), cfg.clip_grad if cfg.clip_grad > 0 else math.inf
                )
                finite = _all_finite(info, torch.isfinite(norm)) or use_amp
                if finite:
                    scaler.step(opt)
                    scaler.update()
                    if ema is not None:
                        ema.update(model)
            if last_of_group or not finite:
                opt.zero_grad(set_to_none=True)
            if finite:
                if last_of_group:
                    state.step += 1
                sums += items.detach()
                n_ok += 1
            else:
                log.nan(state.step, epoch, batch_d.get("paths", []))
            action = guard.observe(finite, state.step, batch_d.get("paths", []))
            if action == "rollback":
                state.restore(good, model, opt, ema)
                log(f"{cfg.nan_skip_limit} NaN/inf steps in a row: rolled back to the last "
                    f"good checkpoint, LR x{guard.lr_scale:g}")  # fmt: skip
            elif action == "stop":
                rep.close()
                raise DetforgeError(guard.diagnosis(hp.lr * guard.lr_scale))
            n_img += int(imgs.shape[0])
            elapsed = time.perf_counter() - t0
            rep.postfix(bar, sums / max(n_ok, 1), n_img * info.world_size / elapsed,
                        t_wait / elapsed)  # fmt: skip
            t_fetch = time.perf_counter()
            if cfg.time_budget and time.perf_counter() - t_start > cfg.time_budget:
                stop = f"time budget of {cfg.time_budget:g} s reached"
                break
        # -------------------------------------------------------------- end of epoch
        state.epoch, state.rollbacks = epoch, guard.rollbacks
        sums = all_reduce_sum(info, sums) / info.world_size  # mean over ranks, for the log
        elapsed = time.perf_counter() - t0
        last = epoch + 1 == planned or bool(stop)
        row = {
            "epoch": epoch + 1,
            "train/box": float(sums[0]) / max(n_ok, 1),
            "train/cls": float(sums[1]) / max(n_ok, 1),
            "train/dfl": float(sums[2]) / max(n_ok, 1),
            "lr": w_lr,
            "images_per_s": n_img * info.world_size / max(elapsed, 1e-9),
            "data_wait": t_wait / max(elapsed, 1e-9),
            "nan_steps": guard.total_bad,
            "time_s": time.perf_counter() - t_start + state.time_before,
        }
        if info.is_main and ((epoch + 1) % cfg.val_every == 0 or last):
            val_batches = loaders.val
            row.update(rep.validate(val_batches, device, epoch))
            if row["fitness"] > state.best_fitness:
                state.best_fitness, state.best_epoch = row["fitness"], epoch + 1
        if info.is_main:
            patience_out = bool(cfg.patience) and epoch + 1 - state.best_epoch >= cfg.patience
            if patience_out and not stop:
                stop = f"no improvement for {cfg.patience} epochs (best epoch {state.best_epoch})"
            state.finished = last or bool(stop)
            rep.end_epoch(row, state, model, opt, ema, best=state.best_epoch == epoch + 1)
        stop = broadcast_object(info, stop)
        good = state.snapshot(model, opt, ema)
        if cfg.time_budget and not stop:
            spent = time.perf_counter() - t_start
            fits = int((cfg.time_budget - spent) / (spent / (epoch + 1 - first_epoch)))
            new_plan = broadcast_object(info, min(cfg.epochs, epoch + 1 + max(fits, 0)))
            if abs(new_plan - told) >= max(2, 0.05 * new_plan) or (new_plan != told and fits < 3):
                # the plan follows every estimate; the log only its real moves (not +-1 jitter)
                log(f"--time-budget: {new_plan} of {cfg.epochs} epochs fit; LR schedule adjusted")
                told = new_plan
            planned = new_plan
            if planned == epoch + 1:
                stop = f"time budget of {cfg.time_budget:g} s used"
        if stop:
            log(f"stopping: {stop}")
            break
    rep.close()
    return TrainResult(run_dir, state.epoch + 1, state.best_fitness, state.best_epoch,
                       stop or "finished", rep.rows)  # fmt: skip


def _all_finite(info: DistInfo, flag: torch.Tensor) -> bool:
    """Whether ``flag`` (a bool tensor) holds on every rank."""
    if not info.distributed:
        return bool(flag)
    import torch

    from detforge.train.ddp import all_reduce_sum

    bad = all_reduce_sum(info, (~flag.bool()).to(torch.float32).reshape(1))
    return bool(bad.item() == 0)


def _resolve_batch(cfg: TrainConfig, model: Any, device: torch.device, log: Any) -> int:
    if cfg.batch != AUTO:
        return int(cfg.batch)
    from detforge.train.autobatch import auto_batch

    batch, reason = auto_batch(model, imgsz=cfg.imgsz, device=device)
    log(reason)
    return batch


def _resolve_lr(cfg: TrainConfig, data: Any, batch: int, device: torch.device, log: Any) -> float:
    if cfg.lr != AUTO:
        return float(cfg.lr)
    from detforge.train.lr_find import find_lr

    res = find_lr(cfg, data, batch=batch, device=device, steps=cfg.lr_find_steps, note=log)
    if not math.isfinite(res.suggestion):
        default = float(TrainConfig.lr)  # type: ignore[arg-type]
        log(f"--lr auto: the range test found no stable LR; using the default {default:g}")
        return default
    log(f"--lr auto: {res.suggestion:.3g} (range test; lowest loss at {res.min_loss_lr:.3g})")
    return res.suggestion


class _RunLog:
    """Prints notes (rank 0) and appends them, and NaN reports, to ``train.log``."""

    def __init__(self, path: Path, say: Callable[[str], None], *, enabled: bool) -> None:
        self.path, self.say, self.enabled = path, say, enabled

    def __call__(self, msg: str) -> None:
        if not self.enabled:
            return
        self.say(msg)
        self._append(msg)

    def _append(self, msg: str) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(msg.rstrip("\n") + "\n")

    def nan(self, step: int, epoch: int, paths: Any) -> None:
        """A skipped step: its images, so a bad file can be found."""
        if self.enabled:
            self._append(
                f"NaN/inf loss at step {step} (epoch {epoch + 1}); step skipped; images: "
                + ", ".join(str(p) for p in paths)
            )
