"""Decoupled, anchor-free detection head with distribution-focal (DFL) box regression.

For each level (strides 8, 16, 32) a box branch predicts, per cell, ``4 * reg_max`` logits:
for each side (left, top, right, bottom) a distribution over the distances
``0, 1, ..., reg_max - 1`` (in cells of that level) from the cell centre to the box side; the
box is decoded from the distributions' expectations. A separate class branch predicts ``C``
logits (sigmoid, one per class, no objectness).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from detforge.models.blocks import Conv


def _branch(c_in: int, hidden: int, c_out: int, *, depthwise: bool) -> nn.Sequential:
    """Two 3x3 Conv (or depthwise-separable pairs) and a 1x1 prediction ``Conv2d``."""
    if depthwise:
        layers: list[nn.Module] = [
            Conv(c_in, c_in, 3, groups=c_in),
            Conv(c_in, hidden, 1),
            Conv(hidden, hidden, 3, groups=hidden),
            Conv(hidden, hidden, 1),
        ]
    else:
        layers = [Conv(c_in, hidden, 3), Conv(hidden, hidden, 3)]
    return nn.Sequential(*layers, nn.Conv2d(hidden, c_out, 1))


class DetectHead(nn.Module):
    """Per-level box and class branches.

    Args:
        in_channels: channels of the three input maps (strides 8, 16, 32).
        num_classes: ``C``.
        reg_max: bins of each side's distance distribution (distances 0..reg_max-1 cells).
        box_hidden / cls_hidden: channels inside the branches.
        cls_depthwise: use depthwise-separable convolutions in the class branch.
        box_depthwise: the same for the box branch.
    """

    def __init__(
        self,
        *,
        in_channels: Sequence[int],
        num_classes: int,
        reg_max: int = 16,
        box_hidden: int = 64,
        cls_hidden: int = 64,
        cls_depthwise: bool = False,
        box_depthwise: bool = False,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.reg_max = reg_max
        self.box = nn.ModuleList(
            _branch(c, box_hidden, 4 * reg_max, depthwise=box_depthwise) for c in in_channels
        )
        self.cls = nn.ModuleList(
            _branch(c, cls_hidden, num_classes, depthwise=cls_depthwise) for c in in_channels
        )

    def init_biases(self, strides: Sequence[int], *, image_size: int = 640) -> None:
        """Class-prior bias init: ~5 objects per ``image_size``^2 image spread over the cells
        and classes (so the initial sigmoid scores are tiny and BCE starts stable); box
        logits start at 1.0 (a flat distance distribution)."""
        for box, cls, s in zip(self.box, self.cls, strides, strict=True):
            box_out, cls_out = box[-1], cls[-1]  # type: ignore[index]
            assert isinstance(box_out, nn.Conv2d) and isinstance(cls_out, nn.Conv2d)
            assert box_out.bias is not None and cls_out.bias is not None
            nn.init.constant_(box_out.bias, 1.0)
            prior = 5 / self.num_classes / (image_size / s) ** 2
            nn.init.constant_(cls_out.bias, math.log(prior / (1 - prior)))

    def forward_split(self, feats: Sequence[Tensor]) -> list[tuple[Tensor, Tensor]]:
        """Per level ``(box logits (B, 4*reg_max, H, W), class logits (B, C, H, W))``."""
        return [(box(x), cls(x)) for x, box, cls in zip(feats, self.box, self.cls, strict=True)]

    def forward(self, feats: Sequence[Tensor]) -> list[Tensor]:
        """Raw training maps, per level ``(B, 4*reg_max + C, H, W)`` (box logits first)."""
        return [torch.cat(pair, 1) for pair in self.forward_split(feats)]


def dfl_expectation(logits: Tensor, reg_max: int) -> Tensor:
    """Expected distance of each side from its distribution logits.

    ``logits`` (B, 4*reg_max, N) -> (B, 4, N) distances in cells, each in ``[0, reg_max - 1]``.
    """
    b, _, n = logits.shape
    proj = torch.arange(reg_max, device=logits.device, dtype=logits.dtype).view(1, 1, reg_max, 1)
    prob = logits.view(b, 4, reg_max, n).softmax(2)
    return (prob * proj).sum(2)
