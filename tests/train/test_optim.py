"""Optimizer groups, batch scaling, LR schedule/warmup and EMA against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from detforge.train import optim


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1))


def test_param_groups_put_norm_weights_and_biases_out_of_decay() -> None:
    net = _net()
    groups = {g["name"]: g for g in optim.param_groups(net, 0.1)}
    conv0, bn, conv1 = net[0], net[1], net[2]
    assert {id(p) for p in groups["decay"]["params"]} == {id(conv0.weight), id(conv1.weight)}
    assert {id(p) for p in groups["no_decay"]["params"]} == {id(bn.weight)}
    assert {id(p) for p in groups["bias"]["params"]} == {id(bn.bias), id(conv1.bias)}
    assert groups["decay"]["weight_decay"] == 0.1
    assert groups["no_decay"]["weight_decay"] == groups["bias"]["weight_decay"] == 0.0
    total = sum(len(g["params"]) for g in groups.values())
    assert total == len(list(net.parameters()))


def test_scale_hparams_rules() -> None:
    sgd = optim.scale_hparams(optimizer="sgd", lr=0.01, weight_decay=5e-4, batch=16)
    assert sgd.lr == 0.01  # the summed loss already scales SGD's step with the batch
    assert sgd.weight_decay == pytest.approx(5e-4 * 16 / 64)
    adam = optim.scale_hparams(optimizer="adamw", lr=0.004, weight_decay=0.05, batch=256)
    assert adam.lr == pytest.approx(0.004 * 2.0)  # sqrt(256 / 64)
    assert adam.weight_decay == pytest.approx(0.2)


def test_lr_factor_cosine_and_linear() -> None:
    assert optim.lr_factor(0, 100) == pytest.approx(1.0)
    assert optim.lr_factor(50, 100) == pytest.approx(0.01 + 0.99 * 0.5)
    assert optim.lr_factor(100, 100) == pytest.approx(0.01)
    assert optim.lr_factor(25, 100, schedule="linear", final=0.2) == pytest.approx(0.8)
    assert optim.lr_factor(500, 100) == pytest.approx(0.01)  # clamped past the end


def test_warmup_values_and_apply_lr() -> None:
    w, b, m = optim.warmup_values(
        25, 100, target_lr=0.01, bias_start_lr=0.1, start_momentum=0.8, momentum=0.9
    )
    assert (w, b, m) == pytest.approx((0.0025, 0.1 + 0.25 * (0.01 - 0.1), 0.825))
    assert optim.warmup_values(
        100, 100, target_lr=0.01, bias_start_lr=0.1, start_momentum=0.8, momentum=0.9
    ) == (0.01, 0.01, 0.9)
    opt = optim.create_optimizer(_net(), name="sgd", lr=0.01)
    optim.apply_lr(opt, weight_lr=0.001, bias_lr=0.05, momentum=0.85)
    by_name = {g["name"]: g for g in opt.param_groups}
    assert by_name["bias"]["lr"] == 0.05 and by_name["decay"]["lr"] == 0.001
    assert all(g["momentum"] == 0.85 and g["nesterov"] for g in opt.param_groups)
    adam = optim.create_optimizer(_net(), name="adamw", lr=0.01)
    optim.apply_lr(adam, weight_lr=0.001, bias_lr=0.001, momentum=0.7)
    assert adam.param_groups[0]["betas"] == (0.7, 0.999)


def test_model_ema_follows_the_decay_ramp() -> None:
    net = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(0.0)
    ema = optim.ModelEMA(net, decay=0.9, tau=1.0)
    with torch.no_grad():
        net.weight.fill_(1.0)
    ema.update(net)
    d1 = 0.9 * (1 - math.exp(-1.0))
    assert float(ema.module.weight) == pytest.approx(1 - d1)
    ema.update(net)
    d2 = 0.9 * (1 - math.exp(-2.0))
    assert float(ema.module.weight) == pytest.approx(d2 * (1 - d1) + (1 - d2))
    state = ema.state_dict()
    other = optim.ModelEMA(nn.Linear(1, 1, bias=False))
    other.load_state_dict(state)
    assert other.updates == 2 and float(other.module.weight) == float(ema.module.weight)
    assert not any(p.requires_grad for p in ema.module.parameters())
