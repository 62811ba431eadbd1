"""TFRecord checks against a file TensorFlow wrote (raccoon) and planted corruptions of it."""

from __future__ import annotations

import hashlib
import io
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detforge.check import check_dataset, fix_dataset
from detforge.errors import DetforgeError
from detforge.formats.darknet import read_darknet
from detforge.formats.labelmap import read_label_map
from detforge.formats.tfrecord.example import encode_example, int64_feature
from detforge.formats.tfrecord.framing import write_records
from detforge.formats.tfrecord.tfod import example_from_image
from detforge.formats.tfrecord.tfod_read import read_tfod


def _offsets(data: bytes) -> list[tuple[int, int]]:
    """``(offset, payload length)`` of every record of a well-formed file."""
    out, pos = [], 0
    while pos < len(data):
        (length,) = struct.unpack_from("<Q", data, pos)
        out.append((pos, length))
        pos += 16 + length
    return out


def test_tensorflow_written_file_is_clean(ref_data: Path) -> None:
    rec = ref_data / "raccoon-tfrecord" / "test.record"
    report = check_dataset(rec, deep=True)
    assert report.findings == []
    csv_rows = (ref_data / "raccoon-tfrecord" / "test_labels.csv").read_text().splitlines()
    assert report.summary["records"] == 40 and report.summary["images"] == 40
    assert report.summary["boxes"] == len(csv_rows) - 1
    assert report.summary["label_map"].endswith("label_map.pbtxt")


def test_corrupt_record_truncated_file_and_label_map(ref_data: Path, tmp_path: Path) -> None:
    src = ref_data / "raccoon-tfrecord"
    data = (src / "test.record").read_bytes()
    recs = _offsets(data)
    bad = bytearray(data)
    off, length = recs[2]
    bad[off + 12 + length // 2] ^= 0xFF  # one flipped bit pattern inside record 3's payload
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / "test.record").write_bytes(bytes(bad[: recs[-1][0] + 100]))  # cut in record 40
    (folder / "label_map.pbtxt").write_text("item { id: 1 name: 'racoon' }\n")
    report = check_dataset(folder / "test.record")
    got = {(f.code, f.line) for f in report.findings}
    assert ("tfrecord-crc", 3) in got
    assert ("tfrecord-truncated", 40) in got
    assert "interrupted" in report.by_code("tfrecord-truncated")[0].message
    mism = report.by_code("tfrecord-class")
    assert mism and all("'racoon'" in f.message and "'raccoon'" in f.message for f in mism)
    assert report.summary["images"] == 38  # 40 minus the corrupt and the cut record
    # a broken length checksum stops the scan of that file (framing cannot resync)
    bad2 = bytearray(data)
    bad2[recs[5][0] + 8] ^= 0x01
    (folder / "test.record").write_bytes(bytes(bad2))
    report = check_dataset(folder / "test.record", label_map=src / "label_map.pbtxt")
    assert [(f.code, f.line) for f in report.errors] == [("tfrecord-crc", 6)]
    assert report.summary["images"] == 5


def _jpeg(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 10, 10)).save(buf, "JPEG")
    return buf.getvalue()


def _example(boxes, labels, texts, *, size=(64, 48), enc=None, **over) -> bytes:
    feats = example_from_image(
        encoded=enc if enc is not None else _jpeg(*size),
        image_format="jpeg",
        width=over.get("width", size[0]),
        height=over.get("height", size[1]),
        filename="x.jpg",
        source_id="x",
        xyxy_norm=np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
        labels=labels,
        texts=texts,
        difficult=[False] * len(labels),
        truncated=[False] * len(labels),
    )
    feats.update(over.get("extra", {}))
    return encode_example(feats)


def test_example_contents_are_validated(tmp_path: Path) -> None:
    good = [0.1, 0.1, 0.5, 0.5]
    records = [
        _example([good], [1], ["cat"]),  # 1 fine
        _example([[0.5, 0.1, 0.4, 0.5]], [1], ["cat"]),  # 2 xmin > xmax
        _example([[0.1, 0.1, 1.5, 0.5]], [1], ["cat"]),  # 3 xmax > 1
        _example([good], [0], ["cat"]),  # 4 label 0 is the background
        _example([good], [2], ["cat"]),  # 5 id 2 is 'dog' in the map
        _example([good], [1], ["cat"], width=100),  # 6 stated size wrong
        _example([good], [1], ["cat"], enc=_jpeg(64, 48)[:-40]),  # 7 truncated JPEG
        _example([good, good], [1, 1], ["cat", "cat"]),  # 8 duplicate box
        _example([good], [1], ["cat"], extra={"image/object/bbox/ymax": int64_feature([1])}),
        b"\xff\xff\xff",  # 10 not an Example
    ]
    rec = tmp_path / "train.record"
    write_records(rec, records)
    (tmp_path / "label_map.pbtxt").write_text(
        "item { id: 1 name: 'cat' }\nitem { id: 2 name: 'dog' }\n"
    )
    report = check_dataset(rec)
    got = {(f.code, f.line) for f in report.findings}
    assert got == {
        ("box-zero-size", 2),
        ("coord-above-one", 3),
        ("tfrecord-class", 4),
        ("tfrecord-class", 5),
        ("image-size-mismatch", 6),
        ("image-truncated", 7),
        ("box-duplicate", 8),
        ("tfrecord-example", 9),
        ("tfrecord-example", 10),
    }
    assert all(f.path == str(rec) for f in report.findings)
    (dup,) = report.by_code("box-duplicate")
    assert "class 0 box (cx 0.3000, cy 0.3000, w 0.4000, h 0.4000) appears twice" in dup.message


def test_without_a_label_map_labels_must_agree_with_earlier_records(tmp_path: Path) -> None:
    """check said nothing of a class/label named 'cat' in one record and 'dog' in the next,
    which read_tfod (so convert, train ...) refuses: one rule now, and check reports it."""
    good = [0.1, 0.1, 0.5, 0.5]
    rec = tmp_path / "train.record"
    write_records(rec, [_example([good], [1], ["cat"]), _example([good], [1], ["dog"])])
    report = check_dataset(rec)
    assert [(f.code, f.line, f.message) for f in report.findings] == [
        (
            "tfrecord-class",
            2,
            "record 2 (x.jpg): box 1: class/label 1 is 'cat' in earlier boxes but class/text "
            "says 'dog' -- the guide's NaN-loss mismatch; fix the record or the label map",
        )
    ]
    with pytest.raises(DetforgeError, match=r"record 2 \(x.jpg\): box 1: class/label 1 is 'cat'"):
        read_tfod(rec)


def test_fix_salvages_the_intact_records(ref_data: Path, tmp_path: Path) -> None:
    src = ref_data / "raccoon-tfrecord"
    data = (src / "test.record").read_bytes()
    before = hashlib.sha256(data).hexdigest()
    recs = _offsets(data)
    bad = bytearray(data)
    off, length = recs[2]
    bad[off + 12 + length // 2] ^= 0xFF  # record 3: data checksum fails
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / "test.record").write_bytes(bytes(bad[: recs[-1][0] + 100]))  # cut in record 40
    (folder / "label_map.pbtxt").write_bytes((src / "label_map.pbtxt").read_bytes())
    report = fix_dataset(folder / "test.record", tmp_path / "fixed")
    dropped = [(c["reason"], c["line"]) for c in report.changes if c["action"] == "drop-record"]
    assert dropped == [("tfrecord-crc", 3), ("tfrecord-truncated", 40)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fixed", "r"]  # scratch removed
    assert json.loads((tmp_path / "fixed" / "fixes.json").read_text())["changes"][0]["line"] == 3
    assert check_dataset(report.data_file).findings == []
    # the 38 intact records, image bytes and boxes as a strict read of the undamaged file
    ref = read_tfod(src / "test.record", label_map=read_label_map(src / "label_map.pbtxt"))
    got = read_darknet(report.data_file)
    keep = [i for i in range(40) if i not in (2, 39)]
    ref_names = [Path(ref.images.path[i]).name for i in keep]
    assert sorted(Path(p).name for p in got.images.path) == sorted(ref_names)
    for i in keep:
        name = Path(ref.images.path[i]).name
        j = [Path(p).name for p in got.images.path].index(name)
        a = ref.boxes.coords[ref.boxes.image == i]
        b = got.boxes.coords[got.boxes.image == j]
        np.testing.assert_allclose(np.sort(a, axis=0), np.sort(b, axis=0), atol=1e-6)
    assert got.num_boxes == sum(int((ref.boxes.image == i).sum()) for i in keep)
    assert hashlib.sha256((src / "test.record").read_bytes()).hexdigest() == before


def test_strict_read_names_the_record_and_the_way_out(ref_data: Path, tmp_path: Path) -> None:
    data = (ref_data / "raccoon-tfrecord" / "test.record").read_bytes()
    cut = tmp_path / "cut.record"
    cut.write_bytes(data[: _offsets(data)[-1][0] + 100])
    with pytest.raises(DetforgeError, match=r"record 40 at byte offset .*check --fix"):
        read_tfod(cut)
    lenient = read_tfod(cut, skip_bad=True)
    assert lenient.num_images == 39
    (skip,) = lenient.meta["skipped_records"]
    assert (skip["record"], skip["kind"]) == (40, "truncated")
    assert lenient.meta["records"][5] == (str(cut), 6)
