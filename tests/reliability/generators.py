"""Seeded generators of malformed datasets: every field of every reader, hostile values.

Each generator yields ``Case(name, fmt, write)`` where ``write(root) -> Path`` builds the
dataset under ``root`` and returns the path to hand to the CLI. Values come from fixed pools
(the kinds of breakage seen in the field) crossed with every field, plus a seeded random
sample of extra combinations, so the suite covers *classes* of defects, not single examples.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.reliability.builders import jpeg

SEED = 20261206
FULL = os.environ.get("DETFORGE_FUZZ_FULL") == "1"
"""Cross every field with every value (about 1,300 cases); by default each field gets a
seeded sample of the pool (about 450 cases, ~1 minute on 2 shared cores)."""


def _pick(pool: list[Any], k: int, rng: random.Random) -> list[tuple[int, Any]]:
    """``k`` (index, value) pairs of ``pool`` (all of them with ``DETFORGE_FUZZ_FULL=1``)."""
    items = list(enumerate(pool))
    return items if FULL or k >= len(items) else rng.sample(items, k)


@dataclass
class Case:
    name: str
    fmt: str
    write: Callable[[Path], Path]


# --- value pools ---------------------------------------------------------------------------
JSON_VALUES: list[Any] = [
    None,
    float("nan"),
    float("inf"),
    float("-inf"),
    -1,
    0,
    1e12,
    1e308,
    -1e308,
    10**30,
    -(10**30),
    "abc",
    "",
    "1",
    [],
    {},
    [1, 2],
    True,
    1.5,
    "\u00e9\u2603",
    "a" * 5000,
    [[[[1]]]],
    {"a": {"b": 1}},
]
TEXT_VALUES: list[str] = [
    "nan",
    "NaN",
    "inf",
    "-inf",
    "-1",
    "0",
    "1e12",
    "1e309",
    "-1e309",
    "abc",
    "",
    " ",
    "1_0",
    "\uff11",
    "1.5",
    "9" * 400,
    "0x10",
    "+.5",
    "1e-400",
    "\u00e9",
]
TOKEN_VALUES: list[str] = [
    "nan",
    "inf",
    "-inf",
    "-1",
    "0",
    "1e12",
    "1e309",
    "abc",
    "1.0",
    "0x10",
    "1_0",
    "-0",
    "+.5",
    "1e-400",
    "\uff11",
    "2.5",
    "99999999999999999999",
]
LINE_VALUES: list[bytes] = [
    b"0 0.5 0.5 0.2",
    b"0 0.5 0.5 0.2 0.2 0.9",
    b"0\t0.5\t0.5\t0.2\t0.2",
    b"\xef\xbb\xbf0 0.5 0.5 0.2 0.2",
    b"0 0.5 0.5 0.2 0.2\x00",
    b"0 0.5 0.5 0.2 \xff",
    b"0 0.5 0.5 0.2 0.2\r",
    b"#0 0.5 0.5 0.2 0.2",
    b"0 0.5 0.5 0 0",
    b"0 0.5 0.5 -0.2 0.2",
    b"0 1.5 1.5 0.2 0.2",
    b"5 0.5 0.5 0.2 0.2",
    b"-1 0.5 0.5 0.2 0.2",
    b"0 0.5 0.5 0.2 0.2 " * 2000,
]


# --- COCO ----------------------------------------------------------------------------------
def coco_base() -> dict[str, Any]:
    return {
        "images": [
            {"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
            {"id": 2, "file_name": "b.jpg", "width": 64, "height": 48},
        ],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "bbox": [4, 4, 20, 10],
                "area": 200,
                "iscrowd": 0,
            },
            {
                "id": 2,
                "image_id": 1,
                "category_id": 2,
                "bbox": [30, 20, 10, 10],
                "area": 100,
                "iscrowd": 0,
            },
            {
                "id": 3,
                "image_id": 2,
                "category_id": 1,
                "bbox": [1, 1, 30, 30],
                "area": 900,
                "iscrowd": 0,
            },
        ],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
    }


def _coco_paths() -> list[tuple[Any, ...]]:
    base = coco_base()
    paths: list[tuple[Any, ...]] = [("images",), ("annotations",), ("categories",)]
    for key in ("images", "annotations", "categories"):
        for i, rec in enumerate(base[key][:2]):
            paths.append((key, i))
            paths += [(key, i, f) for f in rec]
    paths += [("annotations", 0, "bbox", k) for k in range(4)]
    return paths


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for p in path[:-1]:
        doc = doc[p]
    doc[path[-1]] = value


def _write_coco(doc: dict[str, Any]) -> Callable[[Path], Path]:
    def write(root: Path) -> Path:
        jpeg(root / "a.jpg")
        jpeg(root / "b.jpg", color=90)
        p = root / "instances.json"
        p.write_text(json.dumps(doc, allow_nan=True))
        return p

    return write


def coco_cases(extra: int = 30, per_field: int = 4) -> Iterator[Case]:
    """Every field x ``per_field`` JSON values (seeded), then ``extra`` double mutations."""
    paths = _coco_paths()
    rng = random.Random(SEED)
    for path in paths:
        for k, value in _pick(JSON_VALUES, per_field, rng):
            doc = coco_base()
            _set(doc, path, copy.deepcopy(value))
            yield Case(f"coco:{'.'.join(map(str, path))}={k}", "coco", _write_coco(doc))
    for n in range(extra):
        doc = coco_base()
        for _ in range(2):
            path = rng.choice(paths[3:])
            # (the first mutation may have replaced the container: then nothing to set)
            with contextlib.suppress(TypeError, IndexError, KeyError):
                _set(doc, path, copy.deepcopy(rng.choice(JSON_VALUES)))
        yield Case(f"coco:random{n}", "coco", _write_coco(doc))


# --- Pascal VOC ----------------------------------------------------------------------------
VOC_FIELDS = [
    "filename",
    "size/width",
    "size/height",
    "object/name",
    "object/bndbox/xmin",
    "object/bndbox/ymin",
    "object/bndbox/xmax",
    "object/bndbox/ymax",
    "object/difficult",
    "object/truncated",
]


def voc_xml(fields: dict[str, str], image: str = "a.jpg") -> str:
    f = {
        "filename": image,
        "size/width": "64",
        "size/height": "48",
        "object/name": "cat",
        "object/bndbox/xmin": "5",
        "object/bndbox/ymin": "5",
        "object/bndbox/xmax": "30",
        "object/bndbox/ymax": "20",
        "object/difficult": "0",
        "object/truncated": "0",
    }
    f.update(fields)
    from xml.sax.saxutils import escape

    e = {k: escape(v) for k, v in f.items()}
    return (
        f"<annotation><filename>{e['filename']}</filename><size><width>{e['size/width']}"
        f"</width><height>{e['size/height']}</height><depth>3</depth></size><object>"
        f"<name>{e['object/name']}</name><difficult>{e['object/difficult']}</difficult>"
        f"<truncated>{e['object/truncated']}</truncated><bndbox><xmin>{e['object/bndbox/xmin']}"
        f"</xmin><ymin>{e['object/bndbox/ymin']}</ymin><xmax>{e['object/bndbox/xmax']}</xmax>"
        f"<ymax>{e['object/bndbox/ymax']}</ymax></bndbox></object></annotation>"
    )


def _write_voc(xml_a: str, ids: tuple[str, str] = ("a", "b")) -> Callable[[Path], Path]:
    def write(root: Path) -> Path:
        voc = root / "voc"
        (voc / "Annotations").mkdir(parents=True)
        (voc / "ImageSets" / "Main").mkdir(parents=True)
        for i, image_id in enumerate(ids):
            jpeg(voc / "JPEGImages" / f"{image_id}.jpg", color=30 * i)
        (voc / "Annotations" / f"{ids[0]}.xml").write_text(xml_a, encoding="utf-8")
        (voc / "Annotations" / f"{ids[1]}.xml").write_text(voc_xml({}, f"{ids[1]}.jpg"))
        (voc / "ImageSets" / "Main" / "train.txt").write_text(f"{ids[0]}\n{ids[1]}\n")
        return voc

    return write


def voc_cases(per_field: int = 6) -> Iterator[Case]:
    rng = random.Random(SEED)
    for field in VOC_FIELDS:
        for k, value in _pick(TEXT_VALUES, per_field, rng):
            yield Case(f"voc:{field}={k}", "voc", _write_voc(voc_xml({field: value})))
    # clicks without a drag, and inverted boxes, on either axis
    for a, b in (("xmin", "xmax"), ("ymin", "ymax")):
        for v1, v2 in (("7", "7"), ("9", "3"), ("0", "0")):
            xml = voc_xml({f"object/bndbox/{a}": v1, f"object/bndbox/{b}": v2})
            yield Case(f"voc:{a}={v1},{b}={v2}", "voc", _write_voc(xml))
    for k, raw in enumerate(["", "<annotation>", "<a><b></a>", "\x00\x01", "<annotation/>"]):
        yield Case(f"voc:xml{k}", "voc", _write_voc(raw))
    yield Case(
        "voc:ids-with-spaces", "voc", _write_voc(voc_xml({}, "my image.jpg"), ("my image", "b"))
    )


# --- Darknet and Ultralytics label files ----------------------------------------------------
def _write_darknet(label_a: bytes, names: str = "cat\ndog\n") -> Callable[[Path], Path]:
    def write(root: Path) -> Path:
        d = root / "dn"
        jpeg(d / "a.jpg")
        jpeg(d / "b.jpg", color=90)
        (d / "a.txt").write_bytes(label_a)
        (d / "b.txt").write_text("1 0.5 0.5 0.3 0.3\n")
        (d / "obj.names").write_text(names)
        (d / "train.txt").write_text(f"{d / 'a.jpg'}\n{d / 'b.jpg'}\n")
        (d / "obj.data").write_text(
            f"classes = 2\ntrain = {d / 'train.txt'}\nnames = {d / 'obj.names'}\n"
        )
        return d / "obj.data"

    return write


def darknet_cases() -> Iterator[Case]:
    good = ["0", "0.5", "0.5", "0.2", "0.2"]
    for field in range(5):
        for k, tok in enumerate(TOKEN_VALUES):
            parts = list(good)
            parts[field] = tok
            line = (" ".join(parts) + "\n").encode()
            yield Case(f"darknet:field{field}={k}", "darknet", _write_darknet(line))
    for k, line in enumerate(LINE_VALUES):
        yield Case(f"darknet:line{k}", "darknet", _write_darknet(line + b"\n"))
    for k, names in enumerate(["", "\n\n", "cat\n\ndog\n", "cat\ncat\n", "\xe9t\xe9\n", "a b\n"]):
        yield Case(f"darknet:names{k}", "darknet", _write_darknet(b"0 0.5 0.5 0.2 0.2\n", names))


YAML_NAMES = [
    "[cat, dog]",
    "{0: cat, 1: dog}",
    "cat",
    "5",
    "null",
    "[]",
    "[[cat], dog]",
    "{a: cat}",
    "{0: cat, 5: dog}",
    "&x [cat, *x]",
    "!!python/object:os.system [ls]",
    "[cat, dog,",
]


def _write_ultra(
    names: str, label: bytes, train: str = "images/train", extra: str = ""
) -> Callable[[Path], Path]:
    def write(root: Path) -> Path:
        u = root / "ul"
        for split, stem in (("train", "a"), ("val", "b")):
            jpeg(u / "images" / split / f"{stem}.jpg")
            (u / "labels" / split).mkdir(parents=True, exist_ok=True)
        (u / "labels" / "train" / "a.txt").write_bytes(label)
        (u / "labels" / "val" / "b.txt").write_text("1 0.5 0.5 0.3 0.3\n")
        (u / "data.yaml").write_text(
            f"path: .\ntrain: {train}\nval: images/val\nnames: {names}\n{extra}"
        )
        return u / "data.yaml"

    return write


def ultralytics_cases() -> Iterator[Case]:
    for k, names in enumerate(YAML_NAMES):
        yield Case(
            f"ultralytics:names{k}", "ultralytics", _write_ultra(names, b"0 0.5 0.5 0.2 0.2\n")
        )
    for k, train in enumerate(
        ["missing", "5", "[1, 2]", "/nonexistent/x", "../../..", "''", "{a: 1}"]
    ):
        yield Case(
            f"ultralytics:train{k}",
            "ultralytics",
            _write_ultra("[cat, dog]", b"0 0.5 0.5 0.2 0.2\n", train),
        )
    for k, nc in enumerate(
        ["2", "3", "abc", "1e400", "-1", "[2]", "true", "null", "2.0", "{a: 1}"]
    ):
        yield Case(
            f"ultralytics:nc{k}",
            "ultralytics",
            _write_ultra("[cat, dog]", b"0 0.5 0.5 0.2 0.2\n", extra=f"nc: {nc}\n"),
        )
    for k, path in enumerate(["/", "..", "'\u00e9'", "5", "[a]", "/nonexistent", "''"]):
        yield Case(
            f"ultralytics:path{k}",
            "ultralytics",
            _write_ultra("[cat, dog]", b"0 0.5 0.5 0.2 0.2\n", extra=f"path: {path}\n"),
        )
    for k, tok in enumerate(TOKEN_VALUES):
        line = f"0 0.5 0.5 {tok} 0.2\n".encode()
        yield Case(f"ultralytics:w={k}", "ultralytics", _write_ultra("[cat, dog]", line))


# --- TFRecord -------------------------------------------------------------------------------
def _tf_example(over: dict[str, Any]) -> bytes:
    import io

    from PIL import Image

    from detforge.formats.tfrecord.example import (
        bytes_feature,
        encode_example,
        float_feature,
        int64_feature,
    )

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 90, 150)).save(buf, "JPEG")
    feats = {
        "image/encoded": bytes_feature([buf.getvalue()]),
        "image/format": bytes_feature([b"jpeg"]),
        "image/width": int64_feature([64]),
        "image/height": int64_feature([48]),
        "image/filename": bytes_feature([b"a.jpg"]),
        "image/source_id": bytes_feature([b"1"]),
        "image/object/bbox/xmin": float_feature([0.1]),
        "image/object/bbox/xmax": float_feature([0.5]),
        "image/object/bbox/ymin": float_feature([0.2]),
        "image/object/bbox/ymax": float_feature([0.6]),
        "image/object/class/text": bytes_feature([b"cat"]),
        "image/object/class/label": int64_feature([1]),
    }
    for key, value in over.items():
        if value is None:
            feats.pop(key, None)
        else:
            feats[key] = value
    return encode_example(feats)


def _write_tf(
    records: list[bytes], mangle: Callable[[bytes], bytes] | None = None
) -> Callable[[Path], Path]:
    def write(root: Path) -> Path:
        from detforge.formats.tfrecord.framing import encode_record

        t = root / "tf"
        t.mkdir(parents=True)
        data = b"".join(encode_record(r) for r in records)
        (t / "train.record").write_bytes(mangle(data) if mangle else data)
        (t / "label_map.pbtxt").write_text(
            "item { id: 1 name: 'cat' }\nitem { id: 2 name: 'dog' }\n"
        )
        return t / "train.record"

    return write


def tfrecord_cases(random_cuts: int = 12) -> Iterator[Case]:
    from detforge.formats.tfrecord.example import bytes_feature, float_feature, int64_feature

    floats = [float("nan"), float("inf"), -1.0, 0.0, 1e12, 3.4e38, -3.4e38, 2.0]
    for key in ("xmin", "ymin", "xmax", "ymax"):
        for k, v in enumerate(floats):
            over = {f"image/object/bbox/{key}": float_feature([v])}
            yield Case(
                f"tfrecord:{key}={k}", "tfrecord", _write_tf([_tf_example(over), _tf_example({})])
            )
    for key in ("image/width", "image/height", "image/object/class/label"):
        for k, v in enumerate([0, -1, 10**12, 2**63 - 1, -(2**63), 3]):
            over = {key: int64_feature([v])}
            yield Case(f"tfrecord:{key}={k}", "tfrecord", _write_tf([_tf_example(over)]))
    odd: list[tuple[str, dict[str, Any]]] = [
        ("no-encoded", {"image/encoded": None}),
        ("garbage-image", {"image/encoded": bytes_feature([b"notajpeg"])}),
        ("two-xmin", {"image/object/bbox/xmin": float_feature([0.1, 0.2])}),
        ("text-latin1", {"image/object/class/text": bytes_feature([b"\xe9t\xe9"])}),
        ("filename-empty", {"image/filename": bytes_feature([b""])}),
        ("filename-dotdot", {"image/filename": bytes_feature([b"../../escape.jpg"])}),
        ("filename-abs", {"image/filename": bytes_feature([b"/tmp/abs.jpg"])}),
        ("label-as-float", {"image/object/class/label": float_feature([1.0])}),
        ("no-labels", {"image/object/class/label": None, "image/object/class/text": None}),
    ]
    for name, over in odd:
        yield Case(f"tfrecord:{name}", "tfrecord", _write_tf([_tf_example(over)]))
    rng = random.Random(SEED)
    good = [_tf_example({}), _tf_example({}), _tf_example({})]
    total = sum(len(r) + 16 for r in good)
    for _ in range(random_cuts):
        cut = rng.randrange(1, total)
        yield Case(f"tfrecord:cut{cut}", "tfrecord", _write_tf(good, lambda d, c=cut: d[:c]))
        pos = rng.randrange(0, total)
        flip = rng.randrange(1, 256)

        def mangle(d: bytes, p: int = pos, x: int = flip) -> bytes:
            return d[:p] + bytes([d[p] ^ x]) + d[p + 1 :]

        yield Case(f"tfrecord:flip{pos}", "tfrecord", _write_tf(good, mangle))


def all_reader_cases() -> list[Case]:
    return [
        *coco_cases(),
        *voc_cases(),
        *darknet_cases(),
        *ultralytics_cases(),
        *tfrecord_cases(),
    ]
