"""Label maps (text-format protobuf) read, written and checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from detforge.errors import DetforgeError
from detforge.formats.labelmap import (
    check_label_map,
    format_label_map,
    label_map_names,
    label_map_problems,
    parse_label_map,
    read_label_map,
)
from detforge.formats.tfrecord.textproto import parse


def test_reads_tensorflow_label_map(ref_data: Path) -> None:
    assert read_label_map(ref_data / "raccoon-tfrecord" / "label_map.pbtxt") == {1: "raccoon"}


def test_text_format_variants() -> None:
    text = """
    # a comment
    item: {  id: 2  name: "dog"  display_name: 'Dog' }
    item <
      name: 'it''s'   # adjacent strings concatenate
      id: 1
    >
    item { id: 3, name: "say \\"hi\\"" }
    """
    assert parse_label_map(text) == {1: "its", 2: "dog", 3: 'say "hi"'}


def test_written_map_parses_back_in_protobuf_runtime_order() -> None:
    names = ["cat", "dog with space", 'quo"te']
    text = format_label_map(names)
    assert label_map_names(parse_label_map(text)) == names
    assert text.startswith('item {\n  id: 1\n  name: "cat"\n}\n')


@pytest.mark.parametrize(
    ("text", "msg"),
    [
        ("item { id: 0 name: 'bg' }", "ids start at 1"),
        ("item { id: 1 name: 'a' } item { id: 1 name: 'b' }", "used twice"),
        ("item { id: 1 name: 'a' }\nitem { id: 2 name: 'a' }", "'a' appears twice .lines 1 and 2"),
        ("item { name: 'a' }", "both 'id' and 'name'"),
        ("item { id: x name: 'a' }", "not an integer"),
        ("item { id: 1 name: 'a' ", "unclosed"),
        ("", "no items"),
    ],
)
def test_bad_label_maps(text: str, msg: str) -> None:
    with pytest.raises(DetforgeError, match=msg):
        parse_label_map(text, path="lm.pbtxt")


def test_a_name_given_twice_names_the_second_line(tmp_path: Path) -> None:
    p = tmp_path / "label_map.pbtxt"
    p.write_text("item {\n  id: 1\n  name: 'cat'\n}\nitem {\n  id: 2\n  name: 'cat'\n}\n")
    with pytest.raises(DetforgeError) as e:
        read_label_map(p)
    assert e.value.path == str(p) and e.value.line == 7
    assert "class name 'cat' appears twice (lines 3 and 7)" in e.value.message


def test_gaps_and_mismatches_are_reported(tmp_path: Path) -> None:
    with pytest.raises(DetforgeError, match=r"missing \[2\]"):
        label_map_names({1: "a", 3: "c"})
    problems = label_map_problems({1: "a", 2: "c", 4: "d"}, ["a", "b", "c"])
    assert problems == [
        "id 2 is 'c' in the label map but 'b' in the data",
        "class 'c' needs id 3, which the label map lacks",
        "label map id 4 ('d') is not a dataset class",
    ]
    p = tmp_path / "lm.pbtxt"
    p.write_text(format_label_map(["a", "b"]))
    assert check_label_map(p, ["a", "b"]) == {1: "a", 2: "b"}
    with pytest.raises(DetforgeError, match="NaN loss"):
        check_label_map(p, ["b", "a"])


def test_textproto_keeps_spans() -> None:
    text = 'model { ssd { num_classes: 90 } }\nx: "a" "b"\n'
    nodes = parse(text)
    num = next(n for n in nodes[0].walk() if n.name == "num_classes")
    assert text[num.value_start : num.value_end] == "90" and num.line == 1
    assert nodes[1].value == "ab" and nodes[1].line == 2
    assert text[nodes[1].start : nodes[1].value_end] == 'x: "a" "b"'
