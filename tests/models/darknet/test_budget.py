"""A network's cost is computed from the cfg's shapes and refused past the limits before torch
allocates; layers joined at different sizes name the [net] size that caused it."""

from __future__ import annotations

import pytest

from detforge.models.darknet import budget
from detforge.models.darknet.budget import MAX_ACTIVATION_BYTES, MAX_MACS, MAX_PARAM_BYTES
from detforge.models.darknet.cfg import parse_cfg_text
from detforge.models.darknet.network import DarknetNetwork
from tests.models.darknet.test_cfg import GOOD
from tests.models.darknet.test_network import build_error

BIG_INPUT = GOOD.replace("width = 64\nheight=64", "width=8192\nheight=8192")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # every key in its range, the totals not: 16384 filters of 31x31 over 16384 channels
        (
            GOOD.replace(
                "filters=21\nsize=3",
                "filters=16384\nsize=1\n\n[convolutional]\nfilters=16384\nsize=31",
            ),
            "n.cfg:12: [convolutional]: the network would have about 961.0 GiB of parameters, "
            "above detforge's limit of 4.0 GiB: check filters= and size=",
        ),
        # 8192x8192 through 16384 filters: 1 TiB for one image
        (
            BIG_INPUT.replace("filters=21", "filters=16384"),
            "n.cfg:8: [convolutional]: one image would need about 1,024.8 GiB of activations "
            "for the layers up to this one, above detforge's limit of 8.0 GiB: lower "
            "width/height in [net] or this layer's size/padding",
        ),
        # a 31x31 window at stride 1 over 8192x8192 pixels: 4.1e12 multiply-adds
        (
            BIG_INPUT.replace("size=3\nstride=2", "size=31\nstride=1"),
            "n.cfg:8: [convolutional]: one image's forward pass would take about 4.1e12 "
            "multiply-adds up to this layer, above detforge's limit of 4e12: check filters=, "
            "size= and width/height in [net]",
        ),
    ],
)
def test_totals_past_the_limits_name_the_layer_and_the_estimate(text: str, message: str) -> None:
    assert str(build_error(text)) == message


def test_limits_are_module_constants(monkeypatch: pytest.MonkeyPatch) -> None:
    assert MAX_PARAM_BYTES == 4 * 2**30 and MAX_ACTIVATION_BYTES == 8 * 2**30
    assert MAX_MACS == 4 * 10**12
    net = DarknetNetwork(parse_cfg_text(GOOD))  # 21*3*9+21 parameters, ~8.6e4 values
    assert sum(p.numel() for p in net.parameters()) == 21 * 3 * 9 + 21
    monkeypatch.setattr(budget, "MAX_PARAM_BYTES", (21 * 3 * 9 + 21) * 4 - 1)
    assert "of parameters" in str(build_error(GOOD))
    monkeypatch.setattr(budget, "MAX_PARAM_BYTES", 4 * 2**30)
    monkeypatch.setattr(budget, "MAX_ACTIVATION_BYTES", (3 * 64 * 64 + 21 * 32 * 32) * 4 - 1)
    assert "of activations" in str(build_error(GOOD))
    monkeypatch.setattr(budget, "MAX_ACTIVATION_BYTES", 8 * 2**30)
    # the one convolution: 32x32 outputs of 21 filters over 3x3x3 inputs
    monkeypatch.setattr(budget, "MAX_MACS", 32 * 32 * 21 * 3 * 3 * 3 - 1)
    assert "multiply-adds" in str(build_error(GOOD))
    monkeypatch.setattr(budget, "MAX_MACS", 32 * 32 * 21 * 3 * 3 * 3)
    DarknetNetwork(parse_cfg_text(GOOD))


# two stride-2 convolutions, upsampled back and joined with the first: stride 4
JOINED = """[net]
width={w}
height={h}
channels=3

[convolutional]
filters=8
size=3
stride=2
pad=1

[convolutional]
filters=8
size=3
stride=2
pad=1

[upsample]
stride=2

[{join}]
{key}=-1,-3

[convolutional]
filters=21
size=1

[yolo]
mask=0,1,2
anchors=10,14,23,27,37,58
classes=2
num=3
"""


@pytest.mark.parametrize(
    ("w", "h", "join", "message"),
    [
        (
            42,
            40,
            "route",
            "n.cfg:2: [net]: width=42 is not a multiple of 4, the stride this network reaches: "
            "layers [2, 0], joined by [route] on line 21, come out with different sizes -- "
            "use width=40 or 44",
        ),
        (
            40,
            2,
            "route",
            "n.cfg:3: [net]: height=2 is not a multiple of 4, the stride this network reaches: "
            "layers [2, 0], joined by [route] on line 21, come out with different sizes -- "
            "use height=4",
        ),
        (
            42,
            42,
            "shortcut",
            "n.cfg:2: [net]: width=42 is not a multiple of 4, the stride this network reaches: "
            "layers 0 and 2, joined by [shortcut] on line 21, come out with different sizes "
            "-- use width=40 or 44",
        ),
    ],
)
def test_joined_layers_of_different_sizes_name_the_net_size(
    w: int, h: int, join: str, message: str
) -> None:
    key = "layers" if join == "route" else "from"
    text = JOINED.format(w=w, h=h, join=join, key=key)
    if join == "shortcut":
        text = text.replace("from=-1,-3", "from=-3")
    assert str(build_error(text)) == message
    good = JOINED.format(w=40, h=40, join=join, key=key).replace("from=-1,-3", "from=-3")
    assert DarknetNetwork(parse_cfg_text(good)).out_shapes[3][1:] == (20, 20)


def test_joined_layers_of_different_strides_are_named_at_the_join() -> None:
    """With a [net] size that is a multiple of every stride, the join itself is wrong."""
    text = JOINED.format(w=40, h=40, join="route", key="layers").replace(
        "layers=-1,-3", "layers=-2,-3"
    )
    assert str(build_error(text)) == "n.cfg:22: [route]: layers [1, 0] have different sizes"


SQUEEZED = """[net]
width=42
height=40
channels=3

[convolutional]
filters=8
size=3
stride=2
pad=1

[maxpool]
size=20
stride=20
padding=0

[convolutional]
filters=8
size=1
activation=logistic

[scale_channels]
from=-3

[convolutional]
filters=8
size=3
stride=2
pad=1

[upsample]
stride=2

[route]
layers=-1,3
"""


def test_a_pool_over_the_whole_map_does_not_change_the_multiple_asked_for() -> None:
    """A squeeze-and-excitation block pools layer 0's 21x20 map at stride 20; the scaled map
    keeps layer 0's stride 2, so the route's mismatch needs multiples of 4, not of 40."""
    assert str(build_error(SQUEEZED)) == (
        "n.cfg:2: [net]: width=42 is not a multiple of 4, the stride this network reaches: "
        "layers [5, 3], joined by [route] on line 34, come out with different sizes -- use "
        "width=40 or 44"
    )
