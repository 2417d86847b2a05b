"""A whole generator iteration (n_critic critic steps with the penalty + one generator step) as one CUDA graph.

Small GAN models are launch-bound: a toy iteration is ~1000 kernel launches of a few microseconds each.
Replaying them as one captured graph removes the launch overhead. ``make_graphed_callables`` cannot do
this (it does not support double backward); capturing the *whole* iteration with ``torch.cuda.graph``
can, given:

- static inputs: the real batches ``[n_critic, B, ...]`` (and a conditional run's labels
  ``[n_critic, B]``, in a second buffer) are copied into one device buffer before each replay (from pinned host memory, without blocking the host: the next batches are drawn while the GPU
  works);
- ``Adam(capturable=True)`` with a tensor lr (step counts and lr on the GPU; see ``paths.build_optimizer``);
- graph-safe RNG: the noise ``torch.Generator`` is registered with the graph, so each replay draws fresh z
  and ε from PyTorch's Philox at the generator's current offset, the same numbers eager code would draw;
- warm-up on a side stream before capture (cuBLAS handles, optimizer state, the allocator). Warm-up
  iterations are real training iterations, run eagerly, so the trajectory is eager's up to rounding;
- one graph per (input shape, penalty schedule): lazy penalties make k different iterations, and a new
  batch shape is captured anew;
- under ``torchrun`` (NCCL), the gradients' ``all_reduce`` of every update is captured too: NCCL kernels
  replay like any other (torch supports collectives in graphs since 1.10). The warm-up has created the
  communicator; the capture starts on an idle device, so no warm-up collective is still in flight while
  NCCL's watchdog thread polls it. Every rank captures and replays the same sequence of collectives.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from wgangp.step.spec import StepSpec
from wgangp.step.state import TrainState
from wgangp.step.update import iteration

__all__ = ["GraphedIteration"]

_Key = tuple[tuple[int, ...], torch.dtype, tuple[bool, ...], bool]


@dataclass
class _Captured:
    graph: torch.cuda.CUDAGraph
    stats: Tensor  # [n_stats], written by each replay
    keys: list[str]


@dataclass
class GraphedIteration:
    """Runs ``step.iteration`` by replaying a captured CUDA graph; eager for the first ``warmup`` calls per key.

    ``state`` must use capturable optimizers and no GradScaler; ``spec.autocast_cache`` must be False.
    """

    state: TrainState
    spec: StepSpec
    warmup: int = 3
    _buffers: dict[tuple[tuple[int, ...], torch.dtype], Tensor] = field(default_factory=dict)
    _graphs: dict[_Key, _Captured] = field(default_factory=dict)
    _seen: dict[_Key, int] = field(default_factory=dict)
    _side: torch.cuda.Stream | None = None

    def __post_init__(self) -> None:
        if self.state.critic_scaler is not None or self.state.generator_scaler is not None:
            raise ValueError("a CUDA graph cannot hold a GradScaler step (fp16): use the eager path")
        if self.spec.autocast_cache:
            raise ValueError("capture needs StepSpec(autocast_cache=False)")

    def reset(self) -> None:
        """Drop every captured graph, e.g. after optimizer state was replaced by a checkpoint."""
        self._graphs.clear()
        self._seen.clear()

    def _buffer(self, reals: Tensor) -> Tensor:
        """The static device buffer of ``reals``' shape and dtype, holding a copy of ``reals``."""
        key = (tuple(reals.shape), reals.dtype)
        if key not in self._buffers:
            device = next(self.state.critic.parameters()).device
            self._buffers[key] = torch.empty(reals.shape, dtype=reals.dtype, device=device)
        static = self._buffers[key]
        if reals.device.type == "cpu" and not reals.is_pinned():
            reals = reals.pin_memory()
        static.copy_(reals, non_blocking=True)  # ordered on the stream before the replay that reads it
        return static

    def __call__(
        self, reals: Tensor, schedule: tuple[bool, ...], labels: Tensor | None = None
    ) -> dict[str, Tensor]:
        """One iteration on ``reals [n_critic, B, ...]`` (host or device) with the penalty per ``schedule``;
        ``labels [n_critic, B]`` for a conditional run (int64, in their own static buffer)."""
        static = self._buffer(reals)
        static_labels = None if labels is None else self._buffer(labels)
        key: _Key = (tuple(static.shape), static.dtype, schedule, labels is not None)
        captured = self._graphs.get(key)
        if captured is None:
            seen = self._seen.get(key, 0)
            if seen < self.warmup:
                self._seen[key] = seen + 1
                return self._eager(static, schedule, static_labels)
            captured = self._capture(static, schedule, static_labels)
            self._graphs[key] = captured
        captured.graph.replay()
        # One copy out of the graph's output buffer, which the next replay overwrites.
        values = captured.stats.clone().unbind(0)
        return dict(zip(captured.keys, values, strict=True))

    def _eager(self, static: Tensor, schedule: tuple[bool, ...], labels: Tensor | None) -> dict[str, Tensor]:
        """A real iteration, run on a side stream as capture's warm-up requires."""
        if self._side is None:
            self._side = torch.cuda.Stream(device=static.device)
        current = torch.cuda.current_stream(static.device)
        self._side.wait_stream(current)
        with torch.cuda.stream(self._side):
            stats = iteration(self.state, self.spec, static, schedule, labels=labels)
        current.wait_stream(self._side)
        for value in stats.values():
            value.record_stream(current)
        return stats

    def _capture(self, static: Tensor, schedule: tuple[bool, ...], labels: Tensor | None) -> _Captured:
        graph = torch.cuda.CUDAGraph()
        if self.state.noise is not torch.cuda.default_generators[static.device.index or 0]:
            # The default generator is registered by torch itself; our own stream must be registered.
            graph.register_generator_state(self.state.noise)
        # Grads from the warm-up live outside the graph's pool: drop them so capture allocates its own.
        self.state.critic_opt.zero_grad(set_to_none=True)
        self.state.generator_opt.zero_grad(set_to_none=True)
        if self.spec.shard.distributed:
            torch.cuda.synchronize(static.device)  # no warm-up collective in flight during capture
        with torch.cuda.graph(graph):
            stats = iteration(self.state, self.spec, static, schedule, labels=labels)
            keys = list(stats)
            packed = torch.stack([stats[k].float() for k in keys])  # [n_stats]
        return _Captured(graph, packed, keys)
