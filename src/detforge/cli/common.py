"""Options and helpers several subcommands share."""

from __future__ import annotations

import argparse

from detforge.errors import DetforgeError


def add_path_map_option(parser: argparse.ArgumentParser) -> None:
    """``--path-map OLD=NEW`` (repeatable): rewrite path prefixes found in lists and .data files."""
    parser.add_argument(
        "--path-map",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help=(
            "rewrite paths that start with OLD to start with NEW (repeatable), e.g. "
            "'G:/data=/mnt/data' for a dataset made on Windows; slashes of either kind match"
        ),
    )


def parse_path_map(items: list[str]) -> list[tuple[str, str]]:
    """``["OLD=NEW", ...] -> [(OLD, NEW), ...]``; a missing ``=`` is a usage error."""
    pairs = []
    for item in items:
        old, sep, new = item.partition("=")
        if not sep or not old:
            raise DetforgeError(f"--path-map expects OLD=NEW, got {item!r}")
        pairs.append((old, new))
    return pairs
