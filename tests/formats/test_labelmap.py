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


_EXPECTED = (
    "expected a TF label map (item { id: 1 name: 'cat' }) or a class list, one name a line "
    "(the k-th name is id k)"
)


@pytest.mark.parametrize("suffix", [".txt", ".names", ".pbtxt"])
def test_a_class_list_is_read_as_ids_1_to_n(tmp_path: Path, suffix: str) -> None:
    p = tmp_path / f"classes{suffix}"
    p.write_bytes(b"\xef\xbb\xbfraccoon\r\n\r\n  traffic light \r\nitem\r\n")
    assert read_label_map(p) == {1: "raccoon", 2: "traffic light", 3: "item"}
    assert label_map_names(read_label_map(p)) == ["raccoon", "traffic light", "item"]


def test_a_text_format_map_is_told_by_its_first_item_whatever_its_name(tmp_path: Path) -> None:
    p = tmp_path / "labels.txt"
    p.write_text(
        "# made by hand\n\nitem\n{\n  id: 2\n  name: 'dog'\n}\nitem { id: 1 name: 'cat' }\n"
    )
    assert read_label_map(p) == {1: "cat", 2: "dog"}


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            "- raccoon\n- dog\n",
            1,
            "'- raccoon' is not a class name (it looks like a YAML list item)",
        ),
        (
            "names:\n  0: raccoon\n",
            1,
            "'names:' is not a class name (it looks like a YAML or text-format 'key: value' line)",
        ),
        (
            '["raccoon", "dog"]\n',
            1,
            '\'["raccoon", "dog"]\' is not a class name (it looks like JSON, YAML or a '
            "text-format label map)",
        ),
        (
            '[\n  "raccoon",\n  "dog"\n]\n',
            1,
            "'[' is not a class name (it looks like JSON, YAML or a text-format label map)",
        ),
        (
            'cat\n"dog",\n',
            2,
            "'\"dog\",' is not a class name (it looks like a quoted or comma-separated "
            "JSON/YAML entry)",
        ),
        (
            "cat\n  id: 2\n",
            2,
            "'id: 2' is not a class name (it looks like a YAML or text-format 'key: value' line)",
        ),
        ("# classes\ncat\n", 1, "'# classes' is not a class name (it looks like a comment)"),
        (
            "\n???\ncat\n",
            2,
            "'???' is not a class name (it looks like a TFLite background entry (id 0))",
        ),
        (
            "0 cat\n1 dog\n",
            1,
            "'0 cat' starts with a number: a numbered list is not read (its ids could start at 0 "
            "or 1)",
        ),
    ],
)
def test_other_formats_are_refused_at_their_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    p = tmp_path / "label_map.txt"
    p.write_text(text)
    with pytest.raises(DetforgeError) as e:
        read_label_map(p)
    assert (e.value.path, e.value.line) == (str(p), line)
    assert e.value.message == f"{message}; {_EXPECTED}"


def test_unreadable_label_map_files(tmp_path: Path) -> None:
    blank = tmp_path / "blank.txt"
    blank.write_text("\n \n")
    with pytest.raises(DetforgeError) as e:
        read_label_map(blank)
    assert str(e.value) == f"{blank}: label map has no class names; {_EXPECTED}"
    comments = tmp_path / "comments.txt"
    comments.write_text("# classes of the 2024 survey\n\n  # none yet\n")
    with pytest.raises(DetforgeError) as e:
        read_label_map(comments)
    assert str(e.value) == (
        f"{comments}: label map has no class names, only comment lines; {_EXPECTED}"
    )
    binary = tmp_path / "lm.pbtxt"
    binary.write_bytes(b"item\0\x01")
    with pytest.raises(DetforgeError) as e:
        read_label_map(binary)
    assert str(e.value) == f"{binary}: label map expected, but this is a binary file"
    with pytest.raises(DetforgeError) as e:
        read_label_map(tmp_path / "none.pbtxt")
    assert str(e.value) == f"{tmp_path / 'none.pbtxt'}: label map not found"
    # a class that is a numbered name among names is a name
    mixed = tmp_path / "mixed.txt"
    mixed.write_text("3 wheeler\ncar\n")
    assert read_label_map(mixed) == {1: "3 wheeler", 2: "car"}


def test_mismatch_quotes_huge_names_clipped() -> None:
    """A 5 MB name was quoted whole in each mismatch sentence."""
    huge = "n" * 5_000_000
    assert label_map_problems({1: huge, 2: huge + "x"}, [huge + "y"]) == [
        f"id 1 is '{'n' * 77}...' in the label map but '{'n' * 77}...' in the data",
        f"label map id 2 ('{'n' * 77}...') is not a dataset class",
    ]
