"""Convolutions packed for CPU inference: oneDNN's blocked weights with the activation fused,
or Winograd's F(2x2, 3x3) where that is faster (:mod:`.winograd`).

``F.conv2d`` on a CPU hands a plain ``(F, C, k, k)`` weight to oneDNN, which reorders it into
its blocked layout on every call; then the activation is a second pass over the output.
:func:`pack_for_cpu` reorders each convolution's weight once
(``torch.ops.mkldnn._reorder_convolution_weight``) and runs it with the activation fused
(``torch.ops.mkldnn._convolution_pointwise``, the kernels PyTorch's own compiler emits for
CPUs). yolov3-tiny at 416 on 2 cores: 39.5 -> 29.8 ms a forward pass; yolov4-tiny 45.6 ->
35.7 ms; outputs within ~1e-5 of the plain path. The 3x3 layers with many channels on small
maps then run as Winograd F(2x2, 3x3) instead (:func:`.winograd.suits_winograd`: 4 of
yolov4-tiny's 21 convolutions, 4 of yolov3-tiny's 13): their forward passes x1.085 and x1.105
(docs/benchmarks.md).

A packed layer is used only where it gives the same answer: gradients off, a float32 CPU
input, not while tracing (an ONNX export), and the convolution's weight and bias unchanged
since it was packed (the same module and tensors, same storage, same version counter:
``load_state_dict``, an optimizer step, an in-place edit or a new weight, bias or
convolution makes the layer fall back to the plain path). Each packed layer is
checked against the plain path on a random input when packed; a torch without these ops, or
any mismatch, leaves the network unpacked. A packed state is not copied or pickled (copies
run the plain path).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from detforge.models.darknet.layers import ConvLayer, activate
from detforge.models.darknet.winograd import WinogradConv, suits_winograd
from detforge.models.tracing import is_tracing

if TYPE_CHECKING:
    from detforge.models.darknet.network import DarknetNetwork

# Darknet activation -> (oneDNN post-op, its scalars); others run after the fused conv
_FUSED = {
    "linear": ("none", []),
    "leaky": ("leaky_relu", [0.1]),
    "relu": ("relu", []),
    "logistic": ("sigmoid", []),
    "tanh": ("tanh", []),
    "swish": ("swish", []),
}


def _none() -> None:
    return None


class PackedConv:
    """One ``[convolutional]`` layer's packed weight and fused activation (module
    docstring). ``usable(x, conv)`` says whether the packed path applies to input ``x``;
    calling it maps ``(B, C, H, W)`` to the layer's activated output."""

    def __init__(
        self, layer: ConvLayer, hint: tuple[int, int, int, int], *, winograd: bool = True
    ) -> None:
        conv = layer.conv
        # what was packed: the convolution, its weight and bias tensors and their states (the
        # Winograd kernel holds a copy of the bias; oneDNN's reads it in place)
        self._conv = conv
        self._params = (conv.weight, conv.bias)
        self._states = _states(conv)
        self.padding = [int(v) for v in conv.padding]  # type: ignore[union-attr]
        self.stride = [int(v) for v in conv.stride]
        self.dilation = [int(v) for v in conv.dilation]
        self.groups = int(conv.groups)
        w = conv.weight.detach()
        self.bias = None if conv.bias is None else conv.bias.detach()
        self.activation = layer.activation
        self.winograd: WinogradConv | None = None
        if winograd and suits_winograd(conv, hint[2], hint[3]):
            self.winograd = WinogradConv(w, self.bias, (hint[2], hint[3]))
            return
        self.weight = torch.ops.mkldnn._reorder_convolution_weight(
            w, self.padding, self.stride, self.dilation, self.groups, list(hint)
        )
        fused = _FUSED.get(layer.activation)
        self.attr, self.scalars = fused if fused else ("none", [])
        self.after = None if fused else layer.activation

    def usable(self, x: torch.Tensor, conv: torch.nn.Conv2d) -> bool:
        """Whether the packed path gives ``conv(x)`` (+ activation): ``conv`` is the module
        packed, with the same weight and bias tensors, unchanged since (module docstring)."""
        return (
            not torch.is_grad_enabled()
            and x.device.type == "cpu"
            and x.dtype == torch.float32
            and conv is self._conv
            and conv.weight is self._params[0]
            and conv.bias is self._params[1]
            and _states(conv) == self._states
            and not is_tracing()
        )

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.winograd is not None:
            y = self.winograd(x)  # a fresh tensor: leaky and relu may run in place
            if self.activation == "leaky":
                return F.leaky_relu_(y, 0.1)
            return F.relu_(y) if self.activation == "relu" else activate(y, self.activation)
        y = torch.ops.mkldnn._convolution_pointwise(
            x, self.weight, self.bias, self.padding, self.stride, self.dilation, self.groups,
            self.attr, self.scalars, "",
        )  # fmt: skip
        return y if self.after is None else activate(y, self.after)

    def __deepcopy__(self, memo: dict[int, Any]) -> None:
        return None  # the blocked weight cannot be copied; a copy runs the plain path

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return _none, ()


def pack_for_cpu(net: DarknetNetwork, *, winograd: bool = True) -> int:
    """Pack every batch-norm-free convolution of ``net`` (a fused inference copy: see
    :meth:`DarknetNetwork.fused`) for CPU inference, in place; returns how many were packed
    (0 where torch lacks the oneDNN ops or a packed layer disagrees with the plain one).
    ``winograd=False``: no layer runs as Winograd F(2x2, 3x3), every one by oneDNN."""
    convs = [
        (i, layer)
        for i, layer in enumerate(net.layers)
        if isinstance(layer, ConvLayer) and layer.bn is None
    ]
    if not convs:
        return 0
    gen = torch.Generator().manual_seed(0)
    try:
        with torch.no_grad():
            for i, layer in convs:
                c, h, w = net.out_shapes[i - 1] if i else (net.cfg.channels, *_hw(net))
                packed = PackedConv(layer, (1, c, h, w), winograd=winograd)
                x = torch.rand(1, c, min(h, 24), min(w, 24), generator=gen)
                if not packed.usable(x, layer.conv) or not _agrees(packed(x), layer, x):
                    raise RuntimeError(f"packed layer {i} disagrees")
                layer.packed = packed
    except (RuntimeError, AttributeError, TypeError):  # no such op here, or a mismatch
        for _, layer in convs:
            layer.packed = None
        return 0
    return len(convs)


def packed_for_one_thread(net: DarknetNetwork, *, winograd: bool = True) -> DarknetNetwork:
    """A copy of ``net`` packed (:func:`pack_for_cpu`) while torch runs one thread, for the
    one-thread CPU streams of a predictor: oneDNN picks its kernels, and so the packed weight
    layout, for the thread count at packing time; a layout packed on 2 threads and run on 1
    is reordered on every call (yolov3-tiny at 416: 110 ms a forward pass on 1 thread,
    against 51 ms packed on 1 thread). The copy holds its own weights."""
    import copy

    from detforge.utils.cpu import torch_threads

    with torch_threads(1):
        out = copy.deepcopy(net)  # a packed state is not copied: it is packed again here
        pack_for_cpu(out, winograd=winograd)
    return out


def _states(conv: torch.nn.Conv2d) -> tuple[tuple[int, int], ...]:
    """What an in-place change or a new storage of ``conv``'s weight or bias changes: their
    (version counter, data pointer)."""
    return tuple((t._version, t.data_ptr()) for t in (conv.weight, conv.bias) if t is not None)


def _hw(net: DarknetNetwork) -> tuple[int, int]:
    w, h = net.input_size
    return h, w


def _agrees(got: torch.Tensor, layer: ConvLayer, x: torch.Tensor) -> bool:
    ref = activate(layer.conv(x), layer.activation)
    scale = float(ref.abs().max()) + 1.0
    return got.shape == ref.shape and float((got - ref).abs().max()) <= 1e-4 * scale
