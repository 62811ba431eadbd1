"""detforge.load() with a Darknet .weights: one loader, Darknet's inference semantics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import detforge
from detforge.errors import DetforgeError
from detforge.models.darknet.model import detect, load_darknet
from detforge.predict.darknet import DarknetPredictor
from tests.models.darknet.conftest import fetch_yolov3_tiny
from tests.models.darknet.helpers import scenes, tiny_darknet

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return tiny_darknet(tmp_path_factory.mktemp("dk"))


def test_load_finds_the_cfg_and_names(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    cfg, weights = tiny
    model = detforge.load(weights, device="cpu")
    assert isinstance(model, DarknetPredictor)
    assert model.class_names == ("class0", "class1")
    names = tmp_path / "obj.names"
    names.write_text("deer\nboar\n")
    model = detforge.load(weights, cfg=cfg, names=names, device="cpu")
    assert model.class_names == ("deer", "boar")
    assert detforge.load(weights, names=["a", "b"]).class_names == ("a", "b")
    names.write_text("deer\n")
    with pytest.raises(DetforgeError, match="1 class names for a network with classes=2"):
        detforge.load(weights, names=names)
    lonely = tmp_path / "lonely.weights"
    lonely.write_bytes(weights.read_bytes())
    with pytest.raises(DetforgeError, match=r"needs its network \.cfg: pass --cfg") as err:
        detforge.load(lonely)
    assert err.value.path == str(lonely)
    with pytest.raises(DetforgeError, match="runs at its cfg's size \\(96x64\\)"):
        detforge.load(weights, imgsz=416)
    with pytest.raises(DetforgeError, match="do not belong together"):
        detforge.load(weights, cfg=_other_cfg(tmp_path))


def _other_cfg(folder: Path) -> Path:
    """The tiny cfg with 3 classes: its weights do not fit a 2-class file."""
    from tests.models.darknet.helpers import TINY_CFG

    path = folder / "three.cfg"
    text = TINY_CFG.format(nms_kind="greedynms").replace("classes=2", "classes=3")
    path.write_text(text.replace("filters=21", "filters=24"))
    return path


def test_predict_is_darknet_detect(tiny: tuple[Path, Path]) -> None:
    """The Predictor path gives exactly the core's Darknet detections (stretch resize,
    objectness x class, greedynms from the cfg at 0.45), clipped to the image."""
    cfg, weights = tiny
    net = load_darknet(cfg, weights)
    model = detforge.load(weights, device="cpu")
    images = scenes(4)
    preds = model.predict(images, batch=3)
    for image, pred in zip(images, preds, strict=True):
        ref = detect(net, image)
        h, w = image.shape[:2]
        boxes = ref.boxes.copy()
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
        assert len(pred) == len(ref.scores) > 0
        np.testing.assert_array_equal(pred.classes, ref.classes)
        np.testing.assert_allclose(pred.scores, ref.scores, atol=1e-5)  # fused BN
        np.testing.assert_allclose(pred.boxes, boxes, atol=1e-3)
    fewer = model.predict(images[0], conf=0.5, iou=0.3)[0]
    ref = detect(net, images[0], thresh=0.5, nms=0.3)
    assert len(fewer) == len(ref.scores) < len(preds[0])


def test_predict_dataset_uses_map_settings(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    from PIL import Image

    from detforge.formats.darknet import read_darknet

    cfg, weights = tiny
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, im in enumerate(scenes(2)):
        Image.fromarray(im).save(folder / f"im{i}.png")
        (folder / f"im{i}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (folder / "obj.names").write_text("a\nb\n")
    ds = read_darknet(folder)
    pred = detforge.load(weights).predict_dataset(ds)
    net = load_darknet(cfg, weights)
    im0 = np.asarray(Image.open(ds.images.path[0]).convert("RGB"))
    ref = detect(net, im0, thresh=0.005)  # validate_detector_map's threshold, no clipping
    sel = pred.boxes.image == 0
    assert sel.sum() == len(ref.scores)
    np.testing.assert_allclose(np.sort(pred.boxes.score[sel]), np.sort(ref.scores), atol=1e-6)
    assert pred.boxes.coords.min() < 0 or pred.boxes.coords.max() > 100  # not clipped


def test_real_photo_through_load_matches_opencv(photo_path: Path) -> None:
    from PIL import Image

    from tests.models.darknet.test_opencv import _iou, _opencv_detections

    folder = fetch_yolov3_tiny()
    cfg, weights = folder / "yolov3-tiny.cfg", folder / "yolov3-tiny.weights"
    model = detforge.load(weights, names=folder / "coco.names", device="cpu")
    pred = model.predict(photo_path)[0]
    image = np.asarray(Image.open(photo_path).convert("RGB"))
    h, w = image.shape[:2]
    from detforge.models.darknet.preprocess import darknet_input

    ref = _opencv_detections(cfg, weights, darknet_input(image, 416, 416), w, h)
    assert len(pred) == len(ref) > 0 and "tie" in pred.names
    for k, s, b in ref:
        b = np.clip(b, 0, [w, h, w, h])
        assert any(
            c == k and abs(s2 - s) <= 0.02 and _iou(b, b2) >= 0.9
            for c, s2, b2 in zip(pred.classes, pred.scores, pred.boxes, strict=True)
        )


@pytest.fixture
def photo_path() -> Path:
    from matplotlib import cbook

    return Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def test_batch_forward_contract(tiny: tuple[Path, Path]) -> None:
    """``Predictor.forward`` of a Darknet model: (B, h, w, 3) uint8 at the cfg size ->
    (B, A, 4 + C) xyxy input pixels and objectness x class probability."""
    import torch

    from detforge.models.darknet.model import forward_rows

    cfg, weights = tiny
    model = detforge.load(weights, fuse=False)
    batch = np.random.default_rng(1).integers(0, 256, (2, 64, 96, 3), dtype=np.uint8)
    out = model.forward(batch).numpy()
    net = load_darknet(cfg, weights)
    x = torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255
    rows = forward_rows(net, x).numpy()
    assert out.shape == (2, rows.shape[1], 4 + 2)
    np.testing.assert_allclose(out[..., 0], (rows[..., 0] - rows[..., 2] / 2) * 96, atol=1e-4)
    np.testing.assert_allclose(out[..., 3], (rows[..., 1] + rows[..., 3] / 2) * 64, atol=1e-4)
    np.testing.assert_allclose(out[..., 4:], rows[..., 5:] * rows[..., 4:5], atol=1e-6)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_cpu_streams_give_the_serial_predictions(
    tiny: tuple[Path, Path], tmp_path: Path, backend: str
) -> None:
    """With 2 torch threads a CPU batch runs as 2 one-thread streams: the same detections as
    one image at a time, in input order, and the thread count is restored (for this thread
    and for threads started later)."""
    import dataclasses
    import threading

    import torch

    from detforge.utils.cpu import torch_threads

    cfg, weights = tiny
    path: Path = weights
    if backend == "onnx":
        path = tmp_path / "m.onnx"
        from detforge.cli.main import main

        argv = ["export", str(weights), "--cfg", str(cfg), "--to", "onnx", "-o", str(path)]
        assert main(argv) == 0
    images = scenes(5, seed=3)
    with torch_threads(2):
        model = detforge.load(path, device="cpu")
        used: list[str] = []
        inner = model.model.one_thread_above
        assert inner is not None
        rows = inner()

        def spy() -> object:
            def run(x: torch.Tensor, thresh: float) -> list[torch.Tensor]:
                used.append(threading.current_thread().name)
                return rows(x, thresh)

            return run

        model.model = dataclasses.replace(model.model, one_thread_above=spy)
        got = model.predict(images, batch=4)
        # batches of 4 and 1: the lone image runs on this thread, on every thread
        assert len(used) == 4 and all(n.startswith("detforge-stream") for n in used)
        assert torch.get_num_threads() == 2
        seen: list[int] = []
        t = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
        t.start()
        t.join()
        assert seen == [2]
        used.clear()
        model.predict(images[0])  # one image, default batch: on this thread, every thread
        assert not used
    with torch_threads(1):  # the serial path on one thread: the streams' arithmetic, so no
        ref = [model.predict(im, batch=1)[0] for im in images]  # near-tie can flip in NMS
    assert not used
    assert sum(len(r) for r in ref) > 0
    for g, r in zip(got, ref, strict=True):
        np.testing.assert_array_equal(g.classes, r.classes)
        np.testing.assert_allclose(g.scores, r.scores, atol=1e-5, rtol=0)
        np.testing.assert_allclose(g.boxes, r.boxes, atol=1e-3, rtol=0)


def test_a_cfg_is_not_a_model(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    """A .cfg given as the model ran random weights (hundreds of random boxes); now it is an
    error naming what to pass, in load() and in export."""
    from detforge.predict.export import export_onnx

    cfg, _ = tiny
    for call in (
        lambda: detforge.load(cfg, device="cpu"),
        lambda: detforge.load(cfg, cfg=cfg, device="cpu"),
        lambda: export_onnx(cfg, tmp_path / "x.onnx"),
    ):
        with pytest.raises(DetforgeError, match=r"Darknet \.cfg \(the network\), not its") as err:
            call()
        assert err.value.path == str(cfg) and "--cfg tiny.cfg" in str(err.value)
    assert not (tmp_path / "x.onnx").exists()
