"""Optimizer, learning-rate schedule and weight EMA.

* :func:`create_optimizer` -- SGD (Nesterov) or AdamW over three parameter groups: weights with
  decay, norm-layer weights without decay, biases without decay.
* :func:`scale_hparams` -- the LR and weight decay for the real batch size. The loss is a *sum*
  over the images of a batch (see ``train/loss.py``), so an SGD step already grows with the
  batch: that is the linear scaling rule, and SGD's LR is kept as given. Adam normalises the
  gradient, so AdamW's LR follows the square-root rule ``lr * sqrt(B / nominal)``. Weight decay
  is applied once per step whatever the batch, so it is scaled by ``B / nominal`` to decay the
  same amount per image seen.
* :func:`lr_factor` / :func:`warmup_values` -- pure functions of the optimizer step; the
  "scheduler state" of a run is just its step counter, so resuming (even with more epochs)
  needs nothing else.
* :class:`ModelEMA` -- exponential moving average of the weights with a warm-up ramp.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True)
class Hparams:
    """Learning rate and weight decay actually used per optimizer step."""

    lr: float
    weight_decay: float


def scale_hparams(
    *, optimizer: str, lr: float, weight_decay: float, batch: int, nominal_batch: int = 64
) -> Hparams:
    """Scale ``lr``/``weight_decay`` (tuned at ``nominal_batch``) to a step of ``batch`` images.

    ``batch`` is the global batch of one optimizer step (per-process batch x processes x
    accumulation). See the module docstring for the rules.
    """
    ratio = batch / nominal_batch
    step_lr = lr * math.sqrt(ratio) if optimizer == "adamw" else lr
    return Hparams(lr=step_lr, weight_decay=weight_decay * ratio)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Three groups: ``decay`` (conv/linear weights), ``no_decay`` (norm weights), ``bias``.

    Every trainable parameter lands in exactly one group; each group dict carries ``name``.
    """
    import torch.nn as tnn

    norm_types = (tnn.modules.batchnorm._BatchNorm, tnn.GroupNorm, tnn.LayerNorm)
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    bias: list[torch.nn.Parameter] = []
    seen: set[int] = set()
    for module in model.modules():
        for pname, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            if pname == "bias":
                bias.append(p)
            elif isinstance(module, norm_types) or p.ndim <= 1:
                no_decay.append(p)
            else:
                decay.append(p)
    return [
        {"params": decay, "weight_decay": weight_decay, "name": "decay"},
        {"params": no_decay, "weight_decay": 0.0, "name": "no_decay"},
        {"params": bias, "weight_decay": 0.0, "name": "bias"},
    ]


def create_optimizer(
    model: nn.Module,
    *,
    name: str = "sgd",
    lr: float = 0.01,
    momentum: float = 0.937,
    weight_decay: float = 5e-4,
) -> torch.optim.Optimizer:
    """SGD (Nesterov) or AdamW with :func:`param_groups`. ``lr``/``weight_decay`` are per step
    (already scaled by :func:`scale_hparams`). Each group remembers ``initial_lr``."""
    import torch

    groups = param_groups(model, weight_decay)
    opt: torch.optim.Optimizer
    if name == "sgd":
        opt = torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=True)
    elif name == "adamw":
        opt = torch.optim.AdamW(groups, lr=lr, betas=(momentum, 0.999))
    else:
        raise ValueError(f"unknown optimizer {name!r}")
    for g in opt.param_groups:
        g["initial_lr"] = lr
    return opt


def lr_factor(
    step: int, total_steps: int, *, schedule: str = "cosine", final: float = 0.01
) -> float:
    """Multiplier of the peak LR at optimizer ``step`` of ``total_steps`` (1 -> ``final``)."""
    p = min(max(step / max(total_steps, 1), 0.0), 1.0)
    if schedule == "linear":
        return 1.0 - (1.0 - final) * p
    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * p))


def warmup_values(
    step: int,
    warmup_steps: int,
    *,
    target_lr: float,
    bias_start_lr: float,
    start_momentum: float,
    momentum: float,
) -> tuple[float, float, float]:
    """``(weight_lr, bias_lr, momentum)`` at ``step`` of a linear warmup of ``warmup_steps``.

    Weights rise from 0 to ``target_lr``; biases fall from ``bias_start_lr`` to ``target_lr``
    (a large bias LR lets the objectness/class priors settle first); momentum rises from
    ``start_momentum`` to ``momentum``. Past the warmup all three equal their targets.
    """
    if step >= warmup_steps:
        return target_lr, target_lr, momentum
    t = step / max(warmup_steps, 1)
    return (
        t * target_lr,
        bias_start_lr + t * (target_lr - bias_start_lr),
        start_momentum + t * (momentum - start_momentum),
    )


def apply_lr(
    optimizer: torch.optim.Optimizer, *, weight_lr: float, bias_lr: float, momentum: float
) -> None:
    """Write the LRs (bias group gets ``bias_lr``) and momentum into ``optimizer``."""
    for g in optimizer.param_groups:
        g["lr"] = bias_lr if g.get("name") == "bias" else weight_lr
        if "momentum" in g:
            g["momentum"] = momentum
        elif "betas" in g:
            g["betas"] = (momentum, g["betas"][1])


class ModelEMA:
    """Exponential moving average of a model's parameters and buffers.

    ``decay(updates) = decay * (1 - exp(-updates / tau))`` so early, noisy weights fade fast.
    The EMA copy lives on the model's device, in eval mode, without gradients.
    """

    def __init__(self, model: nn.Module, *, decay: float = 0.9999, tau: float = 2000.0) -> None:
        self.module = copy.deepcopy(unwrap(model)).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.tau = tau
        self.updates = 0

    def current_decay(self) -> float:
        return self.decay * (1.0 - math.exp(-self.updates / self.tau))

    def update(self, model: nn.Module) -> None:
        """Blend ``model``'s current floating-point state into the average."""
        import torch

        self.updates += 1
        d = self.current_decay()
        msd = unwrap(model).state_dict()
        with torch.no_grad():
            for k, v in self.module.state_dict().items():
                if v.dtype.is_floating_point:
                    v.mul_(d).add_(msd[k].detach(), alpha=1.0 - d)
                else:
                    v.copy_(msd[k])

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside a ``DistributedDataParallel`` (or the model itself)."""
    inner = getattr(model, "module", None)
    import torch.nn as tnn

    return inner if isinstance(inner, tnn.Module) else model
