"""``detforge export`` in-process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from detforge.cli.main import main
from detforge.models.checkpoint import save_checkpoint
from detforge.models.yolo import create_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_export_cli_writes_verified_onnx(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.manual_seed(0)
    ckpt = tmp_path / "run" / "best.pt"
    save_checkpoint(
        ckpt, model=create_model("n", 2), epoch=3, class_names=["cat", "dog"], config={"imgsz": 64}
    )
    assert main(["export", str(ckpt), "--dynamic"]) == 0  # size from the checkpoint's config
    out = tmp_path / "run" / "best.onnx"
    assert out.is_file() and "best.onnx" in capsys.readouterr().out
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape == ["batch", 3, "height", "width"]
    meta = json.loads(sess.get_modelmeta().custom_metadata_map["detforge"])
    assert meta["imgsz"] == [64, 64] and meta["class_names"] == ["cat", "dog"]
    (res,) = sess.run(None, {"images": np.zeros((2, 3, 64, 96), np.float32)})
    assert res.shape == (2, 8 * 12 + 4 * 6 + 2 * 3, 6)


def test_export_cli_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(tmp_path / "nope.pt")]) == 2
    assert "not found" in capsys.readouterr().err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    assert main(["export", str(bad), "--imgsz", "64"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error" in err
    ckpt = tmp_path / "ok.pt"
    save_checkpoint(ckpt, model=create_model("n", 1), epoch=0, class_names=["a"])
    assert main(["export", str(ckpt), "--imgsz", "65"]) == 2
    assert "multiple of 32" in capsys.readouterr().err


@pytest.mark.parametrize("to", ["onnx", "darknet"])
def test_export_never_writes_into_or_over_an_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], to: str
) -> None:
    """``-o`` naming an input, a file where a folder is meant, or a folder whose outputs
    would replace an input: one error line each, even with --exist-ok; the files untouched."""
    from tests.models.darknet.helpers import tiny_darknet

    cfg, weights = tiny_darknet(tmp_path)
    names = tmp_path / "two.names"
    names.write_text("a\nb\n")
    other = tmp_path / "notes.txt"
    other.write_text("keep")
    before = {p: p.read_bytes() for p in (cfg, weights, names, other)}
    base = ["export", str(weights), "--cfg", str(cfg), "--names", str(names), "--to", to,
            "--no-verify", "--exist-ok"]  # fmt: skip
    for out, needle in [
        (cfg, "input files"), (weights, "input files"), (names, "input files"),
        (other, "not a folder"), (other / "sub", "not a folder"), (tmp_path, "input files"),
    ]:  # fmt: skip
        if to == "onnx" and out == tmp_path:
            continue  # tiny.onnx beside the inputs is a new file
        assert main([*base, "-o", str(out)]) == 2, out
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and needle in err and "Traceback" not in err, err
    assert {p: p.read_bytes() for p in before} == before


def test_export_out_empty_or_too_long_is_one_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``-o ''`` wrote the ONNX file into the current folder (Path('') is '.'), and a name
    longer than the system allows was an OSError traceback; both are one error now."""
    from tests.predict.helpers import random_checkpoint

    ckpt = random_checkpoint(tmp_path / "m.pt")
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    long = "n" * 300
    for out in ("", long, f"{long}.onnx"):
        assert main(["export", str(ckpt), "-o", out, "--no-verify"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "detforge export: error: OUT is an empty name (an unset shell variable?); give a "
        "folder ('.' for this one)",
        f"detforge export: error: {long}: OUT cannot be used (File name too long)",
        f"detforge export: error: {long}.onnx: OUT cannot be used (File name too long)",
    ]
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["here", "m.pt"]
