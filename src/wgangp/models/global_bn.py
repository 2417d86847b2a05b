"""BatchNorm over the global batch of a data-parallel job: N processes normalise as one process would.

Under ``torchrun`` every process holds ``n_r`` rows of a global batch of ``N = Σ_r n_r``; plain BatchNorm
normalises each shard with its own statistics (DDP without SyncBatchNorm), so a generator with BatchNorm
computes a different function on N processes than on one. :class:`GlobalBatchNorm1d` / ``2d`` use, in
training mode, the statistics of all ranks' rows (torch's ``nn.SyncBatchNorm`` does this on CUDA only):

    μ = Σ_r Σ x_r / M,    σ² = Σ_r Σ (x_r − μ)² / M,    y = γ·(x − μ)/√(σ² + eps) + β

with ``M = Σ_r m_r`` the elements per channel over all ranks (``m_r = n_r·H·W``), shards of any sizes.
Two passes, one ``all_reduce`` each (the sums, then the squared deviations from the global mean), in fp32
at least (also under bf16 autocast), the output in the input's dtype: as stable as a one-process two-pass
variance, with traffic of ``C + 1`` numbers per pass whatever the number of processes. ``running_mean``
and ``running_var`` follow ``nn.BatchNorm`` on the whole batch (μ and the unbiased ``σ²·M/(M−1)``), so
they are the same on every rank; ``state_dict`` keys are ``nn.BatchNorm``'s, so checkpoints move freely
between 1 and N processes. Eval mode, one process, or no process group: plain ``nn.BatchNorm``.

Nothing here reads a value back to the host, so the layer can be captured in a CUDA graph (NCCL).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = [
    "GlobalBatchNorm1d",
    "GlobalBatchNorm2d",
    "global_batch_norm",
    "local_batch_statistics",
    "to_global_batchnorm",
]


class _SumOverRanks(torch.autograd.Function):
    """``Σ_r t_r`` over all processes, and ``Σ_r c_r`` of the counts, with the gradient of the global loss.

    Every rank ``r`` back-propagates only its own shard loss ``L_r`` (a mean over its ``n_r`` rows), and
    the trainer sums the parameter gradients weighted by ``w_r = n_r / N`` (``all_reduce_gradients``), so
    the objective is ``L = Σ_r w_r L_r``. The sum ``T`` feeds every rank's ``L_r``: ``∂L/∂t_s = ∂L/∂T =
    Σ_r w_r g_r`` with ``g_r = ∂L_r/∂T`` the gradient rank ``r`` holds. Rank ``s``'s gradients are later
    multiplied by ``w_s``, so its backward returns ``Σ_r w_r g_r / w_s``: then every gradient on rank ``s``
    is ``(1/w_s)·∂L/∂(its tensor)`` (by induction through the graph) and the weighted sum over ranks is
    exactly ``∂L/∂θ``. Here ``w_s = c_s / Σ_r c_r`` from the counts (the share of rows; every rank
    has at least one). The backward is one more ``all_reduce``, which every rank reaches in the same order
    since all run the same graph.
    """

    @staticmethod
    def forward(ctx: Any, local: Tensor, count: Tensor) -> tuple[Tensor, Tensor]:
        packed = torch.cat([local, count])  # [K + 1]: one collective for the sums and the count
        dist.all_reduce(packed)
        total, total_count = packed.split([local.shape[0], 1])
        ctx.save_for_backward(count / total_count)  # w_s, this rank's share
        ctx.mark_non_differentiable(total_count)
        return total, total_count

    @staticmethod
    def backward(ctx: Any, grad: Tensor, _grad_count: Tensor) -> tuple[Tensor, None]:
        (share,) = ctx.saved_tensors
        weighted = grad * share  # w_s g_s
        dist.all_reduce(weighted)  # Σ_r w_r g_r
        return weighted / share, None


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def global_batch_norm(
    x: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None,
    bias: Tensor | None,
    *,
    momentum: float | None,
    eps: float,
    num_batches_tracked: Tensor | None = None,
) -> Tensor:
    """Training-mode BatchNorm with the statistics of every process's ``x``: ``[n_r, C, *] -> [n_r, C, *]``.

    ``y = γ·(x − μ)/√(σ² + eps) + β`` with μ, σ² (biased) per channel over all ranks' rows; the running
    buffers, when given, are updated in place as ``nn.BatchNorm`` would on the whole batch
    (``r ← (1 − m)·r + m·stat``, the unbiased variance; ``momentum=None``: cumulative average, with
    ``num_batches_tracked`` already counted). Needs an initialised process group; every rank must call it.
    """
    dims = [0, *range(2, x.ndim)]  # all but the channels
    shape = [1, x.shape[1]] + [1] * (x.ndim - 2)  # per-channel values broadcast over [n, C, *]
    stat_dtype = torch.promote_types(x.dtype, torch.float32)  # fp32 statistics also for bf16/fp16 inputs
    xf = x.to(stat_dtype)
    count = xf.new_full((1,), x.numel() // x.shape[1])  # m_r: elements per channel here; no host sync
    sums, total = _SumOverRanks.apply(xf.sum(dims), count)  # [C], [1]
    mean = sums / total  # [C]
    centred = xf - mean.view(shape)
    squares, _ = _SumOverRanks.apply(centred.square().sum(dims), count)  # [C]
    var = squares / total  # [C], biased: the one that normalises
    y = centred * torch.rsqrt(var + eps).view(shape)
    if weight is not None:
        y = y * weight.view(shape)
    if bias is not None:
        y = y + bias.view(shape)
    if running_mean is not None and running_var is not None:
        with torch.no_grad():
            if momentum is None:
                assert num_batches_tracked is not None
                factor: Tensor | float = 1.0 / num_batches_tracked.to(stat_dtype)
            else:
                factor = momentum
            unbiased = squares / (total - 1)  # nn.BatchNorm's running variance (M = 1 gives inf, as there)
            running_mean.lerp_(mean.detach().to(running_mean.dtype), factor)
            running_var.lerp_(unbiased.detach().to(running_var.dtype), factor)
    return y.to(x.dtype)


class _GlobalBatchNorm(_BatchNorm):
    """``nn.BatchNorm`` whose training-mode statistics are the global batch's under ``torch.distributed``."""

    sync = True  # off inside local_batch_statistics

    def forward(self, input: Tensor) -> Tensor:
        if not (self.training and self.sync and _distributed()):
            return super().forward(input)
        self._check_input_dim(input)
        tracking = self.track_running_stats and self.running_mean is not None
        if tracking and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
        return global_batch_norm(
            input,
            self.running_mean if tracking else None,
            self.running_var if tracking else None,
            self.weight,
            self.bias,
            momentum=self.momentum,
            eps=self.eps,
            num_batches_tracked=self.num_batches_tracked,
        )


class GlobalBatchNorm1d(_GlobalBatchNorm, nn.BatchNorm1d):
    """``nn.BatchNorm1d`` (``[N, C]`` or ``[N, C, L]``) with global-batch statistics under ``torchrun``.

    >>> GlobalBatchNorm1d(4)(torch.randn(3, 4)).shape  # one process: exactly nn.BatchNorm1d
    torch.Size([3, 4])
    """


class GlobalBatchNorm2d(_GlobalBatchNorm, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` (``[N, C, H, W]``) with global-batch statistics under ``torchrun``."""


_GLOBAL: dict[type[nn.Module], type[_GlobalBatchNorm]] = {
    nn.BatchNorm1d: GlobalBatchNorm1d,
    nn.BatchNorm2d: GlobalBatchNorm2d,
}


def to_global_batchnorm(module: nn.Module) -> nn.Module:
    """``module`` with every ``nn.BatchNorm1d``/``2d`` replaced by its global version, in place.

    The new layers hold the same ``Parameter`` and buffer objects (optimizers, EMA copies and
    ``state_dict`` keys are unaffected); returns the new layer when ``module`` is itself a BatchNorm.
    """
    kind = _GLOBAL.get(type(module))
    if kind is not None:
        assert isinstance(module, _BatchNorm)
        layer = kind(
            module.num_features,
            module.eps,
            module.momentum,
            affine=module.affine,
            track_running_stats=module.track_running_stats,
            device="meta",  # storage of its own is never needed: the old layer's tensors move over
        )
        for name in ("weight", "bias"):
            setattr(layer, name, getattr(module, name))
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            layer.register_buffer(name, getattr(module, name))
        return layer.train(module.training)
    for name, child in module.named_children():
        converted = to_global_batchnorm(child)
        if converted is not child:
            setattr(module, name, converted)
    return module


@contextlib.contextmanager
def local_batch_statistics(module: nn.Module) -> Iterator[None]:
    """Inside: ``module``'s BatchNorm layers normalise with the call's own batch and keep their buffers.

    For forwards that only some ranks run (rank 0's logging probe): no collective (so no rank waits for
    the others), and no running-buffer update (so every rank's buffers stay the same). In training mode
    the output is what one process computes on that batch.
    """
    layers = [m for m in module.modules() if isinstance(m, _BatchNorm)]
    saved = [(m.track_running_stats, getattr(m, "sync", None)) for m in layers]
    for m in layers:
        m.track_running_stats = False  # nn.BatchNorm's own switch: batch statistics, buffers untouched
        if isinstance(m, _GlobalBatchNorm):
            m.sync = False
    try:
        yield
    finally:
        for m, (track, sync) in zip(layers, saved, strict=True):
            m.track_running_stats = track
            if isinstance(m, _GlobalBatchNorm):
                m.sync = bool(sync)
