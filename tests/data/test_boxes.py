from __future__ import annotations

import numpy as np
import pytest

from detforge.data.boxes import BoxFormat, box_area, box_iou, convert_boxes


def test_hand_computed_conversions() -> None:
    # A 20x10 box with top-left (10, 20) on a 100x50 image.
    xyxy = np.array([[10.0, 20.0, 30.0, 30.0]])
    xywh = convert_boxes(xyxy, BoxFormat.XYXY_PIXEL, BoxFormat.XYWH_PIXEL)
    np.testing.assert_allclose(xywh, [[10, 20, 20, 10]])
    norm = convert_boxes(xyxy, BoxFormat.XYXY_PIXEL, BoxFormat.CXCYWH_NORM, widths=100, heights=50)
    np.testing.assert_allclose(norm, [[0.2, 0.5, 0.2, 0.2]])


@pytest.mark.parametrize("src", list(BoxFormat))
@pytest.mark.parametrize("dst", list(BoxFormat))
def test_round_trip(src: BoxFormat, dst: BoxFormat) -> None:
    rng = np.random.default_rng(0)
    w, h = rng.integers(10, 2000, 50), rng.integers(10, 2000, 50)
    xyxy = np.sort(rng.uniform(0, 1, (50, 2, 2)), axis=1).reshape(50, 4)[:, [0, 2, 1, 3]]
    xyxy = xyxy * np.stack([w, h, w, h], axis=1)
    a = convert_boxes(xyxy, BoxFormat.XYXY_PIXEL, src, widths=w, heights=h)
    b = convert_boxes(a, src, dst, widths=w, heights=h)
    back = convert_boxes(b, dst, src, widths=w, heights=h)
    np.testing.assert_allclose(back, a, rtol=1e-12, atol=1e-9)


def test_normalized_needs_sizes() -> None:
    with pytest.raises(ValueError, match="widths and heights"):
        convert_boxes([[0.5, 0.5, 0.1, 0.1]], BoxFormat.CXCYWH_NORM, BoxFormat.XYXY_PIXEL)


def test_input_not_modified() -> None:
    a = np.array([[1.0, 2.0, 3.0, 4.0]])
    convert_boxes(a, BoxFormat.XYWH_PIXEL, BoxFormat.XYXY_PIXEL)
    np.testing.assert_array_equal(a, [[1, 2, 3, 4]])


def test_area_and_iou() -> None:
    a = np.array([[0.0, 0.0, 2.0, 2.0]])
    b = np.array([[1.0, 1.0, 3.0, 3.0], [5.0, 5.0, 6.0, 6.0], [0.0, 0.0, 2.0, 2.0]])
    np.testing.assert_allclose(box_area(b), [4, 1, 4])
    np.testing.assert_allclose(box_iou(a, b), [[1 / 7, 0.0, 1.0]])
