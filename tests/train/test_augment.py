"""Augmentations on hand-made cases: boxes must follow the pixels they were drawn around."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
from PIL import Image

from detforge.train import augment as A


def draw(shape: tuple[int, int], boxes: list[list[int]]) -> np.ndarray:
    """Black ``(h, w, 3)`` image with a white filled rectangle at each integer xyxy box."""
    img = np.zeros((*shape, 3), dtype=np.uint8)
    for x1, y1, x2, y2 in boxes:
        img[y1:y2, x1:x2] = 255
    return img


def bounds(mask: np.ndarray) -> np.ndarray:
    """Tight continuous xyxy bounds of the true pixels of a 2-D mask."""
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float64)


def white(img: np.ndarray) -> np.ndarray:
    return np.asarray(img[..., 0] > 127)


def assert_boxes_follow_pixels(img: np.ndarray, boxes: np.ndarray, tol: float = 1.5) -> None:
    """Each box tightly bounds the white pixels near it (within ``tol`` pixels)."""
    mask = white(img)
    h, w = mask.shape
    for b in boxes:
        x1, y1 = max(int(b[0] - 3), 0), max(int(b[1] - 3), 0)
        x2, y2 = min(int(np.ceil(b[2] + 3)), w), min(int(np.ceil(b[3] + 3)), h)
        sub = np.zeros_like(mask)
        sub[y1:y2, x1:x2] = mask[y1:y2, x1:x2]
        assert sub.any(), f"no pixels under box {b}"
        np.testing.assert_allclose(bounds(sub), b, atol=tol)


def test_flips_move_boxes_with_pixels() -> None:
    img = draw((40, 60), [[5, 10, 20, 15]])
    boxes, cls = np.array([[5.0, 10, 20, 15]]), np.array([3])
    im2, b2, c2 = A.hflip(img, boxes, cls)
    np.testing.assert_array_equal(b2, [[40, 10, 55, 15]])
    np.testing.assert_array_equal(bounds(white(im2)), b2[0])
    im3, b3, _ = A.vflip(img, boxes, cls)
    np.testing.assert_array_equal(b3, [[5, 25, 20, 30]])
    np.testing.assert_array_equal(bounds(white(im3)), b3[0])
    back = A.hflip(*A.hflip(img, boxes, cls))
    np.testing.assert_array_equal(back[0], img)
    np.testing.assert_array_equal(back[1], boxes)
    assert c2 is cls and img[10, 5, 0] == 255  # input untouched


def test_random_flip_probability_one_and_zero() -> None:
    img, boxes, cls = draw((10, 20), [[0, 0, 5, 5]]), np.array([[0.0, 0, 5, 5]]), np.array([0])
    rng = np.random.default_rng(0)
    _, b, _ = A.RandomFlip(lr=1.0, ud=1.0)((img, boxes, cls), rng)
    np.testing.assert_array_equal(b, [[15, 5, 20, 10]])
    im, b, _ = A.RandomFlip(lr=0.0, ud=0.0)((img, boxes, cls), rng)
    assert im is img and b is boxes


def test_affine_identity_when_parameters_are_zero() -> None:
    img = draw((64, 64), [[10, 12, 30, 40]])
    img[::7, ::5] = 77  # texture, so a half-pixel shift would show
    boxes, cls = np.array([[10.0, 12, 30, 40]]), np.array([1])
    warp = A.RandomAffine(degrees=0, translate=0, scale=0, shear=0)
    out, b, c = warp((img, boxes, cls), (64, 64), np.random.default_rng(1))
    np.testing.assert_array_equal(out, img)
    np.testing.assert_allclose(b, boxes)
    np.testing.assert_array_equal(c, cls)
    # a non-trivial matrix that happens to be an integer shift is exact too
    m = A.affine_matrix(in_center=(32, 32), out_center=(35, 30))
    out, b, _ = A.random_affine(img, boxes, cls, matrix=m, out_shape=(64, 64))
    np.testing.assert_array_equal(out[10:50, 13:50], img[12:52, 10:47])
    np.testing.assert_allclose(b, [[13, 10, 33, 38]])


def test_affine_scale_and_rotation_follow_pixels() -> None:
    img = draw((100, 200), [[50, 20, 90, 40], [120, 60, 150, 70]])
    boxes, cls = np.array([[50.0, 20, 90, 40], [120, 60, 150, 70]]), np.array([0, 1])
    for deg, sc, shear in [(0, 1.5, (0, 0)), (0, 0.6, (0, 0)), (30, 1.0, (0, 0)), (0, 1, (8, 0))]:
        m = A.affine_matrix(
            in_center=(100, 50), out_center=(100, 50), degrees=deg, scale=sc, shear=shear
        )
        out, b, _ = A.random_affine(img, boxes, cls, matrix=m, out_shape=(100, 200))
        assert len(b) >= 1 and out.dtype == np.uint8
        inside = (b[:, 0] > 0) & (b[:, 1] > 0) & (b[:, 2] < 200) & (b[:, 3] < 100)
        assert_boxes_follow_pixels(out, b[inside], tol=1.5)


def test_boxes_clipped_and_filtered() -> None:
    img = np.zeros((100, 100, 3), dtype=np.uint8)
    boxes = np.array(
        [
            [10.0, 10, 30, 30],  # stays whole
            [-10.0, 40, 10, 60],  # half outside after the shift -> clipped
            [-38.0, 70, 2, 90],  # 5% visible -> dropped
            [50.0, 50, 51.5, 80],  # 1.5 px wide -> dropped
            [50.0, 5, 99, 7.2],  # aspect 49/2.2 = 22.3 > 20 -> dropped
        ]
    )
    cls = np.arange(5)
    m = A.affine_matrix(in_center=(50, 50), out_center=(50, 50))
    _, b, c = A.random_affine(img, boxes, cls, matrix=m, out_shape=(100, 100))
    np.testing.assert_array_equal(c, [0, 1])
    np.testing.assert_allclose(b, [[10, 10, 30, 30], [0, 40, 10, 60]])
    keep = A.keep_boxes(boxes, A.clip_boxes(boxes, (100, 100)), max_aspect=25)
    np.testing.assert_array_equal(keep, [True, True, False, False, True])


def test_mosaic_boxes_follow_pixels() -> None:
    rng = np.random.default_rng(3)
    tiles = []
    for k in range(4):
        h, w = int(rng.integers(40, 65)), int(rng.integers(40, 65))
        x1, y1 = int(rng.integers(2, w - 25)), int(rng.integers(2, h - 25))
        box = [x1, y1, x1 + int(rng.integers(8, 20)), y1 + int(rng.integers(8, 20))]
        tiles.append((draw((h, w), [box]), np.array([box], dtype=np.float64), np.array([k])))
    canvas, b, c = A.mosaic4(tiles, size=64, center=(64, 64))
    assert canvas.shape == (128, 128, 3) and sorted(c.tolist()) == [0, 1, 2, 3]
    assert_boxes_follow_pixels(canvas, b, tol=0)
    # tile 0 ends at the centre from the top-left
    h0, w0 = tiles[0][0].shape[:2]
    np.testing.assert_allclose(b[c == 0][0], tiles[0][1][0] + [64 - w0, 64 - h0] * 2)
    # a cut at the canvas edge: the box is clipped to what is visible
    cut, bc, _ = A.mosaic4(tiles, size=64, center=(34, 100))
    assert len(bc) >= 2 and bc[:, 0].min() == 0
    assert_boxes_follow_pixels(cut, bc, tol=0)
    warp = A.RandomAffine(degrees=0, translate=0.1, scale=0.5)
    for seed in range(6):
        out, bo, _ = warp((canvas, b, c), (64, 64), np.random.default_rng(seed))
        assert out.shape == (64, 64, 3)
        assert_boxes_follow_pixels(out, bo, tol=1.5)


def test_hsv_keeps_shape_and_matches_colorsys() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (8, 9, 3)).astype(np.uint8)
    assert A.hsv_jitter(img, hue=0.0, sat=1.0, val=1.0) is img
    # a third of a turn of hue and a value gain are exact HSV operations: compare to colorsys
    out = A.hsv_jitter(img, hue=1 / 3, sat=1.0, val=0.75)
    assert out.shape == img.shape and out.dtype == np.uint8
    for px, got in zip(img.reshape(-1, 3), out.reshape(-1, 3), strict=True):
        h, s, v = colorsys.rgb_to_hsv(*(px / 255.0))
        ref = np.array(colorsys.hsv_to_rgb((h + 1 / 3) % 1, s, v * 0.75)) * 255
        np.testing.assert_allclose(got, ref, atol=1.0)
    # a small hue shift moves the HSV hue by about that much, keeping saturation and value
    red = np.tile(np.array([200, 60, 40], np.uint8), (2, 2, 1))
    h0, s0, v0 = colorsys.rgb_to_hsv(*(red[0, 0] / 255.0))
    h1, s1, v1 = colorsys.rgb_to_hsv(*(A.hsv_jitter(red, hue=0.02, sat=1, val=1)[0, 0] / 255.0))
    assert h1 - h0 == pytest.approx(0.02, abs=0.008)
    assert s1 == pytest.approx(s0, abs=0.06) and v1 == pytest.approx(v0, abs=0.06)
    # saturation 0 gives grey at the pixel's luma (PIL's own "L" conversion as reference)
    grey = A.hsv_jitter(img, hue=0.0, sat=0.0, val=1.0)
    luma = np.asarray(Image.fromarray(img).convert("L"))
    for c in range(3):
        np.testing.assert_allclose(grey[..., c], luma, atol=1.0)
    rnd = A.RandomHSV()(img, np.random.default_rng(0))
    assert rnd.shape == img.shape and rnd.dtype == np.uint8 and not np.array_equal(rnd, img)


def test_mixup_blends_and_keeps_all_boxes() -> None:
    a = (np.full((4, 4, 3), 200, np.uint8), np.array([[0.0, 0, 2, 2]]), np.array([1]))
    b = (np.full((4, 4, 3), 100, np.uint8), np.array([[1.0, 1, 3, 3]]), np.array([2]))
    img, boxes, cls = A.mixup(a, b, ratio=0.25)
    assert (img == 125).all() and boxes.shape == (2, 4)
    np.testing.assert_array_equal(cls, [1, 2])


@pytest.mark.parametrize("deg", [0.0, 45.0])
def test_transform_boxes_matches_corner_points(deg: float) -> None:
    m = A.affine_matrix(in_center=(0, 0), out_center=(10, 20), degrees=deg, scale=2.0)
    b = A.transform_boxes(np.array([[0.0, 0, 4, 2]]), m)
    corners = np.array([[0, 0, 1], [4, 0, 1], [4, 2, 1], [0, 2, 1]], dtype=np.float64) @ m.T
    np.testing.assert_allclose(b[0], [*corners[:, :2].min(0), *corners[:, :2].max(0)])
