"""The run loop's own state: the log window and the best eval metric, checkpointed with the trainer."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from wgangp.step.update import accumulate

__all__ = ["BEST_METRICS", "Bookkeeping"]

# best.pt is kept by the first of these an eval reports; lower is better
BEST_METRICS = ("fd", "w1", "swd_mean", "js4", "spectral_w1")


class Bookkeeping:
    """Checkpointed with the trainer, so a resumed run logs exactly what an unbroken one would.

    ``window`` sums each stat since the last log row (a key can be missing from a step whose update was
    skipped, hence the per-key counts); ``best`` is the best eval value of :data:`BEST_METRICS` so far.
    """

    def __init__(self) -> None:
        self.window: dict[str, Tensor] = {}
        self.counts: dict[str, int] = {}
        self.best: float | None = None
        self.seconds = 0.0  # training time before this process (resume)

    def add(self, stats: dict[str, Tensor]) -> None:
        accumulate(self.window, self.counts, stats)

    def means(self) -> dict[str, float]:
        """Window means as floats (the host sync of a log step), and a fresh window."""
        row = {key: float(value) / self.counts[key] for key, value in self.window.items()}
        self.window, self.counts = {}, {}
        return row

    def improves(self, metrics: dict[str, float]) -> bool:
        value = next((metrics[key] for key in BEST_METRICS if key in metrics), None)
        if value is None or not math.isfinite(value) or (self.best is not None and value >= self.best):
            return False
        self.best = value
        return True

    def state_dict(self, seconds: float) -> dict[str, Any]:
        return {
            "window": {k: v.detach().cpu() for k, v in self.window.items()},
            "counts": dict(self.counts),
            "best": self.best,
            "seconds": seconds,
        }

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.window = {k: v.to(device) for k, v in state["window"].items()}
        self.counts = dict(state["counts"])
        self.best = state["best"]
        self.seconds = float(state["seconds"])
