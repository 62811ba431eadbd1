"""Entry point of the ``detforge`` command.

Every subcommand is one module of this package exposing::

    HELP: str                                   # one line for ``detforge --help``
    DESCRIPTION: str                            # longer text for ``detforge CMD --help``
    def add_arguments(parser: argparse.ArgumentParser) -> None
    def run(args: argparse.Namespace) -> int    # the exit status

Modules import their heavy dependencies (torch, matplotlib) inside ``run`` so that
``detforge --help`` and ``detforge lists`` start fast. The table below is the whole registry:
adding a command is adding a line.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from detforge import __version__
from detforge.errors import DetforgeError

COMMANDS: dict[str, str] = {
    "demo": "detforge.cli.demo",
    "info": "detforge.cli.info",
    "lists": "detforge.cli.lists",
    "split": "detforge.cli.split",
    "predict": "detforge.cli.predict",
    "map": "detforge.cli.map",
    "show": "detforge.cli.show",
    "report": "detforge.cli.report",
    "train": "detforge.cli.train",
    "val": "detforge.cli.val",
    "eval": "detforge.cli.eval",
    "lr-find": "detforge.cli.lr_find",
    "doctor": "detforge.cli.doctor",
    "convert": "detforge.cli.convert",
    "check": "detforge.cli.check",
    "stats": "detforge.cli.stats",
    "darknet-cfg": "detforge.cli.darknet_cfg",
    "anchors": "detforge.cli.anchors",
    "export": "detforge.cli.export",
}
"""Subcommand name -> module implementing it, in the order ``--help`` lists them."""


def _load(name: str) -> ModuleType:
    return importlib.import_module(COMMANDS[name])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="detforge",
        description=(
            "From a folder of labelled images to a trained, evaluated object detector. "
            "Run 'detforge CMD --help' for the options of one command."
        ),
    )
    parser.add_argument("--version", action="version", version=f"detforge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        mod = _load(name)
        p = sub.add_parser(
            name,
            help=mod.HELP,
            description=getattr(mod, "DESCRIPTION", mod.HELP),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        mod.add_arguments(p)
        inputs = [a.dest for a in p._actions if not a.option_strings and a.dest != "help"]
        p.set_defaults(_run=mod.run, _inputs=inputs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 findings/failure, 2 usage or input error)."""
    for stream in (sys.stdout, sys.stderr):  # file names that are not UTF-8 print as bytes
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="surrogateescape" if stream is sys.stdout else "backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args))
    except DetforgeError as exc:
        from detforge.cli.paths import explain

        given, named = _given_paths(args), _option_paths(args)
        print(f"detforge {args.command}: error: {explain(exc, given, named)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"detforge {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


def _given_paths(args: argparse.Namespace) -> list[str]:
    """The positional arguments the user typed (the paths a command reads)."""
    given: list[str] = []
    for dest in getattr(args, "_inputs", []):
        value = getattr(args, dest, None)
        values = value if isinstance(value, list) else [value]
        given += [os.fspath(v) for v in values if isinstance(v, (str, os.PathLike))]
    return given


def _option_paths(args: argparse.Namespace) -> list[str]:
    """The values of the options the user typed that may name files (``--cfg``, ``--weights``;
    each value of a repeated option such as ``report --pred``)."""
    inputs = set(getattr(args, "_inputs", []))
    out = []
    for k, v in vars(args).items():
        if k in inputs or k.startswith("_"):
            continue
        for item in v if isinstance(v, (list, tuple)) else [v]:
            if isinstance(item, (str, os.PathLike)):
                out.append(os.fspath(item))
    return out


def main_exit() -> None:
    """Console-script entry point: ``sys.exit(main())``."""
    sys.exit(main())
