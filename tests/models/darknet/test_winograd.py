"""Winograd F(2x2, 3x3) convolutions (winograd.py) against a float64 direct convolution, and
which layers pack_for_cpu runs with them."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from detforge.models.darknet.cpu_pack import pack_for_cpu
from detforge.models.darknet.layers import ConvLayer
from detforge.models.darknet.model import forward_rows, load_darknet
from detforge.models.darknet.preprocess import darknet_input
from detforge.models.darknet.winograd import WinogradConv, suits_winograd
from tests.models.darknet.helpers import randomize
from tests.models.darknet.test_layers import HEAD, NET, conv

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _reference(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    bias = None if b is None else b.double()
    return F.conv2d(x.double(), w.double(), bias, padding=1).float()


@pytest.mark.parametrize(
    ("batch", "c", "f", "h", "w", "bias"),
    [
        (1, 8, 16, 6, 6, True),  # whole tiles
        (1, 16, 8, 7, 5, True),  # odd sizes: the last tile row and column are cropped
        (2, 24, 40, 13, 13, False),  # a batch, no bias
        (1, 3, 5, 1, 1, True),  # a single pixel
        (3, 32, 32, 4, 9, True),
    ],
)
def test_equals_the_direct_convolution(
    batch: int, c: int, f: int, h: int, w: int, bias: bool
) -> None:
    g = torch.Generator().manual_seed(c * 100 + f)
    x = torch.randn(batch, c, h, w, generator=g)
    weight = torch.randn(f, c, 3, 3, generator=g) / (9 * c) ** 0.5
    b = torch.randn(f, generator=g) if bias else None
    got = WinogradConv(weight, b, (h, w))(x)
    want = _reference(x, weight, b)
    assert got.shape == want.shape == (batch, f, h, w)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=0, atol=2e-6)


def test_takes_any_input_layout() -> None:
    """Channels-last input (what a Winograd layer hands the next one), a channel slice (a
    route with groups) and a cropped view give the same result as a contiguous copy."""
    g = torch.Generator().manual_seed(1)
    weight = torch.randn(6, 4, 3, 3, generator=g)
    conv = WinogradConv(weight, None, (9, 9))
    big = torch.randn(2, 8, 11, 10, generator=g)
    for x in (
        big[:, :4, :9, :9].contiguous(memory_format=torch.channels_last),
        big[:, 4:, 1:10, :9],
        big[:, 2:6, 2:, 1:].permute(0, 1, 3, 2)[:, :, :8],
    ):
        want = _reference(x.contiguous(), weight, None)
        np.testing.assert_allclose(conv(x).numpy(), want.numpy(), rtol=0, atol=1e-5)


def test_which_convolutions_suit() -> None:
    def c(ci: int, f: int, **kw: int) -> torch.nn.Conv2d:
        k = kw.pop("k", 3)
        return torch.nn.Conv2d(ci, f, k, padding=kw.pop("padding", k // 2), bias=False, **kw)

    assert suits_winograd(c(256, 256), 26, 26)
    assert suits_winograd(c(384, 256), 26, 26)
    assert suits_winograd(c(512, 1024), 13, 13)
    assert not suits_winograd(c(64, 64), 26, 26)  # few channels: the transforms cost more
    assert not suits_winograd(c(256, 256), 13, 13)  # too little work for their fixed costs
    assert not suits_winograd(c(256, 256), 104, 104)  # a large map: the same
    assert not suits_winograd(c(256, 256, stride=2), 26, 26)
    assert not suits_winograd(c(256, 256, groups=2), 26, 26)
    assert not suits_winograd(c(256, 256, dilation=2, padding=2), 26, 26)
    assert not suits_winograd(c(256, 256, padding=0), 26, 26)
    assert not suits_winograd(c(256, 256, k=1), 26, 26)
    assert not suits_winograd(c(256, 256, k=5), 26, 26)


def test_pack_for_cpu_runs_suited_layers_by_winograd(tmp_path: Path) -> None:
    """A network with one suited 3x3 layer (256 -> 256 channels on a 16x16 map, leaky) and
    unsuited ones: the packed network's rows equal the plain network's."""
    cfg = tmp_path / "net.cfg"
    body = conv(64, stride=2) + conv(256, stride=2) + conv(256) + conv(16)
    cfg.write_text(NET.format(w=64, h=64) + body + HEAD.format(extra=""))
    image = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    net = load_darknet(cfg)
    randomize(net, image)
    fused = net.fused()
    x = darknet_input(image, 64, 64)
    ref = forward_rows(fused, x)
    convs = [m for m in fused.layers if isinstance(m, ConvLayer)]
    assert pack_for_cpu(fused) == len(convs)
    wino = [m.packed is not None and m.packed.winograd is not None for m in convs]
    assert wino == [False, False, True, False, False]
    np.testing.assert_allclose(forward_rows(fused, x).numpy(), ref.numpy(), rtol=0, atol=1e-5)
    plain = net.fused()
    assert pack_for_cpu(plain, winograd=False) == len(convs)
    assert all(m.packed is not None and m.packed.winograd is None for m in plain.layers
               if isinstance(m, ConvLayer))  # fmt: skip
    np.testing.assert_allclose(forward_rows(plain, x).numpy(), ref.numpy(), rtol=0, atol=1e-5)
    pair = torch.cat([x, x.flip(-1)])
    np.testing.assert_allclose(  # another batch size
        forward_rows(fused, pair)[1].numpy(), forward_rows(fused, pair[1:])[0].numpy(), atol=1e-5
    )


def test_a_bias_changed_after_packing_is_not_stale(tmp_path: Path) -> None:
    """The Winograd kernel holds a copy of the bias (oneDNN's packed layer reads it in
    place): a bias edited in place after packing must not leave it running the old one."""
    cfg = tmp_path / "net.cfg"
    body = conv(64, stride=2) + conv(256, stride=2) + conv(256) + conv(16)
    cfg.write_text(NET.format(w=64, h=64) + body + HEAD.format(extra=""))
    image = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    net = load_darknet(cfg)
    randomize(net, image)
    fused = net.fused()
    pack_for_cpu(fused)
    layer = fused.layers[2]
    assert isinstance(layer, ConvLayer) and layer.packed is not None
    assert layer.packed.winograd is not None and layer.conv.bias is not None
    with torch.no_grad():
        layer.conv.bias.add_(0.5)
    x = darknet_input(image, 64, 64)
    want = forward_rows(copy.deepcopy(fused), x)  # a copy runs the plain path
    np.testing.assert_allclose(forward_rows(fused, x).numpy(), want.numpy(), rtol=0, atol=1e-5)


@pytest.mark.parametrize("what", ["weight", "bias", "convolution"])
@pytest.mark.parametrize("winograd", [True, False])
def test_new_parameters_or_a_new_convolution_after_packing_are_not_stale(
    tmp_path: Path, winograd: bool, what: str
) -> None:
    """A weight or bias replaced by a new tensor, or the convolution by a new module, after
    packing: the packed layer (Winograd or oneDNN) steps aside for the plain path."""
    cfg = tmp_path / "net.cfg"
    body = conv(64, stride=2) + conv(256, stride=2) + conv(256) + conv(16)
    cfg.write_text(NET.format(w=64, h=64) + body + HEAD.format(extra=""))
    image = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    net = load_darknet(cfg)
    randomize(net, image)
    fused = net.fused()
    pack_for_cpu(fused, winograd=winograd)
    layer = fused.layers[2]
    assert isinstance(layer, ConvLayer) and layer.packed is not None
    assert (layer.packed.winograd is not None) == winograd and layer.conv.bias is not None
    x = darknet_input(image, 64, 64)
    with torch.no_grad():
        if what == "weight":
            layer.conv.weight = torch.nn.Parameter(layer.conv.weight * 1.5)
        elif what == "bias":
            layer.conv.bias = torch.nn.Parameter(layer.conv.bias + 0.5)
        else:
            other = copy.deepcopy(layer.conv)
            other.weight.mul_(0.5)
            layer.conv = other
    want = forward_rows(copy.deepcopy(fused), x)  # a copy runs the plain path
    np.testing.assert_allclose(forward_rows(fused, x).numpy(), want.numpy(), atol=1e-5)
