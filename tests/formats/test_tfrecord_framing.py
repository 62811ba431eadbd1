"""TFRecord framing against files written by TensorFlow and by TensorBoard's record writer."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from detforge.errors import DetforgeError
from detforge.formats.tfrecord.framing import (
    count_records,
    encode_record,
    masked_crc32c,
    read_records,
    scan_records,
    shard_paths,
    write_records,
    write_sharded,
)


@pytest.fixture(scope="module")
def raccoon_record(ref_data: Path) -> Path:
    return ref_data / "raccoon-tfrecord" / "test.record"


def test_reads_tensorflow_file_and_reencodes_it_byte_for_byte(raccoon_record: Path) -> None:
    payloads = list(read_records(raccoon_record))
    assert len(payloads) == 40 == count_records(raccoon_record)
    # Our framing of TF's payloads reproduces TF's file exactly (length, both masked CRCs).
    assert b"".join(encode_record(p) for p in payloads) == raccoon_record.read_bytes()


def test_masked_crc_matches_tensorboard_writer(tmp_path: Path) -> None:
    from tensorboard.summary.writer.record_writer import RecordWriter  # type: ignore[import-untyped]

    data = [b"", b"a", b"hello tfrecord" * 100, bytes(range(256))]
    with open(tmp_path / "tb.record", "wb") as f:
        w = RecordWriter(f)
        for d in data:
            w.write(d)
    assert list(read_records(tmp_path / "tb.record")) == data
    write_records(tmp_path / "ours.record", data)
    assert (tmp_path / "ours.record").read_bytes() == (tmp_path / "tb.record").read_bytes()
    # Hand-computed: CRC32C("abc") = 0x364B3FB7, masked = rotr15 + 0xA282EAD8.
    crc = 0x364B3FB7
    assert masked_crc32c(b"abc") == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def test_truncated_copy_is_reported_as_interrupted(raccoon_record: Path, tmp_path: Path) -> None:
    data = raccoon_record.read_bytes()
    cut = tmp_path / "cut.record"
    cut.write_bytes(data[: len(data) - 1000])
    with pytest.raises(DetforgeError) as info:
        list(read_records(cut))
    msg = str(info.value)
    assert "record 40" in msg and "interrupted" in msg and str(cut) in msg
    offsets = [s.offset for s in scan_records(raccoon_record)]
    assert f"byte offset {offsets[39]}" in msg
    scans = list(scan_records(cut))
    assert [s.ok for s in scans] == [True] * 39 + [False]
    assert count_records(cut) == 39
    assert "interrupted" in scans[-1].error
    # Cut inside a header too.
    cut.write_bytes(data[: offsets[5] + 7])
    with pytest.raises(DetforgeError, match=r"record 6 .*header"):
        list(read_records(cut))


def test_corrupt_payload_fails_checksum(raccoon_record: Path, tmp_path: Path) -> None:
    data = bytearray(raccoon_record.read_bytes())
    offsets = [s.offset for s in scan_records(raccoon_record)]
    data[offsets[3] + 100] ^= 0xFF
    bad = tmp_path / "bad.record"
    bad.write_bytes(bytes(data))
    with pytest.raises(DetforgeError, match=r"record 4 at byte offset .*checksum"):
        list(read_records(bad))
    scans = list(scan_records(bad))
    assert len(scans) == 40 and [s.index for s in scans if not s.ok] == [3]
    # Unverified reading still yields every record (for salvage).
    assert len(list(read_records(bad, verify=False))) == 40


def test_not_a_tfrecord_and_gzip_are_refused(tmp_path: Path) -> None:
    p = tmp_path / "x.record"
    p.write_bytes(b"this is not a tfrecord file at all")
    with pytest.raises(DetforgeError, match="length checksum"):
        list(read_records(p))
    p.write_bytes(b"\x1f\x8b" + b"\0" * 30)
    with pytest.raises(DetforgeError, match="GZIP"):
        list(read_records(p))
    with pytest.raises(DetforgeError, match="not found"):
        list(read_records(tmp_path / "missing.record"))


def test_sharded_write_round_robin_and_atomic(tmp_path: Path) -> None:
    recs = [struct.pack("<I", i) for i in range(10)]
    paths = write_sharded(tmp_path / "train.record", recs, shards=3)
    assert [p.name for p in paths] == [f"train.record-0000{i}-of-00003" for i in range(3)]
    assert list(read_records(paths[1])) == recs[1::3]
    assert shard_paths(tmp_path / "a.record", 1) == [tmp_path / "a.record"]

    def failing() -> Iterator[bytes]:
        yield b"one"
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_sharded(tmp_path / "x.record", failing(), shards=2)
    with pytest.raises(KeyboardInterrupt):
        write_records(tmp_path / "y.record", failing())
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name[0] in "xy.")
    assert leftovers == [], "an interrupted write must leave no file behind"
