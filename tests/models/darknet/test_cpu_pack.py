"""Packed CPU convolutions (cpu_pack.py): the same outputs as the plain path, and the plain
path wherever packing would not give them (gradients, changed weights, copies, tracing)."""

from __future__ import annotations

import copy
import io
from pathlib import Path

import numpy as np
import pytest
import torch

from detforge.models.darknet import cpu_pack
from detforge.models.darknet.cpu_pack import pack_for_cpu
from detforge.models.darknet.layers import ConvLayer
from detforge.models.darknet.model import forward_rows, load_darknet
from detforge.models.darknet.network import DarknetNetwork
from detforge.models.darknet.preprocess import darknet_input
from tests.models.darknet.helpers import randomize
from tests.models.darknet.test_layers import BODIES, HEAD, NET

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _net(tmp_path: Path, body: str) -> tuple[DarknetNetwork, torch.Tensor]:
    cfg = tmp_path / "net.cfg"
    cfg.write_text(NET.format(w=32, h=32) + body + HEAD.format(extra=""))
    image = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    net = load_darknet(cfg)
    randomize(net, image)
    return net.fused(), darknet_input(image, 32, 32)


def _convs(net: DarknetNetwork) -> list[ConvLayer]:
    return [m for m in net.layers if isinstance(m, ConvLayer)]


@pytest.mark.parametrize("case", ["activations", "route", "sam_scale_channels"])
def test_packed_outputs_equal_the_plain_path(tmp_path: Path, case: str) -> None:
    """Every activation (mish and the others fused or not), groups, stride 2, 1x1 and 3x3."""
    net, x = _net(tmp_path, BODIES[case])
    ref = forward_rows(net, x)
    assert pack_for_cpu(net) == len(_convs(net)) > 0
    assert all(c.packed is not None for c in _convs(net))
    got = forward_rows(net, x)
    np.testing.assert_allclose(got.numpy(), ref.numpy(), atol=1e-5, rtol=1e-5)
    two = torch.cat([x, x.flip(-1)])  # another batch size
    np.testing.assert_allclose(
        forward_rows(net, two)[1].numpy(), forward_rows(net, two[1:])[0].numpy(), atol=1e-5
    )


@pytest.mark.filterwarnings("ignore")  # torch.jit.trace's deprecation and tracer notes
def test_plain_path_where_packing_would_be_wrong(tmp_path: Path) -> None:
    net, x = _net(tmp_path, BODIES["activations"])
    pack_for_cpu(net)
    first = _convs(net)[0]
    # gradients on: the plain path (the packed op has no backward here)
    out = net(x)[0]
    assert out.requires_grad and out.grad_fn is not None
    # a weight changed in place after packing: not the stale packed weight
    with torch.no_grad():
        first.conv.weight.mul_(2.0)
    plain = copy.deepcopy(net)
    assert all(c.packed is None for c in _convs(plain))  # copies drop the packed state
    np.testing.assert_allclose(
        forward_rows(net, x).numpy(), forward_rows(plain, x).numpy(), atol=1e-6
    )
    # pickled (torch.save) without it; tracing records the plain ops
    buf = io.BytesIO()
    torch.save(net, buf)
    buf.seek(0)
    back = torch.load(buf, weights_only=False)
    assert all(c.packed is None for c in _convs(back))
    with torch.no_grad():
        traced = torch.jit.trace(net, (x,), check_trace=False)
    assert "mkldnn" not in str(traced.inlined_graph)


def test_a_mismatch_leaves_the_network_unpacked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    net, _x = _net(tmp_path, BODIES["activations"])
    monkeypatch.setattr(cpu_pack, "_agrees", lambda got, layer, x: False)
    assert pack_for_cpu(net) == 0
    assert all(c.packed is None for c in _convs(net))


def test_load_packs_a_cpu_darknet_model(tmp_path: Path) -> None:
    """``detforge.load`` of a .weights on a CPU runs packed layers; fuse=False does not."""
    import detforge
    from detforge.models.darknet.weights import write_weights

    _net(tmp_path, BODIES["activations"])
    raw = load_darknet(tmp_path / "net.cfg")
    weights = write_weights(raw, tmp_path / "net.weights")
    packed = detforge.load(weights, device="cpu").model.network
    plain = detforge.load(weights, device="cpu", fuse=False).model.network
    assert packed is not None and plain is not None
    assert all(c.packed is not None for c in _convs(packed))
    assert all(c.packed is None for c in _convs(plain))


def test_one_thread_streams_get_a_copy_packed_on_one_thread(tmp_path: Path) -> None:
    """oneDNN's packed layout suits the thread count it was packed under: the predictor's
    one-thread CPU streams ran the 2-thread packing (on a Zen 3 CPU 2.2x slower a forward
    pass). They now run their own copy, packed on one thread, with the same outputs; the
    network itself stays as it was."""
    import detforge
    from detforge.models.darknet.weights import write_weights
    from detforge.utils.cpu import torch_threads

    _, x = _net(tmp_path, BODIES["activations"])
    raw = load_darknet(tmp_path / "net.cfg")
    weights = write_weights(raw, tmp_path / "net.weights")
    with torch_threads(2):
        model = detforge.load(weights, device="cpu").model
        main_net = model.network
        assert main_net is not None
        packed_main = [c.packed for c in _convs(main_net)]
        streams = model.one_thread_above()  # partial(forward_above, the network it runs)
    one = streams.args[0]
    assert isinstance(one, DarknetNetwork) and one is not main_net
    assert model.one_thread_above().args[0] is one  # made once
    assert all(c.packed is not None for c in _convs(one))
    assert [c.packed for c in _convs(main_net)] == packed_main  # untouched
    assert all(a is not b for a, b in zip(_convs(one), _convs(main_net), strict=True))
    ref = model.rows_above(x, 0.0)[0]
    with torch_threads(1):
        got = streams(x, 0.0)[0]
    np.testing.assert_allclose(got.numpy(), ref.numpy(), atol=1e-5, rtol=1e-5)
    # a network loaded unpacked (fuse=False) runs its streams on itself
    plain = detforge.load(weights, device="cpu", fuse=False).model
    assert plain.one_thread_above() is plain.above


def test_packed_for_one_thread_packs_a_copy(tmp_path: Path) -> None:
    net, x = _net(tmp_path, BODIES["route"])
    ref = forward_rows(net, x)
    one = cpu_pack.packed_for_one_thread(net)
    assert one is not net and all(c.packed is None for c in _convs(net))
    assert all(c.packed is not None for c in _convs(one))
    np.testing.assert_allclose(forward_rows(one, x).numpy(), ref.numpy(), atol=1e-5, rtol=1e-5)
