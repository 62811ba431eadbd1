"""TFRecord framing: length-prefixed records with masked CRC32C, no TensorFlow needed.

Each record on disk is::

    uint64 length          (little endian)
    uint32 masked_crc32c(length bytes)
    bytes  data[length]
    uint32 masked_crc32c(data)

with ``masked(crc) = ((crc >> 15) | (crc << 17)) + 0xA282EAD8 (mod 2**32)``. Reading verifies
both checksums; a file that ends inside a record is reported as an interrupted write (the
guide's "corrupt image from an interrupted conversion"), never half-read silently.

Public API:

* :func:`read_records` -- iterate record payloads, raising :class:`DetforgeError` naming the
  file, the record number (1-based, as ``detforge check`` reports it) and the byte offset of
  the first bad record.
* :func:`iter_records` -- ``(RecordScan, payload)`` for every record, good or bad, without
  raising: for checkers and for salvaging the intact records of a damaged file. A record with
  a bad data checksum is skipped over (its length was trustworthy); a bad header or a
  truncated record ends the file, since the framing cannot be resynchronised after them.
* :func:`scan_records` -- the same without the payloads.
* :func:`write_records` -- write payloads to one file atomically (temp name + rename).
* :func:`shard_paths` / :func:`write_sharded` -- ``name-00000-of-00004.record`` style sharding.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import google_crc32c

from detforge.errors import DetforgeError
from detforge.utils.io import atomic_open

_MASK_DELTA = 0xA282EAD8
_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")
_MAX_RECORD = 1 << 30
"""Lengths above 1 GiB are treated as corruption rather than attempted (a record holds one
image and its boxes; memory stays bounded whatever a corrupted header declares)."""
_CHUNK = 1 << 26


def _read_payload(f: BinaryIO, length: int) -> bytes:
    """Up to ``length`` bytes, read in chunks so that a length the file cannot hold (the
    file is cut short) never allocates more than the file has."""
    try:
        left = os.fstat(f.fileno()).st_size - f.tell()
    except (OSError, AttributeError, ValueError):  # not a real file (BytesIO in tests)
        left = length
    if left < length:
        return f.read(max(left, 0))
    parts, need = [], length
    while need > 0:
        part = f.read(min(need, _CHUNK))
        if not part:
            break
        parts.append(part)
        need -= len(part)
    return b"".join(parts)


def masked_crc32c(data: bytes) -> int:
    """The CRC32C of ``data`` masked as TFRecord stores it (an unsigned 32-bit int)."""
    crc = int(google_crc32c.value(data))
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def encode_record(data: bytes) -> bytes:
    """One framed record: header, ``data``, footer."""
    length = struct.pack("<Q", len(data))
    return b"".join(
        (length, _FOOTER.pack(masked_crc32c(length)), data, _FOOTER.pack(masked_crc32c(data)))
    )


@dataclass(frozen=True)
class RecordScan:
    """One record found by :func:`scan_records`.

    ``index`` is 0-based (``number`` is 1-based), ``offset`` the byte offset of the record's
    header in the file, ``length`` the payload length in bytes (``-1`` when the header itself
    could not be read). ``ok`` is ``False`` for a bad checksum or a truncated record; ``kind``
    then says which (``"truncated"``, ``"header-crc"``, ``"length"`` -- these end the file --
    or ``"crc"``, a damaged payload that can be skipped) and ``error`` explains it.
    """

    index: int
    offset: int
    length: int
    ok: bool
    error: str = ""
    kind: str = ""

    @property
    def number(self) -> int:
        """1-based record number, as ``detforge check`` reports it (its "line")."""
        return self.index + 1


def _scan(f: BinaryIO, *, verify: bool, keep: bool) -> Iterator[tuple[RecordScan, bytes]]:
    """Yield ``(scan, payload)`` for every record; ``payload`` is ``b""`` unless ``keep`` and
    the record is good."""
    index, offset = 0, 0
    while True:
        header = f.read(12)
        if not header:
            return
        if len(header) < 12:
            msg = (
                f"the file ends inside this record's header ({len(header)} of 12 bytes): the "
                "write was interrupted; the earlier records are intact"
            )
            yield RecordScan(index, offset, -1, False, msg, "truncated"), b""
            return
        length, length_crc = _HEADER.unpack(header)
        if verify and masked_crc32c(header[:8]) != length_crc:
            msg = (
                "length checksum does not match: not a TFRecord file, or corrupted here; the "
                "rest of the file cannot be read"
            )
            yield RecordScan(index, offset, -1, False, msg, "header-crc"), b""
            return
        if length > _MAX_RECORD:
            msg = f"implausible record length {length}: corrupted file"
            yield RecordScan(index, offset, -1, False, msg, "length"), b""
            return
        data = _read_payload(f, length)
        footer = f.read(4)
        if len(data) < length or len(footer) < 4:
            got = len(data) + len(footer)
            msg = (
                f"the file ends inside this record ({got} of {length + 4} payload bytes are "
                "there): the write was interrupted; the earlier records are intact"
            )
            yield RecordScan(index, offset, length, False, msg, "truncated"), b""
            return
        if verify and masked_crc32c(data) != _FOOTER.unpack(footer)[0]:
            msg = "data checksum does not match: the record is corrupted"
            yield RecordScan(index, offset, length, False, msg, "crc"), b""
        else:
            yield RecordScan(index, offset, length, True), (data if keep else b"")
        index += 1
        offset += 16 + length


def _open_records(path: str | os.PathLike[str]) -> BinaryIO:
    p = Path(path)
    if not p.is_file():
        raise DetforgeError("TFRecord file not found", path=p)
    f = open(p, "rb")  # noqa: SIM115 -- returned to the caller's with-block
    if f.read(2) == b"\x1f\x8b":
        f.close()
        raise DetforgeError(
            "this TFRecord is GZIP-compressed; decompress it first (gunzip) and retry", path=p
        )
    f.seek(0)
    return f


def iter_records(
    path: str | os.PathLike[str], *, verify: bool = True
) -> Iterator[tuple[RecordScan, bytes]]:
    """``(scan, payload)`` for every record of a TFRecord file, good or bad (``payload`` is
    ``b""`` for a bad one), without raising on corruption; see the module docstring. Raises
    :class:`DetforgeError` only for a missing or GZIP-compressed file."""
    with _open_records(path) as f:
        yield from _scan(f, verify=verify, keep=True)


def scan_records(path: str | os.PathLike[str], *, verify: bool = True) -> Iterator[RecordScan]:
    """Describe every record of a TFRecord file without raising on corruption (as
    :func:`iter_records`, without reading payloads into memory)."""
    with _open_records(path) as f:
        for scan, _ in _scan(f, verify=verify, keep=False):
            yield scan


def read_records(path: str | os.PathLike[str], *, verify: bool = True) -> Iterator[bytes]:
    """Yield the payload of each record of a TFRecord file, in order.

    Raises :class:`DetforgeError` (with ``path``) naming the record number (1-based) and byte
    offset of the first record that is corrupt or truncated. Compressed (GZIP/ZLIB) files are
    refused with a message saying so.
    """
    for scan, data in iter_records(path, verify=verify):
        if not scan.ok:
            raise DetforgeError(
                f"record {scan.number} at byte offset {scan.offset}: {scan.error} -- "
                "'detforge check --fix OUT' salvages the intact records",
                path=path,
            )
        yield data


def count_records(path: str | os.PathLike[str]) -> int:
    """Number of complete records in a file, reading headers only (no checksums verified;
    a truncated last record is not counted)."""
    n, offset = 0, 0
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        while True:
            header = f.read(12)
            if len(header) < 12:
                return n
            (length,) = struct.unpack("<Q", header[:8])
            offset += 16 + length
            if offset > size:
                return n
            f.seek(offset)
            n += 1


def write_records(path: str | os.PathLike[str], records: Iterable[bytes]) -> int:
    """Write ``records`` to ``path`` as one TFRecord file; returns how many were written.

    The file is written under a temporary name in the same folder and renamed into place only
    when every record is written, so an interruption never leaves a corrupt file at ``path``.
    """
    n = 0
    with atomic_open(path, "wb") as f:
        for rec in records:
            f.write(encode_record(rec))
            n += 1
    return n


def shard_paths(path: str | os.PathLike[str], shards: int) -> list[Path]:
    """Output file names for ``shards`` shards: ``x.record`` -> ``x.record-00000-of-00004``.

    One shard keeps ``path`` unchanged. The ``-NNNNN-of-NNNNN`` suffix is the one TF OD API's
    sharded input patterns (``x.record-?????-of-00004``) expect.
    """
    p = Path(path)
    if shards < 1:
        raise DetforgeError(f"--shards must be at least 1, got {shards}")
    if shards == 1:
        return [p]
    return [p.with_name(f"{p.name}-{i:05d}-of-{shards:05d}") for i in range(shards)]


def write_sharded(
    path: str | os.PathLike[str], records: Iterable[bytes], *, shards: int = 1
) -> list[Path]:
    """Write records round-robin into ``shards`` files (see :func:`shard_paths`), atomically.

    All shards are written to temporary names first and renamed only after the last record,
    so an interrupted run leaves no shard behind. Returns the shard paths.
    """
    paths = shard_paths(path, shards)
    if shards == 1:
        write_records(paths[0], records)
        return paths
    with contextlib.ExitStack() as stack:
        files = [stack.enter_context(atomic_open(p, "wb")) for p in paths]
        for i, rec in enumerate(records):
            files[i % shards].write(encode_record(rec))
    return paths


def expand_record_paths(source: str | os.PathLike[str]) -> list[Path]:
    """A ``.record``/``.tfrecord`` file (or shard) -> ``[it]``; a folder -> its record files.

    Folder members are files whose name contains ``.record`` or ``.tfrecord`` (so shards
    ``x.record-00000-of-00002`` count), sorted by name; hidden temp files are skipped.
    """
    p = Path(source)
    if p.is_file():
        return [p]
    if p.is_dir():
        found = sorted(
            q
            for q in p.iterdir()
            if q.is_file()
            and not q.name.startswith(".")
            and (".record" in q.name or ".tfrecord" in q.name)
        )
        if not found:
            raise DetforgeError("no .record/.tfrecord files in this folder", path=p)
        return found
    raise DetforgeError("TFRecord source not found", path=p)
