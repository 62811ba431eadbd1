"""Darknet cfg rewrite for N classes (hand-computed expectations from Darknet's README rule)."""

from __future__ import annotations

from pathlib import Path

import pytest

from detforge.errors import DetforgeError
from detforge.formats.darknet.cfg import default_max_batches, rewrite_cfg, rewrite_cfg_text

TINY = """\
[net]
# Training
batch=64
subdivisions=1
width=416
height=416
max_batches = 500200
policy=steps
steps=400000,450000   ; lr drops

[convolutional]
batch_normalize=1
filters=16
size=3
activation=leaky

[convolutional]
size=1
stride=1
pad=1
filters=255
activation=linear

[yolo]
mask = 3,4,5
anchors = 10,14,  23,27,  37,58,  81,82,  135,169,  344,319
classes=80
num=6

[route]
layers = -3

[convolutional]
size=1
filters=255
activation=linear

[yolo]
mask = 0,1,2
classes=80
num=6
anchors = 10,14,  23,27,  37,58,  81,82,  135,169,  344,319
"""


def test_tiny_cfg_for_three_classes() -> None:
    new, changes = rewrite_cfg_text(TINY, classes=3)
    lines = new.splitlines()
    assert lines.count("classes=3") == 2
    # (3 + 5) * 3 masks = 24 in the conv before each [yolo]; the first conv keeps 16.
    assert lines.count("filters=24") == 2 and "filters=16" in lines
    assert "max_batches = 6000" in lines  # max(2000 * 3, 6000)
    assert "steps=4800,5400   ; lr drops" in lines  # comment kept
    assert (
        "# Training" in lines
        and "anchors = 10,14,  23,27,  37,58,  81,82,  135,169,  344,319" in lines
    )
    assert [str(c) for c in changes] == [
        "line 27 [yolo] classes: 80 -> 3",
        "line 21 [convolutional] filters: 255 -> 24",
        "line 40 [yolo] classes: 80 -> 3",
        "line 35 [convolutional] filters: 255 -> 24",
        "line 7 [net] max_batches: 500200 -> 6000",
        "line 9 [net] steps: 400000,450000 -> 4800,5400",
    ]


def test_max_batches_rule_and_overrides() -> None:
    assert default_max_batches(1) == 6000
    assert default_max_batches(12) == 24000
    assert default_max_batches(2, train_images=9000) == 9000
    new, _ = rewrite_cfg_text(TINY, classes=12, max_batches=30000)
    assert "max_batches = 30000" in new and "steps=24000,27000" in new
    assert new.count("filters=51") == 2  # (12 + 5) * 3


def test_region_and_gaussian_heads() -> None:
    cfg = "[net]\n[convolutional]\nfilters=425\n[region]\nclasses=80\nnum=5\n"
    new, _ = rewrite_cfg_text(cfg, classes=2)
    assert "filters=35" in new  # (2 + 5) * 5 anchors
    cfg = "[convolutional]\nfilters=1\n[Gaussian_yolo]\nmask=0,1,2\nclasses=80\nnum=9\n"
    assert "filters=30" in rewrite_cfg_text(cfg, classes=1)[0]  # (1 + 9) * 3


def test_crlf_and_idempotence(tmp_path: Path) -> None:
    src = tmp_path / "in.cfg"
    src.write_bytes(TINY.replace("\n", "\r\n").encode())
    changes = rewrite_cfg(src, tmp_path / "out.cfg", classes=3)
    out = (tmp_path / "out.cfg").read_bytes()
    assert changes and b"classes=3\r\n" in out and b"\n" not in out.replace(b"\r\n", b"")
    assert src.read_bytes() == TINY.replace("\n", "\r\n").encode()  # source untouched
    assert rewrite_cfg(tmp_path / "out.cfg", tmp_path / "again.cfg", classes=3) == []


def test_errors() -> None:
    with pytest.raises(DetforgeError, match="not a detector cfg"):
        rewrite_cfg_text("[net]\nbatch=1\n", classes=2)
    with pytest.raises(DetforgeError, match="no \\[convolutional\\] before"):
        rewrite_cfg_text("[yolo]\nmask=0\nclasses=1\n", classes=2)
    with pytest.raises(DetforgeError, match="at least 1"):
        rewrite_cfg_text(TINY, classes=0)


def test_bom_and_non_utf8_bytes(tmp_path: Path) -> None:
    """A UTF-8 BOM no longer hides [net] (max_batches/steps were left unchanged and the
    output had a BOM line predict refused); bytes that are not UTF-8 are kept as they are
    (the strict read was a UnicodeDecodeError traceback)."""
    src = tmp_path / "bom.cfg"
    src.write_bytes(b"\xef\xbb\xbf" + TINY.encode())
    rewrite_cfg(src, tmp_path / "out.cfg", classes=3)
    out = (tmp_path / "out.cfg").read_bytes()
    assert not out.startswith(b"\xef\xbb\xbf")
    assert b"max_batches = 6000\n" in out and b"steps=4800,5400   ; lr drops" in out
    latin = TINY.encode().replace(b"# Training", b"# Gr\xf6\xdfe \xff\xfe")
    latin = latin.replace(b"classes=80\nnum=6\n\n[route]", b"classes=\xff\nnum=6\n\n[route]")
    src.write_bytes(latin)
    changes = rewrite_cfg(src, tmp_path / "latin.cfg", classes=3)
    out = (tmp_path / "latin.cfg").read_bytes()
    assert b"# Gr\xf6\xdfe \xff\xfe\n" in out and out.count(b"classes=3\n") == 2
    assert "classes: \ufffd -> 3" in "\n".join(str(c) for c in changes)  # printable
    assert src.read_bytes() == latin
    (tmp_path / "bin.cfg").write_bytes(b"[net]\0\1")
    with pytest.raises(DetforgeError, match="binary"):
        rewrite_cfg(tmp_path / "bin.cfg", tmp_path / "o.cfg", classes=3)


@pytest.mark.parametrize("max_batches", [0, -5])
def test_max_batches_must_be_positive(max_batches: int) -> None:
    with pytest.raises(DetforgeError, match="--max-batches must be at least 1"):
        rewrite_cfg_text(TINY, classes=2, max_batches=max_batches)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("width=416", "width=0", "x.cfg:5: width=0 is out of range: detforge accepts 1..8192"),
        ("height=416", "height=-8", "x.cfg:6: height=-8 is out of range: detforge accepts 1..8192"),
        ("width=416", "width=0x1a0", "x.cfg:5: width='0x1a0' is not a whole number"),
        ("batch=64", "batch=abc", "x.cfg:3: batch='abc' is not a whole number"),
        (
            "subdivisions=1",
            "subdivisions=0",
            "x.cfg:4: subdivisions=0 is out of range: detforge accepts at least 1",
        ),
    ],
)
def test_bad_net_numbers_name_file_and_line(old: str, new: str, message: str) -> None:
    """width=0 was a ZeroDivisionError traceback, batch=abc a ValueError traceback, and
    width=0x1a0 'width= is not an integer' without the file or line."""
    with pytest.raises(DetforgeError) as err:
        rewrite_cfg_text(TINY.replace(old, new, 1), classes=3, path="x.cfg")
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("num", "message"),
    [
        ("abc", "x.cfg:6: num='abc' is not a whole number"),
        ("-5", "x.cfg:6: num=-5 is out of range: detforge accepts at least 1"),
    ],
)
def test_bad_region_num_names_file_and_line(num: str, message: str) -> None:
    """num=abc was a ValueError traceback; num=-5 wrote filters=-35 into the new cfg."""
    cfg = f"[net]\n[convolutional]\nfilters=425\n[region]\nclasses=80\nnum={num}\n"
    with pytest.raises(DetforgeError) as err:
        rewrite_cfg_text(cfg, classes=2, path="x.cfg")
    assert str(err.value) == message
