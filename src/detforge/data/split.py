"""Train/valid/test splits that keep sequences together, and a report of what leaked anyway.

:func:`assign_splits` gives each image a split so that

* every *group* (a video sequence: the parent folder, or the first capture group of a regex
  over the image path) lands in exactly one split, so near-identical frames never sit on both
  sides of the train/validation line;
* split sizes (in images) follow the ratios as closely as whole groups allow;
* with ``stratify``, the share of images containing each class follows the ratios too
  (rare classes are placed first).

:func:`find_leaks` reports the same file path, or byte-identical content under different paths,
in two splits. Only files whose sizes collide across splits are hashed.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from detforge.errors import DetforgeError
from detforge.utils.paths import identity_keys

SPLIT_ORDER: tuple[str, ...] = ("train", "valid", "test")


def parse_ratios(text: str) -> tuple[float, ...]:
    """``"0.8,0.1,0.1"`` -> ``(0.8, 0.1, 0.1)`` normalized to sum 1 (``"8,1,1"`` works too).

    One to three non-negative finite numbers for train, valid, test, not all zero and with a
    finite sum; anything else is a :class:`DetforgeError`.
    """
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise DetforgeError(f"--ratios expects numbers like 0.8,0.1,0.1, got {text!r}") from None
    if not 1 <= len(vals) <= 3 or any(v < 0 or not np.isfinite(v) for v in vals):
        raise DetforgeError(f"--ratios expects 1 to 3 finite non-negative numbers, got {text!r}")
    total = sum(vals)
    if total <= 0:
        raise DetforgeError("--ratios must not all be zero")
    if not np.isfinite(total):  # 1e308,1e308: each finite, the sum is not
        raise DetforgeError(f"--ratios are too large to add up, got {text!r}; use e.g. 8,1,1")
    return tuple(v / total for v in vals)


def group_keys(paths: Sequence[str], group_by: str | None) -> tuple[list[str], int]:
    """The group of each image and how many paths the regex did not match.

    ``group_by``: ``None`` (each image alone), ``"parent"`` (the folder holding the image) or a
    regular expression searched in the path (forward slashes); its first capture group, or the
    whole match when it has none, is the key. Unmatched paths form groups of their own.
    """
    if group_by is None:
        return list(paths), 0
    if group_by == "parent":
        return [os.path.dirname(p) for p in paths], 0
    try:
        rx = re.compile(group_by)
    except re.error as exc:
        raise DetforgeError(f"--group-by is not a valid regular expression: {exc}") from None
    keys, unmatched = [], 0
    for p in paths:
        m = rx.search(p.replace("\\", "/"))
        if m is None:
            keys.append("\0" + p)
            unmatched += 1
        else:
            keys.append(m.group(1) if rx.groups else m.group(0))
    return keys, unmatched


def assign_splits(
    keys: Sequence[str],
    ratios: Sequence[float],
    *,
    seed: int = 0,
    presence: NDArray[np.bool_] | None = None,
) -> list[str]:
    """Split name for each image, whole groups at a time.

    ``keys`` ``(N,)``: group of each image; ``ratios``: train, valid, test shares (summing to
    1, missing ones are 0); ``presence`` ``(N, K)`` bool: image contains class k (stratify).
    Deterministic for a given ``seed``. Groups are placed largest first (ties in random order)
    into the split furthest below its target; with ``presence``, groups holding rare classes go
    first, each into the split furthest below its targets for the classes the group holds
    (iterative stratification), and images without boxes fill the image-count targets last.
    """
    n = len(keys)
    r = np.zeros(3)
    r[: len(ratios)] = ratios
    active = np.flatnonzero(r > 0)
    uniq: dict[str, int] = {}
    gid = np.fromiter((uniq.setdefault(k, len(uniq)) for k in keys), dtype=np.int64, count=n)
    g = len(uniq)
    gsize = np.bincount(gid, minlength=g).astype(np.float64)
    rng = np.random.default_rng(seed)
    order = rng.permutation(g)
    if presence is not None and presence.shape[1]:
        gcls = np.zeros((g, presence.shape[1]))
        np.add.at(gcls, gid, presence.astype(np.float64))
        total_k = np.maximum(gcls.sum(axis=0), 1.0)
        rarest = np.where(gcls > 0, total_k[None, :], np.inf).min(axis=1)
        order = order[np.lexsort((-gsize[order], rarest[order]))]
    else:
        gcls = np.zeros((g, 0))
        total_k = np.ones(0)
        order = order[np.argsort(-gsize[order], kind="stable")]
    want_img = r * n
    want_cls = r[:, None] * gcls.sum(axis=0)[None, :]
    have_img = np.zeros(3)
    have_cls = np.zeros_like(want_cls)
    gsplit = np.zeros(g, dtype=np.int64)
    for gi in order.tolist():
        score = (want_img - have_img) / max(n, 1)
        cls = np.flatnonzero(gcls[gi])
        if len(cls):  # the rarest class's deficit decides; the others, then images break ties
            deficit = want_cls[:, cls] - have_cls[:, cls]
            rare = int(np.argmin(total_k[cls]))
            score = deficit[:, rare] + 1e-3 * deficit.sum(axis=1) + 1e-6 * score
        s = int(active[np.argmax(score[active])])
        gsplit[gi] = s
        have_img[s] += gsize[gi]
        have_cls[s] += gcls[gi]
    return [SPLIT_ORDER[s] for s in gsplit[gid].tolist()]


@dataclass(frozen=True)
class Leak:
    """One file found in two splits: ``kind`` is ``"same path"`` or ``"same content"``."""

    kind: str
    split_a: str
    path_a: str
    split_b: str
    path_b: str


def _digest(path: str, limit: int | None = None) -> str:
    """BLAKE2b of the file (of its first ``limit`` bytes when given)."""
    h = hashlib.blake2b(digest_size=20)
    with open(path, "rb") as f:
        if limit is not None:
            h.update(f.read(limit))
        else:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()


def _same_content(groups: list[list[tuple[str, str]]]) -> list[Leak]:
    """Leaks among ``(split, path)`` files of equal size (one list per size): their first
    64 KiB are compared first, whole files only where those match."""
    from detforge.utils.progress import progress

    total = sum(len(g) for g in groups)
    heads: dict[tuple[int, str], list[tuple[str, str]]] = defaultdict(list)
    flat = ((k, s, p) for k, g in enumerate(groups) for s, p in g)
    desc = "leak check" if total >= 2000 else ""
    for k, s, p in progress(flat, total=total, desc=desc, enabled=None if desc else False):
        try:
            heads[(k, _digest(p, 1 << 16))].append((s, p))
        except OSError:
            continue
    leaks: list[Leak] = []
    for group in heads.values():
        if len({s for s, _ in group}) < 2:
            continue
        seen: dict[str, tuple[str, str]] = {}
        for s, p in group:
            try:
                d = _digest(p)
            except OSError:
                continue
            if d in seen and seen[d][0] != s:
                leaks.append(Leak("same content", seen[d][0], seen[d][1], s, p))
            seen.setdefault(d, (s, p))
    return leaks


def find_leaks(
    paths: Sequence[str], splits: Sequence[str], *, max_report: int = 1000
) -> list[Leak]:
    """Files that sit in more than one split: the same path (any spelling, a link to its
    folder included: :mod:`detforge.utils.paths`), or byte-identical content under different
    paths. Only files whose sizes collide across splits are read (their first 64 KiB, and
    whole files only where those match too).
    Unreadable files are ignored here (the checker reports them). At most ``max_report``."""
    leaks: list[Leak] = []
    first: dict[str, tuple[str, str]] = {}
    by_size: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for p, s, key in zip(paths, splits, identity_keys(paths), strict=True):
        if key in first:
            if first[key][0] != s:
                leaks.append(Leak("same path", first[key][0], first[key][1], s, p))
            continue
        first[key] = (s, p)
        try:
            by_size[os.stat(p).st_size].append((s, p))
        except OSError:
            continue
    groups = [g for g in by_size.values() if len(g) > 1 and len({s for s, _ in g}) > 1]
    leaks += _same_content(groups)
    return leaks[:max_report]
