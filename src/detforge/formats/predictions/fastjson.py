"""Parsing a COCO results JSON without a Python object per detection.

Detectors write results as ``[{"image_id": .., "category_id": .., "bbox": [x, y, w, h],
"score": ..}, ...]`` -- millions of identical little objects, whose Python dicts cost more
than the evaluation itself. :func:`parse_results` checks that the file has exactly that shape
and reads its numbers in 1 MiB chunks; anything else is left to a JSON parser.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

_NUMERIC = b"0123456789.-+"
_TO_SPACE = bytes(c if c in _NUMERIC else 32 for c in range(256))
_NOT_NUMBER = bytes(c for c in range(256) if c not in _NUMERIC + b",")
_RESULT_KEYS = frozenset({"image_id", "category_id", "bbox", "score"})


_CHUNK = 1 << 20
"""Bytes of results JSON parsed at a time (bounds the temporary Python objects)."""


def _numbers(chunk: bytes) -> NDArray[np.float64] | None:
    """All numbers of a chunk of a results list, in order (``None`` if one is malformed)."""
    try:
        import orjson
    except ImportError:  # pragma: no cover - orjson is optional
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return np.fromstring(chunk.translate(_TO_SPACE), dtype=np.float64, sep=" ")
    flat = chunk.translate(None, _NOT_NUMBER).strip(b",")
    try:
        return np.array(orjson.loads(b"[" + flat + b"]"), dtype=np.float64)
    except ValueError:
        return None


def parse_results(data: bytes) -> tuple[NDArray[np.float64], list[str]] | None:
    """Parse a plain COCO results list without building Python objects, or ``None``.

    Applies when every object has exactly the keys ``image_id, category_id, bbox, score`` in
    the same order with plain numeric values (no strings, exponents, ``NaN`` or extra keys) --
    what detectors write. Verified by comparing the file's non-numeric skeleton with the
    first object's, repeated; anything else returns ``None`` and the caller uses a JSON parser.
    Returns ``(values (n, 7), key order)``.
    """
    import json

    start = data.find(b"{")
    end = data.find(b"}", start)
    if start < 0 or end < 0 or data[:start].strip() != b"[":
        return None
    try:
        first = json.loads(data[start : end + 1])
    except ValueError:
        return None
    if not isinstance(first, dict) or set(first) != _RESULT_KEYS:
        return None
    bb = first.get("bbox")
    if not (isinstance(bb, list) and len(bb) == 4):
        return None
    keys = list(first)
    obj = (
        "{" + ",".join(f'"{k}":' + ("[,,,]" if k == "bbox" else "") for k in keys) + "}"
    ).encode()
    stop = data.rfind(b"}") + 1
    if data[stop:].strip() != b"]":
        return None
    total = data.count(b"{")
    out = np.empty((total, 7), dtype=np.float64)
    n = 0
    pos = 0
    while pos < stop:  # chunks end after a '}' so that each holds whole objects
        end = data.find(b"}", min(pos + _CHUNK, stop - 1)) + 1
        chunk = data[pos:end]
        skel = chunk.translate(None, _NUMERIC + b" \t\r\n")
        k = skel.count(b"{")
        if n + k > total or skel != (b"[" if pos == 0 else b",") + b",".join([obj] * k):
            return None
        vals = _numbers(chunk)
        if vals is None or vals.size != 7 * k:
            return None
        out[n : n + k] = vals.reshape(k, 7)
        n += k
        pos = end
    return (out, keys) if n == total else None
