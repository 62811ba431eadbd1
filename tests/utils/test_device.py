"""The one device resolver, on this machine (no CUDA, no MPS) and with CUDA faked: every
spelling, and a missing device as one line naming what is available."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from detforge.cli.main import main
from detforge.errors import DetforgeError
from detforge.utils.device import available_devices, resolve_device


@pytest.fixture()
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.fixture()
def two_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.mark.usefixtures("no_gpu")
def test_without_gpus() -> None:
    assert available_devices() == ["cpu"]
    for spelling in (None, "", "auto", "cpu", " CPU "):
        assert resolve_device(spelling) == torch.device("cpu")
    for spelling in ("cuda", "cuda:0", "0", "0,1", "cuda:1"):
        with pytest.raises(DetforgeError) as err:
            resolve_device(spelling)
        msg = str(err.value)
        assert f"--device {spelling}: CUDA is not available" in msg and "available: cpu" in msg
        assert "detforge doctor" in msg and "\n" not in msg
    with pytest.raises(DetforgeError, match=r"--device mps: Apple's MPS GPU .* available: cpu$"):
        resolve_device("mps")
    with pytest.raises(DetforgeError, match="must be cpu, cuda, cuda:N"):
        resolve_device("gpu0")


@pytest.mark.usefixtures("two_gpus")
def test_with_two_fake_gpus() -> None:
    assert available_devices() == ["cpu", "cuda:0", "cuda:1"]
    assert resolve_device("") == torch.device("cuda", 0)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("1") == torch.device("cuda", 1)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device("0,1") == torch.device("cuda", 0)  # one process takes the first
    # under torchrun each rank takes its own GPU
    assert resolve_device("0,1", local_rank=1, distributed=True) == torch.device("cuda", 1)
    assert resolve_device("cuda", local_rank=1, distributed=True) == torch.device("cuda", 1)
    with pytest.raises(DetforgeError, match="GPU 2 is not available here; available: cpu, cuda:0"):
        resolve_device("cuda:2")
    with pytest.raises(DetforgeError, match="GPU 3 is not available"):
        resolve_device("1,3", local_rank=1, distributed=True)


@pytest.mark.usefixtures("no_gpu", "one_torch_thread")
@pytest.mark.parametrize("spelling", ["cuda:0", "0", "0,1", "mps"])
def test_commands_refuse_a_missing_device_in_one_line(
    tmp_path: Path, spelling: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np
    from PIL import Image

    import detforge
    from tests.predict.helpers import random_checkpoint

    ckpt = random_checkpoint(tmp_path / "m.pt")
    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(img)
    data = tmp_path / "ds"
    data.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(data / "a.png")
    (data / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (data / "classes.txt").write_text("ant\nbee\ncow\n")
    commands = [
        ["predict", str(ckpt), str(img), "--save-txt", "--out", str(tmp_path / "o")],
        ["val", str(ckpt), str(data), "--split", "train"],
        ["lr-find", str(data), "--steps", "10", "--batch", "2", "--imgsz", "64"],
        ["train", str(data), "--epochs", "1", "--imgsz", "64", "--out", str(tmp_path / "r")],
        ["export", str(ckpt), "-o", str(tmp_path / "m.onnx")],
    ]
    for argv in commands:
        assert main([*argv, "--device", spelling]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "available: cpu" in err, (argv, err)
    with pytest.raises(DetforgeError, match="available: cpu"):
        detforge.load(ckpt, device=spelling)
    assert not (tmp_path / "m.onnx").exists()
