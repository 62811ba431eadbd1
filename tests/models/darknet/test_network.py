"""Building a network checks the cfg's geometry and size before allocating anything."""

from __future__ import annotations

import pytest

from detforge.errors import DetforgeError
from detforge.models.darknet.cfg import parse_cfg_text, read_cfg
from detforge.models.darknet.network import DarknetNetwork
from tests.models.darknet.conftest import CFG_DIR
from tests.models.darknet.test_cfg import GOOD

# GOOD with a [maxpool] first: line 8 is [maxpool], 9 size, 10 stride, 12 [convolutional]
POOLED = GOOD.replace(
    "\n[convolutional]\n", "\n[maxpool]\nsize=2\nstride=2\n\n[convolutional]\n", 1
)


def build_error(text: str) -> DetforgeError:
    """The one-line error building the network of cfg ``text`` (named n.cfg) raises."""
    with pytest.raises(DetforgeError) as err:
        DarknetNetwork(parse_cfg_text(text, path="n.cfg"))
    assert "\n" not in str(err.value) and str(err.value).startswith("n.cfg:")
    return err.value


_error = build_error


@pytest.mark.parametrize("channels", [1, 4])
def test_only_rgb_input(channels: int) -> None:
    """detforge feeds RGB images: channels=1/4 was a torch RuntimeError at predict time."""
    err = _error(GOOD.replace("channels=3", f"channels={channels}"))
    assert err.line == 5 and f"channels={channels} is not supported" in str(err)


@pytest.mark.parametrize(
    ("edit", "line", "words"),
    [
        (("size=3", "size=31"), 10, "size=31 is larger than its input (16x16, padded by 0)"),
        (("size=2", "size=31\npadding=0"), 9, "size=31 is larger than its input (16x16"),
    ],
)
def test_window_larger_than_its_padded_input(edit: tuple[str, str], line: int, words: str) -> None:
    text = (POOLED if "size=2" in edit[0] else GOOD.replace("pad=1", "pad=0")).replace(*edit)
    err = _error(text.replace("width = 64\nheight=64", "width=16\nheight=16"))
    assert err.line == line and words in str(err)


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


# GOOD with [reorg] and a [route] back to layer 0 after the head: 0 conv, 1 reorg, 2 conv,
# 3 yolo, 4 route, 5 conv, 6 yolo; [reorg] is on line 15
OPAQUE = GOOD.replace(
    "\n[yolo]\n", "\n[reorg]\nstride=2\n\n[convolutional]\nfilters=21\n\n[yolo]\n"
)
OPAQUE += "\n[route]\nlayers=0\n\n[convolutional]\nfilters=21\n\n[yolo]\nmask=0\n" \
    "anchors=1,2\nclasses=16\nnum=1\n"  # fmt: skip


def test_a_cfg_parsed_opaque_is_walked_around_what_detforge_does_not_run() -> None:
    """What Darknet runs and detforge does not is an error for the model, and for a cfg
    rewrite an opaque layer: its output is unknown, the checks that need it are skipped, the
    rest (references, anchors and masks, shapes of the known layers) made."""
    from detforge.models.darknet.cfg import Unsupported
    from detforge.models.darknet.network import walk_cfg

    with pytest.raises(Unsupported) as err:
        parse_cfg_text(OPAQUE, path="n.cfg")
    assert str(err.value).startswith("n.cfg:15: layer [reorg] is not supported by detforge")
    walk = walk_cfg(parse_cfg_text(OPAQUE, path="n.cfg", opaque=True))
    assert walk.unchecked == [(15, "[reorg]: a layer type detforge does not run")]
    assert [m is not None for m in walk.makers] == [True, False, False, False, True, True, True]
    assert [h.index for h in walk.build.heads] == [6]  # the head fed by layer 0's shape
    assert walk.build.shapes[5].c == 21 and walk.build.shapes[5].h == 32
    with pytest.raises(Unsupported) as err:
        DarknetNetwork(parse_cfg_text(OPAQUE, path="n.cfg", opaque=True))
    assert str(err.value) == "n.cfg:15: [reorg]: a layer type detforge does not run"
    # past the opaque layer: a head's mask, a reference; and a known layer's filters
    for old, new, line, words in [
        ("mask = 0,1,2", "mask = 0,1,3", 22, "mask=0,1,3 names anchors beyond the 3 given"),
        ("layers=0", "layers=9", 31, "layers refers to layer 9, which is not an earlier layer"),
        ("classes=16", "classes=15", 36, "the layer before has filters=21, but classes=15"),
    ]:
        with pytest.raises(DetforgeError) as err:
            walk_cfg(parse_cfg_text(OPAQUE.replace(old, new), path="n.cfg", opaque=True))
        assert err.value.line == line and words in str(err.value), str(err.value)


def test_an_unknown_key_or_activation_makes_the_layer_opaque() -> None:
    from detforge.models.darknet.network import walk_cfg

    text = GOOD.replace("activation=leaky", "activation=hard_mish\ndilation=2")
    walk = walk_cfg(parse_cfg_text(text, path="n.cfg", opaque=True))
    assert walk.unchecked == [(8, "[convolutional]: detforge does not run key 'dilation'")]
    walk = walk_cfg(parse_cfg_text(GOOD.replace("leaky", "hard_mish"), path="n.cfg", opaque=True))
    assert walk.unchecked == [
        (13, "[convolutional]: activation=hard_mish is not supported (supported: leaky, mish, "
         "swish, logistic, linear, relu, tanh)")
    ]  # fmt: skip
    assert build_error(GOOD.replace("leaky", "hard_mish")).line == 13
    gray = parse_cfg_text(GOOD.replace("channels=3", "channels=1"), path="n.cfg", opaque=True)
    assert walk_cfg(gray).unchecked == [
        (5, "[net]: channels=1 is not supported: detforge feeds the network RGB images "
         "(channels=3)")
    ]  # fmt: skip
