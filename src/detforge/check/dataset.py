"""Dataset-level checks: class names, ``classes=``, label maps, class balance and split leaks.

These work on plain lists and arrays (names, per-image split and path, per-box class), so the
same checks serve Darknet folders, Ultralytics YAML, COCO, VOC and TFRecords.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from detforge.check.findings import Finding, finding
from detforge.errors import clip

IMBALANCE_RATIO = 100.0
"""``class-imbalance`` fires when the largest class has this many times the boxes of the
smallest non-empty class."""

_WS = re.compile(r"\s")


def raw_name_lines(text: str) -> list[str]:
    """Lines of a ``.names`` file as Darknet uses them: trailing blank lines dropped, the rest
    kept (a blank line in the middle is a class with an empty name)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def check_names(names: Sequence[str], *, path: str | None, lines: bool = True) -> list[Finding]:
    """``name-empty``, ``name-duplicate`` and ``name-whitespace`` for raw class names.

    ``names`` are as written (not stripped); with ``lines`` class ``k`` is on line ``k + 1``
    of ``path`` (a ``.names`` file).
    """
    out: list[Finding] = []
    seen: dict[str, int] = {}
    for k, raw in enumerate(names):
        line = k + 1 if path and lines else None
        name = raw.strip()
        if not name:
            out.append(
                finding(
                    "name-empty",
                    f"class {k} has an empty name; a blank line between names shifts every "
                    "later class id in tools that skip it -- give the class a name "
                    "(--fix names it 'class_{k}')",
                    path=path,
                    line=line,
                )
            )
            continue
        if _WS.search(raw.rstrip("\r\n")):
            out.append(
                finding(
                    "name-whitespace",
                    f"class {k} name {raw!r} contains whitespace; TF label maps, COCO "
                    "tools and some CLIs mishandle it (--fix replaces it with '_')",
                    path=path,
                    line=line,
                )
            )
        if name in seen:
            out.append(
                finding(
                    "name-duplicate",
                    f"class {k} has the same name {name!r} as class {seen[name]}; converters "
                    "that map names to ids merge the two (--fix appends '_{k}')",
                    path=path,
                    line=line,
                )
            )
        else:
            seen[name] = k
    return out


def fixed_names(names: Sequence[str]) -> list[str]:
    """Class names repaired as ``--fix`` does: empty -> ``class_k``, whitespace -> ``_``,
    duplicates get ``_k`` appended."""
    out: list[str] = []
    seen: set[str] = set()
    for k, raw in enumerate(names):
        name = _WS.sub("_", raw.strip()) or f"class_{k}"
        if name in seen:
            name = f"{name}_{k}"
        seen.add(name)
        out.append(name)
    return out


def check_classes_key(
    classes: int | None, num_names: int, *, path: str, line: int | None
) -> list[Finding]:
    """``classes-mismatch`` when a ``.data`` file's ``classes=`` differs from the names."""
    if classes is None or classes == num_names:
        return []
    return [
        finding(
            "classes-mismatch",
            f"classes={classes} but the names file has {num_names} names; Darknet sizes the "
            "network by classes= and labels by names, so ids beyond the smaller count are "
            f"lost -- set classes={num_names} or fix the names (--fix sets classes={num_names})",
            path=path,
            line=line,
        )
    ]


def check_label_map_names(
    mapping: dict[int, str], names: Sequence[str], *, path: str
) -> list[Finding]:
    """``labelmap-mismatch``: each id whose name differs, is missing, or is extra.

    detforge class ``k`` is label-map id ``k + 1`` (TF's ids are 1-based).
    """
    out = []
    for k, name in enumerate(names):
        got = mapping.get(k + 1)
        if got is None:
            msg = f"class {k} {clip(name)!r} needs id {k + 1}, which the label map lacks"
        elif got != name:
            msg = f"id {k + 1} is {clip(got)!r} in the label map but class {k} is {clip(name)!r}"
        else:
            continue
        out.append(
            finding(
                "labelmap-mismatch",
                msg + "; TF decodes classes through the map, a mismatch trains on the wrong "
                "classes or turns the loss into NaN -- regenerate the label map from the names",
                path=path,
            )
        )
    for item_id in sorted(set(mapping) - set(range(1, len(names) + 1))):
        out.append(
            finding(
                "labelmap-mismatch",
                f"label map id {item_id} ({mapping[item_id]!r}) is not a dataset class "
                f"(there are {len(names)} names); remove it or add the class",
                path=path,
            )
        )
    return out


def check_class_counts(
    cls: NDArray[np.int64],
    names: Sequence[str],
    *,
    path: str | None,
    imbalance: float = IMBALANCE_RATIO,
) -> list[Finding]:
    """``class-no-boxes`` for each unused class, ``class-imbalance`` when the largest class
    has at least ``imbalance`` times the boxes of the smallest non-empty one (``0``: never)."""
    n = len(names)
    if n == 0:
        return []
    valid = cls[(cls >= 0) & (cls < n)]
    counts = np.bincount(valid, minlength=n)
    out = [
        finding(
            "class-no-boxes",
            f"class {k} {names[k]!r} has no boxes; the model cannot learn it -- label some "
            "or remove the class",
            path=path,
        )
        for k in np.flatnonzero(counts == 0).tolist()
    ]
    used = counts[counts > 0]
    if imbalance > 0 and len(used) >= 2 and used.max() >= imbalance * used.min():
        big, small = int(np.argmax(counts)), int(np.flatnonzero(counts == used.min())[0])
        out.append(
            finding(
                "class-imbalance",
                f"class {names[big]!r} has {counts[big]} boxes but {names[small]!r} only "
                f"{counts[small]} ({counts[big] / counts[small]:.0f}x); expect poor recall "
                "on the rare class -- label more of it or weight/oversample it",
                path=path,
            )
        )
    return out


def check_split_overlap(paths: Sequence[str], splits: Sequence[str]) -> list[Finding]:
    """``split-overlap``: one image path in two or more splits (paths as the readers resolved
    and normalised them).

    ``paths``/``splits`` are parallel, one entry per list line.
    """
    where: dict[str, set[str]] = defaultdict(set)
    for p, s in zip(paths, splits, strict=True):
        where[p].add(s)
    out = []
    for p, ss in where.items():
        if len(ss) > 1:
            order = sorted(ss, key=split_rank)
            out.append(
                finding(
                    "split-overlap",
                    f"listed in {' and '.join(order)}; evaluation on training images inflates "
                    f"mAP -- keep it in one split (--fix removes it from {', '.join(order[1:])})",
                    path=p,
                )
            )
    return out


def split_rank(s: str) -> tuple[int, str]:
    order = {"train": 0, "valid": 1, "test": 2}
    return order.get(s, 3), s


def file_digest(path: str) -> str:
    """BLAKE2b-128 hex digest of a file's bytes (``""`` if unreadable)."""
    h = hashlib.blake2b(digest_size=16)
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    except OSError:
        return ""
    return h.hexdigest()


def check_identical(
    paths: Sequence[str], splits: Sequence[str], digests: Sequence[str]
) -> list[Finding]:
    """``split-identical-image`` for byte-identical files (equal digests) in different splits.

    ``digests`` ``""`` means "not hashed" and is ignored. One finding per file outside the
    earliest split of its group.
    """
    groups: dict[str, list[int]] = defaultdict(list)
    for i, d in enumerate(digests):
        if d:
            groups[d].append(i)
    out = []
    for idx in groups.values():
        if len({splits[i] for i in idx}) < 2:
            continue
        idx = sorted(idx, key=lambda i: (split_rank(splits[i]), paths[i]))
        first = idx[0]
        for i in idx[1:]:
            if splits[i] != splits[first]:
                out.append(
                    finding(
                        "split-identical-image",
                        f"({splits[i]}) has the same bytes as {paths[first]} ({splits[first]}); "
                        "a copy in two splits leaks training data into evaluation",
                        path=paths[i],
                    )
                )
    return out


def check_group_leaks(
    paths: Sequence[str], splits: Sequence[str], groups: Sequence[str]
) -> list[Finding]:
    """``split-group-leak``: a group (sequence) with images in train and in another split."""
    where: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    example: dict[tuple[str, str], str] = {}
    for p, s, g in zip(paths, splits, groups, strict=True):
        if g:
            where[g][s] += 1
            example.setdefault((g, s), p)
    out = []
    for g, per in where.items():
        if "train" in per and len(per) > 1:
            others = [s for s in sorted(per, key=split_rank) if s != "train"]
            parts = ", ".join(f"{per[s]} in {s}" for s in others)
            out.append(
                finding(
                    "split-group-leak",
                    f"sequence {g!r} has {per['train']} images in train and {parts}; "
                    "near-identical frames leak into evaluation -- split by sequence "
                    "(detforge split --group-by)",
                    path=example[(g, others[0])],
                )
            )
    return out
