from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from detforge.cli import demo
from detforge.cli.main import COMMANDS, main


def test_demo_runs_foundation_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DETFORGE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "demo"
    steps = "generate,info,lists,split"
    assert main(["demo", "--out", str(out), "--images", "20", "--steps", steps]) == 0
    assert (out / "dataset" / "obj.data").is_file()
    assert json.loads((out / "info.json").read_text())["splits"]["all"]["images"] == 20
    assert len((out / "lists" / "all.txt").read_text().split()) == 20
    assert len((out / "lists" / "every_5th.txt").read_text().split()) == 4
    assert (out / "split" / "obj.data").is_file() and (out / "split" / "backup").is_dir()


def test_demo_steps_are_an_explicit_ordered_list(capsys: pytest.CaptureFixture[str]) -> None:
    names = [n for n, _, _ in demo.STEPS]
    assert names[:4] == ["generate", "info", "lists", "split"]
    assert main(["demo", "--list-steps"]) == 0
    assert capsys.readouterr().out.split()[0] == "generate"
    assert main(["demo", "--steps", "nope"]) == 2
    assert "unknown demo step" in capsys.readouterr().err
    for name in ("demo", "info", "lists", "split"):
        assert name in COMMANDS


def test_a_file_in_the_way_of_out_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "blk").write_text("mine")
    assert main(["demo", "--out", str(tmp_path / "blk" / "x"), "--steps", "generate"]) == 2
    err = capsys.readouterr().err.strip()
    assert "blk: is an existing file" in err and len(err.splitlines()) == 1
    assert (tmp_path / "blk").read_text() == "mine"


def test_help_does_not_import_torch() -> None:
    code = (
        "import sys\nfrom detforge.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "for m in ('detforge.cli.lists', 'detforge.cli.split', 'detforge.cli.info'):\n"
        "    assert m in sys.modules, m\n"
        "assert 'torch' not in sys.modules, 'torch imported by --help'\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "lists" in res.stdout and "split" in res.stdout
