"""Decode raw ``[yolo]`` / ``[region]`` inputs into boxes, as Darknet does.

``decode_head(raw, head, net_w, net_h)`` -> (B, h * w * n, 5 + classes), rows ordered by grid
row, grid column, then anchor (Darknet's ``get_yolo_detections`` and OpenCV's order); columns
``cx, cy, w, h`` relative to the network input (0..1), objectness, class probabilities
(not yet multiplied by objectness).

* ``[yolo]`` (``yolo_layer.c``): ``x, y = (col|row + s * sigmoid(t) - (s - 1) / 2) / grid``
  with ``s = scale_x_y``; ``w = exp(tw) * anchor_w / net_w``; objectness and classes through
  the logistic. With ``new_coords=1`` the conv already applied the logistic: no activation
  here, ``w = 4 * tw**2 * anchor_w / net_w``.
* ``[region]`` (``region_layer.c``, yolov2): ``x, y`` logistic, ``w = exp(tw) * anchor / grid``
  (anchors in grid cells), objectness logistic, classes softmax when ``softmax=1``.
"""

from __future__ import annotations

import torch

from detforge.models.darknet.heads import HeadSpec


def decode_head(raw: torch.Tensor, head: HeadSpec, net_w: int, net_h: int) -> torch.Tensor:
    """(B, n * (5 + C), h, w) raw head input -> (B, h * w * n, 5 + C) decoded rows."""
    b, _, gh, gw = raw.shape
    n = len(head.anchors)
    p = raw.reshape(b, n, 5 + head.classes, gh, gw).permute(0, 3, 4, 1, 2).float()
    anchors = torch.tensor(head.anchors, dtype=p.dtype, device=p.device)  # (n, 2)
    gy, gx = torch.meshgrid(
        torch.arange(gh, device=p.device, dtype=p.dtype),
        torch.arange(gw, device=p.device, dtype=p.dtype),
        indexing="ij",
    )
    gx, gy = gx[None, :, :, None, None], gy[None, :, :, None, None]
    if head.kind == "yolo":
        out = _yolo_rows(p, gx, gy, anchors, head, (gw, gh), (net_w, net_h))
        return out.reshape(b, gh * gw * n, 5 + head.classes)
    t = p[..., :4]
    xy = torch.sigmoid(t[..., :2])
    wh = torch.exp(t[..., 2:4]) * anchors / torch.tensor([gw, gh], dtype=p.dtype, device=p.device)
    obj = torch.sigmoid(p[..., 4:5])
    cls = p[..., 5:]
    cls = torch.softmax(cls, -1) if head.softmax else cls
    cx = (xy[..., 0:1] + gx) / gw
    cy = (xy[..., 1:2] + gy) / gh
    out = torch.cat([cx, cy, wh, obj, cls], -1)
    return out.reshape(b, gh * gw * n, 5 + head.classes)


def _yolo_rows(
    p: torch.Tensor,
    gx: torch.Tensor,
    gy: torch.Tensor,
    anchors: torch.Tensor,
    head: HeadSpec,
    grid: tuple[int, int],
    net: tuple[int, int],
) -> torch.Tensor:
    """``[yolo]`` rows (..., 5 + C) from raw values ``p`` (..., 5 + C) in grid cells ``gx``,
    ``gy`` (column, row; broadcast to ``p[..., :1]``) with ``anchors`` (..., 2) in input
    pixels; ``grid`` and ``net`` are ``(w, h)`` (the module docstring's formulas)."""
    t = p[..., :4]
    s = head.scale_x_y
    xy = t[..., :2] if head.new_coords else torch.sigmoid(t[..., :2])
    if s != 1.0:
        xy = xy * s - 0.5 * (s - 1.0)
    size = torch.tensor(net, dtype=p.dtype, device=p.device)
    if head.new_coords:
        wh = t[..., 2:4] * t[..., 2:4] * 4 * anchors / size
        obj, cls = p[..., 4:5], p[..., 5:]
    else:
        wh = torch.exp(t[..., 2:4]) * anchors / size
        obj, cls = torch.sigmoid(p[..., 4:5]), torch.sigmoid(p[..., 5:])
    cx = (xy[..., 0:1] + gx) / grid[0]
    cy = (xy[..., 1:2] + gy) / grid[1]
    return torch.cat([cx, cy, wh, obj, cls], -1)


def decode_all(
    raw: list[torch.Tensor], heads: tuple[HeadSpec, ...], net_w: int, net_h: int
) -> torch.Tensor:
    """Every head decoded and concatenated: (B, N, 5 + C) (heads in cfg order)."""
    return torch.cat([decode_head(r, h, net_w, net_h) for r, h in zip(raw, heads, strict=True)], 1)


def rows_above(rows: torch.Tensor, thresh: float) -> list[torch.Tensor]:
    """Decoded rows (B, N, 5 + C) -> each image's rows with objectness above ``thresh``
    (K_i, 5 + C), in row order: the only rows Darknet's detection step reads."""
    return [r[r[:, 4] > thresh] for r in rows]


def decode_above(
    raw: list[torch.Tensor], heads: tuple[HeadSpec, ...], net_w: int, net_h: int, thresh: float
) -> list[torch.Tensor]:
    """:func:`rows_above` of :func:`decode_all`, decoding only those rows (``get_yolo_detections``
    likewise skips a box below the threshold before decoding it): per image (K_i, 5 + C).

    One photo at 416 has 2,535 (yolov3-tiny) to 10,647 rows and a few dozen above 0.25."""
    if torch.is_grad_enabled() or any(h.kind != "yolo" for h in heads):
        return rows_above(decode_all(raw, heads, net_w, net_h), thresh)
    b = raw[0].shape[0]
    per_head = [_yolo_above(r, h, net_w, net_h, thresh) for r, h in zip(raw, heads, strict=True)]
    out = []
    for i in range(b):
        parts = [rows[image == i] if b > 1 else rows for image, rows in per_head]
        out.append(torch.cat(parts) if len(parts) > 1 else parts[0])
    return out


def _yolo_above(
    raw: torch.Tensor, head: HeadSpec, net_w: int, net_h: int, thresh: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """One ``[yolo]`` head's rows with objectness above ``thresh``, decoded by
    :func:`_yolo_rows`: (image index (K,), rows (K, 5 + C)), in row order."""
    b, _, gh, gw = raw.shape
    n = len(head.anchors)
    p = raw.reshape(b, n, 5 + head.classes, gh, gw).float()
    obj = p[:, :, 4] if head.new_coords else torch.sigmoid(p[:, :, 4])  # (B, n, gh, gw)
    image, gy, gx, a = (obj.permute(0, 2, 3, 1) > thresh).nonzero(as_tuple=True)
    v = p[image, a, :, gy, gx]  # (K, 5 + C), row order: image, grid row, column, anchor
    anchors = torch.tensor(head.anchors, dtype=v.dtype, device=v.device)[a]
    cells = gx[:, None].to(v.dtype), gy[:, None].to(v.dtype)
    return image, _yolo_rows(v, *cells, anchors, head, (gw, gh), (net_w, net_h))


def correct_boxes(
    cxcywh: torch.Tensor, image_w: int, image_h: int, net_w: int, net_h: int, letter_box: bool
) -> torch.Tensor:
    """Map (N, 4) relative network-input boxes to relative image boxes (``correct_yolo_boxes``).

    With ``letter_box`` the image filled an integer ``new_w x new_h`` centred area; without
    it the image was stretched to the whole input and the relative boxes are unchanged.
    """
    if not letter_box:
        return cxcywh
    if net_w / image_w < net_h / image_h:
        new_w, new_h = net_w, (image_h * net_w) // image_w
    else:
        new_w, new_h = (image_w * net_h) // image_h, net_h
    rw, rh = new_w / net_w, new_h / net_h
    out = cxcywh.clone()
    out[:, 0] = (cxcywh[:, 0] - (net_w - new_w) / 2.0 / net_w) / rw
    out[:, 1] = (cxcywh[:, 1] - (net_h - new_h) / 2.0 / net_h) / rh
    out[:, 2] = cxcywh[:, 2] / rw
    out[:, 3] = cxcywh[:, 3] / rh
    return out
