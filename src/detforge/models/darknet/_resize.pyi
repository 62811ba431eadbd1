from typing import Any

def resize_into(
    src: Any,
    src_h: int,
    src_w: int,
    channels: int,
    dst: Any,
    net_h: int,
    net_w: int,
    x0: int,
    y0: int,
    new_w: int,
    new_h: int,
    /,
) -> None: ...
