"""Building a network checks the cfg's geometry and size before allocating anything."""

from __future__ import annotations

import pytest

from detforge.errors import DetforgeError
from detforge.models.darknet import network
from detforge.models.darknet.cfg import parse_cfg_text, read_cfg
from detforge.models.darknet.network import (
    MAX_ACTIVATION_BYTES,
    MAX_PARAM_BYTES,
    DarknetNetwork,
)
from tests.models.darknet.conftest import CFG_DIR
from tests.models.darknet.test_cfg import GOOD

# GOOD with a [maxpool] first: line 8 is [maxpool], 9 size, 10 stride, 12 [convolutional]
POOLED = GOOD.replace(
    "\n[convolutional]\n", "\n[maxpool]\nsize=2\nstride=2\n\n[convolutional]\n", 1
)


def _error(text: str) -> DetforgeError:
    with pytest.raises(DetforgeError) as err:
        DarknetNetwork(parse_cfg_text(text, path="n.cfg"))
    assert "\n" not in str(err.value) and str(err.value).startswith("n.cfg:")
    return err.value


@pytest.mark.parametrize("channels", [1, 4])
def test_only_rgb_input(channels: int) -> None:
    """detforge feeds RGB images: channels=1/4 was a torch RuntimeError at predict time."""
    err = _error(GOOD.replace("channels=3", f"channels={channels}"))
    assert err.line == 5 and f"channels={channels} is not supported" in str(err)


def test_negative_padding_is_refused() -> None:
    err = _error(GOOD.replace("pad=1", "pad=0\npadding=-5"))
    assert err.line == 13 and "padding=-5 must not be negative" in str(err)


@pytest.mark.parametrize(
    ("edit", "line", "words"),
    [
        (("size=3", "size=100"), 10, "size=100 is larger than its input (64x64, padded by 0)"),
        (("size=2", "size=100\npadding=0"), 9, "size=100 is larger than its input"),
    ],
)
def test_window_larger_than_its_padded_input(edit: tuple[str, str], line: int, words: str) -> None:
    text = (POOLED if "size=2" in edit[0] else GOOD.replace("pad=1", "pad=0")).replace(*edit)
    err = _error(text)
    assert err.line == line and words in str(err)


@pytest.mark.parametrize(
    ("edit", "line", "words"),
    [
        # the first maxpool's -inf padded copy: 641 GB
        (("size=2\nstride=2", "size=100000\nstride=2"), 8, "of activations"),
        (("size=2\nstride=2", "size=2\nstride=2\npadding=100000"), 8, "of activations"),
        (("filters=21", "filters=100000000"), 12, "of parameters"),
        (("size=3", "size=100001"), 12, "of parameters"),
        (("width = 64\nheight=64", "width=65536\nheight=65536"), 1, "for its input"),
        (("width = 64\nheight=64", "width=24000\nheight=24000"), 8, "of activations"),
    ],
)
def test_size_limits_name_the_layer_and_the_estimate(
    edit: tuple[str, str], line: int, words: str
) -> None:
    """Parameters and one image's activations are estimated from the shapes before torch
    allocates (these asked for 51 to 1800 GB), and refused past the module's limits."""
    err = _error(POOLED.replace(*edit))
    assert err.line == line and words in str(err) and "GiB" in str(err)
    assert "limit of" in str(err)


def test_limits_are_module_constants(monkeypatch: pytest.MonkeyPatch) -> None:
    assert MAX_PARAM_BYTES == 4 * 2**30 and MAX_ACTIVATION_BYTES == 8 * 2**30
    net = DarknetNetwork(parse_cfg_text(GOOD))  # 21*3*9+21 parameters, ~8.6e4 values
    assert sum(p.numel() for p in net.parameters()) == 21 * 3 * 9 + 21
    monkeypatch.setattr(network, "MAX_PARAM_BYTES", (21 * 3 * 9 + 21) * 4 - 1)
    assert "of parameters" in str(_error(GOOD))
    monkeypatch.setattr(network, "MAX_PARAM_BYTES", 4 * 2**30)
    monkeypatch.setattr(network, "MAX_ACTIVATION_BYTES", (3 * 64 * 64 + 21 * 32 * 32) * 4 - 1)
    assert "of activations" in str(_error(GOOD))


@pytest.mark.parametrize("name", ["yolov4-csp", "yolov7-tiny", "yolov4-tiny"])
def test_stock_cfgs_build_at_1280(name: str) -> None:
    """The limits leave room: stock cfgs build at 1280x1280 (yolov4-csp: 2.3 GiB of
    activations); on the meta device, shapes only."""
    import torch

    cfg = read_cfg(CFG_DIR / f"{name}.cfg")
    lines = cfg.text.splitlines()
    for key in ("width", "height"):
        lines[cfg.net.lines[key] - 1] = f"{key}=1280"
    with torch.device("meta"):
        net = DarknetNetwork(parse_cfg_text("\n".join(lines), path=cfg.path))
    assert net.input_size == (1280, 1280)


@pytest.mark.parametrize(
    ("edit", "line", "words"),
    [
        (("anchors = 10,14", "anchors = -10,14"), 17, "must be positive"),
        (("anchors = 10,14", "anchors = 0,14"), 17, "must be positive"),
        (("num=3", "num=0"), 19, "num=0 must be positive"),
        (("mask = 0,1,2\n", ""), 18, "num=3 needs 3 anchors, anchors= has 2"),
    ],
)
def test_head_anchors_and_num(edit: tuple[str, str], line: int, words: str) -> None:
    text = GOOD.replace("anchors = 10,14,  23,27,  37,58", "anchors = 10,14,  23,27")
    text = text.replace("mask = 0,1,2", "mask = 0,1") if edit[0] != "mask = 0,1,2\n" else text
    err = _error(text.replace("filters=21", "filters=14").replace(*edit))
    assert err.line == line and words in str(err)


def test_huge_num_without_mask_is_refused_not_allocated() -> None:
    """num=2147483647 without mask= once built a 2-billion-entry mask list."""
    text = GOOD.replace("mask = 0,1,2\n", "").replace("num=3", "num=2147483647")
    err = _error(text)
    assert err.line == 18 and "num=2147483647 needs 2147483647 anchors" in str(err)
