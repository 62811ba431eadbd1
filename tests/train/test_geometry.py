"""Augmentation geometry against Pillow's own affine as a reference (resize and the letterbox
are tested in tests/data/test_letterbox.py)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from detforge.train import geometry as G


def smooth_image(h: int, w: int) -> np.ndarray:
    """A smooth colour pattern (so interpolation differences stay small)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([128 + 100 * np.sin(x / 9), 128 + 100 * np.cos(y / 7), (x + y) % 256], axis=2)
    return np.asarray(img.clip(0, 255), dtype=np.uint8)


def test_crop_box_round_trip_and_rejections() -> None:
    m = G.crop_matrix((10, -20, 110, 80), (50, 200))
    assert G.crop_box(m, (50, 200)) == (10, -20, 110, 80)
    rot = G.affine_matrix(in_center=(0, 0), out_center=(0, 0), degrees=10)
    assert G.crop_box(rot, (50, 50)) is None
    frac = G.crop_matrix((0, 0, 100, 100), (64, 64)) @ np.array(
        [[1, 0, 0.5], [0, 1, 0], [0, 0, 1]], dtype=np.float64
    )
    assert G.crop_box(frac, (64, 64)) is None


def test_fast_crop_warp_matches_pillow_affine_when_enlarging() -> None:
    img = smooth_image(90, 120)
    box = (-10, 5, 70, 65)  # reaches outside the image on the left: filled with grey
    m = G.crop_matrix(box, (96, 128))
    fast = G.warp_affine(img, m, (96, 128)).astype(int)
    inv = tuple(float(v) for v in np.linalg.inv(m)[:2].reshape(-1))
    ref = Image.fromarray(img).transform(
        (128, 96),
        Image.Transform.AFFINE,
        inv,
        resample=Image.Resampling.BILINEAR,
        fillcolor=(114,) * 3,
    )
    ref_a = np.asarray(ref).astype(int)
    inside = slice(None), slice(20, None)  # away from the fill edge (edge handling differs)
    assert np.abs(fast[inside] - ref_a[inside]).max() <= 3
    assert (fast[:, :14] == G.FILL).all()


def test_crop_pad_fills_outside() -> None:
    img = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    out = G.crop_pad(img, (-1, 2, 3, 6), fill=7)
    assert out.shape == (4, 4, 3)
    np.testing.assert_array_equal(out[:2, 1:], img[2:4, 0:3])
    assert (out[:, 0] == 7).all() and (out[2:] == 7).all()
    assert G.crop_pad(img, (1, 1, 3, 3)).base is not None  # inside: a view, no copy
