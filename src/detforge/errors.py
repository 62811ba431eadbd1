"""The one exception type for user mistakes (bad files, bad options).

The CLI turns a :class:`DetforgeError` into a single ``detforge: error: ...`` line and exit
status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os

MAX_QUOTED = 80
"""Errors quote at most this many characters of the user's input (:func:`clip`)."""


def clip(text: str, limit: int = MAX_QUOTED) -> str:
    """``text`` cut to ``limit`` characters, ``...`` marking the cut: errors quote the user's
    input, and a 2 MB cfg line must not become a 2 MB message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


class DetforgeError(Exception):
    """A problem the user can fix: the message says what and, where known, which file and line.

    ``path`` and ``line`` (1-based) are kept as attributes so callers (the checker, tests) can
    read them without parsing the message.
    """

    def __init__(
        self, message: str, *, path: str | os.PathLike[str] | None = None, line: int | None = None
    ) -> None:
        self.message = message
        self.path = None if path is None else os.fspath(path)
        self.line = line
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path if self.line is None else f"{self.path}:{self.line}"
            where += ": "
        return f"{where}{self.message}"
