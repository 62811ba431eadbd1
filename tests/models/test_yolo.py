"""Detector shapes for every scale, torchvision backbones, input checks, fuse()."""

from __future__ import annotations

import pytest
import torch

from detforge.errors import DetforgeError
from detforge.models.yolo import create_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize(
    ("scale", "params"), [("n", 2_691_167), ("s", 9_840_879), ("m", 23_223_999)]
)
def test_shapes_all_scales(scale: str, params: int) -> None:
    torch.manual_seed(0)
    model = create_model(scale, 5)
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == params  # architecture regression check
    x = torch.rand(2, 3, 64, 96)
    model.train()
    raw = model(x)
    assert [tuple(r.shape) for r in raw] == [(2, 69, 8, 12), (2, 69, 4, 6), (2, 69, 2, 3)]
    model.eval()
    with torch.no_grad():
        out = model(x)
    assert out.shape == (2, 8 * 12 + 4 * 6 + 2 * 3, 4 + 5)
    probs = out[..., 4:]
    assert probs.min() >= 0 and probs.max() <= 1
    # boxes are xyxy in input pixels around their anchors: first anchor is (4, 4) at stride 8
    b0 = out[0, 0, :4]
    assert b0[0] <= 4 <= b0[2] and b0[1] <= 4 <= b0[3]
    assert model.build_args == {"scale": scale, "num_classes": 5, "backbone": None, "reg_max": 16}


def test_initial_class_scores_follow_prior() -> None:
    model = create_model("n", 3).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 64))
    assert out[..., 4:].max() < 0.01  # prior: ~5 objects per 640x640 image


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small"])
def test_torchvision_backbone_without_weights(name: str) -> None:
    model = create_model("n", 2, backbone=name)
    model.train()
    raw = model(torch.rand(1, 3, 64, 64))
    assert [tuple(r.shape) for r in raw] == [(1, 66, 8, 8), (1, 66, 4, 4), (1, 66, 2, 2)]
    assert model.build_args["backbone"] == name


def test_torchvision_backbone_local_weights(tmp_path: object) -> None:
    from pathlib import Path

    import torchvision

    path = Path(str(tmp_path)) / "r18.pth"
    torch.manual_seed(1)
    ref = torchvision.models.resnet18(weights=None)
    torch.save(ref.state_dict(), path)
    model = create_model("n", 2, backbone="resnet18", backbone_weights=path)
    got = model.backbone.body.conv1.weight  # type: ignore[union-attr]
    assert torch.equal(got, ref.conv1.weight)
    bad = Path(str(tmp_path)) / "bad.pth"
    torch.save({"nothing": torch.zeros(1)}, bad)
    with pytest.raises(DetforgeError, match="do not fit"):
        create_model("n", 2, backbone="resnet18", backbone_weights=bad)
    with pytest.raises(DetforgeError, match="not found"):
        create_model("n", 2, backbone="resnet18", backbone_weights=Path(str(tmp_path)) / "x")


def test_bad_arguments_raise_detforge_error() -> None:
    with pytest.raises(DetforgeError, match="scale"):
        create_model("x", 3)
    with pytest.raises(DetforgeError, match="backbone"):
        create_model("n", 3, backbone="vgg11")
    model = create_model("n", 3).eval()
    with pytest.raises(DetforgeError, match="multiple of 32"):
        model(torch.rand(1, 3, 60, 64))
    with pytest.raises(DetforgeError, match=r"\(B, 3, H, W\)"):
        model(torch.rand(1, 1, 64, 64))


def test_fuse_keeps_outputs() -> None:
    torch.manual_seed(0)
    model = create_model("n", 4)
    # non-trivial batch-norm statistics and affine parameters
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)  # type: ignore[union-attr]
            m.running_var.uniform_(0.5, 2.0)  # type: ignore[union-attr]
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    model.eval()
    assert model.backbone_is_channels_last()  # create_model stores NHWC weights
    x = torch.rand(2, 3, 96, 64)
    with torch.no_grad():
        before = model(x)
        model.fuse()
        after = model(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert model.backbone_is_channels_last()
    assert torch.allclose(before, after, atol=1e-4, rtol=1e-4)
    with torch.no_grad():
        model.fuse(channels_last=False)
        plain = model(x)
    assert not model.backbone_is_channels_last()
    assert torch.allclose(plain, after, atol=1e-5)


def test_anchor_cache_follows_input_size() -> None:
    model = create_model("n", 1).eval()
    with torch.no_grad():
        a = model(torch.rand(1, 3, 64, 64))
        b = model(torch.rand(1, 3, 128, 64))
        c = model(torch.rand(1, 3, 64, 64))
    assert a.shape[1] == 84 and b.shape[1] == 168 and c.shape[1] == 84


@pytest.mark.parametrize("name", ["mobilenet_v3_large", "efficientnet_b0"])
def test_other_backbone_families_give_strides_8_16_32(name: str) -> None:
    from detforge.models.tv_backbone import TorchvisionBackbone

    net = TorchvisionBackbone(name).eval()
    with torch.no_grad():
        feats = net(torch.rand(1, 3, 64, 96))
    assert [tuple(f.shape[2:]) for f in feats] == [(8, 12), (4, 6), (2, 3)]
    assert tuple(f.shape[1] for f in feats) == net.channels
