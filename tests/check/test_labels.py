"""Bulk label-line checks: every fault kind with its code, severity and exact line."""

from __future__ import annotations

import numpy as np

from detforge.check.labels import check_boxes
from detforge.check.rows import parse_label_texts


def _check(text: str, *, num_classes: int | None = 2, size: tuple[int, int] = (100, 50)):
    rows, found = parse_label_texts([text], ["a.txt"])
    verdict, more = check_boxes(
        rows,
        ["a.txt"],
        num_classes=num_classes,
        widths=np.asarray([size[0]]),
        heights=np.asarray([size[1]]),
    )
    return rows, verdict, {(f.code, f.line): f for f in found + more}


def test_clean_file_has_no_findings() -> None:
    text = "0 0.5 0.5 0.2 0.2\r\n1 0.25 0.75 0.5 0.5\n\n   \n1 0.1 0.1 0.2 0.2\n"
    rows, verdict, found = _check(text)
    assert found == {}
    assert rows.line.tolist() == [1, 2, 5]
    assert rows.cls.tolist() == [0, 1, 1]
    assert not verdict.bad.any() and not verdict.clip.any() and not verdict.duplicate.any()


def test_every_line_fault_is_found_with_its_line() -> None:
    lines = [
        "0 0.5 0.5 0.2 0.2",  # 1 ok
        "1 0.5 0.5 0.2",  # 2 four fields
        "0 0.5 0.5 0.2 0.2 7",  # 3 six fields
        "0 0.5 abc 0.2 0.2",  # 4 not a number
        "0 0.5 0.5 nan 0.2",  # 5 NaN
        "0 inf 0.5 0.2 0.2",  # 6 inf
        "-1 0.5 0.5 0.2 0.2",  # 7 negative class
        "1.5 0.5 0.5 0.2 0.2",  # 8 fractional class
        "2 0.5 0.5 0.2 0.2",  # 9 out of range (2 names)
        "0 -0.2 0.5 0.2 0.2",  # 10 negative coordinate
        "0 0.5 0.5 1.5 0.2",  # 11 above one
        "0 0.5 0.5 0.0 0.2",  # 12 zero width
        "0 0.5 0.5 0.2 -0.1",  # 13 negative height
        "0 0.95 0.5 0.2 0.2",  # 14 past the right border by 0.05
        "0 0.3 0.3 0.004 0.2",  # 15 0.4 px wide on a 100 px image
        "1 0.2 0.2 0.1 0.1",  # 16
        "1 0.2 0.2 0.1 0.1",  # 17 exact duplicate of 16
        "0 0.7 0.7 0.2 0.2",  # 18
        "0 0.7 0.7 0.2 0.19",  # 19 near duplicate of 18 (IoU 0.95)
        "1.0 0.4 0.4 0.1 0.1",  # 20 class written with a fraction
        "0 0.5 0.5 0.2 0.2\x00",  # 21 junk byte glued to a number
        "1_0 0.5 0.5 0.2 0.2",  # 22 Python-only number syntax
    ]
    _, verdict, found = _check("\n".join(lines) + "\n")
    expected = {
        ("label-fields", 2),
        ("label-fields", 3),
        ("label-not-number", 4),
        ("label-not-finite", 5),
        ("label-not-finite", 6),
        ("class-negative", 7),
        ("class-not-integer", 8),
        ("class-out-of-range", 9),
        ("coord-negative", 10),
        ("coord-above-one", 11),
        ("box-zero-size", 12),
        ("box-zero-size", 13),
        ("box-outside-image", 14),
        ("box-subpixel", 15),
        ("box-duplicate", 17),
        ("box-near-duplicate", 19),
        ("class-not-integer", 20),
        ("label-not-number", 21),
        ("label-not-number", 22),
    }
    assert set(found) == expected
    sev = {code: f.severity for (code, _), f in found.items()}
    assert sev["label-fields"] == "error" and sev["box-outside-image"] == "warning"
    assert sev["box-duplicate"] == "warning" and sev["box-subpixel"] == "warning"
    assert all(sev[c] == "error" for c in ("coord-negative", "coord-above-one", "box-zero-size"))
    assert "0.4" in found[("box-subpixel", 15)].message  # 0.004 * 100 px
    assert "'1.0'" in found[("class-not-integer", 20)].message
    assert all(f.path == "a.txt" for f in found.values())
    # the clipped and the rewritten-class rows stay usable; duplicates are marked, not bad
    assert verdict.clip.sum() == 1 and verdict.duplicate.sum() == 1


def test_box_past_the_border_is_clipped_not_dropped() -> None:
    # ends exactly at the border / 1e-7 past it (float rounding) / 1e-4 past it
    _, verdict, found = _check("0 0.9 0.5 0.2 0.2\n1 0.9000001 0.5 0.2 0.2\n0 0.5 0.9001 0.2 0.2\n")
    assert set(found) == {("box-outside-image", 3)}
    _, verdict, found = _check("0 0.1 0.5 0.4 0.2\n")
    assert set(found) == {("box-outside-image", 1)}
    assert "0.1 of the image" in found[("box-outside-image", 1)].message
    assert verdict.clip.tolist() == [True] and verdict.bad.tolist() == [False]


def test_unknown_names_skip_range_check_and_sizes_skip_pixel_check() -> None:
    rows, found_all = parse_label_texts(["7 0.5 0.5 0.001 0.2\n"], ["x.txt"])
    _, found = check_boxes(rows, ["x.txt"], num_classes=None)
    assert found == [] and found_all == []


def test_many_files_keep_their_own_line_numbers() -> None:
    texts = ["0 0.5 0.5 0.2 0.2\n" * 3 + "bad\n", None, "", "0 0.5 0.5 0.1\n"]
    paths = ["a.txt", "b.txt", "c.txt", "d.txt"]
    rows, found = parse_label_texts(texts, paths)
    assert [(f.path, f.line) for f in found] == [("a.txt", 4), ("d.txt", 1)]
    assert rows.file.tolist() == [0, 0, 0]
    _, dup = check_boxes(rows, paths, num_classes=1)
    assert [(f.code, f.line) for f in dup] == [("box-duplicate", 2), ("box-duplicate", 3)]
    assert "line 1" in dup[0].message and "line 1" in dup[1].message


def test_near_duplicates_need_the_same_class_and_file() -> None:
    texts = ["0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.2 0.2\n", "0 0.5 0.5 0.2 0.21\n"]
    rows, _ = parse_label_texts(texts, ["a.txt", "b.txt"])
    _, found = check_boxes(rows, ["a.txt", "b.txt"], num_classes=2)
    assert found == []


def test_the_reader_refuses_exactly_the_lines_the_checker_reports() -> None:
    from detforge.errors import DetforgeError
    from detforge.formats.darknet.labels import parse_label_text

    line_codes = {"label-fields", "label-not-number", "label-not-finite"}
    cases = {
        "0 0.5 0.5 0.2 0.2": False,
        "  +1\t.5 1. 1e-1 0.2 ": False,
        "1 0.5 0.5 0.2 0.2\x0c": False,  # form feed: ASCII whitespace, as for scanf
        "0 0.5 0.5 0.1_0 0.1": True,  # float() reads 0.1_0
        "1_0 0.5 0.5 0.1 0.1": True,
        "\uff10 0.5 0.5 0.1 0.1": True,  # full-width digit: int() reads it
        "0 \u0660.5 0.5 0.1 0.1": True,  # Arabic-Indic digit
        "0\u00a00.5 0.5 0.1 0.1": True,  # no-break space: str.split() splits there
        "0 0.5 0.5 0.1 0.1\u00a0": True,
        "0\u30000.5 0.5 0.1 0.1": True,  # ideographic space
        "0 0.5 0.5 nan 0.1": True,
        "0 0.5 0.5 0.1": True,
    }
    for line, bad in cases.items():
        _, found = parse_label_texts([line + "\n"], ["a.txt"])
        assert bool({f.code for f in found} & line_codes) == bad, line
        try:
            parse_label_text(line + "\n", path="a.txt")
            refused = False
        except DetforgeError as exc:
            refused = True
            assert str(exc).startswith("a.txt:1: ") and "\n" not in str(exc)
        assert refused == bad, line
