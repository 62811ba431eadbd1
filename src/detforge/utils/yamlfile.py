"""Reading YAML files people hand to detforge (dataset YAMLs, run configs) in bounded memory.

``yaml.safe_load`` never runs code, but it does expand aliases: a 600-byte file of nested
``&a [*b, *b, ...]`` anchors (a "billion laughs") becomes a structure of billions of
references that the first walk over it (printing the names, say) blows up to gigabytes.
detforge's YAML files have no use for anchors, so :func:`load_yaml` refuses aliases outright,
caps the file size and turns deep nesting into the same one-line error.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from detforge.errors import DetforgeError

MAX_YAML_BYTES = 16 << 20
"""A dataset YAML or run config is a few KiB; anything above 16 MiB is refused unread."""


def _loader() -> type:
    import yaml

    class _NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"YAML aliases (*{event.anchor}) are not accepted: they can expand a small "
                    "file into gigabytes; write the values out",
                    event.start_mark,
                )
            return super().compose_node(parent, index)

    return _NoAliasLoader


def load_yaml(path: str | os.PathLike[str], what: str = "YAML file") -> Any:
    """The parsed document of ``path``; a missing, huge, malformed or alias-using file, or
    one nested too deeply, is a one-line :class:`DetforgeError` naming it."""
    import yaml

    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_YAML_BYTES:
            raise DetforgeError(
                f"{what} is {size} bytes; more than {MAX_YAML_BYTES} is refused", path=p
            )
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DetforgeError(f"{what} not found", path=p) from None
    except UnicodeDecodeError:
        raise DetforgeError(f"{what} is not UTF-8 text", path=p) from None
    except OSError as exc:
        raise DetforgeError(f"cannot read {what}: {exc.strerror}", path=p) from None
    try:
        return yaml.load(text, Loader=_loader())
    except yaml.YAMLError as exc:
        msg = " ".join(str(exc).split())
        raise DetforgeError(f"not valid YAML for detforge: {msg}", path=p) from None
    except RecursionError:
        raise DetforgeError(f"{what} is nested too deeply", path=p) from None
