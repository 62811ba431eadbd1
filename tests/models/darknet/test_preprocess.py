"""Darknet's input resize (``preprocess.py`` and its C helper) against a real Darknet build."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from detforge.errors import DetforgeError
from detforge.models.darknet import preprocess
from detforge.models.darknet.preprocess import darknet_input, letterbox_size, resize_into

REFERENCE = Path(__file__).parent / "reference" / "darknet_resize.npz"


@pytest.fixture(params=["C helper", "PyTorch"])
def native(request: pytest.FixtureRequest) -> bool:
    """Each test once with the optional C helper (skipped, and so reported, where it was not
    built) and once with the PyTorch version."""
    if request.param == "C helper" and not preprocess.native_available():
        pytest.skip("detforge.models.darknet._resize was not built (no C compiler at install)")
    return request.param == "C helper"


def _input(src: np.ndarray, w: int, h: int, *, letter: bool, native: bool) -> np.ndarray:
    if not letter:
        out = np.zeros((src.shape[2], h, w), np.float32)
        resize_into(src, out, native=native)
        return out
    new_w, new_h = letterbox_size(src.shape[1], src.shape[0], w, h)
    out = np.full((src.shape[2], h, w), 0.5, np.float32)
    resize_into(src, out, x0=(w - new_w) // 2, y0=(h - new_h) // 2, size=(new_w, new_h),
                native=native)  # fmt: skip
    return out


def test_equals_a_real_darknet_build_bit_for_bit(native: bool) -> None:
    # resize_image / letterbox_image of libdarknet (-Ofast), see reference/README.md: upscaling,
    # downscaling, one-pixel rows and columns, equal sizes, letterboxes; 14 -> 12 and 8 -> 24
    # rows hit the last-row quirk
    ref = np.load(REFERENCE)
    for i, (src_h, src_w, h, w, letter) in enumerate(ref["cases"].tolist()):
        src = ref[f"src{i}"]
        assert src.shape == (src_h, src_w, 3)
        got = _input(src, w, h, letter=bool(letter), native=native)
        assert np.array_equal(got, ref[f"out{i}"]), (src_h, src_w, h, w, letter)
        if not letter:  # darknet_input, the one entry point, gives the same
            x = darknet_input(src, w, h)
            assert x.shape == (1, 3, h, w) and np.array_equal(x[0].numpy(), got)


def test_last_row_quirk_on_a_white_image(native: bool) -> None:
    # 14 rows -> 12: scale = 13/11 rounds so that 11 * scale < 13 in float32, so the last row
    # takes (1 - dy) * part[12] only, dy = 11 * scale - 12 (just under 1): nearly black
    scale = np.float32(13) / np.float32(11)
    sy = np.float32(11) * scale
    assert int(sy) == 12
    out = np.zeros((3, 12, 5), np.float32)
    resize_into(np.full((14, 9, 3), 255, np.uint8), out, native=native)
    assert np.all(out[:, :-1] == 1.0)
    assert np.all(out[:, -1] == np.float32(1) - (sy - np.float32(12)))
    assert 0 < out[0, -1, 0] < 1e-5


def test_helper_and_pytorch_agree_on_random_sizes() -> None:
    if not preprocess.native_available():
        pytest.skip("detforge.models.darknet._resize was not built (no C compiler at install)")
    rng = np.random.default_rng(0)
    for _ in range(40):
        c = int(rng.choice([1, 3, 4]))
        src = rng.integers(0, 256, (*rng.integers(1, 90, 2), c), dtype=np.uint8)
        w, h = (int(v) for v in rng.integers(1, 70, 2))
        a, b = (np.zeros((c, h, w), np.float32) for _ in range(2))
        resize_into(src, a)
        resize_into(src, b, native=False)
        assert np.array_equal(a, b), (src.shape, w, h)


def test_letterbox_of_an_extreme_aspect_is_the_grey_canvas(native: bool) -> None:
    # a 1 x 1000 image in a 416 letterbox is 0 rows high: Darknet pastes nothing (this was a
    # torch RuntimeError before)
    assert letterbox_size(1000, 1, 416, 416) == (416, 0)
    out = _input(np.zeros((1, 1000, 3), np.uint8), 416, 416, letter=True, native=native)
    assert np.all(out == 0.5)
    x = darknet_input(np.zeros((1, 1000, 3), np.uint8), 416, 416, letter_box=True)
    assert torch.all(x == 0.5)


def test_concurrent_resizes_give_the_same_input(native: bool) -> None:
    # the C helper releases the GIL: the predictor's CPU streams resize at the same time
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (300 + 7 * i, 200, 3), dtype=np.uint8) for i in range(6)]
    alone = [_input(im, 64, 48, letter=False, native=native) for im in images]
    got: dict[int, np.ndarray] = {}

    def run(i: int) -> None:
        for _ in range(5):
            got[i] = _input(images[i], 64, 48, letter=False, native=native)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(images))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(got[i], alone[i]) for i in range(len(images)))


def test_bad_arguments_are_refused(native: bool) -> None:
    out = np.zeros((3, 8, 8), np.float32)
    with pytest.raises(DetforgeError, match="uint8"):
        resize_into(np.zeros((4, 4, 3), np.float32), out, native=native)
    with pytest.raises(ValueError, match="float32"):
        resize_into(np.zeros((4, 4, 3), np.uint8), np.zeros((3, 8, 8)), native=native)
    with pytest.raises(ValueError, match="float32"):
        resize_into(np.zeros((4, 4, 1), np.uint8), out, native=native)  # 1 channel into 3


def test_helper_checks_its_bounds() -> None:
    if not preprocess.native_available():
        pytest.skip("detforge.models.darknet._resize was not built (no C compiler at install)")
    from detforge.models.darknet import _resize

    src, dst = np.zeros((4, 4, 3), np.uint8), np.zeros((3, 8, 8), np.float32)
    _resize.resize_into(src, 4, 4, 3, dst, 8, 8, 2, 2, 6, 6)  # the region fits
    for args in [(2, 2, 7, 6), (0, 0, 9, 8), (-1, 0, 4, 4), (0, 0, 0, 4)]:
        with pytest.raises(ValueError, match="out of range"):
            _resize.resize_into(src, 4, 4, 3, dst, 8, 8, *args)
    with pytest.raises(ValueError, match="src"):
        _resize.resize_into(src, 5, 4, 3, dst, 8, 8, 0, 0, 8, 8)  # src shorter than 5x4x3
    with pytest.raises(ValueError, match="dst"):  # 3x4x8 floats, not 3x8x8
        _resize.resize_into(src, 4, 4, 3, np.zeros((3, 4, 8), np.float32), 8, 8, 0, 0, 8, 8)
    with pytest.raises(ValueError, match="dst"):  # float64
        _resize.resize_into(src, 4, 4, 3, np.zeros((3, 8, 4)), 8, 8, 0, 0, 8, 8)
    with pytest.raises(TypeError):  # not one contiguous buffer
        _resize.resize_into(src, 4, 4, 3, dst[:, :, :4], 8, 8, 0, 0, 4, 4)
