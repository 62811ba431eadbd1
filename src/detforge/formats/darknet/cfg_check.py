"""Check a rewritten Darknet ``.cfg`` with the model's own rules before it is written.

The rewrite (:func:`detforge.formats.darknet.cfg.rewrite_cfg_text`) edits values in place, so
the new text has the input's lines: an error names the input cfg and its line, and, when
that line is one the rewrite changed, which option the new value comes from. The rules are
those of ``detforge predict``/``train`` (:mod:`detforge.models.darknet.cfg`,
:func:`detforge.models.darknet.network.walk_cfg` and the ``[yolo]`` loss keys of
:mod:`detforge.models.darknet.loss_spec`); what Darknet runs and detforge does not
(``[Gaussian_yolo]``, ``[reorg]``, a key detforge does not know ...) is kept as an opaque
layer, and a note says the cfg could be checked only in part.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from detforge.errors import DetforgeError

if TYPE_CHECKING:
    from detforge.formats.darknet.cfg import CfgChange

# the option each rewritten key comes from ("" for the class count: its option is given)
_OPTION = {
    "classes": "",
    "filters": "",
    "width": "--imgsz",
    "height": "--imgsz",
    "anchors": "--anchors",
    "batch": "--subdivisions",
    "subdivisions": "--subdivisions",
    "max_batches": "--max-batches",
    "steps": "--max-batches",
}


def check_rewritten(
    text: str,
    changes: Sequence[CfgChange],
    *,
    path: str | os.PathLike[str],
    classes_from: str = "--classes",
) -> list[str]:
    """Check ``text``, the rewrite of cfg ``path`` with ``changes``, as predict and train will
    read it; the notes (one a line, without ``note: ``) on what could not be checked.

    A :class:`DetforgeError` names ``path`` and the line; on a changed line it adds which
    option set the value there (``classes_from`` for ``classes=``/``filters=``)."""
    from detforge.models.darknet.cfg import parse_cfg_text
    from detforge.models.darknet.loss_spec import YoloLossSpec
    from detforge.models.darknet.network import walk_cfg

    # as predict reads it: bytes that are not UTF-8 are U+FFFD, not lone surrogates
    shown = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    try:
        cfg = parse_cfg_text(shown, path=path, opaque=True)
        walk = walk_cfg(cfg)
        for section in cfg.layers:  # train's [yolo] loss keys (counters_per_class, ...)
            if section.name == "yolo":
                YoloLossSpec.of_section(section)
    except DetforgeError as exc:
        raise _blamed(exc, changes, classes_from) from None
    grouped: dict[str, list[int]] = {}
    for line, why in walk.unchecked:
        grouped.setdefault(why, []).append(line)
    return [
        f"{os.fspath(path)} was checked only in part: {why} "
        f"(line{'s' if len(lines) > 1 else ''} {', '.join(map(str, lines))}); "
        "what depends on it was not checked"
        for why, lines in grouped.items()
    ]


def _blamed(exc: DetforgeError, changes: Sequence[CfgChange], classes_from: str) -> DetforgeError:
    """``exc``, saying which option set the value on its line when the rewrite changed it."""
    change = next((c for c in changes if c.line == exc.line), None)
    if change is None:
        return exc
    option = _OPTION.get(change.key.lower(), "") or classes_from
    return DetforgeError(
        f"{exc.message} ({change.key}={change.new} on this line comes from {option})",
        path=exc.path,
        line=exc.line,
    )
