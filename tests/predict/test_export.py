"""ONNX export checked against PyTorch through onnxruntime; the onnxruntime runner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from detforge.errors import DetforgeError
from detforge.models.checkpoint import save_checkpoint
from detforge.models.postprocess import postprocess
from detforge.models.yolo import Detector, create_model
from detforge.predict.export import export_onnx
from detforge.predict.onnx_model import OnnxDetector

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model() -> Detector:
    torch.manual_seed(0)
    model = create_model("n", 3)
    for m in model.modules():  # non-trivial batch-norm so that fusing is exercised
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3)  # type: ignore[union-attr]
            m.running_var.uniform_(0.5, 2.0)  # type: ignore[union-attr]
    for branch in model.head.cls:  # class scores around 0.5, so that NMS has work to do
        branch[-1].bias.data.fill_(0.0)  # type: ignore[index,union-attr]
    return model.eval()


@pytest.fixture(scope="module")
def static_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Detector, Path]:
    """One static 64x96 export shared by the tests below (exports take seconds)."""
    model = _model()
    path = tmp_path_factory.mktemp("onnx") / "m.onnx"
    torch.set_num_threads(1)
    return model, export_onnx(model, path, imgsz=(64, 96), class_names=["a", "b", "c"])


def test_static_export_matches_pytorch(static_export: tuple[Detector, Path]) -> None:
    model, out = static_export
    proto = onnx.load(str(out))
    meta = json.loads({p.key: p.value for p in proto.metadata_props}["detforge"])
    assert meta["class_names"] == ["a", "b", "c"] and meta["imgsz"] == [64, 96]
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape == [1, 3, 64, 96]
    x = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(3))
    got = sess.run(None, {"images": x.numpy()})[0]
    with torch.no_grad():
        ref = model(x).numpy()  # the unfused original
    assert got.shape == ref.shape == (1, 8 * 12 + 4 * 6 + 2 * 3, 7)
    np.testing.assert_allclose(got[..., :4], ref[..., :4], rtol=1e-3, atol=1e-3 * 96)
    np.testing.assert_allclose(got[..., 4:], ref[..., 4:], atol=1e-4)
    assert model.head.box[0][0].bn is not None  # type: ignore[index,union-attr]  # not fused


def test_dynamic_export_and_runner(tmp_path: Path) -> None:
    model = _model()
    out = export_onnx(model, tmp_path / "d.onnx", imgsz=64, dynamic=True)
    det = OnnxDetector(out)
    assert det.fixed_shape is None and det.class_names == ["0", "1", "2"]
    x = torch.rand(2, 3, 96, 64, generator=torch.Generator().manual_seed(4))
    got = det(x)
    assert isinstance(got, torch.Tensor)
    with torch.no_grad():
        ref = model(x)
    assert got.shape == ref.shape
    assert torch.allclose(got[..., :4], ref[..., :4], rtol=1e-3, atol=0.1)
    # same detections after NMS
    a, b = postprocess(got, conf=0.3), postprocess(ref, conf=0.3)
    assert [len(d.scores) for d in a] == [len(d.scores) for d in b]
    assert len(a[0].scores) > 0
    assert torch.equal(a[0].classes, b[0].classes)
    assert isinstance(det(x.numpy()), np.ndarray)


def test_fixed_batch_runner_chunks_and_checks_size(tmp_path: Path) -> None:
    model = _model()
    ckpt = tmp_path / "best.pt"
    save_checkpoint(ckpt, model=model, epoch=1, class_names=["x", "y", "z"])
    out = export_onnx(ckpt, imgsz=64, batch=2)
    assert out == tmp_path / "best.onnx"
    det = OnnxDetector(out)
    assert det.fixed_batch == 2 and det.fixed_shape == (64, 64) and det.class_names[0] == "x"
    x = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
    got = det(x)
    assert got.shape == ref.shape and torch.allclose(got[..., 4:], ref[..., 4:], atol=1e-4)
    with pytest.raises(DetforgeError, match="re-export with --dynamic"):
        det(torch.rand(1, 3, 96, 64))


def test_half_export_runs(tmp_path: Path) -> None:
    out = export_onnx(_model(), tmp_path / "h.onnx", imgsz=64, half=True)
    det = OnnxDetector(out)
    assert det.half
    res = det(np.random.default_rng(0).random((1, 3, 64, 64)).astype(np.float32))
    assert res.dtype == np.float32 and res.shape == (1, 84, 7) and np.isfinite(res).all()


def test_export_errors(tmp_path: Path) -> None:
    with pytest.raises(DetforgeError, match="multiple of 32"):
        export_onnx(_model(), tmp_path / "x.onnx", imgsz=100)
    with pytest.raises(DetforgeError, match="not found"):
        export_onnx(tmp_path / "missing.pt", imgsz=64)
    with pytest.raises(DetforgeError, match=r"\.onnx"):
        export_onnx(_model(), tmp_path / "x.txt", imgsz=64)


def test_runner_refuses_foreign_onnx(static_export: tuple[Detector, Path], tmp_path: Path) -> None:
    foreign = tmp_path / "plain.onnx"
    proto = onnx.load(str(static_export[1]))
    del proto.metadata_props[:]
    onnx.save(proto, str(foreign))
    with pytest.raises(DetforgeError, match="not a detforge ONNX"):
        OnnxDetector(foreign)
