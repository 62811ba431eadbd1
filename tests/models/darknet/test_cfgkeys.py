"""The keys that size a network are bounded when the cfg is parsed: an absurd value is one
error at its line naming the range, and no stock cfg comes near a bound."""

from __future__ import annotations

import pytest

from detforge.errors import DetforgeError
from detforge.models.darknet.cfg import parse_cfg_text, read_cfg
from detforge.models.darknet.cfgkeys import LIMITS, SECTION_KEYS
from detforge.models.darknet.network import DarknetNetwork
from tests.models.darknet.conftest import CFG_DIR
from tests.models.darknet.test_cfg import GOOD

# GOOD with a [maxpool] and an [upsample] before its convolution (maxpool on line 8)
LAYERS = GOOD.replace(
    "\n[convolutional]\n",
    "\n[maxpool]\nsize=2\nstride=2\n\n[upsample]\nstride=2\n\n[convolutional]\n",
    1,
)


_C = "[convolutional]"


@pytest.mark.parametrize(
    ("old", "new", "line", "said", "accepted"),
    [
        ("width = 64", "width = 100000", 3, "[net]: width=100000", "1..8192"),
        ("height=64", "height=0", 4, "[net]: height=0", "1..8192"),
        ("filters=21", "filters=60000", 16, f"{_C}: filters=60000", "1..16384"),
        ("filters=21", "filters=0", 16, f"{_C}: filters=0", "1..16384"),
        ("size=3", "size=301", 17, f"{_C}: size=301", "1..31"),
        ("size=3", "size=1e3", 17, f"{_C}: size=1e3", "1..31"),
        ("stride=1\n", "stride=1\nstride_x=64\n", 19, f"{_C}: stride_x=64", "1..32"),
        ("pad=1", "pad=0\npadding=-5", 20, f"{_C}: padding=-5", "0..31"),
        ("activation", "groups=100000\nactivation", 20, f"{_C}: groups=100000", "1..16384"),
        ("size=2\n", "size=100000\n", 9, "[maxpool]: size=100000", "1..128"),
        ("[upsample]", "padding=129\n\n[upsample]", 12, "[maxpool]: padding=129", "0..128"),
        ("[upsample]\nstride=2", "[upsample]\nstride=-2", 13, "[upsample]: stride=-2", "1..32"),
    ],
)
def test_sizing_keys_out_of_range_are_refused_at_their_line(
    old: str, new: str, line: int, said: str, accepted: str
) -> None:
    """width=100000 used to be refused only when the network was built, at the [net] header
    and as '112 GiB of activations'; size=301 built and ran, 20x slower than the whole
    network; filters=60000 allocated 1.2 GB of parameters."""
    text = LAYERS.replace("size=3\nstride=2", "size=3\nstride=1")
    assert old in text
    with pytest.raises(DetforgeError) as err:
        parse_cfg_text(text.replace(old, new, 1), path="k.cfg")
    assert str(err.value) == f"k.cfg:{line}: {said} is out of range: detforge accepts {accepted}"


def test_the_bounds_themselves_are_accepted() -> None:
    text = (
        LAYERS.replace("width = 64\nheight=64", "width=8192\nheight=1")
        .replace("size=2\nstride=2", "size=128\nstride=128\npadding=128")
        .replace("[upsample]\nstride=2", "[upsample]\nstride=32")
        .replace("size=3\nstride=2\npad=1", "size=31\nstride=32\npadding=31\ngroups=1")
        .replace("filters=21", "filters=16384")
    )
    cfg = parse_cfg_text(text)
    assert (cfg.width, cfg.height) == (8192, 1)
    assert [s.get_int("size", 0) for s in cfg.layers[::2]] == [128, 31]


def test_every_limited_key_is_a_key_of_its_section() -> None:
    for section, keys in LIMITS.items():
        assert set(keys) <= SECTION_KEYS[section], section


@pytest.mark.parametrize("path", sorted(CFG_DIR.glob("*.cfg")), ids=lambda p: p.stem)
def test_stock_cfgs_are_far_inside_the_limits(path: object) -> None:
    """Each limited value of a stock cfg is at most half its bound (the bounds refuse
    only the absurd), and the network builds (on the meta device: shapes only)."""
    import torch

    cfg = read_cfg(path)  # type: ignore[arg-type]
    for section in (cfg.net, *cfg.layers):
        for key, (_low, high) in LIMITS.get(section.name, {}).items():
            if section.has(key):
                assert section.get_int(key, 0) * 2 <= high, (section.name, key)
    with torch.device("meta"):
        DarknetNetwork(cfg)
