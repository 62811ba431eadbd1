"""Winograd F(2x2, 3x3) vs oneDNN's direct convolution, per layer of the stock Darknet cfgs.

    python bench/darknet_winograd.py [--cfg-dir ../shared/darknet/cfg] [--size 416]
        [--threads 2] [--repeat 30] [--cfgs yolov3-tiny,yolov4-tiny,yolov7-tiny,yolov4-csp]

For every distinct 3x3, stride-1, same-padded, ungrouped convolution shape (input channels,
filters, map) of the named cfgs at ``--size``, on random float32 input and weights, batch 1:

* the median time of the packed direct convolution (oneDNN's ``_convolution_pointwise`` with
  the leaky activation fused: what ``cpu_pack.PackedConv`` runs) and of
  ``winograd.WinogradConv`` followed by the in-place leaky, taking turns call by call (a
  slow spell of the machine hits both);
* their ratio, and the largest difference relative to the output's largest value;
* the choice ``winograd.suits_winograd`` makes for that shape. The choice is right where it
  says "winograd" and the ratio is above 1, or says "direct" and the ratio is below 1.

Then, per cfg, the whole network's forward pass as ``detforge.load`` runs it on a CPU
(BatchNorm folded, convolutions packed) with the suited layers by Winograd and with none,
taking turns ``--rounds`` times (10 passes each per round, on one random input), and the
median per-round ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def layer_shapes(cfg: Path, size: int) -> list[tuple[int, int, int, int]]:
    """(C, F, H, W) of each 3x3, stride-1, same-padded, ungrouped, undilated convolution of
    ``cfg`` at ``size`` x ``size``: the ones Winograd F(2x2, 3x3) could run."""
    import torch

    from detforge.models.darknet.cfg import parse_cfg_text
    from detforge.models.darknet.layers import ConvLayer
    from detforge.models.darknet.network import DarknetNetwork

    text = cfg.read_text()
    lines = [
        f"{k}={size}" if k in ("width", "height") else line
        for line in text.splitlines()
        for k in [line.split("=", 1)[0].strip()]
    ]
    net = DarknetNetwork(parse_cfg_text("\n".join(lines) + "\n", path=cfg))
    out = []
    for i, layer in enumerate(net.layers):
        if not isinstance(layer, ConvLayer):
            continue
        conv: torch.nn.Conv2d = layer.conv
        c, h, w = net.out_shapes[i - 1] if i else (3, size, size)
        if (conv.kernel_size, conv.stride, conv.padding, conv.dilation, conv.groups) == (
            (3, 3), (1, 1), (1, 1), (1, 1), 1
        ):  # fmt: skip
            out.append((c, conv.out_channels, h, w))
    return out


def time_shape(c: int, f: int, h: int, w: int, repeat: int) -> tuple[float, float, float]:
    """(direct ms, winograd ms, max |difference| / max |direct output|) for one shape."""
    import torch
    import torch.nn.functional as F

    from detforge.models.darknet.winograd import WinogradConv

    g = torch.Generator().manual_seed(c * 7 + f)
    x = torch.randn(1, c, h, w, generator=g)
    weight = torch.randn(f, c, 3, 3, generator=g) / (9 * c) ** 0.5
    bias = torch.randn(f, generator=g)
    packed = torch.ops.mkldnn._reorder_convolution_weight(
        weight, [1, 1], [1, 1], [1, 1], 1, [1, c, h, w]
    )
    wino = WinogradConv(weight, bias, (h, w))

    def direct() -> torch.Tensor:
        return torch.ops.mkldnn._convolution_pointwise(  # type: ignore[no-any-return]
            x, packed, bias, [1, 1], [1, 1], [1, 1], 1, "leaky_relu", [0.1], ""
        )

    def winograd() -> torch.Tensor:
        return F.leaky_relu_(wino(x), 0.1)

    with torch.no_grad():
        ref, got = direct(), winograd()
        err = float((ref - got).abs().max()) / float(ref.abs().max())
        times: dict[str, list[float]] = {"direct": [], "winograd": []}
        for _ in range(3):
            direct(), winograd()
        for _ in range(repeat):
            for key, fn in (("direct", direct), ("winograd", winograd)):
                start = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - start)
    return (
        statistics.median(times["direct"]) * 1e3,
        statistics.median(times["winograd"]) * 1e3,
        err,
    )


def network_ab(cfg: Path, size: int, rounds: int) -> tuple[float, float, float, int]:
    """(ms with Winograd, ms without, median per-round ratio, Winograd layers) for ``cfg``'s
    packed forward pass at ``size``, random weights, batch 1."""
    import numpy as np
    import torch

    from detforge.models.darknet.cpu_pack import pack_for_cpu
    from detforge.models.darknet.layers import ConvLayer
    from detforge.models.darknet.model import load_darknet
    from detforge.models.darknet.network import DarknetNetwork

    text = "\n".join(
        f"{k}={size}" if k in ("width", "height") else line
        for line in cfg.read_text().splitlines()
        for k in [line.split("=", 1)[0].strip()]
    )
    with tempfile.TemporaryDirectory() as tmp:
        sized = Path(tmp) / cfg.name
        sized.write_text(text + "\n")
        torch.manual_seed(0)
        base = load_darknet(sized).fused()
    nets: dict[str, DarknetNetwork] = {}
    for key in ("winograd", "direct"):
        nets[key] = base.fused()  # a copy
        assert pack_for_cpu(nets[key], winograd=key == "winograd") > 0
    count = sum(
        1
        for m in nets["winograd"].layers
        if isinstance(m, ConvLayer) and m.packed is not None and m.packed.winograd is not None
    )
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    times: dict[str, list[float]] = {k: [] for k in nets}
    with torch.no_grad():
        ref, got = nets["direct"](x), nets["winograd"](x)
        assert all(float((a - b).abs().max()) < 1e-3 for a, b in zip(ref, got, strict=True))
        for net in nets.values():
            net(x)
        for r in range(rounds):
            for key in list(nets)[r % 2 :] + list(nets)[: r % 2]:
                start = time.perf_counter()
                for _ in range(10):
                    nets[key](x)
                times[key].append((time.perf_counter() - start) / 10 * 1e3)
    ratio = float(np.median(np.array(times["direct"]) / np.array(times["winograd"])))
    return statistics.median(times["winograd"]), statistics.median(times["direct"]), ratio, count


def main() -> None:
    import torch

    from detforge.models.darknet.winograd import suits_winograd

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cfg-dir", type=Path, default=Path("../shared/darknet/cfg"))
    parser.add_argument("--cfgs", default="yolov3-tiny,yolov4-tiny,yolov7-tiny,yolov4-csp")
    parser.add_argument("--size", type=int, default=416)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=10, help="whole-network rounds [10]")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seen: dict[tuple[int, int, int, int], list[str]] = {}
    for name in args.cfgs.split(","):
        for shape in layer_shapes(args.cfg_dir / f"{name}.cfg", args.size):
            seen.setdefault(shape, []).append(name)
    print(f"{args.size} px, {args.threads} threads, torch {torch.__version__}, median of "
          f"{args.repeat} alternating calls")  # fmt: skip
    print("| C -> F | map | layers | direct ms | winograd ms | ratio | rel. diff | chosen |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | --- |")
    saved = 0.0
    for (c, f, h, w), names in sorted(seen.items(), key=lambda kv: (-kv[0][2], kv[0][:2])):
        direct, wino, err = time_shape(c, f, h, w, args.repeat)
        conv = torch.nn.Conv2d(c, f, 3, padding=1)
        chosen = "winograd" if suits_winograd(conv, h, w) else "direct"
        if chosen == "winograd":
            saved += (direct - wino) * len(names)
        counts = ", ".join(f"{n} x{names.count(n)}" for n in dict.fromkeys(names))
        print(f"| {c} -> {f} | {h}x{w} | {counts} | {direct:.2f} | {wino:.2f} | "
              f"x{direct / wino:.2f} | {err:.1e} | {chosen} |", flush=True)  # fmt: skip
    print(f"time saved by the chosen Winograd layers, all cfgs together: {saved:.1f} ms")
    print("\n| network | Winograd layers | forward ms, Winograd | forward ms, none | speed-up |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in args.cfgs.split(","):
        cfg = args.cfg_dir / f"{name}.cfg"
        wino, direct, ratio, count = network_ab(cfg, args.size, args.rounds)
        print(f"| {name} | {count} | {wino:.1f} | {direct:.1f} | x{ratio:.3f} |", flush=True)


if __name__ == "__main__":
    main()
