"""``detforge doctor``: is this machine able to train, and if not, why.

The guide's "errors related to cuDNN" folklore as a report: Python, PyTorch, the CUDA runtime
PyTorch was built for, the driver's CUDA version, cuDNN, whether they fit together, each GPU
with its free memory, and a tiny CUDA op that proves kernels actually run.
"""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass, field
from typing import Any


@dataclass
class DoctorReport:
    """Facts (``key -> value`` lines), GPUs, and problems found (empty when all is well)."""

    facts: dict[str, str] = field(default_factory=dict)
    gpus: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"{k:<22} {v}" for k, v in self.facts.items()]
        for g in self.gpus:
            out.append(
                f"GPU {g['index']:<18} {g['name']}, compute {g['capability']}, "
                f"{g['free_gib']:.1f} of {g['total_gib']:.1f} GiB free"
            )
        out += [f"note: {n}" for n in self.notes]
        out += [f"PROBLEM: {p}" for p in self.problems]
        out.append(
            "verdict: " + ("OK" if not self.problems else f"{len(self.problems)} problem(s)")
        )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "facts": self.facts,
            "gpus": self.gpus,
            "problems": self.problems,
            "notes": self.notes,
        }


def _driver_cuda_version(torch: Any) -> str | None:
    """The CUDA version the installed driver supports, e.g. ``"12.4"`` (None if unknown)."""
    try:
        import ctypes

        lib = ctypes.CDLL("libcuda.so.1" if sys.platform != "win32" else "nvcuda.dll")
        v = ctypes.c_int(0)
        if lib.cuDriverGetVersion(ctypes.byref(v)) == 0 and v.value:
            return f"{v.value // 1000}.{(v.value % 1000) // 10}"
    except (OSError, AttributeError):
        return None
    return None


# Over 80 lines on purpose: a flat list of independent environment probes, read top to bottom.
def run_doctor(*, op_test: bool = True) -> DoctorReport:
    """Collect the report. Never raises for a broken CUDA setup: it reports it."""
    rep = DoctorReport()
    rep.facts["python"] = f"{platform.python_version()} ({sys.executable})"
    rep.facts["platform"] = f"{platform.system()} {platform.release()} {platform.machine()}"
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is a dependency
        rep.problems.append(f"PyTorch cannot be imported ({exc}); pip install torch")
        return rep
    rep.facts["torch"] = torch.__version__
    try:
        import torchvision

        rep.facts["torchvision"] = torchvision.__version__
    except Exception as exc:  # a mismatched torchvision raises all sorts on import
        rep.problems.append(
            f"torchvision cannot be imported ({type(exc).__name__}: {exc}); install the "
            "torchvision build that matches your torch version"
        )
    built = torch.version.cuda
    rep.facts["torch built for CUDA"] = built or "none (CPU-only build)"
    driver = _driver_cuda_version(torch)
    rep.facts["driver supports CUDA"] = driver or "no NVIDIA driver found"
    cudnn = (
        torch.backends.cudnn.version()  # type: ignore[no-untyped-call]
        if torch.backends.cudnn.is_available()  # type: ignore[no-untyped-call]
        else None
    )
    rep.facts["cuDNN"] = f"{_cudnn_str(cudnn)} ({cudnn})" if cudnn else "not available"
    rep.facts["threads"] = str(torch.get_num_threads())
    if not torch.cuda.is_available():
        rep.facts["CUDA"] = "no CUDA: training will run on the CPU (slow but works)"
        if built and driver is None:
            rep.notes.append(
                "this PyTorch has CUDA support but no NVIDIA driver was found: on a GPU "
                "machine install the NVIDIA driver"
            )
        elif built and driver is not None:
            rep.problems.append(
                f"PyTorch was built for CUDA {built} and a driver for CUDA {driver} is present, "
                "yet CUDA is unavailable: check CUDA_VISIBLE_DEVICES and that the driver loads"
            )
        return rep
    rep.facts["CUDA"] = f"available, {torch.cuda.device_count()} device(s)"
    if built and driver and _vtuple(driver) < (_vtuple(built)[0], 0):
        rep.problems.append(
            f"the driver supports CUDA {driver} but PyTorch was built for CUDA {built}: "
            "update the NVIDIA driver or install a PyTorch build for an older CUDA"
        )
    elif built and driver and _vtuple(driver) < _vtuple(built):
        rep.notes.append(
            f"driver CUDA {driver} is older than PyTorch's CUDA {built}; minor-version "
            "compatibility usually covers this"
        )
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        try:
            free, total = torch.cuda.mem_get_info(i)
        except RuntimeError as exc:
            rep.problems.append(f"GPU {i}: cannot query memory ({exc})")
            free, total = 0, props.total_memory
        rep.gpus.append(
            {
                "index": i,
                "name": props.name,
                "capability": f"{props.major}.{props.minor}",
                "free_gib": free / 2**30,
                "total_gib": total / 2**30,
            }
        )
        arch = f"sm_{props.major}{props.minor}"
        arches = torch.cuda.get_arch_list()
        if arches and arch not in arches and not any(a.startswith("compute_") for a in arches):
            rep.problems.append(
                f"GPU {i} ({props.name}, {arch}) is not in this PyTorch build's "
                f"architectures {arches}: install a build that supports it"
            )
    if op_test:
        _op_test(torch, rep)
    return rep


def _op_test(torch: Any, rep: DoctorReport) -> None:
    """A matmul and a cuDNN convolution on GPU 0, checked against the CPU."""
    try:
        a = torch.randn(64, 64)
        b = torch.randn(64, 64)
        ref = a @ b
        got = (a.cuda() @ b.cuda()).cpu()
        x = torch.randn(1, 3, 16, 16)
        w = torch.randn(4, 3, 3, 3)
        conv_ref = torch.nn.functional.conv2d(x, w)
        conv = torch.nn.functional.conv2d(x.cuda(), w.cuda()).cpu()
        torch.cuda.synchronize()
        ok = torch.allclose(ref, got, atol=1e-2, rtol=1e-2) and torch.allclose(
            conv_ref, conv, atol=1e-2, rtol=1e-2
        )
        rep.facts["CUDA op test"] = "passed (matmul + cuDNN conv)" if ok else "WRONG RESULTS"
        if not ok:
            rep.problems.append("a CUDA matmul/convolution gave wrong results: driver or GPU fault")
    except RuntimeError as exc:
        rep.facts["CUDA op test"] = "failed"
        rep.problems.append(
            f"a tiny CUDA op failed ({str(exc).splitlines()[0]}): usually a driver/CUDA/cuDNN "
            "mismatch; reinstall PyTorch for your driver's CUDA version"
        )


def _cudnn_str(v: int) -> str:
    """cuDNN's integer version as text: ``92400 -> 9.24.0`` (9.x), ``8902 -> 8.9.2`` (8.x)."""
    if v >= 10000:
        return f"{v // 10000}.{(v % 10000) // 100}.{v % 100}"
    return f"{v // 1000}.{(v % 1000) // 100}.{v % 100}"


def _vtuple(v: str) -> tuple[int, ...]:
    out = []
    for part in v.split(".")[:2]:
        digits = "".join(ch for ch in part if ch.isdigit())
        out.append(int(digits or 0))
    return tuple(out)
