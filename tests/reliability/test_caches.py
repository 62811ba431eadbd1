"""Corrupted cache files are rebuilt: never a traceback, never a different answer.

After a clean ``info`` and ``check`` fill the cache folder (the Darknet index, the check's
image and label tables -- ``.npz`` -- and the check's result record -- JSON), every cache
file is replaced by a generated corruption: cut at seeded lengths, seeded byte flips,
garbage, an empty file, a valid archive of the wrong shapes and types, a pickled object
array, a JSON record of the wrong types in every field. ``info`` and ``check`` must then give
the clean run's answer, twice (the second time from the rebuilt cache).
"""

from __future__ import annotations

import io
import json
import random
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.reliability.builders import darknet_project
from tests.reliability.generators import JSON_VALUES, SEED
from tests.reliability.harness import assert_clean_outcome, run_cli

CUTS = 4
FLIPS = 4


def _npz(**arrays: object) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def npz_corruptions(good: bytes) -> Iterator[tuple[str, bytes]]:
    rng = random.Random(SEED)
    yield "empty", b""
    yield "garbage", bytes(rng.randrange(256) for _ in range(300))
    for _ in range(CUTS):
        n = rng.randrange(1, len(good))
        yield f"cut{n}", good[:n]
    for _ in range(FLIPS):
        pos = rng.randrange(len(good))
        yield f"flip{pos}", good[:pos] + bytes([good[pos] ^ 0xFF]) + good[pos + 1 :]
    n = np.asarray(2, dtype=np.int64)
    paths = np.frombuffer(b"a\0b", dtype=np.uint8)
    size = np.zeros(2, dtype=np.int64)
    yield "short-size", _npz(__n__=n, __paths__=paths, __size__=size[:1], __mtime__=size)
    yield "float-size", _npz(__n__=n, __paths__=paths, __size__=size * 1.5, __mtime__=size)
    yield "n-too-big", _npz(__n__=np.asarray(10**6), __paths__=paths, __size__=size, __mtime__=size)
    yield "negative-n", _npz(__n__=np.asarray(-3), __paths__=paths, __size__=size, __mtime__=size)
    yield "missing-keys", _npz(__n__=n)
    yield (
        "bad-column",
        _npz(__n__=n, __paths__=paths, __size__=size, __mtime__=size, **{"c:width": np.zeros(5)}),
    )
    yield (
        "bad-ragged",
        _npz(
            __n__=n,
            __paths__=paths,
            __size__=size,
            __mtime__=size,
            **{"rv:cls": np.zeros(3), "rc:cls": np.asarray([5, 5])},
        ),
    )
    yield (
        "string-column",
        _npz(
            __n__=n,
            __paths__=paths,
            __size__=size,
            __mtime__=size,
            **{"c:width": np.asarray(["a", "b"])},
        ),
    )
    obj = np.empty(2, dtype=object)
    obj[:] = [{"x": 1}, None]
    yield (
        "pickled",
        _npz(__n__=n, __paths__=paths, __size__=size, __mtime__=size, **{"c:width": obj}),
    )


def json_corruptions(good: dict[str, object]) -> Iterator[tuple[str, bytes]]:
    text = json.dumps(good).encode()
    rng = random.Random(SEED)
    yield "empty", b""
    yield "not-object", b"[1, 2]"
    for _ in range(CUTS):
        n = rng.randrange(1, len(text))
        yield f"cut{n}", text[:n]
    for key in good:
        for k, value in enumerate(JSON_VALUES[::4]):
            doc = dict(good)
            doc[key] = value
            yield f"{key}={k}", json.dumps(doc).encode()
    findings = good.get("findings")
    if isinstance(findings, list) and findings:
        for field in ("severity", "code", "path", "line", "message"):
            for k, value in enumerate([None, "x", []]):
                doc = json.loads(text)
                doc["findings"][0][field] = value
                yield f"findings.{field}={k}", json.dumps(doc).encode()


def _answers(data: str) -> tuple[int, str, int]:
    info = run_cli(["info", data, "--json"])
    assert_clean_outcome(info, allowed=(0,))
    check = run_cli(["check", data])
    assert_clean_outcome(check, allowed=(0, 1))
    codes = sorted(
        line.split()[1]
        for line in check.out.splitlines()
        if line.startswith(("ERROR", "WARNING", "NOTE"))
    )
    boxes = json.loads(info.out)["splits"]["all"]["boxes"]
    return boxes, " ".join(codes), check.rc


def test_every_cache_file_corrupted_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("DETFORGE_CACHE", str(cache))
    data = darknet_project(tmp_path / "proj")
    (tmp_path / "proj" / "data" / "im2.txt").write_text("0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n")
    clean = _answers(str(data))
    files = sorted(p for p in cache.iterdir() if p.is_file())
    # <kind>[-r<check rules version>]-v<format version>-<digest>
    kinds = {re.sub(r"-r\d+$", "", p.name.split("-v")[0]) for p in files}
    assert {"darknet", "check-images", "check-labels", "check-result"} <= kinds, kinds
    cases = 0
    for f in files:
        good = f.read_bytes()
        gen = json_corruptions(json.loads(good)) if f.suffix == ".json" else npz_corruptions(good)
        for name, bad in gen:
            f.write_bytes(bad)
            assert _answers(str(data)) == clean, f"{f.name} {name}: first run"
            if cases % 3 == 0:  # and from the rebuilt cache
                assert _answers(str(data)) == clean, f"{f.name} {name}: second run"
            cases += 1
        f.write_bytes(good)
    assert cases > 60
    print(f"cache corruptions: {cases} over {len(files)} files")


def test_damaged_index_is_noted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("DETFORGE_CACHE", str(cache))
    data = darknet_project(tmp_path / "proj")
    assert run_cli(["info", str(data)]).rc == 0
    (index,) = cache.glob("darknet-*.npz")
    index.write_bytes(index.read_bytes()[:100])
    again = run_cli(["info", str(data)])
    assert again.rc == 0 and "was damaged (BadZipFile); rebuilt" in again.out
    assert "was damaged" not in run_cli(["info", str(data)]).out


def test_damaged_check_tables_are_noted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("DETFORGE_CACHE", str(cache))
    data = darknet_project(tmp_path / "proj")
    first = run_cli(["check", str(data)])
    for kind in ("check-images", "check-labels"):
        (table,) = cache.glob(f"{kind}-*.npz")
        table.write_bytes(b"PK\x03\x04 cut")
    (record,) = cache.glob("check-result-*.json")
    record.unlink()  # else the stored result answers before the tables are read
    again = run_cli(["check", str(data)])
    assert again.rc == first.rc and again.out.count("was damaged (BadZipFile); rebuilt") == 2
    assert "was damaged" not in run_cli(["check", str(data)]).out


def test_damaged_check_result_is_noted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stored check result cut off, or of the wrong types, is checked again with one note;
    a result stored for other options is simply not reused (no note)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("DETFORGE_CACHE", str(cache))
    data = darknet_project(tmp_path / "proj")
    first = run_cli(["check", str(data)])
    (record,) = cache.glob("check-result-*.json")
    good = record.read_text()
    for damage in (good[: len(good) // 2], good.replace('"findings": [', '"findings": [5, ', 1)):
        record.write_text(damage)
        again = run_cli(["check", str(data)])
        assert again.rc == first.rc and "stored check result" in again.out, damage[:80]
        assert "stored check result" not in run_cli(["check", str(data)]).out  # stored anew
    assert "stored check result" not in run_cli(["check", str(data), "--tiny-px", "3"]).out
