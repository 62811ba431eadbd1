"""Load a Darknet network (``.cfg`` [+ ``.weights``] [+ ``.names``]) and run it as Darknet does."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

from detforge.models.darknet.cfg import read_cfg
from detforge.models.darknet.decode import decode_above, decode_all
from detforge.models.darknet.network import DarknetNetwork
from detforge.models.darknet.nms import DarknetDetections, darknet_detections
from detforge.models.darknet.preprocess import darknet_input
from detforge.models.darknet.weights import read_weights

DARKNET_THRESH = 0.25  # darknet detector test -thresh default
DARKNET_NMS = 0.45  # the nms= every detector command uses
DARKNET_MAP_THRESH = 0.005  # validate_detector_map's detection threshold


def is_darknet_file(path: str | os.PathLike[str]) -> bool:
    """True for a ``.weights`` / ``.cfg`` / ``.conv.N`` path (by name, or by a Darknet header)."""
    p = Path(path)
    name = p.name.lower()
    return name.endswith((".weights", ".cfg")) or re.search(r"\.conv\.\d+$", name) is not None


def load_darknet(
    cfg: str | os.PathLike[str],
    weights: str | os.PathLike[str] | None = None,
    *,
    device: str | torch.device = "cpu",
    partial: bool = False,
) -> DarknetNetwork:
    """Build the network of ``cfg`` and load ``weights`` (random init when None); eval mode."""
    net = DarknetNetwork(read_cfg(cfg))
    if weights is not None:
        read_weights(net, weights, partial=partial)
    return net.to(device).eval()


@torch.no_grad()
def forward_rows(net: DarknetNetwork, x: torch.Tensor) -> torch.Tensor:
    """Input (B, 3, net_h, net_w) in [0, 1] -> decoded rows (B, N, 5 + C) (see decode.py)."""
    w, h = x.shape[-1], x.shape[-2]
    return decode_all(net(x), net.heads, w, h)


@torch.no_grad()
def forward_above(net: DarknetNetwork, x: torch.Tensor, thresh: float) -> list[torch.Tensor]:
    """Input (B, 3, net_h, net_w) in [0, 1] -> each image's decoded rows with objectness above
    ``thresh`` (K_i, 5 + C), only those decoded (:func:`~.decode.decode_above`)."""
    w, h = x.shape[-1], x.shape[-2]
    return decode_above(net(x), net.heads, w, h, thresh)


def detect(
    net: DarknetNetwork, image: Any, *, thresh: float = DARKNET_THRESH, nms: float = DARKNET_NMS
) -> DarknetDetections:
    """Detections on one (H, W, 3) uint8 RGB image, exactly as ``darknet detector test``."""
    h, w = image.shape[:2]
    net_w, net_h = net.input_size
    device = next(net.parameters()).device
    x = darknet_input(image, net_w, net_h, letter_box=net.letter_box, device=device)
    rows = forward_above(net, x, thresh)[0]
    return darknet_detections(
        rows,
        w,
        h,
        net_w,
        net_h,
        letter_box=net.letter_box,
        thresh=thresh,
        nms=nms,
        nms_kind=net.nms_kind,
        beta_nms=net.beta_nms,
    )
