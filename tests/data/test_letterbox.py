"""The letterbox and its one inverse: hand-computed geometry, Pillow's resize and paste as the
pixel reference, torchvision's ``resize_boxes`` as the box reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from detforge.data.letterbox import (
    FILL,
    MAX_INPUT,
    InputRule,
    check_input_size,
    fit_size,
    letterbox,
    resize,
    unletterbox_boxes,
)
from detforge.errors import DetforgeError


def smooth_image(h: int, w: int) -> np.ndarray:
    """A smooth colour pattern (so interpolation differences stay small)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([128 + 100 * np.sin(x / 9), 128 + 100 * np.cos(y / 7), (x + y) % 256], axis=2)
    return np.asarray(img.clip(0, 255), dtype=np.uint8)


@pytest.mark.parametrize("size", [(50, 30), (300, 170), (123, 77)])
def test_resize_matches_pillow_antialiased_bilinear(size: tuple[int, int]) -> None:
    img = smooth_image(100, 160)
    ours = resize(img, size).astype(int)
    ref = np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BILINEAR)).astype(int)
    assert ours.shape == ref.shape == (size[1], size[0], 3)
    assert np.abs(ours - ref).max() <= 2
    assert resize(img, (160, 100)) is img


@pytest.mark.parametrize(
    ("shape", "into", "expected"),
    [
        ((100, 200), 64, (32, 64)),  # r = 0.32
        ((30, 70), 64, (27, 64)),  # r = 64/70: 27.43 -> 27
        ((50, 100), (256, 128), (64, 128)),  # r = min(256/50, 128/100) = 1.28 (enlarged)
        ((3000, 4), 64, (64, 1)),  # never below 1 pixel
    ],
)
def test_fit_size_hand_computed(shape: tuple[int, int], into: object, expected: tuple) -> None:
    assert fit_size(shape, into) == expected  # type: ignore[arg-type]
    # an image already of the fitted size fits with a scale of exactly 1
    assert fit_size(expected, into) == expected  # type: ignore[arg-type]


def test_letterbox_geometry_pixels_and_inverse() -> None:
    img = smooth_image(100, 200)
    boxes = np.array([[40.0, 20, 120, 60]])
    out = letterbox(img, boxes, shape=64)
    # r = min(64/100, 64/200) = 0.32 -> 64 x 32, centred: pad top (64 - 32) // 2 = 16
    assert out.image.shape == (64, 64, 3) and out.image.dtype == np.uint8
    assert out.ratio == (0.32, 0.32) and out.pad == (0.0, 16.0) and out.source == (100, 200)
    np.testing.assert_allclose(out.boxes, [[12.8, 22.4, 38.4, 35.2]])
    # Pillow as the reference: bilinear resize pasted on a grey canvas at the same offset
    ref = Image.new("RGB", (64, 64), (FILL, FILL, FILL))
    ref.paste(Image.fromarray(img).resize((64, 32), Image.Resampling.BILINEAR), (0, 16))
    assert np.abs(out.image.astype(int) - np.asarray(ref).astype(int)).max() <= 2
    assert (out.image[:16] == FILL).all() and (out.image[48:] == FILL).all()
    back = unletterbox_boxes(out.boxes, out.ratio_pad(), (100, 200))
    np.testing.assert_allclose(back, boxes, atol=1e-9)


def test_letterbox_rectangle_and_odd_sizes() -> None:
    big = letterbox(np.zeros((50, 100, 3), np.uint8), shape=(256, 128))
    # enlarged by 1.28 to 128 x 64, centred in 128 wide x 256 high: pad top (256 - 64) // 2
    assert big.image.shape == (256, 128, 3) and big.ratio == (1.28, 1.28)
    assert big.pad == (0.0, 96.0) and big.boxes.shape == (0, 4)
    odd = letterbox(np.zeros((30, 70, 3), np.uint8), shape=64)
    # 70 x 30 -> 64 x 27; top pad (64 - 27) // 2 = 18 (the odd pixel goes to the bottom)
    assert odd.image.shape == (64, 64, 3) and odd.pad == (0.0, 18.0)
    assert odd.ratio == (64 / 70, 27 / 30)
    assert (odd.image[:18] == FILL).all() and (odd.image[45:] == FILL).all()
    assert (odd.image[18:45] == 0).all()


def test_unletterbox_by_hand_with_clipping() -> None:
    # a 200x100 (w x h) image letterboxed to 64x64: r = 0.32, pad y = (64 - 32) / 2 = 16
    boxes = np.array([[0.0, 16.0, 64.0, 48.0], [32.0, 20.0, 40.0, 60.0]])
    out = unletterbox_boxes(boxes, ((0.32, 0.32), (0.0, 16.0)), (100, 200))
    assert out.dtype == np.float64
    assert out[0] == pytest.approx([0, 0, 200, 100])
    assert out[1] == pytest.approx([100, 12.5, 125, 100])  # 60 -> 137.5 clipped to 100
    free = unletterbox_boxes(boxes, ((0.32, 0.32), (0.0, 16.0)))  # no shape: no clipping
    assert free[1] == pytest.approx([100, 12.5, 125, 137.5])
    assert unletterbox_boxes(np.zeros((0, 4)), ((1.0, 1.0), (0.0, 0.0))).shape == (0, 4)


@pytest.mark.parametrize("orig", [(480, 640), (333, 97), (64, 64)])
def test_inverse_matches_torchvision_resize_boxes(orig: tuple[int, int]) -> None:
    from torchvision.models.detection.transform import resize_boxes

    lb = letterbox(np.zeros((*orig, 3), np.uint8), shape=(96, 128))
    (rw, rh), (left, top) = lb.ratio_pad()
    content = (round(orig[0] * rh), round(orig[1] * rw))  # the resized image inside the pad
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 1, (20, 2, 2)) * [content[1], content[0]] + [left, top]
    boxes = np.concatenate([xy.min(1), xy.max(1)], axis=1)  # xyxy inside the content
    ours = unletterbox_boxes(boxes, lb.ratio_pad(), orig)
    shifted = torch.from_numpy(boxes - [left, top, left, top])
    ref = resize_boxes(shifted, list(content), list(orig)).numpy()  # float32 ratios inside
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-5)


def test_ratio_pad_from_a_shrunk_decode_equals_the_full_letterbox() -> None:
    img = smooth_image(300, 500)
    full = letterbox(img, shape=160)
    h, w = fit_size((300, 500), 160)  # what load_image(fit=160) decodes to: 96 x 160
    small = letterbox(resize(img, (w, h)), shape=160)
    assert small.ratio == (1.0, 1.0)  # already fitted: only padded
    (a, b), (c, d) = small.ratio_pad((300, 500)), full.ratio_pad()
    assert a == pytest.approx(c) and b == d == (0.0, 32.0)
    np.testing.assert_array_equal(small.image, full.image)


def test_input_rule_metadata_round_trip_and_errors() -> None:
    rule = InputRule(320, 416)
    meta = rule.to_meta()
    assert meta["shape"] == [320, 416] and meta["fill"] == 114 and meta["resize"] == "letterbox"
    assert InputRule.from_meta(meta) == rule
    assert InputRule.square(160).shape == (160, 160)
    image, ratio_pad = rule.apply(np.zeros((10, 20, 3), np.uint8))
    # 20 x 10 -> r = min(320/10, 416/20) = 20.8 -> 416 x 208, top pad (320 - 208) // 2 = 56
    assert image.shape == (320, 416, 3) and ratio_pad == ((20.8, 20.8), (0.0, 56.0))
    with pytest.raises(DetforgeError, match="multiple of 32"):
        InputRule(100, 96)
    with pytest.raises(DetforgeError, match="unknown preprocessing rule"):
        InputRule.from_meta({"resize": "stretch", "shape": [64, 64]}, path="m.onnx")
    with pytest.raises(DetforgeError, match="unknown preprocessing rule"):
        InputRule.from_meta({"resize": "letterbox"})


@pytest.mark.parametrize("side", [0, -64, 100, 8224, 100_000])
def test_input_sides_outside_32_to_8192_are_refused(side: int) -> None:
    # 100000 used to be accepted: predict --imgsz 100000 asked torch for 30 GB and died with
    # a RuntimeError traceback.
    with pytest.raises(DetforgeError) as info:
        InputRule.square(side)
    assert str(info.value) == (
        f"the input size must be a multiple of 32 from 32 to 8192 (e.g. 416, 640), got {side}"
    )
    with pytest.raises(DetforgeError, match=f"^--imgsz must be .* got 64x{side}$"):
        check_input_size(64, side, name="--imgsz")
    check_input_size(32, MAX_INPUT)  # both ends are sizes
