"""Tiny real datasets for the reliability suite, built in a temporary folder.

Every builder writes real files (JPEG images from PIL, label files in each format's own
syntax) so the readers under test see what a user's disk holds.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from PIL import Image


def jpeg(path: Path, size: tuple[int, int] = (64, 48), color: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (color % 256, 90, 150)).save(path, "JPEG")
    return path


def darknet_project(root: Path, n: int = 4, *, images_sub: str = "data") -> Path:
    """``root/cfg/obj.data`` naming images and labels in ``root/<images_sub>/`` (the issue's
    ``proj/cfg/obj.data proj/data`` layout); returns the ``.data`` path."""
    data = root / images_sub
    paths = []
    for i in range(n):
        img = jpeg(data / f"im{i}.jpg", color=40 * i)
        img.with_suffix(".txt").write_text(f"{i % 2} 0.5 0.5 0.25 0.25\n0 0.3 0.3 0.1 0.2\n")
        paths.append(str(img))
    cfg = root / "cfg"
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "obj.names").write_text("cat\ndog\n")
    (cfg / "train.txt").write_text("".join(f"{p}\n" for p in paths[: n - 1]))
    (cfg / "valid.txt").write_text(f"{paths[-1]}\n")
    (cfg / "obj.data").write_text(
        f"classes = 2\ntrain = {cfg / 'train.txt'}\nvalid = {cfg / 'valid.txt'}\n"
        f"names = {cfg / 'obj.names'}\n"
    )
    return cfg / "obj.data"


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> sha256 (or ``link:<target>``) of everything under ``root``, so a test
    can assert that a source tree is byte-identical after a command."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(filenames + dirnames):
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            elif p.is_file():
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            elif p.is_dir():
                out[rel] = "dir:" + oct(p.stat().st_mode & 0o777)
    return out
