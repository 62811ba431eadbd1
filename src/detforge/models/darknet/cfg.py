"""Parse a Darknet ``.cfg`` into typed sections, with 1-based line numbers for errors.

The grammar is Darknet's (``parser.c: read_cfg``): ``[section]`` headers, ``key=value`` lines,
``#`` / ``;`` comment lines, blank lines; whitespace inside a line is ignored (Darknet strips
it before splitting on ``=``). A value ends at a ``#`` or ``;`` (``filters=18 # (classes + 5) *
3``, as tutorials write it: Darknet's ``atoi`` stops there too). Keys are checked per section:
a key that changes what the network computes and that detforge does not implement, or a key
Darknet does not know, is a :class:`~detforge.errors.DetforgeError` naming the file and line.
Training-only keys (learning rate, augmentation, loss normalizers, ...) are kept and ignored at
inference, but every number in the file must be finite (``nan``, ``inf``, ``1e400`` are errors
at their line). Integer keys are whole numbers in Darknet's 32-bit ``int`` range, and the keys
that size the network (the input size, ``filters``, window ``size``, ``stride``...) lie in the
ranges of :data:`~detforge.models.darknet.cfgkeys.LIMITS`. A UTF-8 byte order mark is ignored.
Errors quote at most :data:`~detforge.errors.MAX_QUOTED` characters of the user's input
(:func:`~detforge.errors.clip`).

What Darknet runs and detforge does not (a layer type of
:data:`~detforge.models.darknet.cfgkeys.DARKNET_ONLY`, a key detforge does not know, an
activation it does not implement) is an :class:`Unsupported` error; parsed with
``opaque=True`` (a cfg rewrite, which checks what it writes without running it) such a section
is kept as an *opaque* layer instead: :attr:`Section.opaque` says why, and the network walk
(:func:`detforge.models.darknet.network.walk_cfg`) skips the checks that need its output.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from detforge.errors import DetforgeError, clip
from detforge.models.darknet.cfgkeys import ALIASES, DARKNET_ONLY, LIMITS, SECTION_KEYS

_INT_RANGE = (-(2**31), 2**31 - 1)  # Darknet reads integer keys into a C int
_BOM = "\ufeff"


class Unsupported(DetforgeError):
    """The cfg asks for something Darknet runs and detforge does not: a layer type, a key, an
    activation, ``channels`` other than 3. An error for a model; a cfg rewrite (which parses
    with ``opaque=True``) notes it and checks the rest."""


@dataclass
class Section:
    """One ``[name]`` block: ``options`` maps key -> raw value, ``lines`` key -> line number.

    ``opaque``: why detforge cannot run this section (empty when it can); only a cfg parsed
    with ``opaque=True`` has opaque sections."""

    name: str
    line: int
    options: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    path: str = ""
    opaque: str = ""

    def error(self, message: str, key: str | None = None) -> DetforgeError:
        line = self.lines.get(key, self.line) if key is not None else self.line
        return DetforgeError(f"[{clip(self.name)}]: {message}", path=self.path, line=line)

    def unsupported(self, message: str, key: str | None = None) -> Unsupported:
        """:meth:`error` for what Darknet runs and detforge does not."""
        line = self.lines.get(key, self.line) if key is not None else self.line
        return Unsupported(f"[{clip(self.name)}]: {message}", path=self.path, line=line)

    def has(self, key: str) -> bool:
        return key in self.options

    def get_str(self, key: str, default: str) -> str:
        return self.options.get(key, default)

    def _float(self, key: str, raw: str, item: str) -> float:
        """``item`` (``raw`` or one entry of a list ``raw``) as a finite float."""
        try:
            value = float(item)
        except ValueError:
            raise self.error(f"{key}={clip(raw)} is not a number", key) from None
        if not math.isfinite(value):
            raise self.error(f"{key}={clip(raw)} is not a finite number", key)
        return value

    def _int(self, key: str, raw: str, item: str) -> int:
        """``item`` as a whole number in Darknet's ``int`` range (``1.0`` is read as 1)."""
        try:
            value = int(item)
        except ValueError:
            number = self._float(key, raw, item)  # Darknet's atoi-like leniency for "1.0"
            if number != int(number):
                raise self.error(f"{key}={clip(raw)} must be a whole number", key) from None
            value = int(number)
        if not _INT_RANGE[0] <= value <= _INT_RANGE[1]:
            raise self.error(f"{key}={clip(raw)} is out of range (a 32-bit integer)", key)
        return value

    def get_int(self, key: str, default: int) -> int:
        raw = self.options.get(key)
        return default if raw is None else self._int(key, raw, raw)

    def get_float(self, key: str, default: float) -> float:
        raw = self.options.get(key)
        return default if raw is None else self._float(key, raw, raw)

    def _items(self, key: str) -> tuple[str, list[str]] | None:
        raw = self.options.get(key)
        if raw is None:
            return None
        return raw, [v for v in raw.split(",") if v != ""]

    def get_ints(self, key: str) -> list[int] | None:
        found = self._items(key)
        return None if found is None else [self._int(key, found[0], v) for v in found[1]]

    def get_floats(self, key: str) -> list[float] | None:
        found = self._items(key)
        return None if found is None else [self._float(key, found[0], v) for v in found[1]]


@dataclass
class DarknetCfg:
    """A parsed cfg: ``net`` is the ``[net]`` section, ``layers`` the rest in file order;
    ``opaque``: parsed with ``opaque=True`` (what detforge does not run is noted, not refused)."""

    path: str
    net: Section
    layers: list[Section]
    text: str
    opaque: bool = False

    @property
    def width(self) -> int:
        return self.net.get_int("width", 416)

    @property
    def height(self) -> int:
        return self.net.get_int("height", 416)

    @property
    def channels(self) -> int:
        return self.net.get_int("channels", 3)

    @property
    def letter_box(self) -> bool:
        return self.net.get_int("letter_box", 0) != 0


def parse_cfg_text(
    text: str, *, path: str | os.PathLike[str] = "<cfg>", opaque: bool = False
) -> DarknetCfg:
    """Parse cfg text; errors name ``path`` and the 1-based line. With ``opaque``, a Darknet
    layer detforge does not run (:data:`~.cfgkeys.DARKNET_ONLY`) or a section with a key it
    does not know is kept with :attr:`Section.opaque` set instead of an :class:`Unsupported`
    error; every other rule holds."""
    name = os.fspath(path)
    sections: list[Section] = []
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = "".join(raw_line.split())  # Darknet strips every whitespace character
        if not line or line[0] in "#;":
            continue
        if line[0] == "[":
            if not line.endswith("]") or len(line) < 3:
                raise DetforgeError(
                    f"bad section header {clip(raw_line.strip())!r}", path=name, line=number
                )
            kind = line[1:-1].lower()
            sections.append(Section(ALIASES.get(kind, kind), number, path=name))
            continue
        if "=" not in line:
            raise DetforgeError(
                f"expected key=value or [section], got {clip(raw_line.strip())!r}",
                path=name,
                line=number,
            )
        if not sections:
            raise DetforgeError("key=value before the first [section]", path=name, line=number)
        key, value = line.split("=", 1)
        value = re.split("[#;]", value, maxsplit=1)[0]  # an inline comment, as darknet's atoi
        section = sections[-1]
        if key in section.options:
            earlier = section.lines[key]
            raise DetforgeError(
                f"[{clip(section.name)}]: {clip(key)} is set twice (first on line {earlier})",
                path=name,
                line=number,
            )
        section.options[key] = value
        section.lines[key] = number
    if not sections or sections[0].name != "net":
        first = sections[0].line if sections else None
        raise DetforgeError("a Darknet cfg must start with a [net] section", path=name, line=first)
    for section in sections[1:]:
        if section.name == "net":
            raise DetforgeError("a second [net] section", path=name, line=section.line)
    for section in sections:
        _check_keys(section, opaque)
    if len(sections) < 2:
        raise DetforgeError("the cfg has no layers after [net]", path=name, line=sections[0].line)
    return DarknetCfg(path=name, net=sections[0], layers=sections[1:], text=text, opaque=opaque)


def _check_keys(section: Section, opaque: bool) -> None:
    """``section`` is a layer detforge runs and its keys are known, finite and in range; with
    ``opaque``, a Darknet layer or key detforge does not run marks it opaque instead."""
    allowed = SECTION_KEYS.get(section.name)
    if allowed is None:
        if opaque and section.name in DARKNET_ONLY:
            section.opaque = "a layer type detforge does not run"
            for key in section.options:  # its numbers are still numbers
                _check_finite(section, key)
            return
        raise Unsupported(
            f"layer [{clip(section.name)}] is not supported by detforge "
            f"(supported: {', '.join('[' + s + ']' for s in SECTION_KEYS if s != 'net')})",
            path=section.path,
            line=section.line,
        )
    limits = LIMITS.get(section.name, {})
    for key in section.options:
        if key not in allowed:
            if not opaque:
                raise section.unsupported(f"key {clip(key)!r} is not supported by detforge", key)
            section.opaque = section.opaque or f"detforge does not run key {clip(key)!r}"
        _check_finite(section, key)
        if key in limits:
            _check_range(section, key, *limits[key])


def _check_range(section: Section, key: str, low: int, high: int) -> None:
    """``key`` is a whole number in ``low..high`` (:data:`~.cfgkeys.LIMITS`)."""
    value = section.get_int(key, low)
    if not low <= value <= high:
        raise section.error(
            f"{key}={clip(section.options[key])} is out of range: detforge accepts {low}..{high}",
            key,
        )


def _check_finite(section: Section, key: str) -> None:
    """Every number in ``key``'s value (a list's items too) is finite, whether or not detforge
    reads the key: ``nan``/``inf`` in a training setting is as wrong as in ``filters``."""
    for item in section.options[key].split(","):
        try:
            value = float(item)
        except ValueError:
            continue
        if not math.isfinite(value):
            raise section.error(f"{key}={clip(section.options[key])} is not a finite number", key)


def without_inline_comments(text: str) -> str:
    """``text`` with the comment after each value cut (``activation=leaky # x`` ->
    ``activation=leaky``), comment lines and line endings kept: what detforge reads, spelled
    so that Darknet reads it the same (its ``atoi`` stops at the ``#``, but a string value
    keeps it: ``leaky#x`` is an unknown activation, which darknet replaces by ReLU)."""
    out = []
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        head = body.lstrip()
        if "=" in body and head[:1] not in ("#", ";", "["):
            cut = re.split("[#;]", body, maxsplit=1)[0].rstrip()
            line = cut + line[len(body) :]
        out.append(line)
    return "".join(out)


def read_cfg_text(path: str | os.PathLike[str], *, exact: bool = False) -> str:
    """A ``.cfg`` file's text (DetforgeError naming it when missing, unreadable or binary),
    without a leading UTF-8 byte order mark. Bytes that are not UTF-8 become U+FFFD, or with
    ``exact`` lone surrogates (``surrogateescape``), so that a rewrite that encodes with
    ``errors="surrogateescape"`` keeps them byte for byte. Line endings are kept as they are."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise DetforgeError(f"cannot read the cfg: {exc.strerror or exc}", path=p) from None
    if b"\0" in data[:4096]:
        raise DetforgeError("this is not a Darknet .cfg text file (binary data)", path=p)
    text = data.decode("utf-8", errors="surrogateescape" if exact else "replace")
    return text[1:] if text.startswith(_BOM) else text


def read_cfg(path: str | os.PathLike[str]) -> DarknetCfg:
    """Read and parse a ``.cfg`` file (DetforgeError when missing or unreadable)."""
    return parse_cfg_text(read_cfg_text(path), path=Path(path))
