"""The detector: backbone -> PAN neck -> decoupled DFL head, and its factory ``create_model``.

Forward contract (``docs/architecture.md``):

* input ``(B, 3, H, W)`` float RGB in [0, 1], ``H`` and ``W`` multiples of 32;
* training mode: a list of 3 raw maps ``(B, 4*reg_max + C, H/s, W/s)`` for strides 8, 16, 32
  (box distribution logits first, then class logits);
* eval mode: ``(B, A, 4 + C)`` with ``A = sum(H/s * W/s)`` anchors ordered stride 8 first,
  row-major within a level: ``[..., :4]`` boxes ``xyxy`` in input pixels, ``[..., 4:]`` class
  probabilities (sigmoid).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from detforge.errors import DetforgeError
from detforge.models.backbone import CSPBackbone
from detforge.models.blocks import fuse_conv_bn
from detforge.models.box_ops import make_anchors
from detforge.models.head import DetectHead, dfl_expectation
from detforge.models.neck import PAN
from detforge.models.tracing import is_tracing

STRIDES: tuple[int, int, int] = (8, 16, 32)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of one scale. ``widths``: backbone channels at strides 2..32 (the neck
    outputs use the last three); ``depths``: bottlenecks per backbone stage; ``neck_depth``:
    bottlenecks per neck CSP stack; head branch widths and whether the class branch is
    depthwise-separable."""

    widths: tuple[int, int, int, int, int]
    depths: tuple[int, int, int, int]
    neck_depth: int
    box_hidden: int
    cls_hidden: int
    cls_depthwise: bool = False


def scale_config(scale: str, num_classes: int, reg_max: int = 16) -> ModelConfig:
    """The :class:`ModelConfig` for ``scale`` ``n``, ``s`` or ``m``.

    Depth/width multipliers are 0.33/0.25 (n), 0.33/0.50 (s), 0.67/0.75 (m) of the base
    widths (64, 128, 256, 512, 1024) and depths (3, 6, 6, 3), with widths capped at 1024
    (768 for m).
    """
    table = {"n": (0.33, 0.25, 1024), "s": (0.33, 0.50, 1024), "m": (0.67, 0.75, 768)}
    if scale not in table:
        raise DetforgeError(f"unknown model scale {scale!r}; choose n, s or m")
    d, w, cap = table[scale]
    widths = tuple(min(int(c * w), int(cap * w)) for c in (64, 128, 256, 512, 1024))
    depths = tuple(max(round(n * d), 1) for n in (3, 6, 6, 3))
    neck_depth = max(round(3 * d), 1)
    # The box branch keeps full 3x3 convolutions (localisation quality); the class branch is
    # depthwise-separable, which removes ~1/6 of the n model's FLOPs at no measurable loss
    # (the same trade YOLO11's head makes).
    box_hidden = max(16, widths[2] // 4, 4 * reg_max)
    cls_hidden = max(widths[2], min(num_classes, 100))
    return ModelConfig(
        widths=widths,  # type: ignore[arg-type]
        depths=depths,  # type: ignore[arg-type]
        neck_depth=neck_depth,
        box_hidden=box_hidden,
        cls_hidden=cls_hidden,
        cls_depthwise=True,
    )


class Detector(nn.Module):
    """Anchor-free YOLO-style detector. Build it with :func:`create_model`.

    Attributes: ``num_classes``, ``reg_max``, ``strides`` (8, 16, 32) and ``build_args`` (the
    keyword arguments of :func:`create_model` that rebuild this architecture; stored in
    checkpoints).
    """

    def __init__(
        self,
        *,
        backbone: nn.Module,
        backbone_channels: tuple[int, int, int],
        config: ModelConfig,
        num_classes: int,
        reg_max: int = 16,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.reg_max = reg_max
        self.strides = STRIDES
        self.config = config
        self.build_args: dict[str, Any] = {}
        self.backbone = backbone
        self.neck = PAN(
            in_channels=backbone_channels, out_channels=config.widths[2:], depth=config.neck_depth
        )
        self.head = DetectHead(
            in_channels=self.neck.channels,
            num_classes=num_classes,
            reg_max=reg_max,
            box_hidden=config.box_hidden,
            cls_hidden=config.cls_hidden,
            cls_depthwise=config.cls_depthwise,
        )
        self.head.init_biases(STRIDES)
        self._anchor_cache: dict[tuple[Any, ...], tuple[Tensor, Tensor]] = {}

    def _check_input(self, x: Tensor) -> None:
        compiling = getattr(torch.compiler, "is_compiling", None)  # torch >= 2.3
        if is_tracing() or (compiling is not None and compiling()):
            return
        if x.ndim != 4 or x.shape[1] != 3:
            raise DetforgeError(f"the detector takes (B, 3, H, W) images, got {tuple(x.shape)}")
        h, w = int(x.shape[2]), int(x.shape[3])
        if h % 32 or w % 32 or h == 0 or w == 0:
            raise DetforgeError(
                f"image size {h}x{w} is not a multiple of 32; letterbox or resize it to e.g. "
                f"{max(32, round(h / 32) * 32)}x{max(32, round(w / 32) * 32)}"
            )

    def forward(self, x: Tensor) -> Tensor | list[Tensor]:
        """``(B, 3, H, W)`` float RGB in [0, 1] -> training: 3 raw maps
        ``(B, 4*reg_max + C, H/s, W/s)``; eval: ``(B, A, 4 + C)`` (a transposed view: boxes
        xyxy input pixels, class probabilities). See the module docstring."""
        self._check_input(x)
        if self.backbone_is_channels_last():
            x = x.contiguous(memory_format=torch.channels_last)
        feats = self.neck(self.backbone(x))
        if self.training:
            raw: list[Tensor] = self.head(feats)
            return raw
        return self.decode(self.head.forward_split(feats))

    def backbone_is_channels_last(self) -> bool:
        """Whether the weights were converted with ``model.to(memory_format=channels_last)``
        (inputs are then converted too; faster on CPU for training and inference)."""
        w = next(self.parameters(), None)
        return bool(
            w is not None
            and w.ndim == 4
            and w.is_contiguous(memory_format=torch.channels_last)
            and not w.is_contiguous()
        )

    def anchors(self, shapes: list[tuple[int, int]], ref: Tensor) -> tuple[Tensor, Tensor]:
        """Anchor points of the given feature-map shapes (see :func:`make_anchors`).

        Returns ``(points (A, 2) grid units, stride (A, 1))``, cached per feature-map shapes,
        device and dtype (not while tracing for export, so dynamic shapes stay dynamic).
        """
        if is_tracing():
            return make_anchors(shapes, self.strides, device=ref.device, dtype=ref.dtype)
        key = (tuple(shapes), ref.device, ref.dtype)
        hit = self._anchor_cache.get(key)
        if hit is None:
            hit = make_anchors(shapes, self.strides, device=ref.device, dtype=ref.dtype)
            if len(self._anchor_cache) > 16:
                self._anchor_cache.clear()
            self._anchor_cache[key] = hit
        return hit

    def decode(self, pairs: list[tuple[Tensor, Tensor]]) -> Tensor:
        """Per-level ``(box logits, class logits)`` -> ``(B, A, 4 + C)`` (see module doc)."""
        # plain shape entries (not int()) so that tracing for ONNX keeps them symbolic
        shapes = [(bx.shape[2], bx.shape[3]) for bx, _ in pairs]
        box = torch.cat([bx.flatten(2) for bx, _ in pairs], 2)  # (B, 4R, A)
        cls = torch.cat([c.flatten(2) for _, c in pairs], 2)  # (B, C, A)
        points, stride = self.anchors(shapes, box)
        dist = dfl_expectation(box, self.reg_max)  # (B, 4, A) in cells
        pts, st = points.t().unsqueeze(0), stride.t().unsqueeze(0)  # (1, 2, A), (1, 1, A)
        lt, rb = dist[:, :2], dist[:, 2:]
        xyxy = torch.cat((pts - lt, pts + rb), 1) * st
        out = torch.cat((xyxy, cls.sigmoid()), 1)  # (B, 4 + C, A)
        return out.transpose(1, 2)

    def fuse(self, *, channels_last: bool = True) -> Detector:
        """Prepare for inference (in place; returns self): fold batch-norm into the
        convolutions and, by default, store weights channels-last (NHWC), which oneDNN and
        cuDNN run markedly faster (~1.4x on CPU for ``n``). Outputs stay the same within
        float rounding. Call it on an eval-mode model you will not train again.
        """
        fuse_conv_bn(self)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.to(memory_format=fmt)  # type: ignore[call-overload]
        return self

    def train(self, mode: bool = True) -> Detector:
        self._anchor_cache.clear()
        return super().train(mode)


def create_model(
    scale: str = "n",
    num_classes: int = 80,
    *,
    backbone: str | None = None,
    backbone_weights: str | os.PathLike[str] | None = None,
    reg_max: int = 16,
) -> Detector:
    """Build a detector.

    Args:
        scale: ``n``, ``s`` or ``m`` (neck/head width and depth; the backbone's too unless
            ``backbone`` names a torchvision network).
        num_classes: number of classes ``C``.
        backbone: ``None`` for detforge's CSP backbone, or a torchvision network name
            (see ``detforge.models.tv_backbone.TV_BACKBONES``).
        backbone_weights: for a torchvision backbone: ``None`` (random init), ``"imagenet"``
            (torchvision's download) or a path to a local torchvision state_dict file.
        reg_max: bins of the DFL distance distributions (max distance ``reg_max - 1`` cells).
    """
    if not isinstance(num_classes, int) or num_classes < 1:
        raise DetforgeError(f"num_classes must be a positive integer, got {num_classes!r}")
    if reg_max < 2:
        raise DetforgeError(f"reg_max must be at least 2, got {reg_max}")
    config = scale_config(scale, num_classes, reg_max)
    if backbone is None:
        if backbone_weights is not None:
            raise DetforgeError(
                "backbone weights only apply to a torchvision backbone (--backbone NAME); "
                "to start from a detforge checkpoint use --weights"
            )
        csp = CSPBackbone(widths=config.widths, depths=config.depths)
        net: nn.Module = csp
        channels = csp.channels
    else:
        from detforge.models.tv_backbone import TorchvisionBackbone

        tv = TorchvisionBackbone(backbone, weights=backbone_weights)
        net, channels = tv, tv.channels
    model = Detector(
        backbone=net,
        backbone_channels=channels,
        config=config,
        num_classes=num_classes,
        reg_max=reg_max,
    )
    model.build_args = {
        "scale": scale,
        "num_classes": num_classes,
        "backbone": backbone,
        "reg_max": reg_max,
    }
    # channels-last (NHWC) weights: oneDNN (CPU) and cuDNN run these convolutions ~1.2-1.4x
    # faster; inputs are converted in forward(). `.to(device)` keeps the format.
    model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return model


def config_dict(model: Detector) -> dict[str, Any]:
    """The model's architecture as plain types (for logs and run folders)."""
    return {**model.build_args, "config": asdict(model.config)}
