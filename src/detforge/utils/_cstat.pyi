from typing import Any

def stat_paths(
    blob: bytes, n: int, size_out: Any, mtime_out: Any, ctime_out: Any = ..., /
) -> int: ...
def read_paths(
    blob: bytes, n: int, starts: Any, caps: Any, out: Any, lengths_out: Any, /
) -> None: ...
