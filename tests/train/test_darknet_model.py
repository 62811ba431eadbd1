"""Fine-tuning set-up of a Darknet network: class count, weights (full and partial), freezing,
and the eval-mode output contract."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from detforge.errors import DetforgeError
from detforge.models.filekind import is_darknet_weights
from detforge.train.darknet_model import (
    DarknetDetector,
    cfg_for_classes,
    freeze_layers,
    load_darknet_weights,
    with_letter_box,
)

from ._darknet_tiny import source_network, tiny_cfg_text, write_tiny_weights

HEADS = (11, 14)  # the convs before the [yolo] layers
CONVS = (0, 2, 4, 6, 8, 10, 11, 14)


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_new_class_count_rebuilds_the_heads_and_loads_the_rest(tmp_path: Path) -> None:
    w = write_tiny_weights(tmp_path / "tiny.weights", classes=3)
    text, changed = cfg_for_classes(tiny_cfg_text(3), 2)
    assert changed and "filters=21" in text and "classes=2" in text
    assert text.count("\n") == tiny_cfg_text(3).count("\n")  # edited in place
    model = DarknetDetector(text)
    assert "letter_box=1" in model.build_args["cfg"] and "letter_box" not in text
    before = {i: {k: v.clone() for k, v in model.net.layers[i].state_dict().items()} for i in HEADS}
    got = load_darknet_weights(model, w, tiny_cfg_text(3), "tiny.cfg")
    assert (got.loaded, got.convs, got.fresh, got.file_classes) == (6, 8, [11, 14], 3)
    src = source_network(w, 3)
    for i in CONVS:
        if i in HEADS:
            assert model.net.layers[i].conv.weight.shape[0] == 21
            assert all(
                torch.equal(v, before[i][k]) for k, v in model.net.layers[i].state_dict().items()
            )
        else:
            assert _same(model.net.layers[i], src.layers[i]), i
    assert "6 of 8 convolutional layers loaded" in got.message(w)


def test_same_class_count_loads_everything(tmp_path: Path) -> None:
    w = write_tiny_weights(tmp_path / "tiny.weights", classes=2)
    model = DarknetDetector(cfg_for_classes(tiny_cfg_text(2), 2)[0])
    got = load_darknet_weights(model, w, tiny_cfg_text(2), "tiny.cfg")
    assert (got.loaded, got.fresh) == (8, [])
    assert _same(model.net, source_network(w, 2))


def test_cfg_already_for_the_dataset_with_full_coco_style_weights(tmp_path: Path) -> None:
    # the user's cfg says classes=2 (rewritten for the dataset) but the weights were written
    # for 3 classes: the class count is read off the file's length
    w = write_tiny_weights(tmp_path / "tiny.weights", classes=3)
    model = DarknetDetector(cfg_for_classes(tiny_cfg_text(2), 2)[0])
    got = load_darknet_weights(model, w, tiny_cfg_text(2), "tiny-obj.cfg")
    assert (got.loaded, got.fresh, got.file_classes) == (6, [11, 14], 3)


def test_partial_conv_n_file(tmp_path: Path) -> None:
    w = write_tiny_weights(tmp_path / "tiny.conv.9", classes=3, layers=9)  # convs 0-8
    assert is_darknet_weights(w)
    model = DarknetDetector(cfg_for_classes(tiny_cfg_text(3), 2)[0])
    fresh10 = {k: v.clone() for k, v in model.net.layers[10].state_dict().items()}
    got = load_darknet_weights(model, w, tiny_cfg_text(3), "tiny.cfg")
    assert (got.loaded, got.fresh, got.layers) == (5, [], 9)
    src = source_network(w, 3)
    for i in (0, 2, 4, 6, 8):
        assert _same(model.net.layers[i], src.layers[i])
    assert all(torch.equal(v, fresh10[k]) for k, v in model.net.layers[10].state_dict().items())
    assert "partial file: layers 0-8" in got.message(w)


def test_wrong_weights_file_is_one_error(tmp_path: Path) -> None:
    w = tmp_path / "bad.weights"
    w.write_bytes(b"\0" * 20 + b"\1" * 123)
    model = DarknetDetector(cfg_for_classes(tiny_cfg_text(2), 2)[0])
    with pytest.raises(DetforgeError, match="do not belong together"):
        load_darknet_weights(model, w, tiny_cfg_text(2), "tiny.cfg")


@pytest.mark.parametrize("n", [15, 16])
def test_freeze_of_every_weighted_layer_is_refused(n: int) -> None:
    # layers 0-14 hold the weights (14: the second head's conv, 15: its [yolo]); freezing them
    # all used to end the first step with torch's 'element 0 of tensors does not require grad'
    model = DarknetDetector(cfg_for_classes(tiny_cfg_text(2), 2)[0])
    with pytest.raises(DetforgeError) as info:
        freeze_layers(model, n)
    assert str(info.value) == (
        f"--freeze {n} fixes every layer with weights (the last is layer 14), so nothing "
        "would train; use --freeze 14 or less"
    )
    assert all(p.requires_grad for p in model.parameters())  # refused before any change
    freeze_layers(model, 14)
    assert [
        i for i, m in enumerate(model.net.layers) if any(p.requires_grad for p in m.parameters())
    ] == [14]


def test_freeze_and_eval_contract() -> None:
    model = DarknetDetector(cfg_for_classes(tiny_cfg_text(2), 2)[0])
    n = freeze_layers(model, 4)
    assert n == sum(p.numel() for layer in list(model.net.layers)[:4] for p in layer.parameters())
    assert not any(p.requires_grad for p in model.net.layers[2].parameters())
    assert all(p.requires_grad for p in model.net.layers[4].parameters())
    x = torch.rand(2, 3, 64, 64)
    model.train()
    raw = model(x)
    assert [tuple(r.shape) for r in raw] == [(2, 21, 2, 2), (2, 21, 4, 4)]
    model.eval()
    with torch.no_grad():
        out = model(x)
        raw = model.net(x)  # the same (eval-mode) network outputs
    assert out.shape == (2, 3 * (4 + 16), 6)
    # row 0 is head 0's cell (0, 0), anchor 3 (mask 3,4,5): cx = sigmoid(tx) / 2 * 64
    p = raw[0][0].view(3, 7, 2, 2)[:, :, 0, 0]
    cx = torch.sigmoid(p[0, 0]) / 2 * 64
    w = torch.exp(p[0, 2]) * 24
    assert float(out[0, 0, 0]) == pytest.approx(float(cx - w / 2), rel=1e-5)
    obj, cls = torch.sigmoid(p[0, 4]), torch.sigmoid(p[0, 5:])
    torch.testing.assert_close(out[0, 0, 4:], obj * cls)
    with pytest.raises(DetforgeError, match="--freeze 99"):
        freeze_layers(model, 99)


def test_letter_box_is_set_once() -> None:
    text = with_letter_box("[net]\nwidth=64\nletter_box=0\n[convolutional]\n")
    assert text.count("letter_box") == 1 and "letter_box=1" in text
    assert with_letter_box("[net]\nwidth=64\n\n[yolo]\n").startswith("[net]\nletter_box=1\nwidth")
    once = with_letter_box("[net]\nwidth=64\n\n[yolo]\n")
    assert with_letter_box(once) == once  # idempotent, line breaks kept


def test_fresh_heads_start_with_a_low_objectness(tmp_path: Path) -> None:
    import math
    from types import SimpleNamespace

    from detforge.train.darknet_model import OBJ_PRIOR, build_darknet

    (tmp_path / "t.cfg").write_text(tiny_cfg_text(3))
    cfg = SimpleNamespace(cfg=str(tmp_path / "t.cfg"), resume=None, freeze=0, anchors=None)
    model, loss = build_darknet(cfg, 2)
    bias = model.net.layers[11].conv.bias.view(3, 7)
    assert torch.allclose(bias[:, 4], torch.full((3,), math.log(OBJ_PRIOR / (1 - OBJ_PRIOR))))
    assert float(bias.detach()[:, [0, 1, 2, 3, 5, 6]].abs().max()) == 0.0
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 64))
    assert float(out[..., 4:].max()) < 2 * OBJ_PRIOR  # obj x cls starts near the prior
    assert len(loss.specs) == 2 and loss.specs[0].mask == (3, 4, 5)


def test_region_head_is_refused_and_unsupported_keys_are_named(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from detforge.train.darknet_model import build_darknet

    region = (
        "[net]\nwidth=64\nheight=64\nchannels=3\n\n"
        "[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\nstride=1\npad=1\n"
        "activation=leaky\n\n"
        "[maxpool]\nsize=2\nstride=2\n\n"
        "[convolutional]\nfilters=14\nsize=1\nstride=1\npad=1\nactivation=linear\n\n"
        "[region]\nanchors=1,1, 2,2\nclasses=2\nnum=2\ncoords=4\nsoftmax=1\n"
    )
    (tmp_path / "v2.cfg").write_text(region)
    with pytest.raises(DetforgeError, match=r"\[yolo\] heads only") as exc:
        build_darknet(
            SimpleNamespace(cfg=str(tmp_path / "v2.cfg"), resume=None, freeze=0, anchors=None), 2
        )
    assert exc.value.line == 25  # the user's line
    extra = "max_delta=5\nobjectness_smooth=1\nfocal_loss=1\ncounters_per_class=3,1\n"
    model = DarknetDetector(
        tiny_cfg_text(2, extra=extra).replace("truth_thresh=1", "truth_thresh=.8")
    )
    assert model.ineffective() == []  # every [yolo] training key has its effect
    specs = model.loss_specs()
    assert all(s.max_delta == 5.0 and s.objectness_smooth and s.focal_loss for s in specs)
    assert all(s.class_multipliers == (1.0, 3.0) and s.truth_thresh == 0.8 for s in specs)
