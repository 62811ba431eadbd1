"""A Darknet / ONNX file given where a detforge checkpoint is expected: say what it is."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from detforge.errors import DetforgeError
from detforge.models.filekind import darknet_weights_header, describe_foreign_model


def _weights(path: Path, major: int = 0, minor: int = 2, seen: int = 32013312) -> Path:
    head = struct.pack("<3i", major, minor, 0)
    head += struct.pack("<Q", seen) if major * 10 + minor >= 2 else struct.pack("<i", seen)
    path.write_bytes(head + np.arange(50, dtype=np.float32).tobytes())
    return path


def test_darknet_header_versions() -> None:
    new = struct.pack("<3iQ", 0, 2, 5, 2**33) + b"\0" * 8
    assert darknet_weights_header(new) == (0, 2, 5, 2**33)
    old = struct.pack("<4i", 0, 1, 0, 64000) + b"\0" * 8
    assert darknet_weights_header(old) == (0, 1, 0, 64000)
    assert (
        darknet_weights_header(b"\x80\x02\x8a\x0alm\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")
        is None
    )


def test_load_model_names_darknet_files(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from detforge.models.checkpoint import load_model

    # a Darknet weights file under an unexpected name is recognised by its header
    w = _weights(tmp_path / "yolov4-tiny.pt")
    with pytest.raises(
        DetforgeError, match=r"a Darknet weights file \(version 0.2.0, seen 32013312\)"
    ):
        load_model(w)
    w = _weights(tmp_path / "yolov4-tiny.weights")
    with pytest.raises(DetforgeError, match=r"--cfg yolov4-tiny\.cfg") as exc:
        load_model(w)
    assert "detforge train DATA --cfg yolov4-tiny.cfg --weights yolov4-tiny.weights" in str(
        exc.value
    )
    assert "pickled" not in str(exc.value)
    part = _weights(tmp_path / "yolov4-tiny.conv.29", minor=1, seen=0)
    with pytest.raises(DetforgeError, match=r"partial Darknet weights \(.conv.N\)"):
        load_model(part)
    cfg = tmp_path / "yolov4-tiny.cfg"
    cfg.write_text("# my network\n[net]\nwidth=416\n[convolutional]\nfilters=16\n")
    with pytest.raises(DetforgeError, match=r"Darknet network description \(.cfg\)") as exc:
        load_model(cfg)
    assert "detforge predict yolov4-tiny.weights SOURCE --cfg yolov4-tiny.cfg" in str(exc.value)


def test_predict_and_train_weights_without_cfg_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    from types import SimpleNamespace

    from PIL import Image

    from detforge.cli.main import main
    from detforge.train.session import load_pretrained

    w = _weights(tmp_path / "net.weights")
    Image.new("RGB", (32, 32)).save(tmp_path / "a.jpg")
    assert main(["predict", str(w), str(tmp_path / "a.jpg"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--cfg" in err and "Traceback" not in err and "pickled" not in err
    # train --weights x.weights without --cfg: the checkpoint loader names the file's kind
    cfg = SimpleNamespace(weights=str(w), model="n")
    with pytest.raises(DetforgeError, match="a Darknet weights file") as exc:
        load_pretrained(None, cfg, print)  # type: ignore[arg-type]
    assert "detforge train DATA --cfg net.cfg --weights net.weights" in str(exc.value)


def test_other_files_are_left_to_torch(tmp_path: Path) -> None:
    z = tmp_path / "m.pt"
    z.write_bytes(b"PK\x03\x04" + b"\0" * 40)
    assert describe_foreign_model(z) is None
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"\x08\x07\x12\x07pytorch")
    assert "ONNX model" in str(describe_foreign_model(onnx))
