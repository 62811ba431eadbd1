"""Every supported layer type on small generated cfgs, against OpenCV's Darknet importer and
hand-computed values."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from detforge.models.darknet.cfg import parse_cfg_text
from detforge.models.darknet.layers import MaxPoolLayer
from detforge.models.darknet.model import load_darknet
from detforge.models.darknet.network import DarknetNetwork
from detforge.models.darknet.preprocess import darknet_input
from detforge.models.darknet.weights import write_weights
from tests.models.darknet.helpers import assert_rows_match, ours_and_opencv, randomize

NET = "[net]\nwidth={w}\nheight={h}\nchannels=3\n\n"
HEAD = """
[convolutional]
size=1
stride=1
pad=1
filters=21
activation=linear

[yolo]
mask=0,1,2
anchors=4,5, 8,9, 12,10
classes=2
num=3
{extra}
"""


def conv(
    filters: int, size: int = 3, stride: int = 1, act: str = "leaky", bn: int = 1, groups: int = 1
) -> str:
    return (
        f"[convolutional]\nbatch_normalize={bn}\nfilters={filters}\nsize={size}\n"
        f"stride={stride}\npad=1\ngroups={groups}\nactivation={act}\n\n"
    )


BODIES = {
    "activations": conv(8, act="mish")
    + conv(8, act="swish", groups=2)
    + conv(8, act="logistic")
    + conv(8, act="linear", bn=0)
    + conv(8, act="relu")
    + conv(16, stride=2, act="tanh"),
    "maxpool": conv(8)
    + "[maxpool]\nsize=2\nstride=1\n\n"
    + "[maxpool]\nsize=5\nstride=1\n\n"
    + "[maxpool]\nsize=2\nstride=2\n\n"
    + "[maxpool]\nsize=3\nstride=2\n\n"
    + conv(8),
    "route": conv(16)
    + "[route]\nlayers=-1\ngroups=2\ngroup_id=1\n\n"
    + conv(8)
    + "[route]\nlayers=-1,-2\n\n"
    + "[route]\nlayers=0,-1\n\n"
    + "[route]\nlayers=-1\ngroups=4\ngroup_id=2\n\n"
    + conv(8),
    "shortcut_upsample": conv(8) + conv(8, stride=2) + conv(8) + "[shortcut]\nfrom=-2\n"
    "activation=leaky\n\n"
    + "[upsample]\nstride=2\n\n"
    + "[shortcut]\nfrom=0\n\n"
    + "[dropout]\nprobability=.3\n\n"
    + conv(8),
    "sam_scale_channels": conv(8)
    + conv(8, act="logistic")
    + "[sam]\nfrom=-2\n\n"
    + "[maxpool]\nsize=32\nstride=32\npadding=0\n\n"
    + conv(8, size=1, act="logistic", bn=0)
    + "[scale_channels]\nfrom=-3\n\n"
    + conv(8),
}


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


@pytest.mark.parametrize("case", sorted(BODIES))
@pytest.mark.parametrize("extra", ["", "scale_x_y=1.1"])
def test_generated_cfg_matches_opencv(case: str, extra: str, tmp_path: Path) -> None:
    cfg = tmp_path / "net.cfg"
    cfg.write_text(NET.format(w=32, h=32) + BODIES[case] + HEAD.format(extra=extra))
    image = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    net = load_darknet(cfg)
    randomize(net, image)
    weights = write_weights(net, tmp_path / "net.weights")
    x = darknet_input(image, 32, 32)
    ours, ref = ours_and_opencv(net, cfg, weights, x)
    assert_rows_match(ours, ref)


def test_new_coords_decoding_by_hand() -> None:
    text = (
        NET.format(w=32, h=32)
        + conv(8, stride=32)
        + HEAD.format(extra="new_coords=1\nscale_x_y=2.0").replace(
            "activation=linear", "activation=logistic"
        )
    )
    net = DarknetNetwork(parse_cfg_text(text)).eval()
    from detforge.models.darknet.decode import decode_head

    raw = torch.full((1, 21, 1, 1), 0.25)
    rows = decode_head(raw, net.heads[0], 32, 32)[0]
    # x = (0 + 2 * 0.25 - 0.5) / 1 = 0; w = 4 * 0.25**2 * anchor_w / 32
    assert rows[0, 0].item() == pytest.approx(0.0)
    assert rows[:, 2].tolist() == pytest.approx([4 * 0.0625 * a / 32 for a in (4, 8, 12)])
    assert rows[:, 4].tolist() == pytest.approx([0.25] * 3)  # no activation with new_coords


def test_decode_above_ends_and_region_heads() -> None:
    """decode_above at the extremes: nothing above 1 (empty (0, 5 + C) rows per image), every
    row above -1 (all of decode_all's, in order); a [region] head takes the full decoding."""
    from detforge.models.darknet.decode import decode_above, decode_all

    text = NET.format(w=64, h=64) + conv(8, stride=32) + HEAD.format(extra="scale_x_y=1.05")
    net = DarknetNetwork(parse_cfg_text(text)).eval()
    raw = [torch.randn(2, 21, 2, 2, generator=torch.Generator().manual_seed(0))]
    with torch.no_grad():
        full = decode_all(raw, net.heads, 64, 64)
        assert [tuple(r.shape) for r in decode_above(raw, net.heads, 64, 64, 1.0)] == [(0, 7)] * 2
        for got, want in zip(decode_above(raw, net.heads, 64, 64, -1.0), full, strict=True):
            torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    region = DarknetNetwork(parse_cfg_text(
        NET.format(w=64, h=64) + conv(12, stride=32)
        + "[region]\nanchors=1,1, 2,2\nclasses=1\nnum=2\nsoftmax=1\n"
    )).eval()  # fmt: skip
    raw = [torch.randn(1, 12, 2, 2)]
    with torch.no_grad():
        full = decode_all(raw, region.heads, 64, 64)[0]
        (got,) = decode_above(raw, region.heads, 64, 64, 0.5)
    torch.testing.assert_close(got, full[full[:, 4] > 0.5], rtol=0, atol=0)


@pytest.mark.parametrize(("size", "stride", "w"), [(2, 1, 5), (2, 2, 5), (3, 2, 6), (5, 1, 4)])
def test_maxpool_padding_rule_by_hand(size: int, stride: int, w: int) -> None:
    x = torch.arange(w * w, dtype=torch.float32).view(1, 1, w, w) * -1.0  # max at top-left
    y = MaxPoolLayer(size, (stride, stride), size - 1)(x, [])
    out = (w + size - 1 - size) // stride + 1
    lead = (size - 1) // 2
    expect = torch.empty(out, out)
    for i in range(out):
        for j in range(out):
            r0, c0 = max(i * stride - lead, 0), max(j * stride - lead, 0)
            expect[i, j] = x[0, 0, r0, c0]  # the window's first valid pixel is its max
    assert torch.equal(y[0, 0], expect)


def test_route_groups_over_several_inputs_by_hand() -> None:
    """OpenCV cannot import groups= with several inputs; Darknet takes the group_id-th slice
    of each input in turn (route_layer.c)."""
    from detforge.models.darknet.layers import RouteLayer

    a = torch.arange(4.0).view(1, 4, 1, 1)
    b = torch.arange(10.0, 16.0).view(1, 6, 1, 1)
    y = RouteLayer([0, 1], groups=2, group_id=1)(b, [a, b])
    assert y.flatten().tolist() == [2.0, 3.0, 13.0, 14.0, 15.0]
