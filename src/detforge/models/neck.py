"""Path-aggregation neck (PAN): a top-down then a bottom-up pass over three levels.

``(P3, P4, P5)`` with channels ``in_channels`` and strides 8/16/32 ->
``(N3, N4, N5)`` with channels ``out_channels``, same strides.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from detforge.models.blocks import Conv, CSPBlock


class PAN(nn.Module):
    """Top-down: upsample P5, concatenate P4, CSP; upsample, concatenate P3, CSP -> N3.
    Bottom-up: stride-2 Conv of N3, concatenate the top-down P4 result, CSP -> N4; stride-2
    Conv of N4, concatenate P5, CSP -> N5. Shortcuts are off in the neck's CSP stacks.
    """

    def __init__(
        self, *, in_channels: Sequence[int], out_channels: Sequence[int], depth: int = 1
    ) -> None:
        super().__init__()
        c3, c4, c5 = in_channels
        o3, o4, o5 = out_channels
        self.up = nn.Upsample(scale_factor=2.0, mode="nearest")
        self.td4 = CSPBlock(c5 + c4, o4, depth, shortcut=False)
        self.td3 = CSPBlock(o4 + c3, o3, depth, shortcut=False)
        self.down3 = Conv(o3, o3, 3, 2)
        self.bu4 = CSPBlock(o3 + o4, o4, depth, shortcut=False)
        self.down4 = Conv(o4, o4, 3, 2)
        self.bu5 = CSPBlock(o4 + c5, o5, depth, shortcut=False)
        self.channels: tuple[int, int, int] = (o3, o4, o5)

    def forward(self, feats: Sequence[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        p3, p4, p5 = feats
        t4 = self.td4(torch.cat((self.up(p5), p4), 1))
        n3 = self.td3(torch.cat((self.up(t4), p3), 1))
        n4 = self.bu4(torch.cat((self.down3(n3), t4), 1))
        n5 = self.bu5(torch.cat((self.down4(n4), p5), 1))
        return n3, n4, n5
