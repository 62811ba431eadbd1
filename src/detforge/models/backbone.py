"""The CSP backbone: a strided Conv stem and four stages of (strided Conv, CSP stack), SPPF.

``(B, 3, H, W) -> (P3, P4, P5)`` with strides 8, 16, 32 and ``channels`` ``(c2, c3, c4)``
of the ``widths`` given (the stride-2 and stride-4 maps are not returned).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from detforge.models.blocks import SPPF, Conv, CSPBlock


class CSPBackbone(nn.Module):
    """CSP-Darknet style backbone.

    Args:
        widths: channels after the stem and after each of the four stages, 5 ints
            (stride 2, 4, 8, 16, 32).
        depths: bottlenecks in the CSP stack of each stage, 4 ints (stride 4, 8, 16, 32).
    """

    def __init__(self, *, widths: Sequence[int], depths: Sequence[int]) -> None:
        super().__init__()
        if len(widths) != 5 or len(depths) != 4:
            raise ValueError("CSPBackbone needs 5 widths and 4 depths")
        w = list(widths)
        self.stem = Conv(3, w[0], 3, 2)
        self.stage1 = nn.Sequential(Conv(w[0], w[1], 3, 2), CSPBlock(w[1], w[1], depths[0]))
        self.stage2 = nn.Sequential(Conv(w[1], w[2], 3, 2), CSPBlock(w[2], w[2], depths[1]))
        self.stage3 = nn.Sequential(Conv(w[2], w[3], 3, 2), CSPBlock(w[3], w[3], depths[2]))
        self.stage4 = nn.Sequential(
            Conv(w[3], w[4], 3, 2), CSPBlock(w[4], w[4], depths[3]), SPPF(w[4], w[4])
        )
        self.channels: tuple[int, int, int] = (w[2], w[3], w[4])

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = self.stage1(self.stem(x))
        p3 = self.stage2(x)
        p4 = self.stage3(p3)
        p5 = self.stage4(p4)
        return p3, p4, p5
