"""Which step path a config runs on a device, and the iteration that feeds real batches to the update.

Paths:

- ``eager``: ``update.iteration`` in fp32 with the penalty on every critic step; the only path that takes
  ``skip_nonfinite``'s per-update host check.
- ``fast-eager``: the same function run eagerly with mixed precision, lazy penalties and/or compile.
- ``graph``: the same function captured in one CUDA graph (``graph.GraphedIteration``); CUDA only, and not
  with fp16, whose ``GradScaler`` reads its overflow flag on the host between steps. Under ``torchrun`` the
  gradients' NCCL ``all_reduce`` is captured with the rest of the iteration.

``step_mode="auto"`` takes the graph where it is supported and eager otherwise, silently; an explicit
``step_mode="graph"`` that cannot be honoured falls back to eager with a warning that says why.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from wgangp.config import TrainConfig
from wgangp.distributed import Shard, collective_backend
from wgangp.errors import UserError
from wgangp.step.graph import GraphedIteration
from wgangp.step.lazy import penalty_schedule
from wgangp.step.spec import StepSpec
from wgangp.step.state import TrainState
from wgangp.step.update import UpdateGuard, iteration

StepPath = Literal["eager", "fast-eager", "graph"]

__all__ = ["Iteration", "StepPath", "build_iteration", "choose_step_path", "graph_unsupported_reason"]


def graph_unsupported_reason(
    config: TrainConfig, device: torch.device, shard: Shard | None = None
) -> str | None:
    """Why a whole-iteration CUDA graph cannot run ``config`` on ``device``, or ``None`` if it can."""
    if device.type != "cuda":
        return f"CUDA graphs need a CUDA device; this run is on {device.type}"
    if shard is not None and shard.distributed and collective_backend() != "nccl":
        # NCCL collectives are captured into the graph (torch's test_allreduce_in_cudagraph); gloo's are not.
        backend = collective_backend()
        return f"several processes on the {backend} backend: a graph captures NCCL collectives only"
    if config.skip_nonfinite:
        return "skip_nonfinite checks every update on the host"
    if config.precision == "fp16":
        return "fp16's GradScaler checks for overflow on the host between steps, which a graph cannot"
    return None


def choose_step_path(
    config: TrainConfig, device: torch.device, shard: Shard | None = None
) -> tuple[StepPath, str | None]:
    """The path for ``config`` on ``device`` and, when an asked-for graph falls back, the reason."""
    if config.skip_nonfinite and _needs_fast_eager(config):
        raise UserError(
            "skip_nonfinite needs the plain eager step: precision=fp32, penalty_every=1, compile=false "
            "(fp16 already skips overflowing steps through its GradScaler)"
        )
    if config.compile and config.precision == "fp16":
        warnings.warn("compile=true is not used with fp16: the GradScaler recipe runs eagerly", stacklevel=2)
    reason = graph_unsupported_reason(config, device, shard)
    if config.step_mode == "graph" or (config.step_mode == "auto" and reason is None):
        if reason is None:
            return "graph", None
        message = f"step_mode=graph: falling back to eager, since {reason}"
        warnings.warn(message, stacklevel=2)
        fallback: StepPath = "fast-eager" if _needs_fast_eager(config) else "eager"
        return fallback, message
    return ("fast-eager" if _needs_fast_eager(config) else "eager"), None


def _needs_fast_eager(config: TrainConfig) -> bool:
    return config.precision != "fp32" or config.penalty_every > 1 or config.compile


@dataclass
class Iteration:
    """:func:`~wgangp.step.update.iteration` fed by a sampler of real batches, eagerly or through a CUDA graph.

    Keeps the lazy-penalty clock: generator iteration ``step`` has critic steps ``step·n_critic`` onwards.
    ``draw_real`` returns a batch, or ``(batch, labels)`` for a conditional run (stacked ``[n_critic, B]``).
    On the graph path the host draws the next batches while the GPU still replays the previous iteration.
    ``guard`` (``skip_nonfinite``) is for the eager fp32 path, which :func:`choose_step_path` enforces.
    """

    state: TrainState
    spec: StepSpec
    draw_real: Callable[[], Tensor | tuple[Tensor, Tensor]]
    graphed: GraphedIteration | None = None
    guard: UpdateGuard | None = None

    def __call__(self, step: int) -> dict[str, Tensor]:
        draws = [self.draw_real() for _ in range(self.spec.n_critic)]
        labels: Tensor | None = None
        if self.spec.conditional:
            pairs = [draw for draw in draws if isinstance(draw, tuple)]
            assert len(pairs) == len(draws), "a conditional run's sampler returns (batch, labels)"
            # [n_critic, n_r, ...] and [n_critic, n_r]: this process's rows of each global batch
            reals, labels = torch.stack([x for x, _ in pairs]), torch.stack([y for _, y in pairs])
        else:
            reals = torch.stack([draw for draw in draws if isinstance(draw, Tensor)])
        schedule = penalty_schedule(step * self.spec.n_critic, self.spec.n_critic, self.spec.penalty_every)
        if self.graphed is not None:
            return self.graphed(reals, schedule, labels)
        return iteration(self.state, self.spec, reals, schedule, labels=labels, guard=self.guard)

    def reset(self) -> None:
        if self.graphed is not None:
            self.graphed.reset()


def build_iteration(
    config: TrainConfig,
    path: StepPath,
    state: TrainState,
    draw_real: Callable[[], Tensor | tuple[Tensor, Tensor]],
    shard: Shard | None = None,
    guard: UpdateGuard | None = None,
    n_classes: int | None = None,
) -> Iteration:
    """The iteration for ``path``: the same update, captured in a CUDA graph on ``graph``.

    ``n_classes``: a conditional run's K when the config leaves it to the data.
    """
    if path == "graph":
        spec = StepSpec.from_config(config, autocast_cache=False, shard=shard, n_classes=n_classes)
        return Iteration(state, spec, draw_real, GraphedIteration(state, spec))
    spec = StepSpec.from_config(config, shard=shard, n_classes=n_classes)
    return Iteration(state, spec, draw_real, guard=guard)
