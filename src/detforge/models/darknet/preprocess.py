"""Darknet's input rule: stretch the image to the network size, or letterbox when the cfg says so.

``darknet detector test``/``map`` (``image.c``) feed the network ``resize_image(im, net_w,
net_h)``: a separable bilinear resize whose sample positions map the first and last pixels
onto each other (``scale = (in - 1) / (out - 1)``, PyTorch's ``align_corners=True``), no
antialiasing. With ``letter_box=1`` in ``[net]`` (``letterbox_image``) the image is resized
the same way to ``new_w x new_h`` (integer division keeps the aspect) and pasted centred
(offsets ``(net - new) // 2``) on a 0.5-grey canvas. This is a different rule from detforge's
own training letterbox, which is why it lives with the Darknet models.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


def letterbox_size(image_w: int, image_h: int, net_w: int, net_h: int) -> tuple[int, int]:
    """The resized image size inside a Darknet letterbox (``new_w, new_h``)."""
    if net_w / image_w < net_h / image_h:
        return net_w, (image_h * net_w) // image_w
    return (image_w * net_h) // image_h, net_h


def _resize(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    if x.shape[-2:] == (h, w):
        return x
    return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=True)


def darknet_input(
    image: Any,
    net_w: int,
    net_h: int,
    *,
    letter_box: bool = False,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """An (H, W, 3) uint8 RGB image -> the (1, 3, net_h, net_w) float32 input in [0, 1]."""
    arr = np.ascontiguousarray(image)
    if not arr.flags.writeable:
        arr = arr.copy()
    x = torch.from_numpy(arr).to(device).permute(2, 0, 1)[None].float().div_(255.0)
    h, w = arr.shape[:2]
    if not letter_box:
        return _resize(x, net_h, net_w)
    new_w, new_h = letterbox_size(w, h, net_w, net_h)
    canvas = torch.full((1, x.shape[1], net_h, net_w), 0.5, dtype=x.dtype, device=x.device)
    dx, dy = (net_w - new_w) // 2, (net_h - new_h) // 2
    canvas[:, :, dy : dy + new_h, dx : dx + new_w] = _resize(x, new_h, new_w)
    return canvas
