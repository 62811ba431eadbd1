"""Whether a forward pass is being traced (``torch.jit.trace``, ``torch.onnx.export``'s
TorchScript exporter): models then take the path an exported graph should record."""

from __future__ import annotations

import torch


def is_tracing() -> bool:
    """True while TorchScript traces a forward (``torch.jit.is_tracing``, typed)."""
    return torch._C._get_tracing_state() is not None
