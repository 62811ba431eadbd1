"""What the trainer does about non-finite losses (the guide's "big/diverging/NaN losses").

The policy, one step at a time:

1. a step whose loss (or gradient norm) is NaN/inf is skipped -- no weight update -- and the
   image paths of its batch are logged;
2. ``skip_limit`` such steps in a row roll the model, optimizer and EMA back to the last good
   checkpoint and multiply the LR by ``lr_factor``;
3. after ``max_rollbacks`` rollbacks training stops with a diagnosis: NaNs that start at the
   very beginning or keep coming from the same images point at the data (run
   ``detforge check``); NaNs after a stretch of good steps point at the learning rate.

:class:`NanGuard` holds the counters; the trainer asks it what to do with each step.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

Action = Literal["ok", "skip", "rollback", "stop"]


@dataclass
class NanGuard:
    """Counters of non-finite steps. ``observe`` returns what the trainer must do."""

    skip_limit: int = 5
    max_rollbacks: int = 3
    lr_factor: float = 0.5
    streak: int = 0
    rollbacks: int = 0
    total_bad: int = 0
    good_steps: int = 0
    first_bad_step: int | None = None
    bad_paths: Counter[str] = field(default_factory=Counter)
    bad_batches: int = 0

    def observe(self, finite: bool, step: int, paths: Sequence[str]) -> Action:
        """Record one step (``finite``: loss and gradients finite) and decide."""
        if finite:
            self.streak = 0
            self.good_steps += 1
            return "ok"
        self.streak += 1
        self.total_bad += 1
        self.bad_batches += 1
        self.bad_paths.update(str(p) for p in paths)
        if self.first_bad_step is None:
            self.first_bad_step = step
        if self.streak < self.skip_limit:
            return "skip"
        self.streak = 0
        if self.rollbacks >= self.max_rollbacks:
            return "stop"
        self.rollbacks += 1
        return "rollback"

    @property
    def lr_scale(self) -> float:
        """LR multiplier after the rollbacks so far."""
        return float(self.lr_factor**self.rollbacks)

    def diagnosis(self, lr: float) -> str:
        """One paragraph saying whether the data or the LR is the likelier cause, and what to do."""
        suspects = [p for p, n in self.bad_paths.most_common(5) if n >= 2]
        early = self.good_steps < 10
        head = (
            f"training stopped: the loss was NaN/inf in {self.total_bad} step(s) "
            f"even after {self.rollbacks} rollback(s) with the LR lowered to {lr:.3g}. "
        )
        if suspects and (self.bad_batches <= 2 * len(self.bad_paths) or early):
            return head + (
                "The same images keep appearing in the bad batches, which points at the DATA: "
                + ", ".join(suspects)
                + ". Run 'detforge check' on the dataset (boxes outside the image, zero-area "
                "boxes, wrong class ids, corrupt images) and fix or --skip-bad them."
            )
        if early:
            return head + (
                "It failed from the very first steps, which points at the DATA (boxes with "
                "zero area or outside [0, 1], class ids beyond the names file, corrupt images): "
                "run 'detforge check' on the dataset. If the check is clean, lower --lr by 10x "
                "or run 'detforge lr-find'."
            )
        return head + (
            f"It ran {self.good_steps} good steps first, which points at the LEARNING RATE: "
            "lower --lr by 10x (or run 'detforge lr-find'), lengthen --warmup-epochs, or lower "
            "--clip-grad. Images of the first bad batches: "
            + ", ".join(p for p, _ in self.bad_paths.most_common(3))
        )
