"""Darknet's small text files: ``.data``, ``.names`` and image lists (label files: ``labels.py``).

Path rules (the same for every function here):

* ``--path-map OLD=NEW`` pairs are applied first (:func:`apply_path_map`): a path that starts
  with ``OLD`` (slashes of either kind, drive letters case-insensitive) starts with ``NEW``
  instead, so a dataset made on ``G:/data`` loads on ``/mnt/data``.
* On POSIX, backslashes in a path are read as folder separators (lists written on Windows).
* A relative path is resolved against the folder of the file that names it -- the ``.data`` file
  for its ``train``/``valid``/``names``... keys, the list file for its image paths -- not
  against the working directory. Only when nothing is there is Darknet's own convention tried
  (relative to the folder ``darknet`` runs from: the working directory, or the parent and
  grandparent of the ``.data`` file's folder, see :func:`darknet_roots`); a note records it in
  :attr:`DataFile.notes` (and, for list entries, in the dataset's ``meta["notes"]``).
* A Windows absolute path (``G:\\...``, ``G:/...``, ``\\\\server\\...``) that no path map
  rewrote is kept as written; looking it up fails with a message suggesting ``--path-map``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from detforge.errors import DetforgeError
from detforge.formats.darknet.labels import is_label_number, split_label_fields
from detforge.utils.io import atomic_write_bytes, atomic_write_text
from detforge.utils.paths import normalize_path

PathMap = Sequence[tuple[str, str]]
"""``[(OLD, NEW), ...]`` prefix rewrites, applied in order; the first match wins."""

DATA_KEYS: tuple[str, ...] = (
    "classes",
    "train",
    "valid",
    "difficult",
    "test",
    "names",
    "backup",
    "results",
    "eval",
    "map",
)
"""Every key Darknet's ``detector`` reads from a ``.data`` file, in the order we write them."""

MAX_CLASSES = 100_000
"""The most classes a ``.data`` file may declare (far beyond any real detector)."""

_PATH_KEYS = ("train", "valid", "difficult", "test", "names", "backup", "results", "map")
_WINDOWS_ABS = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\|//)")


@dataclass
class DataFile:
    """A parsed ``.data`` file. Path values are already path-mapped and resolved (see module doc);
    ``None`` means the key is absent."""

    path: Path
    classes: int | None = None
    train: str | None = None
    valid: str | None = None
    difficult: str | None = None
    """A list pairing, line by line, each ``valid`` image with one whose labels are difficult
    truths (see :mod:`detforge.formats.darknet.difficult`)."""
    test: str | None = None
    names: str | None = None
    backup: str | None = None
    results: str | None = None
    eval: str | None = None
    map: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    """Keys Darknet does not know, kept verbatim (and reported by ``detforge info``)."""
    lines: dict[str, int] = field(default_factory=dict)
    """Key -> 1-based line number in the file, for error messages."""
    notes: list[str] = field(default_factory=list)
    """Things worth telling the user (paths found only relative to the working directory)."""
    fallback_base: str | None = None
    """The folder relative paths were found against when not the ``.data`` file's own (the
    working directory, or a parent folder: Darknet resolves against the folder it runs from)."""

    def where(self, key: str) -> tuple[Path, int | None]:
        """``(path, line)`` of ``key`` for a :class:`DetforgeError`."""
        return self.path, self.lines.get(key)


def is_windows_absolute(path: str) -> bool:
    """True for ``C:\\x``, ``C:/x`` and UNC ``\\\\server\\share`` paths."""
    return bool(_WINDOWS_ABS.match(path))


def _norm_slashes(path: str) -> str:
    return path.replace("\\", "/")


def apply_path_map(path: str, path_map: PathMap) -> str:
    """Rewrite the prefix of ``path`` by the first matching ``(OLD, NEW)`` pair.

    Slashes of either kind match each other, ``OLD`` must end at a folder boundary
    (``G:/data`` does not match ``G:/database``), and Windows drive prefixes compare
    case-insensitively. The rest of the path keeps its names, with forward slashes.
    An unmatched path is returned unchanged.
    """
    if not path_map:
        return path
    norm = _norm_slashes(path)
    for old, new in path_map:
        o = _norm_slashes(old).rstrip("/")
        if not o:
            continue
        head = norm[: len(o)]
        same = head.lower() == o.lower() if is_windows_absolute(o) else head == o
        if same and (len(norm) == len(o) or norm[len(o)] == "/"):
            rest = norm[len(o) :].lstrip("/")
            n = new.rstrip("/\\") or new
            return n if not rest else f"{n}/{rest}" if n else rest
    return path


def resolve_path(
    value: str, base_dir: Path, path_map: PathMap = (), links: dict[str, str | None] | None = None
) -> str:
    """Apply ``path_map``, then resolve a relative ``value`` against ``base_dir``.

    Returns a string path, normalized as the system reads it
    (:func:`~detforge.utils.paths.normalize_path`: a link's ``..`` is its target's parent;
    ``links`` its cache), not otherwise symlink-resolved. Windows absolute paths left after
    mapping are returned with forward slashes and not joined to ``base_dir``.
    """
    p = apply_path_map(value.strip(), path_map)
    if os.sep == "/" and "\\" in p:
        p = p.replace("\\", "/")
    if is_windows_absolute(p):
        return p
    if not os.path.isabs(p):
        p = os.path.join(base_dir, p)
    return normalize_path(p, links)


def missing_hint(path: str) -> str:
    """Advice to append to a 'not found' message for ``path``."""
    if is_windows_absolute(path) and os.name != "nt":
        drive = _norm_slashes(path).split("/")[0]
        return (
            f"; this is a Windows path -- map it with --path-map '{drive}/...=/your/folder' "
            "(slashes of either kind match)"
        )
    return ""


def _text_lines(path: Path, what: str) -> list[str]:
    """Lines of a UTF-8 (BOM ok) text file, without line endings (LF, CRLF or CR), decoded
    line by line (:mod:`detforge.utils.textfile`)."""
    from detforge.utils.textfile import read_text_lines

    return read_text_lines(path, what, hint=missing_hint(str(path)), paths=what == "image list")


def read_data_file(path: str | os.PathLike[str], *, path_map: PathMap = ()) -> DataFile:
    """Parse a Darknet ``.data`` file (``key = value`` lines, ``#`` comments, CRLF ok).

    Raises :class:`DetforgeError` naming the line for a line without ``=``, a repeated key, a
    ``classes`` that is not a whole number from 1 to :data:`MAX_CLASSES`, or a path key with
    an empty value.
    """
    p = Path(path)
    df = DataFile(path=p)
    base = p.parent
    for n, raw in enumerate(_text_lines(p, ".data file"), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise DetforgeError(
                f"expected 'key = value' (e.g. 'train = train.txt'), got {line!r}", path=p, line=n
            )
        low = key.lower()
        if low in df.lines or key in df.extra:
            raise DetforgeError(f"key {key!r} appears twice", path=p, line=n)
        if low not in DATA_KEYS:
            df.extra[key] = value
            df.lines[key] = n
            continue
        df.lines[low] = n
        if low == "classes":
            try:
                df.classes = int(value)
            except ValueError:
                raise DetforgeError(
                    f"classes must be a whole number, got {value!r}", path=p, line=n
                ) from None
            if not 1 <= df.classes <= MAX_CLASSES:
                raise DetforgeError(
                    f"classes must be between 1 and {MAX_CLASSES}, got {value}", path=p, line=n
                )
        elif low == "eval":
            df.eval = value
        elif not value:  # an empty path would resolve to the .data file's own folder
            raise DetforgeError(
                f"{low} = has no value; give a path or delete the line", path=p, line=n
            )
        else:
            resolved = resolve_path(value, base, path_map)
            mapped = apply_path_map(value, path_map).replace("\\", "/")
            if (
                not os.path.isabs(mapped)
                and not is_windows_absolute(mapped)
                and not os.path.exists(resolved)
                and low not in ("backup", "results")
            ):
                for alt_base in darknet_roots(p.parent, df.fallback_base):
                    alt = resolve_path(value, alt_base, path_map)
                    if os.path.exists(alt):
                        df.notes.append(
                            f"{p}:{n}: {low} = {value} found relative to {alt_base} (Darknet "
                            "resolves paths against the folder it runs from), not to the .data "
                            "file's folder"
                        )
                        df.fallback_base = str(alt_base)
                        resolved = alt
                        break
            setattr(df, low, resolved)
    return df


def darknet_roots(data_dir: Path, known: str | None) -> list[Path]:
    """Folders Darknet may have been run from: one already found, the working directory, and
    the ``.data`` file's parent and grandparent (``darknet/data/obj.data`` -> ``darknet/``)."""
    out = [Path(known)] if known else []
    out.append(Path.cwd())
    d = data_dir.resolve()
    out += [d.parent, d.parent.parent]
    seen: list[Path] = []
    for b in out:
        if b not in seen and b != d:
            seen.append(b)
    return seen


def write_data_file(path: str | os.PathLike[str], datafile: DataFile) -> None:
    """Write ``datafile`` as ``key = value`` lines (known keys first, then ``extra``)."""
    out = []
    for key in DATA_KEYS:
        value = getattr(datafile, key)
        if value is not None:
            out.append(f"{key} = {value}")
    out += [f"{k} = {v}" for k, v in datafile.extra.items()]
    atomic_write_text(path, "\n".join(out) + "\n")


def read_names(path: str | os.PathLike[str]) -> list[str]:
    """Class names, one per line (CRLF/BOM ok, surrounding spaces dropped, trailing blank lines
    ignored). A blank line between names would shift every later class id, and two classes
    with one name cannot be told apart, so both are errors."""
    p = Path(path)
    lines = [s.strip() for s in _text_lines(p, "names file")]
    while lines and not lines[-1]:
        lines.pop()
    for n, name in enumerate(lines, start=1):
        if not name:
            raise DetforgeError(
                "blank line between class names (it would shift every later class id); "
                "remove it or give the class a name",
                path=p,
                line=n,
            )
    if not lines:
        raise DetforgeError("names file is empty; put one class name per line", path=p)
    refuse_duplicate_names(
        lines,
        range(1, len(lines) + 1),
        path=p,
        hint=" ('detforge check --fix' renames the second)",
    )
    return lines


def refuse_duplicate_names(
    names: Sequence[str],
    lines: Sequence[int | None],
    *,
    path: str | os.PathLike[str] | None,
    hint: str = "",
) -> None:
    """The one rule of every class list (``.names``, a VOC class list, a TF label map): two
    classes with one name cannot be told apart, so the second is a :class:`DetforgeError`
    naming ``path`` and its line (``lines[k]`` is where ``names[k]`` is written)."""
    first: dict[str, int | None] = {}
    for name, n in zip(names, lines, strict=True):
        if name in first:
            where = f"lines {first[name]} and {n}" if n is not None else "twice"
            raise DetforgeError(
                f"class name {name!r} appears twice ({where}); every class needs its own "
                f"name{hint}",
                path=path,
                line=n,
            )
        first[name] = n


def read_class_list(path: str | os.PathLike[str], what: str = "class list") -> list[str]:
    """Class names, one per line, in order (CRLF/BOM ok, surrounding spaces dropped, blank
    lines skipped: a VOC class list matches names, not ids). A name written twice is a
    :class:`DetforgeError` with both lines (:func:`refuse_duplicate_names`)."""
    p = Path(path)
    names: list[str] = []
    lines: list[int | None] = []
    for n, raw in enumerate(_text_lines(p, what), start=1):
        if raw.strip():
            names.append(raw.strip())
            lines.append(n)
    refuse_duplicate_names(names, lines, path=p)
    return names


def write_names(path: str | os.PathLike[str], names: Sequence[str]) -> None:
    """Write one class name per line."""
    atomic_write_text(path, "".join(f"{n}\n" for n in names))


def read_image_list_lines(
    path: str | os.PathLike[str], *, path_map: PathMap = ()
) -> tuple[list[str], list[int]]:
    """Like :func:`read_image_list`, also returning each entry's 1-based line number."""
    paths, numbers, _ = read_image_list_entries(path, path_map=path_map)
    return paths, numbers


def read_image_list_entries(
    path: str | os.PathLike[str],
    *,
    path_map: PathMap = (),
    misreads: list[tuple[int, str, str]] | None = None,
) -> tuple[list[str], list[int], list[bool]]:
    """Resolved paths, 1-based line numbers and whether each entry was written relative.

    A ``.data`` file or a label file (its first entry a ``class cx cy w h`` line) is a
    :class:`DetforgeError`, not a list of images named ``classes = 2`` or ``0 0.5 ...``.
    ``misreads``: where given, the lines Darknet reads otherwise are appended to it
    (:func:`darknet_misreads`).
    """
    p = Path(path)
    base = p.parent
    prefix = os.path.abspath(base) + "/"
    fast = os.sep == "/" and not path_map
    if p.suffix.lower() == ".data":
        raise DetforgeError(
            "a .data file, not an image list; give the lists it names (train = ..., valid = ...)",
            path=p,
        )
    lines = _text_lines(p, "image list")
    _refuse_label_file(p, lines)
    if fast:
        got = _plain_entries(lines, prefix)
        if got is not None:
            if misreads is not None:  # plain lines: only a byte order mark can be misread
                misreads += darknet_misreads(p, lines, plain=True)
            return got
    if misreads is not None:
        misreads += darknet_misreads(p, lines)
    paths: list[str] = []
    numbers: list[int] = []
    relative: list[bool] = []
    links: dict[str, str | None] = {}  # folders before a '..': one link check each
    for n, raw in enumerate(lines, start=1):
        s = raw.strip()
        if not s or s[0] == "#":
            continue
        if fast and "\\" not in s and s[1:2] != ":":
            # the common case, without the general resolver's per-entry overhead
            rel = s[0] != "/"
            q = prefix + s if rel else s
            paths.append(normalize_path(q, links) if "/." in q or "//" in q else q)
        else:
            mapped = apply_path_map(s, path_map)
            rel = not (os.path.isabs(mapped.replace("\\", "/")) or is_windows_absolute(mapped))
            paths.append(resolve_path(s, base, path_map, links))
        numbers.append(n)
        relative.append(rel)
    return paths, numbers, relative


def darknet_misreads(
    path: Path, lines: list[str], *, plain: bool = False
) -> list[tuple[int, str, str]]:
    """The lines of the image list ``path`` (its ``lines`` as read) that Darknet reads as
    another path than detforge, as ``(line, kind, as Darknet reads it)``, ``kind`` one of
    ``blank``, ``comment``, ``spaces`` and ``bom``. Darknet's ``get_paths`` keeps every line
    as written but its line end: a blank line, a ``#`` line and spaces around a path are paths
    of files that do not exist, and a byte order mark is part of the first path; it then
    trains a blank 10x10 image for each (``load_image`` and ``bad.list``). ``plain``: the
    lines are known to be plain paths (only the byte order mark is looked for)."""
    out: list[tuple[int, str, str]] = []
    for n, raw in enumerate(() if plain else lines, start=1):
        s = raw.strip()
        if not s:
            out.append((n, "blank", raw))
        elif s[0] == "#":
            out.append((n, "comment", raw))
        elif s != raw:
            out.append((n, "spaces", raw))
    try:
        with open(path, "rb") as f:
            bom = f.read(3) == b"\xef\xbb\xbf"
    except OSError:  # the lines were read: a file gone since is not a misread
        bom = False
    if bom and lines and not (out and out[0][0] == 1):
        out.insert(0, (1, "bom", "\ufeff" + lines[0]))
    return out


def _refuse_label_file(path: Path, lines: list[str]) -> None:
    """A :class:`DetforgeError` when the first entry of ``lines`` is a Darknet label line."""
    n, first = next(((n, s.strip()) for n, s in enumerate(lines, 1) if s.strip()), (0, ""))
    fields = split_label_fields(first)
    if len(fields) == 5 and all(map(is_label_number, fields)):
        raise DetforgeError(
            f"{first!r} is a Darknet label line (class cx cy w h): this is a label file, not "
            "an image list",
            path=path,
            line=n,
        )


def _plain_entries(lines: list[str], prefix: str) -> tuple[list[str], list[int], list[bool]] | None:
    """:func:`read_image_list_entries` in bulk for the common list (no blank or ``#`` lines,
    no ``\\``, ``:``, ``.``/``..`` segments or ``//``, no surrounding spaces); ``None`` for
    any other list. ``prefix``: the list's folder with a trailing ``/``."""
    entries = [s.strip() for s in lines]
    if entries != lines or "" in entries or "." in entries or ".." in entries:
        return None
    blob = "\n" + "\n".join(entries)
    if any(bad in blob for bad in ("\\", ":", "\n#", "/.", "./", "//")):
        return None
    n = len(entries)
    if "\n/" not in blob:  # all relative
        return [prefix + s for s in entries], list(range(1, n + 1)), [True] * n
    relative = [s[0] != "/" for s in entries]
    paths = [prefix + s if r else s for s, r in zip(entries, relative, strict=True)]
    return paths, list(range(1, n + 1)), relative


def read_image_list(path: str | os.PathLike[str], *, path_map: PathMap = ()) -> list[str]:
    """Image paths of a list file: one per line, blank and ``#`` lines skipped, CRLF/BOM ok,
    relative paths resolved against the list file's folder (after ``path_map``)."""
    return read_image_list_lines(path, path_map=path_map)[0]


def write_image_list(path: str | os.PathLike[str], paths: Sequence[str]) -> None:
    """Write one path per line (LF endings); a name that is not UTF-8 keeps its bytes."""
    atomic_write_bytes(path, "".join(f"{p}\n" for p in paths).encode("utf-8", "surrogateescape"))
