"""A minimal reader of protobuf *text format* that keeps byte offsets, for careful edits.

Used by ``formats/labelmap.py`` (``label_map.pbtxt``) and ``pipeline.py`` (``pipeline.config``).
It understands what those files contain: ``name: scalar``, ``name { ... }``, ``name: { ... }``,
``name: [a, b]`` lists, quoted strings (single or double, C escapes, adjacent strings
concatenated), numbers, identifiers and ``#`` comments. It does not need the schema.

:func:`parse` returns a tree of :class:`Node`; each node remembers the byte span of its value
(``value_start``/``value_end``), so an editor can replace exactly that span and leave every
other byte -- comments, spacing, field order -- untouched.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from detforge.errors import DetforgeError

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<punct>[{}\[\]:,;<>])
  | (?P<word>[-+]?[A-Za-z0-9_.+\-/]+)
    """,
    re.VERBOSE,
)


@dataclass
class Token:
    kind: str  # "string", "punct" or "word"
    text: str
    start: int
    end: int
    line: int


@dataclass
class Node:
    """A field: ``name`` and either a scalar ``value`` (list for ``[..]``) or ``children``.

    ``value_start``/``value_end`` are byte offsets of the value text in the source (for a
    message: the braces included); ``line`` is 1-based.
    """

    name: str
    line: int
    value_start: int
    value_end: int
    value: str | list[str] | None = None
    children: list[Node] = field(default_factory=list)
    start: int = -1
    """Byte offset of the field name (so the whole field ``start:value_end`` can be removed)."""

    @property
    def is_message(self) -> bool:
        return self.value is None

    def find(self, name: str) -> list[Node]:
        """Direct children called ``name``."""
        return [c for c in self.children if c.name == name]

    def walk(self) -> Iterator[Node]:
        """This node's descendants, depth first."""
        for c in self.children:
            yield c
            yield from c.walk()


def tokenize(text: str, *, path: str | None = None) -> list[Token]:
    """Split text-format protobuf into tokens (whitespace and comments dropped)."""
    tokens: list[Token] = []
    pos, line = 0, 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise DetforgeError(
                f"cannot read protobuf text near {text[pos : pos + 20]!r}", path=path, line=line
            )
        kind = m.lastgroup or ""
        if kind in ("string", "punct", "word"):
            tokens.append(Token(kind, m.group(), m.start(), m.end(), line))
        line += m.group().count("\n")
        pos = m.end()
    return tokens


def unquote(token_text: str) -> str:
    """The value of a quoted string token (C-style escapes)."""
    try:
        value = ast.literal_eval(token_text)
    except (ValueError, SyntaxError):
        return token_text[1:-1]
    return value if isinstance(value, str) else str(value)


def parse(text: str, *, path: str | None = None) -> list[Node]:
    """Parse a whole text-format message into its top-level fields."""
    tokens = tokenize(text, path=path)
    nodes, pos = _parse_fields(tokens, 0, text, path, closing=None)
    if pos != len(tokens):
        tok = tokens[pos]
        raise DetforgeError(f"unexpected {tok.text!r}", path=path, line=tok.line)
    return nodes


def _parse_fields(
    tokens: list[Token], pos: int, text: str, path: str | None, *, closing: str | None
) -> tuple[list[Node], int]:
    nodes: list[Node] = []
    while pos < len(tokens):
        tok = tokens[pos]
        if closing is not None and tok.text == closing:
            return nodes, pos
        if tok.text in (",", ";"):
            pos += 1
            continue
        if tok.kind != "word" and not (tok.text == "[" and closing is not None):
            raise DetforgeError(
                f"expected a field name, found {tok.text!r}", path=path, line=tok.line
            )
        name = tok.text
        if tok.text == "[":  # extension name: [ext.name]
            end = pos
            while end < len(tokens) and tokens[end].text != "]":
                end += 1
            name = text[tok.start : tokens[min(end, len(tokens) - 1)].end]
            pos = end
        pos += 1
        if pos < len(tokens) and tokens[pos].text == ":":
            pos += 1
        if pos >= len(tokens):
            raise DetforgeError(f"field {name!r} has no value", path=path, line=tok.line)
        val = tokens[pos]
        if val.text in ("{", "<"):
            close = "}" if val.text == "{" else ">"
            children, end = _parse_fields(tokens, pos + 1, text, path, closing=close)
            if end >= len(tokens):
                raise DetforgeError(
                    f"unclosed {val.text!r} of field {name!r}", path=path, line=val.line
                )
            nodes.append(
                Node(name, tok.line, val.start, tokens[end].end, None, children, tok.start)
            )
            pos = end + 1
        elif val.text == "[":
            items: list[str] = []
            end = pos + 1
            while end < len(tokens) and tokens[end].text != "]":
                t = tokens[end]
                if t.text != ",":
                    items.append(unquote(t.text) if t.kind == "string" else t.text)
                end += 1
            if end >= len(tokens):
                raise DetforgeError(f"unclosed '[' of field {name!r}", path=path, line=val.line)
            nodes.append(Node(name, tok.line, val.start, tokens[end].end, items, [], tok.start))
            pos = end + 1
        elif val.kind in ("string", "word"):
            if val.kind == "string":
                parts, end = [], pos
                while end < len(tokens) and tokens[end].kind == "string":
                    parts.append(unquote(tokens[end].text))
                    end += 1
                nodes.append(
                    Node(
                        name,
                        tok.line,
                        val.start,
                        tokens[end - 1].end,
                        "".join(parts),
                        [],
                        tok.start,
                    )
                )
                pos = end
            else:
                nodes.append(Node(name, tok.line, val.start, val.end, val.text, [], tok.start))
                pos += 1
        else:
            raise DetforgeError(f"field {name!r} has no value", path=path, line=tok.line)
    if closing is not None:
        return nodes, pos
    return nodes, pos


def quote(value: str) -> str:
    """A double-quoted text-format string for ``value``."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
