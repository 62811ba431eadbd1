"""One model, one answer: a checkpoint and its ONNX exports (static, fixed batch, dynamic) give
the same detections on non-square images of several shapes in one batch, at every batch size,
through the Python API and through ``val`` and ``map``; and the exported file records the
preprocessing rule its runner reads back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import detforge
from detforge.cli.main import main
from tests.predict.helpers import random_checkpoint, scenes, self_labelled_darknet

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# (h, w): landscape, portrait, odd sizes, a square, one smaller than the input
SHAPES = [(120, 160), (97, 203), (240, 90), (160, 160), (301, 180), (50, 70)]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from detforge.predict.export import export_onnx

    root = tmp_path_factory.mktemp("one")
    ckpt = random_checkpoint(root / "m.pt", imgsz=160)
    return {
        "pt": ckpt,
        # no --imgsz: the export takes the checkpoint's training size, as detforge.load does
        "static": export_onnx(ckpt, root / "static.onnx", verify=False),
        "batch2": export_onnx(ckpt, root / "batch2.onnx", batch=2, verify=False),
        "dynamic": export_onnx(ckpt, root / "dynamic.onnx", dynamic=True, verify=False),
    }


@pytest.fixture(scope="module")
def image_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("imgs")
    paths = []
    for k, (h, w) in enumerate(SHAPES):
        paths.append(root / f"im{k}.png")
        Image.fromarray(scenes(1, seed=20 + k, w=w, h=h)[0]).save(paths[-1])
    return paths


def assert_agree(a: detforge.predict.api.Prediction, b: detforge.predict.api.Prediction) -> None:
    """Same detections: equal counts, and a one-to-one pairing with the same class, boxes within
    1e-3 of the image size and scores within 1e-4."""
    assert a.shape == b.shape and len(a) == len(b), (len(a), len(b))
    tol = 1e-3 * max(a.shape)
    used = np.zeros(len(b), dtype=bool)
    for box, score, cls in zip(a.boxes, a.scores, a.classes, strict=True):
        err = np.abs(b.boxes.astype(np.float64) - box).max(axis=1)
        err[(b.classes != cls) | used] = np.inf
        j = int(np.argmin(err)) if len(err) else -1
        assert j >= 0 and err[j] <= tol, f"no partner for class {cls} box {box}"
        assert abs(float(b.scores[j]) - float(score)) <= 1e-4
        used[j] = True


def test_onnx_records_the_rule_its_runner_reads(models: dict[str, Path]) -> None:
    import onnx

    from detforge.data.letterbox import InputRule
    from detforge.predict.onnx_model import OnnxDetector

    proto = onnx.load(str(models["static"]))
    meta = json.loads({p.key: p.value for p in proto.metadata_props}["detforge"])
    assert meta["preprocess"] == InputRule(160, 160).to_meta()
    assert meta["preprocess"]["fill"] == 114 and meta["preprocess"]["align"] == "center"
    for name in ("static", "dynamic"):
        assert OnnxDetector(models[name]).rule == InputRule(160, 160)
    pt, st = detforge.load(models["pt"], device="cpu"), detforge.load(models["static"])
    assert pt.rule == st.rule == InputRule(160, 160) and st.fixed_shape == (160, 160)


def test_pt_and_onnx_agree_on_mixed_shapes_at_every_batch_size(
    models: dict[str, Path], image_files: list[Path]
) -> None:
    pt = detforge.load(models["pt"], device="cpu")
    ref = pt.predict(image_files, conf=0.25, batch=4)
    assert sum(len(p) for p in ref) > 15 and all(len(p) for p in ref)
    assert [p.shape for p in ref] == SHAPES
    arrays = [np.asarray(Image.open(p)) for p in image_files]
    runs = [("pt", 1), ("pt", 6)] + [
        (n, b) for n in ("static", "batch2", "dynamic") for b in (1, 4)
    ]
    for name, batch in runs:
        model = detforge.load(models[name], device="cpu")
        for src in (image_files, arrays):  # files decode to the input size; arrays are resized
            got = model.predict(src, conf=0.25, batch=batch)
            for a, b in zip(ref, got, strict=True):
                assert_agree(a, b)


def test_val_and_map_give_the_same_numbers_for_pt_and_onnx(
    models: dict[str, Path], tmp_path: Path
) -> None:
    data = self_labelled_darknet(tmp_path / "data", models["pt"], n=5, seed=3)
    stats = {}
    for name in ("pt", "static", "dynamic"):
        out = tmp_path / f"{name}.json"
        argv = ["val", str(models[name]), str(data), "--batch", "3", "--json", str(out)]
        assert main(argv) == 0
        stats[f"val-{name}"] = json.loads(out.read_text())["coco"]["stats"]
        assert main(["map", str(data), str(models[name]), "--out", str(tmp_path / name)]) == 0
        got = json.loads((tmp_path / name / "metrics.json").read_text())
        stats[f"map-{name}"] = got["coco"]["stats"]
    ref = stats["val-pt"]
    assert ref["AP50"] > 0.2
    for key, value in stats.items():
        for metric in ("AP", "AP50", "AP75", "AR100"):
            assert value[metric] == pytest.approx(ref[metric], abs=1e-4), (key, metric)
    assert stats["map-pt"] == stats["val-pt"]  # the same code path: identical numbers


def test_a_fixed_size_export_refuses_another_imgsz(models: dict[str, Path]) -> None:
    from detforge.errors import DetforgeError

    with pytest.raises(DetforgeError, match="160x160 inputs only"):
        detforge.load(models["static"], imgsz=320)
    dyn = detforge.load(models["dynamic"], imgsz=192)
    assert dyn.rule.shape == (192, 192)
    pt = detforge.load(models["pt"], imgsz=192, device="cpu")
    img = scenes(1, seed=3, w=200, h=130)[0]
    assert_agree(pt.predict(img, conf=0.25)[0], dyn.predict(img, conf=0.25)[0])


def test_onnx_runner_resolves_devices_like_every_command(
    models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from detforge.errors import DetforgeError
    from detforge.predict.onnx_model import OnnxDetector

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for spelling in ("cuda:0", "0", "cuda"):
        with pytest.raises(DetforgeError, match=r"CUDA is not available here.*available: cpu"):
            OnnxDetector(models["static"], device=spelling)
        with pytest.raises(DetforgeError, match="available: cpu"):
            detforge.load(models["dynamic"], device=spelling)
    assert OnnxDetector(models["static"], device="cpu").fixed_shape == (160, 160)
