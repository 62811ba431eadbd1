"""Building blocks of the detector: Conv-BN-SiLU, CSP bottleneck stacks (C2f-style), SPPF.

All blocks map ``(B, C_in, H, W)`` feature maps to ``(B, C_out, H', W')`` float tensors;
strides are stated per block. ``Conv.fuse()`` folds batch-norm into the convolution for
inference (``Detector.fuse()`` calls it on every block).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Conv(nn.Module):
    """``Conv2d(k, stride, padding k//2, no bias) -> BatchNorm2d -> SiLU``.

    ``(B, c_in, H, W) -> (B, c_out, H / stride, W / stride)``. ``groups`` allows depthwise
    convolutions (``groups == c_in == c_out``). ``act=False`` leaves out the SiLU.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        k: int = 1,
        stride: int = 1,
        *,
        groups: int = 1,
        act: bool = True,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False)
        self.bn: nn.BatchNorm2d | None = nn.BatchNorm2d(c_out, eps=1e-3, momentum=0.03)
        self.act: nn.Module = nn.SiLU(inplace=True) if act else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return self.act(x)  # type: ignore[no-any-return]

    @torch.no_grad()
    def fuse(self) -> None:
        """Fold the batch-norm statistics into the convolution (inference only; irreversible)."""
        bn = self.bn
        if bn is None:
            return
        conv = self.conv
        assert bn.running_var is not None and bn.running_mean is not None
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        fused = nn.Conv2d(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,  # type: ignore[arg-type]
            conv.stride,  # type: ignore[arg-type]
            conv.padding,  # type: ignore[arg-type]
            groups=conv.groups,
            bias=True,
        ).to(conv.weight.device, conv.weight.dtype)
        fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
        assert fused.bias is not None
        fused.bias.copy_(bn.bias - bn.running_mean * scale)
        self.conv = fused
        self.bn = None


class Bottleneck(nn.Module):
    """Two 3x3 ``Conv`` with an optional residual: ``(B, c, H, W) -> (B, c, H, W)``."""

    def __init__(self, c: int, *, shortcut: bool = True) -> None:
        super().__init__()
        self.cv1 = Conv(c, c, 3)
        self.cv2 = Conv(c, c, 3)
        self.add = shortcut

    def forward(self, x: Tensor) -> Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y  # type: ignore[no-any-return]


class CSPBlock(nn.Module):
    """Cross-stage-partial stack of ``n`` bottlenecks in the C2f style (YOLOv8's layout).

    ``cv1`` (1x1) projects to ``2 * h`` channels (``h = c_out * expansion``) and splits them in
    two halves; ``n`` bottlenecks run on the second half one after another; every intermediate
    result is kept and ``cv2`` (1x1) mixes the ``(2 + n) * h`` concatenated channels to
    ``c_out``. ``(B, c_in, H, W) -> (B, c_out, H, W)``.
    """

    def __init__(
        self, c_in: int, c_out: int, n: int = 1, *, shortcut: bool = True, expansion: float = 0.5
    ) -> None:
        super().__init__()
        self.hidden = h = max(int(c_out * expansion), 1)
        self.cv1 = Conv(c_in, 2 * h, 1)
        self.cv2 = Conv((2 + n) * h, c_out, 1)
        self.m = nn.ModuleList(Bottleneck(h, shortcut=shortcut) for _ in range(n))

    def forward(self, x: Tensor) -> Tensor:
        ys = list(self.cv1(x).chunk(2, 1))
        y = ys[-1]
        for m in self.m:
            y = m(y)
            ys.append(y)
        return self.cv2(torch.cat(ys, 1))  # type: ignore[no-any-return]


class SPPF(nn.Module):
    """Spatial pyramid pooling, fast: three chained 5x5 max-pools (receptive fields 5, 9, 13).

    ``(B, c_in, H, W) -> (B, c_out, H, W)``.
    """

    def __init__(self, c_in: int, c_out: int, k: int = 5) -> None:
        super().__init__()
        h = c_in // 2
        self.cv1 = Conv(c_in, h, 1)
        self.cv2 = Conv(h * 4, c_out, 1)
        self.pool = nn.MaxPool2d(k, 1, k // 2)

    def forward(self, x: Tensor) -> Tensor:
        x = self.cv1(x)
        y1 = self.pool(x)
        y2 = self.pool(y1)
        return self.cv2(torch.cat((x, y1, y2, self.pool(y2)), 1))  # type: ignore[no-any-return]


def fuse_conv_bn(module: nn.Module) -> nn.Module:
    """Fold batch-norm into every :class:`Conv` inside ``module`` (in place); returns it."""
    for m in module.modules():
        if isinstance(m, Conv):
            m.fuse()
    return module
