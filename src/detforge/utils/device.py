"""The one device resolver: what ``--device`` means for train, val, map, predict, export,
lr-find and ``detforge.load``.

Accepted spellings (case and surrounding spaces ignored):

* ``""`` / ``"auto"`` / ``None`` -- the first CUDA GPU when there is one, else the CPU;
* ``"cpu"``;
* ``"cuda"`` (GPU 0), ``"cuda:N"``, ``"N"`` -- one CUDA GPU;
* ``"N,M,..."`` -- several CUDA GPUs for a ``torchrun`` run: each process takes the entry at
  its ``LOCAL_RANK``; one process alone takes the first;
* ``"mps"`` -- Apple's Metal GPU.

A device that is not there is one :class:`DetforgeError` line saying what is available
(``cpu``, ``cuda:0`` ..., ``mps``); under ``torchrun`` (``distributed``) a CUDA request
resolves to the GPU of the process's ``local_rank``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from detforge.errors import DetforgeError

if TYPE_CHECKING:
    import torch

SPELLINGS = "cpu, cuda, cuda:N, N, N,M (GPU ids), mps or auto"


def available_devices() -> list[str]:
    """Devices torch can use here, e.g. ``["cpu", "cuda:0", "cuda:1"]`` or ``["cpu", "mps"]``."""
    import torch

    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found


def _missing(requested: str, what: str) -> DetforgeError:
    have = ", ".join(available_devices())
    hint = " (run 'detforge doctor' to see why)" if what.startswith("CUDA") else ""
    return DetforgeError(
        f"--device {requested}: {what} is not available here{hint}; available: {have}"
    )


def _cuda_ids(req: str) -> list[int] | None:
    """GPU ids a CUDA spelling names, or ``None`` when ``req`` is not a CUDA spelling."""
    if req == "cuda":
        return [0]
    if req.startswith("cuda:"):
        req = req[5:]
    parts = [p.strip() for p in req.split(",")]
    if all(p.isdigit() for p in parts) and parts:
        return [int(p) for p in parts]
    return None


def resolve_device(
    requested: str | None, *, local_rank: int = 0, distributed: bool = False
) -> torch.device:
    """The ``torch.device`` that ``requested`` (a ``--device`` value, see the module docstring)
    names here; :class:`DetforgeError` for an unknown spelling or a device that is not there."""
    import torch

    req = (requested or "").strip().lower()
    if req in ("", "auto"):
        req = "cuda" if torch.cuda.is_available() else "cpu"
    if req == "cpu":
        return torch.device("cpu")
    if req == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise _missing(str(requested), "Apple's MPS GPU")
        return torch.device("mps")
    ids = _cuda_ids(req)
    if ids is None:
        raise DetforgeError(f"--device must be {SPELLINGS}, not {requested!r}")
    if not torch.cuda.is_available():
        raise _missing(str(requested), "CUDA")
    count = torch.cuda.device_count()
    if distributed:
        index = ids[local_rank] if len(ids) > 1 and local_rank < len(ids) else local_rank
    else:
        index = ids[0]
    if index >= count:
        raise _missing(str(requested), f"GPU {index}")
    return torch.device("cuda", index)


def device_string(device: torch.device) -> str:
    """``"cpu"``, ``"cuda:N"`` or ``"mps"``: what onnxruntime provider choice and messages use."""
    if device.type == "cuda":
        return f"cuda:{device.index or 0}"
    return device.type
