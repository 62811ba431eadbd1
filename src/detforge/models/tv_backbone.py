"""Optional torchvision ImageNet backbones (ResNet, MobileNetV3, EfficientNet) for the detector.

The backbone returns the stride 8/16/32 feature maps that the PAN neck consumes. Images come
in as (B, 3, H, W) RGB floats in [0, 1]; this wrapper applies the ImageNet mean/std the
torchvision weights were trained with.

Weights: ``weights=None`` builds a randomly initialised network (tests, training from scratch);
``weights="imagenet"`` asks torchvision for its default ImageNet weights (downloaded once into
torchvision's cache: needs the network); any other string is a local file holding a
torchvision state_dict for that architecture (for machines without internet access).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor, nn

from detforge.errors import DetforgeError

# name -> the feature-extractor nodes at strides 8, 16 and 32
TV_BACKBONES: dict[str, tuple[str, str, str]] = {
    "resnet18": ("layer2", "layer3", "layer4"),
    "resnet34": ("layer2", "layer3", "layer4"),
    "resnet50": ("layer2", "layer3", "layer4"),
    "mobilenet_v3_large": ("features.6", "features.12", "features.16"),
    "mobilenet_v3_small": ("features.3", "features.8", "features.12"),
    "efficientnet_b0": ("features.3", "features.5", "features.7"),
    "efficientnet_b1": ("features.3", "features.5", "features.7"),
    "efficientnet_b2": ("features.3", "features.5", "features.7"),
}

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def _load_local_weights(net: nn.Module, path: str, name: str) -> None:
    p = Path(path)
    if not p.is_file():
        raise DetforgeError(
            "backbone weights file not found; pass a torchvision state_dict file or 'imagenet'",
            path=p,
        )
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DetforgeError(f"cannot read backbone weights ({exc})", path=p) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise DetforgeError("backbone weights file does not hold a state_dict", path=p)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise DetforgeError(
            f"backbone weights do not fit torchvision's {name}: {first}", path=p
        ) from None


class TorchvisionBackbone(nn.Module):
    """A torchvision classification network cut into a 3-level feature extractor.

    ``(B, 3, H, W)`` in [0, 1] -> ``(C3, C4, C5)`` maps at strides 8, 16, 32;
    ``channels`` holds their channel counts.
    """

    def __init__(self, name: str, *, weights: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        import torchvision
        from torchvision.models.feature_extraction import create_feature_extractor

        if name not in TV_BACKBONES:
            raise DetforgeError(
                f"unknown backbone {name!r}; choose one of {', '.join(TV_BACKBONES)}"
            )
        builder = getattr(torchvision.models, name)
        if weights is None:
            net = builder(weights=None)
        elif str(weights).lower() in ("imagenet", "default"):
            try:
                net = builder(weights="DEFAULT")
            except Exception as exc:
                raise DetforgeError(
                    f"could not download torchvision's ImageNet weights for {name} ({exc}); "
                    "download them on a connected machine and pass the file with "
                    "--backbone-weights PATH"
                ) from None
        else:
            net = builder(weights=None)
            _load_local_weights(net, os.fspath(weights), name)
        nodes = TV_BACKBONES[name]
        self.body = create_feature_extractor(
            net, return_nodes={n: str(i) for i, n in enumerate(nodes)}
        )
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        self.name = name
        with torch.no_grad():
            was_training = self.body.training
            self.body.eval()
            outs = self.body(torch.zeros(1, 3, 64, 64))
            self.body.train(was_training)
        c = [int(outs[str(i)].shape[1]) for i in range(3)]
        self.channels: tuple[int, int, int] = (c[0], c[1], c[2])

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = (x - self.mean) / self.std  # type: ignore[operator]
        out = self.body(x)
        return out["0"], out["1"], out["2"]
