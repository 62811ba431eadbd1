"""``--batch auto``: the largest batch that fits the GPU, measured rather than guessed.

On CUDA, :func:`auto_batch` runs a forward+backward pass at a few batch sizes, fits
``memory = fixed + per_image * batch`` to the peaks, and picks the batch that fills
``fraction`` of the memory that was free. A batch size that runs out of memory stops the
probing (the caches are emptied and the fit uses the sizes that fitted) instead of crashing;
if even the smallest probe fails the message says so. On the CPU there is no memory to
measure: :data:`CPU_DEFAULT_BATCH` is used and the reason is returned for the log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

CPU_DEFAULT_BATCH = 8
"""Batch used by ``--batch auto`` on the CPU: small enough for a laptop's RAM at 640 px."""

PROBE_SIZES = (1, 2, 4, 8, 16)


def auto_batch(
    model: torch.nn.Module,
    *,
    imgsz: int,
    device: torch.device,
    fraction: float = 0.7,
    max_batch: int = 256,
    step: Callable[[torch.nn.Module, torch.Tensor], None] | None = None,
) -> tuple[int, str]:
    """``(batch, reason)`` for training ``model`` at ``imgsz`` on ``device``.

    ``step(model, images)`` runs one training-like forward+backward on ``images``
    ``(B, 3, imgsz, imgsz)`` float; the default sums the raw outputs and back-propagates.
    The model's gradients are cleared afterwards.
    """
    import torch

    if device.type != "cuda":
        return CPU_DEFAULT_BATCH, f"--batch auto on the CPU: using {CPU_DEFAULT_BATCH}"
    run_step = step or _default_step
    free, total = torch.cuda.mem_get_info(device)
    was_training = model.training
    model.train()
    points: list[tuple[int, float]] = []
    failed_at: int | None = None
    for b in PROBE_SIZES:
        try:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            x = torch.rand(b, 3, imgsz, imgsz, device=device)
            run_step(model, x)
            torch.cuda.synchronize(device)
            points.append((b, float(torch.cuda.max_memory_allocated(device) - base)))
            del x
        except torch.cuda.OutOfMemoryError:
            failed_at = b
            break
        finally:
            model.zero_grad(set_to_none=True)
    torch.cuda.empty_cache()
    model.train(was_training)
    if not points:
        raise _oom_error(imgsz, free)
    batch = fit_batch(points, budget=fraction * free, max_batch=max_batch)
    if failed_at is not None:
        batch = min(batch, max(points[-1][0], 1))
    gib = 2**30
    reason = (
        f"--batch auto: {batch} (GPU has {free / gib:.1f} of {total / gib:.1f} GiB free; "
        f"measured at batch {', '.join(str(p[0]) for p in points)}"
        + (f"; out of memory at {failed_at}" if failed_at else "")
        + f"; aiming at {fraction:.0%} of free memory)"
    )
    return batch, reason


def fit_batch(points: list[tuple[int, float]], *, budget: float, max_batch: int = 256) -> int:
    """Largest batch whose linearly extrapolated memory stays within ``budget`` bytes.

    ``points`` are ``(batch, peak_bytes)``; with one point the memory is taken as
    proportional to the batch. The answer is at least 1 and at most ``max_batch``.
    """
    if len(points) == 1:
        b, m = points[0]
        per = m / b
        fixed = 0.0
    else:
        xs = [float(p[0]) for p in points]
        ys = [p[1] for p in points]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        sxx = sum((x - mx) ** 2 for x in xs)
        per = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
        fixed = my - per * mx
        if per <= 0:
            per, fixed = max(ys) / max(xs), 0.0
    batch = int((budget - fixed) // per) if per > 0 else max_batch
    return max(1, min(batch, max_batch))


def _default_step(model: torch.nn.Module, images: torch.Tensor) -> None:
    out = model(images)
    tensors = out if isinstance(out, list | tuple) else [out]
    loss = sum(t.float().sum() for t in tensors)
    loss.backward()  # type: ignore[union-attr]


def _oom_error(imgsz: int, free: float) -> Exception:
    from detforge.errors import DetforgeError

    return DetforgeError(
        f"even a batch of 1 at --imgsz {imgsz} does not fit the GPU's "
        f"{free / 2**30:.1f} GiB of free memory: lower --imgsz, use a smaller --model, or "
        "free the GPU (see 'detforge doctor')"
    )
