"""3x3 convolutions by Winograd's minimal filtering F(2x2, 3x3), for CPU inference.

A direct 3x3 convolution spends 9 multiplies per output and input channel pair. Winograd's
F(2x2, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016) gets
each 2x2 output tile from a 4x4 input tile with 16, i.e. 4 per output: 2.25x fewer. It is
what OpenCV's DNN module does on CPUs (as F(6x6, 3x3)); oneDNN, under PyTorch, runs direct
convolutions only, already close to the CPU's float32 peak, so fewer multiplies is the one
way left to a faster layer. Per image, with ``d`` a 4x4 input tile (stride 2, the input
zero-padded by 1) and ``g`` a 3x3 kernel:

    y = A^T [ sum over input channels of (G g G^T) * (B^T d B) ] A      (2x2 outputs)

* ``B^T d B`` (the input transform) and ``A^T m A`` (the output transform) take only
  additions and subtractions; they run here as a few strided torch ops over channels-last
  (NHWC) tensors, so each pass reads whole channel vectors;
* ``G g G^T`` is computed once, in float64, when the layer is packed;
* the sum over input channels is 16 independent matrix products, one per tile position,
  run as one grouped 1x1 convolution (16 groups) by oneDNN at its full speed.

The output is the layer's (B, F, H, W) tensor in channels-last memory: oneDNN's later
convolutions take that layout natively. Results differ from the direct convolution by
float32 rounding only (~1e-6 relative: F(2x2, 3x3) has the smallest error of the family).
Where this wins is decided by :func:`suits_winograd`, from timings of the layer shapes of
the stock Darknet networks (``bench/darknet_winograd.py``): layers with many channels on
small maps; on large maps with few channels the transforms' memory traffic costs more than
the multiplies saved.
"""

from __future__ import annotations

import torch

# G (4x3), the kernel transform of F(2x2, 3x3); B^T and A^T are written out as the adds in
# WinogradConv.__call__:  B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
# A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]
_G = ((1.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0.0, 0.0, 1.0))

# suits_winograd: where F(2x2, 3x3) won in bench/darknet_winograd.py (2 cores, AVX-512):
# enough channels (C * F / (C + F): 192x192, 128x384, 256x256 ...), a map no larger than
# 40x40, and enough work for the transforms' fixed costs (256 -> 256 on 13x13, 100 M
# multiply-adds, lost; 256 -> 512 on 13x13, 200 M, won)
MIN_CHANNEL_PRODUCT = 96.0
MAX_MAP_PIXELS = 40 * 40
MIN_MULTIPLY_ADDS = 150e6


def suits_winograd(conv: torch.nn.Conv2d, height: int, width: int) -> bool:
    """Whether ``conv`` (on a ``height`` x ``width`` input) is a 3x3, stride-1, same-padded,
    ungrouped, undilated convolution on which F(2x2, 3x3) is faster than oneDNN's direct
    kernel (module docstring)."""
    c, f = conv.in_channels, conv.out_channels
    return (
        tuple(conv.kernel_size) == (3, 3)
        and tuple(conv.stride) == (1, 1)
        and tuple(conv.dilation) == (1, 1)
        and tuple(conv.padding) == (1, 1)  # type: ignore[arg-type]
        and conv.groups == 1
        and conv.padding_mode == "zeros"
        and c * f / (c + f) >= MIN_CHANNEL_PRODUCT
        and height * width <= MAX_MAP_PIXELS
        and 9 * c * f * height * width >= MIN_MULTIPLY_ADDS
    )


class WinogradConv:
    """One 3x3 convolution's transformed kernel; calling it maps ``x`` (B, C, H, W), any
    memory layout, to ``conv(x)`` (B, F, H, W) in channels-last memory (module docstring).
    ``hint`` is the (height, width) the layer usually sees (oneDNN picks its layout by it)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, hint: tuple[int, int]):
        f, c = int(weight.shape[0]), int(weight.shape[1])
        self.channels, self.filters = c, f
        g = torch.tensor(_G, dtype=torch.float64)
        # U[i, l, o, c] = (G w[o, c] G^T)[i, l]: one (F, C) matrix per tile position
        u = torch.einsum("ij,ocjk,lk->iloc", g, weight.detach().double(), g)
        grouped = u.reshape(16 * f, c, 1, 1).float()
        b = torch.zeros(16, f)
        if bias is not None:
            # A^T's rows both hold a 1 at index 1: tile position (1, 1) reaches every output
            # with weight 1, so the bias added there is added to each output once
            b[5] = bias.detach().float()
        self.bias = b.reshape(-1)
        nh, nw = (hint[0] + 1) // 2, (hint[1] + 1) // 2
        self.weight = torch.ops.mkldnn._reorder_convolution_weight(
            grouped, [0, 0], [1, 1], [1, 1], 16, [1, 16 * c, nh, nw]
        )

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        bsz, c, h, w = x.shape
        nh, nw = (h + 1) // 2, (w + 1) // 2  # 2x2 output tiles
        # the input, zero-padded by 1 (and to whole tiles), in NHWC: (B, 2nh + 2, 2nw + 2, C)
        xp = x.new_empty(bsz, 2 * nh + 2, 2 * nw + 2, c)
        xp[:, 0].zero_()
        xp[:, 1 + h :].zero_()
        xp[:, 1 : 1 + h, 0].zero_()
        xp[:, 1 : 1 + h, 1 + w :].zero_()
        xp[:, 1 : 1 + h, 1 : 1 + w] = x.permute(0, 2, 3, 1)
        # B^T d: along the tile rows, over every column: r[k] (B, nh, 2nw + 2, C)
        d = [xp[:, j : j + 2 * nh : 2] for j in range(4)]
        r = x.new_empty(4, bsz, nh, 2 * nw + 2, c)
        torch.sub(d[0], d[2], out=r[0])
        torch.add(d[1], d[2], out=r[1])
        torch.sub(d[2], d[1], out=r[2])
        torch.sub(d[1], d[3], out=r[3])
        # (B^T d) B: along the tile columns, into v (B, nh, nw, 4, 4, C), i.e. NHWC with
        # 16 x C channels, tile position major
        v = x.new_empty(bsz, nh, nw, 4, 4, c)
        vp = v.permute(3, 0, 1, 2, 4, 5)  # (4 rows, B, nh, nw, 4 cols, C)
        e = [r[:, :, :, j : j + 2 * nw : 2] for j in range(4)]  # (4, B, nh, nw, C)
        torch.sub(e[0], e[2], out=vp[..., 0, :])
        torch.add(e[1], e[2], out=vp[..., 1, :])
        torch.sub(e[2], e[1], out=vp[..., 2, :])
        torch.sub(e[1], e[3], out=vp[..., 3, :])
        # the 16 products, summed over C: one grouped 1x1 convolution; (B, 16F, nh, nw) NHWC
        m = torch.ops.mkldnn._convolution_pointwise(
            v.view(bsz, nh, nw, 16 * c).permute(0, 3, 1, 2),
            self.weight, self.bias, [0, 0], [1, 1], [1, 1], 16, "none", [], "",
        )  # fmt: skip
        m = m.permute(0, 2, 3, 1).reshape(bsz, nh, nw, 4, 4, self.filters)
        # A^T m: along the rows, s (2, B, nh, nw, 4, F)
        mk = [m[:, :, :, k] for k in range(4)]
        s = x.new_empty(2, bsz, nh, nw, 4, self.filters)
        torch.add(mk[1], mk[2], out=s[0]).add_(mk[0])
        torch.sub(mk[1], mk[2], out=s[1]).sub_(mk[3])
        # (A^T m) A: along the columns, into the NHWC output (B, 2nh, 2nw, F)
        y = x.new_empty(bsz, 2 * nh, 2 * nw, self.filters)
        yv = y.view(bsz, nh, 2, nw, 2, self.filters).permute(2, 0, 1, 3, 4, 5)
        sl = [s[..., k, :] for k in range(4)]  # (2, B, nh, nw, F)
        torch.add(sl[1], sl[2], out=yv[..., 0, :]).add_(sl[0])
        torch.sub(sl[1], sl[2], out=yv[..., 1, :]).sub_(sl[3])
        out = y.permute(0, 3, 1, 2)
        return out if (2 * nh, 2 * nw) == (h, w) else out[:, :, :h, :w]
