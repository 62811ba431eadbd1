"""Choosing training/validation images, --val-fraction, devices; early stopping on patience."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detforge.errors import DetforgeError
from detforge.formats.darknet import read_darknet
from detforge.train.setup import load_training_data
from detforge.train.trainer import train

from ._tiny import one_torch_thread, tiny_config, tiny_data  # noqa: F401 (autouse fixture)


def test_val_fraction_is_a_fixed_subset_and_missing_valid_is_held_out(tmp_path: Path) -> None:
    data = tiny_data(tmp_path / "ds", num_images=30)
    ds = read_darknet(data)
    n_valid = ds.split("valid").num_images
    a = load_training_data(str(data), check=False, val_fraction=0.5, note=lambda _: None)
    b = load_training_data(str(data), check=False, val_fraction=0.5, note=lambda _: None)
    assert a.val.num_images == round(n_valid * 0.5)
    assert list(a.val.images.path) == list(b.val.images.path)  # the same images every time
    assert set(a.val.images.path) <= set(ds.split("valid").images.path)
    assert any("--val-fraction 0.5" in n for n in a.notes)

    only_train = ds.with_splits(["train"] * ds.num_images)
    held = load_training_data("", dataset=only_train, check=False, note=lambda _: None)
    assert held.val.num_images == 3 and held.train.num_images == 27
    assert not set(held.val.images.path) & set(held.train.images.path)
    assert np.all(held.val.images.width > 0)


def test_early_stopping_on_patience(tmp_path: Path) -> None:
    # LR ~0: the weights do not move, the validation fitness never improves after epoch 1
    data = tiny_data(tmp_path / "ds")
    cfg = tiny_config(data, tmp_path / "run", epochs=6, lr=1e-9, val_every=1, patience=2, ema=False)
    res = train(cfg)
    assert res.best_epoch == 1 and res.epochs_done == 3
    assert res.stop_reason == "no improvement for 2 epochs (best epoch 1)"


def test_weights_of_another_architecture_are_refused(tmp_path: Path) -> None:
    from detforge.models.checkpoint import save_checkpoint
    from detforge.models.yolo import create_model

    ckpt = tmp_path / "s.pt"
    save_checkpoint(ckpt, model=create_model("s", 3), epoch=0, class_names=["a", "b", "c"])
    cfg = tiny_config(tiny_data(tmp_path / "ds"), tmp_path / "run", weights=str(ckpt))
    with pytest.raises(DetforgeError, match="--model n"):
        train(cfg)


def test_a_darknet_checkpoint_without_its_cfg_says_so_in_one_short_line(tmp_path: Path) -> None:
    # The message used to quote model_args whole: the network's entire cfg file in one line.
    from detforge.models.checkpoint import save_checkpoint
    from detforge.train.darknet_model import DarknetDetector, cfg_for_classes

    from ._darknet_tiny import tiny_cfg_text

    ckpt = tmp_path / "best.pt"
    net = DarknetDetector(cfg_for_classes(tiny_cfg_text(3), 3)[0])
    save_checkpoint(ckpt, model=net, epoch=0, class_names=["a", "b", "c"])
    cfg = tiny_config(tiny_data(tmp_path / "ds"), tmp_path / "run", weights=str(ckpt))
    with pytest.raises(DetforgeError) as info:
        train(cfg)
    assert str(info.value) == (
        f"{ckpt}: a Darknet network trained with --cfg, not a --model n detector: fine-tune "
        "it with its network, --cfg CFG (e.g. the .cfg 'detforge export --to darknet' writes "
        "for it)"
    )
