"""Bounded memory: hostile inputs that declare or expand to huge sizes, under a 2 GB limit.

Generated cases (YAML alias bombs of several widths and depths in several keys, deeply nested
YAML/JSON/XML, an oversized YAML, TFRecord headers declaring lengths up to 2^63, an Example
whose inner field declares 2^40 bytes, image headers declaring 100000 x 100000 pixels, XML
entity bombs) are run by ``info`` and ``check`` (and ``check --deep`` on the images) in ONE
subprocess whose address space is capped with ``resource.setrlimit(RLIMIT_AS, 2 GB)``. Each
must end in a correct result or one error line with exit 2 -- a MemoryError or traceback
fails the case.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from tests.reliability.builders import jpeg

pytestmark = pytest.mark.skipif(os.name != "posix", reason="resource.setrlimit is POSIX")

LIMIT = 2 << 30

CHILD = r"""
import contextlib, io, json, resource, sys, traceback
resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP))
from detforge.cli.main import main
results = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(argv)
    except BaseException:
        rc, err = -1, io.StringIO(traceback.format_exc()[-1500:])
    results.append({"argv": argv, "rc": rc, "err": err.getvalue()})
print(json.dumps(results))
""".replace("CAP", str(LIMIT))


def _yaml_bomb(width: int, depth: int, key: str) -> str:
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, depth):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    lines.append("train: images\nval: images")
    lines.append(f"{key}: *a{depth - 1}")
    return "\n".join(lines) + "\n"


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 4096)  # far too little data: a decoder must not allocate 30 GB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def build_cases(root: Path) -> list[list[str]]:
    from detforge.formats.tfrecord.example import bytes_feature, encode_example
    from detforge.formats.tfrecord.framing import encode_record, masked_crc32c

    argvs: list[list[str]] = []
    n = 0

    def case(name: str) -> Path:
        nonlocal n
        n += 1
        d = root / f"m{n}-{name}"
        d.mkdir(parents=True)
        return d

    for width, depth in ((9, 9), (10, 10), (5, 14)):
        for key in ("names", "train", "path"):
            d = case(f"yaml-bomb-{width}-{depth}-{key}")
            jpeg(d / "images" / "a.jpg")
            (d / "data.yaml").write_text(_yaml_bomb(width, depth, key))
            argvs += [["info", str(d / "data.yaml")], ["check", str(d / "data.yaml")]]
    for depth in (1000, 200_000):
        d = case(f"yaml-deep-{depth}")
        (d / "data.yaml").write_text("names: " + "[" * depth + "]" * depth + "\n")
        argvs += [["info", str(d / "data.yaml")]]
        d = case(f"json-deep-{depth}")
        (d / "instances.json").write_text('{"images": ' + "[" * depth + "]" * depth + "}")
        argvs += [["info", str(d / "instances.json")], ["check", str(d / "instances.json")]]
        d = case(f"json-deep-dict-{depth}")
        (d / "instances.json").write_text(
            '{"images": [], "info": ' + '{"a":' * depth + "1" + "}" * depth + "}"
        )
        argvs += [["info", str(d / "instances.json")]]
    d = case("yaml-huge")
    with open(d / "data.yaml", "w") as f:
        f.write("names: [a]\n")
        f.write(("# " + "x" * 1000 + "\n") * 17_000)
    argvs += [["info", str(d / "data.yaml")]]
    good = encode_record(encode_example({"image/filename": bytes_feature([b"a.jpg"])}))
    for length in (2**30 + 1, 2**34, 2**40, 2**63 - 1):
        d = case(f"tfrecord-len-{length}")
        head = struct.pack("<Q", length)
        (d / "train.record").write_bytes(
            good + head + struct.pack("<I", masked_crc32c(head)) + b"x" * 64
        )
        argvs += [["info", str(d / "train.record")], ["check", str(d / "train.record")]]
    d = case("tfrecord-inner-length")
    # an Example whose 'features' field declares 2^40 bytes (protobuf length-delimited, field 1)
    inner = b"\x0a" + bytes([0x80, 0x80, 0x80, 0x80, 0x80, 0x20]) + b"\x00" * 32
    (d / "train.record").write_bytes(encode_record(inner))
    argvs += [["info", str(d / "train.record")], ["check", str(d / "train.record")]]
    for w, h in ((100_000, 100_000), (2**31 - 1, 2**31 - 1)):
        d = case(f"png-{w}")
        (d / "big.png").write_bytes(_png_header(w, h))
        (d / "big.txt").write_text("0 0.5 0.5 0.1 0.1\n")
        jpeg(d / "ok.jpg")
        argvs += [["info", str(d)], ["check", str(d), "--deep", "--no-cache"]]
    d = case("xml-bomb")
    ann = d / "Annotations"
    ann.mkdir()
    ents = '<!ENTITY a "lollollollol">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9)
    )
    (ann / "a.xml").write_text(
        f'<?xml version="1.0"?><!DOCTYPE r [{ents}]><annotation>&j;</annotation>'
    )
    argvs += [["info", str(d)], ["check", str(d)]]
    d = case("xml-deep")
    (d / "Annotations").mkdir()
    (d / "Annotations" / "a.xml").write_text(
        "<annotation>" + "<x>" * 100_000 + "</x>" * 100_000 + "</annotation>"
    )
    argvs += [["info", str(d)]]
    return argvs


def test_hostile_sizes_stay_within_two_gigabytes(tmp_path: Path) -> None:
    argvs = build_cases(tmp_path / "cases")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path("src").resolve()), *sys.path]),
        "DETFORGE_CACHE": str(tmp_path / "cache"),
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(argvs)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(results) == len(argvs) > 40
    for r in results:
        where = " ".join(r["argv"])
        assert r["rc"] != -1, f"{where}\n{r['err']}"
        assert "Traceback" not in r["err"] and "MemoryError" not in r["err"], where
        assert r["rc"] in ((0, 1, 2) if r["argv"][0] == "check" else (0, 2)), f"{where}: {r}"
        if r["rc"] == 2:
            lines = [ln for ln in r["err"].splitlines() if ln.strip()]
            assert len(lines) == 1 and ": error: " in lines[0], f"{where}: {r['err']}"
    print(f"bounded-memory cases: {len(argvs)} command runs under RLIMIT_AS {LIMIT >> 30} GiB")
