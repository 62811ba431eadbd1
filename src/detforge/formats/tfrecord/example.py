"""A small protobuf codec for ``tf.train.Example``, without TensorFlow or generated classes.

The messages (from TensorFlow's ``example.proto`` / ``feature.proto``)::

    Example   { Features features = 1; }
    Features  { map<string, Feature> feature = 1; }      // map entry: key = 1, value = 2
    Feature   { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2;
                             Int64List int64_list = 3; } }
    BytesList { repeated bytes value = 1; }
    FloatList { repeated float value = 1 [packed = true]; }   // float32
    Int64List { repeated int64 value = 1 [packed = true]; }

The decoder accepts packed and unpacked repeated scalars (both are valid protobuf) and skips
unknown fields; the encoder writes packed scalars and sorts features by key, as TensorFlow's
serializer does for maps (deterministic output). Floats are float32 on the wire.

A decoded example is a ``dict[str, Feature]``; build one for encoding with
:func:`bytes_feature`, :func:`float_feature` and :func:`int64_feature`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from detforge.errors import DetforgeError

Kind = Literal["bytes", "float", "int64"]


@dataclass(frozen=True)
class Feature:
    """One feature: its ``kind`` and its values (``bytes``, Python ``float`` or ``int``)."""

    kind: Kind
    values: list[bytes] | list[float] | list[int]


def bytes_feature(values: Iterable[bytes | str]) -> Feature:
    """A ``BytesList`` feature; ``str`` values are UTF-8 encoded."""
    return Feature("bytes", [v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in values])


def float_feature(values: Iterable[float]) -> Feature:
    """A ``FloatList`` feature (stored as float32)."""
    return Feature("float", [float(v) for v in values])


def int64_feature(values: Iterable[int]) -> Feature:
    """An ``Int64List`` feature."""
    return Feature("int64", [int(v) for v in values])


class _DecodeError(Exception):
    pass


# ----------------------------------------------------------------------------- wire helpers
def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise _DecodeError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise _DecodeError("varint too long")


def _enc_varint(value: int) -> bytes:
    value &= 0xFFFFFFFFFFFFFFFF  # negative int64 -> two's complement, 10 bytes
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _fields(buf: bytes) -> Iterable[tuple[int, int, int | bytes]]:
    """Yield ``(field_number, wire_type, value)``; length-delimited values are bytes."""
    pos, n = 0, len(buf)
    while pos < n:
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield field, wire, value
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > n:
                raise _DecodeError("length-delimited field runs past the end")
            yield field, wire, buf[pos : pos + size]
            pos += size
        elif wire == 5:
            if pos + 4 > n:
                raise _DecodeError("truncated fixed32")
            yield field, wire, buf[pos : pos + 4]
            pos += 4
        elif wire == 1:
            if pos + 8 > n:
                raise _DecodeError("truncated fixed64")
            yield field, wire, buf[pos : pos + 8]
            pos += 8
        else:
            raise _DecodeError(f"unsupported wire type {wire}")


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _decode_feature(buf: bytes) -> Feature:
    feature = Feature("bytes", [])
    for field, wire, value in _fields(buf):
        if wire != 2 or not isinstance(value, bytes):
            continue
        if field == 1:
            items = [v for f, w, v in _fields(value) if f == 1 and w == 2 and isinstance(v, bytes)]
            feature = Feature("bytes", items)
        elif field == 2:
            floats: list[float] = []
            for f, w, v in _fields(value):
                if f != 1 or not isinstance(v, bytes):
                    continue
                if w == 2:  # packed
                    if len(v) % 4:
                        raise _DecodeError("packed float list length is not a multiple of 4")
                    floats.extend(np.frombuffer(v, dtype="<f4").astype(np.float64).tolist())
                elif w == 5:
                    floats.append(struct.unpack("<f", v)[0])
            feature = Feature("float", floats)
        elif field == 3:
            ints: list[int] = []
            for f, w, v in _fields(value):
                if f != 1:
                    continue
                if w == 2 and isinstance(v, bytes):  # packed
                    pos = 0
                    while pos < len(v):
                        x, pos = _varint(v, pos)
                        ints.append(_signed64(x))
                elif w == 0 and isinstance(v, int):
                    ints.append(_signed64(v))
            feature = Feature("int64", ints)
    return feature


def decode_example(data: bytes) -> dict[str, Feature]:
    """Parse a serialized ``tf.train.Example`` into ``{key: Feature}``.

    Raises :class:`DetforgeError` when ``data`` is not a valid Example message.
    """
    out: dict[str, Feature] = {}
    try:
        for field, wire, features in _fields(data):
            if field != 1 or wire != 2 or not isinstance(features, bytes):
                continue
            for f, w, entry in _fields(features):
                if f != 1 or w != 2 or not isinstance(entry, bytes):
                    continue
                key, value = "", b""
                for ef, ew, ev in _fields(entry):
                    if ef == 1 and ew == 2 and isinstance(ev, bytes):
                        key = ev.decode("utf-8")
                    elif ef == 2 and ew == 2 and isinstance(ev, bytes):
                        value = ev
                out[key] = _decode_feature(value)
    except (_DecodeError, UnicodeDecodeError) as exc:
        raise DetforgeError(f"record is not a valid tf.train.Example ({exc})") from None
    return out


def _ld(field: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return _enc_varint(field << 3 | 2) + _enc_varint(len(payload)) + payload


def _encode_feature(feature: Feature) -> bytes:
    if feature.kind == "bytes":
        body = b"".join(_ld(1, bytes(v)) for v in feature.values)  # type: ignore[arg-type]
        return _ld(1, body)
    if feature.kind == "float":
        packed = np.asarray(feature.values, dtype="<f4").tobytes()
        return _ld(2, _ld(1, packed) if packed else b"")
    if feature.kind == "int64":
        packed = b"".join(_enc_varint(int(v)) for v in feature.values)
        return _ld(3, _ld(1, packed) if packed else b"")
    raise ValueError(f"unknown feature kind {feature.kind!r}")


def encode_example(features: Mapping[str, Feature]) -> bytes:
    """Serialize ``{key: Feature}`` as a ``tf.train.Example`` (keys sorted, scalars packed)."""
    entries = b"".join(
        _ld(1, _ld(1, key.encode("utf-8")) + _ld(2, _encode_feature(features[key])))
        for key in sorted(features)
    )
    return _ld(1, entries)


def _values(example: Mapping[str, Feature], key: str, kind: Kind) -> list[Any]:
    feat = example.get(key)
    if feat is None:
        return []
    if feat.kind != kind and feat.values:
        raise DetforgeError(f"feature {key!r} is a {feat.kind} list, expected {kind}")
    return list(feat.values)


def bytes_values(example: Mapping[str, Feature], key: str) -> list[bytes]:
    """The ``BytesList`` values of ``key`` (``[]`` when absent; error if another kind)."""
    return [bytes(v) for v in _values(example, key, "bytes")]


def float_values(example: Mapping[str, Feature], key: str) -> list[float]:
    """The ``FloatList`` values of ``key`` (``[]`` when absent; error if another kind)."""
    return [float(v) for v in _values(example, key, "float")]


def int64_values(example: Mapping[str, Feature], key: str) -> list[int]:
    """The ``Int64List`` values of ``key`` (``[]`` when absent; error if another kind)."""
    return [int(v) for v in _values(example, key, "int64")]
