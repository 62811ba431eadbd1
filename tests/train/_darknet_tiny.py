"""A tiny two-head Darknet cfg (64x64 input, strides 32 and 16) and weights written by our own
writer, for the fine-tuning tests."""

from __future__ import annotations

from pathlib import Path

import torch

ANCHORS = "6,8, 10,14, 16,12, 24,28, 36,30, 50,50"


def _conv(filters: int, size: int = 3, bn: bool = True, act: str = "leaky") -> str:
    norm = "batch_normalize=1\n" if bn else ""
    return (
        f"[convolutional]\n{norm}filters={filters}\nsize={size}\nstride=1\npad=1\n"
        f"activation={act}\n\n"
    )


def _pool() -> str:
    return "[maxpool]\nsize=2\nstride=2\n\n"


def tiny_cfg_text(classes: int, *, layers: int | None = None, extra: str = "") -> str:
    """Layers 0-10 backbone (convs at 0, 2, 4, 6, 8, 10), 11 head conv, 12 [yolo] (2x2),
    13 route to layer 8, 14 head conv, 15 [yolo] (4x4). ``layers`` keeps only the first N
    (a backbone cfg for partial ``.conv.N`` weights)."""
    f = (classes + 5) * 3
    yolo = (
        "[yolo]\nmask={mask}\nanchors=" + ANCHORS + f"\nclasses={classes}\nnum=6\n"
        "ignore_thresh=.7\ntruth_thresh=1\n" + extra + "\n"
    )
    parts = [
        _conv(8), _pool(), _conv(16), _pool(), _conv(16), _pool(), _conv(32), _pool(),
        _conv(32), _pool(), _conv(32), _conv(f, 1, bn=False, act="linear"),
        yolo.format(mask="3,4,5"), "[route]\nlayers=-5\n\n",
        _conv(f, 1, bn=False, act="linear"), yolo.format(mask="0,1,2"),
    ]  # fmt: skip
    if layers is not None:
        parts = parts[:layers]
    net = (
        "[net]\nbatch=64\nsubdivisions=1\nwidth=64\nheight=64\nchannels=3\nlearning_rate=0.001\n\n"
    )
    return net + "".join(parts)


def write_tiny_weights(
    path: Path, classes: int, *, layers: int | None = None, seed: int = 0
) -> Path:
    """Random weights for :func:`tiny_cfg_text` written by our writer (with ``layers``: cut
    after cfg layer ``layers - 1``, a partial ``.conv.N`` file); the cfg goes beside it."""
    from detforge.models.darknet.cfg import parse_cfg_text
    from detforge.models.darknet.layers import ConvLayer
    from detforge.models.darknet.network import DarknetNetwork
    from detforge.models.darknet.weights import write_weights

    net = DarknetNetwork(parse_cfg_text(tiny_cfg_text(classes)))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if t.dtype.is_floating_point:
                low = 0.9 if "running_var" in name else -0.1
                t.copy_(torch.rand(t.shape, generator=g) * 0.2 + low)
    write_weights(net, path)
    if layers is not None:
        keep = sum(
            layer.conv.weight.numel() + layer.conv.out_channels * (4 if layer.bn is not None else 1)
            for i, layer in enumerate(net.layers)
            if i < layers and isinstance(layer, ConvLayer)
        )
        path.write_bytes(path.read_bytes()[: 20 + 4 * keep])
    path.with_suffix(".cfg").write_text(tiny_cfg_text(classes))
    return path


def source_network(path: Path, classes: int) -> torch.nn.Module:
    """The network of :func:`tiny_cfg_text` with ``path``'s weights (to compare against)."""
    from detforge.models.darknet.cfg import parse_cfg_text
    from detforge.models.darknet.network import DarknetNetwork
    from detforge.models.darknet.weights import read_weights

    net = DarknetNetwork(parse_cfg_text(tiny_cfg_text(classes)))
    read_weights(net, path, partial=True)
    return net
