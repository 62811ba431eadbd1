"""Fixtures for the checker tests: a private cache folder and a tiny Darknet dataset builder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image


@pytest.fixture(autouse=True)
def _private_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DETFORGE_CACHE", str(tmp_path_factory.mktemp("cache")))


def write_jpeg(path: Path, size: tuple[int, int] = (64, 48), color: int = 0, **kw: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (color % 256, 80, 160)).save(path, "JPEG", **kw)
    return path


MakeDataset = Callable[..., Path]


@pytest.fixture
def make_darknet(tmp_path: Path) -> MakeDataset:
    """``make(labels={"a": "0 0.5 0.5 0.2 0.2\\n", ...}, names="cat\\ndog\\n", splits=...)``.

    Writes ``img/<stem>.jpg`` (64x48) and ``img/<stem>.txt`` (when the label is not None),
    ``obj.names``, one list per split and ``obj.data``; returns the ``.data`` path.
    """

    def make(
        labels: dict[str, str | None],
        *,
        names: str = "cat\ndog\n",
        splits: dict[str, list[str]] | None = None,
        classes: int | None = None,
        root: Path | None = None,
    ) -> Path:
        base = root or tmp_path / "ds"
        for i, (stem, text) in enumerate(labels.items()):
            write_jpeg(base / "img" / f"{stem}.jpg", color=i * 37)
            if text is not None:
                (base / "img" / f"{stem}.txt").write_text(text)
        (base / "obj.names").write_text(names)
        splits = splits or {"train": list(labels)}
        lines = []
        for split, stems in splits.items():
            (base / f"{split}.txt").write_text("".join(f"img/{s}.jpg\n" for s in stems))
            lines.append(f"{split} = {split}.txt")
        n = classes if classes is not None else len([x for x in names.splitlines() if x])
        data = base / "obj.data"
        data.write_text(f"classes = {n}\n" + "\n".join(lines) + "\nnames = obj.names\n")
        return data

    return make


@pytest.fixture
def jpeg() -> Callable[..., Path]:
    """``jpeg(path, size=(64, 48), color=0, **pil_save_options)`` writes a JPEG."""
    return write_jpeg
