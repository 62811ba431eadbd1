"""Predictions through onnxruntime agree with PyTorch's (the export itself is tested in
tests/predict/test_export*.py by its owner)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import detforge
from detforge.cli.main import main
from tests.predict.helpers import assert_same_detections, random_checkpoint, scenes

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    from detforge.predict.export import export_onnx

    root = tmp_path_factory.mktemp("onnx")
    ckpt = random_checkpoint(root / "m.pt")
    dynamic = export_onnx(ckpt, root / "dynamic.onnx", imgsz=160, dynamic=True, verify=False)
    static = export_onnx(ckpt, root / "static.onnx", imgsz=160, verify=False)
    return ckpt, dynamic, static


@pytest.mark.slow
def test_pt_and_onnx_predictions_agree(models: tuple[Path, Path, Path]) -> None:
    ckpt, dynamic, static = models
    pt = detforge.load(ckpt, device="cpu")
    dyn = detforge.load(dynamic, device="cpu")
    assert dyn.backend == "onnxruntime" and dyn.class_names == pt.class_names
    wide = scenes(3, seed=2)  # 160x120, each letterboxed into the 160x160 square
    a, b = pt.predict(wide, conf=0.3, batch=2), dyn.predict(wide, conf=0.3, batch=2)
    assert sum(len(p) for p in a) > 10
    for x, y in zip(a, b, strict=True):
        assert_same_detections(x, y, rtol=1e-3, atol=1e-2)
    # The static graph takes exactly 1x3x160x160: the same input by the same rule.
    st = detforge.load(static, device="cpu")
    assert st.fixed_shape == (160, 160)
    for x, y in zip(pt.predict(wide, conf=0.3), st.predict(wide, conf=0.3, batch=2), strict=True):
        assert_same_detections(x, y, rtol=1e-3, atol=1e-2)


def test_predict_cli_runs_onnx_with_same_files(
    models: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    from PIL import Image

    ckpt, dynamic, _ = models
    src = tmp_path / "imgs"
    src.mkdir()
    for i, im in enumerate(scenes(2, seed=7)):
        Image.fromarray(im).save(src / f"im{i}.png")
    for weights, out in ((ckpt, tmp_path / "pt"), (dynamic, tmp_path / "onnx")):
        argv = ["predict", str(weights), str(src), "--out", str(out), "--save-txt", "--conf", "0.3"]
        assert main(argv) == 0
    for i in range(2):
        a = np.loadtxt(tmp_path / "pt" / "labels" / f"im{i}.txt", ndmin=2)
        b = np.loadtxt(tmp_path / "onnx" / "labels" / f"im{i}.txt", ndmin=2)
        assert a.shape == b.shape and len(a) > 0
        np.testing.assert_allclose(a[np.lexsort(a.T[::-1])], b[np.lexsort(b.T[::-1])], atol=1e-3)


def test_onnx_without_metadata_is_explained(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["images"], ["output"])], "g",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 32, 32])],
    )  # fmt: skip
    path = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    with pytest.raises(detforge.errors.DetforgeError, match="not a detforge ONNX export"):
        detforge.load(path)


def test_onnx_post_processing_runs_on_one_torch_thread(
    models: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beside onnxruntime, torch's NMS runs on one thread (its spinning OpenMP threads would
    take the cores the next forward needs); with a PyTorch network it keeps every thread;
    the caller's thread count is back afterwards."""
    import torch

    import detforge.models.postprocess as post
    from detforge.utils.cpu import torch_threads

    seen: list[int] = []
    real = post.postprocess

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(post, "postprocess", spy)
    pt, onnx_path = models[0], models[1]
    with torch_threads(2):
        detforge.load(onnx_path, device="cpu").predict(scenes(2, seed=1), batch=1)
        detforge.load(pt, device="cpu").predict(scenes(1, seed=1))
        assert torch.get_num_threads() == 2
    assert seen == [1, 1, 2]
