"""Which step path a config runs on a device, the optimizers each path needs, and the eager fast path.

Paths:

- ``eager``: the trainer's own fp32 step (``Trainer.critic_step`` / ``generator_step``), untouched.
- ``fast-eager``: ``step.iteration`` run eagerly: mixed precision and/or lazy penalties, on any device.
- ``graph``: ``step.iteration`` captured in one CUDA graph (``graph.GraphedIteration``); CUDA only, and not
  with fp16, whose ``GradScaler`` reads its overflow flag on the host between steps. Under ``torchrun`` the
  gradients' NCCL ``all_reduce`` is captured with the rest of the iteration.

``step_mode="auto"`` takes the graph where it is supported and eager otherwise, silently; an explicit
``step_mode="graph"`` that cannot be honoured falls back to eager with a warning that says why.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from wgangp.config import TrainConfig
from wgangp.distributed import Shard, collective_backend
from wgangp.errors import UserError
from wgangp.fast.graph import GraphedIteration
from wgangp.fast.lazy import lazy_adam_hyperparameters, penalty_schedule
from wgangp.fast.step import Networks, StepSpec, iteration

StepPath = Literal["eager", "fast-eager", "graph"]

__all__ = ["FastIteration", "StepPath", "build_fast_iteration", "build_optimizer", "choose_step_path"]


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


def build_optimizer(
    config: TrainConfig,
    params: Iterable[nn.Parameter],
    lr: float,
    *,
    path: StepPath,
    device: torch.device,
    regularised: bool,
) -> torch.optim.Optimizer:
    """The optimizer for one network on ``path``.

    The graph path needs ``Adam(capturable=True)`` (its step count lives on the GPU) and a tensor learning
    rate (a float would be baked into the captured kernels, and the lr schedule would stop acting). fp16
    takes a fused Adam, so ``GradScaler.step`` hands it the overflow flag instead of reading it on the host.
    ``regularised`` marks the critic's optimizer, which the lazy Adam rescale applies to.
    """
    betas = (config.beta1, config.beta2)
    if regularised and config.lazy_adam_rescale and config.penalty_every > 1 and config.optimizer == "adam":
        lr, betas = lazy_adam_hyperparameters(lr, betas, config.penalty_every)
    if config.optimizer == "rmsprop":
        if path == "graph":
            return torch.optim.RMSprop(params, lr=torch.tensor(lr, device=device), capturable=True)
        return torch.optim.RMSprop(params, lr=lr)
    if path == "graph":
        return torch.optim.Adam(
            params, lr=torch.tensor(lr, device=device), betas=betas, capturable=True, fused=True
        )
    # Fused Adam: one kernel per step on CUDA; for fp16 also the scaler's overflow flag stays on the device.
    fused = device.type == "cuda" or config.precision == "fp16"
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=fused or None)


@dataclass
class FastIteration:
    """``step.iteration`` fed by a sampler of real batches, eagerly or through a CUDA graph.

    Keeps the lazy-penalty clock: generator iteration ``step`` has critic steps ``step·n_critic`` onwards.
    On the graph path the host draws the next batches while the GPU still replays the previous iteration.
    """

    nets: Networks
    spec: StepSpec
    draw_real: Callable[[], Tensor]
    graphed: GraphedIteration | None = None

    def __call__(self, step: int) -> dict[str, Tensor]:
        # [n_critic, n_r, ...]: this process's rows of each global batch (all B rows with one process)
        reals = torch.stack([self.draw_real() for _ in range(self.spec.n_critic)])
        schedule = penalty_schedule(step * self.spec.n_critic, self.spec.n_critic, self.spec.penalty_every)
        if self.graphed is not None:
            return self.graphed(reals, schedule)
        return iteration(self.nets, self.spec, reals, schedule)

    def reset(self) -> None:
        if self.graphed is not None:
            self.graphed.reset()


def build_fast_iteration(
    config: TrainConfig,
    path: StepPath,
    nets: Networks,
    draw_real: Callable[[], Tensor],
    shard: Shard | None = None,
) -> FastIteration | None:
    """The fast iteration for ``path``, or ``None`` for the trainer's own eager step."""
    if path == "eager":
        return None
    if path == "graph":
        spec = StepSpec.from_config(config, autocast_cache=False, shard=shard)
        return FastIteration(nets, spec, draw_real, GraphedIteration(nets, spec))
    return FastIteration(nets, StepSpec.from_config(config, shard=shard), draw_real)
