"""Reuse a whole previous check when nothing the check depends on has changed.

The per-file caches (:mod:`detforge.check.files`) already spare re-reading unchanged files;
this goes one step further for the common case "check again before training": the findings
and summary of the last check are stored with a fingerprint of everything they depend on, and
returned as they are when the fingerprint matches. The fingerprint covers

* the check options, the source file and every list / names / label-map file (size, mtime,
  ctime);
* every image path with its size, mtime and ctime, in order;
* the mtime and ctime of every folder that holds images or could hold their labels (a
  folder's mtime changes when a file in it is created, deleted or renamed, so a new or
  removed label file is noticed), and the size, mtime and ctime of every label file used
  last time.

The ctime (``st_ctime_ns``) is there because the mtime alone can lie: a same-size edit with
the mtime set back (``touch -d``, ``os.utime``) leaves size and mtime as they were, but not the
ctime (see :mod:`detforge.utils.filestat`). A ``chmod`` or a copy moves it too: a harmless
full check.

Any difference means a full check (itself fast thanks to the per-file caches). The record is a
JSON file in the detforge cache folder, written atomically; an unreadable one is ignored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detforge.check.findings import CODES, RULES_VERSION, Finding
from detforge.data.cache import default_cache_dir
from detforge.utils.filestat import Stamps, stat_many
from detforge.utils.io import atomic_write_text

VERSION = 3  # raised when the rules or the record change: an older record is never read


def _record_path(source: str) -> Path:
    key = os.path.abspath(source).encode("utf-8", "surrogateescape")
    return (
        default_cache_dir()
        / f"check-result-r{RULES_VERSION}-v{VERSION}-{hashlib.sha1(key).hexdigest()[:20]}.json"
    )


def _label_folders(folder: str) -> list[str]:
    """Folders where labels of images in ``folder`` may be (the rules of ``locate_labels``)."""
    out = [folder]
    norm = folder.replace("\\", "/") + "/"
    if "/JPEGImages/" in norm:
        out.append(norm.replace("/JPEGImages/", "/labels/", 1).rstrip("/"))
    if "/images/" in norm:
        head, _, rest = norm.rpartition("/images/")
        out.append(f"{head}/labels/{rest}".rstrip("/"))
    return out


def fingerprint(
    *, options: dict[str, Any], files: list[str], images: list[str], stamps: Stamps
) -> str:
    """A digest of the options, the small files, the images and their folders (module doc).

    ``stamps`` are the images' ``(size, mtime_ns, ctime_ns)`` from the caller's stat pass
    (:func:`~detforge.utils.filestat.stat_many` with ``ctime=True``)."""
    if any(len(a) != len(images) for a in stamps):
        raise ValueError("fingerprint: one (size, mtime, ctime) per image")
    h = hashlib.blake2b(digest_size=20)
    h.update(json.dumps(options, sort_keys=True, default=str).encode())
    h.update("\0".join(files).encode("utf-8", "surrogateescape"))
    h.update(b"".join(a.tobytes() for a in stat_many(files, ctime=True)))
    h.update("\0".join(images).encode("utf-8", "surrogateescape"))
    h.update(b"".join(np.ascontiguousarray(a, dtype=np.int64).tobytes() for a in stamps))
    sep = os.sep
    parents = {p.rpartition(sep)[0] for p in images}
    folders = sorted({d for p in parents for d in _label_folders(p)})
    for d in folders:
        try:
            st = os.stat(d)
            h.update(
                f"{d}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0".encode("utf-8", "surrogateescape")
            )
        except OSError:
            h.update(f"{d}\0-\0".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def load(
    source: str, key: str, *, notes: list[str] | None = None
) -> tuple[list[Finding], dict[str, Any]] | None:
    """The stored findings and summary when ``key`` matches and no label file changed.

    A stored record that is cut off or holds values of the wrong types is not used (the check
    runs again and stores a new one); ``notes`` then gets one line saying so."""
    damaged = f"the stored check result of {source} was damaged; checked again and replaced"
    try:
        rec = json.loads(_record_path(source).read_text(encoding="utf-8"))
    except OSError:
        return None  # none stored: the check runs and stores one
    except (ValueError, RecursionError):
        return _damaged(notes, damaged)  # cut off or not JSON
    if not isinstance(rec, dict):
        return _damaged(notes, damaged)
    if rec.get("key") != key:
        return None  # another version, other options or other files: not a fault
    labels = rec.get("labels", [])
    if not (isinstance(labels, list) and all(isinstance(p, str) for p in labels)):
        return _damaged(notes, damaged)
    size, mtime, ctime = stat_many(labels, ctime=True)
    if (
        size.tolist() != rec.get("label_size")
        or mtime.tolist() != rec.get("label_mtime")
        or ctime.tolist() != rec.get("label_ctime")
    ):
        return None
    findings = _findings(rec.get("findings"))
    summary = rec.get("summary")
    if findings is None or not _summary_ok(summary):
        return _damaged(notes, damaged)
    return findings, dict(summary)  # type: ignore[arg-type]


def _damaged(notes: list[str] | None, message: str) -> tuple[list[Finding], dict[str, Any]] | None:
    """Note ``message`` (a damaged record) and answer "nothing to reuse"."""
    if notes is not None:
        notes.append(message)
    return None


def _summary_ok(summary: object) -> bool:
    if not isinstance(summary, dict):
        return False
    counts = ("images", "boxes", "errors", "warnings", "infos", "files", "label_files")
    if any(not isinstance(summary.get(k, 0), int) for k in counts):
        return False
    return isinstance(summary.get("splits", {}), dict)


def _findings(raw: object) -> list[Finding] | None:
    """Stored findings, or ``None`` when any entry is not what :meth:`Finding.to_dict` wrote."""
    if not isinstance(raw, list):
        return None
    out = []
    for f in raw:
        if not isinstance(f, dict) or set(f) != {"severity", "code", "path", "line", "message"}:
            return None
        ok = (
            isinstance(f["severity"], str)
            and f["severity"] in ("error", "warning", "info")
            and isinstance(f["code"], str)
            and f["code"] in CODES
            and isinstance(f["message"], str)
            and (f["path"] is None or isinstance(f["path"], str))
            and (
                f["line"] is None
                or (isinstance(f["line"], int) and not isinstance(f["line"], bool))
            )
        )
        if not ok:
            return None
        out.append(Finding(**f))
    return out


def store(
    source: str,
    key: str,
    labels: tuple[list[str], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]],
    findings: list[Finding],
    summary: dict[str, Any],
) -> None:
    """Remember this check's result under ``key`` (silently skipped when not writable).

    ``labels`` is ``(paths, size, mtime_ns, ctime_ns)`` of the label files the check read,
    from a ``stat`` made before (or, by ``fstat``, with) the read: a file edited after it then
    differs from what is stored, and the record is not reused."""
    paths, size, mtime, ctime = labels
    rec = {
        "key": key,
        "labels": paths,
        "label_size": size.tolist(),
        "label_mtime": mtime.tolist(),
        "label_ctime": ctime.tolist(),
        "findings": [f.to_dict() for f in findings],
        "summary": summary,
    }
    with contextlib.suppress(OSError):
        atomic_write_text(_record_path(source), json.dumps(rec, default=str))
