"""Learning-rate range test (``detforge lr-find`` and ``train --lr auto``).

The guide's advice for diverging or NaN losses is "lower the learning rate, maybe by an order of
magnitude". The range test measures instead of guessing: starting from the untrained model it
takes ``steps`` optimizer steps while raising the LR exponentially from ``start`` to ``end``,
records the (smoothed) loss, and stops once the loss has blown up. The recommendation is one
tenth of the LR at which the smoothed loss was lowest -- safely below the point of divergence,
which is what "stable" means here -- and never above the LR of steepest descent times 3.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class LRFindResult:
    """LRs tried, raw and smoothed losses, and the recommendation (``nan`` if none)."""

    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    suggestion: float = math.nan
    steepest: float = math.nan
    min_loss_lr: float = math.nan
    stopped_early: bool = False


def lr_range_test(
    step: Callable[[float], float],
    *,
    start: float = 1e-6,
    end: float = 1.0,
    steps: int = 100,
    beta: float = 0.9,
    diverge: float = 4.0,
) -> LRFindResult:
    """Call ``step(lr)`` (one optimizer step at ``lr``, returning its loss) ``steps`` times with
    LRs growing geometrically from ``start`` to ``end``; stop when the smoothed loss exceeds
    ``diverge`` x its minimum or goes non-finite."""
    res = LRFindResult()
    avg = 0.0
    best = math.inf
    ratio = (end / start) ** (1.0 / max(steps - 1, 1))
    for i in range(steps):
        lr = start * ratio**i
        loss = float(step(lr))
        if not math.isfinite(loss):
            res.stopped_early = True
            break
        avg = beta * avg + (1 - beta) * loss
        sm = avg / (1 - beta ** (i + 1))
        res.lrs.append(lr)
        res.losses.append(loss)
        res.smoothed.append(sm)
        best = min(best, sm)
        if i > 5 and sm > diverge * best:
            res.stopped_early = True
            break
    res.suggestion, res.steepest, res.min_loss_lr = suggest_lr(res.lrs, res.smoothed)
    return res


def suggest_lr(lrs: list[float], smoothed: list[float]) -> tuple[float, float, float]:
    """``(suggestion, steepest-descent LR, min-loss LR)`` from a range test's curve.

    The first and last few points are ignored (bias-corrected start, blow-up end). Returns NaNs
    when fewer than 5 finite points were recorded.
    """
    n = len(lrs)
    if n < 5:
        return math.nan, math.nan, math.nan
    lo, hi = max(1, n // 10), n
    i_min = min(range(lo, hi), key=lambda i: smoothed[i])
    logs = [math.log10(v) for v in lrs]
    grads = [
        (smoothed[i + 1] - smoothed[i - 1]) / (logs[i + 1] - logs[i - 1]) for i in range(lo, n - 1)
    ]
    i_steep = lo + min(range(len(grads)), key=lambda j: grads[j]) if grads else i_min
    min_lr, steep = lrs[i_min], lrs[i_steep]
    suggestion = min(min_lr / 10.0, 3.0 * steep)
    return suggestion, steep, min_lr


def plot_lr_find(path: Path, res: LRFindResult) -> None:
    """Loss against LR (log axis) with the recommendation marked; written atomically."""
    from matplotlib.figure import Figure

    from detforge.utils.plotting import save_figure

    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(res.lrs, res.losses, alpha=0.3, label="loss")
    ax.plot(res.lrs, res.smoothed, label="smoothed loss")
    if math.isfinite(res.suggestion):
        ax.axvline(res.suggestion, color="g", ls="--", label=f"suggested lr {res.suggestion:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=90)


def default_range(*, darknet: bool) -> tuple[float, float]:
    """The LRs a range test spans by default: 1e-5 .. 1 for detforge's models (a loss averaged
    per target), 1e-8 .. 1e-2 for a Darknet network (its loss sums every cell)."""
    return (1e-8, 1e-2) if darknet else (1e-5, 1.0)


def find_lr(
    cfg: Any,
    data: Any,
    *,
    batch: int,
    device: Any,
    steps: int = 100,
    start: float | None = None,
    end: float | None = None,
    note: Callable[[str], None] = print,
) -> LRFindResult:
    """Range test of a fresh ``cfg.model`` (or ``cfg.cfg``'s Darknet network), loaded from
    ``cfg.weights`` when given, on ``data.train`` (a :class:`TrainingData`).

    ``start`` / ``end`` default to :func:`default_range` (a Darknet ``cfg``'s LRs are ~1e-5).

    LRs are in ``--lr`` units (the peak LR at ``cfg.nominal_batch``); each step uses the LR and
    weight decay :func:`~detforge.train.optim.scale_hparams` derives for ``batch``. The model
    is thrown away afterwards.
    """
    import itertools

    import torch

    from detforge.train import optim
    from detforge.train.ddp import DistInfo
    from detforge.train.loaders import create_loaders
    from detforge.train.session import build_model_and_loss

    low, high = default_range(darknet=bool(cfg.cfg))
    start = start if start is not None else low
    end = end if end is not None else high
    torch.manual_seed(cfg.seed)
    model, loss_fn = build_model_and_loss(cfg, len(data.class_names), world_size=1)
    if cfg.cfg:  # a Darknet network is tested from the weights it will fine-tune
        from detforge.train.darknet_model import prepare_darknet

        prepare_darknet(model, cfg, lambda _: None)
    elif cfg.weights:  # and detforge's model from the checkpoint it will fine-tune
        from detforge.train.session import load_pretrained

        load_pretrained(model, cfg, lambda _: None)
    model.to(device)
    hp = optim.scale_hparams(optimizer=cfg.optimizer, lr=1.0, weight_decay=cfg.weight_decay,
                             batch=batch, nominal_batch=cfg.nominal_batch)  # fmt: skip
    opt = optim.create_optimizer(model, name=cfg.optimizer, lr=hp.lr, momentum=cfg.momentum,
                                 weight_decay=hp.weight_decay)  # fmt: skip
    loaders = create_loaders(cfg, data, batch=batch, info=DistInfo())
    loaders.set_epoch(0, mosaic=cfg.mosaic > 0)
    batches = itertools.cycle(loaders.train)  # type: ignore[arg-type]
    model.train()
    note(f"LR range test: {steps} steps from {start:g} to {end:g} at batch {batch}")

    def step(lr: float) -> float:
        optim.apply_lr(opt, weight_lr=lr * hp.lr, bias_lr=lr * hp.lr, momentum=cfg.momentum)
        b = next(batches)
        imgs = b["img"].to(device).float() / 255.0
        loss, _ = loss_fn(model(imgs), b)
        if not torch.isfinite(loss):
            return math.nan
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad or math.inf)
        opt.step()
        return float(loss.detach()) / int(imgs.shape[0])

    return lr_range_test(step, start=start, end=end, steps=steps)
