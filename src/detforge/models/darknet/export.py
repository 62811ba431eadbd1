"""Give a Darknet network back as Darknet files: ``DIR/<name>.cfg``, ``.weights``, ``.names``.

The ``.cfg`` is the network's own cfg text (as loaded, or as rewritten for a new class count
by the trainer), so Darknet and OpenCV build exactly the layers whose weights we write; only
the comments after values are cut (Darknet would read ``activation=leaky # x`` as ReLU).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from detforge.errors import DetforgeError
from detforge.models.darknet.cfg import parse_cfg_text, without_inline_comments
from detforge.models.darknet.network import DarknetNetwork
from detforge.models.darknet.weights import weights_bytes


def export_darknet(
    net: DarknetNetwork, out_dir: str | os.PathLike[str], name: str, class_names: Sequence[str]
) -> dict[str, Path]:
    """Write ``<name>.cfg``, ``<name>.weights`` and ``<name>.names`` into ``out_dir``.

    Returns {"cfg", "weights", "names"} -> path. Refuses to overwrite existing files and a
    class-name count that differs from the network's ``classes=``.
    """
    from detforge.utils.io import atomic_write_bytes, atomic_write_text, make_folder

    if not name or "/" in name or os.sep in name:
        raise DetforgeError(f"bad export name {name!r}")
    if len(class_names) != net.num_classes:
        raise DetforgeError(
            f"{len(class_names)} class names for a network with classes={net.num_classes}"
        )
    for n in class_names:
        if "\n" in n or "\r" in n:
            raise DetforgeError(f"class name {n!r} contains a line break")
    out = Path(out_dir)
    paths = {k: out / f"{name}.{k}" for k in ("cfg", "weights", "names")}
    for p in paths.values():
        if p.exists():
            raise DetforgeError("already exists; choose another --out folder or remove it", path=p)
    # the written cfg must describe exactly this network
    check = DarknetNetwork(parse_cfg_text(net.cfg.text, path=net.cfg.path))
    if [tuple(s) for s in check.out_shapes] != [tuple(s) for s in net.out_shapes]:
        raise DetforgeError("the network no longer matches its cfg text", path=net.cfg.path)
    make_folder(out)
    text = without_inline_comments(net.cfg.text)  # darknet reads `leaky # x` as ReLU
    text = text if text.endswith("\n") else text + "\n"
    atomic_write_text(paths["cfg"], text)
    atomic_write_bytes(paths["weights"], weights_bytes(net))
    atomic_write_text(paths["names"], "".join(f"{n}\n" for n in class_names))
    return paths
