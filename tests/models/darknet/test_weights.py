""".weights reading and writing: byte-identical round trips, both header layouts, and clear
errors (file + reason, nothing loaded) for files that do not fit the cfg."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from detforge.errors import DetforgeError
from detforge.models.darknet.model import load_darknet
from detforge.models.darknet.weights import read_weights, weights_bytes, write_weights
from tests.models.darknet.conftest import CFG_DIR

TINY = """[net]
width=32
height=32
channels=3

[convolutional]
batch_normalize=1
filters=4
size=3
stride=1
pad=1
activation=leaky

[convolutional]
filters=4
size=3
stride=2
pad=1
groups=2
activation=linear

[convolutional]
size=1
stride=1
pad=1
filters=14
activation=linear

[yolo]
mask=0,1
anchors=4,5, 8,9
classes=2
num=2
"""
# floats per conv: 4 + 3*4 + 4*3*9 | 4 + 4*2*9 | 14 + 14*4
COUNTS = [4 + 12 + 108, 4 + 72, 14 + 56]


def _weights_file(path: Path, major: int, minor: int, seen: int, values: np.ndarray) -> bytes:
    head = struct.pack("<iii", major, minor, 0)
    head += struct.pack("<Q" if major * 10 + minor >= 2 else "<I", seen)
    data = head + values.astype("<f4").tobytes()
    path.write_bytes(data)
    return data


@pytest.mark.parametrize(("major", "minor"), [(0, 2), (0, 1), (1, 0)])
def test_read_write_read_is_byte_identical(tmp_path: Path, major: int, minor: int) -> None:
    (tmp_path / "t.cfg").write_text(TINY)
    values = np.random.default_rng(1).normal(size=sum(COUNTS)).astype(np.float32)
    values[4 + 4 + 4 : 4 + 4 + 4 + 4] = np.abs(values[12:16]) + 0.1  # variances positive
    data = _weights_file(tmp_path / "t.weights", major, minor, 123456, values)
    net = load_darknet(tmp_path / "t.cfg", tmp_path / "t.weights")
    assert (net.header.major, net.header.minor, net.header.seen) == (major, minor, 123456)
    # file order: conv0 biases -> BN bias, scales -> BN weight, mean, var, then weights
    conv0 = net.layers[0]
    assert conv0.bn is not None
    assert conv0.bn.bias.detach().numpy().tolist() == values[:4].tolist()
    assert conv0.bn.running_var.numpy().tolist() == values[12:16].tolist()
    assert conv0.conv.weight.detach().numpy().ravel().tolist() == values[16:124].tolist()
    assert net.layers[2].conv.bias.detach().numpy().tolist() == values[200:214].tolist()
    out = write_weights(net, tmp_path / "again.weights")
    assert out.read_bytes() == data
    net2 = load_darknet(tmp_path / "t.cfg", out)
    assert weights_bytes(net2) == data


def test_real_yolov3_tiny_round_trip(yolov3_tiny: Path, tmp_path: Path) -> None:
    src = yolov3_tiny / "yolov3-tiny.weights"
    net = load_darknet(yolov3_tiny / "yolov3-tiny.cfg", src)
    assert write_weights(net, tmp_path / "w.weights").read_bytes() == src.read_bytes()


@pytest.mark.parametrize("delta", [-4, 4, -2])
def test_wrong_length_is_one_error_and_loads_nothing(tmp_path: Path, delta: int) -> None:
    (tmp_path / "t.cfg").write_text(TINY)
    n = sum(COUNTS)
    data = _weights_file(tmp_path / "t.weights", 0, 2, 0, np.ones(n, np.float32))
    bad = tmp_path / "bad.weights"
    bad.write_bytes(data[:delta] if delta < 0 else data + b"\0" * delta)
    net = load_darknet(tmp_path / "t.cfg")
    before = weights_bytes(net)
    with pytest.raises(DetforgeError) as err:
        read_weights(net, bad)
    assert err.value.path == str(bad)
    assert f"t.cfg needs {n * 4:,}" in str(err.value) and "do not belong together" in str(err.value)
    assert weights_bytes(net) == before


def test_partial_file_stops_at_a_layer_boundary(tmp_path: Path) -> None:
    (tmp_path / "t.cfg").write_text(TINY)
    values = np.arange(sum(COUNTS[:2]), dtype=np.float32)
    _weights_file(tmp_path / "t.conv.2", 0, 2, 0, values)
    net = load_darknet(tmp_path / "t.cfg")
    head_before = net.layers[2].conv.weight.detach().clone()
    assert read_weights(net, tmp_path / "t.conv.2", partial=True) == 2
    assert net.layers[1].conv.weight.detach().numpy().ravel()[-1] == values[-1]
    assert torch.equal(net.layers[2].conv.weight, head_before)
    with pytest.raises(DetforgeError, match="do not belong together"):
        read_weights(net, tmp_path / "t.conv.2")


def test_not_a_weights_file(tmp_path: Path) -> None:
    (tmp_path / "t.cfg").write_text(TINY)
    net = load_darknet(tmp_path / "t.cfg")
    (tmp_path / "x.weights").write_bytes(b"PK\x03\x04" + b"\0" * 40)
    with pytest.raises(DetforgeError, match=r"not a Darknet \.weights file"):
        read_weights(net, tmp_path / "x.weights")
    (tmp_path / "short.weights").write_bytes(b"\0" * 8)
    with pytest.raises(DetforgeError, match="shorter than its"):
        read_weights(net, tmp_path / "short.weights")
    with pytest.raises(DetforgeError, match="cannot read"):
        read_weights(net, tmp_path / "missing.weights")


def test_stock_cfg_weight_counts() -> None:
    """The float counts our writer produces for yolov4-tiny equal Darknet's published file
    (yolov4-tiny.weights: 24,251,276 bytes = 20-byte header + 6,062,814 floats)."""
    net = load_darknet(CFG_DIR / "yolov4-tiny.cfg")
    assert len(weights_bytes(net)) == 24_251_276


def test_fused_copy_is_close_and_not_writable(tmp_path: Path) -> None:
    (tmp_path / "t.cfg").write_text(TINY)
    net = load_darknet(tmp_path / "t.cfg")
    with torch.no_grad():
        net.layers[0].bn.running_var.uniform_(0.5, 2.0)
        net.layers[0].bn.running_mean.uniform_(-1, 1)
    fused = net.fused()
    assert fused.layers[0].bn is None and net.layers[0].bn is not None
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(fused(x)[0], net(x)[0], atol=1e-5, rtol=1e-5)
    with pytest.raises(DetforgeError, match="fused inference copy"):
        weights_bytes(fused)


def test_size_is_checked_before_reading(tmp_path: Path) -> None:
    """A huge (sparse) .weights file is refused from its size: nothing of it is read."""
    import tracemalloc

    (tmp_path / "t.cfg").write_text(TINY)
    big = tmp_path / "big.weights"
    ones = np.ones(sum(COUNTS), np.float32)
    big.write_bytes(_weights_file(tmp_path / "ok.weights", 0, 2, 0, ones))
    with open(big, "r+b") as f:
        f.truncate(1 << 30)  # 1 GiB, sparse
    net = load_darknet(tmp_path / "t.cfg")
    tracemalloc.start()
    try:
        with pytest.raises(DetforgeError, match="do not belong together") as err:
            read_weights(net, big)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 << 20
    assert f"holds {(1 << 30) - 20:,} bytes" in str(err.value)
