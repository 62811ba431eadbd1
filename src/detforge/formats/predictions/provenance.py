"""Where a prediction file came from: the sidecar ``<name>.meta.json``.

A COCO results file must stay a plain JSON list (pycocotools' ``COCO.loadRes`` accepts
nothing else), so what detforge knows about it is written beside it: ``dets.json`` ->
``dets.meta.json``, a ``labels/`` folder of ``.txt`` files -> ``labels.meta.json``::

    {"detforge_predictions": 1,              # sidecar version
     "written_by": "detforge predict",
     "dataset": "/abs/data/obj.data",        # null for a folder, list, image or video source
     "split": "test",                        # null when the source has no split
     "model": "/abs/runs/train/exp/best.pt",
     "classes": ["ant", "bee"], "category_ids": [1, 2],
     "images": [[17, "/abs/data/img/17.jpg"], ...],   # image_id -> the image it is about
     "settings": {"conf": 0.001, "iou": 0.7, "max_det": 300},
     "file": "123456:<sha1>"}                # size and SHA-1 of the file it describes

Readers use it to match every ``image_id`` to the image it was made on (whatever ids the
ground truth at hand uses) and to refuse predictions of one split scored against another.
A file without a sidecar is read as before (ids, then file stems); a sidecar written for
another version of the file (rewritten since) is ignored, with a note.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detforge.errors import DetforgeError

VERSION = 1


@dataclass
class Provenance:
    """What made a prediction file (see the module docstring for the JSON layout)."""

    written_by: str = "detforge"
    dataset: str | None = None
    split: str | None = None
    model: str | None = None
    classes: list[str] = field(default_factory=list)
    category_ids: list[int] = field(default_factory=list)
    images: dict[int, str] = field(default_factory=dict)
    """``image_id -> image path`` (absolute); ``""`` for a video frame."""
    settings: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """``"the 'test' split of /x/obj.data"``-style words for messages."""
        where = self.dataset or "its source"
        return f"the {self.split!r} split of {where}" if self.split else str(where)


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    """``dets.json`` -> ``dets.meta.json``; a folder ``labels`` -> ``labels.meta.json``."""
    p = Path(path)
    if p.suffix.lower() == ".json":
        return p.with_name(p.stem + ".meta.json")
    return p.with_name(p.name.rstrip("/") + ".meta.json")


def _abs(p: str | None) -> str | None:
    return None if not p else os.path.abspath(p)


def fingerprint(path: str | os.PathLike[str]) -> str | None:
    """``"<bytes>:<sha1>"`` of a results file (``None`` for a folder): a sidecar describes
    only the exact file it was written with."""
    import hashlib

    p = Path(path)
    if not p.is_file():
        return None
    h = hashlib.sha1(usedforsecurity=False)
    with p.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return f"{p.stat().st_size}:{h.hexdigest()}"


def write_provenance(path: str | os.PathLike[str], prov: Provenance) -> Path:
    """Write the sidecar of the prediction file ``path``; returns the sidecar's path."""
    from detforge.formats.coco import dump_json
    from detforge.utils.io import atomic_write_bytes

    body = {
        "detforge_predictions": VERSION,
        "written_by": prov.written_by,
        "dataset": _abs(prov.dataset),
        "split": prov.split,
        "model": _abs(prov.model),
        "classes": list(prov.classes),
        "category_ids": [int(c) for c in prov.category_ids],
        "images": [[int(i), _abs(p) or ""] for i, p in prov.images.items()],
        "settings": prov.settings,
        "file": fingerprint(path),
    }
    side = sidecar_path(path)
    atomic_write_bytes(side, dump_json(body))
    return side


def stale_sidecar(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` has a sidecar written for another version of the file (it changed
    since, e.g. rewritten by another tool): such a sidecar is ignored."""
    from detforge.formats.coco import load_json

    side = sidecar_path(path)
    if not side.is_file():
        return False
    data = load_json(side)
    want = data.get("file") if isinstance(data, dict) else None
    return bool(want) and want != fingerprint(path)


def read_provenance(path: str | os.PathLike[str]) -> Provenance | None:
    """The sidecar of the prediction file ``path``; ``None`` when there is none or it was
    written for another version of the file (:func:`stale_sidecar`). A damaged sidecar is a
    one-line error (delete it to read the file without it)."""
    from detforge.formats.coco import load_json

    side = sidecar_path(path)
    if not side.is_file() or stale_sidecar(path):
        return None
    data = load_json(side)
    try:
        if not isinstance(data, dict) or int(data["detforge_predictions"]) > VERSION:
            raise ValueError("not a detforge predictions sidecar of a known version")
        images = {int(i): str(p) for i, p in data.get("images") or []}
        return Provenance(
            written_by=str(data.get("written_by") or "detforge"),
            dataset=data.get("dataset") or None,
            split=data.get("split") or None,
            model=data.get("model") or None,
            classes=[str(c) for c in data.get("classes") or []],
            category_ids=[int(c) for c in data.get("category_ids") or []],
            images=images,
            settings=dict(data.get("settings") or {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DetforgeError(
            f"damaged predictions sidecar ({exc}); delete it to read {Path(path).name} without it",
            path=side,
        ) from None
