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
        (("classes=2", "classes=0"), 18, "[yolo]: classes=0 must be positive"),
        (("classes=2", "classes=-1"), 18, "[yolo]: classes=-1 must be positive"),
        (("37,58", "37,58,5"), 17, "anchors= has 7 numbers; they come in width,height pairs"),
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


@pytest.mark.parametrize(
    ("edit", "line", "words"),
    [
        (("filters=21", "filters=nan"), 9, "filters=nan is not a finite number"),
        (("filters=21", "filters=inf"), 9, "filters=inf is not a finite number"),
        (("filters=21", "filters=1e400"), 9, "filters=1e400 is not a finite number"),
        (("filters=21", "filters=-inf"), 9, "filters=-inf is not a finite number"),
        (("mask = 0,1,2", "mask = 0,1,inf"), 16, "mask=0,1,inf is not a finite number"),
        (("filters=21", "filters=4294967317"), 9, "filters=4294967317 is out of range"),
        (("filters=21", "filters=1e10"), 9, "is out of range"),
        (("mask = 0,1,2", "mask = 0,1.5,2"), 16, "must be a whole number"),
        (("beta_nms=0.6", "beta_nms=nan"), 22, "beta_nms=nan is not a finite number"),
        (("beta_nms=0.6", "scale_x_y=nan"), 22, "scale_x_y=nan is not a finite number"),
        (("ignore_thresh=.7", "ignore_thresh=inf"), 20, "ignore_thresh=inf is not a finite"),
        (("learning_rate=0.001", "learning_rate=1e400"), 6, "learning_rate=1e400 is not a"),
        (("anchors = 10,14", "anchors = nan,14"), 17, "anchors=nan,14,23,27"),
    ],
)
def test_numbers_must_be_finite_whole_and_in_range(
    edit: tuple[str, str], line: int, words: str, tmp_path: Path
) -> None:
    """nan/inf/1e400 in any key -- read as int or float, or ignored at inference -- is one
    DetforgeError at its line (it was a ValueError/OverflowError traceback, or NaN boxes)."""
    path = tmp_path / "bad.cfg"
    path.write_text(GOOD.replace(*edit))
    with pytest.raises(DetforgeError) as err:
        DarknetNetwork(read_cfg(path))
    assert (err.value.path, err.value.line) == (str(path), line)
    assert words in str(err.value)


def test_get_helpers_refuse_non_finite_values() -> None:
    """The Section number readers themselves (every key's one home) refuse nan/inf."""
    from detforge.models.darknet.cfg import Section

    section = Section("yolo", 1, {"a": "nan", "b": "inf", "c": "1,nan", "d": "2,1e400"},
                      {"a": 2, "b": 3, "c": 4, "d": 5}, path="s.cfg")  # fmt: skip
    for call, line in [
        (lambda: section.get_int("a", 0), 2),
        (lambda: section.get_float("b", 0.0), 3),
        (lambda: section.get_floats("c"), 4),
        (lambda: section.get_ints("d"), 5),
    ]:
        with pytest.raises(DetforgeError, match="is not a finite number") as err:
            call()
        assert err.value.line == line
    assert Section("net", 1, {"w": "64.0"}).get_int("w", 0) == 64


def test_utf8_bom_is_ignored(tmp_path: Path) -> None:
    """A cfg saved with a byte order mark (Windows Notepad) reads like one without."""
    path = tmp_path / "bom.cfg"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    cfg = read_cfg(path)
    assert cfg.net.name == "net" and cfg.width == 64
    assert DarknetNetwork(cfg).out_shapes == DarknetNetwork(parse_cfg_text(GOOD)).out_shapes


def test_inline_comments_end_a_value(tmp_path: Path) -> None:
    """``filters=255 # (classes + 5) * 3`` as tutorials write it: Darknet's atoi stops at the
    ``#`` (and strings keep none of it), so every key of yolov3-tiny with a comment after its
    value builds the same network, heads and all; a value that is only a comment is one
    error at its line."""
    text = (CFG_DIR / "yolov3-tiny.cfg").read_text()
    lines = [
        f"{line}  {'#' if k % 2 else ';'} was {line.split('=')[0].strip()} (x + 5) * 3"
        if "=" in line and not line.lstrip().startswith(("#", ";")) else line
        for k, line in enumerate(text.splitlines())
    ]  # fmt: skip
    commented = tmp_path / "commented.cfg"
    commented.write_text("\n".join(lines) + "\n")
    a, b = read_cfg(CFG_DIR / "yolov3-tiny.cfg"), read_cfg(commented)
    assert [s.options for s in b.layers] == [s.options for s in a.layers]
    assert b.net.options == a.net.options
    net_a, net_b = DarknetNetwork(a), DarknetNetwork(b)
    assert net_b.out_shapes == net_a.out_shapes
    assert [h.anchors for h in net_b.heads] == [h.anchors for h in net_a.heads]
    shapes = {k: v.shape for k, v in net_a.state_dict().items()}
    assert {k: v.shape for k, v in net_b.state_dict().items()} == shapes
    bad = tmp_path / "bad.cfg"
    bad.write_text(GOOD.replace("filters=21", "filters= # (classes + 5) * 3"))
    line = GOOD.splitlines().index("filters=21") + 1
    with pytest.raises(DetforgeError, match=rf"bad.cfg:{line}: \[convolutional\]: filters= is "):
        read_cfg(bad)


@pytest.mark.parametrize(
    "edit",
    [
        ("filters=21", "filters=" + "x" * 2_000_000),
        ("filters=21", "k" * 2_000_000 + "=1"),
        ("[yolo]", "[" + "y" * 2_000_000 + "]"),
        ("width = 64", "w" * 2_000_000),
        ("activation=leaky", "activation=" + "e" * 2_000_000),
        ("mask = 0,1,2", "mask = " + "0," * 1_000_000 + "9"),
    ],
)
def test_errors_quote_at_most_a_short_piece_of_a_long_line(
    edit: tuple[str, str], tmp_path: Path
) -> None:
    """A 2 MB cfg line gives a one-line error of normal length, the quote cut with '...'."""
    path = tmp_path / "long.cfg"
    path.write_text(GOOD.replace(*edit))
    with pytest.raises(DetforgeError) as err:
        DarknetNetwork(read_cfg(path))
    message = str(err.value)
    assert len(message) < 400 and "\n" not in message and "..." in message
