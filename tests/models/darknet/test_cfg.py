"""cfg parsing: every stock cfg builds; bad cfgs are one DetforgeError naming file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from detforge.errors import DetforgeError
from detforge.models.darknet.cfg import parse_cfg_text, read_cfg
from detforge.models.darknet.network import DarknetNetwork
from tests.models.darknet.conftest import CFG_DIR

GOOD = """[net]
# comment
width = 64
height=64
channels=3
learning_rate=0.001

[convolutional]
filters=21
size=3
stride=2
pad=1
activation=leaky

[yolo]
mask = 0,1,2
anchors = 10,14,  23,27,  37,58
classes=2
num=3
ignore_thresh=.7
nms_kind=greedynms
beta_nms=0.6
"""


@pytest.mark.parametrize(
    "name", ["yolov2-tiny", "yolov3-tiny", "yolov4-tiny", "yolov4-csp", "yolov7-tiny"]
)
def test_stock_cfgs_build(name: str) -> None:
    net = DarknetNetwork(read_cfg(CFG_DIR / f"{name}.cfg"))
    assert net.num_classes == 80
    assert net.letter_box == (name == "yolov4-csp")


def test_heads_and_settings() -> None:
    cfg = parse_cfg_text(GOOD, path="g.cfg")
    assert (cfg.width, cfg.height, cfg.net.lines["width"]) == (64, 64, 3)
    net = DarknetNetwork(cfg)
    (head,) = net.heads
    assert head.anchors == ((10, 14), (23, 27), (37, 58))
    assert (net.nms_kind, net.beta_nms, net.out_shapes[0]) == ("greedynms", 0.6, (21, 32, 32))


@pytest.mark.parametrize(
    ("edit", "line", "words"),
    [
        (("[yolo]", "[crnn]"), 15, "layer [crnn] is not supported"),
        (("activation=leaky", "activation=elu"), 13, "activation=elu is not supported"),
        (("pad=1", "dilation=2"), 12, "key 'dilation' is not supported"),
        (("classes=2", "classes=3"), 15, "needs filters=24"),
        (("num=3", "num=3\nclasses=4"), 20, "classes is set twice"),
        (("nms_kind=greedynms", "nms_kind=cornersnms"), 21, "nms_kind=cornersnms"),
        (("mask = 0,1,2", "mask = 0,1,5"), 16, "beyond the 3 given"),
        (("filters=21", "filters=x"), 9, "filters=x is not a number"),
        (("width = 64", "width"), 3, "expected key=value"),
    ],
)
def test_bad_cfg_names_file_and_line(
    edit: tuple[str, str], line: int, words: str, tmp_path: Path
) -> None:
    path = tmp_path / "bad.cfg"
    path.write_text(GOOD.replace(*edit))
    with pytest.raises(DetforgeError) as err:
        DarknetNetwork(read_cfg(path))
    assert (err.value.path, err.value.line) == (str(path), line)
    assert words in str(err.value)


def test_bad_references(tmp_path: Path) -> None:
    text = GOOD.replace("[yolo]", "[route]\nlayers=-5\n\n[yolo]")
    with pytest.raises(DetforgeError, match="not an earlier layer") as err:
        DarknetNetwork(parse_cfg_text(text, path="r.cfg"))
    assert err.value.line == 16
    with pytest.raises(DetforgeError, match="must start with a \\[net\\]"):
        parse_cfg_text(GOOD.replace("[net]", "[convolutional]"), path="n.cfg")
    (tmp_path / "bin.cfg").write_bytes(b"\0\1\2")
    with pytest.raises(DetforgeError, match="binary"):
        read_cfg(tmp_path / "bin.cfg")
