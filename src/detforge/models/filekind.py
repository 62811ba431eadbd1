"""What a model file that is *not* a detforge checkpoint is, and what to do with it.

``load_checkpoint`` asks :func:`describe_foreign_model` before unpickling, so a Darknet
``.weights`` / ``.conv.N`` / ``.cfg`` file or an ONNX model given where a checkpoint is expected
gets a message naming the file's kind and the command that takes it, instead of an unpickling
error. Reads at most the first 4 KiB of the file.
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path

_CONV_N = re.compile(r"\.conv\.\d+$", re.IGNORECASE)
_SECTION = re.compile(rb"^\s*\[(net|network|convolutional|conv|yolo|region|maxpool|route)\]",
                      re.IGNORECASE | re.MULTILINE)  # fmt: skip


def darknet_weights_header(head: bytes) -> tuple[int, int, int, int] | None:
    """``(major, minor, revision, seen)`` when ``head`` (the first bytes of a file) looks like a
    Darknet ``.weights`` header, else ``None``. ``seen`` is a uint64 from version 0.2 on and an
    int32 before (Darknet's ``load_weights``)."""
    if len(head) < 16:
        return None
    major, minor, revision = struct.unpack("<3i", head[:12])
    if not (0 <= major <= 9 and 0 <= minor <= 99 and 0 <= revision < 10**6):
        return None
    if major * 10 + minor >= 2:
        (seen,) = struct.unpack("<Q", head[12:20]) if len(head) >= 20 else (0,)
    else:
        (seen,) = struct.unpack("<i", head[12:16])
    return major, minor, revision, int(seen)


def _weights_name(name: str) -> bool:
    """A ``.weights`` or ``.conv.N`` file name (Darknet's, full or partial weights)."""
    return name.lower().endswith(".weights") or _CONV_N.search(name) is not None


def is_darknet_weights(path: str | os.PathLike[str]) -> bool:
    """A Darknet ``.weights`` / ``.conv.N`` file (by name or by its header), not a checkpoint."""
    p = Path(path)
    if _weights_name(p.name):
        return True
    try:
        with open(p, "rb") as f:
            head = f.read(32)
    except OSError:
        return False
    return not head.startswith(b"PK") and darknet_weights_header(head) is not None


def describe_foreign_model(path: str | os.PathLike[str]) -> str | None:
    """A one-line description and remedy when ``path`` is a Darknet weights or cfg file or an
    ONNX model; ``None`` when it may be a detforge checkpoint."""
    p = Path(path)
    name = p.name.lower()
    try:
        with open(p, "rb") as f:
            head = f.read(4096)
    except OSError:
        return None
    if head.startswith(b"PK"):  # a zip: torch's own format
        return None
    stem = p.stem if not _CONV_N.search(p.name) else _CONV_N.sub("", p.name)
    if name.endswith(".cfg") or _SECTION.search(head):
        return (
            "a Darknet network description (.cfg), not a checkpoint: give the weights and pass "
            f"the cfg with --cfg, e.g. 'detforge predict {stem}.weights SOURCE --cfg {p.name}', "
            f"or fine-tune it: 'detforge train DATA --cfg {p.name} --weights {stem}.weights'"
        )
    header = darknet_weights_header(head)
    if _weights_name(name) or header is not None:
        version = (
            f" (version {header[0]}.{header[1]}.{header[2]}, seen {header[3]})" if header else ""
        )
        kind = (
            "partial Darknet weights (.conv.N)"
            if _CONV_N.search(name)
            else "a Darknet weights file"
        )
        return (
            f"{kind}{version}, not a detforge checkpoint: pass its network with --cfg, e.g. "
            f"'detforge predict {p.name} SOURCE --cfg {stem}.cfg', or fine-tune from it: "
            f"'detforge train DATA --cfg {stem}.cfg --weights {p.name}'"
        )
    if name.endswith(".onnx"):
        return "an ONNX model, not a checkpoint: 'detforge predict' and detforge.load() run it"
    if head and not head.startswith(b"\x80"):  # neither torch's zip nor a pickle
        return (
            "not a model file (no PyTorch, Darknet or ONNX content): a detforge checkpoint "
            "comes from 'detforge train' (runs/train/NAME/weights/best.pt)"
        )
    return None
