"""Read and write Darknet ``.weights`` files.

Layout (``parser.c: load_weights_upto`` / ``save_weights_upto``), little-endian:
``int32 major, int32 minor, int32 revision``, then ``seen`` as uint64 when
``major * 10 + minor >= 2`` else uint32; then, for every ``[convolutional]`` layer in cfg
order, float32 arrays: biases (filters), and when ``batch_normalize=1`` BN scales, rolling
means, rolling variances (filters each), then the weights (filters, C/groups, size, size).
No other supported layer carries weights. A file whose length does not match the cfg is an
error naming both files (nothing is loaded); ``partial=True`` accepts a file that stops at a
layer boundary (Darknet's ``.conv.N`` files) and reports how many layers it filled.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from detforge.errors import DetforgeError
from detforge.models.darknet.layers import ConvLayer
from detforge.models.darknet.network import DarknetNetwork, WeightsHeader

_MAX_VERSION = 1000  # Darknet transposes connected weights past this: not a file we write


def _conv_tensors(layer: ConvLayer) -> list[torch.Tensor]:
    """The tensors of one conv in file order."""
    if layer.bn is not None:
        bn = layer.bn
        assert bn.running_mean is not None and bn.running_var is not None
        return [bn.bias, bn.weight, bn.running_mean, bn.running_var, layer.conv.weight]
    assert layer.conv.bias is not None
    return [layer.conv.bias, layer.conv.weight]


def _layer_counts(net: DarknetNetwork) -> list[tuple[int, int]]:
    """(cfg layer index, float count) for every layer with weights."""
    return [
        (i, sum(t.numel() for t in _conv_tensors(layer)))
        for i, layer in enumerate(net.layers)
        if isinstance(layer, ConvLayer)
    ]


def read_header(data: bytes, path: str) -> tuple[WeightsHeader, int]:
    """Parse the header; returns it and its byte length."""
    if len(data) < 16:
        raise DetforgeError(
            "not a Darknet .weights file: shorter than its 16-20 byte header", path=path
        )
    major, minor, revision = struct.unpack_from("<iii", data, 0)
    if not (0 <= major < _MAX_VERSION and 0 <= minor < _MAX_VERSION and revision >= 0):
        raise DetforgeError(
            f"not a Darknet .weights file (header version {major}.{minor}.{revision})", path=path
        )
    header = WeightsHeader(major, minor, revision)
    if header.seen_is_64bit:
        if len(data) < 20:
            raise DetforgeError("not a Darknet .weights file: the header is cut short", path=path)
        header.seen = struct.unpack_from("<Q", data, 12)[0]
        return header, 20
    header.seen = struct.unpack_from("<I", data, 12)[0]
    return header, 16


def read_weights(
    net: DarknetNetwork, path: str | os.PathLike[str], *, partial: bool = False
) -> int:
    """Load ``path`` into ``net`` (in place); returns the number of cfg layers covered.

    DetforgeError when the file is not a .weights file or its length does not fit the cfg
    (then ``net`` is unchanged).
    """
    p = os.fspath(path)
    try:
        with _open_regular(p) as f:
            return _read_open_weights(net, f, p, partial)
    except OSError as exc:
        raise DetforgeError(f"cannot read the weights: {exc.strerror or exc}", path=p) from None


def _open_regular(path: str) -> BinaryIO:
    """``path`` opened for reading, without blocking on a FIFO or device (``OSError``
    "not a regular file" for those, before anything is read)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", path)
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _read_open_weights(net: DarknetNetwork, f: BinaryIO, p: str, partial: bool) -> int:
    """:func:`read_weights` of the open file ``f``: its size (``fstat``) is checked against
    the cfg before the weights are read, so a wrong or huge file costs no memory."""
    header, offset = read_header(f.read(20), p)
    payload = os.fstat(f.fileno()).st_size - offset
    counts = _layer_counts(net)
    need = sum(n for _, n in counts) * 4
    cfg_name = Path(net.cfg.path).name
    upto = len(net.layers)
    if payload != need:
        boundaries = np.cumsum([n * 4 for _, n in counts]) if counts else np.zeros(0)
        hit = np.flatnonzero(boundaries == payload)
        if not partial or (payload and not hit.size):
            kb = "" if payload % 4 == 0 else " (not a whole number of float32 values)"
            raise DetforgeError(
                f"holds {payload:,} bytes of weights{kb} but {cfg_name} needs {need:,} "
                f"({len(counts)} convolutional layers): the cfg and the weights do not belong "
                "together (check classes=/filters= and that both files are complete)",
                path=p,
            )
        counts = counts[: int(hit[0]) + 1] if payload else []
        upto = counts[-1][0] + 1 if counts else 0
    f.seek(offset)
    data = f.read(payload)
    if len(data) != payload:
        raise DetforgeError("the weights file changed while it was read", path=p)
    values = np.frombuffer(data, dtype="<f4")
    if not np.all(np.isfinite(values)):
        bad = int(np.flatnonzero(~np.isfinite(values))[0])
        raise DetforgeError(f"value {bad} of the weights is not finite (NaN or infinity)", path=p)
    pos = 0
    with torch.no_grad():
        for i, _ in counts:
            layer = net.layers[i]
            assert isinstance(layer, ConvLayer)
            for t in _conv_tensors(layer):
                n = t.numel()
                t.copy_(torch.from_numpy(values[pos : pos + n].copy()).view_as(t))
                pos += n
    net.header = header
    return upto


def weights_bytes(net: DarknetNetwork, header: WeightsHeader | None = None) -> bytes:
    """The ``.weights`` file content for ``net`` (header: ``net.header`` unless given)."""
    if net.is_fused:
        raise DetforgeError("a fused inference copy cannot be written as .weights")
    h = header or net.header
    parts = [struct.pack("<iii", h.major, h.minor, h.revision)]
    parts.append(struct.pack("<Q" if h.seen_is_64bit else "<I", h.seen))
    for layer in net.layers:
        if isinstance(layer, ConvLayer):
            for t in _conv_tensors(layer):
                arr = t.detach().to("cpu", torch.float32).contiguous().numpy()
                parts.append(arr.astype("<f4", copy=False).tobytes())
    return b"".join(parts)


def write_weights(
    net: DarknetNetwork, path: str | os.PathLike[str], header: WeightsHeader | None = None
) -> Path:
    """Write ``net``'s weights to ``path`` (temp name + rename); returns the path."""
    from detforge.utils.io import atomic_write_bytes

    out = Path(path)
    atomic_write_bytes(out, weights_bytes(net, header))
    return out
