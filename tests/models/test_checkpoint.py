"""Checkpoint round trip through torch.load(weights_only=True), and clear errors."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from detforge.errors import DetforgeError
from detforge.models.checkpoint import load_checkpoint, load_model, save_checkpoint
from detforge.models.yolo import create_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class _Ema:
    def __init__(self, model: torch.nn.Module) -> None:
        self.ema = copy.deepcopy(model)
        self.updates = 7


def _save(path: Path) -> tuple[torch.nn.Module, _Ema]:
    torch.manual_seed(0)
    model = create_model("n", 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0 - 0.1 * e)
    model.train()
    loss = sum(o.float().mean() for o in model(torch.rand(1, 3, 64, 64)))
    loss.backward()  # type: ignore[union-attr]
    opt.step()
    sched.step()
    ema = _Ema(model)
    with torch.no_grad():
        for p in ema.ema.parameters():
            p.add_(0.01)
    save_checkpoint(
        path,
        model=model,
        ema=ema,
        optimizer=opt,
        scheduler=sched,
        epoch=4,
        best_fitness=0.25,
        class_names=["a", "b", "c"],
        config={"imgsz": 64, "lr": 0.01, "aug": {"flip": 0.5}},
        extra={"note": "x"},
    )
    return model, ema


def test_round_trip_weights_only(tmp_path: Path) -> None:
    path = tmp_path / "run" / "last.pt"
    model, ema = _save(path)
    raw = torch.load(path, weights_only=True)  # the safe loader accepts it
    assert raw["epoch"] == 4 and raw["ema_updates"] == 7
    assert raw["model_args"] == {"scale": "n", "num_classes": 3, "backbone": None, "reg_max": 16}
    assert "state" in raw["optimizer"] and raw["scheduler"]["last_epoch"] == 1
    assert not list(path.parent.glob(".*tmp"))  # no temporary left behind

    ckpt = load_checkpoint(path)
    assert ckpt["config"]["aug"] == {"flip": 0.5}
    loaded, names, meta = load_model(path)
    assert names == ["a", "b", "c"] and meta["epoch"] == 4 and meta["best_fitness"] == 0.25
    assert not loaded.training
    x = torch.rand(1, 3, 64, 64)
    ema.ema.eval()
    with torch.no_grad():
        assert torch.equal(loaded(x), ema.ema(x))  # EMA weights are the ones loaded
    raw_model, _, _ = load_model(path, use_ema=False)
    model.eval()
    with torch.no_grad():
        assert torch.equal(raw_model(x), model(x))


def test_non_plain_config_is_refused(tmp_path: Path) -> None:
    model = create_model("n", 1)
    with pytest.raises(TypeError, match="Path"):
        save_checkpoint(
            tmp_path / "x.pt", model=model, epoch=0, class_names=["a"], config={"p": tmp_path}
        )
    assert not (tmp_path / "x.pt").exists()


def test_errors_for_bad_files(tmp_path: Path) -> None:
    with pytest.raises(DetforgeError, match="not found"):
        load_model(tmp_path / "missing.pt")
    good = tmp_path / "good.pt"
    _save(good)
    truncated = tmp_path / "trunc.pt"
    truncated.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(DetforgeError, match="corrupt"):
        load_model(truncated)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"hello world, not a checkpoint")
    with pytest.raises(DetforgeError, match="not a model file") as exc:
        load_model(junk)
    assert "pickled" not in str(exc.value)  # a text file is not called a PyTorch file
    empty = tmp_path / "empty.pt"  # truncated to nothing: torch's loader says so
    empty.write_bytes(b"")
    with pytest.raises(DetforgeError, match="corrupt or truncated"):
        load_model(empty)
    other = tmp_path / "other.pt"
    torch.save({"model": {}}, other)
    with pytest.raises(DetforgeError, match="not a detforge checkpoint"):
        load_model(other)
    pickled = tmp_path / "pickled.pt"
    torch.save({"model": create_model("n", 1)}, pickled)  # a pickled module (Ultralytics-style)
    with pytest.raises(DetforgeError, match="pickled Python objects"):
        load_model(pickled)
    ckpt = torch.load(good, weights_only=True)
    ckpt["model_args"]["num_classes"] = 5
    ckpt["ema"] = None
    mismatch = tmp_path / "mismatch.pt"
    torch.save(ckpt, mismatch)
    with pytest.raises(DetforgeError, match="do not fit"):
        load_model(mismatch)
