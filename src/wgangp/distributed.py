"""Data-parallel training on ``torch.distributed``: N processes (``torchrun``) compute one process's step.

Design (the reasons, once):

- **Global then slice.** Every process walks the *same* data order and draws the same global z and ε
  from identically seeded streams (data ``seed+2``, noise ``seed+1`` on every rank; no per-rank seeds are
  needed, since nothing is drawn per rank), then keeps its own rows ``Shard.rows(B)``. So N processes
  compute exactly the terms one process computes, split by rows. The data samplers read (and, for an
  image folder, decode) only this process's rows of each batch — the epoch order and the augmentations'
  random numbers are drawn for the whole batch, as a ``DistributedSampler`` reshuffled per epoch would
  split it; the price is drawing B rows of noise where B/N would do, small next to the double backward.
- **No DDP wrapper; one flat ``all_reduce`` per update.** Parameters are broadcast from rank 0 once; after
  each ``backward()`` the gradients are flattened into one buffer, weighted by this shard's share of the
  global batch ``n_r / B`` and summed over processes (as stylegan3's training loop does). DDP would need
  every parameter on each loss graph (the generator step freezes the critic), hooks into ``backward()``
  that a captured CUDA graph and ``autograd.grad`` of the penalty do not mix well with, and it cannot
  weight uneven shards. The weighted sum is exact for uneven splits: every loss term (the critic's means,
  the per-sample penalty's mean, the generator's mean) is a mean over the batch, and the global mean is
  ``Σ_r (n_r / B) · mean_r``.
- **BatchNorm** (the DCGAN/ResNet generators; critics have none, checked): with ``sync_batchnorm`` (the
  default) the trainer swaps the generator's layers for ``models.global_bn``'s, which normalise with the
  statistics of the global batch (two ``all_reduce`` per layer and forward: the sums, then the squared
  deviations from the global mean; one per pass in backward, shaped for the weighted gradient sum
  above), so the generator, its running buffers and its gradients are the one-process ones. Without it,
  each shard's own statistics, as DDP without SyncBatchNorm. Rank 0's lone forwards (the grad-norm probe,
  samples) must not reach a collective: samples run in eval mode, the probe under
  ``local_batch_statistics``. Everything else matches one process up to float summation order.
- **EMA, lr schedules, GradScaler**: updated identically on every rank, as parameters and (all-reduced)
  gradients are identical.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar, cast

import torch
import torch.distributed as dist
from torch import Tensor, nn

from wgangp.errors import UserError
from wgangp.penalty import Rows

if TYPE_CHECKING:
    from wgangp.config import TrainConfig

T = TypeVar("T")

__all__ = [
    "Shard",
    "all_reduce_gradients",
    "broadcast_parameters",
    "check_distributed_config",
    "collective_backend",
    "current_shard",
    "init_from_env",
    "reduce_flags",
    "reduce_means",
    "run_on_main",
    "same_on_every_rank",
    "shutdown",
]


@dataclass(frozen=True)
class Shard:
    """This process's place in the job: ``rank`` of ``world_size`` (1 = not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes logs, plots, checkpoints and the summary."""
        return self.rank == 0

    def rows(self, total: int) -> Rows | None:
        """Rows ``⌊total·r/W⌋ : ⌊total·(r+1)/W⌋`` of a global batch of ``total``; ``None`` with one process.

        Shard sizes differ by at most one row when ``W`` does not divide ``total``.

        >>> Shard(1, 2).rows(7)
        Rows(start=3, stop=7, total=7)
        """
        if not self.distributed:
            return None
        return Rows(total * self.rank // self.world_size, total * (self.rank + 1) // self.world_size, total)

    def keep(self, total: int) -> slice | None:
        """``rows(total)`` as a slice (for the data samplers, which draw only these rows)."""
        rows = self.rows(total)
        return None if rows is None else slice(rows.start, rows.stop)

    def take(self, batch: Tensor, dim: int = 0) -> Tensor:
        """This shard's rows of a global batch (along ``dim``)."""
        rows = self.rows(batch.shape[dim])
        return batch if rows is None else batch.narrow(dim, rows.start, rows.stop - rows.start)

    def weight(self, total: int) -> float:
        """``n_r / B``: this shard's share of a global batch of ``total``, the weight of its gradient."""
        rows = self.rows(total)
        return 1.0 if rows is None else (rows.stop - rows.start) / total


def current_shard() -> Shard:
    """The shard of this process, from ``torch.distributed`` (initialised) or a single process."""
    if not (dist.is_available() and dist.is_initialized()):
        return Shard()
    return Shard(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def check_distributed_config(config: TrainConfig, world_size: int) -> None:
    """Refuse the settings whose N-process math would differ from one process's."""
    if world_size <= 1:
        return
    if config.batch_size < world_size:
        raise UserError(
            f"batch_size {config.batch_size} is smaller than the {world_size} processes: each needs one row"
        )
    if config.penalty_fraction < 1.0:
        raise UserError("penalty_fraction < 1 is not supported with several processes (use 1)")
    if config.penalty_at == "dragan":
        raise UserError(
            "penalty_at=dragan uses the std of the whole batch; not supported with several processes"
        )
    if config.skip_nonfinite:
        raise UserError("skip_nonfinite is not supported with several processes (ranks would disagree)")


def init_from_env(config: TrainConfig, *, store: dist.Store | None = None, rank: int = -1) -> Shard:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE``, ``RANK``, ``MASTER_ADDR``...).

    One process (no ``WORLD_SIZE`` or 1): nothing to do. Backend: ``nccl`` when the run is on CUDA, else
    ``gloo``. ``config.dist_timeout`` bounds every collective, so a dead or stuck rank fails the job
    (torchrun then stops the others) instead of hanging it. ``store``: the rendezvous store this process
    already joined (``wgangp.run.launch`` talks through it before the group exists), with its ``rank``.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Shard()
    check_distributed_config(config, world_size)
    if not dist.is_available():
        raise UserError("this PyTorch build has no torch.distributed")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = config.device != "cpu" and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        backend, timeout = "nccl" if cuda else "gloo", timedelta(seconds=config.dist_timeout)
        if store is None:
            dist.init_process_group(backend=backend, timeout=timeout)
        else:
            store.set_timeout(timeout)
            # The prefix init_process_group gives a store it rendezvouses itself (env://).
            group_store = dist.PrefixStore("default_pg", store)
            dist.init_process_group(
                backend=backend, timeout=timeout, store=group_store, rank=rank, world_size=world_size
            )
    return current_shard()


def collective_backend() -> str | None:
    """The process group's backend (``nccl``, ``gloo``), or ``None`` outside ``torch.distributed``."""
    if not (dist.is_available() and dist.is_initialized()):
        return None
    return str(dist.get_backend())


def shutdown(*, finished: bool = False) -> None:
    """Leave the process group (a no-op outside one or when already left).

    ``finished``: the run ended normally on this rank; wait (bounded by ``dist_timeout``) until every rank
    has, so no rank tears its connections down while rank 0 still writes its last files and the others
    would see a closed peer. After an error, leave at once: the others fail at their next collective.
    """
    if dist.is_available() and dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()


def process_device(config_device: str, shard: Shard) -> str:
    """The device of this process: ``auto``/``cuda`` mean ``cuda:LOCAL_RANK`` under ``torchrun``."""
    if shard.distributed and config_device in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{shard.local_rank}"
    return config_device


def run_on_main(shard: Shard, action: Callable[[], object]) -> None:
    """``action`` on rank 0 alone (a directory change); its ``UserError`` is raised on every rank.

    The other ranks wait here for rank 0's verdict, so a refused run directory stops the whole job with
    rank 0's message rather than leaving them at the next collective until the timeout.
    """
    error: UserError | None = None
    if shard.is_main:
        try:
            action()
        except UserError as err:
            error = err
    if shard.distributed:
        verdict: list[object] = [None if error is None else (str(error), error.exit_code)]
        dist.broadcast_object_list(verdict, src=0)
        if error is None and verdict[0] is not None:
            message, code = cast("tuple[str, int]", verdict[0])
            raise UserError(f"rank 0: {message}", exit_code=code)
    if error is not None:
        raise error


def same_on_every_rank(shard: Shard, value: T) -> T:
    """Rank 0's ``value`` on every rank (e.g. a run directory named from the clock)."""
    if not shard.distributed:
        return value
    box: list[object] = [value]
    dist.broadcast_object_list(box, src=0)
    return cast("T", box[0])


@torch.no_grad()
def broadcast_parameters(modules: Iterable[nn.Module]) -> None:
    """Rank 0's parameters and buffers on every rank (once, at start: later updates stay identical)."""
    for module in modules:
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor, src=0)


def all_reduce_gradients(params: Iterable[nn.Parameter], weight: float) -> None:
    """``g ← Σ_r w_r · g_r`` over processes with ``w_r = n_r / B``: the gradient of the global-batch mean.

    One flat buffer and one ``all_reduce`` per update (not one per tensor). A parameter without a gradient
    on this rank counts as zero, so every rank sends the same layout. Capturable in a CUDA graph (NCCL).
    """
    params = [p for p in params if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads]).mul_(weight)  # [Σ numel]
    dist.all_reduce(flat)
    for p, g, chunk in zip(params, grads, flat.split([g.numel() for g in grads]), strict=True):
        if p.grad is None:
            p.grad = chunk.view_as(p)
        else:
            g.copy_(chunk.view(g.shape))


def reduce_flags(flags: list[bool], device: torch.device) -> list[bool]:
    """Each flag true on any rank (one small ``all_reduce``): stop requests and non-finite terms."""
    tensor = torch.tensor([float(f) for f in flags], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return [bool(v) for v in tensor.tolist()]


def reduce_means(row: dict[str, float], weight: float, device: torch.device) -> dict[str, float]:
    """Log-row means over ranks, each weighted by its shard's share (every rank must pass the same keys)."""
    keys = sorted(row)
    values = torch.tensor([row[k] * weight for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(values)
    return dict(zip(keys, values.tolist(), strict=True))
