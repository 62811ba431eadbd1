from __future__ import annotations

import numpy as np

from detforge.predict.draw import (
    FN_COLOR,
    FP_COLOR,
    TP_COLOR,
    class_color,
    contact_sheet,
    draw_boxes,
    draw_comparison,
    match_boxes,
)


def _px(im, x: int, y: int) -> tuple[int, int, int]:
    return tuple(int(v) for v in np.asarray(im)[y, x])


def test_box_outline_lands_on_the_box_edges() -> None:
    blank = np.zeros((80, 100, 3), dtype=np.uint8)
    im = draw_boxes(blank, [[10, 20, 50, 60]], [3], line_width=1, labels=False)
    col = class_color(3)
    arr = np.asarray(im)
    # Every pixel of the edges has the colour: columns 10 and 49, rows 20 and 59.
    assert (arr[20:60, 10] == col).all() and (arr[20:60, 49] == col).all()
    assert (arr[20, 10:50] == col).all() and (arr[59, 10:50] == col).all()
    # Nothing outside the ring changed.
    mask = np.zeros((80, 100), dtype=bool)
    mask[20:60, 10:50] = True
    mask[22:58, 12:48] = False
    mask[21:59, 11:49] = False
    assert (arr[~mask] == 0).all()
    assert not np.asarray(blank).any()  # the input is not modified


def test_thick_outline_stays_inside_and_full_image_box_visible() -> None:
    blank = np.zeros((40, 60, 3), dtype=np.uint8)
    im = draw_boxes(blank, [[0, 0, 60, 40]], [0], line_width=3, labels=False)
    arr = np.asarray(im)
    col = class_color(0)
    for k in range(3):
        assert _px(im, k, 20) == col and _px(im, 59 - k, 20) == col
        assert _px(im, 30, k) == col and _px(im, 30, 39 - k) == col
    assert _px(im, 3, 20) == (0, 0, 0) and _px(im, 30, 36) == (0, 0, 0)
    assert arr.shape == (40, 60, 3)


def test_label_has_class_colour_above_box_and_inside_image() -> None:
    blank = np.zeros((120, 160, 3), dtype=np.uint8)
    im = draw_boxes(blank, [[40, 50, 120, 100], [0, 0, 30, 30]], [1, 2], scores=[0.9, 0.5],
                    class_names=["a", "bird", "cat"], line_width=2)  # fmt: skip
    arr = np.asarray(im)
    # Label of the first box: a filled band in its colour just above y=50 starting at x=40.
    band = arr[42:50, 40:60].reshape(-1, 3)
    assert (band == class_color(1)).all(axis=1).mean() > 0.5
    # Second box touches the top: its label goes inside the box, not off the image.
    inside = arr[2:12, 2:20].reshape(-1, 3)
    assert (inside == class_color(2)).all(axis=1).mean() > 0.3


def test_match_boxes_greedy_by_score_same_class() -> None:
    gt = [[0, 0, 10, 10], [20, 20, 30, 30]]
    pred = [[0, 0, 10, 9], [1, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]]
    tp, found = match_boxes(gt, [0, 0], pred, [0, 0, 1, 0], [0.6, 0.9, 0.8, 0.7])
    # Highest score (index 1) takes gt 0; index 0 is a duplicate; index 2 has the wrong class.
    assert tp.tolist() == [False, True, False, False]
    assert found.tolist() == [True, False]


def test_comparison_colours_tp_fn_fp() -> None:
    blank = np.zeros((100, 100, 3), dtype=np.uint8)
    gt = [[10, 10, 40, 40], [60, 60, 90, 90]]
    pred = [[10, 10, 40, 41], [60, 10, 90, 40]]
    im = draw_comparison(blank, gt, [0, 0], pred, [0, 0], [0.9, 0.8], line_width=1,
                         class_names=["x"])  # fmt: skip
    gap = max(4, 100 // 100)
    assert im.width == 200 + gap and im.height > 100  # legend strip below
    assert _px(im, 10, 25) == TP_COLOR  # found gt, left panel
    assert _px(im, 60, 75) == FN_COLOR  # missed gt, left panel
    assert _px(im, 100 + gap + 10, 25) == TP_COLOR  # matched prediction, right panel
    assert _px(im, 100 + gap + 60, 25) == FP_COLOR  # false positive, right panel
    legend = np.asarray(im)[100:].reshape(-1, 3)
    for col in (TP_COLOR, FN_COLOR, FP_COLOR):
        assert (legend == col).all(axis=1).any()


def test_contact_sheet_grid() -> None:
    tiles = [np.full((50, 100, 3), v, dtype=np.uint8) for v in (50, 100, 150, 200, 250)]
    sheet = contact_sheet(tiles, cell=64, captions=[f"img{i}" for i in range(5)])
    # 5 tiles -> 3 columns, 2 rows; 100x50 tiles shrink to 60x30 thumbnails in 34 px rows.
    row = sheet.height // 2
    assert sheet.width == 3 * 64 and row > 34
    assert _px(sheet, 32, 17) == (50, 50, 50)
    assert _px(sheet, 64 + 32, 17) == (100, 100, 100)
    assert _px(sheet, 64 + 32, row + 17) == (250, 250, 250)
    assert _px(sheet, 32, 1) == (32, 32, 32)  # margin
