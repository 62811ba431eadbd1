"""PyTorch modules for Darknet's layer types, with Darknet's exact forward semantics.

Every module takes ``(x, outputs)``: ``x`` the previous layer's output (B, C, H, W) and
``outputs`` the list of all earlier layers' outputs (entries not referenced later may be
``None``). Semantics follow AlexeyAB/darknet ``src/*_layer.c`` (learned from, not copied):

* convolution: padding ``size // 2`` when ``pad=1`` else ``padding``; BatchNorm with
  ``eps=1e-5`` (``(x - mean) / sqrt(var + 1e-5) * scale + bias``); the bias is the BN bias
  when ``batch_normalize=1``.
* maxpool: output ``(W + padding - size) // stride + 1``; windows start at ``-(padding // 2)``;
  positions outside the input never win (``-inf`` padding).
* route: concatenation over channels of each input's ``group_id``-th of ``groups`` slices.
* shortcut: ``activation(x + sum(outputs[from]))``; sam: ``activation(x * outputs[from])``;
  scale_channels: ``activation(x * outputs[from])`` with ``x`` (B, C, 1, 1) (or (B, 1, H, W)
  with ``scale_wh=1``) broadcast over the feature map.
* upsample: nearest-neighbour by ``stride``, times ``scale``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from detforge.models.tracing import is_tracing

if TYPE_CHECKING:
    from detforge.models.darknet.cpu_pack import PackedConv

ACTIVATIONS = ("leaky", "mish", "swish", "logistic", "linear", "relu", "tanh")


def activate(x: torch.Tensor, kind: str) -> torch.Tensor:
    """Darknet activation ``kind`` (one of :data:`ACTIVATIONS`); leaky has slope 0.1."""
    if kind == "linear":
        return x
    if kind == "leaky":
        return F.leaky_relu(x, 0.1)
    if kind == "mish":
        return F.mish(x)  # x * tanh(softplus(x)), softplus threshold 20 as in Darknet
    if kind == "swish":
        return F.silu(x)
    if kind == "logistic":
        return torch.sigmoid(x)
    if kind == "relu":
        return F.relu(x)
    if kind == "tanh":
        return torch.tanh(x)
    raise ValueError(kind)


Outputs = Sequence[torch.Tensor | None]


def _get(outputs: Outputs, index: int) -> torch.Tensor:
    out = outputs[index]
    if out is None:  # pragma: no cover - the network keeps every referenced output
        raise RuntimeError(f"layer {index} output was not kept")
    return out


class DarknetLayer(nn.Module):
    """Base class: ``kind`` is the cfg section name, ``sources`` the layers read from outputs."""

    kind = ""

    def __init__(self) -> None:
        super().__init__()
        self.sources: tuple[int, ...] = ()

    def forward(self, x: torch.Tensor, outputs: Outputs) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


class ConvLayer(DarknetLayer):
    """``[convolutional]``: conv (+ BatchNorm) + activation. ``conv.weight`` (F, C/g, k, k)."""

    kind = "convolutional"

    def __init__(
        self,
        c_in: int,
        filters: int,
        size: int,
        stride: tuple[int, int],
        padding: int,
        groups: int,
        batch_normalize: bool,
        activation: str,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            c_in,
            filters,
            size,
            stride=stride,
            padding=padding,
            groups=groups,
            bias=not batch_normalize,
        )
        self.bn = nn.BatchNorm2d(filters, eps=1e-5, momentum=0.01) if batch_normalize else None
        self.activation = activation
        self.packed: PackedConv | None = None  # CPU inference: see cpu_pack.pack_for_cpu

    def forward(self, x: torch.Tensor, outputs: Outputs) -> torch.Tensor:
        if self.packed is not None and self.packed.usable(x, self.conv):
            return self.packed(x)
        y = self.conv(x)
        if self.bn is not None:
            y = self.bn(y)
        return activate(y, self.activation)


class MaxPoolLayer(DarknetLayer):
    """``[maxpool]`` with Darknet's size rule and its asymmetric padding."""

    kind = "maxpool"

    def __init__(self, size: int, stride: tuple[int, int], padding: int) -> None:
        super().__init__()
        self.size = size
        self.stride = stride  # (y, x)
        self.padding = padding

    def out_size(self, h: int, w: int) -> tuple[int, int]:
        sy, sx = self.stride
        return (h + self.padding - self.size) // sy + 1, (w + self.padding - self.size) // sx + 1

    def forward(self, x: torch.Tensor, outputs: Outputs) -> torch.Tensor:
        h, w = x.shape[-2:]
        oh, ow = self.out_size(h, w)
        sy, sx = self.stride
        lead = self.padding // 2
        right = max((ow - 1) * sx + self.size - w - lead, 0)
        bottom = max((oh - 1) * sy + self.size - h - lead, 0)
        if lead or right or bottom:
            x = F.pad(x, (lead, right, lead, bottom), value=float("-inf"))
        k = self.size
        # training: max_pool2d's backward is far cheaper than maximum's; tracing (ONNX
        # export): runtimes have a fast MaxPool, 2k Slice+Max nodes cost onnxruntime 5 ms
        # on yolov3-tiny
        if (x.requires_grad and torch.is_grad_enabled()) or is_tracing():
            y = F.max_pool2d(x, k, (sy, sx))
            return y if y.shape[-2:] == (oh, ow) else y[..., :oh, :ow]
        # eager inference: max is separable, k shifted strided slices per axis beat
        # max_pool2d's kernel (which also computes argmax indices) several times over
        rows = _max_of_shifts(x, k, sy, oh, dim=2)
        return _max_of_shifts(rows, k, sx, ow, dim=3)


def _max_of_shifts(x: torch.Tensor, k: int, s: int, out: int, dim: int) -> torch.Tensor:
    """``y[i] = max(x[i * s + d] for d in range(k))`` along ``dim``, ``out`` positions."""
    span = (out - 1) * s + 1
    y: torch.Tensor | None = None
    for d in range(k):
        part = x[:, :, d : d + span : s] if dim == 2 else x[..., d : d + span : s]
        y = part if y is None else torch.maximum(y, part)
    assert y is not None
    return y


class RouteLayer(DarknetLayer):
    """``[route]``: concatenate the ``group_id``-th channel slice of each input."""

    kind = "route"

    def __init__(self, sources: Sequence[int], groups: int, group_id: int) -> None:
        super().__init__()
        self.sources = tuple(sources)
        self.groups = groups
        self.group_id = group_id

    def forward(self, x: torch.Tensor, outputs: Outputs) -> torch.Tensor:
        parts = []
        for index in self.sources:
            out = _get(outputs, index)
            if self.groups > 1:
                step = out.shape[1] // self.groups
                out = out[:, self.group_id * step : (self.group_id + 1) * step]
            parts.append(out)
        return parts[0] if len(parts) == 1 else torch.cat(parts, 1)


class ShortcutLayer(DarknetLayer):
    """``[shortcut]``: residual sum with the ``from`` layers, then the activation."""

    kind = "shortcut"

    def __init__(self, sources: Sequence[int], activation: str) -> None:
        super().__init__()
        self.sources = tuple(sources)
        self.activation = activation

    def forward(self, x: torch.Tensor, outputs: Outputs) -> torch.Tensor:
        y = x
        for index in self.sources:
            y = y + _get(outputs, index)
        return activate(y, self.activation)


class UpsampleLayer(DarknetLayer):
    """``[upsample]``: nearest neighbour by an integer ``stride``, times ``scale``."""

    kind = "upsample"

    def __init__(self, stride: int, scale: float) -> None:
        super().__init__()
        self.stride = stride
        self.scale = scale

    def forward(self, x: torch.Tensor, outputs: Outputs) -> torch.Tensor:
        y = F.interpolate(x, scale_factor=self.stride, mode="nearest")
        return y * self.scale if self.scale != 1.0 else y


class SamLayer(DarknetLayer):
    """``[sam]``: element-wise product with the ``from`` layer, then the activation."""

    kind = "sam"

    def __init__(self, source: int, activation: str) -> None:
        super().__init__()
        self.sources = (source,)
        self.activation = activation

    def forward(self, x: torch.Tensor, outputs: Outputs) -> torch.Tensor:
        return activate(x * _get(outputs, self.sources[0]), self.activation)


class ScaleChannelsLayer(DarknetLayer):
    """``[scale_channels]``: the ``from`` feature map scaled per channel (or per pixel) by ``x``."""

    kind = "scale_channels"

    def __init__(self, source: int, scale_wh: bool, activation: str) -> None:
        super().__init__()
        self.sources = (source,)
        self.scale_wh = scale_wh
        self.activation = activation

    def forward(self, x: torch.Tensor, outputs: Outputs) -> torch.Tensor:
        return activate(_get(outputs, self.sources[0]) * x, self.activation)


class DropoutLayer(DarknetLayer):
    """``[dropout]``: identity at inference; scales kept units by 1/(1-p) in training."""

    kind = "dropout"

    def __init__(self, probability: float) -> None:
        super().__init__()
        self.drop = nn.Dropout(probability)

    def forward(self, x: torch.Tensor, outputs: Outputs) -> torch.Tensor:
        y: torch.Tensor = self.drop(x)
        return y


class HeadLayer(DarknetLayer):
    """``[yolo]`` / ``[region]``: passes its input through; decoding lives in ``decode.py``."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, x: torch.Tensor, outputs: Outputs) -> torch.Tensor:
        return x
