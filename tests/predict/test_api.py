from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import detforge
from detforge.errors import DetforgeError
from detforge.predict.api import Predictor
from tests.predict.helpers import assert_same_detections, random_checkpoint, scenes

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_checkpoint(tmp_path_factory.mktemp("model") / "m.pt")


def test_boxes_map_back_to_original_pixels() -> None:
    seen = []

    def fake(batch: np.ndarray) -> torch.Tensor:
        seen.append(batch.copy())
        out = torch.zeros(len(batch), 2, 4 + 2)
        out[:, 0, :4] = torch.tensor([20.0, 22.0, 40.0, 40.0])
        out[:, 0, 5] = 0.9  # class 1
        out[:, 1, :4] = torch.tensor([0.0, 0.0, 8.0, 8.0])
        out[:, 1, 4] = 0.1  # below conf
        return out

    pred = Predictor(fake, ["a", "b"], backend="fake", imgsz=64)
    wide = np.zeros((40, 100, 3), dtype=np.uint8)  # 100 x 40 -> 64 x 26 (25.6), pad top 19
    tall = np.zeros((100, 50, 3), dtype=np.uint8)  # 50 x 100 -> 32 x 64, pad left 16
    r = pred.predict([wide, tall], conf=0.25)
    assert seen[0].shape == (2, 64, 64, 3)  # every image alone in the 64 x 64 square
    assert (seen[0][0, :19] == 114).all() and (seen[0][0, 19:45] == 0).all()
    assert (seen[0][0, 45:] == 114).all()
    assert (seen[0][1, :, :16] == 114).all() and (seen[0][1, :, 16:48] == 0).all()
    assert (seen[0][1, :, 48:] == 114).all()
    # Hand-computed: x / (64/100), (y - 19) / (26/40); the tall one (x - 16) / 0.64, y / 0.64.
    np.testing.assert_allclose(r[0].boxes, [[31.25, 3 / 0.65, 62.5, 21 / 0.65]], rtol=1e-6)
    np.testing.assert_allclose(r[1].boxes, [[6.25, 34.375, 37.5, 62.5]], rtol=1e-6)
    assert r[0].classes.tolist() == [1] and r[0].names == ["b"]
    assert r[0].scores == pytest.approx([0.9]) and r[0].shape == (40, 100)
    one = pred.predict(tall, conf=0.25)  # batch mates change nothing
    np.testing.assert_array_equal(seen[1][0], seen[0][1])
    np.testing.assert_array_equal(one[0].boxes, r[1].boxes)


def test_load_and_predict_on_every_input_kind(tmp_path: Path, ckpt: Path) -> None:
    model = detforge.load(ckpt, device="cpu")
    assert model.imgsz == 160 and model.class_names == ("ant", "bee", "cow")
    imgs = scenes(3)
    paths = []
    for i, im in enumerate(imgs):
        paths.append(tmp_path / f"img{i}.png")
        Image.fromarray(im).save(paths[-1])
    ref = model.predict(imgs, conf=0.3, batch=2)
    assert all(len(p) > 0 for p in ref)
    mixed = model.predict([str(paths[0]), Image.fromarray(imgs[1]), imgs[2]], conf=0.3)
    one = model.predict(paths[1], conf=0.3)
    folder = model.predict(tmp_path, conf=0.3)
    for a, b in zip(ref, mixed, strict=True):
        assert_same_detections(a, b)
    assert_same_detections(one[0], ref[1])
    assert [len(p) for p in folder] == [len(p) for p in ref]
    assert mixed[0].path == str(paths[0])
    drawn = np.asarray(mixed[0].draw())  # notebook helper: boxes on the image file
    assert drawn.shape == (120, 160, 3) and (drawn != imgs[0]).any()
    with pytest.raises(DetforgeError, match="pass the image"):
        ref[0].draw()
    for p in ref:
        assert p.boxes.dtype == np.float32 and p.boxes.shape == (len(p), 4)
        assert (p.boxes[:, 2] <= 160).all() and (p.boxes[:, 3] <= 120).all()
        assert (np.diff(p.scores) <= 0).all() and (p.scores >= 0.3).all()
    assert len(model.predict(imgs[0], conf=0.3, max_det=2)[0]) == 2


def test_predict_dataset_keeps_images_and_ids(tmp_path: Path, ckpt: Path) -> None:
    from detforge.data.boxes import BoxFormat
    from detforge.data.dataset import make_dataset

    model = detforge.load(ckpt, device="cpu")
    paths = []
    for i, im in enumerate(scenes(3, seed=1)):
        paths.append(str(tmp_path / f"s{i}.jpg"))
        Image.fromarray(im).save(paths[-1])
    gt = make_dataset(["x", "y", "z"], paths=paths, splits="valid", image_ids=[10, 20, 30])
    pred = model.predict_dataset(gt, conf=0.3)
    direct = model.predict(paths, conf=0.3)
    assert pred.images.id.tolist() == [10, 20, 30] and pred.class_names == ("x", "y", "z")
    assert pred.images.width.tolist() == [160] * 3 and pred.boxes.format is BoxFormat.XYXY_PIXEL
    assert pred.num_boxes == sum(len(p) for p in direct)
    first = pred.boxes.image == 0
    np.testing.assert_allclose(pred.boxes.coords[first], direct[0].boxes, rtol=1e-6)
    np.testing.assert_allclose(pred.boxes.score[first], direct[0].scores, rtol=1e-6)
    with pytest.raises(DetforgeError, match="classes"):
        model.predict_dataset(make_dataset(["x"], paths=paths))


def test_user_mistakes(tmp_path: Path, ckpt: Path) -> None:
    with pytest.raises(DetforgeError, match="not found"):
        detforge.load(tmp_path / "missing.pt")
    model = detforge.load(ckpt, device="cpu")
    img = scenes(1)[0]
    with pytest.raises(DetforgeError, match="conf"):
        model.predict(img, conf=1.5)
    with pytest.raises(DetforgeError, match="multiple of 32"):
        model.predict(img, imgsz=100)
    with pytest.raises(DetforgeError, match="uint8 RGB"):
        model.predict([np.zeros((4, 4), dtype=np.float32)])
    with pytest.raises(DetforgeError, match="CUDA"):
        detforge.load(ckpt, device="cpu", half=True)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DetforgeError):
        detforge.load(tmp_path / "junk.pt")


def test_exif_rotation_and_fast_decode_match_full_decode(tmp_path: Path, ckpt: Path) -> None:
    from detforge.predict.sources import open_source

    model = detforge.load(ckpt, device="cpu")
    big = scenes(1, seed=9, w=320, h=240)[0]
    Image.fromarray(big).save(tmp_path / "big.png")
    # Decoded straight to the input size (as every command does) == full decode + letterbox.
    src = open_source(tmp_path / "big.png")
    fast = next(model.predict_frames(src.frames(fit=(160, 160)), conf=0.3))[1]
    full = next(model.predict_frames(src.frames(), conf=0.3))[1]
    assert fast.shape == full.shape == (240, 320) and len(fast) > 0
    assert_same_detections(fast, full, rtol=1e-4, atol=1e-2)
    # An EXIF 'rotate 90' JPEG is predicted upright, like the training loader sees it.
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(big).save(tmp_path / "rot.jpg", exif=exif.tobytes(), quality=95)
    rot = model.predict(tmp_path / "rot.jpg", conf=0.3)[0]
    assert rot.shape == (320, 240)
    assert (rot.boxes[:, 2] <= 240).all() and (rot.boxes[:, 3] <= 320).all()


def test_prefetch_keeps_order_errors_and_stops() -> None:
    import threading
    import time

    from detforge.predict.api import prefetch

    def gen():
        yield 1
        yield 2
        raise DetforgeError("bad image", path="x.jpg")

    it = prefetch(gen())
    assert next(it) == 1 and next(it) == 2
    with pytest.raises(DetforgeError, match="bad image"):
        next(it)
    makers: list[str] = []

    def named() -> Iterator[int]:
        for i in range(3):
            makers.append(threading.current_thread().name)
            yield i

    assert list(prefetch(named())) == [0, 1, 2]
    # the first two items in the caller's thread (no wait for a thread start), the rest ahead
    assert makers[:2] == [threading.current_thread().name] * 2
    assert makers[2:] == ["detforge-prefetch"]
    started: list[threading.Thread] = []
    real_start = threading.Thread.start
    with pytest.MonkeyPatch.context() as mp:  # one item: no thread at all
        mp.setattr(threading.Thread, "start", lambda t: (started.append(t), real_start(t)))
        assert list(prefetch(iter(["only"]))) == ["only"]
    assert started == []
    assert list(prefetch(iter([]))) == []
    it = prefetch(iter(range(10**6)), depth=2)
    assert [next(it) for _ in range(3)] == [0, 1, 2]
    it.close()
    for _ in range(50):
        if not any(t.name == "detforge-prefetch" for t in threading.enumerate()):
            break
        time.sleep(0.05)
    assert not any(t.name == "detforge-prefetch" for t in threading.enumerate())
