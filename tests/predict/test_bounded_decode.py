"""An image declaring 100000 x 100000 pixels is one clean error line in ``predict``, ``show``
and the training loader, within bounded memory (checked in a subprocess under an address-space
limit), never a decompression-bomb traceback or an out-of-memory kill."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detforge.cli.main import main
from detforge.data.dataset import make_dataset
from detforge.errors import DetforgeError
from tests.data.test_images import header_only_png
from tests.predict.helpers import random_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_checkpoint(tmp_path_factory.mktemp("model") / "m.pt")


def _folder(root: Path) -> Path:
    """A Darknet-style folder: one normal image and one header-only 100000x100000 PNG."""
    root.mkdir()
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(root / "ok.png")
    header_only_png(root / "huge.png", 100_000, 100_000)
    for stem in ("ok", "huge"):
        (root / f"{stem}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (root / "classes.txt").write_text("ant\nbee\ncow\n")
    return root


def _run_limited(argv: list[str], limit_bytes: int, cwd: Path) -> subprocess.CompletedProcess[str]:
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "detforge", *argv], cwd=cwd, env=env, preexec_fn=limit,
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_predict_huge_png_is_one_line(
    tmp_path: Path, ckpt: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = header_only_png(tmp_path / "huge.png", 100_000, 100_000)
    assert main(["predict", str(ckpt), str(big), "--save-txt", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "huge.png" in err
    assert "100000x100000 pixels" in err and "megapixels" in err


def test_show_huge_png_is_named_and_the_rest_drawn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _folder(tmp_path / "ds")
    out = tmp_path / "out"
    assert main(["show", str(data), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "huge.png" in err and "megapixels" in err
    assert (out / "ok.jpg").is_file() and not (out / "huge.jpg").exists()


def test_training_loader_huge_png_is_one_error(tmp_path: Path) -> None:
    from detforge.train.dataloader import create_dataloader

    data = _folder(tmp_path / "ds")
    ds = make_dataset(["a"], paths=[str(data / "ok.png"), str(data / "huge.png")])
    for cache in ("none", "ram"):
        with pytest.raises(DetforgeError, match="megapixels") as err:
            list(create_dataloader(ds, imgsz=64, batch_size=2, cache=cache))
        assert err.value.path == str(data / "huge.png")


def test_bounded_memory_in_a_subprocess(tmp_path: Path, ckpt: Path) -> None:
    data = _folder(tmp_path / "ds")
    # 'show' imports no torch: it runs under the 2 GB limit the issue names.
    res = _run_limited(["show", str(data), "--out", str(tmp_path / "s")], 2_000_000_000, tmp_path)
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr and "megapixels" in res.stderr
    # 'predict' loads torch, whose libraries alone map ~3.5 GB of address space: 5 GB leaves
    # far too little for the 30 GB the declared pixels would take.
    out = str(tmp_path / "p")
    argv = ["predict", str(ckpt), str(data / "huge.png"), "--save-txt", "--out", out]
    res = _run_limited(argv, 5_000_000_000, tmp_path)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "100000x100000 pixels" in lines[0]
