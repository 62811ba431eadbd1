"""The argparse types and helpers several subcommands share (``detforge.cli.common``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

import pytest

from detforge.cli.common import match_dataset_classes, non_negative_int
from detforge.cli.main import build_parser, main


def test_non_negative_int_takes_whole_numbers_from_zero() -> None:
    assert non_negative_int("0") == 0 and non_negative_int("42") == 42
    for bad in ("-1", "1.5", "x", ""):
        with pytest.raises(argparse.ArgumentTypeError, match=">= 0"):
            non_negative_int(bad)


def _seed_commands() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return [
        name
        for name, p in sub.choices.items()
        if any("--seed" in a.option_strings for a in p._actions)
    ]


def test_every_seed_option_refuses_a_negative_seed_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    commands = _seed_commands()
    assert {"anchors", "split", "lists", "show", "demo", "darknet-cfg"} <= set(commands)
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in commands:
        seed = next(a for a in sub.choices[name]._actions if "--seed" in a.option_strings)
        assert seed.type is non_negative_int, name  # one type, so one rule and one message
        with pytest.raises(SystemExit) as e:  # argparse stops at the value: no traceback
            main([name, "--seed", "-1"])
        assert e.value.code == 2, name
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1] == (
            f"detforge {name}: error: argument --seed: expected a whole number >= 0, got '-1'"
        )


@pytest.mark.parametrize("command", ["predict", "show"])
@pytest.mark.parametrize("width", ["0", "-5", "101", "100000", "x"])
def test_line_width_is_1_to_100_pixels_everywhere(
    command: str, width: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Pillow refuses a label font thousands of pixels tall, and a width below 1 draws no
    outline: both commands refuse such a --line-width before reading anything."""
    from detforge.cli.main import main

    with pytest.raises(SystemExit) as e:
        main([command, "nothing.pt", str(tmp_path), "--line-width", width])
    assert e.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(err) == 1 and "--line-width" in err[0], err


def test_a_pipe_or_folder_given_as_a_model_or_cfg_file_is_named_as_such(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A FIFO used to be reported as 'file not found' (it exists); it is never opened."""
    import os

    from detforge.cli.main import main

    fifo = tmp_path / "model.weights"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.cfg"
    folder.mkdir()
    cases = [
        (["predict", str(fifo), str(tmp_path)], "is not a regular file"),
        (["darknet-cfg", str(fifo), "--classes", "2", "-o", str(tmp_path / "o.cfg")],
         "is not a regular file"),
        (["darknet-cfg", str(folder), "--classes", "2", "-o", str(tmp_path / "o.cfg")],
         "is a folder; give the cfg file"),
        (["predict", str(tmp_path / "none.weights"), str(tmp_path)], "weights file not found"),
    ]  # fmt: skip
    for argv, words in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and words in err, err


def test_classes_by_index_note_clips_long_names(capsys: pytest.CaptureFixture[str]) -> None:
    """The note listing each renamed class quoted every name whole (a 1 MB name, a 1 MB
    note); it quotes them as every message does, clipped, and the model takes the names."""
    model = SimpleNamespace(class_names=("a" * 1_000_000, "same"))
    match_dataset_classes(
        model, None, ["b" * 1_000_000, "same"], by_index=True, model_path="m.pt", data="d"
    )
    assert capsys.readouterr().err == (
        f"note: scoring by class index (--classes-by-index): '{'a' * 77}...' as '{'b' * 77}...'\n"
    )
    assert model.class_names == ("b" * 1_000_000, "same")
